/* haagentd: the haagent daemon, one per database node. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "backup/repos.h"
#include "agent.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/secret.h"
#include "config.h"

#ifndef HA_VERSION
#define HA_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: haagentd -c FILE [--check]\n"
	           "\n"
	           "The haagent daemon: joins the agents' raft group, probes the local MariaDB\n"
	           "server and reports its health to the coordinator (the raft leader).\n"
	           "\n"
	           "  -c, --config FILE   configuration file (see docs/config.md)\n"
	           "      --check         validate the configuration and exit\n"
	           "      --help-config   list every configuration key with its default\n"
	           "  -h, --help          this help\n"
	           "  -V, --version       print the version\n"
	           "\n"
	           "Stops cleanly on SIGTERM or SIGINT. Logs to stderr.\n");
}

/* The command line: *path and *check set, -1 to go on; or the exit code of --help, --version,
 * --help-config or a bad line. */
static int parse_args(int argc, char **argv, const char **path, int *check)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
	    {"help-config", no_argument, NULL, 'r'},  {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			*path = optarg;
			break;
		case 'k':
			*check = 1;
			break;
		case 'r':
			ha_config_print_reference();
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("haagentd %s\n", HA_VERSION);
			return 0;
		default:
			usage(stderr);
			return ha_exit_code(HA_EUSAGE);
		}
	}
	if (*path == NULL || optind != argc) {
		usage(stderr);
		return ha_exit_code(HA_EUSAGE);
	}
	return -1;
}

/* --check: every repository opens (its keys; an S3 one's credentials load). Live checks are
 * haadm config check's. */
static int check_repos(const struct ha_config *cfg, struct ha_err *e)
{
	struct ha_repos *rs = calloc(1, sizeof(*rs));
	if (rs == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	int rc = ha_repos_open(rs, cfg, e);
	if (rc == 0)
		ha_repos_close(rs);
	free(rs);
	return rc;
}

/* A SIGHUP before the agent's own handler is in place (systemctl reload, a rotation script, right
 * after the start): held, and raised again once the agent handles it. Its default action would
 * end the agent, and systemd takes an exit by SIGHUP as clean: no restart. */
static volatile sig_atomic_t early_hup;

static void on_early_hup(int signum)
{
	(void)signum;
	early_hup = 1;
}

int main(int argc, char **argv)
{
	struct sigaction hup = {.sa_handler = on_early_hup, .sa_flags = SA_RESTART};
	sigemptyset(&hup.sa_mask);
	sigaction(SIGHUP, &hup, NULL);
	/* before any secret is read: no core dump holds a password or the repository key */
	bool no_core = ha_secret_no_core() == 0;
	int no_core_errno = errno;
	const char *path = NULL;
	int check = 0;
	int done = parse_args(argc, argv, &path, &check);
	if (done >= 0)
		return done;

	struct ha_config *cfg = calloc(1, sizeof(*cfg));
	struct ha_err e = {0};
	if (cfg == NULL)
		return ha_exit_code(HA_ENOMEM);
	if (ha_config_load(path, HA_CONFIG_AGENT, cfg, &e) != 0) {
		fprintf(stderr, "haagentd: %s\n", e.msg);
		free(cfg);
		return ha_exit_code(HA_ECONFIG);
	}
	if (check && !cfg->tls_insecure) {
		/* the certificate, key and CA load, match, and name this node */
		SSL_CTX *ctx = NULL;
		const struct ha_node_conf *self = &cfg->nodes[cfg->self];
		if (ha_tls_ctx_new(cfg->tls_ca, cfg->tls_cert, cfg->tls_key, true, &ctx, &e) != 0 ||
		    ha_tls_ctx_is_node(ctx, self->name, self->id, &e) != 0) {
			fprintf(stderr, "haagentd: %s: [tls] %s\n", path, e.msg);
			SSL_CTX_free(ctx);
			ha_config_wipe(cfg);
			free(cfg);
			return ha_exit_code(HA_ECONFIG);
		}
		SSL_CTX_free(ctx);
	}
	if (check && cfg->n_repos && check_repos(cfg, &e) != 0) {
		fprintf(stderr, "haagentd: %s\n", e.msg);
		ha_config_wipe(cfg);
		free(cfg);
		return ha_exit_code(HA_ECONFIG);
	}
	if (check) {
		printf("%s: ok (node %s, %u nodes%s)\n", path, cfg->node, cfg->n_nodes,
		       cfg->tls_insecure ? ", TLS OFF: insecure = yes" : ", TLS certificate ok");
		ha_config_wipe(cfg);
		free(cfg);
		return 0;
	}
	ha_log_set_level((enum ha_log_level)ha_log_parse_level(cfg->log_level));
	ha_log_set_prefix(cfg->node);
	if (!no_core)
		ha_warn("core-dumps-on",
		        "error=\"%s\" why=\"cannot turn core dumps off: a dump "
		        "of this process may hold its passwords\"",
		        strerror(no_core_errno));
	/* Raft peers write to sockets whose other end may have died. */
	signal(SIGPIPE, SIG_IGN);

	uv_loop_t loop;
	uv_loop_init(&loop);
	struct ha_agent *agent;
	if (ha_agent_start(&loop, cfg, &agent, &e) != 0) {
		fprintf(stderr, "haagentd: %s\n", e.msg);
		ha_error("start-failed", "error=\"%s\"", e.msg);
		ha_config_wipe(cfg);
		free(cfg);
		return ha_exit_code(e.code ? e.code : HA_EINTERNAL);
	}
	ha_config_wipe(cfg); /* the agent keeps its own copies, wiped when it stops */
	if (early_hup)
		raise(SIGHUP); /* the agent's handler now: a reload */
	uv_run(&loop, UV_RUN_DEFAULT);
	ha_agent_free(agent);
	int rc = uv_loop_close(&loop);
	ha_info("stopped", "loop_close=%d", rc);
	free(cfg);
	return 0;
}
