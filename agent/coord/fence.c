/* The coordinator core: the fencing proofs of a failover's old primary, and a planned
 * switchover's fenced phase and rollback. */
#include "core_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/gtid.h"
#include "../db/probe.h"

/* The old primary's last contact with this leader: its last ack, or the leader's start. */
static uint64_t last_contact(struct ha_core *k, const struct ha_failover *f)
{
	int i = co_node_index(k->cfg, f->old_primary);
	uint64_t last = k->m->ready_since_ms;
	if (i >= 0 && k->in->reports[i].ack_sent_ms > last)
		last = k->in->reports[i].ack_sent_ms;
	return last;
}

/* Has the old primary's write lease provably run out? It stays writable only while acked by a
 * ready leader (or, leading, while it hears from a majority): this leader's last ack to it, or
 * its own start, plus the lease, plus an election timeout for a deposed leader that might still
 * have acked it, plus a margin. An old primary whose agent last saw its database hung or
 * unusable cannot fence it through SQL when its lease runs out: it stops it, fence_escalate_ms
 * later, and kills it HA_FENCE_STOP_WAIT_MS after that. Only then is its lease's end a proof;
 * without escalation, never. */
static bool lease_expired(struct ha_core *k, const struct ha_failover *f, const Haagent__Health *h)
{
	uint64_t wait = k->cfg->lease_ms + k->in->election_timeout_ms + LEASE_MARGIN_MS;
	bool blind =
	    h && (h->db == HAAGENT__DB_STATE__DB_HUNG || h->db == HAAGENT__DB_STATE__DB_UNUSABLE);
	if (blind)
		wait += k->cfg->fence_escalate_ms + HA_FENCE_STOP_WAIT_MS + LEASE_MARGIN_MS;
	return k->now - last_contact(k, f) >= wait && !(blind && k->cfg->fence_escalate_ms == 0);
}

/* The fence hook (STONITH), when one is configured: run at once when the old primary's agent
 * is silent, else once its own escalation had its chance; once per failover, and again every
 * FENCE_HOOK_RETRY_MS while it fails. True once it succeeded. */
static bool fence_hook(struct ha_core *k, const struct ha_failover *f, bool fresh, const char *name,
                       const char *address)
{
	bool hook_now = !fresh || k->now - k->m->phase_seen_ms >=
	                              k->cfg->fence_escalate_ms + FENCE_HOOK_AFTER_MS;
	if (!k->cfg->hook_fence[0] || !hook_now)
		return false;
	bool retry = !k->m->fence_hook_running && k->m->fence_hook_result != 0 &&
	             k->now - k->m->fence_hook_ran_ms >= FENCE_HOOK_RETRY_MS;
	if (k->m->fence_hook_failover != f->id || retry) {
		k->m->fence_hook_ran_ms = k->now;
		k->m->fence_hook_failover = f->id;
		k->m->fence_hook_result = -2;
		k->m->fence_hook_running = true; /* the shell says when it ended */
		co_run_hook(k, HA_CORE_HOOK_FENCE, name, address, NULL);
	}
	return !k->m->fence_hook_running && k->m->fence_hook_result == 0;
}

/* How the old primary is known to be unable to write, or NULL (with *waiting saying what the
 * coordinator waits for). The proofs, and only these (docs/failover.md, "fencing proof"):
 *   1. its agent fenced it at this epoch: read_only, client sessions killed and gone;
 *   2. its agent reports, at this epoch, that nothing listens on its port (crashed, or stopped by
 *      the agent itself when it could not fence it through SQL);
 *   3. its write lease provably ran out: no ack from this leader for lease_ms + an election
 *      timeout + a margin (the lease runs from when the acknowledged report was sent, so it
 *      ended before that) — unless a fence hook is configured: then the hook must succeed;
 *   4. the fence hook exited 0.
 * A hung server, or one that refuses the agent's login, is no proof: it may still commit. */
static void waiting_for(struct ha_core *k, const Haagent__Health *h, bool fresh, bool at_epoch,
                        const char *name, char *waiting, size_t wsize);

static const char *fenced_by(struct ha_core *k, const struct ha_fsm_state *st,
                             const struct ha_failover *f, char *buf, size_t size, char *waiting,
                             size_t wsize)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
	const struct ha_member *m = ha_fsm_member(st, f->old_primary);
	const char *name = m ? m->name : "?";
	if (h && h->fenced_epoch >= f->epoch) {
		snprintf(buf, size, "own agent: read-only, client sessions killed and gone");
		return buf;
	}
	if (f->planned) {
		snprintf(waiting, wsize,
		         "waiting for %s's agent to fence it and report its final "
		         "position",
		         name);
		return NULL; /* zero loss needs that final position: nothing else will do */
	}
	bool at_epoch = h && fresh && h->epoch_seen >= f->epoch;
	bool gone = h && h->db == HAAGENT__DB_STATE__DB_DOWN;
#ifdef HA_SIM_MUTANT
	/* the simulator's deliberately broken core (tests/sim): a login the agent lost counts as
	 * a dead server, as in coord/failover.c */
	gone = gone || (h && h->db == HAAGENT__DB_STATE__DB_UNUSABLE);
#endif
	if (at_epoch && gone) {
		snprintf(buf, size, "own agent: nothing listens on its port%s",
		         h->escalated_epoch >= f->epoch ? " (its agent stopped it)" : "");
		return buf;
	}
	/* Not the lease when the old primary is this very node: its lease holds while it leads,
	 * and its own agent (this process) fences it or says why it cannot. */
	if (f->old_primary == k->cfg->nodes[k->cfg->self].id) {
		snprintf(
		    waiting, wsize,
		    "waiting for %s (this coordinator's own node) to fence its database (%s%s%s)",
		    name, h ? ha_db_state_name((enum ha_db_state)h->db) : "no sample",
		    h && h->escalation && h->escalation[0] ? "; " : "",
		    h && h->escalation ? h->escalation : "");
		return NULL;
	}
	if (lease_expired(k, f, h) && !k->cfg->hook_fence[0]) {
		snprintf(buf, size, "write lease expired (%llu ms without contact)",
		         (unsigned long long)(k->now - last_contact(k, f)));
		return buf;
	}
	/* the hook (STONITH) powers a server off: not while no replica could take over, which
	 * would turn a failure that may pass (a hang) into an outage nobody can end */
	struct ha_fo_node reps[HA_FSM_MAX_MEMBERS];
	char none[400];
	size_t nr = ha_core_view(k->in, f->old_primary, reps, false);
	if (k->cfg->hook_fence[0] && k->m->fence_hook_failover != f->id &&
	    !ha_fo_any_candidate(reps, nr, none, sizeof(none))) {
		snprintf(waiting, wsize,
		         "waiting for a replica that could take over before the fence hook runs on "
		         "%s (%s): an operator must act (haadm node reclone, maintenance off)",
		         name, none);
		return NULL;
	}
	if (fence_hook(k, f, fresh, name, m ? m->address : "")) {
		snprintf(buf, size, "fence hook succeeded");
		return buf;
	}
	waiting_for(k, h, fresh, at_epoch, name, waiting, wsize);
	return NULL;
}

/* What fenced_by waits for, when no proof is there yet. */
static void waiting_for(struct ha_core *k, const Haagent__Health *h, bool fresh, bool at_epoch,
                        const char *name, char *waiting, size_t wsize)
{
	if (!fresh)
		snprintf(waiting, wsize,
		         "waiting for %s to be fenced: its agent is unreachable; %s", name,
		         k->cfg->hook_fence[0] ? (k->m->fence_hook_running
		                                      ? "the fence hook runs"
		                                      : "the fence hook did not succeed (it gates "
		                                        "promotion); fix it, or haadm failover "
		                                        "--abort")
		                               : "its write lease runs out first");
	else if (!at_epoch)
		snprintf(waiting, wsize, "waiting for %s's agent to see the new epoch", name);
	else
		snprintf(
		    waiting, wsize,
		    "waiting for %s to be fenced: its agent cannot reach its database (%s%s%s)%s",
		    name, h->db == HAAGENT__DB_STATE__DB_HUNG ? "hung" : "unusable",
		    h->escalation && h->escalation[0] ? "; " : "",
		    h->escalation ? h->escalation : "",
		    k->cfg->hook_fence[0] ? ""
		                          : "; configure [agent] db_pid_file and "
		                            "db_stop_command, or a fence hook");
}

/* Rolls a planned switchover back before promotion: the old primary is the primary again. */
void co_roll_back(struct ha_core *k, const struct ha_failover *f, const char *why)
{
	LOGW(k, f->planned ? "switchover-rollback" : "failover-handed-back",
	     "failover=%llu why=\"%s\"", (unsigned long long)f->id, why);
	struct ha_fo_advance adv = {.id = f->id,
	                            .phase = HA_FO_ABORTED,
	                            .candidate = f->old_primary,
	                            .unix_ms = k->unix_ms,
	                            .detail = why};
	co_advance(k, &adv);
}

/* An unplanned failover with no replica that can be promoted (all diverged, in maintenance,
 * no-promote, or down): is the old primary back, its server up and read-only in a sample taken
 * at this epoch? It then takes its role back when it also has everything the other nodes
 * received (promote.c) — waiting for an operator would leave the cluster without a primary for
 * ever. Found by the simulator: two replicas diverged by partitions, then the primary's
 * mariadbd crashed and restarted. */
bool co_old_primary_back(struct ha_core *k, const struct ha_fsm_state *st,
                         const struct ha_failover *f)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
	const struct ha_member *m = ha_fsm_member(st, f->old_primary);
	return m && !(m->flags & (HA_MEMBER_DIVERGED | HA_MEMBER_MAINTENANCE)) && h && fresh &&
	       h->epoch_seen >= f->epoch && h->db == HAAGENT__DB_STATE__DB_UP && h->read_only &&
	       !h->diverged;
}

/* Planned switchover, FENCED: promote the target once it applied the old primary's final
 * position; roll back when it cannot. */
void co_switchover_fenced(struct ha_core *k, const struct ha_fsm_state *st,
                          const struct ha_failover *f, bool late)
{
	const struct ha_member *t = ha_fsm_member(st, f->target);
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->target, &fresh);
	char why[HA_FSM_TEXT_MAX];
	const char *name = t ? t->name : "?";
	if (t == NULL || (t->flags & (HA_MEMBER_DIVERGED | HA_MEMBER_MAINTENANCE))) {
		snprintf(why, sizeof(why), "target %s became %s", name,
		         t && (t->flags & HA_MEMBER_DIVERGED) ? "diverged" : "unavailable");
		co_roll_back(k, f, why);
		return;
	}
	if (h && fresh && h->db != HAAGENT__DB_STATE__DB_UP) {
		snprintf(why, sizeof(why), "target %s: database %s", name,
		         h->db == HAAGENT__DB_STATE__DB_HUNG ? "hung" : "down");
		co_roll_back(k, f, why);
		return;
	}
	struct ha_gtid_pos want, cur;
	bool reached = h && fresh && h->epoch_seen >= f->epoch &&
	               ha_gtid_parse(f->fenced_gtid, &want, NULL) == 0 &&
	               ha_gtid_parse(h->gtid_current, &cur, NULL) == 0 &&
	               ha_gtid_contains(&cur, &want);
	if (!reached) {
		if (late) {
			char b1[HA_GTID_BRIEF_MAX], b2[HA_GTID_BRIEF_MAX];
			snprintf(why, sizeof(why),
			         "target %s did not apply up to %s within %u ms (it is at %s)",
			         name, ha_gtid_brief(f->fenced_gtid, b1), f->timeout_ms,
			         h && h->gtid_current ? ha_gtid_brief(h->gtid_current, b2)
			                              : "unknown");
			co_roll_back(k, f, why);
		}
		return;
	}
	char brief[HA_GTID_BRIEF_MAX];
	snprintf(why, sizeof(why), "switchover: %s applied everything up to %s", name,
	         f->fenced_gtid[0] ? ha_gtid_brief(f->fenced_gtid, brief) : "(empty)");
	LOGI(k, "candidate-chosen", "failover=%llu candidate=%s why=\"%s\" lost=0",
	     (unsigned long long)f->id, name, why);
	struct ha_fo_advance adv = {.id = f->id,
	                            .phase = HA_FO_PROMOTING,
	                            .candidate = f->target,
	                            .unix_ms = k->unix_ms,
	                            .detail = why};
	co_advance(k, &adv);
}

/* BEGIN: is the old primary fenced (fenced_by)? A switchover rolls back when its old primary
 * is not fenced in time, or its server is not up. */
void co_phase_begin(struct ha_core *k, const struct ha_fsm_state *st, const struct ha_failover *f,
                    bool late)
{
	struct ha_fo_advance adv = {.id = f->id, .unix_ms = k->unix_ms};
	char buf[256], wait[1024] = "";
	const char *how = fenced_by(k, st, f, buf, sizeof(buf), wait, sizeof(wait));
	if (how == NULL && f->planned) {
		const struct ha_member *o = ha_fsm_member(st, f->old_primary);
		bool fresh;
		const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
		char why[512];
		if (h && fresh && h->epoch_seen >= f->epoch && h->db != HAAGENT__DB_STATE__DB_UP)
			snprintf(why, sizeof(why), "old primary %s: database %s", o ? o->name : "?",
			         h->db == HAAGENT__DB_STATE__DB_HUNG   ? "hung"
			         : h->db == HAAGENT__DB_STATE__DB_DOWN ? "down"
			                                               : "unusable by its agent");
		else if (late)
			snprintf(why, sizeof(why),
			         "old primary %s was not fenced within %u ms (%s)",
			         o ? o->name : "?", f->timeout_ms,
			         h && h->action && h->action[0] ? h->action
			                                        : "its agent did not answer");
		else {
			co_set_wait(k, f, wait);
			return;
		}
		co_roll_back(k, f, why);
		return;
	}
	if (how == NULL) {
		co_set_wait(k, f, wait);
		return;
	}
	LOGI(k, "old-primary-fenced", "failover=%llu how=\"%s\"", (unsigned long long)f->id, how);
	adv.phase = HA_FO_FENCED;
	adv.fenced_by = how;
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
	if (h && h->fenced_epoch >= f->epoch)
		adv.fenced_gtid = h->fenced_gtid;
	co_advance(k, &adv);
	return;
}
