/* Where a backup runs and what it builds on. Pure functions on the coordinator's view. */
#ifndef HA_BACKUP_POLICY_H
#define HA_BACKUP_POLICY_H

#include <stddef.h>

#include "../../consensus/fsm.h"
#include "../coord/failover.h"

/* The least-loaded healthy replica among nodes[] (the primary excluded by the caller): fresh,
 * database up, replicating with both threads running, lag known and at most max_lag_ms, not in
 * maintenance, not diverged. Load score: lag seconds x 10 + Threads_running + load average x 10
 * (lowest wins; then lowest id). Returns its index or -1; why explains the choice or every
 * refusal. */
int ha_bk_choose(const struct ha_fo_node *nodes, size_t n, unsigned max_lag_ms, char *why,
                 size_t why_size);

/* Whether nodes[i] may be backed up (NULL) or why not. */
const char *ha_bk_unfit(const struct ha_fo_node *n, unsigned max_lag_ms);

/* The backup a new one of `type` builds on: differential → the latest full one; incremental →
 * the latest one of any type; full → none (returns 0). Only finished, not deleted backups
 * count. Returns its id, 0 for a full backup, or -1 (no anchor). */
long long ha_bk_parent(const struct ha_fsm_state *st, const char *type);

/* One backup as a chain walk sees it, from whichever catalog (the replicated state, or the
 * copy haadm fetched). */
struct ha_bk_link {
	enum ha_backup_state state; /* 0: not in the catalog */
	bool full;
	uint64_t parent;
	uint32_t node;        /* raft id of the node that took it */
	uint32_t server_id;   /* of its server */
	const char *instance; /* its datadir's label ("" unknown: an older record) */
};
typedef void (*ha_bk_lookup_fn)(const void *catalog, uint64_t id, struct ha_bk_link *out);

/* The chain to restore backup id: ids from the full backup to id, in order. Returns the
 * length, or -1 with why when a link is missing, not finished, or deleted, when its links come
 * from different servers or datadirs (an incremental applied to another InnoDB instance's
 * pages is garbage), or the chain is longer than max. _of: on any catalog, through look. */
int ha_bk_chain_of(ha_bk_lookup_fn look, const void *catalog, uint64_t id, uint64_t *chain, int max,
                   char *why, size_t why_size);
int ha_bk_chain(const struct ha_fsm_state *st, uint64_t id, uint64_t *chain, int max, char *why,
                size_t why_size);

/* Retention: the backups to delete now (ids into out, at most max; returns how many). A full
 * backup is kept when it is one of the newest keep_full (keep_full > 0) or finished within
 * keep_days of now_ms (keep_days > 0); the newest full backup is always kept; with both 0
 * nothing is deleted. A differential or incremental backup lives and dies with the full backup
 * its chain starts from, so a kept backup never loses what it depends on. A chain with a backup
 * held past now_ms (being read by a restore, a drill or a reclone) is kept whole. */
int ha_bk_expired(const struct ha_fsm_state *st, unsigned keep_full, unsigned keep_days,
                  uint64_t now_ms, uint64_t *out, int max);

/* A cron-like schedule: five fields "minute hour day-of-month month day-of-week" (UTC), each
 * '*', a number, a range a-b, a list a,b,c, or a step * / n or a-b/n. Day of week 0-7 (0 and 7
 * are Sunday). */
struct ha_cron {
	uint64_t minute; /* bits 0-59 */
	uint32_t hour;   /* bits 0-23 */
	uint32_t dom;    /* bits 1-31 */
	uint16_t month;  /* bits 1-12 */
	uint8_t dow;     /* bits 0-6 */
	bool dom_any, dow_any;
};
int ha_cron_parse(const char *s, struct ha_cron *c, char *why, size_t why_size);
/* Whether the schedule fires in the minute that contains unix time t (seconds). */
bool ha_cron_due(const struct ha_cron *c, int64_t t);

/* The scheduled backup due at now_ms, decided from the catalog alone (so a new coordinator,
 * a job still running when the next one fell due, or a refusal until a replica is fit loses
 * nothing). sched[]: the full, differential and incremental schedules ("" or NULL: never; an
 * unparsable one is skipped). A type's slot is the latest minute, at most catch_up_min minutes
 * back (0: the current minute only), in which its schedule fired; it is due when no backup was
 * requested at or after the slot of that type or of one that covers it (a full backup covers
 * the three, a differential one covers incremental). Every request counts, failed ones too: a
 * failing schedule does not fill the catalog with retries. Full first, then differential,
 * then incremental. Returns the type ("full", ...) with its slot (unix ms), or NULL. */
const char *ha_bk_due(const struct ha_fsm_state *st, const char *const sched[3], uint64_t now_ms,
                      unsigned catch_up_min, uint64_t *slot_ms);

#endif
