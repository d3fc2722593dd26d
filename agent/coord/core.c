/* The coordinator core (core.h): the tick, bootstrap, detection, divergence records, the
 * views, the live plan; the failover phases are in fence.c and promote.c. */
#include "core_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/gtid.h"
#include "topology.h"

void ha_core_logf(ha_core_log_fn log, void *ctx, int level, const char *event, const char *fmt, ...)
{
	if (log == NULL)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log(ctx, level, event, line);
}

/* At most one command per tick: the first one decided wins (the callers return after one). */
int co_propose(struct ha_core *k, uint8_t *buf, size_t len, const char *what)
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

int co_node_index(const struct ha_config *cfg, uint32_t id)
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

/* A node that votes in raft: every configured node before bootstrap, then every member but
 * one joining (docs/membership.md: a node being added never weighs on the quorum). */
static bool votes(const struct ha_core_in *in, unsigned i)
{
	if (in->st->n_members == 0)
		return true;
	const struct ha_member *m = ha_fsm_member(in->st, in->cfg->nodes[i].id);
	return m && !(m->flags & HA_MEMBER_JOINING);
}

unsigned ha_core_voters(const struct ha_core_in *in)
{
	unsigned n = 0;
	for (unsigned i = 0; i < in->cfg->n_nodes; i++)
		n += votes(in, i);
	return n;
}

unsigned ha_core_reporting(const struct ha_core_in *in, unsigned within_ms)
{
	unsigned n = 0;
	for (unsigned i = 0; i < in->cfg->n_nodes; i++)
		if (votes(in, i) &&
		    ((int)i == in->cfg->self ||
		     (in->reports[i].h && in->now_ms - in->reports[i].recv_ms <= within_ms)))
			n++;
	return n;
}

unsigned ha_core_lease_contacts(const struct ha_core_in *in, unsigned lease_ms)
{
	unsigned n = 0;
	for (unsigned i = 0; i < in->cfg->n_nodes; i++) {
		uint64_t c = in->reports[i].contact_ms;
		if (votes(in, i) && ((int)i == in->cfg->self ||
		                     (c && c <= in->now_ms && in->now_ms - c <= lease_ms)))
			n++;
	}
	return n;
}

const Haagent__Health *ha_core_health(const struct ha_core_in *in, uint32_t id, bool *fresh)
{
	int i = co_node_index(in->cfg, id);
	*fresh = report_fresh(in, i);
	return i < 0 ? NULL : in->reports[i].h;
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
		co_propose(k, buf, len, "event");
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
		co_propose(k, buf, len, "init-members");
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
		co_propose(k, buf, len, "set-primary");
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
	v->restarted = h && h->restarted_epoch && h->restarted_epoch == in->st->epoch;
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
void co_run_hook(struct ha_core *k, enum ha_core_hook hook, const char *a0, const char *a1,
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

/* A witness's lost-stream clock runs only while detection sees it tick after tick. */
#define STREAM_CLOCK_GAP_MS 1000

static void detect(struct ha_core *k, const struct ha_fsm_state *st)
{
	uint64_t now = k->now;
	struct ha_fo_node p, reps[HA_FSM_MAX_MEMBERS];
	ha_core_primary_view(k->in, st->primary_id, &p);
	size_t n = ha_core_view(k->in, st->primary_id, reps, false);
	struct ha_fo_conf fc = {.confirm_ms = k->cfg->confirm_ms,
	                        .hang_timeout_ms = k->cfg->hang_timeout_ms,
	                        .stream_timeout_ms = k->cfg->stream_timeout_ms};
	/* how long each replica of the primary has lost its stream, as seen in its reports; the
	 * clock starts when it is seen replicating from the primary without a stream, never
	 * earlier (one just repointed had no stream before either) */
	/* clocks of another epoch (another primary), or not kept up while detection did not run
	 * (a failover, a proposal in flight, a stall), start again */
	if (k->m->stream_epoch != st->epoch || now - k->m->stream_seen_ms > STREAM_CLOCK_GAP_MS)
		memset(k->m->stream_lost_ms, 0, sizeof(k->m->stream_lost_ms));
	k->m->stream_epoch = st->epoch;
	k->m->stream_seen_ms = now;
	for (size_t r = 0; r < n; r++) {
		int i = co_node_index(k->cfg, reps[r].id);
		if (i < 0)
			continue;
		bool lost = reps[r].fresh && reps[r].db == HAAGENT__DB_STATE__DB_UP &&
		            reps[r].replicating && ha_fo_lost_stream(&reps[r], &fc);
		if (!lost)
			k->m->stream_lost_ms[i] = 0;
		else if (k->m->stream_lost_ms[i] == 0)
			k->m->stream_lost_ms[i] = now;
		reps[r].lost_for_ms = lost ? now - k->m->stream_lost_ms[i] : 0;
	}
	/* The suspicion clock: the same kind of suspicion, continuously. A primary whose agent has
	 * not reported since this leader took over counts from then. */
	enum ha_suspicion kind;
	char why[512];
	uint64_t for_ms = k->m->suspect != HA_SUSPECT_NONE ? now - k->m->suspect_since_ms : 0;
	enum ha_verdict v = ha_fo_judge(&p, reps, n, &fc, for_ms, &kind, why, sizeof(why));
	if (v == HA_PRIMARY_OK) {
		k->m->held[0] = '\0';
		if (k->m->suspect != HA_SUSPECT_NONE)
			LOGI(k, "primary-ok", "primary=%s after=\"%s\"", p.name,
			     ha_suspicion_name(k->m->suspect));
		k->m->suspect = HA_SUSPECT_NONE;
		return;
	}
	if (kind != k->m->suspect) {
		k->m->suspect = kind;
		k->m->suspect_since_ms = now;
		LOGW(k, "primary-suspect", "primary=%s kind=%s why=\"%s\"", p.name,
		     ha_suspicion_name(kind), why);
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
	    k->unix_ms - last->done_ms < k->cfg->cooldown_ms && kind == HA_SUSPECT_DB_HUNG)
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
	co_run_hook(k, HA_CORE_HOOK_PRE_FAILOVER, p.name, why, NULL);
	uint8_t *buf;
	size_t len;
	struct ha_fo_begin b = {.expected_epoch = st->epoch,
	                        .old_primary = st->primary_id,
	                        .reason = why,
	                        .unix_ms = k->unix_ms};
	if (ha_fsm_cmd_failover_begin(&b, k->in->alloc, &buf, &len) == 0)
		co_propose(k, buf, len, "failover-begin");
}

/* ---- failover phases ---- */

void co_advance(struct ha_core *k, const struct ha_fo_advance *adv)
{
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_failover_advance(adv, k->in->alloc, &buf, &len) == 0 &&
	    co_propose(k, buf, len, "failover-advance") == 0)
		k->out->cmd_fo_id = adv->id;
}

void co_set_wait(struct ha_core *k, const struct ha_failover *f, const char *why)
{
	if (strcmp(why, k->m->wait) != 0) {
		snprintf(k->m->wait, sizeof(k->m->wait), "%s", why);
		if (why[0])
			LOGW(k, "failover-waiting", "failover=%llu why=\"%s\"",
			     (unsigned long long)f->id, why);
	}
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
		co_set_wait(k, f, "");
	}
	/* A step the state machine refused is a bug: say it (an event), roll a switchover back,
	 * and hold a failover's steps for a while rather than proposing them again in a loop. */
	if (k->m->refused_fo_id == f->id) {
		k->m->refused_fo_id = 0;
		const char *what = "a coordinator decision was refused by the replicated state "
		                   "machine (a bug: see fsm-reject in the agents' logs)";
		if (f->planned && f->phase < HA_FO_PROMOTING) {
			co_roll_back(k, f, what);
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
	switch (f->phase) {
	case HA_FO_BEGIN:
		co_phase_begin(k, st, f, late);
		return;
	case HA_FO_FENCED:
		if (f->planned)
			co_switchover_fenced(k, st, f, late);
		else
			co_phase_fenced(k, st, f);
		return;
	case HA_FO_PROMOTING:
		co_phase_promoting(k, st, f);
		return;
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
			co_propose(k, buf, len, "node-diverged");
			return true;
		}
	}
	return false;
}

/* ---- the primary writable at its epoch: recorded once (node/decide.c holds a server found
 * read-only at that epoch afterwards: it restarted) ---- */

static bool record_writable(struct ha_core *k, const struct ha_fsm_state *st)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, st->primary_id, &fresh);
	if (st->primary_id == 0 || st->primary_writable_epoch == st->epoch || !h || !fresh ||
	    h->writable_epoch != st->epoch || h->read_only)
		return false;
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_primary_writable(st->epoch, st->primary_id, k->in->alloc, &buf, &len) != 0)
		return false;
	return co_propose(k, buf, len, "primary-writable") == 0;
}

/* ---- a database its agent cannot use: an event, once per episode ---- */

static bool say_unusable(struct ha_core *k, const struct ha_fsm_state *st)
{
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		int j = co_node_index(k->cfg, m->id);
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
	unsigned reachable = ha_core_reporting(k->in, k->cfg->agent_timeout_ms);
	unsigned voters = ha_core_voters(k->in);
	if (reachable * 2 <= voters)
		BLOCK("no quorum: only %u of %u agents reachable", reachable, voters);
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
		if (out->cmd == NULL)
			co_backups(k, st); /* abandons a job whose node is involved */
		return;
	}
	if (record_divergence(k, st) || co_rejoin_events(k, st) || say_unusable(k, st) ||
	    record_writable(k, st))
		return;
	if (st->primary_id != 0)
		detect(k, st);
	if (out->cmd == NULL)
		co_backups(k, st);
}
