/* haadm commands that change the cluster: failover (planned switchover), node maintenance,
 * pause, resume. Each sends one AdminRequest to the raft leader, which checks it and commits it
 * or refuses it with the reason; a switchover is then followed through `status` until it ends,
 * so that a change of leader midway does not lose track of it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/frame.h"
#include "call.h"
#include "haadm.h"

#define POLL_MS        20
#define PROMOTE_MS     15000 /* after the switchover's own timeout: promotion and reporting */
#define COMMIT_WAIT_MS 5000  /* a started switchover must show up in status within this */

static void print_answer_json(const Haagent__AdminResponse *r, const char *result)
{
	struct ha_buf b = HA_BUF_INIT;
	struct ha_json j;
	ha_json_init(&j, &b, true);
	ha_json_obj_begin(&j, NULL);
	ha_json_uint(&j, "format", 1);
	ha_json_str(&j, "result", result);
	ha_json_int(&j, "code", -r->code);
	ha_json_str(&j, "message", r->message);
	ha_json_obj_end(&j);
	printf("%s\n", ha_buf_failed(&b) ? "{}" : ha_buf_cstr(&b));
	ha_buf_free(&b);
}

/* Sends req and prints the answer: for the commands whose answer is the whole story. */
static int simple(struct globals *g, const Haagent__AdminRequest *req, const char *cmd)
{
	Haagent__AdminResponse *r;
	struct ha_err e = {0};
	int rc = ha_cli_admin(g, req, &r, &e);
	if (rc != 0) {
		fprintf(stderr, "haadm: %s: %s\n", cmd, e.msg);
		return rc;
	}
	rc = r->code;
	if (rc == 0 && !ha_cli_wait_visible(g, req)) {
		fprintf(stderr,
		        "haadm: %s: accepted but not visible in the status after %d ms (leader "
		        "changed?); check 'haadm status' and retry\n",
		        cmd, COMMIT_WAIT_MS);
		rc = HA_ETIMEOUT;
	}
	if (g->json)
		print_answer_json(r, rc == 0 ? "ok" : r->code == 0 ? "unconfirmed" : "refused");
	else
		fprintf(rc == 0 ? stdout : stderr, "%s%s\n",
		        rc == 0 ? "" : "haadm: refused: ", r->message);
	haagent__admin_response__free_unpacked(r, NULL);
	return rc;
}

/* Options common to these commands; positional arguments are left in argv[optind..]. */
static int bad_args(const char *cmd)
{
	fprintf(stderr, "haadm %s: bad arguments; see 'haadm help %s'\n", cmd, cmd);
	return HA_EUSAGE;
}

static bool parse_ms(const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end || v > 3600000)
		return false;
	*out = (unsigned)v;
	return true;
}

/* ---- failover ---- */

struct follow {
	const Haagent__AdminResponse *start;
	const char *result; /* done | rolled_back | timeout | not_committed | superseded */
	Haagent__StatusResponse *last; /* last status that showed the switchover */
	uint64_t elapsed_ms;
};

static const char *node_name(const Haagent__StatusResponse *s, uint32_t id)
{
	for (size_t i = 0; i < s->n_nodes; i++)
		if (s->nodes[i]->id == id)
			return s->nodes[i]->name;
	return "?";
}

static double since(uint64_t from, uint64_t to)
{
	return from && to >= from ? (double)(to - from) / 1000.0 : 0.0;
}

/* Prints the phases that completed since `shown` (text mode). */
static void print_progress(const Haagent__Failover *f, const Haagent__StatusResponse *s,
                           unsigned *shown)
{
	if (*shown < 1 && f->phase >= 1) {
		if (f->grace_ms)
			printf("  +0.000 s  fencing    %s: read_only, open transactions may commit "
			       "for %u ms\n",
			       node_name(s, f->old_primary), f->grace_ms);
		else
			printf("  +0.000 s  fencing    %s: client sessions killed, read_only\n",
			       node_name(s, f->old_primary));
		*shown = 1;
	}
	if (f->phase == 5) {
		printf("  +%.3f s  rolled back: %s\n", since(f->begin_unix_ms, f->done_unix_ms),
		       f->detail);
		*shown = 5;
		return;
	}
	if (*shown < 2 && f->phase >= 2) {
		printf("  +%.3f s  fenced     %s\n", since(f->begin_unix_ms, f->fenced_unix_ms),
		       f->fenced_by);
		*shown = 2;
	}
	if (*shown < 3 && f->phase >= 3) {
		printf("  +%.3f s  promoting  %s\n", since(f->begin_unix_ms, f->promoting_unix_ms),
		       f->detail);
		*shown = 3;
	}
	if (*shown < 4 && f->phase >= 4) {
		printf("  +%.3f s  done       %s writable at epoch %llu\n",
		       since(f->begin_unix_ms, f->done_unix_ms), node_name(s, f->candidate),
		       (unsigned long long)f->epoch);
		*shown = 4;
	}
	fflush(stdout);
}

static void follow_switchover(const struct globals *g, const Haagent__AdminResponse *r,
                              struct follow *fl)
{
	uint64_t t0 = ha_now_ms();
	uint64_t deadline = t0 + r->timeout_ms + PROMOTE_MS;
	unsigned shown = 0;
	bool told_waiting = false;
	fl->result = "timeout";
	while (ha_now_ms() < deadline) {
		Haagent__StatusResponse *s = NULL;
		struct ha_err e = {0};
		if (ha_cli_status(g, false, &s, &e) != 0 || !s->authoritative) {
			if (!told_waiting && !g->json) {
				printf("  (waiting for a leader: %s)\n",
				       s ? "no authoritative answer" : e.msg);
				told_waiting = true;
			}
			if (s)
				haagent__status_response__free_unpacked(s, NULL);
			usleep(POLL_MS * 1000);
			continue;
		}
		const Haagent__Failover *f = s->failover;
		uint64_t id = f ? f->id : 0;
		if (id == r->failover_id) {
			if (!g->json)
				print_progress(f, s, &shown);
			if (fl->last)
				haagent__status_response__free_unpacked(fl->last, NULL);
			fl->last = s;
			if (f->phase == 4 || f->phase == 5) {
				fl->result = f->phase == 4 ? "done" : "rolled_back";
				break;
			}
		} else {
			bool other = id > r->failover_id;
			bool gone = ha_now_ms() - t0 > COMMIT_WAIT_MS || s->epoch >= r->epoch;
			haagent__status_response__free_unpacked(s, NULL);
			if (other) {
				fl->result = "superseded";
				break;
			}
			if (gone) {
				fl->result = "not_committed";
				break;
			}
		}
		usleep(POLL_MS * 1000);
	}
	fl->elapsed_ms = ha_now_ms() - t0;
}

static void switchover_json(const Haagent__AdminResponse *r, const char *result,
                            const Haagent__StatusResponse *s)
{
	struct ha_buf b = HA_BUF_INIT;
	struct ha_json j;
	ha_json_init(&j, &b, true);
	ha_json_obj_begin(&j, NULL);
	ha_json_uint(&j, "format", 1);
	ha_json_str(&j, "result", result);
	ha_json_str(&j, "message", r->message);
	ha_json_str_or_null(&j, "old_primary", r->old_primary);
	ha_json_str_or_null(&j, "target", r->target);
	if (r->failover_id) {
		ha_json_uint(&j, "switchover_id", r->failover_id);
		ha_json_uint(&j, "epoch", r->epoch);
		ha_json_uint(&j, "timeout_ms", r->timeout_ms);
		ha_json_uint(&j, "grace_ms", r->grace_ms);
	}
	ha_json_arr_begin(&j, "checks");
	for (size_t i = 0; i < r->n_checks; i++) {
		ha_json_obj_begin(&j, NULL);
		ha_json_bool(&j, "ok", strncmp(r->checks[i], "ok", 2) == 0);
		ha_json_str(&j, "check", r->checks[i] + 5);
		ha_json_obj_end(&j);
	}
	ha_json_arr_end(&j);
	ha_json_arr_begin(&j, "steps");
	for (size_t i = 0; i < r->n_steps; i++)
		ha_json_str(&j, NULL, r->steps[i]);
	ha_json_arr_end(&j);
	const Haagent__Failover *f = s ? s->failover : NULL;
	if (f && f->id == r->failover_id) {
		ha_json_str_or_null(&j, "fenced_by", f->fenced_by);
		ha_json_str_or_null(&j, "fenced_gtid", f->fenced_gtid);
		ha_json_str_or_null(&j, "detail", f->detail);
		ha_json_obj_begin(&j, "phase_ms");
		ha_json_uint(&j, "fence",
		             f->fenced_unix_ms ? f->fenced_unix_ms - f->begin_unix_ms : 0);
		ha_json_uint(&j, "catch_up",
		             f->promoting_unix_ms && f->fenced_unix_ms
		                 ? f->promoting_unix_ms - f->fenced_unix_ms
		                 : 0);
		ha_json_uint(&j, "promote",
		             f->done_unix_ms && f->promoting_unix_ms
		                 ? f->done_unix_ms - f->promoting_unix_ms
		                 : 0);
		ha_json_uint(&j, "total", f->done_unix_ms ? f->done_unix_ms - f->begin_unix_ms : 0);
		ha_json_obj_end(&j);
	}
	ha_json_obj_end(&j);
	printf("%s\n", ha_buf_failed(&b) ? "{}" : ha_buf_cstr(&b));
	ha_buf_free(&b);
}

/* failover's options into so and no_wait: 0 to go on, 1 when the help was printed, or
 * HA_EUSAGE. */
static int failover_options(struct globals *g, int argc, char **argv,
                            Haagent__SwitchoverRequest *so, bool *no_wait)
{
	static const struct option opts[] = {
	    {"to", required_argument, NULL, 'T'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"timeout", required_argument, NULL, 'o'},
	    {"grace", required_argument, NULL, 'g'},
	    {"kill-now", no_argument, NULL, 'k'},
	    {"no-wait", no_argument, NULL, 'W'},
	    {"abort", no_argument, NULL, 'A'},
	    {"accept-loss", no_argument, NULL, 'L'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int o;
	optind = 0; /* 0, not 1: glibc then re-reads the ordering from optstring */
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'T':
			so->target = optarg;
			break;
		case 'n':
			so->dry_run = true;
			break;
		case 'o':
			if (!parse_ms(optarg, &so->timeout_ms) || so->timeout_ms < 500)
				return bad_args("failover");
			break;
		case 'g':
			if (!parse_ms(optarg, &so->grace_ms))
				return bad_args("failover");
			if (so->grace_ms == 0)
				so->kill_now = true;
			break;
		case 'k':
			so->kill_now = true;
			break;
		case 'W':
			*no_wait = true;
			break;
		case 'A':
			so->abort = true;
			break;
		case 'L':
			so->accept_loss = true;
			break;
		case 'j':
			g->json = true;
			break;
		case 'h':
			ha_cli_help("failover");
			return 1;
		default:
			return bad_args("failover");
		}
	}
	if (optind != argc || (so->abort && so->accept_loss) ||
	    ((so->abort || so->accept_loss) && (so->target || so->dry_run)))
		return bad_args("failover");
	if (so->target && so->target[0] && ha_cli_check_name("failover", so->target) != 0)
		return HA_EUSAGE;
	if (so->abort || so->accept_loss)
		*no_wait = true; /* the answer says what was done; status follows it */
	return 0;
}

/* The leader's answer when it is the whole story: a refusal, a dry run's checks and plan, or
 * what was started, aborted or accepted without waiting. */
static void print_answer(const struct globals *g, const Haagent__AdminResponse *r,
                         const Haagent__SwitchoverRequest *so)
{
	int rc = r->code;
	const char *result = rc != 0           ? "refused"
	                     : so->dry_run     ? "dry_run"
	                     : so->abort       ? "aborted"
	                     : so->accept_loss ? "loss_accepted"
	                                       : "started";
	if (g->json) {
		switchover_json(r, result, NULL);
		return;
	}
	if (r->n_checks)
		printf("checks:\n");
	for (size_t i = 0; i < r->n_checks; i++)
		printf("  %s\n", r->checks[i]);
	if (rc == 0 && r->n_steps)
		printf("plan (switchover %llu, epoch %llu):\n", (unsigned long long)r->failover_id,
		       (unsigned long long)r->epoch);
	for (size_t i = 0; rc == 0 && i < r->n_steps; i++)
		printf("  %zu. %s\n", i + 1, r->steps[i]);
	fprintf(rc == 0 ? stdout : stderr, "%s%s\n",
	        rc == 0 ? "" : "haadm: failover refused: ", r->message);
}

/* The switchover's outcome as followed: its exit code, and what it says. */
static int print_outcome(const struct globals *g, const Haagent__AdminResponse *r,
                         const struct follow *fl)
{
	int rc;
	if (!strcmp(fl->result, "done"))
		rc = 0;
	else if (!strcmp(fl->result, "rolled_back") || !strcmp(fl->result, "superseded") ||
	         !strcmp(fl->result, "not_committed"))
		rc = HA_EREFUSED;
	else
		rc = HA_ETIMEOUT;
	if (g->json) {
		switchover_json(r, fl->result, fl->last);
	} else if (rc == 0) {
		printf("switchover done: %s is the primary at epoch %llu\n", r->target,
		       (unsigned long long)r->epoch);
	} else if (!strcmp(fl->result, "rolled_back")) {
		fprintf(stderr, "haadm: switchover rolled back: %s is the primary again\n",
		        r->old_primary);
	} else if (!strcmp(fl->result, "timeout")) {
		fprintf(stderr,
		        "haadm: no outcome within %llu ms; the cluster carries on with it: see "
		        "'haadm status'\n",
		        (unsigned long long)fl->elapsed_ms);
	} else {
		fprintf(stderr,
		        "haadm: the switchover was %s; see 'haadm status' and 'haadm events'\n",
		        !strcmp(fl->result, "superseded") ? "superseded by another failover"
		                                          : "not committed (leader changed?)");
	}
	return rc;
}

int ha_cmd_failover(struct globals *g, int argc, char **argv)
{
	Haagent__SwitchoverRequest so = HAAGENT__SWITCHOVER_REQUEST__INIT;
	bool no_wait = false;
	int rc = failover_options(g, argc, argv, &so, &no_wait);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
	req.op_case = HAAGENT__ADMIN_REQUEST__OP_SWITCHOVER;
	req.switchover = &so;
	Haagent__AdminResponse *r;
	struct ha_err e = {0};
	rc = ha_cli_admin(g, &req, &r, &e);
	if (rc != 0) {
		fprintf(stderr, "haadm: failover: %s\n", e.msg);
		return rc;
	}
	rc = r->code;
	if (rc != 0 || so.dry_run || no_wait) {
		print_answer(g, r, &so);
		haagent__admin_response__free_unpacked(r, NULL);
		return rc;
	}
	if (!g->json) {
		printf("switchover %llu: %s -> %s at epoch %llu (timeout %u ms, grace %u ms)\n",
		       (unsigned long long)r->failover_id, r->old_primary, r->target,
		       (unsigned long long)r->epoch, r->timeout_ms, r->grace_ms);
		fflush(stdout);
	}
	struct follow fl = {.start = r};
	follow_switchover(g, r, &fl);
	rc = print_outcome(g, r, &fl);
	if (fl.last)
		haagent__status_response__free_unpacked(fl.last, NULL);
	haagent__admin_response__free_unpacked(r, NULL);
	return rc;
}

/* ---- node, pause, resume ---- */

int ha_cmd_node(struct globals *g, int argc, char **argv)
{
	int rc = ha_cli_opts(g, argc, argv, "node", NULL, NULL, true);
	if (rc != 0)
		return rc;
	/* positional: maintenance NODE on|off */
	if (argc - optind != 3 || strcmp(argv[optind], "maintenance") != 0 ||
	    (strcmp(argv[optind + 2], "on") != 0 && strcmp(argv[optind + 2], "off") != 0))
		return bad_args("node");
	if (ha_cli_check_name("node", argv[optind + 1]) != 0)
		return HA_EUSAGE;
	Haagent__MaintenanceRequest m = HAAGENT__MAINTENANCE_REQUEST__INIT;
	m.node = argv[optind + 1];
	m.on = !strcmp(argv[optind + 2], "on");
	Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
	req.op_case = HAAGENT__ADMIN_REQUEST__OP_MAINTENANCE;
	req.maintenance = &m;
	return simple(g, &req, "node");
}

static int pause_or_resume(struct globals *g, int argc, char **argv, bool pause)
{
	const char *cmd = pause ? "pause" : "resume", *reason = "";
	int rc = ha_cli_opts(g, argc, argv, cmd, NULL, pause ? &reason : NULL, true);
	if (rc != 0)
		return rc;
	if (optind != argc)
		return bad_args(cmd);
	Haagent__PauseRequest p = HAAGENT__PAUSE_REQUEST__INIT;
	p.paused = pause;
	p.reason = (char *)reason;
	Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
	req.op_case = HAAGENT__ADMIN_REQUEST__OP_PAUSE;
	req.pause = &p;
	return simple(g, &req, cmd);
}

int ha_cmd_pause(struct globals *g, int argc, char **argv)
{
	return pause_or_resume(g, argc, argv, true);
}

int ha_cmd_resume(struct globals *g, int argc, char **argv)
{
	return pause_or_resume(g, argc, argv, false);
}
