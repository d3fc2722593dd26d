/* Operator requests that change the cluster: `haadm failover` (planned switchover),
 * `haadm node maintenance`, `haadm node add` / `remove`, `haadm pause` / `resume`.
 *
 * Only the ready leader decides (a follower answers with a redirect). It checks the request
 * against the replicated state and the latest health reports, and either refuses it, saying why
 * and what to do, or writes it into the raft log and answers at once. The answer does not wait
 * for the commit: the requester follows the outcome in `status` (the failover record), which
 * survives a change of leader, where a pending answer would not. Loop thread. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "backup/policy.h"
#include "coord/failover.h"

struct answer {
	Haagent__AdminResponse pb;
	char message[1024];
	char redirect[96];
	char old_primary[HA_FSM_NAME_MAX], target[HA_FSM_NAME_MAX];
	char backup_name[96];
	char checks[HA_SO_MAX_CHECKS + 4][224];
	char *check_ptrs[HA_SO_MAX_CHECKS + 4];
	char steps[4][320];
	char *step_ptrs[4];
};

static void say(struct answer *ans, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(struct answer *ans, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ans->message, sizeof(ans->message), fmt, ap);
	va_end(ap);
	ans->pb.code = code;
	ans->pb.message = ans->message;
}

/* A node's name in a request (hostile input: any peer may send one) is a name or refused. */
static bool name_ok(const char *name, struct answer *ans)
{
	if (name == NULL || name[0] == '\0' || ha_name_valid(name))
		return true;
	say(ans, HA_EINVAL, "not a node name (%s)", HA_NAME_RULE);
	return false;
}

/* The member a request names, or NULL with the answer saying why. */
static const struct ha_member *member_named(const struct ha_fsm_state *st, const char *name,
                                            struct answer *ans)
{
	if (!name_ok(name, ans))
		return NULL;
	for (unsigned i = 0; i < st->n_members; i++)
		if (name && !strcmp(st->members[i].name, name))
			return &st->members[i];
	say(ans, HA_EINVAL, "no node named %s", name ? name : "");
	return NULL;
}

static void add_check(struct answer *ans, bool ok, const char *text)
{
	size_t i = ans->pb.n_checks;
	if (i >= sizeof(ans->checks) / sizeof(ans->checks[0]))
		return;
	snprintf(ans->checks[i], sizeof(ans->checks[i]), "%s %s", ok ? "ok  " : "FAIL", text);
	ans->check_ptrs[i] = ans->checks[i];
	ans->pb.checks = ans->check_ptrs;
	ans->pb.n_checks = i + 1;
}

static void add_step(struct answer *ans, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_step(struct answer *ans, const char *fmt, ...)
{
	size_t i = ans->pb.n_steps;
	if (i >= sizeof(ans->steps) / sizeof(ans->steps[0]))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ans->steps[i], sizeof(ans->steps[i]), fmt, ap);
	va_end(ap);
	ans->step_ptrs[i] = ans->steps[i];
	ans->pb.steps = ans->step_ptrs;
	ans->pb.n_steps = i + 1;
}

static const char *op_name(Haagent__AdminRequest__OpCase op)
{
	switch (op) {
	case HAAGENT__ADMIN_REQUEST__OP_SWITCHOVER:
		return "switchover";
	case HAAGENT__ADMIN_REQUEST__OP_MAINTENANCE:
		return "maintenance";
	case HAAGENT__ADMIN_REQUEST__OP_PAUSE:
		return "pause";
	case HAAGENT__ADMIN_REQUEST__OP_BACKUP_RUN:
		return "backup-run";
	case HAAGENT__ADMIN_REQUEST__OP_BACKUP_VERIFIED:
		return "backup-verified";
	case HAAGENT__ADMIN_REQUEST__OP_BACKUP_POLICY:
		return "backup-policy";
	case HAAGENT__ADMIN_REQUEST__OP_BACKUP_HOLD:
		return "backup-hold";
	case HAAGENT__ADMIN_REQUEST__OP_MEMBER_ADD:
		return "node-add";
	case HAAGENT__ADMIN_REQUEST__OP_MEMBER_REMOVE:
		return "node-remove";
	default:
		return "unknown";
	}
}

/* Proposes an encoded command; false (with the answer set) when it cannot be proposed now. */
static bool propose(struct ha_agent *a, struct answer *ans, int rc, uint8_t *buf, size_t len)
{
	if (rc != 0) {
		say(ans, rc, "cannot encode the command");
		return false;
	}
	if (ha_agent_propose(a, buf, len) != 0) {
		say(ans, HA_ERAFT, "raft did not accept the command (leadership changing?); retry");
		return false;
	}
	return true;
}

/* Cluster-wide preconditions of any change: a majority of agents reporting, no decision being
 * committed. */
static bool cluster_ready(struct ha_agent *a, struct answer *ans, bool checks)
{
	struct ha_core_report rep[HA_MAX_NODES];
	struct ha_core_in in;
	ha_agent_core_input(a, &in, rep);
	unsigned reachable = ha_core_reporting(&in, a->cfg.agent_timeout_ms);
	unsigned voters = ha_core_voters(&in);
	bool quorum = reachable * 2 > voters;
	if (checks) {
		char t[128];
		snprintf(t, sizeof(t), "quorum: %u of %u agents reporting", reachable, voters);
		add_check(ans, quorum, t);
	}
	if (!quorum) {
		say(ans, HA_EREFUSED,
		    "no quorum: only %u of %u agents report to the coordinator; bring agents back "
		    "first",
		    reachable, voters);
		return false;
	}
	if (a->proposing) {
		say(ans, HA_EBUSY, "the coordinator is committing another decision; retry");
		return false;
	}
	return true;
}

/* haadm failover --abort: the failover in progress ends and the old primary keeps the role;
 * refused once the candidate may be writable, or when the old primary did not hold the writes. */
static void abort_failover(struct ha_agent *a, const struct ha_failover *f, struct answer *ans)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	const struct ha_member *o = ha_fsm_member(st, f->old_primary);
	const struct ha_member *c = ha_fsm_member(st, f->candidate);
	uint8_t *buf;
	size_t len;
	char detail[256];
	if (f->owed_gtid[0]) {
		say(ans, HA_EREFUSED,
		    "failover %llu replaces one whose candidate died while promoting: the "
		    "old "
		    "primary %s cannot simply keep the role (it is not the one that held "
		    "the "
		    "writes); wait for it, or use --accept-loss",
		    (unsigned long long)f->id, o ? o->name : "?");
		return;
	}
	if (f->phase >= HA_FO_PROMOTING) {
		say(ans, HA_EREFUSED,
		    "%s %llu is already promoting %s (it may be writable): it cannot be "
		    "aborted; to stop waiting for its relay log use --accept-loss, or "
		    "switch "
		    "over afterwards",
		    f->planned ? "switchover" : "failover", (unsigned long long)f->id,
		    c ? c->name : "?");
		return;
	}
	snprintf(detail, sizeof(detail), "aborted by an operator; %s keeps the role",
	         o ? o->name : "?");
	struct ha_fo_advance adv = {.id = f->id,
	                            .phase = HA_FO_ABORTED,
	                            .candidate = f->old_primary,
	                            .unix_ms = ha_unix_ms(),
	                            .detail = detail};
	/* encoded first: the order in which a call's arguments are evaluated is unspecified, and
	 * buf and len were once read before the encoder had filled them */
	int rc = ha_fsm_cmd_failover_advance(&adv, raft_malloc, &buf, &len);
	if (!propose(a, ans, rc, buf, len))
		return;
	ha_warn("failover-abort-requested", "failover=%llu", (unsigned long long)f->id);
	say(ans, 0, "%s %llu aborted: %s is the primary again at epoch %llu%s",
	    f->planned ? "switchover" : "failover", (unsigned long long)f->id, o ? o->name : "?",
	    (unsigned long long)f->epoch,
	    f->planned ? ""
	               : " (if it is really down, a new failover follows: "
	                 "'haadm pause' first to prevent that)");
}

/* haadm failover --accept-loss: an unplanned failover past fencing stops waiting for what
 * others hold (fenced) or for the candidate's relay log (promoting), and records what that may
 * give up. */
static void accept_loss(struct ha_agent *a, const struct ha_failover *f, struct answer *ans)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	const struct ha_member *c = ha_fsm_member(st, f->candidate);
	uint8_t *buf;
	size_t len;
	char detail[256];
	if (f->planned || f->accept_loss ||
	    (f->phase != HA_FO_FENCED && f->phase != HA_FO_PROMOTING)) {
		say(ans, HA_EREFUSED, "--accept-loss: %s",
		    f->planned       ? "a planned switchover loses nothing; use --abort"
		    : f->accept_loss ? "the loss was already accepted"
		                     : "nothing to give up while the old primary is being fenced; "
		                       "haadm status says what it waits for (--abort ends it)");
		return;
	}
	char lost[HA_FSM_GTID_MAX];
	uint64_t count = ha_agent_loss_if_now(a, lost, sizeof(lost));
	if (f->phase == HA_FO_FENCED)
		snprintf(detail, sizeof(detail),
		         "an operator accepted losing up to %llu transactions: the best eligible "
		         "replica is promoted without waiting for what others hold",
		         (unsigned long long)count);
	else
		snprintf(detail, sizeof(detail),
		         "an operator accepted losing up to %llu transactions: %s stops applying "
		         "its relay log",
		         (unsigned long long)count, c ? c->name : "?");
	struct ha_fo_advance adv = {.id = f->id,
	                            .phase = f->phase,
	                            .accept_loss = true,
	                            .lost_gtid = lost,
	                            .lost_count = count,
	                            .unix_ms = ha_unix_ms(),
	                            .detail = detail};
	/* encoded first: the order in which a call's arguments are evaluated is unspecified, and
	 * buf and len were once read before the encoder had filled them */
	int rc = ha_fsm_cmd_failover_advance(&adv, raft_malloc, &buf, &len);
	if (!propose(a, ans, rc, buf, len))
		return;
	ha_warn("failover-accept-loss", "failover=%llu up_to=%llu", (unsigned long long)f->id,
	        (unsigned long long)count);
	say(ans, 0, "%s; the failover record lists what was given up once it is done", detail);
}

/* haadm failover --abort | --accept-loss: acts on the failover in progress. */
static void in_progress(struct ha_agent *a, const Haagent__SwitchoverRequest *r, struct answer *ans)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	const struct ha_failover *f = &st->failover;
	const char *what = r->abort ? "--abort" : "--accept-loss";
	if (!ha_fsm_failover_active(st)) {
		say(ans, HA_EREFUSED, "%s: no failover or switchover is in progress", what);
		return;
	}
	if (a->proposing) {
		say(ans, HA_EBUSY, "the coordinator is committing another decision; retry");
		return;
	}
	ans->pb.failover_id = f->id;
	if (r->abort)
		abort_failover(a, f, ans);
	else
		accept_loss(a, f, ans);
}

/* A switchover's first checks: none in progress, a primary established, the cluster ready. */
static bool switchover_allowed(struct ha_agent *a, const struct ha_fsm_state *st,
                               struct answer *ans)
{
	if (ha_fsm_failover_active(st)) {
		const struct ha_failover *f = &st->failover;
		add_check(ans, false, "no failover or switchover in progress");
		say(ans, HA_EREFUSED,
		    "%s %llu is in progress (%s); wait for it to end (haadm status)",
		    f->planned ? "switchover" : "failover", (unsigned long long)f->id,
		    ha_fo_phase_name(f->phase));
		return false;
	}
	add_check(ans, true, "no failover or switchover in progress");
	if (st->primary_id == 0) {
		say(ans, HA_EREFUSED, "no primary is established yet (haadm status says why)");
		return false;
	}
	return cluster_ready(a, ans, true);
}

/* The switchover's plan from p to t, as the steps of the answer. */
static void add_plan_steps(struct answer *ans, const struct ha_fo_node *p,
                           const struct ha_fo_node *t, uint64_t epoch, uint32_t timeout,
                           uint32_t grace)
{
	if (grace)
		add_step(ans,
		         "%s: read_only=ON; transactions already open may commit for up to %u ms; "
		         "then every client session is killed and its final binlog position read",
		         p->name, grace);
	else
		add_step(ans,
		         "%s: client sessions killed, read_only=ON; its final binlog position read",
		         p->name);
	add_step(ans,
	         "%s: applies everything up to that position (rolled back to %s if this "
	         "and the previous step take more than %u ms)",
	         t->name, p->name, timeout);
	add_step(ans, "%s: primary at epoch %llu: replication stopped, semi-sync on, read_only=OFF",
	         t->name, (unsigned long long)epoch);
	add_step(ans, "%s and the other replicas replicate from %s", p->name, t->name);
}

/* Proposes the switchover from p to t; the answer says it started. */
static void begin_switchover(struct ha_agent *a, const struct ha_fsm_state *st,
                             const struct ha_fo_node *p, const struct ha_fo_node *t,
                             uint32_t timeout, uint32_t grace, struct answer *ans)
{
	char reason[256];
	snprintf(reason, sizeof(reason), "operator switchover to %s", t->name);
	struct ha_fo_begin b = {.expected_epoch = st->epoch,
	                        .old_primary = st->primary_id,
	                        .reason = reason,
	                        .unix_ms = ha_unix_ms(),
	                        .planned = true,
	                        .target = t->id,
	                        .timeout_ms = timeout,
	                        .grace_ms = grace};
	uint8_t *buf;
	size_t len;
	int rc = ha_fsm_cmd_failover_begin(&b, raft_malloc, &buf, &len);
	if (!propose(a, ans, rc, buf, len))
		return;
	ha_info("switchover-requested", "from=%s to=%s epoch=%llu timeout_ms=%u grace_ms=%u",
	        p->name, t->name, (unsigned long long)st->epoch + 1, timeout, grace);
	say(ans, 0, "switchover %llu from %s to %s started",
	    (unsigned long long)ans->pb.failover_id, p->name, t->name);
}

/* haadm failover [--to NODE] [--dry-run]: checks, plans and (unless a dry run) begins a
 * switchover; --abort and --accept-loss act on the failover in progress instead. */
static void switchover(struct ha_agent *a, const Haagent__SwitchoverRequest *r, struct answer *ans)
{
	if (!name_ok(r->target, ans))
		return;
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	if (r->abort || r->accept_loss) {
		in_progress(a, r, ans);
		return;
	}
	if (!switchover_allowed(a, st, ans))
		return;
	struct ha_fo_node p, reps[HA_FSM_MAX_MEMBERS];
	ha_agent_primary_view(a, st->primary_id, &p);
	size_t n = ha_agent_view(a, st->primary_id, reps, false);
	struct ha_so_check checks[HA_SO_MAX_CHECKS];
	size_t n_checks;
	char why[1024];
	int t = ha_so_plan(&p, reps, n, r->target, a->cfg.switchover_max_lag_ms, checks, &n_checks,
	                   why, sizeof(why));
	for (size_t i = 0; i < n_checks; i++)
		add_check(ans, checks[i].ok, checks[i].text);
	snprintf(ans->old_primary, sizeof(ans->old_primary), "%s", p.name);
	ans->pb.old_primary = ans->old_primary;
	if (t < 0) {
		say(ans, HA_EREFUSED, "%s", why);
		return;
	}
	uint32_t timeout = r->timeout_ms ? r->timeout_ms : a->cfg.switchover_timeout_ms;
	uint32_t grace = r->kill_now ? 0 : r->grace_ms ? r->grace_ms : a->cfg.switchover_grace_ms;
	snprintf(ans->target, sizeof(ans->target), "%s", reps[t].name);
	ans->pb.target = ans->target;
	ans->pb.failover_id = st->next_failover_id + 1;
	ans->pb.epoch = st->epoch + 1;
	ans->pb.timeout_ms = timeout;
	ans->pb.grace_ms = grace;
	add_plan_steps(ans, &p, &reps[t], st->epoch + 1, timeout, grace);
	if (r->dry_run) {
		say(ans, 0, "dry run: would switch over from %s to %s", p.name, reps[t].name);
		return;
	}
	begin_switchover(a, st, &p, &reps[t], timeout, grace, ans);
}

static void maintenance(struct ha_agent *a, const Haagent__MaintenanceRequest *r,
                        struct answer *ans)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	const struct ha_member *m = member_named(st, r->node, ans);
	if (m == NULL)
		return;
	bool on = (m->flags & HA_MEMBER_MAINTENANCE) != 0;
	if (on == r->on) {
		say(ans, 0, "%s is already %s maintenance", m->name, on ? "in" : "out of");
		return;
	}
	if (r->on && m->id == st->primary_id) {
		say(ans, HA_EREFUSED,
		    "%s is the primary: move the role first ('haadm failover'), then put it in "
		    "maintenance",
		    m->name);
		return;
	}
	if (r->on && ha_fsm_failover_active(st) &&
	    (st->failover.target == m->id || st->failover.old_primary == m->id)) {
		say(ans, HA_EREFUSED,
		    "%s takes part in the failover in progress; wait for it to end", m->name);
		return;
	}
	if (!cluster_ready(a, ans, false))
		return;
	uint8_t *buf;
	size_t len;
	int rc = ha_fsm_cmd_set_maintenance(m->id, r->on, ha_unix_ms(), raft_malloc, &buf, &len);
	if (!propose(a, ans, rc, buf, len))
		return;
	ha_info("maintenance-requested", "node=%s on=%d", m->name, r->on);
	say(ans, 0,
	    r->on ? "%s is in maintenance: never promoted, its outage triggers nothing, its "
	            "replication is left as you set it"
	          : "%s is out of maintenance: the agent repoints it to the primary if needed",
	    m->name);
}

static void pause_resume(struct ha_agent *a, const Haagent__PauseRequest *r, struct answer *ans)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	if (st->paused == r->paused) {
		say(ans, 0, "automatic failover is already %s", r->paused ? "paused" : "running");
		return;
	}
	if (r->reason && strlen(r->reason) >= sizeof(st->pause_reason)) {
		say(ans, HA_EINVAL, "the reason is too long (at most %zu characters)",
		    sizeof(st->pause_reason) - 1);
		return;
	}
	if (!cluster_ready(a, ans, false))
		return;
	uint8_t *buf;
	size_t len;
	int rc = ha_fsm_cmd_set_paused(r->paused, r->reason, ha_unix_ms(), raft_malloc, &buf, &len);
	if (!propose(a, ans, rc, buf, len))
		return;
	ha_info(r->paused ? "pause-requested" : "resume-requested", "reason=\"%s\"",
	        r->reason ? r->reason : "");
	say(ans, 0,
	    r->paused ? "automatic failover paused: failures are reported, not acted on ('haadm "
	                "resume' ends it; 'haadm failover' still works)"
	              : "automatic failover resumed");
}

static void backup_run(struct ha_agent *a, const Haagent__BackupRunRequest *r, struct answer *ans)
{
	if (!cluster_ready(a, ans, false) || !name_ok(r->node, ans))
		return;
	struct ha_bk_started out;
	int rc = ha_backup_start(a, r->type && r->type[0] ? r->type : "full", r->node,
	                         "requested by an operator", &out);
	if (rc != 0) {
		say(ans, rc, "%s", out.msg);
		return;
	}
	ans->pb.backup_id = out.id;
	snprintf(ans->backup_name, sizeof(ans->backup_name), "%s", out.name);
	ans->pb.backup_name = ans->backup_name;
	snprintf(ans->target, sizeof(ans->target), "%s", out.node);
	ans->pb.target = ans->target;
	say(ans, 0, "%s", out.msg);
}

static void backup_policy(struct ha_agent *a, const Haagent__CmdSetBackupPolicy *r,
                          struct answer *ans)
{
	const char *sched[] = {r->full, r->differential, r->incremental};
	const char *names[] = {"--full", "--differential", "--incremental"};
	for (int i = 0; i < 3; i++) {
		struct ha_cron c;
		char why[256];
		if (sched[i] && sched[i][0] && ha_cron_parse(sched[i], &c, why, sizeof(why)) != 0) {
			say(ans, HA_EINVAL, "%s %s", names[i], why);
			return;
		}
		if (sched[i] && strlen(sched[i]) >= 64) {
			say(ans, HA_EINVAL, "%s: too long", names[i]);
			return;
		}
	}
	if (!cluster_ready(a, ans, false))
		return;
	struct ha_backup_policy p;
	memset(&p, 0, sizeof(p));
	p.set = true;
	snprintf(p.full, sizeof(p.full), "%s", r->full ? r->full : "");
	snprintf(p.differential, sizeof(p.differential), "%s",
	         r->differential ? r->differential : "");
	snprintf(p.incremental, sizeof(p.incremental), "%s", r->incremental ? r->incremental : "");
	p.keep_full = r->keep_full;
	p.keep_days = r->keep_days;
	uint8_t *buf;
	size_t len;
	int rc = ha_fsm_cmd_set_backup_policy(&p, ha_unix_ms(), raft_malloc, &buf, &len);
	if (!propose(a, ans, rc, buf, len))
		return;
	say(ans, 0, "backup policy set");
}

/* Whether backup id is a finished backup (else the answer says so). */
static bool finished_backup(struct ha_agent *a, uint64_t id, struct answer *ans)
{
	const struct ha_backup_rec *b = ha_fsm_backup(ha_raft_fsm(a->raft), id);
	if (b != NULL && b->state == HA_BK_DONE)
		return true;
	say(ans, HA_EINVAL, "backup %llu is not a finished backup", (unsigned long long)id);
	return false;
}

static void backup_verified(struct ha_agent *a, const Haagent__BackupVerifiedRequest *r,
                            struct answer *ans)
{
	if (!finished_backup(a, r->id, ans) || !cluster_ready(a, ans, false))
		return;
	uint8_t *buf;
	size_t len;
	int rc = ha_fsm_cmd_backup_verified(r->id, r->ok, r->drill, r->detail, r->drill_ms,
	                                    ha_unix_ms(), raft_malloc, &buf, &len);
	if (!propose(a, ans, rc, buf, len))
		return;
	say(ans, 0, "recorded");
}

#define HOLD_MAX_MS (7 * 24 * 3600 * 1000ULL) /* a reader asks for hours, never for weeks */

static void backup_hold(struct ha_agent *a, const Haagent__BackupHoldRequest *r, struct answer *ans)
{
	if (!finished_backup(a, r->id, ans))
		return;
	if (r->hold_ms == 0 || r->hold_ms > HOLD_MAX_MS) {
		say(ans, HA_EINVAL, "a hold lasts 1 ms to 7 days");
		return;
	}
	if (!cluster_ready(a, ans, false))
		return;
	uint8_t *buf;
	size_t len;
	int rc = ha_fsm_cmd_backup_hold(r->id, ha_unix_ms() + r->hold_ms, raft_malloc, &buf, &len);
	if (!propose(a, ans, rc, buf, len))
		return;
	say(ans, 0, "held");
}

/* ---- membership (docs/membership.md) ---- */

static bool port_ok(unsigned p)
{
	return p > 0 && p <= 65535;
}

/* haadm node add: the node is recorded as joining; coord/members.c does the rest. */
static void member_add(struct ha_agent *a, const Haagent__MemberAddRequest *r, struct answer *ans)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	const Haagent__Member *m = r->member;
	struct in_addr ip;
	if (m == NULL || m->name == NULL || m->name[0] == '\0' || !name_ok(m->name, ans)) {
		if (ans->pb.code == 0)
			say(ans, HA_EINVAL, "no node name");
		return;
	}
	if (m->address == NULL || inet_pton(AF_INET, m->address, &ip) != 1 || m->id == 0 ||
	    m->id > HA_NODE_ID_MAX || !port_ok(m->raft_port) || !port_ok(m->rpc_port) ||
	    !port_ok(m->db_port)) {
		say(ans, HA_EINVAL,
		    "%s: needs an IPv4 address, an id from 1 to %u (as in a [node] section) and "
		    "three ports",
		    m->name, HA_NODE_ID_MAX);
		return;
	}
	const struct ha_member *j = ha_fsm_joining(st);
	if (j) {
		say(ans, j->id == m->id && !strcmp(j->name, m->name) ? 0 : HA_EREFUSED,
		    j->id == m->id && !strcmp(j->name, m->name)
		        ? "%s is already joining: follow it with haadm status"
		        : "%s is joining: one node at a time (wait, or haadm node remove %s)",
		    j->name, j->name);
		return;
	}
	if (st->n_members >= HA_FSM_MAX_MEMBERS) {
		say(ans, HA_EREFUSED, "the cluster has %u nodes, the most it can have",
		    st->n_members);
		return;
	}
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *o = &st->members[i];
		bool host = !strcmp(o->address, m->address);
		const char *clash = o->id == m->id                         ? "its id"
		                    : !strcmp(o->name, m->name)            ? "its name"
		                    : host && o->raft_port == m->raft_port ? "its raft address"
		                    : host && o->rpc_port == m->rpc_port   ? "its RPC address"
		                    : host && o->db_port == m->db_port     ? "its database address"
		                                                           : NULL;
		if (clash) {
			say(ans, HA_EREFUSED, "%s has %s already (%s, id %u)", o->name, clash,
			    o->name, o->id);
			return;
		}
	}
	if (ha_fsm_failover_active(st)) {
		say(ans, HA_EBUSY, "a failover is in progress; retry when it ends");
		return;
	}
	struct ha_raft_server servers[HA_MAX_NODES + 4];
	unsigned n_servers = ha_raft_servers(a->raft, servers, HA_MAX_NODES + 4);
	for (unsigned i = 0; i < n_servers; i++)
		if (servers[i].id == m->id) {
			say(ans, HA_EBUSY, "raft still lists id %u (being removed); retry", m->id);
			return;
		}
	if (!cluster_ready(a, ans, false))
		return;
	struct ha_member nm = {.id = m->id,
	                       .raft_port = m->raft_port,
	                       .rpc_port = m->rpc_port,
	                       .db_port = m->db_port,
	                       .flags = m->flags & HA_MEMBER_NO_PROMOTE,
	                       .priority = m->priority};
	snprintf(nm.name, sizeof(nm.name), "%s", m->name);
	snprintf(nm.address, sizeof(nm.address), "%s", m->address);
	uint8_t *buf;
	size_t len;
	int rc = ha_fsm_cmd_member_add(&nm, ha_unix_ms(), raft_malloc, &buf, &len);
	if (!propose(a, ans, rc, buf, len))
		return;
	ha_info("member-add-requested", "node=%s id=%u address=%s", nm.name, nm.id, nm.address);
	say(ans, 0,
	    "%s (id %u, %s) is joining: raft sends it the log as a non-voter; its agent (started "
	    "with [cluster] join = yes) builds its database from the newest backup; it votes once "
	    "it replicates",
	    nm.name, nm.id, nm.address);
}

/* haadm node remove: never the primary, never below a majority of the voters reporting. */
static void member_remove(struct ha_agent *a, const Haagent__MemberRemoveRequest *r,
                          struct answer *ans)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	const struct ha_member *m = member_named(st, r->node, ans);
	if (m == NULL)
		return;
	if (m->id == st->primary_id) {
		say(ans, HA_EREFUSED,
		    "%s is the primary: switch over first ('haadm failover'), then remove it",
		    m->name);
		return;
	}
	if (ha_fsm_failover_active(st)) {
		say(ans, HA_EBUSY, "a failover is in progress; retry when it ends");
		return;
	}
	struct ha_core_report rep[HA_MAX_NODES];
	struct ha_core_in in;
	ha_agent_core_input(a, &in, rep);
	bool voter = !(m->flags & HA_MEMBER_JOINING);
	int idx = ha_agent_node_index(a, m->id);
	bool reporting = idx == a->cfg.self || ha_agent_fresh(a, idx);
	unsigned voters = ha_core_voters(&in) - voter;
	unsigned reachable = ha_core_reporting(&in, a->cfg.agent_timeout_ms) - (voter && reporting);
	if (voter && (voters == 0 || reachable * 2 <= voters)) {
		if (ha_now_ms() - ha_raft_ready_since(a->raft) < a->cfg.agent_timeout_ms) {
			say(ans, HA_EBUSY, "the leader is new and not every report is in; retry");
			return;
		}
		say(ans, HA_EREFUSED,
		    "removing %s would leave %u voters of which %u report: no majority; bring the "
		    "others back first",
		    m->name, voters, reachable);
		return;
	}
	if (m->id == a->self->id) {
		/* the leader cannot carry out its own removal: another voter leads, then removes */
		struct ha_err e = {0};
		if (ha_raft_transfer(a->raft, &e) != 0 && voters == 0)
			say(ans, HA_EREFUSED, "%s leads raft and no other voter can take over: %s",
			    m->name, e.msg);
		else /* moving, or a transfer already under way */
			say(ans, HA_EBUSY, "%s leads raft: leadership is moving; retry", m->name);
		return;
	}
	if (!cluster_ready(a, ans, false))
		return;
	uint8_t *buf;
	size_t len;
	char reason[128];
	snprintf(reason, sizeof(reason), "removed by haadm node remove%s",
	         voter ? "" : " (its join cancelled)");
	int rc = ha_fsm_cmd_member_remove(m->id, reason, ha_unix_ms(), raft_malloc, &buf, &len);
	if (!propose(a, ans, rc, buf, len))
		return;
	ha_info("member-remove-requested", "node=%s id=%u", m->name, m->id);
	say(ans, 0,
	    "%s is removed: raft drops it next; its agent leaves its database alone (stop it and "
	    "its server)",
	    m->name);
}

void ha_admin_request(struct ha_agent *a, struct ha_rpc_conn *c, const uint8_t *p, size_t n)
{
	static struct answer ans; /* loop thread only; too big for comfort on its stack */
	memset(&ans, 0, sizeof(ans));
	haagent__admin_response__init(&ans.pb);
	ans.pb.message = "";
	Haagent__AdminRequest *r = haagent__admin_request__unpack(NULL, n, p);
	if (r == NULL) {
		say(&ans, HA_EPROTO, "the request does not decode");
		ha_rpc_send(c, HA_MSG_ADMIN_RESPONSE, &ans.pb);
		return;
	}
	uint32_t leader = ha_raft_leader_id(a->raft);
	if (leader != a->self->id) {
		const struct ha_node_conf *l =
		    leader ? ha_config_node_by_id(&a->cfg, leader) : NULL;
		if (l) {
			snprintf(ans.redirect, sizeof(ans.redirect), "%s:%u", l->address,
			         l->rpc_port);
			ans.pb.redirect = ans.redirect;
			say(&ans, HA_ENOLEADER, "not the leader: ask %s", ans.redirect);
		} else {
			say(&ans, HA_ENOLEADER, "no raft leader is known; retry in a moment");
		}
	} else if (!ha_raft_ready(a->raft)) {
		say(&ans, HA_EBUSY, "the leader is not ready yet (barrier pending); retry");
	} else {
		switch (r->op_case) {
		case HAAGENT__ADMIN_REQUEST__OP_SWITCHOVER:
			switchover(a, r->switchover, &ans);
			break;
		case HAAGENT__ADMIN_REQUEST__OP_MAINTENANCE:
			maintenance(a, r->maintenance, &ans);
			break;
		case HAAGENT__ADMIN_REQUEST__OP_PAUSE:
			pause_resume(a, r->pause, &ans);
			break;
		case HAAGENT__ADMIN_REQUEST__OP_BACKUP_RUN:
			backup_run(a, r->backup_run, &ans);
			break;
		case HAAGENT__ADMIN_REQUEST__OP_BACKUP_VERIFIED:
			backup_verified(a, r->backup_verified, &ans);
			break;
		case HAAGENT__ADMIN_REQUEST__OP_BACKUP_HOLD:
			backup_hold(a, r->backup_hold, &ans);
			break;
		case HAAGENT__ADMIN_REQUEST__OP_BACKUP_POLICY:
			backup_policy(a, r->backup_policy, &ans);
			break;
		case HAAGENT__ADMIN_REQUEST__OP_MEMBER_ADD:
			member_add(a, r->member_add, &ans);
			break;
		case HAAGENT__ADMIN_REQUEST__OP_MEMBER_REMOVE:
			member_remove(a, r->member_remove, &ans);
			break;
		default:
			say(&ans, HA_EPROTO, "unknown request");
		}
		/* a refusal is the operator's to read in the journal too (busy is only a retry) */
		if (ans.pb.code != 0 && ans.pb.code != HA_EBUSY)
			ha_warn("admin-refused", "request=%s code=%d why=\"%s\"",
			        op_name(r->op_case), -ans.pb.code,
			        ans.pb.message ? ans.pb.message : "");
	}
	ha_rpc_send(c, HA_MSG_ADMIN_RESPONSE, &ans.pb);
	haagent__admin_request__free_unpacked(r, NULL);
}
