/* A configuration libraft 0.22 leaves recorded as uncommitted, put right from raft's own log
 * (docs/membership.md, "libraft 0.22.1 can leave a configuration uncommitted").
 *
 * libraft 0.22.1 records the configuration a follower receives as uncommitted at the index of
 * the first entry of its AppendEntries batch, not at the configuration entry's own index
 * (replication.c passes `index` for every entry of the batch, where the leader's path passes
 * `index + i`). When the configuration entry is not the first of its batch:
 *   - the record never matches the entry as it is applied, so it stays: that node, once
 *     leader, refuses every configuration change (RAFT_CANTCHANGE), and its snapshots keep the
 *     configuration from before;
 *   - if a new leader then truncates the follower's log between the record and the entry, raft
 *     rolls nothing back (it compares the truncation with the record): the follower keeps, as
 *     its configuration, one that is in no log any more (a "ghost"), and counts votes with it;
 *   - a batch of two configuration entries is recorded at the first: libraft clears the record
 *     when it applies the first, while the second is not committed; if that one is then
 *     truncated, the ghost has no record at all, and meanwhile (as leader) the node would
 *     allow a second uncommitted change;
 *   - after a restart, a configuration entry left in the log behind a snapshot taken from a
 *     stale committed configuration is recorded again and never applied again: the record stays.
 *
 * So the repair does not trust the record: on each tick it reads the truth from raft's
 * in-memory log (r->legacy.log, libraft 0.22's layout, checked against raft's last index
 * before any use; with another libraft it does nothing) and sets what libraft would hold. With
 * T the log's last configuration entry:
 *   - T not applied yet: the record is T (cleared by libraft as it applies T, rolled back by it
 *     if T is truncated; no second change meanwhile);
 *   - T applied: no record, and T's configuration committed at T's index (checked on every
 *     tick against the current configuration too: a ghost may have no record at all);
 *   - either way a follower's configuration is T's (a ghost is replaced). A leader's or a
 *     candidate's is not changed under it (its progress and votes are sized by it): a leader
 *     with a ghost is reported, with a voter of T's configuration to hand leadership to.
 * Call it outside raft's own steps. */
#ifndef HA_CONSENSUS_RAFTCONF_H
#define HA_CONSENSUS_RAFTCONF_H

#include <stdbool.h>

#include <raft.h>

enum ha_raftconf_result {
	HA_RAFTCONF_NONE = 0,     /* nothing to do, or not yet (the entry is not committed) */
	HA_RAFTCONF_REPAIRED,     /* a stale record cleared; the configuration was right */
	HA_RAFTCONF_REPLACED,     /* a follower's ghost configuration replaced by the log's */
	HA_RAFTCONF_LEADER_GHOST, /* this leader's configuration is in no log: hand over */
	HA_RAFTCONF_UNCHECKED,    /* a stale-looking record, but the log cannot be read */
};

struct ha_raftconf_fix {
	raft_index record; /* the index raft had recorded */
	raft_index index;  /* the log's last configuration entry */
	unsigned servers;  /* its servers */
	raft_id voter;     /* LEADER_GHOST: a voter of the log's configuration to hand over to */
};

/* change_in_flight: a raft_add/assign/remove of this node's is not finished (left alone). */
enum ha_raftconf_result ha_raftconf_repair(struct raft *r, bool change_in_flight,
                                           struct ha_raftconf_fix *fix);

#endif
