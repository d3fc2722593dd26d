/* The replicated state: the failover record and its phases. */
#include "fsm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int fsm_apply_failover_begin(struct ha_fsm_state *s, const Haagent__CmdFailoverBegin *c,
                             struct ha_err *e)
{
	char reason[256];
	if (fsm_copy_opt(reason, sizeof(reason), c->reason, "failover reason", e))
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
		fsm_add_event(s, "failover-superseded", fsm_member_name(s, c->old_primary), reason,
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
	fsm_add_event(s, c->planned ? "switchover-begin" : "failover-begin",
	              fsm_member_name(s, c->old_primary), reason, c->unix_ms);
	return HA_FSM_APPLIED;
}

/* The texts a CmdFailoverAdvance carries, copied and checked (each fits its record field). */
struct advance_text {
	char fenced_by[sizeof(((struct ha_failover *)0)->fenced_by)];
	char lost[sizeof(((struct ha_failover *)0)->lost_gtid)];
	char detail[sizeof(((struct ha_failover *)0)->detail)];
	char fenced_gtid[sizeof(((struct ha_failover *)0)->fenced_gtid)];
	char received[sizeof(((struct ha_failover *)0)->received_gtid)];
	char salvaged[sizeof(((struct ha_failover *)0)->salvaged_gtid)];
};

static int copy_advance_text(const Haagent__CmdFailoverAdvance *c, struct advance_text *t,
                             struct ha_err *e)
{
	if (fsm_copy_opt(t->received, sizeof(t->received), c->received_gtid, "received gtid", e) ||
	    fsm_copy_opt(t->salvaged, sizeof(t->salvaged), c->salvaged_gtid, "salvaged gtid", e) ||
	    fsm_copy_opt(t->fenced_by, sizeof(t->fenced_by), c->fenced_by, "fenced_by", e) ||
	    fsm_copy_opt(t->fenced_gtid, sizeof(t->fenced_gtid), c->fenced_gtid, "fenced gtid",
	                 e) ||
	    fsm_copy_opt(t->lost, sizeof(t->lost), c->lost_gtid, "lost gtid", e) ||
	    fsm_copy_opt(t->detail, sizeof(t->detail), c->detail, "detail", e))
		return HA_EINVAL;
	return 0;
}

/* The command on its own, whatever the state: a phase that exists, a salvage only with
 * PROMOTING, a candidate that is a member where one is needed. */
static int check_advance(const struct ha_fsm_state *s, const Haagent__CmdFailoverAdvance *c,
                         struct ha_err *e)
{
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
	return 0;
}

/* a modifier of the current phase (FENCED: choose without waiting for what a reporting node
 * holds; PROMOTING: stop applying the relay log), not a move */
static int apply_accept_loss(struct ha_fsm_state *s, const Haagent__CmdFailoverAdvance *c,
                             const struct advance_text *t)
{
	struct ha_failover *f = &s->failover;
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
	memcpy(f->lost_gtid, t->lost, sizeof(t->lost));
	f->lost_count = c->lost_count;
	fsm_add_event(s, "failover-accept-loss", fsm_member_name(s, f->candidate), t->detail,
	              c->unix_ms);
	return HA_FSM_APPLIED;
}

/* the outcome of a salvage (a modifier of PROMOTING): what was applied, and what is lost now */
static int apply_salvage_outcome(struct ha_fsm_state *s, const Haagent__CmdFailoverAdvance *c,
                                 const struct advance_text *t)
{
	struct ha_failover *f = &s->failover;
	if (f->phase != HA_FO_PROMOTING || f->salvage != HA_SALVAGE_WANTED)
		return HA_FSM_NOOP;
	f->salvage = (enum ha_fo_salvage)c->salvage;
	memcpy(f->salvaged_gtid, t->salvaged, sizeof(t->salvaged));
	f->salvaged_count = c->salvaged_count;
	memcpy(f->salvage_detail, t->detail, sizeof(t->detail));
	if (c->salvage == HA_SALVAGE_DONE) {
		memcpy(f->lost_gtid, t->lost, sizeof(t->lost));
		f->lost_count = c->lost_count;
	}
	fsm_add_event(
	    s, c->salvage == HA_SALVAGE_DONE ? "failover-salvaged" : "failover-salvage-failed",
	    fsm_member_name(s, f->old_primary), t->detail, c->unix_ms);
	return HA_FSM_APPLIED;
}

/* Forward only; ABORTED only before promotion; DONE only after; PROMOTING only from FENCED. */
static bool phase_move_allowed(const struct ha_failover *f, const Haagent__CmdFailoverAdvance *c)
{
	if (c->phase <= f->phase)
		return false;
	if (c->phase == HA_FO_ABORTED && f->phase >= HA_FO_PROMOTING)
		return false;
	if (c->phase == HA_FO_DONE && f->phase != HA_FO_PROMOTING)
		return false;
	if (c->phase == HA_FO_PROMOTING && f->phase != HA_FO_FENCED)
		return false;
	return true;
}

static void enter_fenced(struct ha_fsm_state *s, const Haagent__CmdFailoverAdvance *c,
                         const struct advance_text *t)
{
	struct ha_failover *f = &s->failover;
	f->fenced_ms = c->unix_ms;
	memcpy(f->fenced_by, t->fenced_by, sizeof(t->fenced_by));
	memcpy(f->fenced_gtid, t->fenced_gtid, sizeof(t->fenced_gtid));
	fsm_add_event(s, "old-primary-fenced", fsm_member_name(s, f->old_primary), t->fenced_by,
	              c->unix_ms);
}

static void enter_promoting(struct ha_fsm_state *s, const Haagent__CmdFailoverAdvance *c,
                            const struct advance_text *t)
{
	struct ha_failover *f = &s->failover;
	f->promoting_ms = c->unix_ms;
	f->candidate = c->candidate;
	memcpy(f->received_gtid, t->received, sizeof(t->received));
	memcpy(f->lost_gtid, t->lost, sizeof(t->lost));
	f->lost_count = c->lost_count;
	memcpy(f->detail, t->detail, sizeof(t->detail));
	f->salvage =
	    !f->planned && c->salvage == HA_SALVAGE_WANTED ? HA_SALVAGE_WANTED : HA_SALVAGE_NONE;
	s->primary_id = c->candidate;
	{ /* the new primary's history is the reference: it is not diverged */
		struct ha_member *cm = (struct ha_member *)ha_fsm_member(s, c->candidate);
		if (cm) {
			cm->flags &= ~(uint32_t)HA_MEMBER_DIVERGED;
			cm->errant_gtid[0] = '\0';
		}
	}
	fsm_add_event(s, "candidate-chosen", fsm_member_name(s, c->candidate), t->detail,
	              c->unix_ms);
}

static void enter_done(struct ha_fsm_state *s, const Haagent__CmdFailoverAdvance *c,
                       const struct advance_text *t)
{
	struct ha_failover *f = &s->failover;
	f->done_ms = c->unix_ms;
	if (f->accept_loss) {
		memcpy(f->lost_gtid, t->lost, sizeof(t->lost));
		f->lost_count = c->lost_count;
	}
	s->primary_writable_epoch = f->epoch; /* the candidate reported itself writable */
	if (f->planned)
		s->switchovers_done++;
	else
		s->failovers_done++;
	fsm_add_event(s, f->planned ? "switchover-done" : "failover-done",
	              fsm_member_name(s, f->candidate), t->detail, c->unix_ms);
}

static void enter_aborted(struct ha_fsm_state *s, const Haagent__CmdFailoverAdvance *c,
                          const struct advance_text *t)
{
	struct ha_failover *f = &s->failover;
	f->done_ms = c->unix_ms;
	s->aborted++;
	f->candidate = c->candidate;
	memcpy(f->detail, t->detail, sizeof(t->detail));
	s->primary_id = c->candidate;
	fsm_add_event(s, f->planned ? "switchover-aborted" : "failover-aborted",
	              fsm_member_name(s, f->old_primary), t->detail, c->unix_ms);
}

int fsm_apply_failover_advance(struct ha_fsm_state *s, const Haagent__CmdFailoverAdvance *c,
                               struct ha_err *e)
{
	struct ha_failover *f = &s->failover;
	struct advance_text t;
	if (copy_advance_text(c, &t, e))
		return HA_EINVAL;
	int rc = check_advance(s, c, e);
	if (rc)
		return rc;
	/* Forward only, for the current failover; ABORTED only before promotion; DONE only after.
	 */
	if (c->id != f->id || !ha_fsm_failover_active(s))
		return HA_FSM_NOOP;
	if (c->accept_loss)
		return apply_accept_loss(s, c, &t);
	if (c->salvage >= HA_SALVAGE_DONE)
		return apply_salvage_outcome(s, c, &t);
	if (!phase_move_allowed(f, c))
		return HA_FSM_NOOP;
	f->phase = (enum ha_fo_phase)c->phase;
	switch (f->phase) {
	case HA_FO_FENCED:
		enter_fenced(s, c, &t);
		break;
	case HA_FO_PROMOTING:
		enter_promoting(s, c, &t);
		break;
	case HA_FO_DONE:
		enter_done(s, c, &t);
		break;
	case HA_FO_ABORTED:
		enter_aborted(s, c, &t);
		break;
	default:
		break;
	}
	return HA_FSM_APPLIED;
}

int ha_fsm_cmd_failover_begin(const struct ha_fo_begin *in, ha_alloc_fn alloc, uint8_t **out,
                              size_t *len)
{
	Haagent__CmdFailoverBegin b = HAAGENT__CMD_FAILOVER_BEGIN__INIT;
	b.expected_epoch = in->expected_epoch;
	b.old_primary = in->old_primary;
	char rb[sizeof(((struct ha_failover *)0)->reason)];
	b.reason = (char *)fsm_prose(rb, sizeof(rb), in->reason);
	b.unix_ms = in->unix_ms;
	b.planned = in->planned;
	b.target = in->target;
	b.timeout_ms = in->timeout_ms;
	b.grace_ms = in->grace_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_FAILOVER_BEGIN;
	cmd.failover_begin = &b;
	return fsm_pack_cmd(&cmd, alloc, out, len);
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
	v.fenced_by = (char *)fsm_prose(fb, sizeof(fb), a->fenced_by);
	v.lost_gtid = (char *)(a->lost_gtid ? a->lost_gtid : "");
	v.lost_count = a->lost_count;
	v.detail = (char *)fsm_prose(db, sizeof(db), a->detail);
	v.fenced_gtid = (char *)(a->fenced_gtid ? a->fenced_gtid : "");
	v.accept_loss = a->accept_loss;
	v.received_gtid = (char *)(a->received_gtid ? a->received_gtid : "");
	v.salvage = a->salvage;
	v.salvaged_gtid = (char *)(a->salvaged_gtid ? a->salvaged_gtid : "");
	v.salvaged_count = a->salvaged_count;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_FAILOVER_ADVANCE;
	cmd.failover_advance = &v;
	return fsm_pack_cmd(&cmd, alloc, out, len);
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

int fsm_failover_from_pb(const Haagent__Failover *pb, struct ha_failover *f, struct ha_err *e)
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
	if (fsm_copy_opt(f->reason, sizeof(f->reason), pb->reason, "reason", e) ||
	    fsm_copy_opt(f->fenced_gtid, sizeof(f->fenced_gtid), pb->fenced_gtid, "fenced gtid",
	                 e) ||
	    fsm_copy_opt(f->fenced_by, sizeof(f->fenced_by), pb->fenced_by, "fenced_by", e) ||
	    fsm_copy_opt(f->lost_gtid, sizeof(f->lost_gtid), pb->lost_gtid, "lost", e) ||
	    fsm_copy_opt(f->detail, sizeof(f->detail), pb->detail, "detail", e) ||
	    fsm_copy_opt(f->received_gtid, sizeof(f->received_gtid), pb->received_gtid, "received",
	                 e) ||
	    fsm_copy_opt(f->owed_gtid, sizeof(f->owed_gtid), pb->owed_gtid, "owed", e) ||
	    fsm_copy_opt(f->salvaged_gtid, sizeof(f->salvaged_gtid), pb->salvaged_gtid, "salvaged",
	                 e) ||
	    fsm_copy_opt(f->salvage_detail, sizeof(f->salvage_detail), pb->salvage_detail,
	                 "salvage detail", e))
		return HA_EINVAL;
	return 0;
}
