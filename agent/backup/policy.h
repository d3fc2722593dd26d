/* Where a backup runs and what it builds on. Pure functions on the coordinator's view. */
#ifndef HA_BACKUP_POLICY_H
#define HA_BACKUP_POLICY_H

#include <stddef.h>

#include "../../consensus/fsm.h"
#include "../failover.h"

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

/* The chain to restore backup id: ids from the full backup to id, in order. Returns the
 * length, or -1 with why when a link is missing, not finished, or deleted. */
int ha_bk_chain(const struct ha_fsm_state *st, uint64_t id, uint64_t *chain, int max, char *why,
                size_t why_size);

#endif
