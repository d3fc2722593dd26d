#include "fsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haagent.pb-c.h"

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

static int copy_str(char *dst, size_t size, const char *src, const char *what, struct ha_err *e)
{
	if (src == NULL || strlen(src) >= size)
		return ha_err_set(e, HA_EINVAL, "%s missing or too long", what);
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

/* Converts and validates protobuf members into out[]. */
static int load_members(Haagent__Member **in, size_t n, struct ha_member *out, unsigned *n_out,
                        struct ha_err *e)
{
	if (n == 0 || n > HA_FSM_MAX_MEMBERS)
		return ha_err_set(e, HA_EINVAL, "member count %zu out of range", n);
	for (size_t i = 0; i < n; i++) {
		const Haagent__Member *m = in[i];
		struct ha_member *o = &out[i];
		memset(o, 0, sizeof(*o));
		if (m->id == 0)
			return ha_err_set(e, HA_EINVAL, "member id 0");
		if (m->raft_port == 0 || m->raft_port > 65535 || m->rpc_port > 65535 ||
		    m->db_port > 65535)
			return ha_err_set(e, HA_EINVAL, "member %u: bad port", m->id);
		if (copy_str(o->name, sizeof(o->name), m->name, "member name", e) ||
		    copy_str(o->address, sizeof(o->address), m->address, "member address", e))
			return HA_EINVAL;
		o->id = m->id;
		o->raft_port = m->raft_port;
		o->rpc_port = m->rpc_port;
		o->db_port = m->db_port;
		o->flags = m->flags;
		for (size_t j = 0; j < i; j++)
			if (out[j].id == o->id || !strcmp(out[j].name, o->name))
				return ha_err_set(e, HA_EINVAL, "member %u listed twice", o->id);
	}
	*n_out = (unsigned)n;
	return 0;
}

static int apply_init_members(struct ha_fsm_state *s, const Haagent__CmdInitMembers *c,
                              struct ha_err *e)
{
	struct ha_member m[HA_FSM_MAX_MEMBERS];
	unsigned n;
	char cluster[HA_FSM_NAME_MAX];
	if (copy_str(cluster, sizeof(cluster), c->cluster, "cluster name", e) ||
	    load_members(c->members, c->n_members, m, &n, e))
		return HA_EINVAL;
	if (s->n_members > 0)
		return HA_FSM_NOOP; /* membership is set once; later issues add member changes */
	memcpy(s->cluster, cluster, sizeof(cluster));
	memcpy(s->members, m, sizeof(m[0]) * n);
	s->n_members = n;
	return HA_FSM_APPLIED;
}

static int apply_set_primary(struct ha_fsm_state *s, const Haagent__CmdSetPrimary *c,
                             struct ha_err *e)
{
	if (ha_fsm_member(s, c->primary_id) == NULL)
		return ha_err_set(e, HA_EINVAL, "set primary: %u is not a member", c->primary_id);
	if (c->reason && strlen(c->reason) >= sizeof(s->primary_reason))
		return ha_err_set(e, HA_EINVAL, "set primary: reason too long");
	/* Compare-and-set on the epoch: a second proposal of the same decision (after
	 * RAFT_LEADERSHIPLOST) or a decision taken on an old view is a no-op. */
	if (c->expected_epoch != s->epoch)
		return HA_FSM_NOOP;
	s->primary_id = c->primary_id;
	s->epoch++;
	snprintf(s->primary_reason, sizeof(s->primary_reason), "%s", c->reason ? c->reason : "");
	return HA_FSM_APPLIED;
}

/* Log entries: raft's libuv backend wants entry lengths that are multiples of 8, so a command is
 * an 8-byte header ('H' 'C' version=1 0, little-endian u32 payload length), the FsmCommand, and
 * zero padding up to a multiple of 8. */
#define CMD_HEADER 8

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
	int rc;
	switch (cmd->cmd_case) {
	case HAAGENT__FSM_COMMAND__CMD_INIT_MEMBERS:
		rc = apply_init_members(s, cmd->init_members, e);
		break;
	case HAAGENT__FSM_COMMAND__CMD_SET_PRIMARY:
		rc = apply_set_primary(s, cmd->set_primary, e);
		break;
	default:
		rc = ha_err_set(e, HA_EPROTO, "fsm: unknown command %d", (int)cmd->cmd_case);
	}
	haagent__fsm_command__free_unpacked(cmd, NULL);
	if (rc > 0)
		s->applied_commands++;
	return rc;
}

static int pack(const ProtobufCMessage *m, ha_alloc_fn alloc, uint8_t **out, size_t *len)
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

static int pack_cmd(const Haagent__FsmCommand *cmd, ha_alloc_fn alloc, uint8_t **out, size_t *len)
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

static void to_pb_member(const struct ha_member *m, Haagent__Member *pb)
{
	haagent__member__init(pb);
	pb->id = m->id;
	pb->name = (char *)m->name;
	pb->address = (char *)m->address;
	pb->raft_port = m->raft_port;
	pb->rpc_port = m->rpc_port;
	pb->db_port = m->db_port;
	pb->flags = m->flags;
}

int ha_fsm_cmd_init_members(const char *cluster, const struct ha_member *m, unsigned n,
                            ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	if (n == 0 || n > HA_FSM_MAX_MEMBERS)
		return HA_EINVAL;
	Haagent__Member pbm[HA_FSM_MAX_MEMBERS];
	Haagent__Member *ptrs[HA_FSM_MAX_MEMBERS];
	for (unsigned i = 0; i < n; i++) {
		to_pb_member(&m[i], &pbm[i]);
		ptrs[i] = &pbm[i];
	}
	Haagent__CmdInitMembers im = HAAGENT__CMD_INIT_MEMBERS__INIT;
	im.cluster = (char *)cluster;
	im.n_members = n;
	im.members = ptrs;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_INIT_MEMBERS;
	cmd.init_members = &im;
	return pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_set_primary(uint64_t expected_epoch, uint32_t primary_id, const char *reason,
                           ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	Haagent__CmdSetPrimary sp = HAAGENT__CMD_SET_PRIMARY__INIT;
	sp.expected_epoch = expected_epoch;
	sp.primary_id = primary_id;
	sp.reason = (char *)(reason ? reason : "");
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_SET_PRIMARY;
	cmd.set_primary = &sp;
	return pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_snapshot(const struct ha_fsm_state *s, ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	Haagent__Member pbm[HA_FSM_MAX_MEMBERS];
	Haagent__Member *ptrs[HA_FSM_MAX_MEMBERS];
	for (unsigned i = 0; i < s->n_members; i++) {
		to_pb_member(&s->members[i], &pbm[i]);
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
	return pack(&snap.base, alloc, out, len);
}

int ha_fsm_restore(struct ha_fsm_state *s, const uint8_t *buf, size_t len, struct ha_err *e)
{
	Haagent__FsmSnapshot *snap = haagent__fsm_snapshot__unpack(NULL, len, buf);
	if (snap == NULL)
		return ha_err_set(e, HA_EPROTO, "fsm: snapshot does not decode (%zu bytes)", len);
	struct ha_fsm_state n;
	ha_fsm_init(&n);
	int rc = 0;
	if (snap->format != 1) {
		rc = ha_err_set(e, HA_EPROTO, "fsm: unknown snapshot format %u", snap->format);
		goto out;
	}
	if (copy_str(n.cluster, sizeof(n.cluster), snap->cluster, "cluster name", e) ||
	    copy_str(n.primary_reason, sizeof(n.primary_reason), snap->primary_reason, "reason",
	             e)) {
		rc = HA_EINVAL;
		goto out;
	}
	if (snap->n_members > 0 &&
	    load_members(snap->members, snap->n_members, n.members, &n.n_members, e)) {
		rc = HA_EINVAL;
		goto out;
	}
	if (snap->primary_id && ha_fsm_member(&n, snap->primary_id) == NULL) {
		rc = ha_err_set(e, HA_EINVAL, "fsm: snapshot primary %u is not a member",
		                snap->primary_id);
		goto out;
	}
	n.primary_id = snap->primary_id;
	n.epoch = snap->epoch;
	n.applied_commands = snap->applied_commands;
	*s = n;
out:
	haagent__fsm_snapshot__free_unpacked(snap, NULL);
	return rc;
}
