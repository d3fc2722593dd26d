/* The coordinator: duties of the ready raft leader. It writes decisions into the raft log; the
 * agents carry them out (reconcile.c). Its own state is soft: a new leader rebuilds it from the
 * replicated state and fresh reports, so a coordinator crash in the middle of a failover is
 * survivable — the next one continues from the recorded phase.
 *
 * Failover, happy path (each step one idempotent raft command):
 *   1. detect: the three views agree that the primary failed (failover.c), outside tilt;
 *   2. begin: epoch+1, no primary. The old primary's agent sees it and fences its server;
 *   3. fenced: its agent confirms (read_only on, or mariadbd gone, at the new epoch), or its write
 *      lease has surely run out, or the fence hook succeeded;
 *   4. promoting: once the replicas applied their relay logs (bounded wait), the most advanced
 *      eligible one is recorded as primary; its agent stops replication and turns writable, the
 *      other agents repoint to it;
 *   5. done: the new primary reports itself writable at the new epoch.
 *
 * A planned switchover (admin.c starts it) takes the same steps with a chosen target and
 * stricter rules: only the old primary's own fence counts, with its final binlog position; the
 * target is promoted only once it has applied up to that position (zero loss); and if either
 * does not happen within the switchover's timeout the old primary is handed back its role
 * (ABORTED), since no other node was promoted. */
#include <stdio.h>
#include <string.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/gtid.h"
#include "common/log.h"
#include "failover.h"
#include "hooks.h"
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

/* A candidate that has applied all it received, and received nothing more for this long,
 * will not get the rest of what it claimed when chosen (coordinator: PROMOTING). */
#define RELAY_DRAINED_MS 5000

static void set_note(struct ha_agent *a, const char *note)
{
	if (strcmp(a->note, note) != 0) {
		snprintf(a->note, sizeof(a->note), "%s", note);
		if (note[0])
			ha_warn("bootstrap-waiting", "reason=\"%s\"", note);
	}
}

void ha_coord_reset(struct ha_agent *a)
{
	if (a->co.ready_since_ms == 0)
		return;
	memset(&a->co, 0, sizeof(a->co));
}

static const Haagent__Health *health_of(struct ha_agent *a, uint32_t id, bool *fresh)
{
	int i = ha_agent_node_index(a, id);
	*fresh = ha_agent_fresh(a, i);
	if (i < 0 || a->health[i].report == NULL)
		return NULL;
	return a->health[i].report->health;
}

static void propose_event(struct ha_agent *a, const char *name, const char *node,
                          const char *detail)
{
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_event(name, node, detail, ha_unix_ms(), raft_malloc, &buf, &len) == 0)
		ha_agent_propose(a, buf, len);
}

/* ---- bootstrap ---- */

static void init_members(struct ha_agent *a)
{
	struct ha_member m[HA_MAX_NODES];
	memset(m, 0, sizeof(m));
	for (unsigned i = 0; i < a->cfg.n_nodes; i++) {
		const struct ha_node_conf *n = &a->cfg.nodes[i];
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
	if (ha_fsm_cmd_init_members(a->cfg.cluster, m, a->cfg.n_nodes, raft_malloc, &buf, &len) ==
	    0) {
		ha_info("init-members", "cluster=%s members=%u", a->cfg.cluster, a->cfg.n_nodes);
		ha_agent_propose(a, buf, len);
	}
}

static void bootstrap_primary(struct ha_agent *a, const struct ha_fsm_state *st)
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
		const Haagent__Health *h = health_of(a, m->id, &fresh);
		if (h && fresh) {
			v->reported = true;
			v->db_up = h->db == HAAGENT__DB_STATE__DB_UP;
			v->replicating = h->replicating;
			v->master_host = h->master_host;
			v->master_port = h->master_port;
		}
	}
	bool may_use_majority = ha_now_ms() - a->co.ready_since_ms >= BOOTSTRAP_WAIT_ALL_MS;
	char why[1024];
	uint32_t primary =
	    ha_topo_find_primary(view, st->n_members, may_use_majority, why, sizeof(why));
	if (primary == 0) {
		set_note(a, why);
		return;
	}
	set_note(a, "");
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_set_primary(0, primary, why, raft_malloc, &buf, &len) == 0) {
		ha_info("bootstrap-primary", "primary=%u reason=\"%s\"", primary, why);
		ha_agent_propose(a, buf, len);
	}
}

/* ---- views for failover.c ---- */

size_t ha_coord_view(struct ha_agent *a, const struct ha_fsm_state *st, uint32_t primary,
                     struct ha_fo_node *out, bool replicas_of_primary_only)
{
	size_t n = 0;
	const struct ha_member *p = ha_fsm_member(st, primary);
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		if (m->id == primary)
			continue;
		bool fresh;
		const Haagent__Health *h = health_of(a, m->id, &fresh);
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

void ha_coord_primary_view(struct ha_agent *a, const struct ha_fsm_state *st, uint32_t id,
                           struct ha_fo_node *v)
{
	const struct ha_member *m = ha_fsm_member(st, id);
	bool fresh;
	const Haagent__Health *h = health_of(a, id, &fresh);
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

void ha_coord_node_view(struct ha_agent *a, const struct ha_fsm_state *st, uint32_t id,
                        struct ha_fo_node *v)
{
	struct ha_fo_node all[HA_FSM_MAX_MEMBERS];
	size_t n = ha_coord_view(a, st, 0, all, false);
	memset(v, 0, sizeof(*v));
	v->gtid_current = v->gtid_io_pos = v->db_error = v->last_error = v->sql_error = "";
	for (size_t i = 0; i < n; i++)
		if (all[i].id == id)
			*v = all[i];
}

/* ---- detection ---- */

static void hook_pre_failover(struct ha_agent *a, const char *old, const char *reason)
{
	char e1[96], e2[600];
	snprintf(e1, sizeof(e1), "HAAGENT_OLD_PRIMARY=%s", old);
	snprintf(e2, sizeof(e2), "HAAGENT_REASON=%s", reason);
	const char *args[] = {old, reason, NULL};
	const char *env[] = {e1, e2, NULL};
	ha_hook_run(a->loop, "pre_failover", a->cfg.hook_pre_failover, args, env, NULL, NULL);
}

static void detect(struct ha_agent *a, const struct ha_fsm_state *st)
{
	uint64_t now = ha_now_ms();
	struct ha_fo_node p, reps[HA_FSM_MAX_MEMBERS];
	ha_coord_primary_view(a, st, st->primary_id, &p);
	size_t n = ha_coord_view(a, st, st->primary_id, reps, false);
	struct ha_fo_conf fc = {.confirm_ms = a->cfg.confirm_ms,
	                        .hang_timeout_ms = a->cfg.hang_timeout_ms,
	                        .stream_timeout_ms = a->cfg.stream_timeout_ms};
	/* The suspicion clock: the same kind of suspicion, continuously. A primary whose agent has
	 * not reported since this leader took over counts from then. */
	const char *kind;
	char why[512];
	uint64_t for_ms = a->co.suspect_kind[0] ? now - a->co.suspect_since_ms : 0;
	enum ha_verdict v = ha_fo_judge(&p, reps, n, &fc, for_ms, &kind, why, sizeof(why));
	if (v == HA_PRIMARY_OK) {
		a->co.held[0] = '\0';
		if (a->co.suspect_kind[0])
			ha_info("primary-ok", "primary=%s after=\"%s\"", p.name,
			        a->co.suspect_kind);
		a->co.suspect_kind[0] = '\0';
		return;
	}
	if (strcmp(kind, a->co.suspect_kind) != 0) {
		snprintf(a->co.suspect_kind, sizeof(a->co.suspect_kind), "%s", kind);
		a->co.suspect_since_ms = now;
		ha_warn("primary-suspect", "primary=%s kind=%s why=\"%s\"", p.name, kind, why);
		/* judge again with the clock started (confirm_ms may be 0) */
		v = ha_fo_judge(&p, reps, n, &fc, 0, &kind, why, sizeof(why));
	}
	snprintf(a->co.last_why, sizeof(a->co.last_why), "%s", why);
	if (v != HA_PRIMARY_FAILED)
		return;
	const char *held = NULL;
	if (!a->cfg.auto_failover)
		held = "failover-held-disabled";
	else if (st->paused)
		held = "failover-held-paused";
	else if (now < a->co.tilt_until_ms)
		held = "failover-held-tilt";
	/* Anti-flapping: within cooldown_ms of the last failover, only strong evidence acts. */
	const struct ha_failover *last = &st->failover;
	if (!held && last->id && last->done_ms &&
	    ha_unix_ms() - last->done_ms < a->cfg.cooldown_ms && !strcmp(kind, "db-hung"))
		held = "failover-held-cooldown";
	if (held) {
		/* a named event once per suspicion, then quiet */
		if (strcmp(a->co.held, held) != 0) {
			snprintf(a->co.held, sizeof(a->co.held), "%s", held);
			ha_warn(held, "primary=%s why=\"%s\"", p.name, why);
			propose_event(a, held, p.name, why);
		}
		return;
	}
	ha_warn("failover-confirmed", "primary=%s why=\"%s\"", p.name, why);
	hook_pre_failover(a, p.name, why);
	uint8_t *buf;
	size_t len;
	struct ha_fo_begin b = {.expected_epoch = st->epoch,
	                        .old_primary = st->primary_id,
	                        .reason = why,
	                        .unix_ms = ha_unix_ms()};
	if (ha_fsm_cmd_failover_begin(&b, raft_malloc, &buf, &len) == 0)
		ha_agent_propose(a, buf, len);
}

/* ---- failover phases ---- */

static void advance(struct ha_agent *a, const struct ha_fo_advance *adv)
{
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_failover_advance(adv, raft_malloc, &buf, &len) == 0 &&
	    ha_agent_propose(a, buf, len) == 0)
		a->co.proposed_fo_id = adv->id;
}

static void fence_hook_done(void *data, int status)
{
	struct ha_agent *a = data;
	a->co.fence_hook_running = false;
	a->co.fence_hook_result = status;
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
static const char *fenced_by(struct ha_agent *a, const struct ha_fsm_state *st,
                             const struct ha_failover *f, char *buf, size_t size, char *waiting,
                             size_t wsize)
{
	bool fresh;
	const Haagent__Health *h = health_of(a, f->old_primary, &fresh);
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
	if (at_epoch && h->db == HAAGENT__DB_STATE__DB_DOWN) {
		snprintf(buf, size, "own agent: nothing listens on its port%s",
		         h->escalated_epoch >= f->epoch ? " (its agent stopped it)" : "");
		return buf;
	}
	/* The lease: the old primary stays writable only while acked by a ready leader (or,
	 * leading, while it hears from a majority). This leader's last ack to it, or its own start,
	 * plus the lease, plus an election timeout for a deposed leader that might still have acked
	 * it. Not when the old primary is this very node: its lease holds while it leads, and its
	 * own agent (this process) fences it or says why it cannot. */
	if (f->old_primary == a->self->id) {
		snprintf(
		    waiting, wsize,
		    "waiting for %s (this coordinator's own node) to fence its database (%s%s%s)",
		    name, h ? ha_db_state_name((enum ha_db_state)h->db) : "no sample",
		    h && h->escalation && h->escalation[0] ? "; " : "",
		    h && h->escalation ? h->escalation : "");
		return NULL;
	}
	int i = ha_agent_node_index(a, f->old_primary);
	uint64_t last = a->co.ready_since_ms;
	if (i >= 0 && a->health[i].last_ack_sent_ms > last)
		last = a->health[i].last_ack_sent_ms;
	uint64_t wait = a->cfg.lease_ms + ha_raft_election_timeout(a->raft) + LEASE_MARGIN_MS;
	/* An old primary whose agent last saw its database hung or unusable cannot fence it
	 * through SQL when its lease runs out: it stops it, fence_escalate_ms later, and kills it
	 * ESC_STOP_WAIT_MS after that. Only then is its lease's end a proof; without escalation,
	 * never. */
	bool blind =
	    h && (h->db == HAAGENT__DB_STATE__DB_HUNG || h->db == HAAGENT__DB_STATE__DB_UNUSABLE);
	if (blind)
		wait += a->cfg.fence_escalate_ms + HA_FENCE_STOP_WAIT_MS + LEASE_MARGIN_MS;
	uint64_t since = ha_now_ms() - last;
	bool expired = since >= wait && !(blind && a->cfg.fence_escalate_ms == 0);
	if (expired && !a->cfg.hook_fence[0]) {
		snprintf(buf, size, "write lease expired (%llu ms without contact)",
		         (unsigned long long)since);
		return buf;
	}
	/* The hook (STONITH): at once when the agent is silent, else once its own escalation had
	 * its chance. */
	bool hook_now = !fresh || ha_now_ms() - a->co.phase_seen_ms >=
	                              a->cfg.fence_escalate_ms + FENCE_HOOK_AFTER_MS;
	if (a->cfg.hook_fence[0] && hook_now) {
		/* once per failover, and again every FENCE_HOOK_RETRY_MS while it fails */
		bool retry = !a->co.fence_hook_running && a->co.fence_hook_result != 0 &&
		             ha_now_ms() - a->co.fence_hook_ran_ms >= FENCE_HOOK_RETRY_MS;
		if (a->co.fence_hook_failover != f->id || retry) {
			a->co.fence_hook_ran_ms = ha_now_ms();
			const char *args[] = {name, m ? m->address : "", NULL};
			a->co.fence_hook_failover = f->id;
			a->co.fence_hook_result = -2;
			if (ha_hook_run(a->loop, "fence", a->cfg.hook_fence, args, NULL,
			                fence_hook_done, a) == 0)
				a->co.fence_hook_running = true;
		}
		if (!a->co.fence_hook_running && a->co.fence_hook_result == 0) {
			snprintf(buf, size, "fence hook succeeded");
			return buf;
		}
	}
	if (!fresh)
		snprintf(waiting, wsize,
		         "waiting for %s to be fenced: its agent is unreachable; %s", name,
		         a->cfg.hook_fence[0] ? (a->co.fence_hook_running
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
		    a->cfg.hook_fence[0] ? ""
		                         : "; configure [agent] db_pid_file and "
		                           "db_stop_command, or a fence hook");
	return NULL;
}

/* Rolls a planned switchover back before promotion: the old primary is the primary again. */
static void roll_back(struct ha_agent *a, const struct ha_failover *f, const char *why)
{
	ha_warn("switchover-rollback", "failover=%llu why=\"%s\"", (unsigned long long)f->id, why);
	struct ha_fo_advance adv = {.id = f->id,
	                            .phase = HA_FO_ABORTED,
	                            .candidate = f->old_primary,
	                            .unix_ms = ha_unix_ms(),
	                            .detail = why};
	advance(a, &adv);
}

/* Planned switchover, FENCED: promote the target once it applied the old primary's final
 * position; roll back when it cannot. */
static void switchover_fenced(struct ha_agent *a, const struct ha_fsm_state *st,
                              const struct ha_failover *f, bool late)
{
	const struct ha_member *t = ha_fsm_member(st, f->target);
	bool fresh;
	const Haagent__Health *h = health_of(a, f->target, &fresh);
	char why[HA_FSM_TEXT_MAX];
	const char *name = t ? t->name : "?";
	if (t == NULL || (t->flags & (HA_MEMBER_DIVERGED | HA_MEMBER_MAINTENANCE))) {
		snprintf(why, sizeof(why), "target %s became %s", name,
		         t && (t->flags & HA_MEMBER_DIVERGED) ? "diverged" : "unavailable");
		roll_back(a, f, why);
		return;
	}
	if (h && fresh && h->db != HAAGENT__DB_STATE__DB_UP) {
		snprintf(why, sizeof(why), "target %s: database %s", name,
		         h->db == HAAGENT__DB_STATE__DB_HUNG ? "hung" : "down");
		roll_back(a, f, why);
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
			roll_back(a, f, why);
		}
		return;
	}
	char brief[HA_GTID_BRIEF_MAX];
	snprintf(why, sizeof(why), "switchover: %s applied everything up to %s", name,
	         f->fenced_gtid[0] ? ha_gtid_brief(f->fenced_gtid, brief) : "(empty)");
	ha_info("candidate-chosen", "failover=%llu candidate=%s why=\"%s\" lost=0",
	        (unsigned long long)f->id, name, why);
	struct ha_fo_advance adv = {.id = f->id,
	                            .phase = HA_FO_PROMOTING,
	                            .candidate = f->target,
	                            .unix_ms = ha_unix_ms(),
	                            .detail = why};
	advance(a, &adv);
}

static void set_wait(struct ha_agent *a, const struct ha_failover *f, const char *why)
{
	if (strcmp(why, a->co.wait) != 0) {
		snprintf(a->co.wait, sizeof(a->co.wait), "%s", why);
		if (why[0])
			ha_warn("failover-waiting", "failover=%llu why=\"%s\"",
			        (unsigned long long)f->id, why);
	}
}

/* Merges the position in text into *into (ignored when it does not parse or the union would
 * exceed the domain bound: the accounting then errs towards "lost 0", which the log says). */
static void merge_text(struct ha_gtid_pos *into, const char *text)
{
	struct ha_gtid_pos p;
	if (text && text[0] && ha_gtid_parse(text, &p, NULL) == 0 &&
	    ha_gtid_merge(into, &p, into) != 0)
		ha_warn("gtid-merge-overflow", "position=%s", text);
}

/* Everything a failover owes: the old primary's last reported position, what a superseded
 * failover's candidate was to apply, and what every node in nodes[] received. */
static void owed_position(struct ha_agent *a, const struct ha_failover *f,
                          const struct ha_fo_node *nodes, size_t n, struct ha_gtid_pos *want)
{
	memset(want, 0, sizeof(*want));
	int oi = ha_agent_node_index(a, f->old_primary);
	if (oi >= 0)
		merge_text(want, a->health[oi].last_binlog);
	merge_text(want, f->owed_gtid);
	merge_text(want, f->received_gtid);
	for (size_t i = 0; i < n; i++) {
		struct ha_gtid_pos r;
		if (nodes[i].fresh && nodes[i].db == HAAGENT__DB_STATE__DB_UP &&
		    ha_fo_received(&nodes[i], &r) == 0 && ha_gtid_merge(want, &r, want) != 0)
			ha_warn("gtid-merge-overflow", "node=%s", nodes[i].name);
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
uint64_t ha_coord_loss_if_now(struct ha_agent *a, const struct ha_fsm_state *st, char *lost,
                              size_t size)
{
	const struct ha_failover *f = &st->failover;
	struct ha_fo_node all[HA_FSM_MAX_MEMBERS];
	size_t n = ha_coord_view(a, st, f->old_primary, all, false);
	struct ha_gtid_pos want, cur;
	lost[0] = '\0';
	owed_position(a, f, all, n, &want);
	struct ha_fo_node c;
	ha_coord_node_view(a, st, f->candidate, &c);
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
static const char *candidate_failed(struct ha_agent *a, const struct ha_failover *f,
                                    const char *name, char *why, size_t size)
{
	bool fresh;
	const Haagent__Health *h = health_of(a, f->candidate, &fresh);
	uint64_t now = ha_now_ms();
	int kind = !fresh                                    ? 1
	           : !h                                      ? 0
	           : h->db == HAAGENT__DB_STATE__DB_DOWN     ? 2
	           : h->db == HAAGENT__DB_STATE__DB_HUNG     ? 3
	           : h->db == HAAGENT__DB_STATE__DB_UNUSABLE ? 4
	                                                     : 0;
	if (kind != a->co.cand_kind) {
		a->co.cand_kind = kind;
		a->co.cand_since_ms = now;
	}
	if (kind == 0)
		return NULL;
	uint64_t for_ms = now - a->co.cand_since_ms;
	uint64_t need = kind == 1   ? 2 * (uint64_t)a->cfg.agent_timeout_ms
	                : kind == 2 ? a->cfg.confirm_ms
	                            : a->cfg.hang_timeout_ms;
	if (for_ms < need)
		return NULL;
	snprintf(why, size, "candidate %s failed while promoting: %s for %llu ms", name,
	         kind == 1   ? "its agent is unreachable"
	         : kind == 2 ? "mariadbd down"
	         : kind == 3 ? "mariadbd hung"
	                     : "its agent cannot use its database",
	         (unsigned long long)for_ms);
	return why;
}

/* The bounded exit of PROMOTING: a new failover whose old primary is the failed candidate (the
 * FSM supersedes the current one). */
static void supersede(struct ha_agent *a, const struct ha_fsm_state *st,
                      const struct ha_failover *f, const char *event, const char *why)
{
	struct ha_fo_begin b = {.expected_epoch = st->epoch,
	                        .old_primary = f->candidate,
	                        .reason = why,
	                        .unix_ms = ha_unix_ms()};
	uint8_t *buf;
	size_t len;
	ha_warn(event, "failover=%llu why=\"%s\"", (unsigned long long)f->id, why);
	if (ha_fsm_cmd_failover_begin(&b, raft_malloc, &buf, &len) == 0)
		ha_agent_propose(a, buf, len);
}

/* PROMOTING: the candidate stops applying its relay log; lost is what is given up at most. */
static void give_up(struct ha_agent *a, const struct ha_failover *f, const char *lost,
                    uint64_t count, const char *why)
{
	struct ha_fo_advance acc = {.id = f->id,
	                            .phase = HA_FO_PROMOTING,
	                            .accept_loss = true,
	                            .lost_gtid = lost,
	                            .lost_count = count,
	                            .unix_ms = ha_unix_ms(),
	                            .detail = why};
	advance(a, &acc);
}

/* The candidate's relay log is exhausted short of what it claimed. When another node has
 * received something the candidate has not applied, a new failover replaces the candidate
 * (proposed here, true); otherwise false, with why saying that nobody has the rest. */
static bool shortfall(struct ha_agent *a, const struct ha_fsm_state *st,
                      const struct ha_failover *f, const struct ha_fo_node *c, char *why,
                      size_t size)
{
	struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
	size_t n = ha_coord_view(a, st, f->old_primary, nodes, false);
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
		supersede(a, st, f, "failover-relay-short", why);
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
static bool relay_pending(const struct ha_failover *f, const struct ha_fo_node *c)
{
	struct ha_gtid_pos cur, want;
	if (ha_gtid_parse(c->gtid_current, &cur, NULL) || ha_fo_received(c, &want))
		return true;
	merge_text(&want, f->received_gtid);
	return !ha_gtid_contains(&cur, &want);
}

/* Should the old primary's agent salvage what its binlog holds (db/salvage.h)? Its mariadbd
 * is gone (reported down at this failover's epoch) but its agent reports: it can read the
 * local binlog. Unplanned failovers only (a switchover's old primary hands over everything). */
static bool salvage_possible(struct ha_agent *a, const struct ha_failover *f)
{
	bool fresh;
	const Haagent__Health *h = health_of(a, f->old_primary, &fresh);
	return a->cfg.salvage && !f->planned && !f->accept_loss && h && fresh &&
	       h->epoch_seen >= f->epoch && h->db == HAAGENT__DB_STATE__DB_DOWN;
}

/* PROMOTING with salvage WANTED: records the outcome when the old primary's agent reported
 * one, or gives up on it (silent agent, no outcome in time). Returns true when it proposed. */
static bool salvage_outcome(struct ha_agent *a, const struct ha_fsm_state *st,
                            const struct ha_failover *f, char *wait, size_t wait_size)
{
	bool fresh;
	const Haagent__Health *h = health_of(a, f->old_primary, &fresh);
	const struct ha_member *o = ha_fsm_member(st, f->old_primary);
	const char *oname = o ? o->name : "?";
	uint64_t now = ha_now_ms();
	uint64_t bound = (uint64_t)a->cfg.salvage_timeout_ms + 2ull * a->cfg.agent_timeout_ms;
	struct ha_fo_advance adv = {.id = f->id, .phase = HA_FO_PROMOTING, .unix_ms = ha_unix_ms()};
	char detail[512];
	if (h && fresh && h->salvage_fo_id == f->id && h->salvage_state >= HA_SALVAGE_RUN_DONE) {
		/* what is lost now: what the failover owes less what the candidate received and
		 * what the salvage applied */
		struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
		size_t n = ha_coord_view(a, st, f->old_primary, nodes, false);
		struct ha_gtid_pos want, keeps;
		char lost[HA_FSM_GTID_MAX] = "";
		owed_position(a, f, nodes, n, &want);
		memset(&keeps, 0, sizeof(keeps));
		merge_text(&keeps, f->received_gtid);
		merge_text(&keeps, h->salvaged_gtid);
		adv.lost_count = missing_text(&want, &keeps, lost, sizeof(lost));
		adv.lost_gtid = lost;
		adv.salvage =
		    h->salvage_state == HA_SALVAGE_RUN_DONE ? HA_SALVAGE_DONE : HA_SALVAGE_FAILED;
		adv.salvaged_gtid = h->salvaged_gtid;
		adv.salvaged_count = h->salvaged_count;
		snprintf(detail, sizeof(detail), "from %s's binlog: %s", oname,
		         h->salvage_detail ? h->salvage_detail : "");
		adv.detail = detail;
		ha_info("failover-salvage", "failover=%llu count=%llu detail=\"%s\"",
		        (unsigned long long)f->id, (unsigned long long)h->salvaged_count, detail);
		advance(a, &adv);
		return true;
	}
	/* silence counts only after twice agent_timeout_ms under this leader: a new leader has
	 * no report from anyone at first */
	bool silent = !fresh && now - a->co.phase_seen_ms >= 2ull * a->cfg.agent_timeout_ms;
	if (silent || now - a->co.phase_seen_ms >= bound) {
		snprintf(detail, sizeof(detail),
		         "no salvage from %s's binlog: %s; the new primary takes writes without it",
		         oname,
		         silent ? "its agent stopped reporting"
		                : "no outcome within the salvage bound");
		adv.salvage = HA_SALVAGE_FAILED;
		adv.detail = detail;
		adv.lost_gtid = f->lost_gtid;
		adv.lost_count = f->lost_count;
		ha_warn("failover-salvage-failed", "failover=%llu why=\"%s\"",
		        (unsigned long long)f->id, detail);
		advance(a, &adv);
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
static const char *estimate(struct ha_agent *a, uint64_t left, uint64_t now)
{
	static char out[64];
	if (a->co.apply_left_ms == 0 || left > a->co.apply_left) {
		a->co.apply_left = left;
		a->co.apply_left_ms = now;
		a->co.apply_rate = 0;
	} else if (now - a->co.apply_left_ms >= 1000) {
		double rate = (double)(a->co.apply_left - left) * 1000.0 /
		              (double)(now - a->co.apply_left_ms);
		a->co.apply_rate =
		    a->co.apply_rate > 0 ? 0.7 * a->co.apply_rate + 0.3 * rate : rate;
		a->co.apply_left = left;
		a->co.apply_left_ms = now;
	}
	if (a->co.apply_rate < 0.01) {
		out[0] = '\0';
		return out;
	}
	snprintf(out, sizeof(out), "; about %.0f s at %.0f/s", (double)left / a->co.apply_rate,
	         a->co.apply_rate);
	return out;
}

static void run_failover(struct ha_agent *a, const struct ha_fsm_state *st)
{
	const struct ha_failover *f = &st->failover;
	uint64_t now = ha_now_ms();
	if (a->co.phase_seen_id != f->id || a->co.phase_seen != f->phase) {
		if (a->co.phase_seen_id != f->id)
			a->co.first_seen_ms = now;
		a->co.phase_seen_id = f->id;
		a->co.phase_seen = f->phase;
		a->co.phase_seen_ms = now;
		a->co.cand_kind = 0;
		a->co.cand_since_ms = now;
		a->co.apply_left_ms = 0;
		a->co.drained_since_ms = 0;
		set_wait(a, f, "");
	}
	/* A step the state machine refused is a bug: say it (an event), roll a switchover back,
	 * and hold a failover's steps for a while rather than proposing them again in a loop. */
	if (a->co.refused_fo_id == f->id) {
		a->co.refused_fo_id = 0;
		const char *what = "a coordinator decision was refused by the replicated state "
		                   "machine (a bug: see fsm-reject in the agents' logs)";
		if (f->planned && f->phase < HA_FO_PROMOTING) {
			roll_back(a, f, what);
			return;
		}
		if (a->co.refused_said_id != f->id) {
			a->co.refused_said_id = f->id;
			propose_event(a, "coordinator-step-refused", "", what);
			return;
		}
	}
	if (now < a->co.hold_until_ms)
		return;
	/* a switchover's budget, counted from when this leader first saw it */
	bool late = f->planned && now - a->co.first_seen_ms >= f->timeout_ms;
	struct ha_fo_advance adv = {.id = f->id, .unix_ms = ha_unix_ms()};
	char buf[256], wait[1024] = "";
	switch (f->phase) {
	case HA_FO_BEGIN: {
		const char *how = fenced_by(a, st, f, buf, sizeof(buf), wait, sizeof(wait));
		if (how == NULL && f->planned) {
			const struct ha_member *o = ha_fsm_member(st, f->old_primary);
			bool fresh;
			const Haagent__Health *h = health_of(a, f->old_primary, &fresh);
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
				set_wait(a, f, wait);
				return;
			}
			roll_back(a, f, why);
			return;
		}
		if (how == NULL) {
			set_wait(a, f, wait);
			return;
		}
		ha_info("old-primary-fenced", "failover=%llu how=\"%s\"", (unsigned long long)f->id,
		        how);
		adv.phase = HA_FO_FENCED;
		adv.fenced_by = how;
		bool fresh;
		const Haagent__Health *h = health_of(a, f->old_primary, &fresh);
		if (h && h->fenced_epoch >= f->epoch)
			adv.fenced_gtid = h->fenced_gtid;
		advance(a, &adv);
		return;
	}
	case HA_FO_FENCED: {
		if (f->planned) {
			switchover_fenced(a, st, f, late);
			return;
		}
		struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
		size_t n = ha_coord_view(a, st, f->old_primary, nodes, false);
		/* only reports taken at the new epoch count: they were sampled after the fence */
		for (size_t i = 0; i < n; i++) {
			bool fresh;
			const Haagent__Health *h = health_of(a, nodes[i].id, &fresh);
			if (h && h->epoch_seen < f->epoch)
				nodes[i].fresh = false;
		}
		/* Ranked by what each received: the candidate applies its whole relay log before it
		 * turns writable (reconcile.c), so nothing is waited for here but the reports. */
		char why[1024];
		int best = ha_fo_choose(nodes, n, false, why, sizeof(why));
		/* No acknowledged write may be lost: an acknowledged transaction is on at least one
		 * replica, not necessarily an eligible one. Wait for a candidate that has received
		 * what every reporting node has received, however long, unless an operator accepts
		 * the loss; and for every replica whose position cannot be read now, at most
		 * apply_timeout_ms. */
		bool waited = now - a->co.phase_seen_ms >= a->cfg.apply_timeout_ms;
		if (best >= 0 && !f->accept_loss) {
			bool known;
			const char *unsafe = ha_fo_unsafe(nodes, n, best, why, sizeof(why), &known);
			if (unsafe && (known || !waited))
				best = -1;
		}
		if (best < 0) {
			/* nobody eligible, or waiting for positions: keep waiting, say why */
			set_wait(a, f, why);
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
			owed_position(a, f, nodes, n, &want);
			/* with the loss accepted the candidate does not apply its relay log either:
			 * what it keeps is what it applied (DONE counts against its final position)
			 */
			if (f->accept_loss)
				ha_gtid_parse(nodes[best].gtid_current, &keeps, NULL);
			lost_count = missing_text(&want, &keeps, lost, sizeof(lost));
		}
		ha_info("candidate-chosen", "failover=%llu candidate=%s why=\"%s\" lost=%llu",
		        (unsigned long long)f->id, nodes[best].name, why,
		        (unsigned long long)lost_count);
		adv.phase = HA_FO_PROMOTING;
		adv.candidate = nodes[best].id;
		adv.received_gtid = received;
		if (salvage_possible(a, f))
			adv.salvage = HA_SALVAGE_WANTED;
		adv.lost_gtid = lost;
		adv.lost_count = lost_count;
		adv.detail = why;
		advance(a, &adv);
		return;
	}
	case HA_FO_PROMOTING: {
		bool fresh;
		const Haagent__Health *h = health_of(a, f->candidate, &fresh);
		const struct ha_member *o = ha_fsm_member(st, f->old_primary);
		const struct ha_member *c = ha_fsm_member(st, f->candidate);
		const char *cname = c ? c->name : "?";
		if (!h || h->writable_epoch != f->epoch) {
			char why[512];
			/* the bounded exit: a candidate that dies is replaced by a new failover (a
			 * switchover's target too: the old primary is fenced by now) */
			if (candidate_failed(a, f, cname, why, sizeof(why))) {
				supersede(a, st, f, "failover-candidate-failed", why);
				return;
			}
			char salvage_wait[700] = "";
			if (f->salvage == HA_SALVAGE_WANTED && !f->accept_loss &&
			    salvage_outcome(a, st, f, salvage_wait, sizeof(salvage_wait)))
				return;
			/* the relay log: wait, however long, unless a ceiling or an operator says
			 * not */
			struct ha_fo_node cv;
			char b1[HA_GTID_BRIEF_MAX], b2[HA_GTID_BRIEF_MAX];
			ha_coord_node_view(a, st, f->candidate, &cv);
			if (h && fresh && !f->accept_loss && relay_pending(f, &cv)) {
				char lost[HA_FSM_GTID_MAX];
				uint64_t left = ha_coord_loss_if_now(a, st, lost, sizeof(lost));
				/* Its relay log ended short of what it claimed when chosen: another
				 * node that has more takes over (a new failover); when none has,
				 * what is missing is gone, and it is recorded as lost rather than
				 * waited for forever. */
				/* ...or everything it received is applied, for RELAY_DRAINED_MS,
				 * while its IO thread still runs: connected to a restarted old
				 * primary whose crash recovery dropped what the candidate had
				 * claimed, it streams nothing more, and waiting on would never end
				 */
				bool drained = relay_drained(&cv);
				if (!drained)
					a->co.drained_since_ms = 0;
				else if (a->co.drained_since_ms == 0)
					a->co.drained_since_ms = now;
				bool exhausted =
				    cv.relay_exhausted ||
				    (drained && now - a->co.drained_since_ms >= RELAY_DRAINED_MS);
				if (exhausted && !f->planned) {
					if (shortfall(a, st, f, &cv, why, sizeof(why)))
						return;
					ha_warn("failover-relay-short", "failover=%llu why=\"%s\"",
					        (unsigned long long)f->id, why);
					give_up(a, f, lost, left, why);
					return;
				}
				if (a->cfg.max_apply_wait_ms &&
				    now - a->co.phase_seen_ms >= a->cfg.max_apply_wait_ms) {
					snprintf(
					    why, sizeof(why),
					    "max_apply_wait_ms (%u) reached: %s stops applying its "
					    "relay log, up to %llu transactions given up",
					    a->cfg.max_apply_wait_ms, cname,
					    (unsigned long long)left);
					give_up(a, f, lost, left, why);
					return;
				}
				if (cv.replicating && !cv.sql_running && cv.sql_error[0])
					snprintf(
					    why, sizeof(why),
					    "%s cannot apply its relay log: its SQL thread stopped "
					    "on an error (%s); %llu transactions to go: fix it, or "
					    "give them up with haadm failover --accept-loss",
					    cname, cv.sql_error, (unsigned long long)left);
				else
					snprintf(
					    why, sizeof(why),
					    "%s applies its relay log before taking writes: %llu "
					    "transactions to go%s (applied %s, received %s%s); "
					    "haadm "
					    "failover --accept-loss gives them up",
					    cname, (unsigned long long)left, estimate(a, left, now),
					    ha_gtid_brief(cv.gtid_current, b1),
					    ha_gtid_brief(cv.gtid_io_pos, b2),
					    h->sql_delay
					        ? "; a delayed replica: its MASTER_DELAY is "
					          "waited out (changing it would discard its relay "
					          "log)"
					        : "");
			} else if (salvage_wait[0]) {
				snprintf(why, sizeof(why), "%s", salvage_wait);
			} else {
				snprintf(why, sizeof(why), "waiting for %s to turn writable (%s)",
				         cname,
				         h && h->action && h->action[0]
				             ? h->action
				             : "no report from its agent yet");
			}
			snprintf(a->co.wait, sizeof(a->co.wait), "%s", why);
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
		ha_info(f->planned ? "switchover-done" : "failover-done", "failover=%llu %s",
		        (unsigned long long)f->id, detail);
		adv.phase = HA_FO_DONE;
		adv.detail = detail;
		advance(a, &adv);
		char epoch[24], e1[96], e2[96], e3[64];
		snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)f->epoch);
		snprintf(e1, sizeof(e1), "HAAGENT_OLD_PRIMARY=%s", o ? o->name : "");
		snprintf(e2, sizeof(e2), "HAAGENT_NEW_PRIMARY=%s", cname);
		snprintf(e3, sizeof(e3), "HAAGENT_EPOCH=%s", epoch);
		const char *args[] = {o ? o->name : "", cname, epoch, NULL};
		const char *env[] = {e1, e2, e3, NULL};
		ha_hook_run(a->loop, "post_failover", a->cfg.hook_post_failover, args, env, NULL,
		            NULL);
		return;
	}
	default:
		return;
	}
}

/* ---- divergence: agents report it, the coordinator records it ---- */

static bool record_divergence(struct ha_agent *a, const struct ha_fsm_state *st)
{
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		bool fresh;
		const Haagent__Health *h = health_of(a, m->id, &fresh);
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
		if (ha_fsm_cmd_node_diverged(m->id, reported, h->errant_gtid, ha_unix_ms(),
		                             raft_malloc, &buf, &len) == 0) {
			ha_warn(reported ? "node-diverged" : "node-converged", "node=%s errant=%s",
			        m->name, h->errant_gtid);
			ha_agent_propose(a, buf, len);
			return true;
		}
	}
	return false;
}

/* ---- a database its agent cannot use: an event, once per episode ---- */

static bool say_unusable(struct ha_agent *a, const struct ha_fsm_state *st)
{
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		int k = ha_agent_node_index(a, m->id);
		bool fresh;
		const Haagent__Health *h = health_of(a, m->id, &fresh);
		if (k < 0 || !h || !fresh)
			continue;
		bool unusable = h->db == HAAGENT__DB_STATE__DB_UNUSABLE;
		if (unusable == a->co.unusable_said[k])
			continue;
		a->co.unusable_said[k] = unusable;
		/* an event per episode, at most one a minute per node (a flapping login must not
		 * flood the 64-event history) */
		if (!unusable ||
		    (a->co.unusable_ms[k] && ha_now_ms() - a->co.unusable_ms[k] < 60000))
			continue;
		a->co.unusable_ms[k] = ha_now_ms();
		char detail[256];
		snprintf(detail, sizeof(detail),
		         "the agent cannot use its database (%s); no failover on that alone",
		         h->db_error ? h->db_error : "");
		ha_warn("db-unusable", "node=%s error=\"%s\"", m->name, h->db_error);
		propose_event(a, "db-unusable", m->name, detail);
		return true;
	}
	return false;
}

/* ---- the live plan shown by status ---- */

static void plan(struct ha_agent *a, const struct ha_fsm_state *st)
{
	a->co.n_plan_blockers = 0;
	a->co.plan_candidate[0] = '\0';
#define BLOCK(...)                                                                                 \
	do {                                                                                       \
		if (a->co.n_plan_blockers < 4)                                                     \
			snprintf(a->co.plan_blockers[a->co.n_plan_blockers++],                     \
			         sizeof(a->co.plan_blockers[0]), __VA_ARGS__);                     \
	} while (0)
	if (!a->cfg.auto_failover)
		BLOCK("automatic failover is disabled in the configuration");
	if (st->paused)
		BLOCK("paused by an operator%s%s (haadm resume)", st->pause_reason[0] ? ": " : "",
		      st->pause_reason);
	if (ha_now_ms() < a->co.tilt_until_ms)
		BLOCK("tilt: the coordinator's loop was stalled; no decision for a few seconds");
	if (st->primary_id == 0 || ha_fsm_failover_active(st)) {
		if (ha_fsm_failover_active(st))
			BLOCK("a failover is in progress (%s)%s%s",
			      ha_fo_phase_name(st->failover.phase), a->co.wait[0] ? ": " : "",
			      a->co.wait);
		return;
	}
	struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
	size_t n = ha_coord_view(a, st, st->primary_id, nodes, false);
	char why[1024];
	int best = ha_fo_choose(nodes, n, false, why, sizeof(why));
	if (best >= 0)
		snprintf(a->co.plan_candidate, sizeof(a->co.plan_candidate), "%s",
		         nodes[best].name);
	else
		BLOCK("%s", why);
	unsigned reachable = 1;
	for (unsigned i = 0; i < a->cfg.n_nodes; i++)
		if ((int)i != a->cfg.self && ha_agent_fresh(a, (int)i))
			reachable++;
	if (reachable * 2 <= a->cfg.n_nodes)
		BLOCK("no quorum: only %u of %u agents reachable", reachable, a->cfg.n_nodes);
	for (size_t i = 0; i < n; i++)
		if (nodes[i].fresh && nodes[i].lag_seconds > 60)
			BLOCK("%s lags %lld s", nodes[i].name, (long long)nodes[i].lag_seconds);
#undef BLOCK
}

/* ---- tick ---- */

void ha_coord_tick(struct ha_agent *a)
{
	uint64_t now = ha_now_ms();
	if (a->co.ready_since_ms == 0) {
		a->co.ready_since_ms = now;
		a->co.last_tick_ms = now;
	}
	/* TILT: the timer fired far too late, so every "last seen" looks old. */
	if (now - a->co.last_tick_ms > a->cfg.report_interval_ms + TILT_LATE_MS) {
		a->co.tilt_until_ms = now + TILT_HOLD_MS;
		ha_warn("tilt", "late_ms=%llu hold_ms=%d",
		        (unsigned long long)(now - a->co.last_tick_ms), TILT_HOLD_MS);
	}
	a->co.last_tick_ms = now;

	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	plan(a, st);
	if (a->proposing)
		return;
	if (st->n_members == 0) {
		init_members(a);
		return;
	}
	if (st->primary_id == 0 && st->epoch == 0) {
		bootstrap_primary(a, st);
		return;
	}
	set_note(a, "");
	if (ha_fsm_failover_active(st)) {
		run_failover(a, st);
		if (!a->proposing)
			ha_backup_coord_tick(a, st); /* abandons a job whose node is involved */
		return;
	}
	if (record_divergence(a, st))
		return;
	if (say_unusable(a, st))
		return;
	if (st->primary_id != 0)
		detect(a, st);
	if (!a->proposing)
		ha_backup_coord_tick(a, st);
}

void ha_coord_fill_status(struct ha_agent *a, Haagent__StatusResponse *resp, Haagent__Failover *fo)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	if (st->failover.id) {
		ha_fsm_failover_to_pb(&st->failover, fo);
		resp->failover = fo;
	}
	resp->plan_candidate = a->co.plan_candidate;
	resp->paused = !a->cfg.auto_failover || st->paused;
	if (st->paused)
		resp->pause_reason = st->pause_reason[0] ? (char *)st->pause_reason : "paused";
	else if (!a->cfg.auto_failover)
		resp->pause_reason = "auto_failover = no in the configuration";
}
