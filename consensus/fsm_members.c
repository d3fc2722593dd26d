/* The replicated state: members, the primary and its epoch, divergence, maintenance, pause. */
#include "fsm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Converts and validates protobuf members into out[]. */
int fsm_load_members(Haagent__Member **in, size_t n, struct ha_member *out, unsigned *n_out,
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
		if (fsm_copy_str(o->name, sizeof(o->name), m->name, "member name", e) ||
		    fsm_copy_str(o->address, sizeof(o->address), m->address, "member address", e))
			return HA_EINVAL;
		o->id = m->id;
		o->raft_port = m->raft_port;
		o->rpc_port = m->rpc_port;
		o->db_port = m->db_port;
		o->flags = m->flags;
		o->priority = m->priority;
		if (fsm_copy_opt(o->errant_gtid, sizeof(o->errant_gtid), m->errant_gtid,
		                 "errant gtid", e))
			return HA_EINVAL;
		for (size_t j = 0; j < i; j++)
			if (out[j].id == o->id || !strcmp(out[j].name, o->name))
				return ha_err_set(e, HA_EINVAL, "member %u listed twice", o->id);
	}
	*n_out = (unsigned)n;
	return 0;
}

int fsm_apply_init_members(struct ha_fsm_state *s, const Haagent__CmdInitMembers *c,
                           struct ha_err *e)
{
	struct ha_member m[HA_FSM_MAX_MEMBERS];
	unsigned n;
	char cluster[HA_FSM_NAME_MAX];
	if (fsm_copy_str(cluster, sizeof(cluster), c->cluster, "cluster name", e) ||
	    fsm_load_members(c->members, c->n_members, m, &n, e))
		return HA_EINVAL;
	if (s->n_members > 0)
		return HA_FSM_NOOP; /* bootstrap only: later changes are CmdMemberAdd/Remove */
	memcpy(s->cluster, cluster, sizeof(cluster));
	memcpy(s->members, m, sizeof(m[0]) * n);
	s->n_members = n;
	return HA_FSM_APPLIED;
}

int fsm_apply_set_primary(struct ha_fsm_state *s, const Haagent__CmdSetPrimary *c, struct ha_err *e)
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
	fsm_add_event(s, "primary-established", fsm_member_name(s, c->primary_id),
	              s->primary_reason, 0);
	return HA_FSM_APPLIED;
}

int fsm_apply_node_diverged(struct ha_fsm_state *s, const Haagent__CmdNodeDiverged *c,
                            struct ha_err *e)
{
	struct ha_member *m = (struct ha_member *)ha_fsm_member(s, c->node);
	char errant[HA_FSM_GTID_MAX];
	if (m == NULL)
		return ha_err_set(e, HA_EINVAL, "diverged: %u is not a member", c->node);
	if (fsm_copy_opt(errant, sizeof(errant), c->errant_gtid, "errant gtid", e))
		return HA_EINVAL;
	bool was = (m->flags & HA_MEMBER_DIVERGED) != 0;
	if (was == c->diverged && strcmp(m->errant_gtid, errant) == 0)
		return HA_FSM_NOOP;
	if (c->diverged)
		m->flags |= HA_MEMBER_DIVERGED;
	else
		m->flags &= ~(uint32_t)HA_MEMBER_DIVERGED;
	memcpy(m->errant_gtid, errant, sizeof(errant));
	fsm_add_event(s, c->diverged ? "node-diverged" : "node-converged", m->name, errant,
	              c->unix_ms);
	return HA_FSM_APPLIED;
}

int fsm_apply_set_maintenance(struct ha_fsm_state *s, const Haagent__CmdSetMaintenance *c,
                              struct ha_err *e)
{
	struct ha_member *m = (struct ha_member *)ha_fsm_member(s, c->node);
	if (m == NULL)
		return ha_err_set(e, HA_EINVAL, "maintenance: %u is not a member", c->node);
	bool was = (m->flags & HA_MEMBER_MAINTENANCE) != 0;
	/* the primary's role must move first: a primary in maintenance would be left unwatched */
	if (was == c->on || (c->on && s->primary_id == c->node))
		return HA_FSM_NOOP;
	if (c->on)
		m->flags |= HA_MEMBER_MAINTENANCE;
	else
		m->flags &= ~(uint32_t)HA_MEMBER_MAINTENANCE;
	fsm_add_event(s, c->on ? "maintenance-on" : "maintenance-off", m->name, "", c->unix_ms);
	return HA_FSM_APPLIED;
}

int fsm_apply_set_paused(struct ha_fsm_state *s, const Haagent__CmdSetPaused *c, struct ha_err *e)
{
	char reason[sizeof(s->pause_reason)];
	if (fsm_copy_opt(reason, sizeof(reason), c->reason, "pause reason", e))
		return HA_EINVAL;
	if (s->paused == c->paused)
		return HA_FSM_NOOP;
	s->paused = c->paused;
	memcpy(s->pause_reason, c->paused ? reason : "", c->paused ? sizeof(reason) : 1);
	fsm_add_event(s, c->paused ? "paused" : "resumed", "", reason, c->unix_ms);
	return HA_FSM_APPLIED;
}

void fsm_to_pb_member(const struct ha_member *m, Haagent__Member *pb)
{
	haagent__member__init(pb);
	pb->id = m->id;
	pb->name = (char *)m->name;
	pb->address = (char *)m->address;
	pb->raft_port = m->raft_port;
	pb->rpc_port = m->rpc_port;
	pb->db_port = m->db_port;
	pb->flags = m->flags;
	pb->priority = m->priority;
	pb->errant_gtid = (char *)m->errant_gtid;
}

int ha_fsm_cmd_init_members(const char *cluster, const struct ha_member *m, unsigned n,
                            ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	if (n == 0 || n > HA_FSM_MAX_MEMBERS)
		return HA_EINVAL;
	Haagent__Member pbm[HA_FSM_MAX_MEMBERS];
	Haagent__Member *ptrs[HA_FSM_MAX_MEMBERS];
	for (unsigned i = 0; i < n; i++) {
		fsm_to_pb_member(&m[i], &pbm[i]);
		ptrs[i] = &pbm[i];
	}
	Haagent__CmdInitMembers im = HAAGENT__CMD_INIT_MEMBERS__INIT;
	im.cluster = (char *)cluster;
	im.n_members = n;
	im.members = ptrs;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_INIT_MEMBERS;
	cmd.init_members = &im;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_set_primary(uint64_t expected_epoch, uint32_t primary_id, const char *reason,
                           ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	Haagent__CmdSetPrimary sp = HAAGENT__CMD_SET_PRIMARY__INIT;
	sp.expected_epoch = expected_epoch;
	sp.primary_id = primary_id;
	char rb[sizeof(((struct ha_fsm_state *)0)->primary_reason)];
	sp.reason = (char *)fsm_prose(rb, sizeof(rb), reason);
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_SET_PRIMARY;
	cmd.set_primary = &sp;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_node_diverged(uint32_t node, bool diverged, const char *errant, uint64_t unix_ms,
                             ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	Haagent__CmdNodeDiverged d = HAAGENT__CMD_NODE_DIVERGED__INIT;
	d.node = node;
	d.diverged = diverged;
	d.errant_gtid = (char *)(errant ? errant : "");
	d.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_NODE_DIVERGED;
	cmd.node_diverged = &d;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_set_maintenance(uint32_t node, bool on, uint64_t unix_ms, ha_alloc_fn alloc,
                               uint8_t **out, size_t *len)
{
	Haagent__CmdSetMaintenance m = HAAGENT__CMD_SET_MAINTENANCE__INIT;
	m.node = node;
	m.on = on;
	m.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_SET_MAINTENANCE;
	cmd.set_maintenance = &m;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_set_paused(bool paused, const char *reason, uint64_t unix_ms, ha_alloc_fn alloc,
                          uint8_t **out, size_t *len)
{
	Haagent__CmdSetPaused p = HAAGENT__CMD_SET_PAUSED__INIT;
	p.paused = paused;
	p.reason = (char *)(reason ? reason : "");
	p.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_SET_PAUSED;
	cmd.set_paused = &p;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int fsm_apply_primary_writable(struct ha_fsm_state *s, const Haagent__CmdPrimaryWritable *c,
                               struct ha_err *e)
{
	(void)e;
	if (c->epoch != s->epoch || c->primary_id != s->primary_id || c->epoch == 0 ||
	    s->primary_writable_epoch == c->epoch)
		return HA_FSM_NOOP;
	s->primary_writable_epoch = c->epoch;
	return HA_FSM_APPLIED;
}

int ha_fsm_cmd_primary_writable(uint64_t epoch, uint32_t primary_id, ha_alloc_fn alloc,
                                uint8_t **out, size_t *len)
{
	Haagent__CmdPrimaryWritable c = HAAGENT__CMD_PRIMARY_WRITABLE__INIT;
	c.epoch = epoch;
	c.primary_id = primary_id;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_PRIMARY_WRITABLE;
	cmd.primary_writable = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

/* ---- membership changes (haadm node add / remove) ---- */

const struct ha_member *ha_fsm_joining(const struct ha_fsm_state *s)
{
	for (unsigned i = 0; i < s->n_members; i++)
		if (s->members[i].flags & HA_MEMBER_JOINING)
			return &s->members[i];
	return NULL;
}

unsigned ha_fsm_voters(const struct ha_fsm_state *s)
{
	unsigned n = 0;
	for (unsigned i = 0; i < s->n_members; i++)
		n += (s->members[i].flags & HA_MEMBER_JOINING) == 0;
	return n;
}

int fsm_apply_member_add(struct ha_fsm_state *s, const Haagent__CmdMemberAdd *c, struct ha_err *e)
{
	struct ha_member m;
	unsigned one;
	Haagent__Member *in[1] = {c->member};
	if (c->member == NULL)
		return ha_err_set(e, HA_EINVAL, "member add: no member");
	if (fsm_load_members(in, 1, &m, &one, e))
		return HA_EINVAL;
	/* The leader checked all of this against the state it saw; a second proposal of the same
	 * change (after RAFT_LEADERSHIPLOST), or one overtaken by another change, is a no-op. */
	if (s->n_members == 0 || s->n_members >= HA_FSM_MAX_MEMBERS || ha_fsm_joining(s))
		return HA_FSM_NOOP;
	for (unsigned i = 0; i < s->n_members; i++) {
		const struct ha_member *o = &s->members[i];
		if (o->id == m.id || !strcmp(o->name, m.name) ||
		    (!strcmp(o->address, m.address) && o->raft_port == m.raft_port))
			return HA_FSM_NOOP;
	}
	m.flags = (m.flags & HA_MEMBER_NO_PROMOTE) | HA_MEMBER_JOINING;
	m.errant_gtid[0] = '\0';
	s->members[s->n_members++] = m;
	char detail[160];
	snprintf(detail, sizeof(detail), "id %u at %s (raft %u, db %u): joining", m.id, m.address,
	         m.raft_port, m.db_port);
	fsm_add_event(s, "member-added", m.name, detail, c->unix_ms);
	return HA_FSM_APPLIED;
}

int fsm_apply_member_remove(struct ha_fsm_state *s, const Haagent__CmdMemberRemove *c,
                            struct ha_err *e)
{
	char reason[HA_FSM_TEXT_MAX];
	if (fsm_copy_opt(reason, sizeof(reason), c->reason, "remove reason", e))
		return HA_EINVAL;
	const struct ha_member *m = ha_fsm_member(s, c->node);
	/* never the primary */
	if (m == NULL || s->primary_id == c->node || s->n_members <= 1)
		return HA_FSM_NOOP;
	/* nor while a failover runs: every member's position counts until it is done */
	if (ha_fsm_failover_active(s))
		return HA_FSM_NOOP;
	char name[HA_FSM_NAME_MAX];
	memcpy(name, m->name, sizeof(name));
	size_t i = (size_t)(m - s->members);
	memmove(&s->members[i], &s->members[i + 1], sizeof(s->members[0]) * (s->n_members - i - 1));
	s->n_members--;
	memset(&s->members[s->n_members], 0, sizeof(s->members[0]));
	fsm_add_event(s, "member-removed", name, reason, c->unix_ms);
	return HA_FSM_APPLIED;
}

int fsm_apply_member_joined(struct ha_fsm_state *s, const Haagent__CmdMemberJoined *c,
                            struct ha_err *e)
{
	(void)e;
	struct ha_member *m = (struct ha_member *)ha_fsm_member(s, c->node);
	if (m == NULL || !(m->flags & HA_MEMBER_JOINING))
		return HA_FSM_NOOP;
	m->flags &= ~(uint32_t)HA_MEMBER_JOINING;
	fsm_add_event(s, "member-joined", m->name, "a raft voter, replicating", c->unix_ms);
	return HA_FSM_APPLIED;
}

int ha_fsm_cmd_member_add(const struct ha_member *m, uint64_t unix_ms, ha_alloc_fn alloc,
                          uint8_t **out, size_t *len)
{
	Haagent__Member pb;
	fsm_to_pb_member(m, &pb);
	Haagent__CmdMemberAdd c = HAAGENT__CMD_MEMBER_ADD__INIT;
	c.member = &pb;
	c.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_MEMBER_ADD;
	cmd.member_add = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_member_remove(uint32_t node, const char *reason, uint64_t unix_ms, ha_alloc_fn alloc,
                             uint8_t **out, size_t *len)
{
	Haagent__CmdMemberRemove c = HAAGENT__CMD_MEMBER_REMOVE__INIT;
	c.node = node;
	char rb[HA_FSM_TEXT_MAX];
	c.reason = (char *)fsm_prose(rb, sizeof(rb), reason);
	c.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_MEMBER_REMOVE;
	cmd.member_remove = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_member_joined(uint32_t node, uint64_t unix_ms, ha_alloc_fn alloc, uint8_t **out,
                             size_t *len)
{
	Haagent__CmdMemberJoined c = HAAGENT__CMD_MEMBER_JOINED__INIT;
	c.node = node;
	c.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_MEMBER_JOINED;
	cmd.member_joined = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}
