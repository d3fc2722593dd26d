/* The coordinator's shell: the ready leader's loop feeds the pure core (coord/core.c) the
 * configuration, the replicated state, the agents' latest reports and the monotonic time, then
 * carries its decision out — a raft proposal, hooks, log lines — and runs the backup duties
 * when nothing else was decided. Everything decided is in the core; nothing here decides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "coord/failover.h"
#include "hooks.h"

static void fence_hook_done(void *data, int status)
{
	struct ha_agent *a = data;
	a->co.fence_hook_running = false;
	a->co.fence_hook_result = status;
}

static void run_hooks(struct ha_agent *a, const struct ha_core_out *out)
{
	for (unsigned i = 0; i < out->n_hooks; i++) {
		const char *const *arg = (const char *const[]){
		    out->hooks[i].arg[0], out->hooks[i].arg[1], out->hooks[i].arg[2]};
		char e1[HA_FSM_TEXT_MAX + 32], e2[HA_FSM_TEXT_MAX + 32], e3[HA_FSM_TEXT_MAX + 32];
		switch (out->hooks[i].hook) {
		case HA_CORE_HOOK_PRE_FAILOVER: {
			snprintf(e1, sizeof(e1), "HAAGENT_OLD_PRIMARY=%s", arg[0]);
			snprintf(e2, sizeof(e2), "HAAGENT_REASON=%s", arg[1]);
			const char *args[] = {arg[0], arg[1], NULL};
			const char *env[] = {e1, e2, NULL};
			ha_hook_run(a->loop, "pre_failover", a->cfg.hook_pre_failover, args, env,
			            NULL, NULL);
			break;
		}
		case HA_CORE_HOOK_POST_FAILOVER: {
			snprintf(e1, sizeof(e1), "HAAGENT_OLD_PRIMARY=%s", arg[0]);
			snprintf(e2, sizeof(e2), "HAAGENT_NEW_PRIMARY=%s", arg[1]);
			snprintf(e3, sizeof(e3), "HAAGENT_EPOCH=%s", arg[2]);
			const char *args[] = {arg[0], arg[1], arg[2], NULL};
			const char *env[] = {e1, e2, e3, NULL};
			ha_hook_run(a->loop, "post_failover", a->cfg.hook_post_failover, args, env,
			            NULL, NULL);
			break;
		}
		case HA_CORE_HOOK_FENCE: {
			const char *args[] = {arg[0], arg[1], NULL};
			if (ha_hook_run(a->loop, "fence", a->cfg.hook_fence, args, NULL,
			                fence_hook_done, a) != 0) {
				a->co.fence_hook_running = false;
				a->co.fence_hook_result = -1;
			}
			break;
		}
		}
	}
}

void ha_coord_reset(struct ha_agent *a)
{
	if (a->co.ready_since_ms == 0)
		return;
	memset(&a->co, 0, sizeof(a->co));
}

void ha_coord_tick(struct ha_agent *a)
{
	struct ha_core_report rep[HA_MAX_NODES];
	struct ha_core_in in;
	struct ha_core_out out;
	ha_agent_core_input(a, &in, rep);
	ha_core_tick(&in, &a->co, &out);
	run_hooks(a, &out);
	if (out.cmd && ha_agent_propose(a, out.cmd, out.cmd_len) == 0)
		a->proposed_fo_id = out.cmd_fo_id;
}

int ha_backup_start(struct ha_agent *a, const char *type, const char *node, const char *trigger,
                    struct ha_bk_started *started)
{
	struct ha_core_report rep[HA_MAX_NODES];
	struct ha_core_in in;
	struct ha_core_out out;
	ha_agent_core_input(a, &in, rep);
	int rc = ha_core_backup_start(&in, &a->co, type, node, trigger, started, &out);
	if (rc == 0 && (out.cmd == NULL || ha_agent_propose(a, out.cmd, out.cmd_len) != 0)) {
		snprintf(started->msg, sizeof(started->msg), "raft did not accept the job; retry");
		return HA_ERAFT;
	}
	return rc;
}

void ha_coord_fill_status(struct ha_agent *a, Haagent__StatusResponse *resp, Haagent__Failover *fo)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	if (st->failover.id) {
		ha_fsm_failover_to_pb(&st->failover, fo);
		resp->failover = fo;
	}
	resp->plan_candidate = a->co.plan_candidate;
	resp->paused = !a->cfg.auto_failover || st->paused;
	resp->paused_by_operator = st->paused;
	if (st->paused)
		resp->pause_reason = st->pause_reason[0] ? (char *)st->pause_reason : "paused";
	else if (!a->cfg.auto_failover)
		resp->pause_reason = "auto_failover = no in the configuration";
}
