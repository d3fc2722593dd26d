/* Rebuilding this node's database from the cluster's backups, without a person: the agent runs
 * its sibling `haadm -c CONF node reclone SELF` (agent/cli/reclone.c: the newest backup and the
 * binlog archive restored beside the datadir, swapped in, replication reset, the node
 * repointed) as a child process, bounded, its output in the agent's log. Used by a node that
 * joins with an empty database (docs/membership.md); the haadm is [failover] haadm, else the one
 * beside haagentd, else on PATH (a diverged node's rejoin, agent/rejoin.c, runs the same).
 * haadm speaks to the leader with the configuration's [tls] haadm_cert (an admin certificate).
 * A failure is retried after a growing pause (30 s, doubling, at most 10 min), its reason in the
 * node's report. Loop thread; the work is in the child. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "hooks.h"

#define REBUILD_RETRY_MS     30000
#define REBUILD_RETRY_MAX_MS 600000

static void rebuilt(void *data, int status)
{
	struct ha_agent *a = data;
	struct ha_rebuild *rb = &a->rb;
	rb->running = false;
	uint64_t now = ha_now_ms();
	if (status == 0) {
		rb->failures = 0;
		snprintf(a->rc.last_action, sizeof(a->rc.last_action), "rebuild: done (%s)",
		         rb->why);
		ha_info("rebuild-done", "why=\"%s\" ms=%llu", rb->why,
		        (unsigned long long)(now - rb->started_ms));
	} else {
		uint64_t pause = REBUILD_RETRY_MS << (rb->failures < 5 ? rb->failures : 5);
		if (pause > REBUILD_RETRY_MAX_MS)
			pause = REBUILD_RETRY_MAX_MS;
		rb->failures++;
		rb->next_ms = now + pause;
		snprintf(
		    a->rc.last_action, sizeof(a->rc.last_action),
		    "rebuild: haadm node reclone failed (exit %d; its steps are in this agent's "
		    "log); retry in %llu s",
		    status, (unsigned long long)(pause / 1000));
		ha_warn("rebuild-failed", "why=\"%s\" exit=%d retry_ms=%llu", rb->why, status,
		        (unsigned long long)pause);
	}
	if (!a->stopping) {
		ha_probe_now(a->probe);
		ha_agent_kick(a);
	}
}

bool ha_rebuild_running(const struct ha_agent *a)
{
	return a->rb.running;
}

void ha_rebuild_want(struct ha_agent *a, const char *why)
{
	struct ha_rebuild *rb = &a->rb;
	uint64_t now = ha_now_ms();
	if (rb->running || a->stopping || now < rb->next_ms)
		return;
	char haadm[PATH_MAX + 8];
	ha_find_haadm(a->cfg.haadm_path, haadm, sizeof(haadm));
	char timeout[32];
	snprintf(timeout, sizeof(timeout), "%u", a->cfg.join_timeout_ms / 1000);
	const char *args[] = {"-c",          a->cfg.path, "node",  "reclone",
	                      a->self->name, "--timeout", timeout, NULL};
	snprintf(rb->why, sizeof(rb->why), "%s", why);
	if (ha_hook_run_for(a->loop, "reclone", haadm, args, NULL, a->cfg.join_timeout_ms, rebuilt,
	                    a) != 0) {
		rb->next_ms = now + REBUILD_RETRY_MS;
		return;
	}
	rb->running = true;
	rb->started_ms = now;
	snprintf(a->rc.last_action, sizeof(a->rc.last_action),
	         "rebuild: restoring the newest backup (haadm node reclone): %s", why);
	ha_info("rebuild-start", "why=\"%s\"", why);
}
