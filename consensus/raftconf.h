/* A configuration libraft 0.22 leaves recorded as uncommitted, put right once it is certainly
 * committed (docs/membership.md, "libraft 0.22.1 can leave a configuration uncommitted").
 *
 * libraft 0.22.1 records the configuration a follower receives as uncommitted at the index of
 * the first entry of its AppendEntries batch, not at the configuration entry's own index
 * (replication.c passes `index` for every entry of the batch, where the leader's path passes
 * `index + i`). When the configuration entry is not the first of its batch, the record never
 * matches the entry as it is applied, so it stays: that node, once leader, refuses every
 * configuration change (RAFT_CANTCHANGE) for as long as it leads, and its snapshots keep the
 * configuration from before.
 *
 * The repair acts only when it is certain: every entry of the log is committed and applied, so
 * the latest configuration (raft's `configuration`, the last one in the log) is committed,
 * whatever its index. The committed index it sets is the recorded one, a lower bound of the true
 * one. Pure on the raft object; call it outside raft's own steps (from a timer). */
#ifndef HA_CONSENSUS_RAFTCONF_H
#define HA_CONSENSUS_RAFTCONF_H

#include <stdbool.h>

#include <raft.h>

/* True when it put r right; *index is then the index that was recorded. change_in_flight: a
 * raft_add/assign/remove of this node's is not finished (its own record is right: left alone). */
bool ha_raftconf_repair(struct raft *r, bool change_in_flight, raft_index *index);

#endif
