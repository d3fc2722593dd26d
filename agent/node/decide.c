#include "decide.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/gtid.h"
#include "../common/log.h"

#define BACKOFF_MS          1000
#define DIVERGED_RECHECK_MS 30000
#define CATCHUP_WAIT_MS     1000
#define STALLED_RECHECK_MS  5000
#define REJOIN_RECHECK_MS   1000

const char *ha_node_role(const struct ha_fsm_state *st, uint32_t me)
{
	if (st->primary_id == me)
		return "primary";
	if (st->primary_id == 0)
		return "none";
	const struct ha_member *m = ha_fsm_member(st, me);
	if (m && (m->flags & HA_MEMBER_DIVERGED))
		return "diverged";
	return "replica";
}

static void submit(struct ha_node_out *out, const struct ha_action_req *q, const char *why)
{
	if (out->submit)
		return; /* one action at a time: the first decided */
	out->submit = true;
	out->q = *q;
	out->why = why;
}

/* The agent must fence its server and cannot reach it through SQL (hung, or it refuses the
 * agent). After fence_escalate_ms: db_stop_command; if the server still does not refuse
 * connections HA_FENCE_STOP_WAIT_MS later, SIGKILL. Bounded, logged, reported in the health
 * report (escalated_epoch, escalation). */
static void escalate(const struct ha_node_in *in, struct ha_node_mem *m, struct ha_node_out *out,
                     bool must_fence)
{
	const struct ha_probe_sample *s = in->s;
	uint64_t now = in->now_ms;
	bool blind = s->db == HA_DB_HUNG || s->db == HA_DB_UNUSABLE;
	if (!blind || !must_fence) {
		/* up, gone (a restarted server that is blind again is stopped again), or not
		 * needed: a later escalation starts over */
		m->esc_started_ms = 0;
		m->blind_since_ms = 0;
		return;
	}
	if (m->blind_since_ms == 0) {
		m->blind_since_ms = now;
		ha_core_logf(in->log, in->log_ctx, HA_LOG_WARN, "fence-blocked",
		             "db=%s error=\"%s\" escalate_after_ms=%u", ha_db_state_name(s->db),
		             s->db_error, in->cfg->fence_escalate_ms);
	}
	if (in->cfg->fence_escalate_ms == 0 || now - m->blind_since_ms < in->cfg->fence_escalate_ms)
		return;
	if (m->esc_started_ms == 0) {
		m->esc_started_ms = now;
		m->esc_killed = false;
		m->escalated_epoch = in->st->epoch;
		out->esc = HA_NODE_ESC_STOP;
		return;
	}
	if (m->esc_killed || now - m->esc_started_ms < HA_FENCE_STOP_WAIT_MS)
		return;
	m->esc_killed = true;
	out->esc = HA_NODE_ESC_KILL;
}

/* Has this server applied everything it must before it turns writable: what it had received
 * when it was chosen (recorded, "" for none) and what its IO thread received since? *want
 * receives that position. A position that does not parse is never "applied". */
static bool relay_applied(const struct ha_probe_sample *s, const char *recorded,
                          struct ha_gtid_pos *want)
{
	struct ha_gtid_pos cur, p;
	memset(want, 0, sizeof(*want));
	if (ha_gtid_parse(s->gtid_current, &cur, NULL) || ha_gtid_parse(recorded, want, NULL))
		return false;
	if (s->replicating && s->gtid_io_pos[0] &&
	    (ha_gtid_parse(s->gtid_io_pos, &p, NULL) || ha_gtid_merge(want, &p, want)))
		return false;
	return ha_gtid_contains(&cur, want);
}

/* The old primary of a failover, its mariadbd gone: once the coordinator asks (salvage WANTED),
 * this agent applies to the candidate what its local binlog holds that the candidate lacks
 * (db/salvage.h), once per failover, and reports the outcome. */
static void salvage(const struct ha_node_in *in, struct ha_node_mem *m, struct ha_node_out *out)
{
	const struct ha_fsm_state *st = in->st;
	const struct ha_probe_sample *s = in->s;
	if (s->db == HA_DB_UP && s->binlog_index[0]) {
		snprintf(m->binlog_index, sizeof(m->binlog_index), "%s", s->binlog_index);
		snprintf(m->datadir, sizeof(m->datadir), "%s",
		         in->cfg->db_datadir[0] ? in->cfg->db_datadir : s->datadir);
	}
	const struct ha_failover *f = &st->failover;
	/* the server came back while a salvage runs: stop it, so the fence is not held up */
	if (m->salvage_state == HA_SALVAGE_RUN_RUNNING && s->db == HA_DB_UP && in->action_busy)
		out->cancel = true;
	if (!ha_fsm_failover_active(st) || f->phase != HA_FO_PROMOTING ||
	    f->salvage != HA_SALVAGE_WANTED || f->accept_loss ||
	    f->old_primary != in->cfg->nodes[in->cfg->self].id || m->salvage_fo_id == f->id ||
	    in->action_busy || s->db == HA_DB_UP)
		return;
	const struct ha_member *c = ha_fsm_member(st, f->candidate);
	if (c == NULL)
		return;
	struct ha_action_req q = {.kind = HA_ACT_SALVAGE, .epoch = st->epoch};
	snprintf(q.target_host, sizeof(q.target_host), "%s", c->address);
	q.target_port = c->db_port;
	q.wait_ms = in->cfg->salvage_timeout_ms;
	snprintf(q.binlog_index, sizeof(q.binlog_index), "%s", m->binlog_index);
	snprintf(q.datadir, sizeof(q.datadir), "%s", m->datadir);
	snprintf(q.work_dir, sizeof(q.work_dir), "%s/salvage", in->cfg->data_dir);
	m->salvage_fo_id = f->id;
	m->salvage_state = HA_SALVAGE_RUN_RUNNING;
	m->salvaged_gtid[0] = '\0';
	m->salvaged_count = 0;
	snprintf(m->salvage_detail, sizeof(m->salvage_detail), "running");
	submit(out, &q,
	       "old primary, mariadbd gone: apply what its binlog holds to the new primary");
}

/* The slack on a server's start time as told by its Uptime (whole seconds, wall clock) and a
 * probe's latency: a start this much after the last sample that saw it up is a restart. */
#define SERVER_START_SLACK_MS 1100

/* Is this node, the epoch's primary, back from a restart of its server (or of itself) that it
 * must not turn writable after? Its crash recovery may have dropped transactions it had
 * acknowledged, which replicas received (measured: init-rpl-role=SLAVE recovery rolled back
 * the last write a client had been told was committed). So: its server went down at this
 * epoch; or the replicated state says it was writable at this epoch and this agent did not
 * have it writable (the agent restarted too: it cannot tell what happened). The coordinator
 * then fails over, and hands the role back when nothing is missing. */
static bool restarted(const struct ha_fsm_state *st, const struct ha_node_mem *m)
{
	return m->down_epoch == st->epoch ||
	       (st->primary_writable_epoch == st->epoch && m->owned_epoch != st->epoch);
}

/* What the sample says, whatever is decided: the role (for the hook), a salvage to run or
 * cancel, the server seen down or writable at this epoch, and the escalation of a fence that
 * cannot be made through SQL. */
static void observe(const struct ha_node_in *in, struct ha_node_mem *m, struct ha_node_out *out,
                    uint32_t me)
{
	const struct ha_fsm_state *st = in->st;
	const struct ha_probe_sample *s = in->s;
	const char *role = ha_node_role(st, me);
	if (strcmp(role, m->role) != 0) {
		snprintf(m->role, sizeof(m->role), "%s", role);
		out->role_changed = true;
	}
	salvage(in, m, out);
	if (s->db == HA_DB_UP)
		ha_rejoin_watch(&m->ss, s, st->epoch, st->primary_id == me);
	if (s->db == HA_DB_DOWN && st->primary_id == me && st->epoch)
		m->down_epoch = st->epoch;
	/* a restart this agent did not see (it was stopped meanwhile: a swapped-out or frozen
	 * process while mariadbd was killed and restarted) counts as one it saw: found by the
	 * simulator, such an agent made its server writable again without what its crash
	 * recovery dropped. The server started after the last sample that saw it up; Uptime has
	 * a second's grain and follows the wall clock (a step back counts only if larger than
	 * the server's age: Uptime is whole seconds, never more than its age, so the same
	 * server's start estimate is at most 1 s late), hence the slack. */
	if (s->db == HA_DB_UP && s->uptime_known && s->uptime_s < INT64_MAX / 2000) {
		/* may be before this clock's zero (a server older than the host's boot count) */
		int64_t start = (int64_t)s->started_ms - (int64_t)s->uptime_s * 1000;
		if (m->server_up_ms && start > (int64_t)m->server_up_ms + SERVER_START_SLACK_MS &&
		    st->primary_id == me && st->epoch)
			m->down_epoch = st->epoch;
		m->server_up_ms = s->started_ms;
	}
	if (s->db == HA_DB_UP) {
		m->seen_writable = !s->read_only;
		if (!s->read_only && st->primary_id == me)
			m->owned_epoch = st->epoch;
	} else if (!(st->primary_id == 0 && st->epoch == 0)) {
		/* must this server be fenced? the epoch's primary holding its lease need not; the
		 * old primary of a failover must prove it; any other that was writable must stop */
		const struct ha_failover *f = &st->failover;
		bool primary = st->primary_id == me;
		bool prove = !primary && ha_fsm_failover_active(st) && f->phase == HA_FO_BEGIN &&
		             f->old_primary == me && m->fenced_epoch != f->epoch;
		bool lease = in->lease_held;
		/* the epoch's primary without its lease may be writable: after a restart of this
		 * agent nothing else says so */
		bool must =
		    prove || (primary && !lease) || (m->seen_writable && !(primary && lease));
		escalate(in, m, out, must);
	}
}

/* The epoch's primary, not fenced: apply the relay log first when it is a failover's new
 * primary, wait for a salvage, stay held after a restart, else turn writable (or drop the
 * replication it no longer needs). */
static void decide_primary(const struct ha_node_in *in, struct ha_node_mem *m,
                           struct ha_node_out *out, bool held)
{
	const struct ha_fsm_state *st = in->st;
	const struct ha_probe_sample *s = in->s;
	const struct ha_failover *f = &st->failover;
	uint32_t me = in->cfg->nodes[in->cfg->self].id;
	bool lease = in->lease_held;
	bool failing = ha_fsm_failover_active(st);
	struct ha_action_req q = {0};
	(void)m;
	/* RPO 0: the new primary of a failover applies everything it received (what
	 * semi-sync acknowledged may be only in its relay log) before it turns writable and
	 * before its replication is stopped, however long that takes, unless the loss was
	 * accepted. */
	struct ha_gtid_pos want;
	if (failing && f->phase == HA_FO_PROMOTING && f->candidate == me && !f->accept_loss &&
	    s->read_only && !relay_applied(s, f->received_gtid, &want)) {
		q.kind = HA_ACT_CATCHUP;
		q.epoch = st->epoch;
		ha_gtid_format(&want, q.gtid, sizeof(q.gtid));
		q.wait_ms = CATCHUP_WAIT_MS;
		q.start_sql = s->replicating && !s->sql_running && !s->sql_error[0];
		submit(out, &q, "new primary: apply the whole relay log before taking writes");
		return;
	}
	/* the old primary's agent applies what its binlog holds first (salvage) */
	bool salvaging = failing && f->phase == HA_FO_PROMOTING && f->candidate == me &&
	                 !f->accept_loss && f->salvage == HA_SALVAGE_WANTED;
	if (salvaging && s->read_only)
		return;
	if (held)
		return; /* the report says restarted_epoch: the coordinator fails over */
	/* First writable (SQL thread stopped, so nothing relayed mixes with new writes),
	 * then the replication configuration goes, which may be slow. */
	if (s->read_only && (lease || (s->replicating && s->sql_running))) {
		q.kind = HA_ACT_PROMOTE;
		/* writable only on a sample of now: one taken before this process stalled (a
		 * freeze) says nothing of a restart meanwhile */
		q.writable = lease && in->now_ms - s->started_ms <= 2 * in->cfg->probe_interval_ms +
		                                                        in->cfg->probe_timeout_ms;
		q.kill_agent_sessions =
		    failing && f->candidate == me && f->salvage != HA_SALVAGE_NONE;
		const struct ha_member *op = ha_fsm_member(st, f->old_primary);
		if (q.kill_agent_sessions && op)
			snprintf(q.target_host, sizeof(q.target_host), "%s", op->address);
		q.epoch = st->epoch;
		q.semi_sync_timeout_ms = in->cfg->semi_sync_timeout_ms;
		snprintf(q.node, sizeof(q.node), "%s", in->cfg->nodes[in->cfg->self].name);
		submit(out, &q, "primary of this epoch");
	} else if (s->replicating && (!s->read_only || !lease)) {
		q.kind = HA_ACT_DETACH;
		submit(out, &q, "primary of this epoch: replication no longer needed");
	}
}

/* A diverged node (its last repoint compared the binlog states): judge the errant set once per
 * repoint (node/rejoin.h), say why it stays diverged, or, when it is an unacknowledged tail and
 * rejoin = auto, have the shell save it and re-clone the node, at most one run at a time, again
 * after a growing pause when a run failed. */
static void rejoin(const struct ha_node_in *in, struct ha_node_mem *m, struct ha_node_out *out)
{
	if (!m->diverged || m->rejoin_running)
		return;
	const struct ha_node_conf *self = &in->cfg->nodes[in->cfg->self];
	if (!m->rejoin_judged) {
		m->rejoin_judged = true;
		struct ha_rejoin_in ri = {.node = self->name,
		                          .local_state = m->local_state,
		                          .target_state = m->target_state,
		                          .self_server = m->server_id,
		                          .watch = &m->ss,
		                          .max_errant = in->cfg->rejoin_max_errant,
		                          .manual = strcmp(in->cfg->rejoin, "manual") == 0};
		ha_rejoin_judge(&ri, &m->verdict);
		const char *text = m->verdict.safe ? "" : m->verdict.why;
		if (strcmp(m->rejoin, text) != 0 && text[0])
			ha_core_logf(in->log, in->log_ctx, HA_LOG_WARN, "rejoin-held", "why=\"%s\"",
			             text);
		if (!m->verdict.safe || m->rejoin_failures == 0)
			snprintf(m->rejoin, sizeof(m->rejoin), "%s", text);
	}
	if (!m->verdict.safe || in->now_ms < m->rejoin_retry_ms)
		return;
	const struct ha_rejoin_verdict *v = &m->verdict;
	struct ha_rejoin_req *q = &out->rq;
	memset(q, 0, sizeof(*q));
	snprintf(q->node, sizeof(q->node), "%s", self->name);
	q->server_id = m->server_id;
	q->count = v->count;
	snprintf(q->start, sizeof(q->start), "%s", v->start);
	snprintf(q->stop, sizeof(q->stop), "%s", v->stop);
	snprintf(q->ranges, sizeof(q->ranges), "%s", v->ranges);
	snprintf(q->binlog_index, sizeof(q->binlog_index), "%s", m->binlog_index);
	snprintf(q->datadir, sizeof(q->datadir), "%s", m->datadir);
	out->rejoin = true;
	m->rejoin_running = true;
	snprintf(
	    m->rejoin, sizeof(m->rejoin),
	    "rejoining: %llu errant transaction%s (%s) never acknowledged (semi-sync was active "
	    "at epoch %llu): saving them, then re-cloning (attempt %u)",
	    (unsigned long long)v->count, v->count == 1 ? "" : "s", v->ranges,
	    (unsigned long long)m->ss.epoch, m->rejoin_failures + 1);
	ha_core_logf(in->log, in->log_ctx, HA_LOG_WARN, "rejoin-start", "errant=%s count=%llu",
	             v->ranges, (unsigned long long)v->count);
}

void ha_node_rejoin_done(struct ha_node_mem *m, bool ok, const char *msg, const char *saved,
                         uint64_t now_ms)
{
	m->rejoin_running = false;
	if (saved && saved[0])
		snprintf(m->errant_saved, sizeof(m->errant_saved), "%s", saved);
	if (ok) {
		m->rejoin_failures = 0;
		m->rejoin_retry_ms = 0;
		snprintf(m->rejoin, sizeof(m->rejoin), "rejoined: %s", msg);
		m->diverged_checked_ms = 0; /* check it at once */
		m->verdict.safe = false;    /* no other run before that check judges again */
		return;
	}
	m->rejoin_failures++;
	uint64_t pause = ha_rejoin_backoff_ms(m->rejoin_failures);
	m->rejoin_retry_ms = now_ms + pause;
	snprintf(m->rejoin, sizeof(m->rejoin), "rejoin failed (attempt %u): %.500s; next in %llu s",
	         m->rejoin_failures, msg, (unsigned long long)(pause / 1000));
}

/* Any other node: a switchover's target catches up, a replica keeps its relay log while the
 * new primary applies its own, and otherwise replicates from the epoch's primary (repointed
 * when not, or stalled; never a diverged node, rechecked now and then). */
static void decide_replica(const struct ha_node_in *in, struct ha_node_mem *m,
                           struct ha_node_out *out)
{
	const struct ha_fsm_state *st = in->st;
	const struct ha_probe_sample *s = in->s;
	const struct ha_failover *f = &st->failover;
	uint32_t me = in->cfg->nodes[in->cfg->self].id;
	bool failing = ha_fsm_failover_active(st);
	struct ha_action_req q = {0};
	if (failing && f->planned && f->phase == HA_FO_FENCED && f->target == me) {
		struct ha_gtid_pos want, cur;
		if (ha_gtid_parse(f->fenced_gtid, &want, NULL) == 0 &&
		    ha_gtid_parse(s->gtid_current, &cur, NULL) == 0 &&
		    !ha_gtid_contains(&cur, &want)) {
			q.kind = HA_ACT_CATCHUP;
			q.epoch = st->epoch;
			snprintf(q.gtid, sizeof(q.gtid), "%s", f->fenced_gtid);
			q.wait_ms = CATCHUP_WAIT_MS;
			submit(out, &q,
			       "switchover target: apply the old primary's last transactions");
		}
		return;
	}
	if (st->primary_id == 0)
		return; /* between fencing and promotion: the SQL thread applies what was relayed */
	/* While the new primary applies its relay log, the others keep theirs: repointing discards
	 * a relay log, and if the candidate died now, an acknowledged write that only relay logs
	 * hold would be gone. They follow once it is writable (DONE). */
	if (failing && f->phase == HA_FO_PROMOTING && !f->planned) {
		/* ...and take nothing more from the old primary: a restarted one could hand them a
		 * transaction the new primary never gets */
		if (s->replicating && strcmp(s->io_state, "No") != 0) { /* Yes, Connecting */
			q.kind = HA_ACT_STOP_IO;
			submit(out, &q,
			       "waiting for the new primary: keep the relay log, stop the stream");
		}
		return;
	}
	const struct ha_member *p = ha_fsm_member(st, st->primary_id);
	if (p == NULL)
		return;
	const struct ha_member *mine = ha_fsm_member(st, me);
	if (mine && (mine->flags & HA_MEMBER_MAINTENANCE))
		return; /* the operator is working on this node: replication stays as they left it
		         */
	/* A node being added with an empty database is built from the cluster's backups, never
	 * replicated from the primary's first binlog (purged long ago, most likely). One that
	 * holds data (the operator seeded it) is repointed like any replica: its history is
	 * checked for divergence. */
	if (mine && (mine->flags & HA_MEMBER_JOINING) && s->gtid_current[0] == '\0' &&
	    !s->replicating) {
		out->build = true;
		out->why = "joining with an empty database: restore the newest backup";
		return;
	}
	bool diverged = m->diverged || (mine && (mine->flags & HA_MEMBER_DIVERGED));
	rejoin(in, m, out);
	if (out->rejoin)
		return;
	/* rechecked now and then (re-cloned?); every second while a rejoin re-clones it */
	if (diverged && in->now_ms - m->diverged_checked_ms <
	                    (m->rejoin_running ? REJOIN_RECHECK_MS : DIVERGED_RECHECK_MS))
		return; /* never repointed automatically */
	bool pointed =
	    s->replicating && !strcmp(s->master_host, p->address) && s->master_port == p->db_port;
	/* Pointed at the right primary but its IO thread stopped (an error such as 1236, or
	 * stopped while a failover waited): repointed again — which restarts it and checks
	 * divergence — at most every STALLED_RECHECK_MS. */
	bool stalled = pointed && !strcmp(s->io_state, "No") &&
	               in->now_ms - m->stalled_checked_ms >= STALLED_RECHECK_MS;
	if (pointed && !diverged && !stalled)
		return;
	q.kind = HA_ACT_REPOINT;
	snprintf(q.target_host, sizeof(q.target_host), "%s", p->address);
	q.target_port = p->db_port;
	m->diverged_checked_ms = in->now_ms;
	if (stalled)
		m->stalled_checked_ms = in->now_ms;
	submit(out, &q,
	       diverged  ? "recheck diverged node"
	       : stalled ? "replicating from the primary, but the IO thread stopped"
	                 : "primary of this epoch changed");
}

void ha_node_decide(const struct ha_node_in *in, struct ha_node_mem *m, struct ha_node_out *out)
{
	memset(out, 0, sizeof(*out));
	const struct ha_fsm_state *st = in->st;
	const struct ha_probe_sample *s = in->s;
	uint32_t me = in->cfg->nodes[in->cfg->self].id;
	if (st->n_members == 0)
		return; /* not bootstrapped: leave the servers as the operator set them up */
	observe(in, m, out, me);
	if (s->db != HA_DB_UP || in->action_busy || in->now_ms < m->backoff_until_ms ||
	    s->started_ms < m->after_ms)
		return;
	if (st->primary_id == 0 && st->epoch == 0)
		return; /* bootstrap has not established a primary yet */
	if (ha_fsm_member(st, me) == NULL) {
		/* removed from the cluster (or not added yet): its server is left alone, but for
		 * its replication: a replica nobody counts must not acknowledge semi-sync writes
		 * (a write only it had would be lost to the next failover) */
		if (s->replicating) {
			struct ha_action_req q = {0};
			q.kind = HA_ACT_DETACH;
			submit(out, &q, "not a member: stop replicating");
		}
		return;
	}

	bool primary = st->primary_id == me;
	bool lease = in->lease_held;
	const struct ha_failover *f = &st->failover;
	bool failing = ha_fsm_failover_active(st);
	/* the coordinator waits for this node's proof that it stopped writing */
	bool prove = !primary && failing && f->phase == HA_FO_BEGIN && f->old_primary == me &&
	             m->fenced_epoch != f->epoch;
	/* its server went down while it was this epoch's primary and is back: held read-only
	 * until the coordinator fails over (its crash recovery may have dropped transactions it
	 * acknowledged, which replicas have) */
	bool held = primary && !failing && restarted(st, m);
	m->held_epoch = held ? st->epoch : 0;
	if ((!s->read_only && (!(primary && lease) || held)) || prove) {
		struct ha_action_req q = {0};
		q.kind = HA_ACT_FENCE;
		q.epoch = st->epoch;
		q.grace_ms = prove && f->planned ? f->grace_ms : 0;
		submit(out, &q,
		       primary ? (held ? "its server restarted at this epoch: held read-only"
		                       : "write lease lost")
		       : prove ? "old primary of this failover: fence and report the final position"
		               : "not the primary of this epoch");
		return;
	}
	if (primary)
		decide_primary(in, m, out, held);
	else
		decide_replica(in, m, out);
}

/* (declared in db/action.h; here because it is pure and the simulator names actions too) */
const char *ha_action_name(enum ha_action_kind k)
{
	switch (k) {
	case HA_ACT_FENCE:
		return "fence";
	case HA_ACT_PROMOTE:
		return "promote";
	case HA_ACT_REPOINT:
		return "repoint";
	case HA_ACT_DETACH:
		return "detach";
	case HA_ACT_CATCHUP:
		return "catch-up";
	case HA_ACT_SALVAGE:
		return "salvage";
	case HA_ACT_STOP_IO:
		return "stop-io";
	}
	return "?";
}

void ha_node_done(struct ha_node_mem *m, const struct ha_action_result *r, uint64_t now_ms)
{
	snprintf(m->last_action, sizeof(m->last_action), "%s: %s%s", ha_action_name(r->kind),
	         r->rc ? "failed: " : "", r->msg);
	if (r->rc)
		m->backoff_until_ms = now_ms + BACKOFF_MS;
	/* act again only on a sample taken after this action */
	m->after_ms = now_ms;
	m->kick_on_sample = true;
	if (r->kind == HA_ACT_REPOINT && r->rc == 0) {
		m->diverged = r->diverged;
		snprintf(m->errant, sizeof(m->errant), "%s", r->diverged ? r->errant : "");
		/* judged again on the states this repoint compared */
		snprintf(m->local_state, sizeof(m->local_state), "%s", r->local_state);
		snprintf(m->target_state, sizeof(m->target_state), "%s", r->target_state);
		m->server_id = r->server_id;
		m->rejoin_judged = false;
		if (!r->diverged) {
			if (m->rejoin[0] && !m->rejoin_running &&
			    strncmp(m->rejoin, "rejoined", 8) != 0)
				m->rejoin[0] = '\0';
			m->rejoin_failures = 0;
			m->rejoin_retry_ms = 0;
		}
	}
	if (r->kind == HA_ACT_SALVAGE) {
		m->salvage_state = r->rc == 0 ? HA_SALVAGE_RUN_DONE : HA_SALVAGE_RUN_FAILED;
		snprintf(m->salvaged_gtid, sizeof(m->salvaged_gtid), "%s", r->gtid);
		m->salvaged_count = r->salvaged_count;
		snprintf(m->salvage_detail, sizeof(m->salvage_detail), "%s", r->msg);
	}
	if (r->kind == HA_ACT_PROMOTE && r->rc == 0 && r->made_writable) {
		m->writable_epoch = r->epoch;
		snprintf(m->promoted_gtid, sizeof(m->promoted_gtid), "%s", r->gtid);
		m->writable_ms = now_ms;
		m->owned_epoch = r->epoch;
		m->diverged = false; /* the primary's history is the reference */
		m->errant[0] = '\0';
		m->fenced_epoch = 0;
		m->fenced_gtid[0] = '\0';
	}
	if (r->kind == HA_ACT_FENCE && r->rc == 0) {
		ha_rejoin_fenced(&m->ss, r->semisync_read, r->semisync_enabled,
		                 r->semisync_off_times);
		m->writable_epoch = 0;
		m->fenced_epoch = r->epoch;
		snprintf(m->fenced_gtid, sizeof(m->fenced_gtid), "%s", r->gtid);
	}
}

void ha_node_health(const struct ha_probe_sample *s, const struct ha_node_mem *m, uint64_t epoch,
                    bool lease_held, Haagent__Health *h)
{
	haagent__health__init(h);
	h->db = (Haagent__DbState)s->db;
	h->read_only = s->read_only;
	h->gtid_current = (char *)s->gtid_current;
	h->gtid_slave = (char *)s->gtid_slave;
	h->gtid_binlog = (char *)s->gtid_binlog;
	h->replicating = s->replicating;
	h->master_host = (char *)s->master_host;
	h->master_port = s->master_port;
	h->io_running = s->io_running;
	h->sql_running = s->sql_running;
	h->io_state = (char *)s->io_state;
	h->lag_seconds = s->lag_seconds;
	h->last_error = (char *)s->last_error;
	h->db_error = (char *)s->db_error;
	h->threads_running = s->threads_running;
	h->loadavg1 = s->loadavg1;
	h->version = (char *)s->version;
	h->server_id = s->server_id;
	h->probe_ms = s->probe_ms;
	h->semisync_master_enabled = s->semisync_master_enabled;
	h->semisync_master_active = s->semisync_master_active;
	h->semisync_slave_active = s->semisync_slave_active;
	h->sampled_unix_ms = s->sampled_unix_ms;
	h->gtid_io_pos = (char *)s->gtid_io_pos;
	h->master_rx_age_ms = s->master_rx_age_ms;
	h->epoch_seen = epoch;
	h->lease_held = lease_held;
	h->diverged = m->diverged;
	h->errant_gtid = (char *)m->errant;
	h->action = (char *)m->last_action;
	h->writable_epoch = m->writable_epoch;
	h->fenced_epoch = m->fenced_epoch;
	h->fenced_gtid = (char *)m->fenced_gtid;
	h->db_errno = s->db_errno;
	h->promoted_gtid = (char *)m->promoted_gtid;
	h->sql_error = (char *)s->sql_error;
	h->sql_delay = s->sql_delay;
	h->relay_exhausted = s->relay_exhausted;
	h->escalated_epoch = m->escalated_epoch;
	h->escalation = (char *)m->escalation;
	h->salvage_fo_id = m->salvage_fo_id;
	h->salvage_state = m->salvage_state;
	h->salvaged_gtid = (char *)m->salvaged_gtid;
	h->salvaged_count = m->salvaged_count;
	h->salvage_detail = (char *)m->salvage_detail;
	h->restarted_epoch = s->db == HA_DB_UP && m->held_epoch == epoch ? epoch : 0;
	h->datadir_instance = (char *)s->instance;
	h->rejoin = (char *)m->rejoin;
	h->errant_saved = (char *)m->errant_saved;
}

bool ha_node_lease_held(const struct ha_lease_in *l)
{
	if (l->leading)
		return l->now_ms - l->ready_since_ms <= l->lease_ms ||
		       l->reporting * 2 > l->n_nodes;
	return l->last_ack_ms != 0 && l->now_ms - l->last_ack_ms <= l->lease_ms;
}

bool ha_node_ack(struct ha_lease_follow *f, const Haagent__HealthAck *ack,
                 const struct ha_ack_in *in)
{
	if (ack->leader_id == 0 || ack->leader_id != in->leader_id || ack->term != in->term)
		return false;
	/* in contact with this leader in this term, whatever the epoch: that is what the
	 * leader's own lease needs to know (ha_node_report_contact) */
	if (ack->leader_mono_ms &&
	    (ack->term != f->echo_term || ack->leader_mono_ms > f->echo_leader_ms)) {
		f->echo_term = ack->term;
		f->echo_leader_ms = ack->leader_mono_ms;
	}
	if (ack->epoch != 0 && ack->epoch != in->epoch)
		return false;
	/* the lease runs from when the acknowledged report was sent (an ack of an older
	 * version echoes nothing: then its arrival) */
	uint64_t from =
	    ack->sent_mono_ms && ack->sent_mono_ms <= in->now_ms ? ack->sent_mono_ms : in->now_ms;
	if (from > f->last_ack_ms)
		f->last_ack_ms = from;
	return true;
}

void ha_node_contact_update(struct ha_contact *c, const Haagent__HealthReport *r, uint64_t term,
                            uint64_t recv_ms, uint64_t now_ms)
{
	uint64_t v = ha_node_report_contact(r, term, recv_ms, now_ms);
	if (c->term != term) {
		c->term = term;
		c->ms = 0;
	}
	if (v > c->ms)
		c->ms = v;
}

uint64_t ha_node_contact_at(const struct ha_contact *c, uint64_t term)
{
	return c->term == term ? c->ms : 0;
}

uint64_t ha_node_report_contact(const Haagent__HealthReport *r, uint64_t term, uint64_t recv_ms,
                                uint64_t now_ms)
{
	if (!r->echoes)
		return recv_ms;
	if (r->echo_term != term || r->echo_leader_ms == 0 || r->echo_leader_ms > now_ms)
		return 0;
	return r->echo_leader_ms;
}
