/* Shared by haadm's command files: global options, finding agents, fetching the status. */
#ifndef HA_CLI_HAADM_H
#define HA_CLI_HAADM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/err.h"
#include "../config.h"
#include "haagent.pb-c.h"

#define HA_CLI_MAX_TARGETS   HA_MAX_NODES
#define HA_CLI_MAX_REDIRECTS 3

struct globals {
	const char *conf;
	const char *addr;
	unsigned timeout_ms;
	bool json;
	const char *repository; /* verify, restore: read this repository only (NULL: all) */
};

struct target {
	char host[64];
	unsigned port;
};

#define HA_CLI_DEFAULT_CONF "/etc/haagent/haagent.conf"

/* leader.c: the configuration to read: -c FILE, else $HAAGENT_CONF, else HA_CLI_DEFAULT_CONF. */
const char *ha_cli_conf_path(const struct globals *g);

/* The agents to ask, this node's own first (from -a, or from the config). */
int ha_cli_targets(const struct globals *g, struct target *t, unsigned *n, struct ha_err *e);

/* The status from the leader (redirects followed), or the first local view when no leader
 * answers. */
int ha_cli_status(const struct globals *g, bool local_only, Haagent__StatusResponse **out,
                  struct ha_err *e);

/* The options every simple command takes: --json, --help, and --local or --reason TEXT where
 * the caller gives somewhere to put them. With positional, arguments are left in
 * argv[optind..]; without, any is an error. Returns 0 or HA_EUSAGE (message printed). */
int ha_cli_opts(struct globals *g, int argc, char **argv, const char *cmd, bool *local,
                const char **reason, bool positional);

/* usage.c: an argument that names a node is a name (ha_name_valid): 0, or HA_EUSAGE with the
 * reason printed ("haadm CMD: '..' is not a node name (...)"). */
int ha_cli_check_name(const char *cmd, const char *s);
/* usage.c: a backup id, a whole number from 1 and nothing else: 0 with *out, or HA_EUSAGE with
 * the reason printed. */
int ha_cli_parse_id(const char *cmd, const char *s, uint64_t *out);

/* usage.c: the commands as the operator reads them */
struct ha_cli_command {
	const char *name;
	const char *summary;
	const char *usage;
	const char *help;
};
extern const struct ha_cli_command ha_cli_commands[];
extern const size_t ha_cli_n_commands;
/* The command, or the subcommand "COMMAND SUB" (such as "cert node"), named; NULL if none. */
const struct ha_cli_command *ha_cli_command(const char *name);
/* haadm's own usage, with every command's summary */
void ha_cli_print_usage(FILE *f);
/* Prints `usage: haadm USAGE` and the help of a command or subcommand (for --help), then the
 * command's subcommands. */
void ha_cli_help(const char *command);

/* leader.c: one AdminRequest to the leader (redirects followed, retried while busy) */
int ha_cli_admin(const struct globals *g, const Haagent__AdminRequest *req,
                 Haagent__AdminResponse **out, struct ha_err *e);

/* leader.c: waits until the change req asked for is committed and visible in the leader's
 * status (false after a few seconds) */
bool ha_cli_wait_visible(const struct globals *g, const Haagent__AdminRequest *req);

/* leader.c: maintenance on or off, waited for until the leader's status shows it; msg: the
 * answer or why not */
int ha_cli_maintenance(const struct globals *g, const char *node, bool on, char *msg, size_t size);

/* backup.c */
int ha_cmd_backup(struct globals *g, int argc, char **argv);
/* restore.c */
int ha_cmd_restore(struct globals *g, int argc, char **argv);

/* change.c: commands that change the cluster */
int ha_cmd_failover(struct globals *g, int argc, char **argv);
int ha_cmd_node(struct globals *g, int argc, char **argv);
int ha_cmd_pause(struct globals *g, int argc, char **argv);
int ha_cmd_resume(struct globals *g, int argc, char **argv);
/* reclone.c: haadm node reclone */
int ha_cmd_reclone(struct globals *g, int argc, char **argv);
/* check.c */
int ha_cmd_config(struct globals *g, int argc, char **argv);
/* cert.c */
int ha_cmd_cert(struct globals *g, int argc, char **argv);

/* members.c: haadm node add / node remove (docs/membership.md) */
int ha_cmd_node_add(struct globals *g, int argc, char **argv);
int ha_cmd_node_remove(struct globals *g, int argc, char **argv);

#endif
