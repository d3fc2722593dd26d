/* Internal to the replicated state machine's files (fsm.c and its domains): shared helpers and
 * each domain's apply functions, which fsm.c's apply table dispatches to. */
#ifndef HA_FSM_INT_H
#define HA_FSM_INT_H

#include "../agent/config.h"
#include "fsm.h"
#include "haagent.pb-c.h"

/* the 8-byte header of every log entry ('H' 'C', version, little-endian payload length) */
#define CMD_HEADER 8

/* Text into a fixed field: missing or too long is an error (_opt: NULL is ""). */
int fsm_copy_str(char *dst, size_t size, const char *src, const char *what, struct ha_err *e);
/* fsm_copy_str of a name that becomes a path (a backup's, a slice's): ha_name_valid or refused. */
int fsm_copy_name(char *dst, size_t size, const char *src, const char *what, struct ha_err *e);
int fsm_copy_opt(char *dst, size_t size, const char *src, const char *what, struct ha_err *e);
/* The name of member id, "" when none. */
const char *fsm_member_name(const struct ha_fsm_state *s, uint32_t id);
/* Appends to the bounded event history (the oldest entry goes); texts are cut, never refused. */
void fsm_add_event(struct ha_fsm_state *s, const char *name, const char *node, const char *detail,
                   uint64_t unix_ms);
/* Prose (reasons, details) shortened to size at a UTF-8 boundary, the cut marked "...". */
const char *fsm_prose(char *buf, size_t size, const char *text);
/* Encoding: a message, and a command with its entry header and padding. */
int fsm_pack(const ProtobufCMessage *m, ha_alloc_fn alloc, uint8_t **out, size_t *len);
int fsm_pack_cmd(const Haagent__FsmCommand *cmd, ha_alloc_fn alloc, uint8_t **out, size_t *len);
/* Conversions used by the snapshot. */
int fsm_load_members(Haagent__Member **in, size_t n, struct ha_member *out, unsigned *n_out,
                     struct ha_err *e);
void fsm_to_pb_member(const struct ha_member *m, Haagent__Member *pb);
int fsm_failover_from_pb(const Haagent__Failover *pb, struct ha_failover *f, struct ha_err *e);
int fsm_backup_from_pb(const Haagent__BackupRecord *pb, struct ha_backup_rec *r, struct ha_err *e);
int fsm_policy_from_pb(const Haagent__CmdSetBackupPolicy *c, struct ha_backup_policy *p,
                       struct ha_err *e);

/* Each command's apply: HA_FSM_APPLIED, HA_FSM_NOOP, or a negative HA_E... code. */
int fsm_apply_backup_policy(struct ha_fsm_state *s, const Haagent__CmdSetBackupPolicy *c,
                            struct ha_err *e);
int fsm_apply_init_members(struct ha_fsm_state *s, const Haagent__CmdInitMembers *c,
                           struct ha_err *e);
int fsm_apply_set_primary(struct ha_fsm_state *s, const Haagent__CmdSetPrimary *c,
                          struct ha_err *e);
int fsm_apply_failover_begin(struct ha_fsm_state *s, const Haagent__CmdFailoverBegin *c,
                             struct ha_err *e);
int fsm_apply_failover_advance(struct ha_fsm_state *s, const Haagent__CmdFailoverAdvance *c,
                               struct ha_err *e);
int fsm_apply_node_diverged(struct ha_fsm_state *s, const Haagent__CmdNodeDiverged *c,
                            struct ha_err *e);
int fsm_apply_set_maintenance(struct ha_fsm_state *s, const Haagent__CmdSetMaintenance *c,
                              struct ha_err *e);
int fsm_apply_primary_writable(struct ha_fsm_state *s, const Haagent__CmdPrimaryWritable *c,
                               struct ha_err *e);
int fsm_apply_member_add(struct ha_fsm_state *s, const Haagent__CmdMemberAdd *c, struct ha_err *e);
int fsm_apply_member_remove(struct ha_fsm_state *s, const Haagent__CmdMemberRemove *c,
                            struct ha_err *e);
int fsm_apply_member_joined(struct ha_fsm_state *s, const Haagent__CmdMemberJoined *c,
                            struct ha_err *e);
int fsm_apply_set_paused(struct ha_fsm_state *s, const Haagent__CmdSetPaused *c, struct ha_err *e);
int fsm_apply_backup_begin(struct ha_fsm_state *s, const Haagent__CmdBackupBegin *c,
                           struct ha_err *e);
int fsm_apply_backup_end(struct ha_fsm_state *s, const Haagent__CmdBackupEnd *c, struct ha_err *e);
int fsm_apply_backup_hold(struct ha_fsm_state *s, const Haagent__CmdBackupHold *c);
int fsm_apply_backup_copied(struct ha_fsm_state *s, const Haagent__CmdBackupCopied *c,
                            struct ha_err *e);
int fsm_apply_backup_verified(struct ha_fsm_state *s, const Haagent__CmdBackupVerified *c,
                              struct ha_err *e);
int fsm_apply_backup_deleted(struct ha_fsm_state *s, const Haagent__CmdBackupDeleted *c);
int fsm_apply_archive_slice(struct ha_fsm_state *s, const Haagent__CmdArchiveSlice *c,
                            struct ha_err *e);
int fsm_archive_from_pb(const Haagent__ArchiveState *pb, struct ha_archive *a, struct ha_err *e);

#endif
