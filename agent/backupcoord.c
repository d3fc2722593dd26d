/* The coordinator's backup duty: follow the running job (catalog in the replicated state) and
 * record its outcome from the reports of the agent that runs it; abandon it cleanly when its
 * node stops being fit (unreachable, promoted, in maintenance, part of a failover) so that a
 * backup never holds up a failover. Starting jobs: admin.c (haadm backup run). Loop thread. */
#include <stdio.h>
#include <string.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/log.h"

#define TAKE_MS        30000 /* an agent must report the job within this */
#define UNREACHABLE_MS 15000 /* a silent agent's job is abandoned after this */

static void end(struct ha_agent *a, const struct ha_backup_rec *job, enum ha_backup_state state,
                const char *detail, const struct ha_backup_rec *res)
{
	uint8_t *buf;
	size_t len;
	ha_info("backup-end", "id=%llu state=%s detail=\"%s\"", (unsigned long long)job->id,
	        ha_backup_state_name(state), detail);
	if (ha_fsm_cmd_backup_end(job->id, state, detail, res, ha_unix_ms(), raft_malloc, &buf,
	                          &len) == 0)
		ha_agent_propose(a, buf, len);
}

void ha_backup_coord_tick(struct ha_agent *a, const struct ha_fsm_state *st)
{
	const struct ha_backup_rec *job = ha_fsm_backup_running(st);
	uint64_t now = ha_now_ms();
	if (job == NULL) {
		a->co.bk_seen_id = 0;
		return;
	}
	if (a->co.bk_seen_id != job->id) {
		a->co.bk_seen_id = job->id;
		a->co.bk_seen_ms = now;
		a->co.bk_fresh_ms = now;
	}
	const struct ha_member *m = ha_fsm_member(st, job->node);
	int i = ha_agent_node_index(a, job->node);
	bool fresh = ha_agent_fresh(a, i);
	const Haagent__Health *h =
	    i >= 0 && a->health[i].report ? a->health[i].report->health : NULL;
	const Haagent__BackupReport *r =
	    h && h->backup && h->backup->id == job->id ? h->backup : NULL;
	if (fresh)
		a->co.bk_fresh_ms = now;
	if (r && r->state == 2) {
		struct ha_backup_rec res;
		memset(&res, 0, sizeof(res));
		res.started_ms = r->started_unix_ms;
		res.finished_ms = r->finished_unix_ms;
		res.from_lsn = r->from_lsn;
		res.to_lsn = r->to_lsn;
		snprintf(res.gtid, sizeof(res.gtid), "%s", r->gtid ? r->gtid : "");
		res.bytes_in = r->bytes_in;
		res.bytes_stored = r->bytes_stored;
		res.chunks = r->chunks;
		end(a, job, HA_BK_DONE, job->detail, &res);
		return;
	}
	if (r && r->state == 3) {
		end(a, job, HA_BK_FAILED, r->detail ? r->detail : "failed", NULL);
		return;
	}
	/* the node must stay fit for the whole job; a failover always wins */
	const char *why = NULL;
	char buf[160];
	if (m && (m->flags & HA_MEMBER_MAINTENANCE))
		why = "its node went into maintenance";
	else if (ha_fsm_failover_active(st) &&
	         (st->failover.old_primary == job->node || st->failover.target == job->node ||
	          st->failover.candidate == job->node))
		why = "its node takes part in a failover";
	else if (st->primary_id == job->node && !strstr(job->detail, "last resort"))
		why = "its node became the primary";
	else if (now - a->co.bk_fresh_ms > UNREACHABLE_MS) {
		snprintf(buf, sizeof(buf), "its node's agent has been unreachable for %u s",
		         UNREACHABLE_MS / 1000);
		why = buf;
	} else if (r == NULL && fresh && now - a->co.bk_seen_ms > TAKE_MS)
		why = "its node's agent did not take the job (restarted?)";
	if (why)
		end(a, job, HA_BK_ABANDONED, why, NULL);
}
