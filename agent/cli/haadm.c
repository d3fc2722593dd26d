/* haadm: the operator's command-line tool. Commands are declared once in the table below; the
 * usage text, `haadm help CMD` and docs/cli.md follow it. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/frame.h"
#include "../common/secret.h"
#include "../config.h"
#include "call.h"
#include "haadm.h"
#include "pitr.h"
#include "haagent.pb-c.h"
#include "render.h"

#ifndef HA_VERSION
#define HA_VERSION "0.1.0"
#endif

#define MAX_TARGETS   HA_CLI_MAX_TARGETS
#define MAX_REDIRECTS HA_CLI_MAX_REDIRECTS

/* ---- commands ---- */

static int cmd_status(struct globals *g, int argc, char **argv)
{
	bool local = false;
	int rc = ha_cli_opts(g, argc, argv, "status", &local, NULL, false);
	if (rc != 0)
		return rc;
	Haagent__StatusResponse *s;
	struct ha_err e = {0};
	if ((rc = ha_cli_status(g, local, &s, &e)) != 0) {
		fprintf(stderr, "haadm: status: %s\n", e.msg);
		return rc;
	}
	if (g->json)
		ha_render_status_json(stdout, s);
	else
		ha_render_status_table(stdout, s);
	rc = (s->authoritative || local) ? 0 : HA_ENOLEADER;
	haagent__status_response__free_unpacked(s, NULL);
	return rc;
}

static int cmd_events(struct globals *g, int argc, char **argv)
{
	int rc = ha_cli_opts(g, argc, argv, "events", NULL, NULL, false);
	if (rc != 0)
		return rc;
	struct target t[MAX_TARGETS];
	unsigned n;
	struct ha_err e = {0};
	if ((rc = ha_cli_targets(g, t, &n, &e)) != 0) {
		fprintf(stderr, "haadm: events: %s\n", e.msg);
		return rc;
	}
	Haagent__EventsRequest req = HAAGENT__EVENTS_REQUEST__INIT;
	/* the history is replicated: the first agent that answers has it */
	for (unsigned i = 0; i < n; i++) {
		int type;
		uint8_t *buf;
		size_t len;
		if (ha_call(t[i].host, t[i].port, HA_MSG_EVENTS_REQUEST, &req, g->timeout_ms, &type,
		            &buf, &len, &e) != 0)
			continue;
		Haagent__EventsResponse *r = type == HA_MSG_EVENTS_RESPONSE
		                                 ? haagent__events_response__unpack(NULL, len, buf)
		                                 : NULL;
		free(buf);
		if (r == NULL) {
			ha_err_set(&e, HA_EPROTO, "%s:%u sent an unexpected reply", t[i].host,
			           t[i].port);
			continue;
		}
		ha_render_events(stdout, r, g->json);
		haagent__events_response__free_unpacked(r, NULL);
		return 0;
	}
	fprintf(stderr, "haadm: events: no agent answered: %s\n", e.msg);
	return HA_ECONNECT;
}

static int cmd_version(struct globals *g, int argc, char **argv)
{
	int rc = ha_cli_opts(g, argc, argv, "version", NULL, NULL, false);
	if (rc != 0)
		return rc;
	if (g->json)
		printf("{\"haadm\": \"%s\"}\n", HA_VERSION);
	else
		printf("haadm %s\n", HA_VERSION);
	return 0;
}

/* haadm node: maintenance (change.c), reclone (reclone.c), add or remove (members.c), by the first
 * argument that is not an option */
static int cmd_node(struct globals *g, int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (argv[i][0] != '-')
			return !strcmp(argv[i], "reclone")  ? ha_cmd_reclone(g, argc, argv)
			       : !strcmp(argv[i], "add")    ? ha_cmd_node_add(g, argc, argv)
			       : !strcmp(argv[i], "remove") ? ha_cmd_node_remove(g, argc, argv)
			                                    : ha_cmd_node(g, argc, argv);
	return ha_cmd_node(g, argc, argv);
}

static int cmd_help(struct globals *g, int argc, char **argv)
{
	(void)g;
	if (argc < 2) {
		ha_cli_print_usage(stdout);
		return 0;
	}
	char name[64]; /* "cert node": haadm help cert node */
	snprintf(name, sizeof(name), "%s%s%s", argv[1], argc > 2 ? " " : "",
	         argc > 2 ? argv[2] : "");
	if (ha_cli_command(name) == NULL) {
		fprintf(stderr, "haadm: unknown command '%s'; see 'haadm --help'\n", name);
		return HA_EUSAGE;
	}
	ha_cli_help(name);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(struct globals *g, int argc, char **argv);
} runs[] = {
    {"status", cmd_status},    {"events", cmd_events},      {"failover", ha_cmd_failover},
    {"node", cmd_node},        {"pause", ha_cmd_pause},     {"resume", ha_cmd_resume},
    {"backup", ha_cmd_backup}, {"restore", ha_cmd_restore}, {"binlog", ha_cmd_binlog},
    {"config", ha_cmd_config}, {"cert", ha_cmd_cert},       {"version", cmd_version},
    {"help", cmd_help},
};

static int (*find_run(const char *name))(struct globals *, int, char **)
{
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		if (!strcmp(runs[i].name, name))
			return runs[i].run;
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},  {"agent", required_argument, NULL, 'a'},
	    {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},       {"ca", required_argument, NULL, 1},
	    {"cert", required_argument, NULL, 2},      {"key", required_argument, NULL, 3},
	    {"insecure", no_argument, NULL, 4},        {NULL, 0, NULL, 0},
	};
	/* before any secret is read (the passwords, the repository key): no core dump */
	if (ha_secret_no_core() != 0)
		fprintf(stderr, "haadm: warning: cannot turn core dumps off: %s\n",
		        strerror(errno));
	const char *ca = NULL, *cert = NULL, *key = NULL;
	bool insecure = false;
	struct globals g = {.timeout_ms = 2000};
	int o;
	/* '+': stop at the command name; its own options follow it. */
	while ((o = getopt_long(argc, argv, "+c:a:t:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			g.conf = optarg;
			break;
		case 'a':
			g.addr = optarg;
			break;
		case 't': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 10 || v > 600000) {
				fprintf(stderr,
				        "haadm: -t %s: expected milliseconds, 10 to 600000\n",
				        optarg);
				return ha_exit_code(HA_EUSAGE);
			}
			g.timeout_ms = (unsigned)v;
			break;
		}
		case 1:
			ca = optarg;
			break;
		case 2:
			cert = optarg;
			break;
		case 3:
			key = optarg;
			break;
		case 4:
			insecure = true;
			break;
		case 'h':
			ha_cli_print_usage(stdout);
			return 0;
		case 'V':
			printf("haadm %s\n", HA_VERSION);
			return 0;
		default:
			ha_cli_print_usage(stderr);
			return ha_exit_code(HA_EUSAGE);
		}
	}
	if (optind == argc) {
		ha_cli_print_usage(stderr);
		return ha_exit_code(HA_EUSAGE);
	}
	ha_call_tls_options(ha_cli_conf_path(&g), ca, cert, key, insecure);
	int (*run)(struct globals *, int, char **) = find_run(argv[optind]);
	if (run == NULL) {
		fprintf(stderr, "haadm: unknown command '%s'; see 'haadm --help'\n", argv[optind]);
		return ha_exit_code(HA_EUSAGE);
	}
	return ha_exit_code(run(&g, argc - optind, argv + optind));
}
