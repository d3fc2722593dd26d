/* haadm: the operator's command-line tool. Commands are declared once in the table below; the
 * usage text, `haadm help CMD` and docs/cli.md follow it. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/frame.h"
#include "../config.h"
#include "call.h"
#include "haadm.h"
#include "haagent.pb-c.h"
#include "render.h"

#ifndef HA_VERSION
#define HA_VERSION "0.1.0"
#endif

#define MAX_TARGETS   HA_CLI_MAX_TARGETS
#define MAX_REDIRECTS HA_CLI_MAX_REDIRECTS

struct command {
	const char *name;
	const char *summary;
	const char *usage;
	const char *help;
	int (*run)(struct globals *g, int argc, char **argv);
};

static const struct command *find_command(const char *name);
static void print_usage(FILE *f);

/* ---- talking to the cluster ---- */

const char *ha_cli_conf_path(const struct globals *g)
{
	const char *path = g->conf ? g->conf : getenv("HAAGENT_CONF");
	return path ? path : HA_CLI_DEFAULT_CONF;
}

int ha_cli_targets(const struct globals *g, struct target *t, unsigned *n, struct ha_err *e)
{
	*n = 0;
	if (g->addr) {
		if (ha_split_hostport(g->addr, t[0].host, sizeof(t[0].host), &t[0].port) != 0)
			return ha_err_set(e, HA_EUSAGE, "-a %s: expected HOST:PORT", g->addr);
		*n = 1;
		return 0;
	}
	const char *path = ha_cli_conf_path(g);
	struct ha_config *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	int rc = ha_config_load(path, 0, c, e);
	if (rc != 0) {
		free(c);
		if (!g->conf && !getenv("HAAGENT_CONF") && access(path, F_OK) != 0)
			return ha_err_set(e, HA_EUSAGE,
			                  "no agent to ask: give -a HOST:PORT or -c FILE "
			                  "(%s does not exist)",
			                  HA_CLI_DEFAULT_CONF);
		return rc;
	}
	/* Ask this node's own agent first when the config names one. */
	if (c->self >= 0) {
		snprintf(t[*n].host, sizeof(t[*n].host), "%s", c->nodes[c->self].address);
		t[(*n)++].port = c->nodes[c->self].rpc_port;
	}
	for (unsigned i = 0; i < c->n_nodes; i++) {
		if ((int)i == c->self)
			continue;
		snprintf(t[*n].host, sizeof(t[*n].host), "%s", c->nodes[i].address);
		t[(*n)++].port = c->nodes[i].rpc_port;
	}
	free(c);
	return 0;
}

/* Fetches the status from the leader: asks the targets in turn, follows redirects. Falls back
 * to the first local view it got when no leader answers. */
int ha_cli_status(const struct globals *g, bool local_only, Haagent__StatusResponse **out,
                  struct ha_err *e)
{
	struct target t[MAX_TARGETS];
	unsigned n;
	int rc = ha_cli_targets(g, t, &n, e);
	if (rc != 0)
		return rc;
	Haagent__StatusRequest req = HAAGENT__STATUS_REQUEST__INIT;
	req.local_only = local_only;
	Haagent__StatusResponse *fallback = NULL;
	struct ha_err last = {0};
	for (unsigned i = 0; i < n; i++) {
		char host[64];
		unsigned port = t[i].port;
		snprintf(host, sizeof(host), "%s", t[i].host);
		for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
			int type;
			uint8_t *buf;
			size_t len;
			rc = ha_call(host, port, HA_MSG_STATUS_REQUEST, &req, g->timeout_ms, &type,
			             &buf, &len, &last);
			if (rc != 0)
				break;
			if (type != HA_MSG_STATUS_RESPONSE) {
				free(buf);
				ha_err_set(&last, HA_EPROTO, "%s:%u answered with message type %d",
				           host, port, type);
				break;
			}
			Haagent__StatusResponse *s =
			    haagent__status_response__unpack(NULL, len, buf);
			free(buf);
			if (s == NULL) {
				ha_err_set(&last, HA_EPROTO,
				           "%s:%u sent a reply that does not decode", host, port);
				break;
			}
			if (s->redirect && s->redirect[0]) {
				if (ha_split_hostport(s->redirect, host, sizeof(host), &port) !=
				    0) {
					haagent__status_response__free_unpacked(s, NULL);
					break;
				}
				haagent__status_response__free_unpacked(s, NULL);
				continue;
			}
			if (s->authoritative || local_only) {
				if (fallback)
					haagent__status_response__free_unpacked(fallback, NULL);
				*out = s;
				return 0;
			}
			if (fallback == NULL)
				fallback = s;
			else
				haagent__status_response__free_unpacked(s, NULL);
			break;
		}
	}
	if (fallback) {
		*out = fallback;
		return 0;
	}
	*e = last;
	ha_err_wrap(e, "no agent answered (tried %u)", n);
	return HA_ECONNECT;
}

/* ---- commands ---- */

int ha_cli_opts(struct globals *g, int argc, char **argv, const char *cmd, bool *local,
                const char **reason, bool positional)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"local", no_argument, NULL, 'l'},
	    {"reason", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int o;
	optind = 0; /* 0, not 1: glibc then re-reads the ordering from optstring */
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			g->json = true;
			break;
		case 'l':
			if (local == NULL)
				goto bad;
			*local = true;
			break;
		case 'r':
			if (reason == NULL)
				goto bad;
			*reason = optarg;
			break;
		case 'h':
			ha_cli_help(cmd);
			exit(0);
		default:
			goto bad;
		}
	}
	if (positional || optind == argc)
		return 0;
bad:
	fprintf(stderr, "haadm %s: bad arguments; see 'haadm help %s'\n", cmd, cmd);
	return HA_EUSAGE;
}

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

static int cmd_help(struct globals *g, int argc, char **argv)
{
	(void)g;
	if (argc < 2) {
		print_usage(stdout);
		return 0;
	}
	if (find_command(argv[1]) == NULL) {
		fprintf(stderr, "haadm: unknown command '%s'; see 'haadm --help'\n", argv[1]);
		return HA_EUSAGE;
	}
	ha_cli_help(argv[1]);
	return 0;
}

void ha_cli_help(const char *name)
{
	const struct command *c = find_command(name);
	if (c)
		printf("usage: haadm %s\n\n%s\n", c->usage, c->help);
}

static const struct command commands[] = {
    {"status", "show the cluster: leader, primary, epoch and every node's health",
     "status [--json] [--local]",
     "Asks an agent for the cluster status; a non-leader redirects to the raft leader, which\n"
     "combines every node's latest health report. Without a leader, the first agent that\n"
     "answers shows its own local view (marked not authoritative).\n"
     "\n"
     "  --json    stable JSON for scripts (docs/json.md)\n"
     "  --local   the answering agent's own view; no redirect to the leader\n"
     "\n"
     "Exit status: 0 authoritative answer (or --local), 6 no leader (local view printed),\n"
     "4 no agent reachable.",
     cmd_status},
    {"events", "the cluster's decisions: failovers, fencing, promotions, divergence",
     "events [--json]",
     "Prints the replicated event history (the last 64 decisions), oldest first: every\n"
     "failover step (failover-begin, old-primary-fenced, candidate-chosen, failover-done),\n"
     "held decisions (failover-held-disabled/-tilt/-cooldown) and divergence\n"
     "(node-diverged, node-converged). Any agent answers from its replicated copy.\n"
     "\n"
     "  --json    stable JSON for scripts (docs/json.md)",
     cmd_events},
    {"failover", "planned switchover: move the primary role to another node, losing nothing",
     "failover [--to NODE] [--dry-run] [--timeout MS] [--grace MS] [--kill-now] [--no-wait] "
     "[--json] | failover --abort | failover --accept-loss",
     "Moves the primary role from the current primary to NODE (default: the best healthy\n"
     "replica, as automatic failover would choose). The coordinator checks first and refuses\n"
     "with the reason when the primary is not healthy, the target is unreachable, down, lagging,\n"
     "diverged, in maintenance or has no_promote, a failover is running, or there is no quorum.\n"
     "\n"
     "Steps, each committed through raft and shown as it completes:\n"
     "  1. the old primary turns read_only; transactions already open may still commit during\n"
     "     the grace, then every client session is killed and its final GTID position read;\n"
     "  2. the target applies everything up to that position (nothing acknowledged is lost);\n"
     "  3. the target becomes the primary at a new epoch and turns writable;\n"
     "  4. the old primary and the other replicas replicate from it.\n"
     "If step 1 or 2 does not finish within the timeout, it rolls back: the old primary is made\n"
     "writable again and the reason is printed. A coordinator that dies midway is replaced and\n"
     "the next one carries on from the recorded step.\n"
     "\n"
     "  --to NODE      the node to promote\n"
     "  --dry-run      check and print the plan; change nothing\n"
     "  --timeout MS   budget for steps 1 and 2 ([switchover] timeout_ms, default 10000)\n"
     "  --grace MS     how long open transactions may still commit ([switchover] grace_ms,\n"
     "                 default 2000)\n"
     "  --kill-now     no grace: kill client sessions at once\n"
     "  --no-wait      return once the switchover has started; follow it with 'haadm status'\n"
     "  --json         one JSON object with the result (docs/json.md)\n"
     "\n"
     "Acting on the failover or switchover in progress (haadm status shows what it waits for):\n"
     "  --abort        end it before a node is promoted: the old primary keeps the role (for an\n"
     "                 automatic failover of a primary that is really down, 'haadm pause' first)\n"
     "  --accept-loss  the new primary stops applying its relay log and takes writes now; what\n"
     "                 it had received but not applied is given up, and the failover record\n"
     "                 lists exactly those transactions ([failover] max_apply_wait_ms does this\n"
     "                 automatically after a time; by default nothing is ever given up)\n"
     "\n"
     "Exit status: 0 done (or dry run possible), 14 refused or rolled back, 11 no outcome\n"
     "within the timeout (see haadm status), 4 no agent reachable, 6 no leader.",
     ha_cmd_failover},
    {"node",
     "node maintenance NODE on|off; node reclone NODE: maintenance, re-cloning from a backup",
     "node maintenance NODE on|off [--json]\n"
     "       haadm node reclone NODE [--backup ID] [--timeout SEC] [--json]",
     "maintenance on: NODE is never promoted, its own outage triggers nothing, and its agent\n"
     "leaves its replication as you set it (it still keeps it read-only). Use it to restart or\n"
     "upgrade a replica. The primary cannot go into maintenance: move the role first with\n"
     "'haadm failover'. Maintenance off: the agent repoints the node to the primary if needed.\n"
     "The flag is replicated (survives restarts) and shown by 'haadm status'.\n"
     "\n"
     "reclone: replaces NODE's datadir with a restored backup and brings it back as a replica\n"
     "(a diverged old primary, a lost disk). Run it on NODE's host, as root, with NODE's\n"
     "configuration. It checks first (NODE is not the primary; the backup, by default the\n"
     "newest finished one, has a whole chain and holds every transaction NODE's server id\n"
     "wrote in the primary's binary log), puts NODE in maintenance, restores the chain beside\n"
     "the datadir while the server still runs, stops it ([agent] db_stop_command), keeps the\n"
     "old datadir as DATADIR.haagent-old-TIME, starts it ([agent] db_start_command), resets\n"
     "its replication and binary log, ends maintenance and waits --timeout (300 s) until it\n"
     "replicates. Needs free space for a second datadir. Exit 14 when refused before\n"
     "anything changed.",
     ha_cmd_node},
    {"pause", "pause automatic failover cluster-wide", "pause [--reason TEXT] [--json]",
     "Automatic failover stops acting: failures are still detected and reported (events\n"
     "failover-held-paused), not acted on. Planned switchovers ('haadm failover') still work.\n"
     "Replicated; shown by 'haadm status' until 'haadm resume'.\n"
     "\n"
     "  --reason TEXT  recorded with the pause and shown by status",
     ha_cmd_pause},
    {"resume", "resume automatic failover", "resume [--json]",
     "Ends 'haadm pause': automatic failover acts again.", ha_cmd_resume},
    {"backup", "backups: run, list, show, verify (docs/backup.md)",
     "backup run [--type full|differential|incremental] [--node NODE] [--wait] | backup list | "
     "backup show ID | backup verify ID [--drill] | backup policy [--full CRON] "
     "[--differential CRON] [--incremental CRON] [--keep-full N] [--keep-days N]   [--json]",
     "run      asks the coordinator for a backup now: it picks the least-loaded healthy\n"
     "         replica (or NODE), records the job in the replicated catalog, and that node's\n"
     "         agent streams mariadb-backup through compression, encryption and hashing into\n"
     "         the repository. differential = against the last full backup; incremental =\n"
     "         against the last backup of any type. --wait follows it to the end.\n"
     "list     the catalog (any agent answers); show ID: one backup.\n"
     "verify   checks every chunk's SHA-256 and decryption, here, from the repository\n"
     "         ([backup] repository and key_file of the config); --drill also restores the\n"
     "         chain into a scratch directory, prepares it, starts a throwaway mariadbd on it\n"
     "         (no network) and runs CHECK TABLE on every table. The result goes into the\n"
     "         catalog.\n"
     "policy   shows, or with options sets (cluster-wide, replicated), the schedules (cron,\n"
     "         5 fields, UTC; \"\" turns one off) and retention (the newest N full backups\n"
     "         and/or those younger than N days, each with everything based on it).\n"
     "\n"
     "Exit status: 0 ok, 14 refused (the reason is printed), 10 the backup failed, 5 verify\n"
     "found damage.",
     ha_cmd_backup},
    {"restore", "restore a backup (and its chain) into a directory, ready to start",
     "restore ID --target-dir DIR [--json]",
     "Fetches the full backup and the differential/incremental backups ID builds on, checks\n"
     "every chunk (SHA-256, authenticated decryption), extracts them with mbstream and\n"
     "prepares them in order with mariadb-backup --prepare: DIR is then a datadir a mariadbd\n"
     "can start on. DIR must not exist or be empty. Refuses on a broken chain, a wrong key or\n"
     "a damaged chunk, naming it. To re-clone a node: docs/runbook.md.",
     ha_cmd_restore},
    {"config", "config check: validate a configuration and the databases it points at",
     "config check [-c FILE] [--json]",
     "Validates FILE (default: -c before the command, $HAAGENT_CONF, then\n"
     "/etc/haagent/haagent.conf) without starting anything: syntax, keys, bounds, addresses,\n"
     "ports, credentials files and their permissions. With an [agent] section it then connects\n"
     "to this node's database with those credentials and lists what is missing: privileges the\n"
     "agent uses (with the GRANT to run), the replication user, log_bin, log_slave_updates,\n"
     "gtid_strict_mode; and whether every other node's database answers.\n"
     "\n"
     "Exit status: 0 all checks pass (warnings allowed), 3 the file is invalid, 10 a database\n"
     "check failed.",
     ha_cmd_config},
    {"version", "print haadm's version", "version [--json]", "Prints the version.", cmd_version},
    {"help", "describe a command", "help [COMMAND]", "Describes COMMAND, or lists commands.",
     cmd_help},
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void print_usage(FILE *f)
{
	fprintf(f,
	        "usage: haadm [-c FILE | -a HOST:PORT] [-t MS] COMMAND [ARGS] [--json]\n\n"
	        "Operate a haagent cluster.\n\n"
	        "  -c, --config FILE     cluster config (default $HAAGENT_CONF, then %s)\n"
	        "  -a, --agent HOST:PORT ask this agent's RPC address\n"
	        "  -t, --timeout MS      per-request timeout (default 2000)\n"
	        "  -h, --help            this help\n\n"
	        "commands:\n",
	        HA_CLI_DEFAULT_CONF);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'haadm help COMMAND' describes one. Exit codes: docs/cli.md.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},  {"agent", required_argument, NULL, 'a'},
	    {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0},
	};
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
		case 'h':
			print_usage(stdout);
			return 0;
		case 'V':
			printf("haadm %s\n", HA_VERSION);
			return 0;
		default:
			print_usage(stderr);
			return ha_exit_code(HA_EUSAGE);
		}
	}
	if (optind == argc) {
		print_usage(stderr);
		return ha_exit_code(HA_EUSAGE);
	}
	const struct command *c = find_command(argv[optind]);
	if (c == NULL) {
		fprintf(stderr, "haadm: unknown command '%s'; see 'haadm --help'\n", argv[optind]);
		return ha_exit_code(HA_EUSAGE);
	}
	return ha_exit_code(c->run(&g, argc - optind, argv + optind));
}
