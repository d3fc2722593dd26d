/* haadm node add / node remove (docs/membership.md): a node joins or leaves the running cluster.
 *
 * add: the leader records NAME as joining; raft sends it the log as a non-voter; its agent
 * (started with [cluster] join = yes) builds its database from the newest backup and the binlog
 * archive, and replicates; then raft makes it a voter and it is a full member. The command
 * prints each stage as the leader's status shows it, and ends when the node has joined (0), the
 * leader undid the join (14: its agent went silent, or it took longer than join_timeout_ms),
 * or --timeout passed (11; the join goes on, bounded by the leader).
 *
 * remove: refused for the primary and when the voters left would not have a majority
 * reporting; ends when the node is gone from the status. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../consensus/fsm.h"
#include "../common/buf.h"
#include "../common/clock.h"
#include "call.h"
#include "haadm.h"

#define POLL_MS    500
#define MAX_STAGES 32

struct follow {
	char stages[MAX_STAGES][400];
	unsigned n;
	uint64_t start_ms;
};

static void stage(struct globals *g, struct follow *f, const char *text)
{
	if (f->n > 0 && !strcmp(f->stages[f->n - 1], text))
		return;
	unsigned i = f->n < MAX_STAGES ? f->n++ : MAX_STAGES - 1;
	snprintf(f->stages[i], sizeof(f->stages[i]), "%s", text);
	if (!g->json) {
		printf("[%5.1f s] %s\n", (double)(ha_now_ms() - f->start_ms) / 1000.0, text);
		fflush(stdout);
	}
}

static void print_json(const char *node, const char *result, int rc, const char *message,
                       const struct follow *f)
{
	struct ha_buf b = HA_BUF_INIT;
	struct ha_json j;
	ha_json_init(&j, &b, true);
	ha_json_obj_begin(&j, NULL);
	ha_json_uint(&j, "format", 1);
	ha_json_str(&j, "node", node);
	ha_json_str(&j, "result", result);
	ha_json_int(&j, "code", -rc);
	ha_json_str(&j, "message", message);
	ha_json_double(&j, "seconds", (double)(ha_now_ms() - f->start_ms) / 1000.0);
	ha_json_arr_begin(&j, "stages");
	for (unsigned i = 0; i < f->n; i++)
		ha_json_str(&j, NULL, f->stages[i]);
	ha_json_arr_end(&j);
	ha_json_obj_end(&j);
	printf("%s\n", ha_buf_failed(&b) ? "{}" : ha_buf_cstr(&b));
	ha_buf_free(&b);
}

static int finish(struct globals *g, const char *node, const char *result, int rc,
                  const struct follow *f, const char *message)
{
	if (g->json)
		print_json(node, result, rc, message, f);
	else
		fprintf(rc == 0 ? stdout : stderr, "%s%s\n", rc == 0 ? "" : "haadm: ", message);
	return rc;
}

static const Haagent__NodeStatus *find(const Haagent__StatusResponse *s, const char *name)
{
	for (size_t i = 0; i < s->n_nodes; i++)
		if (!strcmp(s->nodes[i]->name, name))
			return s->nodes[i];
	return NULL;
}

/* What the leader's status says of a joining node. */
static void describe(const Haagent__NodeStatus *n, char *out, size_t size)
{
	const Haagent__Health *h = n->has_health ? n->health : NULL;
	if (!n->agent_reachable || h == NULL)
		snprintf(out, size, "%s: joining; waiting for its agent (raft sends it the log)",
		         n->name);
	else if (h->db != HAAGENT__DB_STATE__DB_UP)
		snprintf(out, size, "%s: joining; its database is not up%s%s", n->name,
		         h->action && h->action[0] ? ": " : "", h->action ? h->action : "");
	else if (!h->replicating)
		snprintf(out, size, "%s: joining; %s", n->name,
		         h->action && h->action[0] ? h->action : "its database is not replicating");
	else if (!h->io_running || !h->sql_running || h->lag_seconds != 0)
		snprintf(out, size, "%s: joining; replicating from %s:%u, catching up", n->name,
		         h->master_host, h->master_port);
	else
		snprintf(out, size, "%s: joining; replicating, caught up: raft makes it a voter",
		         n->name);
}

static int follow_add(struct globals *g, const char *name, unsigned timeout_s, struct follow *f)
{
	uint64_t deadline = f->start_ms + (uint64_t)timeout_s * 1000;
	bool seen = false;
	char text[400];
	while (ha_now_ms() < deadline) {
		Haagent__StatusResponse *s = NULL;
		struct ha_err e = {0};
		if (ha_cli_status(g, false, &s, &e) == 0 && s->authoritative) {
			const Haagent__NodeStatus *n = find(s, name);
			if (n && !(n->flags & HA_MEMBER_JOINING)) {
				snprintf(text, sizeof(text),
				         "%s joined: a raft voter, replicating from %s", name,
				         s->primary);
				haagent__status_response__free_unpacked(s, NULL);
				stage(g, f, text);
				return finish(g, name, "joined", 0, f, text);
			}
			if (n == NULL && seen) {
				haagent__status_response__free_unpacked(s, NULL);
				snprintf(
				    text, sizeof(text),
				    "the join of %s was undone by the leader (see haadm events: "
				    "member-removed gives the reason); the cluster is as before",
				    name);
				return finish(g, name, "undone", HA_EREFUSED, f, text);
			}
			if (n) {
				seen = true;
				describe(n, text, sizeof(text));
				stage(g, f, text);
			}
		}
		if (s)
			haagent__status_response__free_unpacked(s, NULL);
		usleep(POLL_MS * 1000);
	}
	snprintf(text, sizeof(text),
	         "%s has not joined after %u s; the leader goes on (and undoes the join after "
	         "join_timeout_ms); follow it with haadm status",
	         name, timeout_s);
	return finish(g, name, "timeout", HA_ETIMEOUT, f, text);
}

static int send(struct globals *g, const Haagent__AdminRequest *req, const char *name,
                struct follow *f)
{
	Haagent__AdminResponse *r;
	struct ha_err e = {0};
	int rc = ha_cli_admin(g, req, &r, &e);
	if (rc != 0)
		return finish(g, name, "error", rc, f, e.msg);
	rc = r->code;
	char msg[1024];
	snprintf(msg, sizeof(msg), "%s", r->message);
	haagent__admin_response__free_unpacked(r, NULL);
	if (rc != 0)
		return finish(g, name, "refused", rc, f, msg);
	stage(g, f, msg);
	return 0;
}

static bool parse_uint(const char *s, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

static int bad(const char *what)
{
	fprintf(stderr, "haadm node add: %s; see 'haadm help node'\n", what);
	return HA_EUSAGE;
}

/* Long on purpose: one option table and its checks, in the order the help gives them. */
int ha_cmd_node_add(struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {{"address", required_argument, NULL, 'A'},
	                                     {"id", required_argument, NULL, 'i'},
	                                     {"raft-port", required_argument, NULL, 'r'},
	                                     {"rpc-port", required_argument, NULL, 'p'},
	                                     {"db-port", required_argument, NULL, 'd'},
	                                     {"priority", required_argument, NULL, 'P'},
	                                     {"no-promote", no_argument, NULL, 'n'},
	                                     {"timeout", required_argument, NULL, 't'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	Haagent__Member m = HAAGENT__MEMBER__INIT;
	m.raft_port = 7100;
	m.rpc_port = 7200;
	m.db_port = 3306;
	unsigned timeout_s = 3600, v;
	int c;
	optind = 0; /* 0, not 1: glibc then re-reads the ordering from optstring */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'A':
			m.address = optarg;
			break;
		case 'i':
			if (!parse_uint(optarg, HA_NODE_ID_MAX, &m.id) || m.id == 0)
				return bad("--id takes a whole number from 1 to 1000000");
			break;
		case 'r':
		case 'p':
		case 'd':
			if (!parse_uint(optarg, 65535, &v) || v == 0)
				return bad("a port is 1 to 65535");
			*(c == 'r' ? &m.raft_port : c == 'p' ? &m.rpc_port : &m.db_port) = v;
			break;
		case 'P':
			if (!parse_uint(optarg, 1000000, &m.priority))
				return bad("--priority takes a whole number");
			break;
		case 'n':
			m.flags |= HA_MEMBER_NO_PROMOTE;
			break;
		case 't':
			if (!parse_uint(optarg, 7 * 86400, &timeout_s))
				return bad("--timeout takes seconds");
			break;
		case 'j':
			g->json = true;
			break;
		case 'h':
			ha_cli_help("node");
			return 0;
		default:
			return HA_EUSAGE;
		}
	}
	/* positional: add NAME */
	if (argc - optind != 2 || strcmp(argv[optind], "add") != 0)
		return bad("usage: haadm node add NAME --address IP --id N [options]");
	m.name = argv[optind + 1];
	if (ha_cli_check_name("node add", m.name) != 0)
		return HA_EUSAGE;
	if (m.address == NULL || m.id == 0)
		return bad("--address and --id are required");
	Haagent__MemberAddRequest ar = HAAGENT__MEMBER_ADD_REQUEST__INIT;
	ar.member = &m;
	Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
	req.op_case = HAAGENT__ADMIN_REQUEST__OP_MEMBER_ADD;
	req.member_add = &ar;
	struct follow f = {.start_ms = ha_now_ms()};
	int rc = send(g, &req, m.name, &f);
	return rc != 0 ? rc : follow_add(g, m.name, timeout_s, &f);
}

int ha_cmd_node_remove(struct globals *g, int argc, char **argv)
{
	int rc = ha_cli_opts(g, argc, argv, "node", NULL, NULL, true);
	if (rc != 0)
		return rc;
	if (argc - optind != 2 || strcmp(argv[optind], "remove") != 0) {
		fprintf(stderr, "haadm node remove: usage: haadm node remove NAME [--json]\n");
		return HA_EUSAGE;
	}
	const char *name = argv[optind + 1];
	if (ha_cli_check_name("node remove", name) != 0)
		return HA_EUSAGE;
	Haagent__MemberRemoveRequest mr = HAAGENT__MEMBER_REMOVE_REQUEST__INIT;
	mr.node = (char *)name;
	Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
	req.op_case = HAAGENT__ADMIN_REQUEST__OP_MEMBER_REMOVE;
	req.member_remove = &mr;
	struct follow f = {.start_ms = ha_now_ms()};
	if ((rc = send(g, &req, name, &f)) != 0)
		return rc;
	uint64_t deadline = f.start_ms + 15000;
	while (ha_now_ms() < deadline) {
		Haagent__StatusResponse *s = NULL;
		struct ha_err e = {0};
		bool gone = false;
		if (ha_cli_status(g, false, &s, &e) == 0)
			gone = s->authoritative && find(s, name) == NULL;
		if (s)
			haagent__status_response__free_unpacked(s, NULL);
		if (gone) {
			char text[256];
			snprintf(
			    text, sizeof(text),
			    "%s removed: it no longer votes nor counts; stop its agent and its "
			    "server",
			    name);
			return finish(g, name, "removed", 0, &f, text);
		}
		usleep(POLL_MS * 1000);
	}
	return finish(g, name, "unconfirmed", HA_ETIMEOUT, &f,
	              "accepted but still in the status after 15 s; check haadm status");
}
