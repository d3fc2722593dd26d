/* Every agent converges its own server to the replicated state (one action at a time, on the
 * action worker; the loop only decides):
 *
 *   1. writable only if this node is the epoch's primary AND holds the write lease; otherwise
 *      read_only=ON and client sessions killed (fencing, including self-fencing on a partition);
 *   2. the epoch's primary stops replicating, records the epoch in haagent.heartbeat, and turns
 *      read_only off once it holds the lease;
 *   3. every other node replicates from the epoch's primary, but only when its own GTID history
 *      is contained in the primary's; otherwise it is diverged and is left alone. A node in
 *      maintenance keeps its replication as the operator left it (it is still fenced);
 *   4. during a failover the old primary's agent proves its fence: read_only, every client
 *      session gone, and the final binlog position, reported as fenced_epoch/fenced_gtid; the
 *      target of a planned switchover waits until it has applied up to that position;
 *   5. the new primary of a failover applies its whole relay log before it turns writable (no
 *      acknowledged write lost), unless the loss was accepted (accept_loss);
 *   6. a server that must be fenced but that the agent cannot reach through SQL (hung, login
 *      refused, no connection left) is stopped after fence_escalate_ms: db_stop_command, then
 *      SIGKILL by db_pid_file. Its port then refuses connections: that is the fence's proof.
 *
 * Decisions are taken on samples: after an action, the next one waits for a sample that began
 * after it (requested at once), so it never acts twice on a stale view.
 *
 * A coordinator crash loses nothing here: agents act on the replicated state, whoever leads. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/gtid.h"
#include "common/log.h"
#include "hooks.h"

#define BACKOFF_MS          1000
#define DIVERGED_RECHECK_MS 30000
#define CATCHUP_WAIT_MS     1000
#define STALLED_RECHECK_MS  5000

static const char *my_role(const struct ha_fsm_state *st, uint32_t me)
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

static void role_hook(struct ha_agent *a, const struct ha_fsm_state *st)
{
	const char *role = my_role(st, a->self->id);
	if (!strcmp(role, a->rc.role))
		return;
	snprintf(a->rc.role, sizeof(a->rc.role), "%s", role);
	const struct ha_member *p = ha_fsm_member(st, st->primary_id);
	char epoch[24];
	snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)st->epoch);
	ha_info("role-change", "role=%s epoch=%s primary=%s", role, epoch, p ? p->name : "none");
	char e1[96], e2[96], e3[128], e4[96];
	snprintf(e1, sizeof(e1), "HAAGENT_NODE=%s", a->self->name);
	snprintf(e2, sizeof(e2), "HAAGENT_ROLE=%s", role);
	snprintf(e3, sizeof(e3), "HAAGENT_PRIMARY=%s", p ? p->name : "");
	snprintf(e4, sizeof(e4), "HAAGENT_EPOCH=%s", epoch);
	const char *args[] = {role, epoch, p ? p->name : "", NULL};
	const char *env[] = {e1, e2, e3, e4, NULL};
	ha_hook_run(a->loop, "on_role_change", a->cfg.hook_on_role_change, args, env, NULL, NULL);
}

static void submit(struct ha_agent *a, const struct ha_action_req *q, const char *why)
{
	if (ha_action_submit(a->action, q) == 0)
		ha_info("reconcile", "action=%s why=\"%s\"", ha_action_name(q->kind), why);
}

/* The pid in db_pid_file when that process is a MariaDB/MySQL server, else 0. */
static pid_t server_pid(const char *pidfile, char *why, size_t size)
{
	FILE *f = pidfile[0] ? fopen(pidfile, "r") : NULL;
	long pid = 0;
	if (f == NULL) {
		snprintf(why, size, "no pid file %s", pidfile[0] ? pidfile : "(db_pid_file empty)");
		return 0;
	}
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1)
		pid = 0;
	fclose(f);
	char path[64], comm[64] = "";
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = pid ? fopen(path, "r") : NULL;
	if (f == NULL || fgets(comm, sizeof(comm), f) == NULL) {
		if (f)
			fclose(f);
		snprintf(why, size, "%s names no running process", pidfile);
		return 0;
	}
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	if (strcmp(comm, "mariadbd") != 0 && strcmp(comm, "mysqld") != 0) {
		snprintf(why, size, "%s names pid %ld, which is %s, not mariadbd", pidfile, pid,
		         comm);
		return 0;
	}
	return (pid_t)pid;
}

/* The agent must fence its server and cannot reach it through SQL (hung, or it refuses the
 * agent). After fence_escalate_ms: db_stop_command; if the server still does not refuse
 * connections HA_FENCE_STOP_WAIT_MS later, SIGKILL. Bounded, logged, reported in the health report
 * (escalated_epoch, escalation). */
static void escalate(struct ha_agent *a, const struct ha_fsm_state *st,
                     const struct ha_probe_sample *s, bool must_fence)
{
	uint64_t now = ha_now_ms();
	bool blind = s->db == HA_DB_HUNG || s->db == HA_DB_UNUSABLE;
	if (!blind || !must_fence) {
		/* up, gone (a restarted server that is blind again is stopped again), or not
		 * needed: a later escalation starts over */
		a->rc.esc_started_ms = 0;
		a->rc.blind_since_ms = 0;
		return;
	}
	if (a->rc.blind_since_ms == 0) {
		a->rc.blind_since_ms = now;
		ha_warn("fence-blocked", "db=%s error=\"%s\" escalate_after_ms=%u",
		        ha_db_state_name(s->db), s->db_error, a->cfg.fence_escalate_ms);
	}
	if (a->cfg.fence_escalate_ms == 0 || now - a->rc.blind_since_ms < a->cfg.fence_escalate_ms)
		return;
	if (a->rc.esc_started_ms == 0) {
		a->rc.esc_started_ms = now;
		a->rc.esc_killed = false;
		a->rc.escalated_epoch = st->epoch;
		const char *args[] = {"-c", a->cfg.db_stop_command, NULL};
		int rc = a->cfg.db_stop_command[0] ? ha_hook_run(a->loop, "db_stop_command",
		                                                 "/bin/sh", args, NULL, NULL, NULL)
		                                   : 1;
		snprintf(a->rc.escalation, sizeof(a->rc.escalation),
		         "could not fence mariadbd through SQL (%s): %s", ha_db_state_name(s->db),
		         rc == 0 ? "ran db_stop_command" : "no db_stop_command");
		ha_warn("fence-escalated", "step=stop epoch=%llu db=%s error=\"%s\"",
		        (unsigned long long)st->epoch, ha_db_state_name(s->db), s->db_error);
		return;
	}
	if (a->rc.esc_killed || now - a->rc.esc_started_ms < HA_FENCE_STOP_WAIT_MS)
		return;
	a->rc.esc_killed = true;
	char why[256] = "";
	pid_t pid = server_pid(a->cfg.db_pid_file, why, sizeof(why));
	if (pid > 0 && kill(pid, SIGKILL) == 0) {
		snprintf(a->rc.escalation, sizeof(a->rc.escalation),
		         "could not fence mariadbd through SQL; killed it (pid %ld)", (long)pid);
		ha_warn("fence-escalated", "step=kill pid=%ld epoch=%llu", (long)pid,
		        (unsigned long long)st->epoch);
	} else {
		if (pid > 0)
			snprintf(why, sizeof(why), "kill %ld: %s", (long)pid, strerror(errno));
		snprintf(a->rc.escalation, sizeof(a->rc.escalation),
		         "could not fence mariadbd through SQL, nor kill it: %s", why);
		ha_error("fence-escalation-failed", "epoch=%llu why=\"%s\"",
		         (unsigned long long)st->epoch, why);
	}
	ha_probe_now(a->probe);
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
static void salvage(struct ha_agent *a, const struct ha_fsm_state *st,
                    const struct ha_probe_sample *s)
{
	if (s->db == HA_DB_UP && s->binlog_index[0]) {
		snprintf(a->rc.binlog_index, sizeof(a->rc.binlog_index), "%s", s->binlog_index);
		snprintf(a->rc.datadir, sizeof(a->rc.datadir), "%s",
		         a->cfg.db_datadir[0] ? a->cfg.db_datadir : s->datadir);
	}
	const struct ha_failover *f = &st->failover;
	/* the server came back while a salvage runs: stop it, so the fence is not held up */
	if (a->rc.salvage_state == HA_SALVAGE_RUN_RUNNING && s->db == HA_DB_UP &&
	    ha_action_busy(a->action))
		ha_action_cancel(a->action);
	if (!ha_fsm_failover_active(st) || f->phase != HA_FO_PROMOTING ||
	    f->salvage != HA_SALVAGE_WANTED || f->accept_loss || f->old_primary != a->self->id ||
	    a->rc.salvage_fo_id == f->id || ha_action_busy(a->action) || s->db == HA_DB_UP)
		return;
	const struct ha_member *c = ha_fsm_member(st, f->candidate);
	if (c == NULL)
		return;
	struct ha_action_req q = {.kind = HA_ACT_SALVAGE, .epoch = st->epoch};
	snprintf(q.target_host, sizeof(q.target_host), "%s", c->address);
	q.target_port = c->db_port;
	q.wait_ms = a->cfg.salvage_timeout_ms;
	snprintf(q.binlog_index, sizeof(q.binlog_index), "%s", a->rc.binlog_index);
	snprintf(q.datadir, sizeof(q.datadir), "%s", a->rc.datadir);
	snprintf(q.work_dir, sizeof(q.work_dir), "%s/salvage", a->cfg.data_dir);
	a->rc.salvage_fo_id = f->id;
	a->rc.salvage_state = HA_SALVAGE_RUN_RUNNING;
	a->rc.salvaged_gtid[0] = '\0';
	a->rc.salvaged_count = 0;
	snprintf(a->rc.salvage_detail, sizeof(a->rc.salvage_detail), "running");
	submit(a, &q, "old primary, mariadbd gone: apply what its binlog holds to the new primary");
}

void ha_reconcile(struct ha_agent *a, const struct ha_probe_sample *s)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	if (st->n_members == 0)
		return; /* not bootstrapped: leave the servers as the operator set them up */
	role_hook(a, st);
	salvage(a, st, s);
	if (s->db == HA_DB_UP) {
		a->rc.seen_writable = !s->read_only;
	} else if (!(st->primary_id == 0 && st->epoch == 0)) {
		/* must this server be fenced? the epoch's primary holding its lease need not; the
		 * old primary of a failover must prove it; any other that was writable must stop */
		const struct ha_failover *f = &st->failover;
		bool primary = st->primary_id == a->self->id;
		bool prove = !primary && ha_fsm_failover_active(st) && f->phase == HA_FO_BEGIN &&
		             f->old_primary == a->self->id && a->rc.fenced_epoch != f->epoch;
		bool lease = ha_agent_lease_held(a);
		/* the epoch's primary without its lease may be writable: after a restart of this
		 * agent nothing else says so */
		bool must =
		    prove || (primary && !lease) || (a->rc.seen_writable && !(primary && lease));
		escalate(a, st, s, must);
	}
	if (s->db != HA_DB_UP || ha_action_busy(a->action) ||
	    ha_now_ms() < a->rc.backoff_until_ms || s->started_ms < a->rc.after_ms)
		return;
	if (st->primary_id == 0 && st->epoch == 0)
		return; /* bootstrap has not established a primary yet */

	uint32_t me = a->self->id;
	bool primary = st->primary_id == me;
	bool lease = ha_agent_lease_held(a);
	const struct ha_failover *f = &st->failover;
	bool failing = ha_fsm_failover_active(st);
	/* the coordinator waits for this node's proof that it stopped writing */
	bool prove = !primary && failing && f->phase == HA_FO_BEGIN && f->old_primary == me &&
	             a->rc.fenced_epoch != f->epoch;
	struct ha_action_req q = {0};

	if ((!s->read_only && !(primary && lease)) || prove) {
		q.kind = HA_ACT_FENCE;
		q.epoch = st->epoch;
		q.grace_ms = prove && f->planned ? f->grace_ms : 0;
		submit(a, &q,
		       primary ? "write lease lost"
		       : prove ? "old primary of this failover: fence and report the final position"
		               : "not the primary of this epoch");
		return;
	}
	if (primary) {
		/* RPO 0: the new primary of a failover applies everything it received (what
		 * semi-sync acknowledged may be only in its relay log) before it turns writable and
		 * before its replication is stopped, however long that takes, unless the loss was
		 * accepted. */
		struct ha_gtid_pos want;
		if (failing && f->phase == HA_FO_PROMOTING && f->candidate == me &&
		    !f->accept_loss && s->read_only && !relay_applied(s, f->received_gtid, &want)) {
			q.kind = HA_ACT_CATCHUP;
			q.epoch = st->epoch;
			ha_gtid_format(&want, q.gtid, sizeof(q.gtid));
			q.wait_ms = CATCHUP_WAIT_MS;
			q.start_sql = s->replicating && !s->sql_running && !s->sql_error[0];
			submit(a, &q,
			       "new primary: apply the whole relay log before taking writes");
			return;
		}
		/* the old primary's agent applies what its binlog holds first (salvage) */
		bool salvaging = failing && f->phase == HA_FO_PROMOTING && f->candidate == me &&
		                 !f->accept_loss && f->salvage == HA_SALVAGE_WANTED;
		if (salvaging && s->read_only)
			return;
		/* First writable (SQL thread stopped, so nothing relayed mixes with new writes),
		 * then the replication configuration goes, which may be slow. */
		if (s->read_only && (lease || (s->replicating && s->sql_running))) {
			q.kind = HA_ACT_PROMOTE;
			q.writable = lease;
			q.kill_agent_sessions =
			    failing && f->candidate == me && f->salvage != HA_SALVAGE_NONE;
			const struct ha_member *op = ha_fsm_member(st, f->old_primary);
			if (q.kill_agent_sessions && op)
				snprintf(q.target_host, sizeof(q.target_host), "%s", op->address);
			q.epoch = st->epoch;
			q.semi_sync_timeout_ms = a->cfg.semi_sync_timeout_ms;
			snprintf(q.node, sizeof(q.node), "%s", a->self->name);
			submit(a, &q, "primary of this epoch");
		} else if (s->replicating && (!s->read_only || !lease)) {
			q.kind = HA_ACT_DETACH;
			submit(a, &q, "primary of this epoch: replication no longer needed");
		}
		return;
	}
	if (failing && f->planned && f->phase == HA_FO_FENCED && f->target == me) {
		struct ha_gtid_pos want, cur;
		if (ha_gtid_parse(f->fenced_gtid, &want, NULL) == 0 &&
		    ha_gtid_parse(s->gtid_current, &cur, NULL) == 0 &&
		    !ha_gtid_contains(&cur, &want)) {
			q.kind = HA_ACT_CATCHUP;
			q.epoch = st->epoch;
			snprintf(q.gtid, sizeof(q.gtid), "%s", f->fenced_gtid);
			q.wait_ms = CATCHUP_WAIT_MS;
			submit(a, &q,
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
			submit(a, &q,
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
	bool diverged = a->rc.diverged || (mine && (mine->flags & HA_MEMBER_DIVERGED));
	if (diverged && ha_now_ms() - a->rc.diverged_checked_ms < DIVERGED_RECHECK_MS)
		return; /* never repointed automatically; rechecked now and then (re-cloned?) */
	bool pointed =
	    s->replicating && !strcmp(s->master_host, p->address) && s->master_port == p->db_port;
	/* Pointed at the right primary but its IO thread stopped (an error such as 1236, or
	 * stopped while a failover waited): repointed again — which restarts it and checks
	 * divergence — at most every STALLED_RECHECK_MS. */
	bool stalled = pointed && !strcmp(s->io_state, "No") &&
	               ha_now_ms() - a->rc.stalled_checked_ms >= STALLED_RECHECK_MS;
	if (pointed && !diverged && !stalled)
		return;
	q.kind = HA_ACT_REPOINT;
	snprintf(q.target_host, sizeof(q.target_host), "%s", p->address);
	q.target_port = p->db_port;
	a->rc.diverged_checked_ms = ha_now_ms();
	if (stalled)
		a->rc.stalled_checked_ms = ha_now_ms();
	submit(a, &q,
	       diverged  ? "recheck diverged node"
	       : stalled ? "replicating from the primary, but the IO thread stopped"
	                 : "primary of this epoch changed");
}

void ha_reconcile_done(void *data, const struct ha_action_result *r)
{
	struct ha_agent *a = data;
	snprintf(a->rc.last_action, sizeof(a->rc.last_action), "%s: %s%s", ha_action_name(r->kind),
	         r->rc ? "failed: " : "", r->msg);
	if (r->rc) {
		ha_warn("reconcile-failed", "action=%s error=\"%s\"", ha_action_name(r->kind),
		        r->msg);
		a->rc.backoff_until_ms = ha_now_ms() + BACKOFF_MS;
	} else {
		ha_info("reconcile-done", "action=%s result=\"%s\"", ha_action_name(r->kind),
		        r->msg);
	}
	/* act again only on a sample taken after this action: ask for one now */
	a->rc.after_ms = ha_now_ms();
	a->rc.kick_on_sample = true;
	ha_probe_now(a->probe);
	if (r->kind == HA_ACT_REPOINT && r->rc == 0) {
		if (r->diverged && !a->rc.diverged)
			ha_warn("diverged", "errant=%s", r->errant);
		a->rc.diverged = r->diverged;
		snprintf(a->rc.errant, sizeof(a->rc.errant), "%s", r->diverged ? r->errant : "");
	}
	if (r->kind == HA_ACT_SALVAGE) {
		a->rc.salvage_state = r->rc == 0 ? HA_SALVAGE_RUN_DONE : HA_SALVAGE_RUN_FAILED;
		snprintf(a->rc.salvaged_gtid, sizeof(a->rc.salvaged_gtid), "%s", r->gtid);
		a->rc.salvaged_count = r->salvaged_count;
		snprintf(a->rc.salvage_detail, sizeof(a->rc.salvage_detail), "%s", r->msg);
		ha_log(r->rc == 0 && r->salvage_complete ? HA_LOG_INFO : HA_LOG_WARN, "salvage",
		       "failover=%llu count=%llu result=\"%s\"",
		       (unsigned long long)a->rc.salvage_fo_id,
		       (unsigned long long)r->salvaged_count, r->msg);
	}
	if (r->kind == HA_ACT_PROMOTE && r->rc == 0 && r->made_writable) {
		a->rc.writable_epoch = r->epoch;
		snprintf(a->rc.promoted_gtid, sizeof(a->rc.promoted_gtid), "%s", r->gtid);
		a->rc.writable_ms = ha_now_ms();
		a->rc.fenced_epoch = 0;
		a->rc.fenced_gtid[0] = '\0';
	}
	if (r->kind == HA_ACT_FENCE && r->rc == 0) {
		a->rc.writable_epoch = 0;
		a->rc.fenced_epoch = r->epoch;
		snprintf(a->rc.fenced_gtid, sizeof(a->rc.fenced_gtid), "%s", r->gtid);
	}
	if (!a->stopping)
		ha_agent_report_now(a);
}
