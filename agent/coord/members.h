/* Membership changes, decided by the ready leader as a pure function (docs/membership.md).
 *
 * The members live in the replicated state (CmdMemberAdd/Remove/Joined); raft's own
 * configuration follows them, one change at a time:
 *   - a member that raft lacks is added (as a spare), then made a standby: it receives the log
 *     but does not vote, so a node being added never weighs on the quorum;
 *   - a joining member whose database replicates from the primary, caught up, is made a voter
 *     (libraft catches its log up first), then recorded as joined;
 *   - a raft server that is no longer a member is removed from raft;
 *   - a joining member with nothing to build its database from (no finished full backup in
 *     the catalog, none running) gets one: a full backup on the least-loaded replica;
 *   - a join that does not finish (its agent silent for join_silent_ms, or longer than
 *     join_timeout_ms in all) is undone: the member is removed, then the raft server.
 * No I/O, no clock reads: the shell (agent/members.c) carries out the raft change or proposes
 * the command. */
#ifndef HA_COORD_MEMBERS_H
#define HA_COORD_MEMBERS_H

#include "core.h"

struct ha_members_in {
	const struct ha_core_in *core;     /* cfg (nodes follow the members), st, reports, clocks */
	const struct ha_raft_server *raft; /* raft's configuration */
	unsigned n_raft;
	bool raft_changing; /* a raft change is in flight */
};

/* soft: a new leader starts from zero (the join's clock restarts with it) */
struct ha_members_mem {
	uint32_t joining;         /* the joining member this memory follows */
	uint64_t since_ms;        /* when this leader first saw it joining */
	uint64_t backup_asked_ms; /* a full backup was asked for the joining node then */
};

enum ha_members_act {
	HA_MEMBERS_NONE = 0,
	HA_MEMBERS_RAFT_ADD,    /* raft_add id at address */
	HA_MEMBERS_RAFT_ASSIGN, /* raft_assign id role */
	HA_MEMBERS_RAFT_REMOVE, /* raft_remove id */
	HA_MEMBERS_PROPOSE,     /* propose cmd */
	HA_MEMBERS_BACKUP,   /* start a full backup: the joining node has nothing to build from */
	HA_MEMBERS_TRANSFER, /* this leader is no longer a member: hand leadership over */
};

struct ha_members_out {
	enum ha_members_act act;
	uint32_t id;
	int role;
	char address[96];
	uint8_t *cmd; /* from core->alloc */
	size_t cmd_len;
	char why[320];
};

void ha_members_decide(const struct ha_members_in *in, struct ha_members_mem *m,
                       struct ha_members_out *out);

/* A joining member's database is ready to vote: its agent reports it replicating from the
 * primary of this epoch, both threads running, no lag. why (may be NULL) says what is missing. */
bool ha_members_db_ready(const struct ha_core_in *in, uint32_t id, char *why, size_t size);

#endif
