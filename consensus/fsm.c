/* The replicated state machine: the state, one apply table for every command, the command
 * framing, events, snapshots. Each domain's commands are in its own file: fsm_members.c
 * (members, primary, divergence, maintenance, pause), fsm_failover.c, fsm_backup.c. Pure and
 * deterministic: every node applies the same entries to the same state. */
#include "fsm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ha_fsm_init(struct ha_fsm_state *s)
{
	memset(s, 0, sizeof(*s));
}

const struct ha_member *ha_fsm_member(const struct ha_fsm_state *s, uint32_t id)
{
	for (unsigned i = 0; i < s->n_members; i++)
		if (s->members[i].id == id)
			return &s->members[i];
	return NULL;
}

int fsm_copy_str(char *dst, size_t size, const char *src, const char *what, struct ha_err *e)
{
	if (src == NULL || strlen(src) >= size)
		return ha_err_set(e, HA_EINVAL, "%s missing or too long", what);
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

int fsm_copy_name(char *dst, size_t size, const char *src, const char *what, struct ha_err *e)
{
	if (!ha_name_valid(src))
		return ha_err_set(e, HA_EINVAL, "%s '%.80s' is not a name (%s)", what,
		                  src ? src : "(null)", HA_NAME_RULE);
	return fsm_copy_str(dst, size, src, what, e);
}

/* Optional text: NULL is "", too long is an error. */
int fsm_copy_opt(char *dst, size_t size, const char *src, const char *what, struct ha_err *e)
{
	return fsm_copy_str(dst, size, src ? src : "", what, e);
}

const char *fsm_member_name(const struct ha_fsm_state *s, uint32_t id)
{
	const struct ha_member *m = ha_fsm_member(s, id);
	return m ? m->name : "";
}

/* Appends to the bounded history (the oldest entry goes). Texts are truncated, never refused:
 * every caller already validated its inputs. */
void fsm_add_event(struct ha_fsm_state *s, const char *name, const char *node, const char *detail,
                   uint64_t unix_ms)
{
	if (s->n_events == HA_FSM_MAX_EVENTS) {
		memmove(&s->events[0], &s->events[1],
		        sizeof(s->events[0]) * (HA_FSM_MAX_EVENTS - 1));
		s->n_events--;
	}
	struct ha_event *ev = &s->events[s->n_events++];
	memset(ev, 0, sizeof(*ev));
	ev->seq = ++s->next_event_seq;
	ev->unix_ms = unix_ms;
	ev->epoch = s->epoch;
	snprintf(ev->name, sizeof(ev->name), "%s", name);
	snprintf(ev->node, sizeof(ev->node), "%s", node ? node : "");
	snprintf(ev->detail, sizeof(ev->detail), "%s", detail ? detail : "");
}

static int fsm_apply_event(struct ha_fsm_state *s, const Haagent__CmdEvent *c, struct ha_err *e)
{
	char name[48], node[HA_FSM_NAME_MAX], detail[256];
	if (fsm_copy_str(name, sizeof(name), c->name, "event name", e) ||
	    fsm_copy_opt(node, sizeof(node), c->node, "event node", e) ||
	    fsm_copy_opt(detail, sizeof(detail), c->detail, "event detail", e))
		return HA_EINVAL;
	fsm_add_event(s, name, node, detail, c->unix_ms);
	return HA_FSM_APPLIED;
}

/* Log entries: raft's libuv backend wants entry lengths that are multiples of 8, so a command is
 * an 8-byte header ('H' 'C' version=1 0, little-endian u32 payload length), the FsmCommand, and
 * zero padding up to a multiple of 8. */

/* ---- the apply table: one entry per command ---- */

#define APPLY(field, fn)                                                                           \
	static int apply_##field(struct ha_fsm_state *s, const Haagent__FsmCommand *c,             \
	                         struct ha_err *e)                                                 \
	{                                                                                          \
		return fn(s, c->field, e);                                                         \
	}
APPLY(init_members, fsm_apply_init_members)
APPLY(set_primary, fsm_apply_set_primary)
APPLY(failover_begin, fsm_apply_failover_begin)
APPLY(failover_advance, fsm_apply_failover_advance)
APPLY(node_diverged, fsm_apply_node_diverged)
APPLY(event, fsm_apply_event)
APPLY(set_maintenance, fsm_apply_set_maintenance)
APPLY(set_paused, fsm_apply_set_paused)
APPLY(backup_begin, fsm_apply_backup_begin)
APPLY(backup_end, fsm_apply_backup_end)
APPLY(backup_verified, fsm_apply_backup_verified)
APPLY(set_backup_policy, fsm_apply_backup_policy)
APPLY(primary_writable, fsm_apply_primary_writable)
APPLY(archive_slice, fsm_apply_archive_slice)
APPLY(backup_copied, fsm_apply_backup_copied)
APPLY(member_add, fsm_apply_member_add)
APPLY(member_remove, fsm_apply_member_remove)
APPLY(member_joined, fsm_apply_member_joined)
#undef APPLY

static int apply_backup_deleted(struct ha_fsm_state *s, const Haagent__FsmCommand *c,
                                struct ha_err *e)
{
	(void)e;
	return fsm_apply_backup_deleted(s, c->backup_deleted);
}

static int apply_backup_hold(struct ha_fsm_state *s, const Haagent__FsmCommand *c, struct ha_err *e)
{
	(void)e;
	return fsm_apply_backup_hold(s, c->backup_hold);
}

static const struct {
	Haagent__FsmCommand__CmdCase cmd;
	int (*apply)(struct ha_fsm_state *s, const Haagent__FsmCommand *c, struct ha_err *e);
} apply_table[] = {
    {HAAGENT__FSM_COMMAND__CMD_INIT_MEMBERS, apply_init_members},
    {HAAGENT__FSM_COMMAND__CMD_SET_PRIMARY, apply_set_primary},
    {HAAGENT__FSM_COMMAND__CMD_FAILOVER_BEGIN, apply_failover_begin},
    {HAAGENT__FSM_COMMAND__CMD_FAILOVER_ADVANCE, apply_failover_advance},
    {HAAGENT__FSM_COMMAND__CMD_NODE_DIVERGED, apply_node_diverged},
    {HAAGENT__FSM_COMMAND__CMD_EVENT, apply_event},
    {HAAGENT__FSM_COMMAND__CMD_SET_MAINTENANCE, apply_set_maintenance},
    {HAAGENT__FSM_COMMAND__CMD_SET_PAUSED, apply_set_paused},
    {HAAGENT__FSM_COMMAND__CMD_BACKUP_BEGIN, apply_backup_begin},
    {HAAGENT__FSM_COMMAND__CMD_BACKUP_END, apply_backup_end},
    {HAAGENT__FSM_COMMAND__CMD_BACKUP_VERIFIED, apply_backup_verified},
    {HAAGENT__FSM_COMMAND__CMD_BACKUP_DELETED, apply_backup_deleted},
    {HAAGENT__FSM_COMMAND__CMD_SET_BACKUP_POLICY, apply_set_backup_policy},
    {HAAGENT__FSM_COMMAND__CMD_PRIMARY_WRITABLE, apply_primary_writable},
    {HAAGENT__FSM_COMMAND__CMD_BACKUP_HOLD, apply_backup_hold},
    {HAAGENT__FSM_COMMAND__CMD_ARCHIVE_SLICE, apply_archive_slice},
    {HAAGENT__FSM_COMMAND__CMD_BACKUP_COPIED, apply_backup_copied},
    {HAAGENT__FSM_COMMAND__CMD_MEMBER_ADD, apply_member_add},
    {HAAGENT__FSM_COMMAND__CMD_MEMBER_REMOVE, apply_member_remove},
    {HAAGENT__FSM_COMMAND__CMD_MEMBER_JOINED, apply_member_joined},
};
#define N_APPLY (sizeof(apply_table) / sizeof(apply_table[0]))

int ha_fsm_apply(struct ha_fsm_state *s, const uint8_t *buf, size_t len, struct ha_err *e)
{
	if (len < CMD_HEADER || len % 8 || buf[0] != 'H' || buf[1] != 'C' || buf[2] != 1)
		return ha_err_set(e, HA_EPROTO, "fsm: entry of %zu bytes has no command header",
		                  len);
	size_t n =
	    (size_t)buf[4] | (size_t)buf[5] << 8 | (size_t)buf[6] << 16 | (size_t)buf[7] << 24;
	if (n > len - CMD_HEADER || len - CMD_HEADER - n >= 8)
		return ha_err_set(e, HA_EPROTO, "fsm: command length %zu does not fit entry of %zu",
		                  n, len);
	Haagent__FsmCommand *cmd = haagent__fsm_command__unpack(NULL, n, buf + CMD_HEADER);
	if (cmd == NULL)
		return ha_err_set(e, HA_EPROTO, "fsm: command does not decode (%zu bytes)", n);
	int rc = HA_EPROTO;
	size_t k = 0;
	while (k < N_APPLY && apply_table[k].cmd != cmd->cmd_case)
		k++;
	if (k < N_APPLY)
		rc = apply_table[k].apply(s, cmd, e);
	else
		ha_err_set(e, HA_EPROTO, "fsm: unknown command %d", (int)cmd->cmd_case);
	haagent__fsm_command__free_unpacked(cmd, NULL);
	if (rc > 0)
		s->applied_commands++;
	return rc;
}

int fsm_pack(const ProtobufCMessage *m, ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *p = alloc ? alloc(n ? n : 1) : malloc(n ? n : 1);
	if (p == NULL)
		return HA_ENOMEM;
	protobuf_c_message_pack(m, p);
	*out = p;
	*len = n;
	return 0;
}

int fsm_pack_cmd(const Haagent__FsmCommand *cmd, ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	size_t n = haagent__fsm_command__get_packed_size(cmd);
	size_t total = CMD_HEADER + ((n + 7) & ~(size_t)7);
	uint8_t *p = alloc ? alloc(total) : malloc(total);
	if (p == NULL)
		return HA_ENOMEM;
	memset(p, 0, total);
	p[0] = 'H';
	p[1] = 'C';
	p[2] = 1;
	p[4] = (uint8_t)n;
	p[5] = (uint8_t)(n >> 8);
	p[6] = (uint8_t)(n >> 16);
	p[7] = (uint8_t)(n >> 24);
	haagent__fsm_command__pack(cmd, p + CMD_HEADER);
	*out = p;
	*len = total;
	return 0;
}

/* Prose (reasons, details) is shortened to what the state keeps, the cut marked with "...",
 * at a UTF-8 character boundary: a long explanation must never get a decision refused. GTID
 * positions are data and are never shortened (the state takes any position that parses). */
const char *fsm_prose(char *buf, size_t size, const char *text)
{
	if (text == NULL)
		return "";
	size_t len = strlen(text);
	if (len < size)
		return text;
	size_t keep = size - 4;
	while (keep > 0 && ((unsigned char)text[keep] & 0xC0) == 0x80)
		keep--;
	memcpy(buf, text, keep);
	memcpy(buf + keep, "...", 4);
	return buf;
}

int ha_fsm_cmd_event(const char *name, const char *node, const char *detail, uint64_t unix_ms,
                     ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	Haagent__CmdEvent ev = HAAGENT__CMD_EVENT__INIT;
	ev.name = (char *)name;
	ev.node = (char *)(node ? node : "");
	char db[sizeof(((struct ha_event *)0)->detail)];
	ev.detail = (char *)fsm_prose(db, sizeof(db), detail);
	ev.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_EVENT;
	cmd.event = &ev;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

void ha_fsm_event_to_pb(const struct ha_event *ev, Haagent__Event *pb)
{
	haagent__event__init(pb);
	pb->seq = ev->seq;
	pb->unix_ms = ev->unix_ms;
	pb->epoch = ev->epoch;
	pb->name = (char *)ev->name;
	pb->node = (char *)ev->node;
	pb->detail = (char *)ev->detail;
}

int ha_fsm_snapshot(const struct ha_fsm_state *s, ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	Haagent__Member pbm[HA_FSM_MAX_MEMBERS];
	Haagent__Member *ptrs[HA_FSM_MAX_MEMBERS];
	for (unsigned i = 0; i < s->n_members; i++) {
		fsm_to_pb_member(&s->members[i], &pbm[i]);
		ptrs[i] = &pbm[i];
	}
	Haagent__FsmSnapshot snap = HAAGENT__FSM_SNAPSHOT__INIT;
	snap.format = 1;
	snap.cluster = (char *)s->cluster;
	snap.n_members = s->n_members;
	snap.members = ptrs;
	snap.primary_id = s->primary_id;
	snap.epoch = s->epoch;
	snap.applied_commands = s->applied_commands;
	snap.primary_reason = (char *)s->primary_reason;
	Haagent__Failover fo;
	ha_fsm_failover_to_pb(&s->failover, &fo);
	snap.failover = &fo;
	snap.next_failover_id = s->next_failover_id;
	Haagent__Event evs[HA_FSM_MAX_EVENTS];
	Haagent__Event *evp[HA_FSM_MAX_EVENTS];
	for (unsigned i = 0; i < s->n_events; i++) {
		ha_fsm_event_to_pb(&s->events[i], &evs[i]);
		evp[i] = &evs[i];
	}
	snap.n_events = s->n_events;
	snap.events = evp;
	snap.next_event_seq = s->next_event_seq;
	snap.paused = s->paused;
	snap.primary_writable_epoch = s->primary_writable_epoch;
	/* the catalog is large: its messages on the heap, not the stack */
	Haagent__BackupRecord *bks = calloc(s->n_backups ? s->n_backups : 1, sizeof(*bks));
	Haagent__BackupRecord **bkp = calloc(s->n_backups ? s->n_backups : 1, sizeof(*bkp));
	if (bks == NULL || bkp == NULL) {
		free(bks);
		free(bkp);
		return HA_ENOMEM;
	}
	for (unsigned i = 0; i < s->n_backups; i++) {
		ha_fsm_backup_to_pb(&s->backups[i], &bks[i]);
		bkp[i] = &bks[i];
	}
	snap.n_backups = s->n_backups;
	snap.backups = bkp;
	snap.next_backup_id = s->next_backup_id;
	Haagent__CmdSetBackupPolicy pol = HAAGENT__CMD_SET_BACKUP_POLICY__INIT;
	if (s->backup_policy.set) {
		pol.full = (char *)s->backup_policy.full;
		pol.differential = (char *)s->backup_policy.differential;
		pol.incremental = (char *)s->backup_policy.incremental;
		pol.keep_full = s->backup_policy.keep_full;
		pol.keep_days = s->backup_policy.keep_days;
		snap.backup_policy = &pol;
	}
	Haagent__ArchiveState arch;
	if (s->archive.head[0]) {
		ha_fsm_archive_to_pb(&s->archive, &arch);
		snap.archive = &arch;
	}
	snap.failovers_done = s->failovers_done;
	snap.switchovers_done = s->switchovers_done;
	snap.aborted = s->aborted;
	snap.pause_reason = (char *)s->pause_reason;
	int rc = fsm_pack(&snap.base, alloc, out, len);
	free(bks);
	free(bkp);
	return rc;
}

/* Long on purpose: one field of the snapshot after another, each validated into a new state
 * that replaces the old only when all of it is good. */
int ha_fsm_restore(struct ha_fsm_state *s, const uint8_t *buf, size_t len, struct ha_err *e)
{
	Haagent__FsmSnapshot *snap = haagent__fsm_snapshot__unpack(NULL, len, buf);
	if (snap == NULL)
		return ha_err_set(e, HA_EPROTO, "fsm: snapshot does not decode (%zu bytes)", len);
	/* the new state is built aside (a bad snapshot changes nothing), on the heap: it is large
	 */
	struct ha_fsm_state *np = malloc(sizeof(*np));
	if (np == NULL) {
		haagent__fsm_snapshot__free_unpacked(snap, NULL);
		return ha_err_set(e, HA_ENOMEM, "fsm: out of memory");
	}
	ha_fsm_init(np);
	int rc = 0;
	if (snap->format != 1) {
		rc = ha_err_set(e, HA_EPROTO, "fsm: unknown snapshot format %u", snap->format);
		goto out;
	}
	if (fsm_copy_str(np->cluster, sizeof(np->cluster), snap->cluster, "cluster name", e) ||
	    fsm_copy_str(np->primary_reason, sizeof(np->primary_reason), snap->primary_reason,
	                 "reason", e)) {
		rc = HA_EINVAL;
		goto out;
	}
	if (snap->n_members > 0 &&
	    fsm_load_members(snap->members, snap->n_members, np->members, &np->n_members, e)) {
		rc = HA_EINVAL;
		goto out;
	}
	if (snap->primary_id && ha_fsm_member(np, snap->primary_id) == NULL) {
		rc = ha_err_set(e, HA_EINVAL, "fsm: snapshot primary %u is not a member",
		                snap->primary_id);
		goto out;
	}
	np->primary_id = snap->primary_id;
	np->epoch = snap->epoch;
	np->applied_commands = snap->applied_commands;
	if (fsm_failover_from_pb(snap->failover, &np->failover, e)) {
		rc = HA_EINVAL;
		goto out;
	}
	np->next_failover_id = snap->next_failover_id;
	if (snap->n_events > HA_FSM_MAX_EVENTS) {
		rc = ha_err_set(e, HA_EINVAL, "fsm: snapshot has %zu events", snap->n_events);
		goto out;
	}
	for (size_t i = 0; i < snap->n_events; i++) {
		const Haagent__Event *ev = snap->events[i];
		struct ha_event *o = &np->events[i];
		o->seq = ev->seq;
		o->unix_ms = ev->unix_ms;
		o->epoch = ev->epoch;
		if (fsm_copy_str(o->name, sizeof(o->name), ev->name, "event name", e) ||
		    fsm_copy_opt(o->node, sizeof(o->node), ev->node, "event node", e) ||
		    fsm_copy_opt(o->detail, sizeof(o->detail), ev->detail, "event detail", e)) {
			rc = HA_EINVAL;
			goto out;
		}
	}
	np->n_events = (unsigned)snap->n_events;
	np->next_event_seq = snap->next_event_seq;
	np->paused = snap->paused;
	np->primary_writable_epoch = snap->primary_writable_epoch;
	if (snap->n_backups > HA_FSM_MAX_BACKUPS) {
		rc = ha_err_set(e, HA_EINVAL, "fsm: snapshot has %zu backups", snap->n_backups);
		goto out;
	}
	for (size_t i = 0; i < snap->n_backups; i++) {
		if (fsm_backup_from_pb(snap->backups[i], &np->backups[i], e)) {
			rc = HA_EINVAL;
			goto out;
		}
		if (i > 0 && np->backups[i].id <= np->backups[i - 1].id) {
			rc = ha_err_set(e, HA_EINVAL, "fsm: snapshot backups out of order");
			goto out;
		}
	}
	if (snap->n_backups && np->backups[snap->n_backups - 1].id > snap->next_backup_id) {
		rc = ha_err_set(e, HA_EINVAL, "fsm: snapshot backup id beyond next_backup_id");
		goto out;
	}
	np->n_backups = (unsigned)snap->n_backups;
	np->next_backup_id = snap->next_backup_id;
	if (snap->backup_policy && fsm_policy_from_pb(snap->backup_policy, &np->backup_policy, e)) {
		rc = HA_EINVAL;
		goto out;
	}
	if (snap->archive && fsm_archive_from_pb(snap->archive, &np->archive, e)) {
		rc = HA_EINVAL;
		goto out;
	}
	np->failovers_done = snap->failovers_done;
	np->switchovers_done = snap->switchovers_done;
	np->aborted = snap->aborted;
	if (fsm_copy_opt(np->pause_reason, sizeof(np->pause_reason), snap->pause_reason,
	                 "pause reason", e)) {
		rc = HA_EINVAL;
		goto out;
	}
	*s = *np;
out:
	free(np);
	haagent__fsm_snapshot__free_unpacked(snap, NULL);
	return rc;
}
