/* The agent's shell around node/decide.c: each tick the loop feeds the pure decision the
 * latest sample, and carries it out — the action on the action worker, the escalation's
 * db_stop_command and SIGKILL, the on_role_change hook, a diverged node's rejoin (rejoin.c) — and
 * records an action's end. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "hooks.h"

static void role_hook(struct ha_agent *a, const struct ha_fsm_state *st)
{
	const char *role = a->rc.role;
	const struct ha_member *p = ha_fsm_member(st, st->primary_id);
	char epoch[24];
	snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)st->epoch);
	ha_info("role-change", "role=%s epoch=%s primary=%s", role, epoch, p ? p->name : "none");
	char e1[96], e2[96], e3[128], e4[96];
	snprintf(e1, sizeof(e1), "HAAGENT_NODE=%s", a->self->name);
	snprintf(e2, sizeof(e2), "HAAGENT_ROLE=%s", role);
	snprintf(e3, sizeof(e3), "HAAGENT_PRIMARY=%s", p ? p->name : "");
	snprintf(e4, sizeof(e4), "HAAGENT_EPOCH=%s", epoch);
	const char *args[] = {role, epoch, p ? p->name : "", NULL};
	const char *env[] = {e1, e2, e3, e4, NULL};
	ha_hook_run(a->loop, "on_role_change", a->cfg.hook_on_role_change, args, env, NULL, NULL);
}

/* The pid in db_pid_file when that process is a MariaDB/MySQL server, else 0. */
static pid_t server_pid(const char *pidfile, char *why, size_t size)
{
	FILE *f = pidfile[0] ? fopen(pidfile, "r") : NULL;
	long pid = 0;
	if (f == NULL) {
		snprintf(why, size, "no pid file %s", pidfile[0] ? pidfile : "(db_pid_file empty)");
		return 0;
	}
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1)
		pid = 0;
	fclose(f);
	char path[64], comm[64] = "";
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = pid ? fopen(path, "r") : NULL;
	if (f == NULL || fgets(comm, sizeof(comm), f) == NULL) {
		if (f)
			fclose(f);
		snprintf(why, size, "%s names no running process", pidfile);
		return 0;
	}
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	if (strcmp(comm, "mariadbd") != 0 && strcmp(comm, "mysqld") != 0) {
		snprintf(why, size, "%s names pid %ld, which is %s, not mariadbd", pidfile, pid,
		         comm);
		return 0;
	}
	return (pid_t)pid;
}

/* The escalation steps decided by ha_node_decide: db_stop_command, then SIGKILL. */
static void escalate(struct ha_agent *a, const struct ha_fsm_state *st,
                     const struct ha_probe_sample *s, enum ha_node_esc step)
{
	if (step == HA_NODE_ESC_STOP) {
		const char *args[] = {"-c", a->cfg.db_stop_command, NULL};
		int rc = a->cfg.db_stop_command[0] ? ha_hook_run(a->loop, "db_stop_command",
		                                                 "/bin/sh", args, NULL, NULL, NULL)
		                                   : 1;
		snprintf(a->rc.escalation, sizeof(a->rc.escalation),
		         "could not fence mariadbd through SQL (%s): %s", ha_db_state_name(s->db),
		         rc == 0 ? "ran db_stop_command" : "no db_stop_command");
		ha_warn("fence-escalated", "step=stop epoch=%llu db=%s error=\"%s\"",
		        (unsigned long long)st->epoch, ha_db_state_name(s->db), s->db_error);
		return;
	}
	char why[256] = "";
	pid_t pid = server_pid(a->cfg.db_pid_file, why, sizeof(why));
	if (pid > 0 && kill(pid, SIGKILL) == 0) {
		snprintf(a->rc.escalation, sizeof(a->rc.escalation),
		         "could not fence mariadbd through SQL; killed it (pid %ld)", (long)pid);
		ha_warn("fence-escalated", "step=kill pid=%ld epoch=%llu", (long)pid,
		        (unsigned long long)st->epoch);
	} else {
		if (pid > 0)
			snprintf(why, sizeof(why), "kill %ld: %s", (long)pid, strerror(errno));
		snprintf(a->rc.escalation, sizeof(a->rc.escalation),
		         "could not fence mariadbd through SQL, nor kill it: %s", why);
		ha_error("fence-escalation-failed", "epoch=%llu why=\"%s\"",
		         (unsigned long long)st->epoch, why);
	}
	ha_probe_now(a->probe);
}

static void node_log(void *ctx, int level, const char *event, const char *line)
{
	(void)ctx;
	ha_log((enum ha_log_level)level, event, "%s", line);
}

void ha_reconcile(struct ha_agent *a, const struct ha_probe_sample *s)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	struct ha_node_in in = {.cfg = &a->cfg,
	                        .st = st,
	                        .s = s,
	                        .now_ms = ha_now_ms(),
	                        .lease_held = ha_agent_lease_held(a),
	                        .action_busy = ha_action_busy(a->action),
	                        .log = node_log};
	struct ha_node_out *out = malloc(sizeof(*out)); /* an action request is large */
	if (out == NULL)
		return;
	ha_node_decide(&in, &a->rc, out);
	if (out->role_changed)
		role_hook(a, st);
	if (out->cancel)
		ha_action_cancel(a->action);
	if (out->esc != HA_NODE_ESC_NONE)
		escalate(a, st, s, out->esc);
	if (out->build)
		ha_rebuild_want(a, out->why);
	if (out->submit && ha_action_submit(a->action, &out->q) == 0)
		ha_info("reconcile", "action=%s why=\"%s\"", ha_action_name(out->q.kind), out->why);
	if (out->rejoin)
		ha_rejoiner_run(a, &out->rq);
	free(out);
}

void ha_reconcile_done(void *data, const struct ha_action_result *r)
{
	struct ha_agent *a = data;
	if (r->rc)
		ha_warn("reconcile-failed", "action=%s error=\"%s\"", ha_action_name(r->kind),
		        r->msg);
	else
		ha_info("reconcile-done", "action=%s result=\"%s\"", ha_action_name(r->kind),
		        r->msg);
	if (r->kind == HA_ACT_REPOINT && r->rc == 0 && r->diverged && !a->rc.diverged)
		ha_warn("diverged", "errant=%s", r->errant);
	ha_node_done(&a->rc, r, ha_now_ms());
	if (r->kind == HA_ACT_SALVAGE)
		ha_log(r->rc == 0 && r->salvage_complete ? HA_LOG_INFO : HA_LOG_WARN, "salvage",
		       "failover=%llu count=%llu result=\"%s\"",
		       (unsigned long long)a->rc.salvage_fo_id,
		       (unsigned long long)r->salvaged_count, r->msg);
	/* act again only on a sample taken after this action: ask for one now */
	ha_probe_now(a->probe);
	if (!a->stopping)
		ha_agent_report_now(a);
}
