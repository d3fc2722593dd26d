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

/* Optional text: NULL is "", too long is an error. */
static int copy_opt(char *dst, size_t size, const char *src, const char *what, struct ha_err *e)
{
	return copy_str(dst, size, src ? src : "", what, e);
}

bool ha_fsm_failover_active(const struct ha_fsm_state *s)
{
	return s->failover.id != 0 && s->failover.phase >= HA_FO_BEGIN &&
	       s->failover.phase <= HA_FO_PROMOTING;
}

const char *ha_fo_phase_name(enum ha_fo_phase p)
{
	switch (p) {
	case HA_FO_NONE:
		return "none";
	case HA_FO_BEGIN:
		return "fencing";
	case HA_FO_FENCED:
		return "fenced";
	case HA_FO_PROMOTING:
		return "promoting";
	case HA_FO_DONE:
		return "done";
	case HA_FO_ABORTED:
		return "aborted";
	}
	return "?";
}

static const char *member_name(const struct ha_fsm_state *s, uint32_t id)
{
	const struct ha_member *m = ha_fsm_member(s, id);
	return m ? m->name : "";
}

/* Appends to the bounded history (the oldest entry goes). Texts are truncated, never refused:
 * every caller already validated its inputs. */
static void add_event(struct ha_fsm_state *s, const char *name, const char *node,
                      const char *detail, uint64_t unix_ms)
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

/* Converts and validates protobuf members into out[]. */
static int apply_backup_begin(struct ha_fsm_state *s, const Haagent__CmdBackupBegin *c,
                              struct ha_err *e);
static int apply_backup_end(struct ha_fsm_state *s, const Haagent__CmdBackupEnd *c,
                            struct ha_err *e);
static int apply_backup_verified(struct ha_fsm_state *s, const Haagent__CmdBackupVerified *c,
                                 struct ha_err *e);
static int apply_backup_deleted(struct ha_fsm_state *s, const Haagent__CmdBackupDeleted *c);
static int backup_from_pb(const Haagent__BackupRecord *pb, struct ha_backup_rec *r,
                          struct ha_err *e);
static int policy_from_pb(const Haagent__CmdSetBackupPolicy *c, struct ha_backup_policy *p,
                          struct ha_err *e);

static int apply_backup_policy(struct ha_fsm_state *s, const Haagent__CmdSetBackupPolicy *c,
                               struct ha_err *e)
{
	struct ha_backup_policy p;
	if (policy_from_pb(c, &p, e))
		return HA_EINVAL;
	if (s->backup_policy.set && !memcmp(&p, &s->backup_policy, sizeof(p)))
		return HA_FSM_NOOP;
	s->backup_policy = p;
	char d[300];
	snprintf(d, sizeof(d),
	         "full '%s', differential '%s', incremental '%s', keep %u full, %u days", p.full,
	         p.differential, p.incremental, p.keep_full, p.keep_days);
	add_event(s, "backup-policy", "", d, c->unix_ms);
	return HA_FSM_APPLIED;
}

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
		o->priority = m->priority;
		if (copy_opt(o->errant_gtid, sizeof(o->errant_gtid), m->errant_gtid, "errant gtid",
		             e))
			return HA_EINVAL;
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
	add_event(s, "primary-established", member_name(s, c->primary_id), s->primary_reason, 0);
	return HA_FSM_APPLIED;
}

static int apply_failover_begin(struct ha_fsm_state *s, const Haagent__CmdFailoverBegin *c,
                                struct ha_err *e)
{
	char reason[256];
	if (copy_opt(reason, sizeof(reason), c->reason, "failover reason", e))
		return HA_EINVAL;
	if (ha_fsm_member(s, c->old_primary) == NULL)
		return ha_err_set(e, HA_EINVAL, "failover: %u is not a member", c->old_primary);
	/* Compare-and-set: only from the expected epoch, with that node as primary, and only one
	 * failover at a time. A repeated proposal is a no-op. */
	if (c->planned && (ha_fsm_member(s, c->target) == NULL || c->target == c->old_primary))
		return ha_err_set(e, HA_EINVAL, "switchover: target %u is not another member",
		                  c->target);
	/* A failover in PROMOTING whose candidate (the epoch's primary) failed is superseded:
	 * the candidate becomes the old primary of the next one. */
	bool supersede = ha_fsm_failover_active(s) && !c->planned &&
	                 s->failover.phase == HA_FO_PROMOTING &&
	                 s->failover.candidate == c->old_primary;
	if (c->expected_epoch != s->epoch || s->primary_id != c->old_primary ||
	    (ha_fsm_failover_active(s) && !supersede))
		return HA_FSM_NOOP;
	/* what the superseded failover's candidate was to apply: the next one owes it too */
	char owed[HA_FSM_GTID_MAX] = "";
	if (supersede) {
		s->aborted++;
		add_event(s, "failover-superseded", member_name(s, c->old_primary), reason,
		          c->unix_ms);
		memcpy(owed,
		       s->failover.received_gtid[0] ? s->failover.received_gtid
		                                    : s->failover.owed_gtid,
		       sizeof(owed));
	}
	struct ha_failover *f = &s->failover;
	memset(f, 0, sizeof(*f));
	f->id = ++s->next_failover_id;
	f->phase = HA_FO_BEGIN;
	memcpy(f->owed_gtid, owed, sizeof(owed));
	f->old_primary = c->old_primary;
	f->planned = c->planned;
	memcpy(f->reason, reason, sizeof(reason));
	f->begin_ms = c->unix_ms;
	if (c->planned) {
		f->target = c->target;
		f->timeout_ms = c->timeout_ms;
		f->grace_ms = c->grace_ms;
	}
	s->epoch++;
	f->epoch = s->epoch;
	s->primary_id = 0;
	add_event(s, c->planned ? "switchover-begin" : "failover-begin",
	          member_name(s, c->old_primary), reason, c->unix_ms);
	return HA_FSM_APPLIED;
}

static int apply_failover_advance(struct ha_fsm_state *s, const Haagent__CmdFailoverAdvance *c,
                                  struct ha_err *e)
{
	struct ha_failover *f = &s->failover;
	char fenced_by[sizeof(f->fenced_by)], lost[sizeof(f->lost_gtid)], detail[sizeof(f->detail)];
	char fenced_gtid[sizeof(f->fenced_gtid)], received[sizeof(f->received_gtid)];
	char salvaged[sizeof(f->salvaged_gtid)];
	if (copy_opt(received, sizeof(received), c->received_gtid, "received gtid", e) ||
	    copy_opt(salvaged, sizeof(salvaged), c->salvaged_gtid, "salvaged gtid", e) ||
	    copy_opt(fenced_by, sizeof(fenced_by), c->fenced_by, "fenced_by", e) ||
	    copy_opt(fenced_gtid, sizeof(fenced_gtid), c->fenced_gtid, "fenced gtid", e) ||
	    copy_opt(lost, sizeof(lost), c->lost_gtid, "lost gtid", e) ||
	    copy_opt(detail, sizeof(detail), c->detail, "detail", e))
		return HA_EINVAL;
	if (c->phase < HA_FO_FENCED || c->phase > HA_FO_ABORTED)
		return ha_err_set(e, HA_EINVAL, "failover: bad phase %u", c->phase);
	if (c->salvage > HA_SALVAGE_FAILED || (c->salvage && c->phase != HA_FO_PROMOTING) ||
	    (c->salvage && c->accept_loss))
		return ha_err_set(e, HA_EINVAL, "failover: bad salvage %u in phase %u", c->salvage,
		                  c->phase);
	if (((c->phase == HA_FO_PROMOTING && !c->accept_loss && c->salvage < HA_SALVAGE_DONE) ||
	     (c->phase == HA_FO_ABORTED && c->candidate)) &&
	    ha_fsm_member(s, c->candidate) == NULL)
		return ha_err_set(e, HA_EINVAL, "failover: candidate %u is not a member",
		                  c->candidate);
	/* Forward only, for the current failover; ABORTED only before promotion; DONE only after.
	 */
	if (c->id != f->id || !ha_fsm_failover_active(s))
		return HA_FSM_NOOP;
	if (c->accept_loss) {
		/* a modifier of the current phase (FENCED: choose without waiting for what a
		 * reporting node holds; PROMOTING: stop applying the relay log), not a move */
		if (c->phase != f->phase || f->accept_loss ||
		    (f->phase != HA_FO_FENCED && f->phase != HA_FO_PROMOTING))
			return HA_FSM_NOOP;
		f->accept_loss = true;
		if (f->salvage == HA_SALVAGE_WANTED) {
			/* nothing is waited for any more, the salvage included */
			f->salvage = HA_SALVAGE_FAILED;
			snprintf(f->salvage_detail, sizeof(f->salvage_detail),
			         "not waited for: the loss was accepted");
		}
		memcpy(f->lost_gtid, lost, sizeof(lost));
		f->lost_count = c->lost_count;
		add_event(s, "failover-accept-loss", member_name(s, f->candidate), detail,
		          c->unix_ms);
		return HA_FSM_APPLIED;
	}
	if (c->salvage >= HA_SALVAGE_DONE) {
		/* the outcome of a salvage (a modifier of PROMOTING): what was applied, and what is
		 * lost now */
		if (f->phase != HA_FO_PROMOTING || f->salvage != HA_SALVAGE_WANTED)
			return HA_FSM_NOOP;
		f->salvage = (enum ha_fo_salvage)c->salvage;
		memcpy(f->salvaged_gtid, salvaged, sizeof(salvaged));
		f->salvaged_count = c->salvaged_count;
		memcpy(f->salvage_detail, detail, sizeof(detail));
		if (c->salvage == HA_SALVAGE_DONE) {
			memcpy(f->lost_gtid, lost, sizeof(lost));
			f->lost_count = c->lost_count;
		}
		add_event(s,
		          c->salvage == HA_SALVAGE_DONE ? "failover-salvaged"
		                                        : "failover-salvage-failed",
		          member_name(s, f->old_primary), detail, c->unix_ms);
		return HA_FSM_APPLIED;
	}
	if (c->phase <= f->phase)
		return HA_FSM_NOOP;
	if (c->phase == HA_FO_ABORTED && f->phase >= HA_FO_PROMOTING)
		return HA_FSM_NOOP;
	if (c->phase == HA_FO_DONE && f->phase != HA_FO_PROMOTING)
		return HA_FSM_NOOP;
	if (c->phase == HA_FO_PROMOTING && f->phase != HA_FO_FENCED)
		return HA_FSM_NOOP;
	f->phase = (enum ha_fo_phase)c->phase;
	switch (f->phase) {
	case HA_FO_FENCED:
		f->fenced_ms = c->unix_ms;
		memcpy(f->fenced_by, fenced_by, sizeof(fenced_by));
		memcpy(f->fenced_gtid, fenced_gtid, sizeof(fenced_gtid));
		add_event(s, "old-primary-fenced", member_name(s, f->old_primary), fenced_by,
		          c->unix_ms);
		break;
	case HA_FO_PROMOTING:
		f->promoting_ms = c->unix_ms;
		f->candidate = c->candidate;
		memcpy(f->received_gtid, received, sizeof(received));
		memcpy(f->lost_gtid, lost, sizeof(lost));
		f->lost_count = c->lost_count;
		memcpy(f->detail, detail, sizeof(detail));
		f->salvage = !f->planned && c->salvage == HA_SALVAGE_WANTED ? HA_SALVAGE_WANTED
		                                                            : HA_SALVAGE_NONE;
		s->primary_id = c->candidate;
		add_event(s, "candidate-chosen", member_name(s, c->candidate), detail, c->unix_ms);
		break;
	case HA_FO_DONE:
		f->done_ms = c->unix_ms;
		if (f->accept_loss) {
			memcpy(f->lost_gtid, lost, sizeof(lost));
			f->lost_count = c->lost_count;
		}
		if (f->planned)
			s->switchovers_done++;
		else
			s->failovers_done++;
		add_event(s, f->planned ? "switchover-done" : "failover-done",
		          member_name(s, f->candidate), detail, c->unix_ms);
		break;
	case HA_FO_ABORTED:
		f->done_ms = c->unix_ms;
		s->aborted++;
		f->candidate = c->candidate;
		memcpy(f->detail, detail, sizeof(detail));
		s->primary_id = c->candidate;
		add_event(s, f->planned ? "switchover-aborted" : "failover-aborted",
		          member_name(s, f->old_primary), detail, c->unix_ms);
		break;
	default:
		break;
	}
	return HA_FSM_APPLIED;
}

static int apply_node_diverged(struct ha_fsm_state *s, const Haagent__CmdNodeDiverged *c,
                               struct ha_err *e)
{
	struct ha_member *m = (struct ha_member *)ha_fsm_member(s, c->node);
	char errant[HA_FSM_GTID_MAX];
	if (m == NULL)
		return ha_err_set(e, HA_EINVAL, "diverged: %u is not a member", c->node);
	if (copy_opt(errant, sizeof(errant), c->errant_gtid, "errant gtid", e))
		return HA_EINVAL;
	bool was = (m->flags & HA_MEMBER_DIVERGED) != 0;
	if (was == c->diverged && strcmp(m->errant_gtid, errant) == 0)
		return HA_FSM_NOOP;
	if (c->diverged)
		m->flags |= HA_MEMBER_DIVERGED;
	else
		m->flags &= ~(uint32_t)HA_MEMBER_DIVERGED;
	memcpy(m->errant_gtid, errant, sizeof(errant));
	add_event(s, c->diverged ? "node-diverged" : "node-converged", m->name, errant, c->unix_ms);
	return HA_FSM_APPLIED;
}

static int apply_set_maintenance(struct ha_fsm_state *s, const Haagent__CmdSetMaintenance *c,
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
	add_event(s, c->on ? "maintenance-on" : "maintenance-off", m->name, "", c->unix_ms);
	return HA_FSM_APPLIED;
}

static int apply_set_paused(struct ha_fsm_state *s, const Haagent__CmdSetPaused *c,
                            struct ha_err *e)
{
	char reason[sizeof(s->pause_reason)];
	if (copy_opt(reason, sizeof(reason), c->reason, "pause reason", e))
		return HA_EINVAL;
	if (s->paused == c->paused)
		return HA_FSM_NOOP;
	s->paused = c->paused;
	memcpy(s->pause_reason, c->paused ? reason : "", c->paused ? sizeof(reason) : 1);
	add_event(s, c->paused ? "paused" : "resumed", "", reason, c->unix_ms);
	return HA_FSM_APPLIED;
}

static int apply_event(struct ha_fsm_state *s, const Haagent__CmdEvent *c, struct ha_err *e)
{
	char name[48], node[HA_FSM_NAME_MAX], detail[256];
	if (copy_str(name, sizeof(name), c->name, "event name", e) ||
	    copy_opt(node, sizeof(node), c->node, "event node", e) ||
	    copy_opt(detail, sizeof(detail), c->detail, "event detail", e))
		return HA_EINVAL;
	add_event(s, name, node, detail, c->unix_ms);
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
	case HAAGENT__FSM_COMMAND__CMD_FAILOVER_BEGIN:
		rc = apply_failover_begin(s, cmd->failover_begin, e);
		break;
	case HAAGENT__FSM_COMMAND__CMD_FAILOVER_ADVANCE:
		rc = apply_failover_advance(s, cmd->failover_advance, e);
		break;
	case HAAGENT__FSM_COMMAND__CMD_NODE_DIVERGED:
		rc = apply_node_diverged(s, cmd->node_diverged, e);
		break;
	case HAAGENT__FSM_COMMAND__CMD_EVENT:
		rc = apply_event(s, cmd->event, e);
		break;
	case HAAGENT__FSM_COMMAND__CMD_SET_MAINTENANCE:
		rc = apply_set_maintenance(s, cmd->set_maintenance, e);
		break;
	case HAAGENT__FSM_COMMAND__CMD_SET_PAUSED:
		rc = apply_set_paused(s, cmd->set_paused, e);
		break;
	case HAAGENT__FSM_COMMAND__CMD_BACKUP_BEGIN:
		rc = apply_backup_begin(s, cmd->backup_begin, e);
		break;
	case HAAGENT__FSM_COMMAND__CMD_BACKUP_END:
		rc = apply_backup_end(s, cmd->backup_end, e);
		break;
	case HAAGENT__FSM_COMMAND__CMD_BACKUP_VERIFIED:
		rc = apply_backup_verified(s, cmd->backup_verified, e);
		break;
	case HAAGENT__FSM_COMMAND__CMD_BACKUP_DELETED:
		rc = apply_backup_deleted(s, cmd->backup_deleted);
		break;
	case HAAGENT__FSM_COMMAND__CMD_SET_BACKUP_POLICY:
		rc = apply_backup_policy(s, cmd->set_backup_policy, e);
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

/* Prose (reasons, details) is shortened to what the state keeps, the cut marked with "...",
 * at a UTF-8 character boundary: a long explanation must never get a decision refused. GTID
 * positions are data and are never shortened (the state takes any position that parses). */
static const char *prose(char *buf, size_t size, const char *text)
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

int ha_fsm_cmd_set_primary(uint64_t expected_epoch, uint32_t primary_id, const char *reason,
                           ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	Haagent__CmdSetPrimary sp = HAAGENT__CMD_SET_PRIMARY__INIT;
	sp.expected_epoch = expected_epoch;
	sp.primary_id = primary_id;
	char rb[sizeof(((struct ha_fsm_state *)0)->primary_reason)];
	sp.reason = (char *)prose(rb, sizeof(rb), reason);
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_SET_PRIMARY;
	cmd.set_primary = &sp;
	return pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_failover_begin(const struct ha_fo_begin *in, ha_alloc_fn alloc, uint8_t **out,
                              size_t *len)
{
	Haagent__CmdFailoverBegin b = HAAGENT__CMD_FAILOVER_BEGIN__INIT;
	b.expected_epoch = in->expected_epoch;
	b.old_primary = in->old_primary;
	char rb[sizeof(((struct ha_failover *)0)->reason)];
	b.reason = (char *)prose(rb, sizeof(rb), in->reason);
	b.unix_ms = in->unix_ms;
	b.planned = in->planned;
	b.target = in->target;
	b.timeout_ms = in->timeout_ms;
	b.grace_ms = in->grace_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_FAILOVER_BEGIN;
	cmd.failover_begin = &b;
	return pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_failover_advance(const struct ha_fo_advance *a, ha_alloc_fn alloc, uint8_t **out,
                                size_t *len)
{
	Haagent__CmdFailoverAdvance v = HAAGENT__CMD_FAILOVER_ADVANCE__INIT;
	v.id = a->id;
	v.phase = a->phase;
	v.candidate = a->candidate;
	v.unix_ms = a->unix_ms;
	char fb[sizeof(((struct ha_failover *)0)->fenced_by)];
	char db[sizeof(((struct ha_failover *)0)->detail)];
	v.fenced_by = (char *)prose(fb, sizeof(fb), a->fenced_by);
	v.lost_gtid = (char *)(a->lost_gtid ? a->lost_gtid : "");
	v.lost_count = a->lost_count;
	v.detail = (char *)prose(db, sizeof(db), a->detail);
	v.fenced_gtid = (char *)(a->fenced_gtid ? a->fenced_gtid : "");
	v.accept_loss = a->accept_loss;
	v.received_gtid = (char *)(a->received_gtid ? a->received_gtid : "");
	v.salvage = a->salvage;
	v.salvaged_gtid = (char *)(a->salvaged_gtid ? a->salvaged_gtid : "");
	v.salvaged_count = a->salvaged_count;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_FAILOVER_ADVANCE;
	cmd.failover_advance = &v;
	return pack_cmd(&cmd, alloc, out, len);
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
	return pack_cmd(&cmd, alloc, out, len);
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
	return pack_cmd(&cmd, alloc, out, len);
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
	return pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_event(const char *name, const char *node, const char *detail, uint64_t unix_ms,
                     ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	Haagent__CmdEvent ev = HAAGENT__CMD_EVENT__INIT;
	ev.name = (char *)name;
	ev.node = (char *)(node ? node : "");
	char db[sizeof(((struct ha_event *)0)->detail)];
	ev.detail = (char *)prose(db, sizeof(db), detail);
	ev.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_EVENT;
	cmd.event = &ev;
	return pack_cmd(&cmd, alloc, out, len);
}

void ha_fsm_failover_to_pb(const struct ha_failover *f, Haagent__Failover *pb)
{
	haagent__failover__init(pb);
	pb->id = f->id;
	pb->phase = f->phase;
	pb->old_primary = f->old_primary;
	pb->candidate = f->candidate;
	pb->epoch = f->epoch;
	pb->reason = (char *)f->reason;
	pb->planned = f->planned;
	pb->begin_unix_ms = f->begin_ms;
	pb->fenced_unix_ms = f->fenced_ms;
	pb->promoting_unix_ms = f->promoting_ms;
	pb->done_unix_ms = f->done_ms;
	pb->fenced_by = (char *)f->fenced_by;
	pb->lost_gtid = (char *)f->lost_gtid;
	pb->lost_count = f->lost_count;
	pb->detail = (char *)f->detail;
	pb->target = f->target;
	pb->timeout_ms = f->timeout_ms;
	pb->grace_ms = f->grace_ms;
	pb->fenced_gtid = (char *)f->fenced_gtid;
	pb->accept_loss = f->accept_loss;
	pb->received_gtid = (char *)f->received_gtid;
	pb->owed_gtid = (char *)f->owed_gtid;
	pb->salvage = f->salvage;
	pb->salvaged_gtid = (char *)f->salvaged_gtid;
	pb->salvaged_count = f->salvaged_count;
	pb->salvage_detail = (char *)f->salvage_detail;
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

static int failover_from_pb(const Haagent__Failover *pb, struct ha_failover *f, struct ha_err *e)
{
	memset(f, 0, sizeof(*f));
	if (pb == NULL)
		return 0;
	if (pb->phase > HA_FO_ABORTED)
		return ha_err_set(e, HA_EINVAL, "snapshot: bad failover phase %u", pb->phase);
	if (pb->salvage > HA_SALVAGE_FAILED)
		return ha_err_set(e, HA_EINVAL, "snapshot: bad salvage state %u", pb->salvage);
	f->salvage = (enum ha_fo_salvage)pb->salvage;
	f->salvaged_count = pb->salvaged_count;
	f->id = pb->id;
	f->phase = (enum ha_fo_phase)pb->phase;
	f->old_primary = pb->old_primary;
	f->candidate = pb->candidate;
	f->epoch = pb->epoch;
	f->planned = pb->planned;
	f->begin_ms = pb->begin_unix_ms;
	f->fenced_ms = pb->fenced_unix_ms;
	f->promoting_ms = pb->promoting_unix_ms;
	f->done_ms = pb->done_unix_ms;
	f->lost_count = pb->lost_count;
	f->target = pb->target;
	f->timeout_ms = pb->timeout_ms;
	f->grace_ms = pb->grace_ms;
	f->accept_loss = pb->accept_loss;
	if (copy_opt(f->reason, sizeof(f->reason), pb->reason, "reason", e) ||
	    copy_opt(f->fenced_gtid, sizeof(f->fenced_gtid), pb->fenced_gtid, "fenced gtid", e) ||
	    copy_opt(f->fenced_by, sizeof(f->fenced_by), pb->fenced_by, "fenced_by", e) ||
	    copy_opt(f->lost_gtid, sizeof(f->lost_gtid), pb->lost_gtid, "lost", e) ||
	    copy_opt(f->detail, sizeof(f->detail), pb->detail, "detail", e) ||
	    copy_opt(f->received_gtid, sizeof(f->received_gtid), pb->received_gtid, "received",
	             e) ||
	    copy_opt(f->owed_gtid, sizeof(f->owed_gtid), pb->owed_gtid, "owed", e) ||
	    copy_opt(f->salvaged_gtid, sizeof(f->salvaged_gtid), pb->salvaged_gtid, "salvaged",
	             e) ||
	    copy_opt(f->salvage_detail, sizeof(f->salvage_detail), pb->salvage_detail,
	             "salvage detail", e))
		return HA_EINVAL;
	return 0;
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
	snap.failovers_done = s->failovers_done;
	snap.switchovers_done = s->switchovers_done;
	snap.aborted = s->aborted;
	snap.pause_reason = (char *)s->pause_reason;
	int rc = pack(&snap.base, alloc, out, len);
	free(bks);
	free(bkp);
	return rc;
}

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
	if (copy_str(np->cluster, sizeof(np->cluster), snap->cluster, "cluster name", e) ||
	    copy_str(np->primary_reason, sizeof(np->primary_reason), snap->primary_reason, "reason",
	             e)) {
		rc = HA_EINVAL;
		goto out;
	}
	if (snap->n_members > 0 &&
	    load_members(snap->members, snap->n_members, np->members, &np->n_members, e)) {
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
	if (failover_from_pb(snap->failover, &np->failover, e)) {
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
		if (copy_str(o->name, sizeof(o->name), ev->name, "event name", e) ||
		    copy_opt(o->node, sizeof(o->node), ev->node, "event node", e) ||
		    copy_opt(o->detail, sizeof(o->detail), ev->detail, "event detail", e)) {
			rc = HA_EINVAL;
			goto out;
		}
	}
	np->n_events = (unsigned)snap->n_events;
	np->next_event_seq = snap->next_event_seq;
	np->paused = snap->paused;
	if (snap->n_backups > HA_FSM_MAX_BACKUPS) {
		rc = ha_err_set(e, HA_EINVAL, "fsm: snapshot has %zu backups", snap->n_backups);
		goto out;
	}
	for (size_t i = 0; i < snap->n_backups; i++) {
		if (backup_from_pb(snap->backups[i], &np->backups[i], e)) {
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
	if (snap->backup_policy && policy_from_pb(snap->backup_policy, &np->backup_policy, e)) {
		rc = HA_EINVAL;
		goto out;
	}
	np->failovers_done = snap->failovers_done;
	np->switchovers_done = snap->switchovers_done;
	np->aborted = snap->aborted;
	if (copy_opt(np->pause_reason, sizeof(np->pause_reason), snap->pause_reason, "pause reason",
	             e)) {
		rc = HA_EINVAL;
		goto out;
	}
	*s = *np;
out:
	free(np);
	haagent__fsm_snapshot__free_unpacked(snap, NULL);
	return rc;
}

/* ---- backup catalog ---- */

const char *ha_backup_state_name(enum ha_backup_state st)
{
	switch (st) {
	case HA_BK_RUNNING:
		return "running";
	case HA_BK_DONE:
		return "done";
	case HA_BK_FAILED:
		return "failed";
	case HA_BK_ABANDONED:
		return "abandoned";
	case HA_BK_DELETED:
		return "deleted";
	}
	return "?";
}

/* The catalog is in ascending id order (appended in order, evicted in place, checked on
 * restore): a binary search. */
void ha_fsm_backup_gtid(char *out, size_t size, const char *gtid)
{
	if (ha_gtid_copy_text(out, size, gtid) != 0)
		snprintf(out, size, "(over %zu bytes: see the manifest)", size - 1);
}

const struct ha_backup_rec *ha_fsm_backup(const struct ha_fsm_state *s, uint64_t id)
{
	unsigned lo = 0, hi = s->n_backups;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (s->backups[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n_backups && s->backups[lo].id == id ? &s->backups[lo] : NULL;
}

const struct ha_backup_rec *ha_fsm_backup_running(const struct ha_fsm_state *s)
{
	for (unsigned i = 0; i < s->n_backups; i++)
		if (s->backups[i].state == HA_BK_RUNNING)
			return &s->backups[i];
	return NULL;
}

/* The oldest record nothing needs (failed, abandoned, or deleted and no recorded backup's
 * parent, so that retention can still find what a deleted full backup anchored), or -1. */
static int evictable(const struct ha_fsm_state *s)
{
	for (unsigned i = 0; i < s->n_backups; i++) {
		enum ha_backup_state st = s->backups[i].state;
		if (st == HA_BK_FAILED || st == HA_BK_ABANDONED)
			return (int)i;
		if (st != HA_BK_DELETED)
			continue;
		bool parent = false;
		for (unsigned k = i + 1; k < s->n_backups && !parent; k++)
			parent = s->backups[k].parent == s->backups[i].id &&
			         s->backups[k].state != HA_BK_DELETED;
		if (!parent)
			return (int)i;
	}
	return -1;
}

bool ha_fsm_backup_room(const struct ha_fsm_state *s)
{
	return s->n_backups < HA_FSM_MAX_BACKUPS || evictable(s) >= 0;
}

/* Makes room for one more record by dropping the oldest that nothing needs. Returns false
 * when every slot holds a backup that exists or is needed. */
static bool backup_room(struct ha_fsm_state *s)
{
	if (s->n_backups < HA_FSM_MAX_BACKUPS)
		return true;
	int i = evictable(s);
	if (i < 0)
		return false;
	memmove(&s->backups[i], &s->backups[i + 1],
	        sizeof(s->backups[0]) * (s->n_backups - (unsigned)i - 1));
	s->n_backups--;
	return true;
}

static bool valid_type(const char *t)
{
	return !strcmp(t, "full") || !strcmp(t, "differential") || !strcmp(t, "incremental");
}

static int apply_backup_begin(struct ha_fsm_state *s, const Haagent__CmdBackupBegin *c,
                              struct ha_err *e)
{
	struct ha_backup_rec r;
	memset(&r, 0, sizeof(r));
	if (copy_str(r.name, sizeof(r.name), c->name, "backup name", e) ||
	    copy_str(r.type, sizeof(r.type), c->type, "backup type", e) ||
	    copy_opt(r.detail, sizeof(r.detail), c->detail, "backup detail", e))
		return HA_EINVAL;
	if (!valid_type(r.type) || ha_fsm_member(s, c->node) == NULL ||
	    strspn(r.name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
	        strlen(r.name) ||
	    r.name[0] == '.')
		return ha_err_set(e, HA_EINVAL, "backup begin: bad type, node or name");
	if ((strcmp(r.type, "full") != 0) != (c->parent != 0))
		return ha_err_set(e, HA_EINVAL,
		                  "backup begin: a full backup has no parent, others do");
	if (c->expected_id != s->next_backup_id + 1 || ha_fsm_backup_running(s))
		return HA_FSM_NOOP;
	if (c->parent) {
		const struct ha_backup_rec *p = ha_fsm_backup(s, c->parent);
		if (p == NULL || p->state != HA_BK_DONE)
			return HA_FSM_NOOP;
	}
	if (!backup_room(s))
		return HA_FSM_NOOP;
	r.id = ++s->next_backup_id;
	r.parent = c->parent;
	r.node = c->node;
	r.state = HA_BK_RUNNING;
	r.requested_ms = c->unix_ms;
	s->backups[s->n_backups++] = r;
	add_event(s, "backup-begin", member_name(s, c->node), r.name, c->unix_ms);
	return HA_FSM_APPLIED;
}

static int apply_backup_end(struct ha_fsm_state *s, const Haagent__CmdBackupEnd *c,
                            struct ha_err *e)
{
	struct ha_backup_rec *r = (struct ha_backup_rec *)ha_fsm_backup(s, c->id);
	char detail[256], gtid[HA_FSM_TEXT_MAX];
	if (copy_opt(detail, sizeof(detail), c->detail, "detail", e) ||
	    copy_opt(gtid, sizeof(gtid), c->gtid, "gtid", e))
		return HA_EINVAL;
	if (c->state != HA_BK_DONE && c->state != HA_BK_FAILED && c->state != HA_BK_ABANDONED)
		return ha_err_set(e, HA_EINVAL, "backup end: bad state %u", c->state);
	if (r == NULL || r->state != HA_BK_RUNNING)
		return HA_FSM_NOOP;
	r->state = (enum ha_backup_state)c->state;
	memcpy(r->detail, detail, sizeof(detail));
	r->finished_ms = c->finished_unix_ms;
	r->started_ms = c->started_unix_ms;
	if (r->state == HA_BK_DONE) {
		r->from_lsn = c->from_lsn;
		r->to_lsn = c->to_lsn;
		memcpy(r->gtid, gtid, sizeof(gtid));
		r->bytes_in = c->bytes_in;
		r->bytes_stored = c->bytes_stored;
		r->chunks = c->chunks;
	}
	add_event(s,
	          r->state == HA_BK_DONE     ? "backup-done"
	          : r->state == HA_BK_FAILED ? "backup-failed"
	                                     : "backup-abandoned",
	          member_name(s, r->node), r->state == HA_BK_DONE ? r->name : detail,
	          c->finished_unix_ms);
	return HA_FSM_APPLIED;
}

static int apply_backup_verified(struct ha_fsm_state *s, const Haagent__CmdBackupVerified *c,
                                 struct ha_err *e)
{
	struct ha_backup_rec *r = (struct ha_backup_rec *)ha_fsm_backup(s, c->id);
	char detail[256];
	if (copy_opt(detail, sizeof(detail), c->detail, "detail", e))
		return HA_EINVAL;
	if (r == NULL || r->state != HA_BK_DONE)
		return HA_FSM_NOOP;
	r->verified = c->ok ? 1 : -1;
	r->verified_ms = c->unix_ms;
	r->drilled = c->drill;
	r->drill_ms = c->drill_ms;
	memcpy(r->verify_detail, detail, sizeof(detail));
	add_event(s, c->ok ? "backup-verified" : "backup-verify-failed", "", r->name, c->unix_ms);
	return HA_FSM_APPLIED;
}

static int apply_backup_deleted(struct ha_fsm_state *s, const Haagent__CmdBackupDeleted *c)
{
	struct ha_backup_rec *r = (struct ha_backup_rec *)ha_fsm_backup(s, c->id);
	if (r == NULL || r->state == HA_BK_RUNNING || r->state == HA_BK_DELETED)
		return HA_FSM_NOOP;
	r->state = HA_BK_DELETED;
	add_event(s, "backup-deleted", "", r->name, c->unix_ms);
	return HA_FSM_APPLIED;
}

int ha_fsm_cmd_backup_begin(const struct ha_bk_begin *b, ha_alloc_fn alloc, uint8_t **out,
                            size_t *len)
{
	Haagent__CmdBackupBegin c = HAAGENT__CMD_BACKUP_BEGIN__INIT;
	c.expected_id = b->expected_id;
	c.name = (char *)b->name;
	c.type = (char *)b->type;
	c.parent = b->parent;
	c.node = b->node;
	c.detail = (char *)(b->detail ? b->detail : "");
	c.unix_ms = b->unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_BACKUP_BEGIN;
	cmd.backup_begin = &c;
	return pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_backup_end(uint64_t id, enum ha_backup_state state, const char *detail,
                          const struct ha_backup_rec *res, uint64_t unix_ms, ha_alloc_fn alloc,
                          uint8_t **out, size_t *len)
{
	Haagent__CmdBackupEnd c = HAAGENT__CMD_BACKUP_END__INIT;
	c.id = id;
	c.state = state;
	c.detail = (char *)(detail ? detail : "");
	c.finished_unix_ms = unix_ms;
	c.gtid = "";
	if (res) {
		c.started_unix_ms = res->started_ms;
		if (res->finished_ms)
			c.finished_unix_ms = res->finished_ms;
		c.from_lsn = res->from_lsn;
		c.to_lsn = res->to_lsn;
		c.gtid = (char *)res->gtid;
		c.bytes_in = res->bytes_in;
		c.bytes_stored = res->bytes_stored;
		c.chunks = res->chunks;
	}
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_BACKUP_END;
	cmd.backup_end = &c;
	return pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_backup_verified(uint64_t id, bool ok, bool drill, const char *detail,
                               uint64_t drill_ms, uint64_t unix_ms, ha_alloc_fn alloc,
                               uint8_t **out, size_t *len)
{
	Haagent__CmdBackupVerified c = HAAGENT__CMD_BACKUP_VERIFIED__INIT;
	c.id = id;
	c.ok = ok;
	c.drill = drill;
	c.detail = (char *)(detail ? detail : "");
	c.drill_ms = drill_ms;
	c.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_BACKUP_VERIFIED;
	cmd.backup_verified = &c;
	return pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_backup_deleted(uint64_t id, uint64_t unix_ms, ha_alloc_fn alloc, uint8_t **out,
                              size_t *len)
{
	Haagent__CmdBackupDeleted c = HAAGENT__CMD_BACKUP_DELETED__INIT;
	c.id = id;
	c.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_BACKUP_DELETED;
	cmd.backup_deleted = &c;
	return pack_cmd(&cmd, alloc, out, len);
}

void ha_fsm_backup_to_pb(const struct ha_backup_rec *r, Haagent__BackupRecord *pb)
{
	haagent__backup_record__init(pb);
	pb->id = r->id;
	pb->name = (char *)r->name;
	pb->type = (char *)r->type;
	pb->parent = r->parent;
	pb->node = r->node;
	pb->state = r->state;
	pb->requested_unix_ms = r->requested_ms;
	pb->started_unix_ms = r->started_ms;
	pb->finished_unix_ms = r->finished_ms;
	pb->from_lsn = r->from_lsn;
	pb->to_lsn = r->to_lsn;
	pb->gtid = (char *)r->gtid;
	pb->bytes_in = r->bytes_in;
	pb->bytes_stored = r->bytes_stored;
	pb->chunks = r->chunks;
	pb->detail = (char *)r->detail;
	pb->verified = r->verified;
	pb->verified_unix_ms = r->verified_ms;
	pb->verify_detail = (char *)r->verify_detail;
	pb->drill_ms = r->drill_ms;
	pb->drilled = r->drilled;
}

static int backup_from_pb(const Haagent__BackupRecord *pb, struct ha_backup_rec *r,
                          struct ha_err *e)
{
	memset(r, 0, sizeof(*r));
	if (copy_str(r->name, sizeof(r->name), pb->name, "backup name", e) ||
	    copy_str(r->type, sizeof(r->type), pb->type, "backup type", e) ||
	    copy_opt(r->gtid, sizeof(r->gtid), pb->gtid, "backup gtid", e) ||
	    copy_opt(r->detail, sizeof(r->detail), pb->detail, "backup detail", e) ||
	    copy_opt(r->verify_detail, sizeof(r->verify_detail), pb->verify_detail, "verify", e))
		return HA_EINVAL;
	if (pb->state < HA_BK_RUNNING || pb->state > HA_BK_DELETED || !valid_type(r->type))
		return ha_err_set(e, HA_EINVAL, "snapshot: bad backup record %llu",
		                  (unsigned long long)pb->id);
	r->id = pb->id;
	r->parent = pb->parent;
	r->node = pb->node;
	r->state = (enum ha_backup_state)pb->state;
	r->requested_ms = pb->requested_unix_ms;
	r->started_ms = pb->started_unix_ms;
	r->finished_ms = pb->finished_unix_ms;
	r->from_lsn = pb->from_lsn;
	r->to_lsn = pb->to_lsn;
	r->bytes_in = pb->bytes_in;
	r->bytes_stored = pb->bytes_stored;
	r->chunks = pb->chunks;
	r->verified = pb->verified;
	r->verified_ms = pb->verified_unix_ms;
	r->drill_ms = pb->drill_ms;
	r->drilled = pb->drilled;
	return 0;
}

static int policy_from_pb(const Haagent__CmdSetBackupPolicy *c, struct ha_backup_policy *p,
                          struct ha_err *e)
{
	memset(p, 0, sizeof(*p));
	if (copy_opt(p->full, sizeof(p->full), c->full, "full schedule", e) ||
	    copy_opt(p->differential, sizeof(p->differential), c->differential,
	             "differential schedule", e) ||
	    copy_opt(p->incremental, sizeof(p->incremental), c->incremental, "incremental schedule",
	             e))
		return HA_EINVAL;
	p->set = true;
	p->keep_full = c->keep_full;
	p->keep_days = c->keep_days;
	return 0;
}

int ha_fsm_cmd_set_backup_policy(const struct ha_backup_policy *p, uint64_t unix_ms,
                                 ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	Haagent__CmdSetBackupPolicy c = HAAGENT__CMD_SET_BACKUP_POLICY__INIT;
	c.full = (char *)p->full;
	c.differential = (char *)p->differential;
	c.incremental = (char *)p->incremental;
	c.keep_full = p->keep_full;
	c.keep_days = p->keep_days;
	c.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_SET_BACKUP_POLICY;
	cmd.set_backup_policy = &c;
	return pack_cmd(&cmd, alloc, out, len);
}
