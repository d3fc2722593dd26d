/* The coordinator core's backup duty (pure, like the rest of the core): start a job (an
 * operator's request or a schedule) on the least-loaded fit replica, follow the running job
 * from the reports of the agent that runs it and record its outcome, abandon it cleanly when
 * its node stops being fit (unreachable, promoted, in maintenance, part of a failover) so that
 * a backup never holds up a failover, and apply retention. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../backup/policy.h"
#include "core_int.h"

#define TAKE_MS        30000 /* an agent must report the job within this */
#define UNREACHABLE_MS 15000 /* a silent agent's job is abandoned after this */

/* A fixed-size value from a report: whole, or "" (unknown) when it does not fit. */
static void fixed(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= size)
		n = 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

static void end(struct ha_core *k, const struct ha_backup_rec *job, enum ha_backup_state state,
                const char *detail, const struct ha_backup_rec *res)
{
	/* the catalog keeps 255 characters of detail: longer would be refused by the FSM */
	char shortened[256];
	snprintf(shortened, sizeof(shortened), "%s", detail ? detail : "");
	detail = shortened;
	uint8_t *buf;
	size_t len;
	LOGI(k, "backup-end", "id=%llu state=%s detail=\"%s\"", (unsigned long long)job->id,
	     ha_backup_state_name(state), detail);
	if (ha_fsm_cmd_backup_end(job->id, state, detail, res, k->unix_ms, k->in->alloc, &buf,
	                          &len) == 0)
		co_propose(k, buf, len, "backup-end");
}

/* Why the cluster cannot take a backup now (the job's message into out), or 0. */
static int refuse_now(struct ha_core *k, const char *type, struct ha_bk_started *out)
{
	const struct ha_fsm_state *st = k->in->st;
	int code = 0;
#define REFUSE(c, ...)                                                                             \
	do {                                                                                       \
		snprintf(out->msg, sizeof(out->msg), __VA_ARGS__);                                 \
		return c;                                                                          \
	} while (0)
	if (strcmp(type, "full") && strcmp(type, "differential") && strcmp(type, "incremental"))
		REFUSE(HA_EINVAL, "--type %s: expected full, differential or incremental", type);
	if (!k->cfg->n_repos)
		REFUSE(
		    HA_EREFUSED,
		    "no repository in the coordinator's configuration (docs/backup.md)");
	const struct ha_backup_rec *running = ha_fsm_backup_running(st);
	if (running)
		REFUSE(HA_EREFUSED, "backup %llu (%s) is running; one at a time",
		       (unsigned long long)running->id, running->name);
	if (ha_fsm_failover_active(st))
		REFUSE(HA_EREFUSED, "a failover is in progress; retry when it is done");
	if (!ha_fsm_backup_room(st))
		REFUSE(HA_EREFUSED,
		       "the catalog is full: it keeps %d backups; let retention delete old ones "
		       "(haadm backup policy --keep-full N or --keep-days N)",
		       HA_FSM_MAX_BACKUPS);
	if (k->in->proposing)
		REFUSE(HA_EBUSY, "the coordinator is committing another decision; retry");
#undef REFUSE
	return code;
}

/* Whether the server that took backup p can continue its chain now (NULL), or why not. The
 * same node, fit for a backup, with the same server_id and the same datadir: an incremental or
 * differential copies the pages above its parent's LSN, which mean nothing on another InnoDB
 * instance (db/instance.h). *at: that node's index in nodes[], or -1. */
static const char *chain_unfit(struct ha_core *k, const struct ha_backup_rec *p,
                               const struct ha_fo_node *nodes, size_t n, int *at, char *buf,
                               size_t size)
{
	const struct ha_fsm_state *st = k->in->st;
	*at = -1;
	if (!p->instance[0])
		return "its datadir was not recorded (a backup from before haagent recorded it)";
	for (size_t i = 0; i < n; i++)
		if (nodes[i].id == p->node)
			*at = (int)i;
	if (*at < 0)
		return p->node == st->primary_id ? "it is the primary" : "it is not in the cluster";
	const char *no = ha_bk_unfit(&nodes[*at], k->cfg->backup_max_lag_ms);
	if (no)
		return no;
	bool fresh;
	const Haagent__Health *h = ha_core_health(k->in, p->node, &fresh);
	const char *now = h && h->datadir_instance ? h->datadir_instance : "";
	if (!now[0])
		return "its datadir cannot be identified now";
	if (h->server_id != p->server_id || strcmp(now, p->instance) != 0) {
		snprintf(buf, size,
		         "its datadir was rebuilt since (restore or reclone: %.12s, was %.12s)",
		         now, p->instance);
		return buf;
	}
	return NULL;
}

#define REFUSE(c, ...)                                                                             \
	do {                                                                                       \
		snprintf(out->msg, sizeof(out->msg), __VA_ARGS__);                                 \
		return c;                                                                          \
	} while (0)

/* An incremental or differential: on the server of its chain (*best, *parent set, returns 0
 * with *type kept), or, when that server cannot serve and no node was named, a new full chain
 * (*type becomes "full", chain says why); a refusal with out->msg otherwise. */
static int continue_chain(struct ha_core *k, const char **type, const char *node,
                          const char *trigger, const struct ha_fo_node *nodes, size_t n, int *best,
                          uint64_t *parent, char *why, size_t why_size, char *chain,
                          size_t chain_size, struct ha_bk_started *out)
{
	const struct ha_fsm_state *st = k->in->st;
	const char *a = (*type)[0] == 'i' ? "n" : "";
	long long pid = ha_bk_parent(st, *type);
	if (pid < 0)
		REFUSE(HA_EREFUSED,
		       "no finished full backup to base a%s %s backup on: run 'haadm backup run "
		       "--type full' first",
		       a, *type);
	const struct ha_backup_rec *p = ha_fsm_backup(st, (uint64_t)pid);
	const struct ha_member *pn = ha_fsm_member(st, p->node);
	const char *pname = pn ? pn->name : "?";
	char buf[200];
	int at;
	const char *no = chain_unfit(k, p, nodes, n, &at, buf, sizeof(buf));
	if (node && node[0] && strcmp(node, pname) != 0)
		REFUSE(
		    HA_EREFUSED,
		    "a%s %s backup continues the chain of backup %llu, taken on %s: it runs there, "
		    "not on %s (to start a new chain there: --type full --node %s)",
		    a, *type, (unsigned long long)pid, pname, node, node);
	if (no && node && node[0])
		REFUSE(HA_EREFUSED,
		       "cannot continue the chain of backup %llu on %s: %s; take a full backup "
		       "(--type full)",
		       (unsigned long long)pid, pname, no);
	if (no == NULL) {
		*best = at;
		*parent = (uint64_t)pid;
		snprintf(why, why_size, "%s; continues the chain of backup %llu on %s", trigger,
		         (unsigned long long)pid, pname);
		return 0;
	}
	snprintf(chain, chain_size,
	         "; a new full chain instead of a%s %s backup: the chain of backup %llu was taken "
	         "on %s and %s",
	         a, *type, (unsigned long long)pid, pname, no);
	*type = "full";
	return 0;
}

/* Where the job runs: into *best (an index into nodes[], or -1 for the primary), why (for the
 * catalog) and, for an incremental or differential, its parent and perhaps a new full chain
 * instead (*type). Returns 0 or a refusal with out->msg. */
static int place(struct ha_core *k, const char **type, const char *node, const char *trigger,
                 const struct ha_fo_node *nodes, size_t n, int *best, uint64_t *parent, char *why,
                 size_t why_size, struct ha_bk_started *out)
{
	const struct ha_fsm_state *st = k->in->st;
	const struct ha_member *pm = ha_fsm_member(st, st->primary_id);
	*parent = 0;
	char chain[320] = "";
	if (strcmp(*type, "full") != 0) {
		int rc = continue_chain(k, type, node, trigger, nodes, n, best, parent, why,
		                        why_size, chain, sizeof(chain), out);
		if (rc != 0 || *parent != 0)
			return rc;
	}
	if (node && node[0]) {
		*best = -1;
		for (size_t i = 0; i < n; i++)
			if (!strcmp(nodes[i].name, node))
				*best = (int)i;
		bool primary = *best < 0 && pm && !strcmp(pm->name, node);
		if (*best < 0 && !primary)
			REFUSE(HA_EINVAL, "no node named %s", node);
		const char *no = primary ? (k->cfg->backup_allow_primary
		                                ? NULL
		                                : "it is the primary ([backup] allow_primary = no)")
		                         : ha_bk_unfit(&nodes[*best], k->cfg->backup_max_lag_ms);
		if (no)
			REFUSE(HA_EREFUSED, "cannot back up %s: %s", node, no);
		snprintf(why, why_size, "%s: %s%s", node, trigger,
		         primary ? " (the primary: last resort)" : "");
		return 0;
	}
	char choice[700];
	*best = ha_bk_choose(nodes, n, k->cfg->backup_max_lag_ms, choice, sizeof(choice));
	if (*best < 0 && !k->cfg->backup_allow_primary)
		REFUSE(HA_EREFUSED, "%s; the primary is not used ([backup] allow_primary = no)",
		       choice);
	/* the trigger first: "scheduled (CRON)" or "requested by an operator" */
	snprintf(why, why_size, "%s%s; %s%s%s", trigger, chain,
	         *best < 0 ? "the primary: last resort (" : "", choice, *best < 0 ? ")" : "");
	return 0;
}
#undef REFUSE

static int start(struct ha_core *k, const char *type, const char *node, const char *trigger,
                 struct ha_bk_started *out)
{
	const struct ha_fsm_state *st = k->in->st;
	memset(out, 0, sizeof(*out));
	int rc = refuse_now(k, type, out);
	if (rc != 0)
		return rc;
	struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
	size_t n = ha_core_view(k->in, st->primary_id, nodes, false);
	char why[1200];
	int best = -1;
	uint64_t parent = 0;
	if ((rc = place(k, &type, node, trigger, nodes, n, &best, &parent, why, sizeof(why), out)))
		return rc;
	uint32_t id_node = best >= 0 ? nodes[best].id : st->primary_id;
	const struct ha_member *m = ha_fsm_member(st, id_node);
	char stamp[32];
	time_t now = (time_t)(k->unix_ms / 1000);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	out->id = st->next_backup_id + 1;
	snprintf(out->name, sizeof(out->name), "%06llu-%s-%s", (unsigned long long)out->id, type,
	         stamp);
	snprintf(out->node, sizeof(out->node), "%s", m ? m->name : "?");
	char detail[256]; /* what the catalog keeps */
	snprintf(detail, sizeof(detail), "%s", why);
	struct ha_bk_begin b = {.expected_id = out->id,
	                        .name = out->name,
	                        .type = type,
	                        .detail = detail,
	                        .parent = parent,
	                        .node = id_node,
	                        .on_primary = id_node == st->primary_id,
	                        .unix_ms = k->unix_ms};
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_backup_begin(&b, k->in->alloc, &buf, &len) != 0 ||
	    co_propose(k, buf, len, "backup-begin") != 0) {
		snprintf(out->msg, sizeof(out->msg), "raft did not accept the job; retry");
		return HA_ERAFT;
	}
	LOGI(k, "backup-requested", "id=%llu type=%s node=%s trigger=\"%s\" why=\"%s\"",
	     (unsigned long long)out->id, type, out->node, trigger, why);
	snprintf(out->msg, sizeof(out->msg), "backup %llu (%s) started on %s: %s",
	         (unsigned long long)out->id, type, out->node, why);
	return 0;
}

/* The schedules: the backup due, from the catalog (policy.h, ha_bk_due), is started as soon as
 * the cluster can take it: after the running job, once a replica is fit, by whichever
 * coordinator leads then, within [backup] schedule_catch_up_min of its time. A refusal is
 * logged once per slot. */
static void schedules(struct ha_core *k, const struct ha_fsm_state *st)
{
	/* minute slots: once a second is plenty, and keeps the catch-up search (up to
	 * schedule_catch_up_min cron checks per type) and a refused start off every tick */
	uint64_t now = k->now;
	if (now - k->m->bk.sched_ms < 1000)
		return;
	k->m->bk.sched_ms = now;
	const struct ha_backup_policy *p = &st->backup_policy;
	const char *sched[3] = {p->set ? p->full : k->cfg->backup_schedule_full,
	                        p->set ? p->differential : k->cfg->backup_schedule_differential,
	                        p->set ? p->incremental : k->cfg->backup_schedule_incremental};
	uint64_t slot;
	const char *type =
	    ha_bk_due(st, sched, k->unix_ms, k->cfg->backup_schedule_catch_up_min, &slot);
	if (type == NULL)
		return;
	struct ha_bk_started out;
	char trigger[128];
	snprintf(trigger, sizeof(trigger), "scheduled (%s)",
	         sched[!strcmp(type, "full")           ? 0
	               : !strcmp(type, "differential") ? 1
	                                               : 2]);
	if (start(k, type, NULL, trigger, &out) == 0)
		return;
	if (k->m->bk.refused_slot != slot || strcmp(k->m->bk.refused_type, type) != 0) {
		k->m->bk.refused_slot = slot;
		snprintf(k->m->bk.refused_type, sizeof(k->m->bk.refused_type), "%s", type);
		LOGW(k, "backup-not-started", "type=%s slot_unix_ms=%llu why=\"%s\"", type,
		     (unsigned long long)slot, out.msg);
	}
}

/* Retention, one deletion per tick: the catalog first (nothing restores from it any more),
 * then the files (the agents sweep them, backupjob.c). */
static void retention(struct ha_core *k, const struct ha_fsm_state *st)
{
	const struct ha_backup_policy *p = &st->backup_policy;
	unsigned keep_full = p->set ? p->keep_full : k->cfg->backup_keep_full;
	unsigned keep_days = p->set ? p->keep_days : k->cfg->backup_keep_days;
	uint64_t ids[HA_FSM_MAX_BACKUPS];
	int n = ha_bk_expired(st, keep_full, keep_days, k->unix_ms, ids, HA_FSM_MAX_BACKUPS);
	if (n <= 0)
		return;
	uint8_t *buf;
	size_t len;
	LOGI(k, "backup-expired", "id=%llu keep_full=%u keep_days=%u", (unsigned long long)ids[0],
	     keep_full, keep_days);
	if (ha_fsm_cmd_backup_deleted(ids[0], k->unix_ms, k->in->alloc, &buf, &len) == 0)
		co_propose(k, buf, len, "backup-deleted");
}

void co_backups(struct ha_core *k, const struct ha_fsm_state *st)
{
	const struct ha_backup_rec *job = ha_fsm_backup_running(st);
	uint64_t now = k->now;
	if (job == NULL) {
		k->m->bk.seen_id = 0;
		if (!ha_fsm_failover_active(st)) {
			retention(k, st);
			if (k->out->cmd == NULL)
				schedules(k, st);
		}
		return;
	}
	if (k->m->bk.seen_id != job->id) {
		k->m->bk.seen_id = job->id;
		k->m->bk.seen_ms = now;
		k->m->bk.fresh_ms = now;
	}
	const struct ha_member *m = ha_fsm_member(st, job->node);
	bool fresh;
	const Haagent__Health *h = ha_core_health(k->in, job->node, &fresh);
	const Haagent__BackupReport *r =
	    h && h->backup && h->backup->id == job->id ? h->backup : NULL;
	if (fresh)
		k->m->bk.fresh_ms = now;
	if (r && r->state == HA_BK_DONE) {
		struct ha_backup_rec res;
		memset(&res, 0, sizeof(res));
		res.started_ms = r->started_unix_ms;
		res.finished_ms = r->finished_unix_ms;
		res.from_lsn = r->from_lsn;
		res.to_lsn = r->to_lsn;
		ha_fsm_backup_gtid(res.gtid, sizeof(res.gtid), r->gtid);
		res.bytes_in = r->bytes_in;
		res.bytes_stored = r->bytes_stored;
		res.chunks = r->chunks;
		res.server_id = r->server_id;
		fixed(res.instance, sizeof(res.instance), r->instance);
		fixed(res.manifest_sha, sizeof(res.manifest_sha), r->manifest_sha);
		fixed(res.repos, sizeof(res.repos), r->repository);
		/* the outcome first: the catalog keeps 255 characters, the choice's scores last */
		char detail[512];
		snprintf(detail, sizeof(detail), "%s; %s", r->detail ? r->detail : "", job->detail);
		end(k, job, HA_BK_DONE, detail, &res);
		return;
	}
	if (r && r->state == HA_BK_FAILED) {
		end(k, job, HA_BK_FAILED, r->detail ? r->detail : "failed", NULL);
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
	else if (st->primary_id == job->node && !job->on_primary)
		why = "its node became the primary";
	else if (now - k->m->bk.fresh_ms > UNREACHABLE_MS) {
		snprintf(buf, sizeof(buf), "its node's agent has been unreachable for %u s",
		         UNREACHABLE_MS / 1000);
		why = buf;
	} else if (r == NULL && fresh && now - k->m->bk.seen_ms > TAKE_MS)
		why = "its node's agent did not take the job (restarted?)";
	if (why)
		end(k, job, HA_BK_ABANDONED, why, NULL);
}

int ha_core_backup_start(const struct ha_core_in *in, struct ha_core_mem *m, const char *type,
                         const char *node, const char *trigger, struct ha_bk_started *started,
                         struct ha_core_out *out)
{
	memset(out, 0, sizeof(*out));
	struct ha_core ctx = {.in = in,
	                      .cfg = in->cfg,
	                      .m = m,
	                      .out = out,
	                      .now = in->now_ms,
	                      .unix_ms = in->unix_ms};
	return start(&ctx, type, node, trigger, started);
}
