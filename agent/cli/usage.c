/* haadm's commands as the operator reads them: the table of names, summaries, usages and
 * help texts (docs/cli.md follows it), `haadm help`, and the options every simple command
 * takes. Below every command file; haadm.c maps the names to the code that runs them. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "haadm.h"

const struct ha_cli_command ha_cli_commands[] = {
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
     "4 no agent reachable."},
    {"events", "the cluster's decisions: failovers, fencing, promotions, divergence",
     "events [--json]",
     "Prints the replicated event history (the last 64 decisions), oldest first: every\n"
     "failover step (failover-begin, old-primary-fenced, candidate-chosen, failover-done),\n"
     "held decisions (failover-held-disabled/-tilt/-cooldown) and divergence\n"
     "(node-diverged, node-converged). Any agent answers from its replicated copy.\n"
     "\n"
     "  --json    stable JSON for scripts (docs/json.md)"},
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
     "within the timeout (see haadm status), 4 no agent reachable, 6 no leader."},
    {"node", "node maintenance NODE on|off; node reclone NODE; node add NAME; node remove NAME",
     "node maintenance NODE on|off [--json]\n"
     "       haadm node reclone NODE [--backup ID] [--timeout SEC] [--json]\n"
     "       haadm node add NAME --address IP --id N [--raft-port P] [--rpc-port P]\n"
     "                 [--db-port P] [--priority N] [--no-promote] [--timeout SEC] [--json]\n"
     "       haadm node remove NAME [--json]",
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
     "anything changed.\n"
     "\n"
     "add: NAME joins the running cluster. Start its agent first, with [cluster] join = yes\n"
     "and [node] sections for itself and at least one existing node (seeds). The leader\n"
     "records it as joining, raft sends it the log as a non-voter, its agent builds its\n"
     "empty database from the newest backup and the binlog archive (haadm node reclone) and\n"
     "it replicates; then raft makes it a voter. Ports default to 7100, 7200 and 3306. Prints\n"
     "each stage; exit 0 joined, 14 refused or undone by the leader (its agent silent for\n"
     "[cluster] join_silent_ms, or longer than join_timeout_ms: the membership is as before),\n"
     "11 not joined within --timeout (3600 s; the join goes on). One node joins at a time.\n"
     "\n"
     "remove: NAME leaves the cluster (raft and the replicated state); the other nodes'\n"
     "configuration files need no edit. Refused for the primary (switch over first) and when\n"
     "the voters left would not have a majority reporting. Then stop NAME's agent and server.\n"
     "Replace a dead node: node add the new one, then node remove the dead one\n"
     "(docs/runbook.md)."},
    {"pause", "pause automatic failover cluster-wide", "pause [--reason TEXT] [--json]",
     "Automatic failover stops acting: failures are still detected and reported (events\n"
     "failover-held-paused), not acted on. Planned switchovers ('haadm failover') still work.\n"
     "Replicated; shown by 'haadm status' until 'haadm resume'.\n"
     "\n"
     "  --reason TEXT  recorded with the pause and shown by status"},
    {"resume", "resume automatic failover", "resume [--json]",
     "Ends 'haadm pause': automatic failover acts again."},
    {"backup", "backups: run, list, show, verify (docs/backup.md)",
     "backup run [--type full|differential|incremental] [--node NODE] [--wait] | backup list | "
     "backup show ID | backup verify ID [--drill] [--repository NAME] | backup policy [--full "
     "CRON] "
     "[--differential CRON] [--incremental CRON] [--keep-full N] [--keep-days N]   [--json]",
     "run      asks the coordinator for a backup now: it picks the least-loaded healthy\n"
     "         replica (or NODE), records the job in the replicated catalog, and that node's\n"
     "         agent streams mariadb-backup through compression, encryption and hashing into\n"
     "         the repository. differential = against the last full backup; incremental =\n"
     "         against the last backup of any type. --wait follows it to the end.\n"
     "list     the catalog (any agent answers); show ID: one backup.\n"
     "verify   checks every chunk's SHA-256 and decryption, here, from the repositories\n"
     "         of the config (a damaged chunk is taken from the next repository, and said;\n"
     "         --repository NAME: that one alone, no fallback); --drill also restores the\n"
     "         chain into a scratch directory, prepares it, starts a throwaway mariadbd on it\n"
     "         (no network) and runs CHECK TABLE on every table. The result goes into the\n"
     "         catalog.\n"
     "policy   shows, or with options sets (cluster-wide, replicated), the schedules (cron,\n"
     "         5 fields, UTC; \"\" turns one off) and retention (the newest N full backups\n"
     "         and/or those younger than N days, each with everything based on it).\n"
     "\n"
     "Exit status: 0 ok, 14 refused (the reason is printed), 10 the backup failed, 5 verify\n"
     "found damage."},
    {"restore", "restore a backup (and its chain) into a directory, or to a point in time",
     "restore ID --target-dir DIR [--repository NAME] [--json] | restore [ID] --to-time "
     "'YYYY-MM-DD HH:MM:SS' | --to-gtid G | --before-gtid G --target-dir DIR [--json]",
     "Fetches the full backup and the differential/incremental backups ID builds on, checks\n"
     "every chunk (SHA-256, authenticated decryption), extracts them with mbstream and\n"
     "prepares them in order with mariadb-backup --prepare: DIR is then a datadir a mariadbd\n"
     "can start on. DIR must not exist or be empty. Refuses on a broken chain, a wrong key or\n"
     "a damaged chunk, naming it. To re-clone a node: docs/runbook.md. With several\n"
     "repositories, the first intact copy of each manifest and chunk is read;\n"
     "--repository NAME reads that one alone.\n"
     "\n"
     "Point-in-time recovery, from the binlog archive (docs/backup.md):\n"
     "  --to-time T       every transaction that began before T (UTC unless a zone such as\n"
     "                    +02:00 follows; the binary log's order: it stops at the first\n"
     "                    transaction at or after T)\n"
     "  --to-gtid G       up to and including transaction G\n"
     "  --before-gtid G   up to and excluding G (haadm binlog find prints it)\n"
     "The newest finished backup before the point (or ID) is restored beside DIR, a\n"
     "throwaway mariadbd (no network) replays the archived transactions after it through\n"
     "mariadb-binlog | mariadb, across failovers (transactions a failover left behind on an\n"
     "old primary are never replayed), then stops cleanly with no replication configured and\n"
     "gtid_slave_pos at the position reached, and DIR appears. DIR must not exist. A gap in\n"
     "the archive between the backup and the point is refused."},
    {"binlog", "the binlog archive: list its slices, find a statement",
     "binlog list [--all | --limit N] [--json] | binlog verify [--json] | binlog find TEXT "
     "[--since T] [--until T] [--limit N] [--json]",
     "list   the archive's head and lag, then its newest slices (20; --all: every one), each\n"
     "       with the server it came from, its first and last GTID and time, and any gap or\n"
     "       errant transactions noted at it.\n"
     "verify reads every slice from the head back: each chunk's hash and decryption, every\n"
     "       event, its transactions against its manifest (count, first, last, end) and in\n"
     "       order, and each slice's link to the next (the same position, or a recorded fork\n"
     "       or gap). Exit 5 on damage, naming the slice.\n"
     "find   archived statements containing TEXT (case, backquotes and spacing ignored;\n"
     "       statements of DDL and of statement-based writes, and the statement behind row\n"
     "       events), oldest first, each with its GTID, time and server, and the restore that\n"
     "       stops just before it. --since/--until bound the time (UTC). The newest 100\n"
     "       matches unless --limit says otherwise.\n"
     "Reads the repository ([backup] repository and key_file of the config)."},
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
     "check failed."},
    {"cert", "the cluster's certificates: CA, nodes, operators (docs/security.md)",
     "cert ca|node|operator|cluster|show ... [--json]   ('haadm cert SUB --help')",
     "Makes the certificates of mutual TLS on every port (raft, RPC, HTTP) and shows them.\n"
     "One CA per cluster signs a certificate per node and per operator; who a peer is comes\n"
     "from its certificate's subjectAltName URI. Keys are EC P-256, written 0600 (never\n"
     "readable by others, not even for an instant), certificates 0644; an existing file is\n"
     "never replaced without --force. DIR is created 0700 when it does not exist. --json\n"
     "lists what was written: paths, subject, identity, serial, validity, SHA-256.\n"
     "\n"
     "Exit status: 0 done, 2 bad command line, 3 bad configuration, 7 a file could not be\n"
     "read or written, 12 a file that is not what it should be (not PEM, a CA key matching\n"
     "no certificate of the CA file), 14 a file exists or does not match (for show: no\n"
     "identity, expired or not yet valid)."},
    {"version", "print haadm's version", "version [--json]", "Prints the version."},
    {"help", "describe a command", "help [COMMAND]", "Describes COMMAND, or lists commands."},
};

const size_t ha_cli_n_commands = sizeof(ha_cli_commands) / sizeof(ha_cli_commands[0]);

/* Subcommands with their own --help, named "COMMAND SUB"; 'haadm help COMMAND' lists them. */
static const struct ha_cli_command subcommands[] = {
    {"cert ca", "the cluster's CA: DIR/ca.crt and DIR/ca.key",
     "cert ca --dir DIR [--days 3650] [--backdate DAYS] [--cluster NAME] [--force] [--json]",
     "An EC P-256 key and a self-signed CA certificate (CN \"haagent CA NAME\", basicConstraints\n"
     "CA:TRUE pathlen:0 and keyUsage keyCertSign, cRLSign, both critical). Keep ca.key off the\n"
     "nodes: it is needed only to issue certificates.\n"
     "\n"
     "  --dir DIR         where the files go\n"
     "  --days N          valid N days from its start (default 3650)\n"
     "  --backdate DAYS   starts DAYS days ago (default: 1 hour ago, for clock skew)\n"
     "  --cluster NAME    the cluster's name in the subject (default haagent)\n"
     "  --force           replace DIR/ca.crt and DIR/ca.key (every certificate signed by\n"
     "                    the old CA stops verifying: see the rotation in docs/security.md)\n"
     "  --json            what was written, as JSON"},
    {"cert node", "a node's certificate: DIR/NAME.crt and DIR/NAME.key",
     "cert node NAME --id RAFTID --address IPV4 --dir DIR [--days 825] [--backdate DAYS]\n"
     "       [--ca-cert FILE --ca-key FILE] [--force] [--json]",
     "A key and a certificate for the agent of node NAME, signed by DIR/ca.crt and DIR/ca.key\n"
     "(or --ca-cert and --ca-key; a CA file holding several CAs is searched for the one that\n"
     "matches the key). It carries the identity URI urn:haagent:node:NAME:RAFTID and\n"
     "DNS:NAME, IP:IPV4; CN=NAME; extendedKeyUsage serverAuth, clientAuth. NAME and RAFTID\n"
     "are those of the node's [node NAME] section.\n"
     "\n"
     "  --id RAFTID       the node's raft id (1 to 4294967295)\n"
     "  --address IPV4    the node's address\n"
     "  --days N          valid N days from its start (default 825)\n"
     "  --backdate DAYS   starts DAYS days ago (default: 1 hour ago); more than --days makes\n"
     "                    a certificate that has already expired, for tests\n"
     "  --force           replace DIR/NAME.crt and DIR/NAME.key"},
    {"cert operator", "an operator's certificate for haadm and the HTTP API",
     "cert operator NAME --role admin|readonly --dir DIR [--days 825] [--backdate DAYS]\n"
     "       [--ca-cert FILE --ca-key FILE] [--force] [--json]",
     "A key and a client certificate for a person or a tool: the identity URI\n"
     "urn:haagent:role:ROLE, CN=NAME, extendedKeyUsage clientAuth only. admin may do\n"
     "everything an operator does; readonly may read status, events and the backup list.\n"
     "Options as for 'haadm cert node'."},
    {"cert cluster", "every certificate a configuration needs, made once",
     "cert cluster --dir DIR [-c CONFIG] [--force] [--json]",
     "Reads the configuration (-c, else as 'haadm -c', $HAAGENT_CONF, /etc/haagent/haagent.conf)\n"
     "and makes what is missing in DIR: the CA (when DIR/ca.crt does not exist), a\n"
     "certificate for every [node NAME], and the operators admin (role admin) and monitor\n"
     "(role readonly). A certificate already there is kept when it names the node as the\n"
     "configuration does and was issued by DIR/ca.crt, else refused; --force re-issues\n"
     "the nodes' and operators' certificates (never the CA: that is 'haadm cert ca --force').\n"
     "Then copy to each node ca.crt, NAME.crt and NAME.key; keep ca.key elsewhere."},
    {"cert show", "what a certificate says, and whether it is usable now",
     "cert show FILE [--json]",
     "Every certificate in FILE: subject, issuer, identity (as the agents read it), names,\n"
     "serial, validity and days left, SHA-256 fingerprint. Exit 14 when one has no identity\n"
     "(a CA certificate needs none), has expired or is not yet valid."},
};

const struct ha_cli_command *ha_cli_command(const char *name)
{
	for (size_t i = 0; i < ha_cli_n_commands; i++)
		if (!strcmp(ha_cli_commands[i].name, name))
			return &ha_cli_commands[i];
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(subcommands[i].name, name))
			return &subcommands[i];
	return NULL;
}

void ha_cli_print_usage(FILE *f)
{
	fprintf(f,
	        "usage: haadm [-c FILE | -a HOST:PORT] [-t MS] [--ca F --cert F --key F] COMMAND "
	        "[ARGS] [--json]\n\n"
	        "Operate a haagent cluster.\n\n"
	        "  -c, --config FILE     cluster config (default $HAAGENT_CONF, then %s)\n"
	        "  -a, --agent HOST:PORT ask this agent's RPC address\n"
	        "  -t, --timeout MS      per-request timeout (default 2000)\n"
	        "  --ca FILE             the cluster CA (else $HAADM_CA, else [tls] ca)\n"
	        "  --cert FILE           your operator certificate (else $HAADM_CERT, else [tls]\n"
	        "                        haadm_cert); its role decides what you may do\n"
	        "  --key FILE            its key (else $HAADM_KEY, else [tls] haadm_key)\n"
	        "  --insecure            plain TCP, for a cluster with [tls] insecure = yes\n"
	        "  -h, --help            this help\n\n"
	        "commands:\n",
	        HA_CLI_DEFAULT_CONF);
	for (size_t i = 0; i < ha_cli_n_commands; i++)
		fprintf(f, "  %-10s %s\n", ha_cli_commands[i].name, ha_cli_commands[i].summary);
	fprintf(f, "\n'haadm help COMMAND' describes one. Exit codes: docs/cli.md.\n");
}

void ha_cli_help(const char *name)
{
	const struct ha_cli_command *c = ha_cli_command(name);
	if (c == NULL)
		return;
	printf("usage: haadm %s\n\n%s\n", c->usage, c->help);
	size_t n = strlen(name);
	bool first = true;
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (strncmp(subcommands[i].name, name, n) || subcommands[i].name[n] != ' ')
			continue;
		printf("%s  haadm %s\n      %s\n", first ? "\nsubcommands:\n" : "",
		       subcommands[i].usage, subcommands[i].summary);
		first = false;
	}
}

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

int ha_cli_check_name(const char *cmd, const char *s)
{
	if (ha_name_valid(s))
		return 0;
	fprintf(stderr, "haadm %s: '%s' is not a node name (%s)\n", cmd, s, HA_NAME_RULE);
	return HA_EUSAGE;
}

int ha_cli_parse_id(const char *cmd, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
	if (v == 0 || errno != 0 || *end != '\0') {
		fprintf(stderr, "haadm %s: '%s' is not a backup id (a whole number from 1)\n", cmd,
		        s);
		return HA_EUSAGE;
	}
	*out = v;
	return 0;
}
