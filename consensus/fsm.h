/* The replicated state machine: membership, the current primary and the epoch.
 *
 * Pure and deterministic: no I/O, no clock, no randomness. Commands and snapshots are protobuf
 * (proto/haagent.proto: FsmCommand, FsmSnapshot) and are decoded as hostile input: a command that
 * does not decode or does not validate leaves the state unchanged and returns an error, the same on
 * every node. Commands are idempotent, because RAFT_LEADERSHIPLOST does not mean that an entry was
 * not committed and a new coordinator may propose the same decision again.
 *
 * Loop thread only (raft calls apply/snapshot/restore there). */
#ifndef HA_FSM_H
#define HA_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../agent/common/err.h"

#define HA_FSM_MAX_MEMBERS 9
#define HA_FSM_NAME_MAX    64

struct ha_member {
	uint32_t id;
	char name[HA_FSM_NAME_MAX];
	char address[HA_FSM_NAME_MAX];
	unsigned raft_port, rpc_port, db_port;
	uint32_t flags;
};

struct ha_fsm_state {
	char cluster[HA_FSM_NAME_MAX];
	struct ha_member members[HA_FSM_MAX_MEMBERS];
	unsigned n_members;
	uint32_t primary_id; /* 0: not established */
	uint64_t epoch;      /* bumped by every change of primary; the fencing token */
	char primary_reason[256];
	uint64_t applied_commands;
};

enum ha_fsm_result {
	HA_FSM_APPLIED = 1, /* the state changed */
	HA_FSM_NOOP = 2,    /* valid but already applied or superseded (stale epoch) */
};

void ha_fsm_init(struct ha_fsm_state *s);

/* Applies one encoded command (an 8-byte header, an FsmCommand, padding to a multiple of 8).
 * Returns HA_FSM_APPLIED, HA_FSM_NOOP, or a negative HA_E... code (state unchanged). */
int ha_fsm_apply(struct ha_fsm_state *s, const uint8_t *buf, size_t len, struct ha_err *e);

/* Command encoders. On success *out is malloc'd (free() it) or, when alloc is given, allocated by
 * alloc (raft_malloc for raft_apply). */
typedef void *(*ha_alloc_fn)(size_t);
int ha_fsm_cmd_init_members(const char *cluster, const struct ha_member *m, unsigned n,
                            ha_alloc_fn alloc, uint8_t **out, size_t *len);
int ha_fsm_cmd_set_primary(uint64_t expected_epoch, uint32_t primary_id, const char *reason,
                           ha_alloc_fn alloc, uint8_t **out, size_t *len);

/* Snapshot encode (allocated by alloc, or malloc when NULL) and restore (replaces *s only when
 * the whole snapshot decodes and validates). */
int ha_fsm_snapshot(const struct ha_fsm_state *s, ha_alloc_fn alloc, uint8_t **out, size_t *len);
int ha_fsm_restore(struct ha_fsm_state *s, const uint8_t *buf, size_t len, struct ha_err *e);

const struct ha_member *ha_fsm_member(const struct ha_fsm_state *s, uint32_t id);

#endif
