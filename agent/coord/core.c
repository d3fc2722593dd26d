#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/gtid.h"
#include "../common/log.h"
#include "failover.h"
#include "topology.h"

/* Bootstrap waits this long for every node before deciding from a majority. */
#define BOOTSTRAP_WAIT_ALL_MS 10000
/* A tick this late means the loop was stalled: every timeout looks expired. Decide nothing. */
#define TILT_LATE_MS    1000
#define TILT_HOLD_MS    3000
#define LEASE_MARGIN_MS 250
/* the fence hook waits for the old primary's own agent this much beyond its escalation */
#define FENCE_HOOK_AFTER_MS 3000
#define FENCE_HOOK_RETRY_MS 5000
/* a failover step the FSM refused is not proposed again for this long */
#define REFUSED_HOLD_MS 5000

/* A candidate that has applied all it received, and received nothing more for this long,
 * will not get the rest of what it claimed when chosen (PROMOTING). */
#define RELAY_DRAINED_MS 5000

/* One tick's context. */
struct ha_core {
	const struct ha_core_in *in;
	const struct ha_config *cfg;
	struct ha_core_mem *m;
	struct ha_core_out *out;
	uint64_t now;     /* monotonic */
	uint64_t unix_ms; /* wall clock */
};

static void core_log(const struct ha_core_in *in, int level, const char *event, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

static void core_log(const struct ha_core_in *in, int level, const char *event, const char *fmt,
                     ...)
{
	if (in->log == NULL)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	in->log(in->log_ctx, level, event, line);
}

#define LOGI(k, ev, ...)    core_log((k)->in, HA_LOG_INFO, ev, __VA_ARGS__)
#define LOGW(k, ev, ...)    core_log((k)->in, HA_LOG_WARN, ev, __VA_ARGS__)
#define INLOGW(in, ev, ...) core_log(in, HA_LOG_WARN, ev, __VA_ARGS__)

/* At most one command per tick: the first one decided wins (the callers return after one). */
static int propose(struct ha_core *k, uint8_t *buf, size_t len, const char *what)
{
	if (k->out->cmd != NULL) { /* a bug: two decisions in one tick; the first stands */
		LOGW(k, "coordinator-second-proposal", "what=%s first=%s", what, k->out->cmd_name);
		k->in->free(buf);
		return -1;
	}
	k->out->cmd = buf;
	k->out->cmd_len = len;
	k->out->cmd_name = what;
	return 0;
}

static int node_index(const struct ha_config *cfg, uint32_t id)
{
	for (unsigned i = 0; i < cfg->n_nodes; i++)
		if (cfg->nodes[i].id == id)
			return (int)i;
	return -1;
}

static bool report_fresh(const struct ha_core_in *in, int i)
{
	return i >= 0 && in->reports[i].h &&
	       in->now_ms - in->reports[i].recv_ms <= in->cfg->agent_timeout_ms;
}

const Haagent__Health *ha_core_health(const struct ha_core_in *in, uint32_t id, bool *fresh)
{
	int i = node_index(in->cfg, id);
	*fresh = report_fresh(in, i);
	return i < 0 ? NULL : in->reports[i].h;
}

#define health_of ha_core_health

static const char *db_name(Haagent__DbState db)
{
	switch (db) {
	case HAAGENT__DB_STATE__DB_UP:
		return "up";
	case HAAGENT__DB_STATE__DB_DOWN:
		return "down";
	case HAAGENT__DB_STATE__DB_HUNG:
		return "hung";
	case HAAGENT__DB_STATE__DB_UNUSABLE:
		return "unusable";
	default:
		return "unknown";
	}
}

static void set_note(struct ha_core *k, const char *note)
{
	if (strcmp(k->m->note, note) != 0) {
		snprintf(k->m->note, sizeof(k->m->note), "%s", note);
		if (note[0])
			LOGW(k, "bootstrap-waiting", "reason=\"%s\"", note);
	}
}

static void propose_event(struct ha_core *k, const char *name, const char *node, const char *detail)
{
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_event(name, node, detail, k->unix_ms, k->in->alloc, &buf, &len) == 0)
		propose(k, buf, len, "event");
}

/* ---- bootstrap ---- */

static void init_members(struct ha_core *k)
{
	struct ha_member m[HA_MAX_NODES];
	memset(m, 0, sizeof(m));
	for (unsigned i = 0; i < k->cfg->n_nodes; i++) {
		const struct ha_node_conf *n = &k->cfg->nodes[i];
		m[i].id = n->id;
		snprintf(m[i].name, sizeof(m[i].name), "%s", n->name);
		snprintf(m[i].address, sizeof(m[i].address), "%s", n->address);
		m[i].raft_port = n->raft_port;
		m[i].rpc_port = n->rpc_port;
		m[i].db_port = n->db_port;
		m[i].priority = n->priority;
		m[i].flags = n->no_promote ? HA_MEMBER_NO_PROMOTE : 0;
	}
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_init_members(k->cfg->cluster, m, k->cfg->n_nodes, k->in->alloc, &buf,
	                            &len) == 0) {
		LOGI(k, "init-members", "cluster=%s members=%u", k->cfg->cluster, k->cfg->n_nodes);
		propose(k, buf, len, "init-members");
	}
}

static void bootstrap_primary(struct ha_core *k, const struct ha_fsm_state *st)
{
	struct ha_topo_node view[HA_FSM_MAX_MEMBERS];
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		struct ha_topo_node *v = &view[i];
		memset(v, 0, sizeof(*v));
		v->id = m->id;
		v->name = m->name;
		v->address = m->address;
		v->db_port = m->db_port;
		bool fresh;
		const Haagent__Health *h = health_of(k->in, m->id, &fresh);
		if (h && fresh) {
			v->reported = true;
			v->db_up = h->db == HAAGENT__DB_STATE__DB_UP;
			v->replicating = h->replicating;
			v->master_host = h->master_host;
			v->master_port = h->master_port;
		}
	}
	bool may_use_majority = k->now - k->m->ready_since_ms >= BOOTSTRAP_WAIT_ALL_MS;
	char why[1024];
	uint32_t primary =
	    ha_topo_find_primary(view, st->n_members, may_use_majority, why, sizeof(why));
	if (primary == 0) {
		set_note(k, why);
		return;
	}
	set_note(k, "");
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_set_primary(0, primary, why, k->in->alloc, &buf, &len) == 0) {
		LOGI(k, "bootstrap-primary", "primary=%u reason=\"%s\"", primary, why);
		propose(k, buf, len, "set-primary");
	}
}

/* ---- views for failover.c ---- */

size_t ha_core_view(const struct ha_core_in *in, uint32_t primary, struct ha_fo_node *out,
                    bool replicas_of_primary_only)
{
	const struct ha_fsm_state *st = in->st;
	size_t n = 0;
	const struct ha_member *p = ha_fsm_member(st, primary);
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		if (m->id == primary)
			continue;
		bool fresh;
		const Haagent__Health *h = health_of(in, m->id, &fresh);
		struct ha_fo_node *v = &out[n];
		memset(v, 0, sizeof(*v));
		v->id = m->id;
		v->name = m->name;
		v->flags = m->flags;
		v->priority = m->priority;
		v->fresh = fresh && h;
		v->gtid_current = "";
		v->gtid_io_pos = "";
		v->db_error = "";
		v->last_error = "";
		v->sql_error = "";
		v->lag_seconds = -1;
		if (h) {
			v->db = (int)h->db;
			v->db_error = h->db_error;
			v->replicating =
			    h->replicating && (!p || (!strcmp(h->master_host, p->address) &&
			                              h->master_port == p->db_port));
			v->io_running = h->io_running;
			v->sql_running = h->sql_running;
			v->last_error = h->last_error;
			v->sql_error = h->sql_error;
			v->relay_exhausted = h->relay_exhausted;
			v->rx_age_ms = h->master_rx_age_ms;
			v->gtid_current = h->gtid_current;
			v->gtid_io_pos = h->gtid_io_pos;
			v->lag_seconds = h->lag_seconds;
			v->threads_running = h->threads_running;
			v->loadavg1 = h->loadavg1;
			v->server_id = h->server_id;
			if (h->diverged)
				v->flags |= HA_MEMBER_DIVERGED;
		}
		if (replicas_of_primary_only && !v->replicating)
			continue;
		n++;
	}
	return n;
}

void ha_core_primary_view(const struct ha_core_in *in, uint32_t id, struct ha_fo_node *v)
{
	const struct ha_member *m = ha_fsm_member(in->st, id);
	bool fresh;
	const Haagent__Health *h = health_of(in, id, &fresh);
	memset(v, 0, sizeof(*v));
	v->id = id;
	v->name = m ? m->name : "?";
	v->fresh = fresh && h;
	v->db = h ? (int)h->db : 0;
	v->db_error = h ? h->db_error : "";
	v->read_only = h ? h->read_only : true;
	v->lease_held = h ? h->lease_held : false;
	v->server_id = h ? h->server_id : 0;
	v->gtid_current = h ? h->gtid_current : "";
	v->gtid_io_pos = "";
	v->last_error = "";
	v->lag_seconds = -1;
}

void ha_core_node_view(const struct ha_core_in *in, uint32_t id, struct ha_fo_node *v)
{
	struct ha_fo_node all[HA_FSM_MAX_MEMBERS];
	size_t n = ha_core_view(in, 0, all, false);
	memset(v, 0, sizeof(*v));
	v->gtid_current = v->gtid_io_pos = v->db_error = v->last_error = v->sql_error = "";
	for (size_t i = 0; i < n; i++)
		if (all[i].id == id)
			*v = all[i];
}

/* ---- detection ---- */

/* Asks the shell to run a hook with up to three arguments (NULL ends them). */
static void run_hook(struct ha_core *k, enum ha_core_hook hook, const char *a0, const char *a1,
                     const char *a2)
{
	if (k->out->n_hooks == HA_CORE_MAX_HOOKS)
		return;
	unsigned i = k->out->n_hooks++;
	k->out->hooks[i].hook = hook;
	const char *args[3] = {a0, a1, a2};
	for (int j = 0; j < 3; j++)
		snprintf(k->out->hooks[i].arg[j], sizeof(k->out->hooks[i].arg[j]), "%s",
		         args[j] ? args[j] : "");
}

static void detect(struct ha_core *k, const struct ha_fsm_state *st)
{
	uint64_t now = k->now;
	struct ha_fo_node p, reps[HA_FSM_MAX_MEMBERS];
	ha_core_primary_view(k->in, st->primary_id, &p);
	size_t n = ha_core_view(k->in, st->primary_id, reps, false);
	struct ha_fo_conf fc = {.confirm_ms = k->cfg->confirm_ms,
	                        .hang_timeout_ms = k->cfg->hang_timeout_ms,
	                        .stream_timeout_ms = k->cfg->stream_timeout_ms};
	/* The suspicion clock: the same kind of suspicion, continuously. A primary whose agent has
	 * not reported since this leader took over counts from then. */
	const char *kind;
	char why[512];
	uint64_t for_ms = k->m->suspect_kind[0] ? now - k->m->suspect_since_ms : 0;
	enum ha_verdict v = ha_fo_judge(&p, reps, n, &fc, for_ms, &kind, why, sizeof(why));
	if (v == HA_PRIMARY_OK) {
		k->m->held[0] = '\0';
		if (k->m->suspect_kind[0])
			LOGI(k, "primary-ok", "primary=%s after=\"%s\"", p.name,
			     k->m->suspect_kind);
		k->m->suspect_kind[0] = '\0';
		return;
	}
	if (strcmp(kind, k->m->suspect_kind) != 0) {
		snprintf(k->m->suspect_kind, sizeof(k->m->suspect_kind), "%s", kind);
		k->m->suspect_since_ms = now;
		LOGW(k, "primary-suspect", "primary=%s kind=%s why=\"%s\"", p.name, kind, why);
		/* judge again with the clock started (confirm_ms may be 0) */
		v = ha_fo_judge(&p, reps, n, &fc, 0, &kind, why, sizeof(why));
	}
	snprintf(k->m->last_why, sizeof(k->m->last_why), "%s", why);
	if (v != HA_PRIMARY_FAILED)
		return;
	const char *held = NULL;
	if (!k->cfg->auto_failover)
		held = "failover-held-disabled";
	else if (st->paused)
		held = "failover-held-paused";
	else if (now < k->m->tilt_until_ms)
		held = "failover-held-tilt";
	/* Anti-flapping: within cooldown_ms of the last failover, only strong evidence acts. */
	const struct ha_failover *last = &st->failover;
	if (!held && last->id && last->done_ms &&
	    k->unix_ms - last->done_ms < k->cfg->cooldown_ms && !strcmp(kind, "db-hung"))
		held = "failover-held-cooldown";
	if (held) {
		/* a named event once per suspicion, then quiet */
		if (strcmp(k->m->held, held) != 0) {
			snprintf(k->m->held, sizeof(k->m->held), "%s", held);
			LOGW(k, held, "primary=%s why=\"%s\"", p.name, why);
			propose_event(k, held, p.name, why);
		}
		return;
	}
	LOGW(k, "failover-confirmed", "primary=%s why=\"%s\"", p.name, why);
	run_hook(k, HA_CORE_HOOK_PRE_FAILOVER, p.name, why, NULL);
	uint8_t *buf;
	size_t len;
	struct ha_fo_begin b = {.expected_epoch = st->epoch,
	                        .old_primary = st->primary_id,
	                        .reason = why,
	                        .unix_ms = k->unix_ms};
	if (ha_fsm_cmd_failover_begin(&b, k->in->alloc, &buf, &len) == 0)
		propose(k, buf, len, "failover-begin");
}

/* ---- failover phases ---- */

static void advance(struct ha_core *k, const struct ha_fo_advance *adv)
{
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_failover_advance(adv, k->in->alloc, &buf, &len) == 0 &&
	    propose(k, buf, len, "failover-advance") == 0)
		k->out->cmd_fo_id = adv->id;
}

/* How the old primary is known to be unable to write, or NULL (with *waiting saying what the
 * coordinator waits for). The proofs, and only these (docs/failover.md, "fencing proof"):
 *   1. its agent fenced it at this epoch: read_only, client sessions killed and gone;
 *   2. its agent reports, at this epoch, that nothing listens on its port (crashed, or stopped by
 *      the agent itself when it could not fence it through SQL);
 *   3. its write lease provably ran out: no ack from this leader for lease_ms + an election
 *      timeout + a margin (the lease runs from when the acknowledged report was sent, so it
 *      ended before that) — unless a fence hook is configured: then the hook must succeed;
 *   4. the fence hook exited 0.
 * A hung server, or one that refuses the agent's login, is no proof: it may still commit. */
static const char *fenced_by(struct ha_core *k, const struct ha_fsm_state *st,
                             const struct ha_failover *f, char *buf, size_t size, char *waiting,
                             size_t wsize)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
	const struct ha_member *m = ha_fsm_member(st, f->old_primary);
	const char *name = m ? m->name : "?";
	if (h && h->fenced_epoch >= f->epoch) {
		snprintf(buf, size, "own agent: read-only, client sessions killed and gone");
		return buf;
	}
	if (f->planned) {
		snprintf(waiting, wsize,
		         "waiting for %s's agent to fence it and report its final "
		         "position",
		         name);
		return NULL; /* zero loss needs that final position: nothing else will do */
	}
	bool at_epoch = h && fresh && h->epoch_seen >= f->epoch;
	bool gone = h && h->db == HAAGENT__DB_STATE__DB_DOWN;
#ifdef HA_SIM_MUTANT
	/* the simulator's deliberately broken core (tests/sim): a login the agent lost counts as
	 * a dead server, as in coord/failover.c */
	gone = gone || (h && h->db == HAAGENT__DB_STATE__DB_UNUSABLE);
#endif
	if (at_epoch && gone) {
		snprintf(buf, size, "own agent: nothing listens on its port%s",
		         h->escalated_epoch >= f->epoch ? " (its agent stopped it)" : "");
		return buf;
	}
	/* The lease: the old primary stays writable only while acked by a ready leader (or,
	 * leading, while it hears from a majority). This leader's last ack to it, or its own start,
	 * plus the lease, plus an election timeout for a deposed leader that might still have acked
	 * it. Not when the old primary is this very node: its lease holds while it leads, and its
	 * own agent (this process) fences it or says why it cannot. */
	if (f->old_primary == k->cfg->nodes[k->cfg->self].id) {
		snprintf(
		    waiting, wsize,
		    "waiting for %s (this coordinator's own node) to fence its database (%s%s%s)",
		    name, h ? db_name(h->db) : "no sample",
		    h && h->escalation && h->escalation[0] ? "; " : "",
		    h && h->escalation ? h->escalation : "");
		return NULL;
	}
	int i = node_index(k->cfg, f->old_primary);
	uint64_t last = k->m->ready_since_ms;
	if (i >= 0 && k->in->reports[i].ack_sent_ms > last)
		last = k->in->reports[i].ack_sent_ms;
	uint64_t wait = k->cfg->lease_ms + k->in->election_timeout_ms + LEASE_MARGIN_MS;
	/* An old primary whose agent last saw its database hung or unusable cannot fence it
	 * through SQL when its lease runs out: it stops it, fence_escalate_ms later, and kills it
	 * ESC_STOP_WAIT_MS after that. Only then is its lease's end a proof; without escalation,
	 * never. */
	bool blind =
	    h && (h->db == HAAGENT__DB_STATE__DB_HUNG || h->db == HAAGENT__DB_STATE__DB_UNUSABLE);
	if (blind)
		wait += k->cfg->fence_escalate_ms + HA_FENCE_STOP_WAIT_MS + LEASE_MARGIN_MS;
	uint64_t since = k->now - last;
	bool expired = since >= wait && !(blind && k->cfg->fence_escalate_ms == 0);
	if (expired && !k->cfg->hook_fence[0]) {
		snprintf(buf, size, "write lease expired (%llu ms without contact)",
		         (unsigned long long)since);
		return buf;
	}
	/* The hook (STONITH): at once when the agent is silent, else once its own escalation had
	 * its chance. */
	bool hook_now = !fresh || k->now - k->m->phase_seen_ms >=
	                              k->cfg->fence_escalate_ms + FENCE_HOOK_AFTER_MS;
	if (k->cfg->hook_fence[0] && hook_now) {
		/* once per failover, and again every FENCE_HOOK_RETRY_MS while it fails */
		bool retry = !k->m->fence_hook_running && k->m->fence_hook_result != 0 &&
		             k->now - k->m->fence_hook_ran_ms >= FENCE_HOOK_RETRY_MS;
		if (k->m->fence_hook_failover != f->id || retry) {
			k->m->fence_hook_ran_ms = k->now;
			k->m->fence_hook_failover = f->id;
			k->m->fence_hook_result = -2;
			k->m->fence_hook_running = true; /* the shell says when it ended */
			run_hook(k, HA_CORE_HOOK_FENCE, name, m ? m->address : "", NULL);
		}
		if (!k->m->fence_hook_running && k->m->fence_hook_result == 0) {
			snprintf(buf, size, "fence hook succeeded");
			return buf;
		}
	}
	if (!fresh)
		snprintf(waiting, wsize,
		         "waiting for %s to be fenced: its agent is unreachable; %s", name,
		         k->cfg->hook_fence[0] ? (k->m->fence_hook_running
		                                      ? "the fence hook runs"
		                                      : "the fence hook did not succeed (it gates "
		                                        "promotion); fix it, or haadm failover "
		                                        "--abort")
		                               : "its write lease runs out first");
	else if (!at_epoch)
		snprintf(waiting, wsize, "waiting for %s's agent to see the new epoch", name);
	else
		snprintf(
		    waiting, wsize,
		    "waiting for %s to be fenced: its agent cannot reach its database (%s%s%s)%s",
		    name, h->db == HAAGENT__DB_STATE__DB_HUNG ? "hung" : "unusable",
		    h->escalation && h->escalation[0] ? "; " : "",
		    h->escalation ? h->escalation : "",
		    k->cfg->hook_fence[0] ? ""
		                          : "; configure [agent] db_pid_file and "
		                            "db_stop_command, or a fence hook");
	return NULL;
}

/* Rolls a planned switchover back before promotion: the old primary is the primary again. */
static void roll_back(struct ha_core *k, const struct ha_failover *f, const char *why)
{
	LOGW(k, f->planned ? "switchover-rollback" : "failover-handed-back",
	     "failover=%llu why=\"%s\"", (unsigned long long)f->id, why);
	struct ha_fo_advance adv = {.id = f->id,
	                            .phase = HA_FO_ABORTED,
	                            .candidate = f->old_primary,
	                            .unix_ms = k->unix_ms,
	                            .detail = why};
	advance(k, &adv);
}

/* An unplanned failover with no replica that can be promoted (all diverged, in maintenance,
 * no-promote, or down): is the old primary back, its server up and read-only in a sample taken
 * at this epoch? It then takes its role back — it has every write it acknowledged (they were
 * durable on it), and waiting for an operator would leave the cluster without a primary for
 * ever. Found by the simulator: two replicas diverged by partitions, then the primary's
 * mariadbd crashed and restarted. */
static bool old_primary_back(struct ha_core *k, const struct ha_fsm_state *st,
                             const struct ha_failover *f)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
	const struct ha_member *m = ha_fsm_member(st, f->old_primary);
	return m && !(m->flags & (HA_MEMBER_DIVERGED | HA_MEMBER_MAINTENANCE)) && h && fresh &&
	       h->epoch_seen >= f->epoch && h->db == HAAGENT__DB_STATE__DB_UP && h->read_only &&
	       !h->diverged;
}

/* Planned switchover, FENCED: promote the target once it applied the old primary's final
 * position; roll back when it cannot. */
static void switchover_fenced(struct ha_core *k, const struct ha_fsm_state *st,
                              const struct ha_failover *f, bool late)
{
	const struct ha_member *t = ha_fsm_member(st, f->target);
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->target, &fresh);
	char why[HA_FSM_TEXT_MAX];
	const char *name = t ? t->name : "?";
	if (t == NULL || (t->flags & (HA_MEMBER_DIVERGED | HA_MEMBER_MAINTENANCE))) {
		snprintf(why, sizeof(why), "target %s became %s", name,
		         t && (t->flags & HA_MEMBER_DIVERGED) ? "diverged" : "unavailable");
		roll_back(k, f, why);
		return;
	}
	if (h && fresh && h->db != HAAGENT__DB_STATE__DB_UP) {
		snprintf(why, sizeof(why), "target %s: database %s", name,
		         h->db == HAAGENT__DB_STATE__DB_HUNG ? "hung" : "down");
		roll_back(k, f, why);
		return;
	}
	struct ha_gtid_pos want, cur;
	bool reached = h && fresh && h->epoch_seen >= f->epoch &&
	               ha_gtid_parse(f->fenced_gtid, &want, NULL) == 0 &&
	               ha_gtid_parse(h->gtid_current, &cur, NULL) == 0 &&
	               ha_gtid_contains(&cur, &want);
	if (!reached) {
		if (late) {
			char b1[HA_GTID_BRIEF_MAX], b2[HA_GTID_BRIEF_MAX];
			snprintf(why, sizeof(why),
			         "target %s did not apply up to %s within %u ms (it is at %s)",
			         name, ha_gtid_brief(f->fenced_gtid, b1), f->timeout_ms,
			         h && h->gtid_current ? ha_gtid_brief(h->gtid_current, b2)
			                              : "unknown");
			roll_back(k, f, why);
		}
		return;
	}
	char brief[HA_GTID_BRIEF_MAX];
	snprintf(why, sizeof(why), "switchover: %s applied everything up to %s", name,
	         f->fenced_gtid[0] ? ha_gtid_brief(f->fenced_gtid, brief) : "(empty)");
	LOGI(k, "candidate-chosen", "failover=%llu candidate=%s why=\"%s\" lost=0",
	     (unsigned long long)f->id, name, why);
	struct ha_fo_advance adv = {.id = f->id,
	                            .phase = HA_FO_PROMOTING,
	                            .candidate = f->target,
	                            .unix_ms = k->unix_ms,
	                            .detail = why};
	advance(k, &adv);
}

static void set_wait(struct ha_core *k, const struct ha_failover *f, const char *why)
{
	if (strcmp(why, k->m->wait) != 0) {
		snprintf(k->m->wait, sizeof(k->m->wait), "%s", why);
		if (why[0])
			LOGW(k, "failover-waiting", "failover=%llu why=\"%s\"",
			     (unsigned long long)f->id, why);
	}
}

/* Merges the position in text into *into (ignored when it does not parse or the union would
 * exceed the domain bound: the accounting then errs towards "lost 0", which the log says). */
static void merge_text(const struct ha_core_in *in, struct ha_gtid_pos *into, const char *text)
{
	struct ha_gtid_pos p;
	if (text && text[0] && ha_gtid_parse(text, &p, NULL) == 0 &&
	    ha_gtid_merge(into, &p, into) != 0)
		INLOGW(in, "gtid-merge-overflow", "position=%s", text);
}

/* Everything a failover owes: the old primary's last reported position, what a superseded
 * failover's candidate was to apply, and what every node in nodes[] received. */
static void owed_position(const struct ha_core_in *in, const struct ha_failover *f,
                          const struct ha_fo_node *nodes, size_t n, struct ha_gtid_pos *want)
{
	memset(want, 0, sizeof(*want));
	int oi = node_index(in->cfg, f->old_primary);
	if (oi >= 0)
		merge_text(in, want, in->reports[oi].last_binlog);
	merge_text(in, want, f->owed_gtid);
	merge_text(in, want, f->received_gtid);
	for (size_t i = 0; i < n; i++) {
		struct ha_gtid_pos r;
		if (nodes[i].fresh && nodes[i].db == HAAGENT__DB_STATE__DB_UP &&
		    ha_fo_received(&nodes[i], &r) == 0 && ha_gtid_merge(want, &r, want) != 0)
			INLOGW(in, "gtid-merge-overflow", "node=%s", nodes[i].name);
	}
}

/* The part of want that have lacks, as text (upper bounds per domain); returns its count. */
static uint64_t missing_text(const struct ha_gtid_pos *want, const struct ha_gtid_pos *have,
                             char *out, size_t size)
{
	struct ha_gtid_pos miss;
	ha_gtid_missing_from(want, have, &miss, NULL);
	ha_gtid_format(&miss, out, size);
	return ha_gtid_count_missing(want, have);
}

/* What the failover gives up if the candidate stops applying now: everything it owes (the old
 * primary's last position, what the candidate and every other node received, a superseded
 * failover's debt) less what the candidate applied. */
uint64_t ha_core_loss_if_now(const struct ha_core_in *in, char *lost, size_t size)
{
	const struct ha_failover *f = &in->st->failover;
	struct ha_fo_node all[HA_FSM_MAX_MEMBERS];
	size_t n = ha_core_view(in, f->old_primary, all, false);
	struct ha_gtid_pos want, cur;
	lost[0] = '\0';
	owed_position(in, f, all, n, &want);
	struct ha_fo_node c;
	ha_core_node_view(in, f->candidate, &c);
	if (f->candidate == 0 || ha_gtid_parse(c.gtid_current, &cur, NULL))
		memset(&cur, 0, sizeof(cur));
	if (f->phase == HA_FO_FENCED) {
		/* no candidate yet: the best eligible one's received position is what it keeps */
		char why[256];
		int best = ha_fo_choose(all, n, false, why, sizeof(why));
		if (best >= 0)
			ha_fo_received(&all[best], &cur);
	}
	return missing_text(&want, &cur, lost, size);
}

/* PROMOTING, unplanned: has the candidate failed? Silent for agent_timeout_ms (it is then not
 * fresh) and again as long, or its database down for confirm_ms, or hung for hang_timeout_ms.
 * Applying a long relay log is not failing: its reports say so. */
static const char *candidate_failed(struct ha_core *k, const struct ha_failover *f,
                                    const char *name, char *why, size_t size)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->candidate, &fresh);
	uint64_t now = k->now;
	enum ha_cand_state cs = !fresh                                    ? HA_CAND_SILENT
	                        : !h                                      ? HA_CAND_FINE
	                        : h->db == HAAGENT__DB_STATE__DB_DOWN     ? HA_CAND_DOWN
	                        : h->db == HAAGENT__DB_STATE__DB_HUNG     ? HA_CAND_HUNG
	                        : h->db == HAAGENT__DB_STATE__DB_UNUSABLE ? HA_CAND_UNUSABLE
	                                                                  : HA_CAND_FINE;
	if (cs != k->m->cand_state) {
		k->m->cand_state = cs;
		k->m->cand_since_ms = now;
	}
	if (cs == HA_CAND_FINE)
		return NULL;
	uint64_t for_ms = now - k->m->cand_since_ms;
	uint64_t need = cs == HA_CAND_SILENT ? 2 * (uint64_t)k->cfg->agent_timeout_ms
	                : cs == HA_CAND_DOWN ? k->cfg->confirm_ms
	                                     : k->cfg->hang_timeout_ms;
	if (for_ms < need)
		return NULL;
	snprintf(why, size, "candidate %s failed while promoting: %s for %llu ms", name,
	         cs == HA_CAND_SILENT ? "its agent is unreachable"
	         : cs == HA_CAND_DOWN ? "mariadbd down"
	         : cs == HA_CAND_HUNG ? "mariadbd hung"
	                              : "its agent cannot use its database",
	         (unsigned long long)for_ms);
	return why;
}

/* The bounded exit of PROMOTING: a new failover whose old primary is the failed candidate (the
 * FSM supersedes the current one). */
static void supersede(struct ha_core *k, const struct ha_fsm_state *st, const struct ha_failover *f,
                      const char *event, const char *why)
{
	struct ha_fo_begin b = {.expected_epoch = st->epoch,
	                        .old_primary = f->candidate,
	                        .reason = why,
	                        .unix_ms = k->unix_ms};
	uint8_t *buf;
	size_t len;
	LOGW(k, event, "failover=%llu why=\"%s\"", (unsigned long long)f->id, why);
	if (ha_fsm_cmd_failover_begin(&b, k->in->alloc, &buf, &len) == 0)
		propose(k, buf, len, "failover-begin");
}

/* PROMOTING: the candidate stops applying its relay log; lost is what is given up at most. */
static void give_up(struct ha_core *k, const struct ha_failover *f, const char *lost,
                    uint64_t count, const char *why)
{
	struct ha_fo_advance acc = {.id = f->id,
	                            .phase = HA_FO_PROMOTING,
	                            .accept_loss = true,
	                            .lost_gtid = lost,
	                            .lost_count = count,
	                            .unix_ms = k->unix_ms,
	                            .detail = why};
	advance(k, &acc);
}

/* The candidate's relay log is exhausted short of what it claimed. When another node has
 * received something the candidate has not applied, a new failover replaces the candidate
 * (proposed here, true); otherwise false, with why saying that nobody has the rest. */
static bool shortfall(struct ha_core *k, const struct ha_fsm_state *st, const struct ha_failover *f,
                      const struct ha_fo_node *c, char *why, size_t size)
{
	struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
	size_t n = ha_core_view(k->in, f->old_primary, nodes, false);
	struct ha_gtid_pos cur, r;
	char b1[HA_GTID_BRIEF_MAX];
	if (ha_gtid_parse(c->gtid_current, &cur, NULL))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (nodes[i].id == f->candidate || !nodes[i].fresh ||
		    nodes[i].db != HAAGENT__DB_STATE__DB_UP || ha_fo_received(&nodes[i], &r) ||
		    ha_gtid_contains(&cur, &r))
			continue;
		snprintf(why, size,
		         "candidate %s's relay log ended at %s, short of what it reported; %s has "
		         "more: it takes over",
		         c->name, ha_gtid_brief(c->gtid_current, b1), nodes[i].name);
		supersede(k, st, f, "failover-relay-short", why);
		return true;
	}
	snprintf(why, size,
	         "candidate %s's relay log ended at %s, short of what it reported, and no other "
	         "node has the rest: it is lost, and the candidate takes writes",
	         c->name, ha_gtid_brief(c->gtid_current, b1));
	return false;
}

/* Has the candidate applied everything its IO thread received (whatever was recorded when it
 * was chosen)? */
static bool relay_drained(const struct ha_fo_node *c)
{
	struct ha_gtid_pos cur, got;
	return ha_gtid_parse(c->gtid_current, &cur, NULL) == 0 && ha_fo_received(c, &got) == 0 &&
	       ha_gtid_contains(&cur, &got);
}

/* Has the candidate still to apply part of what it received (the position recorded when it
 * was chosen, and what its IO thread got since)? */
static bool relay_pending(const struct ha_core_in *in, const struct ha_failover *f,
                          const struct ha_fo_node *c)
{
	struct ha_gtid_pos cur, want;
	if (ha_gtid_parse(c->gtid_current, &cur, NULL) || ha_fo_received(c, &want))
		return true;
	merge_text(in, &want, f->received_gtid);
	return !ha_gtid_contains(&cur, &want);
}

/* Should the old primary's agent salvage what its binlog holds (db/salvage.h)? Its mariadbd
 * is gone (reported down at this failover's epoch) but its agent reports: it can read the
 * local binlog. Unplanned failovers only (a switchover's old primary hands over everything). */
static bool salvage_possible(struct ha_core *k, const struct ha_failover *f)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
	return k->cfg->salvage && !f->planned && !f->accept_loss && h && fresh &&
	       h->epoch_seen >= f->epoch && h->db == HAAGENT__DB_STATE__DB_DOWN;
}

/* PROMOTING with salvage WANTED: records the outcome when the old primary's agent reported
 * one, or gives up on it (silent agent, no outcome in time). Returns true when it proposed. */
static bool salvage_outcome(struct ha_core *k, const struct ha_fsm_state *st,
                            const struct ha_failover *f, char *wait, size_t wait_size)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
	const struct ha_member *o = ha_fsm_member(st, f->old_primary);
	const char *oname = o ? o->name : "?";
	uint64_t now = k->now;
	uint64_t bound = (uint64_t)k->cfg->salvage_timeout_ms + 2ull * k->cfg->agent_timeout_ms;
	struct ha_fo_advance adv = {.id = f->id, .phase = HA_FO_PROMOTING, .unix_ms = k->unix_ms};
	char detail[512];
	if (h && fresh && h->salvage_fo_id == f->id && h->salvage_state >= HA_SALVAGE_RUN_DONE) {
		/* what is lost now: what the failover owes less what the candidate received and
		 * what the salvage applied */
		struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
		size_t n = ha_core_view(k->in, f->old_primary, nodes, false);
		struct ha_gtid_pos want, keeps;
		char lost[HA_FSM_GTID_MAX] = "";
		owed_position(k->in, f, nodes, n, &want);
		memset(&keeps, 0, sizeof(keeps));
		merge_text(k->in, &keeps, f->received_gtid);
		merge_text(k->in, &keeps, h->salvaged_gtid);
		adv.lost_count = missing_text(&want, &keeps, lost, sizeof(lost));
		adv.lost_gtid = lost;
		adv.salvage =
		    h->salvage_state == HA_SALVAGE_RUN_DONE ? HA_SALVAGE_DONE : HA_SALVAGE_FAILED;
		adv.salvaged_gtid = h->salvaged_gtid;
		adv.salvaged_count = h->salvaged_count;
		snprintf(detail, sizeof(detail), "from %s's binlog: %s", oname,
		         h->salvage_detail ? h->salvage_detail : "");
		adv.detail = detail;
		LOGI(k, "failover-salvage", "failover=%llu count=%llu detail=\"%s\"",
		     (unsigned long long)f->id, (unsigned long long)h->salvaged_count, detail);
		advance(k, &adv);
		return true;
	}
	/* silence counts only after twice agent_timeout_ms under this leader: a new leader has
	 * no report from anyone at first */
	bool silent = !fresh && now - k->m->phase_seen_ms >= 2ull * k->cfg->agent_timeout_ms;
	/* its mariadbd runs again (restarted) and no salvage ran: its agent salvages only from a
	 * stopped server, so none will (found by the simulator: the candidate waited the whole
	 * bound, 33 s without a primary) */
	bool back = h && fresh && h->epoch_seen >= f->epoch && h->db == HAAGENT__DB_STATE__DB_UP &&
	            h->salvage_fo_id != f->id;
	if (silent || back || now - k->m->phase_seen_ms >= bound) {
		snprintf(detail, sizeof(detail),
		         "no salvage from %s's binlog: %s; the new primary takes writes without it",
		         oname,
		         silent ? "its agent stopped reporting"
		         : back ? "its mariadbd runs again"
		                : "no outcome within the salvage bound");
		adv.salvage = HA_SALVAGE_FAILED;
		adv.detail = detail;
		adv.lost_gtid = f->lost_gtid;
		adv.lost_count = f->lost_count;
		LOGW(k, "failover-salvage-failed", "failover=%llu why=\"%s\"",
		     (unsigned long long)f->id, detail);
		advance(k, &adv);
		return true;
	}
	snprintf(wait, wait_size,
	         "%s's agent applies what its binlog holds (its mariadbd is gone) to the new "
	         "primary before it takes writes: %s",
	         oname,
	         h && h->salvage_fo_id == f->id && h->salvage_detail ? h->salvage_detail
	                                                             : "starting");
	return false;
}

/* "; about 12 s at 130/s": the candidate's apply rate, smoothed over its reports, and the
 * time left at that rate ("" until two samples a second apart show progress). */
static const char *estimate(struct ha_core *k, uint64_t left, uint64_t now, char out[64])
{
	if (k->m->apply_left_ms == 0 || left > k->m->apply_left) {
		k->m->apply_left = left;
		k->m->apply_left_ms = now;
		k->m->apply_rate = 0;
	} else if (now - k->m->apply_left_ms >= 1000) {
		double rate = (double)(k->m->apply_left - left) * 1000.0 /
		              (double)(now - k->m->apply_left_ms);
		k->m->apply_rate =
		    k->m->apply_rate > 0 ? 0.7 * k->m->apply_rate + 0.3 * rate : rate;
		k->m->apply_left = left;
		k->m->apply_left_ms = now;
	}
	if (k->m->apply_rate < 0.01) {
		out[0] = '\0';
		return out;
	}
	snprintf(out, 64, "; about %.0f s at %.0f/s", (double)left / k->m->apply_rate,
	         k->m->apply_rate);
	return out;
}

static void run_failover(struct ha_core *k, const struct ha_fsm_state *st)
{
	const struct ha_failover *f = &st->failover;
	uint64_t now = k->now;
	if (k->m->phase_seen_id != f->id || k->m->phase_seen != f->phase) {
		if (k->m->phase_seen_id != f->id)
			k->m->first_seen_ms = now;
		k->m->phase_seen_id = f->id;
		k->m->phase_seen = f->phase;
		k->m->phase_seen_ms = now;
		k->m->cand_state = HA_CAND_FINE;
		k->m->cand_since_ms = now;
		k->m->apply_left_ms = 0;
		k->m->drained_since_ms = 0;
		set_wait(k, f, "");
	}
	/* A step the state machine refused is a bug: say it (an event), roll a switchover back,
	 * and hold a failover's steps for a while rather than proposing them again in a loop. */
	if (k->m->refused_fo_id == f->id) {
		k->m->refused_fo_id = 0;
		const char *what = "a coordinator decision was refused by the replicated state "
		                   "machine (a bug: see fsm-reject in the agents' logs)";
		if (f->planned && f->phase < HA_FO_PROMOTING) {
			roll_back(k, f, what);
			return;
		}
		if (k->m->refused_said_id != f->id) {
			k->m->refused_said_id = f->id;
			propose_event(k, "coordinator-step-refused", "", what);
			return;
		}
	}
	if (now < k->m->hold_until_ms)
		return;
	/* a switchover's budget, counted from when this leader first saw it */
	bool late = f->planned && now - k->m->first_seen_ms >= f->timeout_ms;
	struct ha_fo_advance adv = {.id = f->id, .unix_ms = k->unix_ms};
	char buf[256], wait[1024] = "";
	switch (f->phase) {
	case HA_FO_BEGIN: {
		const char *how = fenced_by(k, st, f, buf, sizeof(buf), wait, sizeof(wait));
		if (how == NULL && f->planned) {
			const struct ha_member *o = ha_fsm_member(st, f->old_primary);
			bool fresh;
			const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
			char why[512];
			if (h && fresh && h->epoch_seen >= f->epoch &&
			    h->db != HAAGENT__DB_STATE__DB_UP)
				snprintf(why, sizeof(why), "old primary %s: database %s",
				         o ? o->name : "?",
				         h->db == HAAGENT__DB_STATE__DB_HUNG ? "hung"
				         : h->db == HAAGENT__DB_STATE__DB_DOWN
				             ? "down"
				             : "unusable by its agent");
			else if (late)
				snprintf(why, sizeof(why),
				         "old primary %s was not fenced within %u ms (%s)",
				         o ? o->name : "?", f->timeout_ms,
				         h && h->action && h->action[0]
				             ? h->action
				             : "its agent did not answer");
			else {
				set_wait(k, f, wait);
				return;
			}
			roll_back(k, f, why);
			return;
		}
		if (how == NULL) {
			set_wait(k, f, wait);
			return;
		}
		LOGI(k, "old-primary-fenced", "failover=%llu how=\"%s\"", (unsigned long long)f->id,
		     how);
		adv.phase = HA_FO_FENCED;
		adv.fenced_by = how;
		bool fresh;
		const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
		if (h && h->fenced_epoch >= f->epoch)
			adv.fenced_gtid = h->fenced_gtid;
		advance(k, &adv);
		return;
	}
	case HA_FO_FENCED: {
		if (f->planned) {
			switchover_fenced(k, st, f, late);
			return;
		}
		struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
		size_t n = ha_core_view(k->in, f->old_primary, nodes, false);
		/* only reports taken at the new epoch count: they were sampled after the fence */
		for (size_t i = 0; i < n; i++) {
			bool fresh;
			const Haagent__Health *h = health_of(k->in, nodes[i].id, &fresh);
			if (h && h->epoch_seen < f->epoch)
				nodes[i].fresh = false;
		}
		/* Ranked by what each received: the candidate applies its whole relay log before it
		 * turns writable (reconcile.c), so nothing is waited for here but the reports. */
		char why[1024];
		int best = ha_fo_choose(nodes, n, false, why, sizeof(why));
		if (best < 0 && !f->accept_loss && old_primary_back(k, st, f)) {
			char back[HA_FSM_TEXT_MAX];
			snprintf(back, sizeof(back),
			         "no replica can be promoted (%.300s); the old primary is back, "
			         "read-only at epoch %llu: it takes its role back",
			         why, (unsigned long long)f->epoch);
			roll_back(k, f, back);
			return;
		}
		/* No acknowledged write may be lost: an acknowledged transaction is on at least one
		 * replica, not necessarily an eligible one. Wait for a candidate that has received
		 * what every reporting node has received, however long, unless an operator accepts
		 * the loss; and for every replica whose position cannot be read now, at most
		 * apply_timeout_ms. */
		bool waited = now - k->m->phase_seen_ms >= k->cfg->apply_timeout_ms;
		if (best >= 0 && !f->accept_loss) {
			bool known;
			const char *unsafe = ha_fo_unsafe(nodes, n, best, why, sizeof(why), &known);
			if (unsafe && (known || !waited))
				best = -1;
		}
		if (best < 0) {
			/* nobody eligible, or waiting for positions: keep waiting, say why */
			set_wait(k, f, why);
			return;
		}
		/* What is given up: what the old primary had (as last reported), what a superseded
		 * failover's candidate was to apply, and what any reporting node received, less
		 * what the candidate received (it applies all of that). */
		struct ha_gtid_pos cand;
		char lost[HA_FSM_GTID_MAX] = "", received[HA_FSM_GTID_MAX] = "";
		uint64_t lost_count = 0;
		if (ha_fo_received(&nodes[best], &cand) == 0) {
			ha_gtid_format(&cand, received, sizeof(received));
			struct ha_gtid_pos want, keeps = cand;
			owed_position(k->in, f, nodes, n, &want);
			/* with the loss accepted the candidate does not apply its relay log either:
			 * what it keeps is what it applied (DONE counts against its final position)
			 */
			if (f->accept_loss)
				ha_gtid_parse(nodes[best].gtid_current, &keeps, NULL);
			lost_count = missing_text(&want, &keeps, lost, sizeof(lost));
		}
		LOGI(k, "candidate-chosen", "failover=%llu candidate=%s why=\"%s\" lost=%llu",
		     (unsigned long long)f->id, nodes[best].name, why,
		     (unsigned long long)lost_count);
		adv.phase = HA_FO_PROMOTING;
		adv.candidate = nodes[best].id;
		adv.received_gtid = received;
		if (salvage_possible(k, f))
			adv.salvage = HA_SALVAGE_WANTED;
		adv.lost_gtid = lost;
		adv.lost_count = lost_count;
		adv.detail = why;
		advance(k, &adv);
		return;
	}
	case HA_FO_PROMOTING: {
		bool fresh;
		const Haagent__Health *h = health_of(k->in, f->candidate, &fresh);
		const struct ha_member *o = ha_fsm_member(st, f->old_primary);
		const struct ha_member *c = ha_fsm_member(st, f->candidate);
		const char *cname = c ? c->name : "?";
		if (!h || h->writable_epoch != f->epoch) {
			char why[512];
			/* the bounded exit: a candidate that dies is replaced by a new failover (a
			 * switchover's target too: the old primary is fenced by now) */
			if (candidate_failed(k, f, cname, why, sizeof(why))) {
				supersede(k, st, f, "failover-candidate-failed", why);
				return;
			}
			char salvage_wait[700] = "";
			if (f->salvage == HA_SALVAGE_WANTED && !f->accept_loss &&
			    salvage_outcome(k, st, f, salvage_wait, sizeof(salvage_wait)))
				return;
			/* the relay log: wait, however long, unless a ceiling or an operator says
			 * not */
			struct ha_fo_node cv;
			char b1[HA_GTID_BRIEF_MAX], b2[HA_GTID_BRIEF_MAX];
			ha_core_node_view(k->in, f->candidate, &cv);
			if (h && fresh && !f->accept_loss && relay_pending(k->in, f, &cv)) {
				char lost[HA_FSM_GTID_MAX];
				uint64_t left = ha_core_loss_if_now(k->in, lost, sizeof(lost));
				/* Its relay log ended short of what it claimed when chosen: another
				 * node that has more takes over (a new failover); when none has,
				 * what is missing is gone, and it is recorded as lost rather than
				 * waited for forever. */
				/* ...or everything it received is applied, for RELAY_DRAINED_MS,
				 * while its IO thread still runs: connected to a restarted old
				 * primary whose crash recovery dropped what the candidate had
				 * claimed, it streams nothing more, and waiting on would never end
				 */
				/* (only on a sample of a running server: one its agent cannot read
				 * has no position, which is not an empty one — found by the
				 * simulator: a candidate that lost its agent's login was taken for
				 * one whose relay log ended at nothing) */
				bool drained =
				    h->db == HAAGENT__DB_STATE__DB_UP && relay_drained(&cv);
				if (!drained)
					k->m->drained_since_ms = 0;
				else if (k->m->drained_since_ms == 0)
					k->m->drained_since_ms = now;
				bool exhausted =
				    cv.relay_exhausted ||
				    (drained && now - k->m->drained_since_ms >= RELAY_DRAINED_MS);
				if (exhausted && !f->planned) {
					if (shortfall(k, st, f, &cv, why, sizeof(why)))
						return;
					LOGW(k, "failover-relay-short", "failover=%llu why=\"%s\"",
					     (unsigned long long)f->id, why);
					give_up(k, f, lost, left, why);
					return;
				}
				if (k->cfg->max_apply_wait_ms &&
				    now - k->m->phase_seen_ms >= k->cfg->max_apply_wait_ms) {
					snprintf(
					    why, sizeof(why),
					    "max_apply_wait_ms (%u) reached: %s stops applying its "
					    "relay log, up to %llu transactions given up",
					    k->cfg->max_apply_wait_ms, cname,
					    (unsigned long long)left);
					give_up(k, f, lost, left, why);
					return;
				}
				if (cv.replicating && !cv.sql_running && cv.sql_error[0])
					snprintf(
					    why, sizeof(why),
					    "%s cannot apply its relay log: its SQL thread stopped "
					    "on an error (%s); %llu transactions to go: fix it, or "
					    "give them up with haadm failover --accept-loss",
					    cname, cv.sql_error, (unsigned long long)left);
				else {
					char est[64];
					snprintf(
					    why, sizeof(why),
					    "%s applies its relay log before taking writes: %llu "
					    "transactions to go%s (applied %s, received %s%s); "
					    "haadm "
					    "failover --accept-loss gives them up",
					    cname, (unsigned long long)left,
					    estimate(k, left, now, est),
					    ha_gtid_brief(cv.gtid_current, b1),
					    ha_gtid_brief(cv.gtid_io_pos, b2),
					    h->sql_delay
					        ? "; a delayed replica: its MASTER_DELAY is "
					          "waited out (changing it would discard its relay "
					          "log)"
					        : "");
				}
			} else if (salvage_wait[0]) {
				snprintf(why, sizeof(why), "%s", salvage_wait);
			} else {
				snprintf(why, sizeof(why), "waiting for %s to turn writable (%s)",
				         cname,
				         h && h->action && h->action[0]
				             ? h->action
				             : "no report from its agent yet");
			}
			snprintf(k->m->wait, sizeof(k->m->wait), "%s", why);
			return;
		}
		char detail[256];
		char lost[HA_FSM_GTID_MAX] = "";
		uint64_t lost_count = f->lost_count;
		if (f->accept_loss) {
			/* what was given up at most, less what the candidate applied before it
			 * stopped: the truth */
			struct ha_gtid_pos upto, cur, miss;
			const char *took = h->promoted_gtid && h->promoted_gtid[0]
			                       ? h->promoted_gtid
			                       : h->gtid_current;
			if (ha_gtid_parse(f->lost_gtid, &upto, NULL) == 0 &&
			    ha_gtid_parse(took, &cur, NULL) == 0) {
				ha_gtid_missing_from(&upto, &cur, &miss, NULL);
				ha_gtid_format(&miss, lost, sizeof(lost));
				lost_count = ha_gtid_count_missing(&upto, &cur);
			}
			adv.lost_gtid = lost;
			adv.lost_count = lost_count;
		}
		snprintf(detail, sizeof(detail),
		         "%s writable at epoch %llu; lost %llu transactions", cname,
		         (unsigned long long)f->epoch, (unsigned long long)lost_count);
		LOGI(k, f->planned ? "switchover-done" : "failover-done", "failover=%llu %s",
		     (unsigned long long)f->id, detail);
		adv.phase = HA_FO_DONE;
		adv.detail = detail;
		advance(k, &adv);
		char epoch[24];
		snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)f->epoch);
		run_hook(k, HA_CORE_HOOK_POST_FAILOVER, o ? o->name : "", cname, epoch);
		return;
	}
	default:
		return;
	}
}

/* ---- divergence: agents report it, the coordinator records it ---- */

static bool record_divergence(struct ha_core *k, const struct ha_fsm_state *st)
{
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		bool fresh;
		const Haagent__Health *h = health_of(k->in, m->id, &fresh);
		if (!h || !fresh || h->epoch_seen != st->epoch || m->id == st->primary_id)
			continue;
		bool recorded = (m->flags & HA_MEMBER_DIVERGED) != 0;
		bool reported = h->diverged;
		/* cleared only once the node is back replicating from the primary */
		if (recorded && !reported && !(h->replicating && h->io_running))
			continue;
		if (recorded == reported && (!reported || !strcmp(m->errant_gtid, h->errant_gtid)))
			continue;
		uint8_t *buf;
		size_t len;
		if (ha_fsm_cmd_node_diverged(m->id, reported, h->errant_gtid, k->unix_ms,
		                             k->in->alloc, &buf, &len) == 0) {
			LOGW(k, reported ? "node-diverged" : "node-converged", "node=%s errant=%s",
			     m->name, h->errant_gtid);
			propose(k, buf, len, "node-diverged");
			return true;
		}
	}
	return false;
}

/* ---- a database its agent cannot use: an event, once per episode ---- */

static bool say_unusable(struct ha_core *k, const struct ha_fsm_state *st)
{
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		int j = node_index(k->cfg, m->id);
		bool fresh;
		const Haagent__Health *h = health_of(k->in, m->id, &fresh);
		if (j < 0 || !h || !fresh)
			continue;
		bool unusable = h->db == HAAGENT__DB_STATE__DB_UNUSABLE;
		if (unusable == k->m->unusable_said[j])
			continue;
		k->m->unusable_said[j] = unusable;
		/* an event per episode, at most one a minute per node (a flapping login must not
		 * flood the 64-event history) */
		if (!unusable || (k->m->unusable_ms[j] && k->now - k->m->unusable_ms[j] < 60000))
			continue;
		k->m->unusable_ms[j] = k->now;
		char detail[256];
		snprintf(detail, sizeof(detail),
		         "the agent cannot use its database (%s); no failover on that alone",
		         h->db_error ? h->db_error : "");
		LOGW(k, "db-unusable", "node=%s error=\"%s\"", m->name, h->db_error);
		propose_event(k, "db-unusable", m->name, detail);
		return true;
	}
	return false;
}

/* ---- the live plan shown by status ---- */

static void plan(struct ha_core *k, const struct ha_fsm_state *st)
{
	k->m->n_plan_blockers = 0;
	k->m->plan_candidate[0] = '\0';
#define BLOCK(...)                                                                                 \
	do {                                                                                       \
		if (k->m->n_plan_blockers < 4)                                                     \
			snprintf(k->m->plan_blockers[k->m->n_plan_blockers++],                     \
			         sizeof(k->m->plan_blockers[0]), __VA_ARGS__);                     \
	} while (0)
	if (!k->cfg->auto_failover)
		BLOCK("automatic failover is disabled in the configuration");
	if (st->paused)
		BLOCK("paused by an operator%s%s (haadm resume)", st->pause_reason[0] ? ": " : "",
		      st->pause_reason);
	if (k->now < k->m->tilt_until_ms)
		BLOCK("tilt: the coordinator's loop was stalled; no decision for a few seconds");
	if (st->primary_id == 0 || ha_fsm_failover_active(st)) {
		if (ha_fsm_failover_active(st))
			BLOCK("a failover is in progress (%s)%s%s",
			      ha_fo_phase_name(st->failover.phase), k->m->wait[0] ? ": " : "",
			      k->m->wait);
		return;
	}
	struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
	size_t n = ha_core_view(k->in, st->primary_id, nodes, false);
	char why[1024];
	int best = ha_fo_choose(nodes, n, false, why, sizeof(why));
	if (best >= 0)
		snprintf(k->m->plan_candidate, sizeof(k->m->plan_candidate), "%s",
		         nodes[best].name);
	else
		BLOCK("%s", why);
	unsigned reachable = 1;
	for (unsigned i = 0; i < k->cfg->n_nodes; i++)
		if ((int)i != k->cfg->self && report_fresh(k->in, (int)i))
			reachable++;
	if (reachable * 2 <= k->cfg->n_nodes)
		BLOCK("no quorum: only %u of %u agents reachable", reachable, k->cfg->n_nodes);
	for (size_t i = 0; i < n; i++)
		if (nodes[i].fresh && nodes[i].lag_seconds > 60)
			BLOCK("%s lags %lld s", nodes[i].name, (long long)nodes[i].lag_seconds);
#undef BLOCK
}

/* ---- tick ---- */

void ha_core_refused(struct ha_core_mem *m, uint64_t fo_id, uint64_t now_ms)
{
	if (fo_id == 0)
		return;
	m->refused_fo_id = fo_id;
	m->hold_until_ms = now_ms + REFUSED_HOLD_MS;
}

void ha_core_tick(const struct ha_core_in *in, struct ha_core_mem *m, struct ha_core_out *out)
{
	memset(out, 0, sizeof(*out));
	struct ha_core ctx = {.in = in,
	                      .cfg = in->cfg,
	                      .m = m,
	                      .out = out,
	                      .now = in->now_ms,
	                      .unix_ms = in->unix_ms};
	struct ha_core *k = &ctx;
	uint64_t now = k->now;
	if (m->ready_since_ms == 0) {
		m->ready_since_ms = now;
		m->last_tick_ms = now;
	}
	/* TILT: the timer fired far too late, so every "last seen" looks old. */
	if (now - m->last_tick_ms > k->cfg->report_interval_ms + TILT_LATE_MS) {
		m->tilt_until_ms = now + TILT_HOLD_MS;
		LOGW(k, "tilt", "late_ms=%llu hold_ms=%d",
		     (unsigned long long)(now - m->last_tick_ms), TILT_HOLD_MS);
	}
	m->last_tick_ms = now;

	const struct ha_fsm_state *st = in->st;
	plan(k, st);
	if (in->proposing)
		return;
	if (st->n_members == 0) {
		init_members(k);
		return;
	}
	if (st->primary_id == 0 && st->epoch == 0) {
		bootstrap_primary(k, st);
		return;
	}
	set_note(k, "");
	if (ha_fsm_failover_active(st)) {
		run_failover(k, st);
		out->backups = out->cmd == NULL; /* abandons a job whose node is involved */
		return;
	}
	if (record_divergence(k, st) || say_unusable(k, st))
		return;
	if (st->primary_id != 0)
		detect(k, st);
	out->backups = out->cmd == NULL;
}
