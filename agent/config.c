#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/secret.h"

enum key_type { K_STR, K_UINT, K_IPV4, K_LEVEL, K_BOOL };

struct key {
	const char *section; /* "node" stands for every [node NAME] section */
	const char *name;
	enum key_type type;
	size_t offset; /* into struct ha_config, or struct ha_node_conf for "node" */
	size_t size;   /* for strings */
	unsigned min, max;
	const char *def;
	const char *doc;
};

#define C_STR(sec, k, field, def, doc)                                                             \
	{                                                                                          \
		sec, k, K_STR, offsetof(struct ha_config, field),                                  \
		    sizeof(((struct ha_config *)0)->field), 0, 0, def, doc                         \
	}
#define C_UINT(sec, k, field, lo, hi, def, doc)                                                    \
	{                                                                                          \
		sec, k, K_UINT, offsetof(struct ha_config, field), 0, lo, hi, def, doc             \
	}
#define C_BOOL(sec, k, field, def, doc)                                                            \
	{                                                                                          \
		sec, k, K_BOOL, offsetof(struct ha_config, field), 0, 0, 1, def, doc               \
	}
#define N_BOOL(k, field, doc)                                                                      \
	{                                                                                          \
		"node", k, K_BOOL, offsetof(struct ha_node_conf, field), 0, 0, 1, "no", doc        \
	}
#define N_UINT(k, field, lo, hi, doc)                                                              \
	{                                                                                          \
		"node", k, K_UINT, offsetof(struct ha_node_conf, field), 0, lo, hi, NULL, doc      \
	}

static const struct key keys[] = {
    C_STR("cluster", "name", cluster, "haagent",
          "cluster name shown by haadm status (letters, digits, '.', '_', '-')"),
    C_BOOL("cluster", "join", join, "no",
           "yes: this node joins a running cluster (haadm node add): raft is not bootstrapped, "
           "and the other [node] sections only name seeds (docs/membership.md)"),
    C_UINT("cluster", "join_timeout_ms", join_timeout_ms, 10000, 86400000, "3600000",
           "a node being added that is not a replicating raft voter within this is removed "
           "again (its database is built from a backup: allow for the restore)"),
    C_UINT("cluster", "join_silent_ms", join_silent_ms, 1000, 3600000, "60000",
           "a node being added whose agent is silent this long is removed again"),
    C_STR("agent", "node", node, NULL, "name of this node: one of the [node NAME] sections"),
    C_STR("agent", "data_dir", data_dir, NULL,
          "directory for raft state (created, locked while the agent runs)"),
    C_STR("agent", "db_user", db_user, "haagent", "MariaDB user the agent connects as"),
    C_STR("agent", "db_password_file", db_password_file, NULL,
          "file whose first line is that user's password; mode 0600 or 0640, owned by the "
          "agent's user or root (a secret file: docs/config.md)"),
    C_UINT("agent", "probe_interval_ms", probe_interval_ms, 50, 60000, "250",
           "how often the local database is probed"),
    C_UINT("agent", "probe_timeout_ms", probe_timeout_ms, 200, 60000, "1500",
           "a probe that takes longer reports the database hung"),
    C_UINT("agent", "report_interval_ms", report_interval_ms, 50, 60000, "250",
           "how often health is reported to the raft leader"),
    C_UINT("agent", "agent_timeout_ms", agent_timeout_ms, 200, 600000, "1500",
           "an agent silent this long is shown unreachable"),
    {"agent", "log_level", K_LEVEL, offsetof(struct ha_config, log_level),
     sizeof(((struct ha_config *)0)->log_level), 0, 0, "info", "debug, info, warn or error"},
    C_STR("agent", "db_datadir", db_datadir, "",
          "the database's data directory, for haadm node reclone (empty: asked from the running "
          "server)"),
    C_STR("agent", "db_stop_command", db_stop_command, "systemctl stop mariadb",
          "shell command that stops this node's mariadbd (haadm node reclone; and fencing, when "
          "the agent cannot reach its server through SQL: docs/failover.md)"),
    C_STR("agent", "db_start_command", db_start_command, "systemctl start mariadb",
          "shell command that starts this node's mariadbd (haadm node reclone)"),
    C_STR("agent", "db_pid_file", db_pid_file, "/run/mysqld/mysqld.pid",
          "mariadbd's pid file: a server that must be fenced and cannot be reached through SQL "
          "is stopped with db_stop_command, then killed (SIGKILL) by this pid; the agent needs "
          "the right to (same user, or CAP_KILL)"),
    C_STR("agent", "repl_user", repl_user, "repl",
          "replication user that replicas connect as (CHANGE MASTER)"),
    C_STR("agent", "repl_password_file", repl_password_file, NULL,
          "file whose first line is the replication password; a secret file, like "
          "db_password_file"),
    C_BOOL("failover", "auto_failover", auto_failover, "yes",
           "promote a replica automatically when the primary fails"),
    C_UINT("failover", "lease_ms", lease_ms, 500, 60000, "2000",
           "the primary stays writable only while it heard from a raft majority this recently"),
    C_UINT("failover", "confirm_ms", confirm_ms, 0, 60000, "500",
           "a failure must persist this long before it is acted on"),
    C_UINT("failover", "hang_timeout_ms", hang_timeout_ms, 1000, 600000, "8000",
           "a primary whose mariadbd does not answer this long has failed"),
    C_UINT("failover", "stream_timeout_ms", stream_timeout_ms, 500, 600000, "2500",
           "a replica without event or heartbeat from the primary this long lost its stream"),
    C_UINT("failover", "apply_timeout_ms", apply_timeout_ms, 0, 3600000, "10000",
           "how long the coordinator waits for every replica to report its position after the "
           "fence (an unreachable one may hold acknowledged writes) before choosing among those "
           "that did"),
    C_UINT("failover", "max_apply_wait_ms", max_apply_wait_ms, 0, 86400000, "0",
           "0: the new primary applies its whole relay log before it takes writes, however long "
           "(no acknowledged write lost); else the most it may take, after which the rest is "
           "given up and listed in the failover record (haadm failover --accept-loss does the "
           "same at once)"),
    C_UINT("failover", "fence_escalate_ms", fence_escalate_ms, 0, 600000, "2000",
           "a server that must be fenced but that the agent cannot reach through SQL (hung, "
           "login refused) this long is stopped: db_stop_command, then SIGKILL (0: never)"),
    C_BOOL("failover", "salvage", salvage, "yes",
           "when the old primary's mariadbd is gone but its agent lives, its agent applies the "
           "transactions of its local binlog that the new primary lacks before the new primary "
           "takes writes (mariadb-binlog piped into mariadb; the agent's user needs the rights "
           "to replay them: docs/failover.md)"),
    C_UINT("failover", "salvage_timeout_ms", salvage_timeout_ms, 1000, 3600000, "30000",
           "the most a salvage may take (reading the binlog and applying what it holds); "
           "the new primary takes writes afterwards in any case"),
    C_UINT("failover", "cooldown_ms", cooldown_ms, 0, 86400000, "30000",
           "after a failover, weak evidence (a hung primary) waits this long (docs/failover.md)"),
    C_UINT("failover", "semi_sync_timeout_ms", semi_sync_timeout_ms, 0, 3600000, "30000",
           "semi-sync timeout set on the primary when promoted (0: leave semi-sync alone); keep "
           "it above lease_ms"),
    C_STR("failover", "rejoin", rejoin, "auto",
          "a diverged node whose errant transactions were never acknowledged to a client (semi-"
          "sync active all the while it was primary, only its own in-flight tail): auto: its "
          "agent saves them as text under data_dir/errant and re-clones the node (haadm node "
          "reclone), which rejoins it as a replica; manual: it stays diverged for the operator "
          "(docs/failover.md: rejoin of a diverged node)"),
    C_UINT("failover", "rejoin_max_errant", rejoin_max_errant, 1, 100000, "64",
           "auto rejoin: the most errant transactions (by sequence numbers) a node may discard "
           "by itself; more is not an in-flight tail: it stays diverged"),
    C_UINT("failover", "rejoin_timeout_ms", rejoin_timeout_ms, 10000, 86400000, "1800000",
           "auto rejoin: the most one re-clone may take (the haadm child is killed after it); "
           "a failure is retried after a pause that doubles from 30 s to 15 min"),
    C_STR("failover", "haadm", haadm_path, "",
          "the haadm binary the agent runs for an automatic re-clone (\"\": the haadm beside "
          "haagentd's own executable, else haadm on PATH)"),
    C_UINT("switchover", "timeout_ms", switchover_timeout_ms, 500, 3600000, "10000",
           "planned switchover: fencing and catch-up must finish within this, else it rolls "
           "back (haadm failover --timeout)"),
    C_UINT("switchover", "grace_ms", switchover_grace_ms, 0, 600000, "2000",
           "planned switchover: open transactions on the old primary may still commit for this "
           "long after it turned read-only; then sessions are killed (haadm failover --grace)"),
    C_UINT("switchover", "max_lag_ms", switchover_max_lag_ms, 0, 86400000, "10000",
           "planned switchover: refuse a target whose replication lags more than this"),
    C_STR("backup", "repository", backup_repository, "",
          "backup repository directory, the same path on every node (a shared mount); empty: "
          "no backups"),
    C_STR("backup", "key_file", backup_key_file, "",
          "file whose first line is the repository master key, 64 hex characters (openssl rand "
          "-hex 32); a secret file, like db_password_file"),
    C_STR("backup", "tool", backup_tool, "mariadb-backup", "the mariadb-backup executable"),
    C_STR("backup", "mbstream", backup_mbstream, "mbstream", "the mbstream executable"),
    C_UINT("backup", "compress_level", backup_compress_level, 1, 19, "1", "zstd level"),
    C_UINT("backup", "chunk_kb", backup_chunk_kb, 64, 8192, "4096",
           "the stream is cut into chunks of this size, each compressed, encrypted, hashed"),
    C_UINT("backup", "workers", backup_workers, 0, 16, "0",
           "compression and encryption threads (0: the number of cores)"),
    C_UINT("backup", "max_lag_ms", backup_max_lag_ms, 0, 86400000, "60000",
           "a replica lagging more than this is not chosen for a backup"),
    C_UINT("backup", "copy_interval_ms", backup_copy_interval_ms, 1000, 86400000, "30000",
           "with several repositories: how often the leader copies what one lacks (also "
           "right after a backup ends)"),
    C_UINT("backup", "throttle", backup_throttle, 0, 100000, "0",
           "limit mariadb-backup to this many 1 MiB I/O operations per second (its --throttle; "
           "0: no limit), to spare a replica that also serves reads"),
    C_UINT("backup", "lag_pause_ms", backup_lag_pause_ms, 0, 86400000, "30000",
           "while the backed-up replica lags more than this, the backup stops reading "
           "(mariadb-backup waits) so the replica can catch up; 0: never"),
    C_UINT("backup", "lag_pause_max_ms", backup_lag_pause_max_ms, 0, 3600000, "60000",
           "at most this long in total per backup (mariadb-backup's redo copy waits too)"),
    C_UINT("backup", "checksum_max_mb", backup_checksum_max_mb, 0, 100000000, "1024",
           "after a backup, record CHECKSUM TABLE of every user table for restore drills to "
           "compare, when they hold at most this much data (0: never)"),
    C_BOOL("backup", "archive", backup_archive, "yes",
           "keep a continuous binlog archive in the repository (point-in-time recovery); the "
           "Raft leader's agent streams the primary's binary log with mariadb-binlog"),
    C_UINT("backup", "archive_seal_ms", backup_archive_seal_ms, 200, 600000, "2000",
           "the archive seals what it received at least this often while transactions arrive "
           "(its recovery point if the whole cluster is lost)"),
    C_UINT("backup", "archive_prune_ms", backup_archive_prune_ms, 1000, 604800000, "3600000",
           "how often the archiver removes the slices no restore can need any more (those "
           "before the oldest kept backup's position)"),
    C_STR("backup", "binlog_tool", backup_binlog_tool, "mariadb-binlog",
          "the mariadb-binlog executable (archive, point-in-time restore, binlog find)"),
    C_STR("backup", "client_tool", backup_client_tool, "mariadb",
          "the mariadb client executable (point-in-time restore replays through it)"),
    C_BOOL("backup", "allow_primary", backup_allow_primary, "no",
           "back up the primary when no replica is fit (last resort)"),
    C_STR("backup", "schedule_full", backup_schedule_full, "",
          "when full backups run: cron, 5 fields, UTC (e.g. 0 3 * * 0); empty: never; "
          "'haadm backup policy' overrides"),
    C_STR("backup", "schedule_differential", backup_schedule_differential, "",
          "when differential backups run (e.g. 0 3 * * 1-6)"),
    C_STR("backup", "schedule_incremental", backup_schedule_incremental, "",
          "when incremental backups run (e.g. 0 * * * *)"),
    C_UINT("backup", "schedule_catch_up_min", backup_schedule_catch_up_min, 0, 10080, "60",
           "a scheduled backup that could not start at its time (another job running, no fit "
           "replica, no coordinator) still starts until this many minutes later"),
    C_UINT("backup", "keep_full", backup_keep_full, 0, 1000, "0",
           "retention: keep the newest N full backups and what they anchor (0: no limit)"),
    C_UINT("backup", "keep_days", backup_keep_days, 0, 36500, "0",
           "retention: keep full backups younger than this, with what they anchor (0: no "
           "limit)"),
    C_STR("tls", "ca", tls_ca, "",
          "the cluster CA's certificate (PEM; may hold the old and the new CA while the CA is "
          "rotated): every peer's certificate must chain to it (haadm cert ca)"),
    C_STR("tls", "cert", tls_cert, "",
          "this node's certificate, naming the node and its raft id (haadm cert node); "
          "required unless insecure"),
    C_STR("tls", "key", tls_key, "", "its private key; mode 0600, owned by the agent's user"),
    C_BOOL("tls", "insecure", tls_insecure, "no",
           "yes: plain TCP on every port and nobody authenticated: anyone who reaches a port "
           "can pause failover or switch the primary (a closed test network only; the config "
           "check warns)"),
    C_BOOL("tls", "http_plain_checks", tls_http_plain_checks, "no",
           "yes: /primary and /replica also answer plain HTTP on http_port, for load balancers "
           "that cannot present a client certificate; /health and /metrics still need TLS"),
    C_STR("tls", "haadm_cert", tls_haadm_cert, "",
          "the operator certificate haadm presents when it reads this file (haadm cert "
          "operator); $HAADM_CERT and --cert override it"),
    C_STR("tls", "haadm_key", tls_haadm_key, "",
          "its private key (mode 0600); $HAADM_KEY and --key override it"),
    C_STR("hooks", "on_role_change", hook_on_role_change, "",
          "run on every node whose role changes: ROLE EPOCH PRIMARY"),
    C_STR("hooks", "pre_failover", hook_pre_failover, "",
          "run by the coordinator before a failover begins: OLD_PRIMARY REASON"),
    C_STR("hooks", "post_failover", hook_post_failover, "",
          "run by the coordinator after a failover: OLD_PRIMARY NEW_PRIMARY EPOCH"),
    C_STR("hooks", "fence", hook_fence, "",
          "run by the coordinator to fence an unreachable old primary: NODE ADDRESS; exit 0 = "
          "fenced"),
    C_UINT("raft", "election_timeout_ms", election_timeout_ms, 50, 60000, "300",
           "raft election timeout"),
    C_UINT("raft", "heartbeat_timeout_ms", heartbeat_timeout_ms, 10, 10000, "50",
           "raft heartbeat interval"),
    C_UINT("raft", "snapshot_threshold", snapshot_threshold, 2, 1000000, "1024",
           "take a snapshot after this many log entries"),
    C_UINT("raft", "snapshot_trailing", snapshot_trailing, 1, 1000000, "128",
           "log entries kept behind a snapshot"),
    N_UINT("id", id, 1, HA_NODE_ID_MAX, "raft server id: unique, never reused"),
    {"node", "address", K_IPV4, offsetof(struct ha_node_conf, address), HA_ADDR_MAX, 0, 0, NULL,
     "IPv4 address of the node; raft and RPC bind to it"},
    N_UINT("raft_port", raft_port, 1, 65535, "raft TCP port"),
    N_UINT("rpc_port", rpc_port, 1, 65535, "agent RPC TCP port (haadm talks to it)"),
    N_UINT("db_port", db_port, 1, 65535, "mariadbd TCP port on the node address"),
    N_UINT("http_port", http_port, 0, 65535,
           "HTTP port for /primary, /replica, /health, /metrics (default 7300; 0: off)"),
    N_UINT("priority", priority, 0, 1000000, "promotion preference among equals (default 100)"),
    N_BOOL("no_promote", no_promote, "never promote this node (yes/no)"),
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

struct parse_state {
	struct ha_config *c;
	struct ha_err *e;
	FILE *f;
	int line;
	char cur_section[128];
	int section_line;
	struct ha_node_conf *cur_node;
	struct ha_repo_conf *cur_repo;
	int failed;
};

static char *read_line(char *str, int num, void *stream)
{
	struct parse_state *st = stream;
	char *r = fgets(str, num, st->f);
	if (r)
		st->line++;
	return r;
}

static int fail(struct parse_state *st, const char *section, const char *key, const char *fmt,
                const char *arg)
{
	if (st->failed)
		return 0;
	char what[512];
	snprintf(what, sizeof(what), fmt, arg);
	ha_err_set(st->e, HA_ECONFIG, "%s:%d: [%s] %s: %s", st->c->path, st->line, section, key,
	           what);
	st->failed = 1;
	return 0;
}

static int set_value(struct parse_state *st, const struct key *k, void *base, const char *section,
                     const char *value)
{
	char *field = (char *)base + k->offset;
	switch (k->type) {
	case K_STR:
	case K_LEVEL:
		if (strlen(value) >= k->size)
			return fail(st, section, k->name, "value longer than %s characters",
			            k->type == K_STR ? "the limit" : "15");
		if (k->type == K_LEVEL && ha_log_parse_level(value) < 0)
			return fail(st, section, k->name,
			            "'%s' is not a level (debug, info, warn, error)", value);
		snprintf(field, k->size, "%s", value);
		return 1;
	case K_IPV4: {
		struct in_addr a;
		if (inet_pton(AF_INET, value, &a) != 1)
			return fail(st, section, k->name, "'%s' is not an IPv4 address", value);
		snprintf(field, k->size, "%s", value);
		return 1;
	}
	case K_BOOL:
		if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "on") ||
		    !strcmp(value, "1"))
			*(unsigned *)field = 1;
		else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "off") ||
		         !strcmp(value, "0"))
			*(unsigned *)field = 0;
		else
			return fail(st, section, k->name, "'%s' is not yes or no", value);
		return 1;
	case K_UINT: {
		char *end;
		errno = 0;
		unsigned long v = strtoul(value, &end, 10);
		if (errno || *end || value[0] == '-' || value[0] == '+' || v < k->min ||
		    v > k->max) {
			char rng[96];
			snprintf(rng, sizeof(rng), "'%.40s' is not a whole number from %u to %u",
			         value, k->min, k->max);
			return fail(st, section, k->name, "%s", rng);
		}
		*(unsigned *)field = (unsigned)v;
		return 1;
	}
	}
	return 0;
}

/* [repository NAME]: a new repository, in the file's order (the first is written first). */
static int repo_section(struct parse_state *st, const char *section, const char *key)
{
	struct ha_config *c = st->c;
	const char *nm = section + 11;
	while (*nm == ' ')
		nm++;
	if (!ha_name_valid(nm))
		return fail(st, section, key,
		            "bad repository name '%s' in the section header: " HA_NAME_RULE, nm),
		       -1;
	for (unsigned i = 0; i < c->n_repos; i++)
		if (strcmp(c->repos[i].name, nm) == 0)
			return fail(st, section, key, "repository '%s' defined twice", nm), -1;
	if (c->n_repos == HA_REPOS_MAX)
		return fail(st, section, key, "%s", "too many repositories (at most 4)"), -1;
	st->cur_repo = &c->repos[c->n_repos++];
	memset(st->cur_repo, 0, sizeof(*st->cur_repo));
	snprintf(st->cur_repo->name, sizeof(st->cur_repo->name), "%s", nm);
	st->cur_repo->line = st->line;
	return 0;
}

/* A key of a [repository NAME] section: type and path here; an S3 repository's other keys are
 * kept as written and checked by backup/s3.c when the repositories are opened (repos.h). */
static int repo_key(struct parse_state *st, const char *section, const char *name,
                    const char *value)
{
	struct ha_repo_conf *r = st->cur_repo;
	size_t len = strlen(value);
	if ((!strcmp(name, "type") && r->type[0]) || (!strcmp(name, "path") && r->path[0]))
		return fail(st, section, name, "%s", "given twice");
	if (!strcmp(name, "type")) {
		if (strcmp(value, "dir") && strcmp(value, "s3"))
			return fail(st, section, name, "'%s' is not dir or s3", value);
		snprintf(r->type, sizeof(r->type), "%s", value);
		return 1;
	}
	if (!strcmp(name, "path")) {
		if (len >= sizeof(r->path))
			return fail(st, section, name, "value longer than %s characters", "4095");
		if (value[0] != '/')
			return fail(st, section, name, "'%s' is not an absolute path", value);
		snprintf(r->path, sizeof(r->path), "%s", value);
		return 1;
	}
	if (!strcmp(name, "keep_full") || !strcmp(name, "keep_days")) {
		char *end;
		unsigned long v = strtoul(value, &end, 10);
		if (*end || value[0] == '-' || v > 36500)
			return fail(st, section, name, "'%s' is not a number from 0 to 36500",
			            value);
		*(!strcmp(name, "keep_full") ? &r->keep_full : &r->keep_days) = (unsigned)v;
		return 1;
	}
	for (unsigned i = 0; i < r->n_kv; i++)
		if (!strcmp(r->kv[i].key, name))
			return fail(st, section, name, "%s", "given twice");
	if (r->n_kv == HA_REPO_KV_MAX)
		return fail(st, section, name, "%s", "too many keys (at most 16)");
	if (strlen(name) >= sizeof(r->kv[0].key))
		return fail(st, section, name, "%s", "unknown key (see docs/backup.md)");
	if (len >= sizeof(r->kv[0].value))
		return fail(st, section, name, "value longer than %s characters", "511");
	struct ha_repo_kv *kv = &r->kv[r->n_kv++];
	snprintf(kv->key, sizeof(kv->key), "%s", name);
	snprintf(kv->value, sizeof(kv->value), "%s", value);
	kv->line = st->line;
	return 1;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	struct ha_config *c = st->c;

	if (strcmp(section, st->cur_section) != 0) {
		/* entering a new section */
		snprintf(st->cur_section, sizeof(st->cur_section), "%s", section);
		st->section_line = st->line;
		st->cur_node = NULL;
		st->cur_repo = NULL;
		if (strncmp(section, "repository ", 11) == 0) {
			if (repo_section(st, section, name) != 0)
				return 0;
		} else if (strncmp(section, "node ", 5) == 0) {
			const char *nm = section + 5;
			while (*nm == ' ')
				nm++;
			if (!ha_name_valid(nm))
				return fail(
				    st, section, name,
				    "bad node name '%s' in the section header: " HA_NAME_RULE, nm);
			for (unsigned i = 0; i < c->n_nodes; i++)
				if (strcmp(c->nodes[i].name, nm) == 0)
					return fail(st, section, name, "node '%s' defined twice",
					            nm);
			if (c->n_nodes == HA_MAX_NODES)
				return fail(st, section, name, "%s", "too many nodes (at most 9)");
			st->cur_node = &c->nodes[c->n_nodes++];
			memset(st->cur_node, 0, sizeof(*st->cur_node));
			snprintf(st->cur_node->name, HA_NAME_MAX, "%s", nm);
			st->cur_node->line = st->line;
			st->cur_node->priority = 100;
			st->cur_node->http_port = 7300;
		} else if (strcmp(section, "cluster") && strcmp(section, "agent") &&
		           strcmp(section, "raft") && strcmp(section, "failover") &&
		           strcmp(section, "switchover") && strcmp(section, "backup") &&
		           strcmp(section, "hooks") && strcmp(section, "tls")) {
			return fail(st, section, name, "%s",
			            "unknown section (known: cluster, agent, raft, failover, "
			            "switchover, backup, hooks, tls, node NAME, repository NAME)");
		}
	}
	if (value == NULL || value[0] == '\0')
		return fail(st, section, name, "%s", "missing value");
	if (st->cur_repo)
		return repo_key(st, section, name, value);

	const char *ksec = st->cur_node ? "node" : section;
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(keys[i].section, ksec) || strcmp(keys[i].name, name))
			continue;
		void *base = st->cur_node ? (void *)st->cur_node : (void *)c;
		int ok = set_value(st, &keys[i], base, section, value);
		if (ok && !st->cur_node) {
			if (!strcmp(name, "node"))
				c->line_of_node = st->line;
			else if (!strcmp(section, "cluster") && !strcmp(name, "name"))
				c->line_of_cluster = st->line;
			else if (!strcmp(name, "db_password_file"))
				c->line_of_password_file = st->line;
			else if (!strcmp(name, "data_dir"))
				c->line_of_data_dir = st->line;
			else if (!strcmp(name, "db_user"))
				c->line_of_db_user = st->line;
			else if (!strcmp(name, "repl_password_file"))
				c->line_of_repl_password_file = st->line;
			else if (!strcmp(name, "key_file"))
				c->line_of_key_file = st->line;
		}
		return ok;
	}
	return fail(st, section, name, "%s", "unknown key (see docs/config.md)");
}

static void set_defaults(struct ha_config *c);

void ha_config_defaults(struct ha_config *c)
{
	memset(c, 0, sizeof(*c));
	c->self = -1;
	set_defaults(c);
}

static void set_defaults(struct ha_config *c)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];
		if (k->def == NULL || strcmp(k->section, "node") == 0)
			continue;
		char *field = (char *)c + k->offset;
		if (k->type == K_BOOL)
			*(unsigned *)field = !strcmp(k->def, "yes");
		else if (k->type == K_UINT)
			*(unsigned *)field = (unsigned)strtoul(k->def, NULL, 10);
		else
			snprintf(field, k->size, "%s", k->def);
	}
}

/* Reads the first line of a credentials file at path (named by key at line ln) into out; the file
 * must follow the secret file rule (common/secret.h). */
static int load_secret(struct ha_config *c, const char *section, const char *key, const char *p,
                       int ln, char *out, size_t out_size, struct ha_err *e)
{
	struct ha_err se = {0};
	if (ha_secret_read_line(p, out, out_size, &se) != 0)
		return ha_err_set(e, HA_ECONFIG, "%s:%d: [%s] %s: %s", c->path, ln, section, key,
		                  se.msg);
	return 0;
}

static bool ascii_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

bool ha_name_valid(const char *s)
{
	if (s == NULL || !ascii_alnum(s[0]))
		return false;
	for (size_t n = 0; s[n]; n++)
		if (n == HA_NAME_MAX - 1 ||
		    !(ascii_alnum(s[n]) || s[n] == '.' || s[n] == '_' || s[n] == '-'))
			return false;
	return true;
}

/* The repositories: [backup] repository is the short form of one directory repository
 * ("default"); an S3 repository's own keys are checked when it is opened (backup/repos.h). */
static int validate_repos(struct ha_config *c, struct ha_err *e)
{
	if (c->backup_repository[0] && c->n_repos)
		return ha_err_set(
		    e, HA_ECONFIG,
		    "%s: [backup] repository and [repository %s] both given: move the "
		    "directory into a [repository NAME] section (type = dir, path = "
		    "%s)",
		    c->path, c->repos[0].name, c->backup_repository);
	if (c->backup_repository[0]) {
		struct ha_repo_conf *r = &c->repos[c->n_repos++];
		memset(r, 0, sizeof(*r));
		snprintf(r->name, sizeof(r->name), "default");
		snprintf(r->type, sizeof(r->type), "dir");
		snprintf(r->path, sizeof(r->path), "%s", c->backup_repository);
		return 0;
	}
	for (unsigned i = 0; i < c->n_repos; i++) {
		struct ha_repo_conf *r = &c->repos[i];
		if (!r->type[0] && r->path[0])
			snprintf(r->type, sizeof(r->type), "dir");
		if (!r->type[0])
			return ha_err_set(e, HA_ECONFIG,
			                  "%s:%d: [repository %s] type: missing (dir or s3)",
			                  c->path, r->line, r->name);
		bool dir = !strcmp(r->type, "dir");
		if (dir && !r->path[0])
			return ha_err_set(
			    e, HA_ECONFIG,
			    "%s:%d: [repository %s] path: missing (the directory, the "
			    "same path on every node)",
			    c->path, r->line, r->name);
		if (dir && r->n_kv)
			return ha_err_set(e, HA_ECONFIG,
			                  "%s:%d: [repository %s] %s: unknown key for a directory "
			                  "repository (type, path, keep_full, keep_days)",
			                  c->path, r->kv[0].line, r->name, r->kv[0].key);
		if (!dir && r->path[0])
			return ha_err_set(
			    e, HA_ECONFIG,
			    "%s:%d: [repository %s] path: an S3 repository has a bucket "
			    "and a prefix, not a path",
			    c->path, r->line, r->name);
	}
	return 0;
}

/* Long on purpose: one rule after another, each with the message that says what to fix. */
static int validate(struct ha_config *c, unsigned flags, struct ha_err *e)
{
	if (c->n_nodes == 0)
		return ha_err_set(e, HA_ECONFIG,
		                  "%s: no [node NAME] section: list every node of the cluster",
		                  c->path);
	for (unsigned i = 0; i < c->n_nodes; i++) {
		struct ha_node_conf *n = &c->nodes[i];
		const char *missing = !n->id           ? "id"
		                      : !n->address[0] ? "address"
		                      : !n->raft_port  ? "raft_port"
		                      : !n->rpc_port   ? "rpc_port"
		                      : !n->db_port    ? "db_port"
		                                       : NULL;
		if (missing)
			return ha_err_set(e, HA_ECONFIG, "%s:%d: [node %s] %s: missing (required)",
			                  c->path, n->line, n->name, missing);
		if (n->http_port && (n->http_port == n->raft_port || n->http_port == n->rpc_port))
			return ha_err_set(
			    e, HA_ECONFIG,
			    "%s:%d: [node %s] http_port: same as raft_port or rpc_port (%u)",
			    c->path, n->line, n->name, n->http_port);
		if (n->raft_port == n->rpc_port)
			return ha_err_set(e, HA_ECONFIG,
			                  "%s:%d: [node %s] rpc_port: same as raft_port (%u)",
			                  c->path, n->line, n->name, n->raft_port);
		for (unsigned j = 0; j < i; j++) {
			if (c->nodes[j].id == n->id)
				return ha_err_set(
				    e, HA_ECONFIG, "%s:%d: [node %s] id: %u is also node %s's id",
				    c->path, n->line, n->name, n->id, c->nodes[j].name);
			if (!strcmp(c->nodes[j].address, n->address) &&
			    (c->nodes[j].raft_port == n->raft_port ||
			     c->nodes[j].rpc_port == n->rpc_port))
				return ha_err_set(
				    e, HA_ECONFIG,
				    "%s:%d: [node %s] address: %s with the same ports as "
				    "node %s",
				    c->path, n->line, n->name, n->address, c->nodes[j].name);
		}
	}
	if (!ha_name_valid(c->cluster))
		return ha_err_set(e, HA_ECONFIG, "%s:%d: [cluster] name: '%s' is not a name: %s",
		                  c->path, c->line_of_cluster, c->cluster, HA_NAME_RULE);
	if (c->node[0] && !ha_name_valid(c->node))
		return ha_err_set(e, HA_ECONFIG, "%s:%d: [agent] node: '%s' is not a name: %s",
		                  c->path, c->line_of_node, c->node, HA_NAME_RULE);
	if (strcmp(c->rejoin, "auto") != 0 && strcmp(c->rejoin, "manual") != 0)
		return ha_err_set(e, HA_ECONFIG,
		                  "%s: [failover] rejoin: '%s' is not auto or manual", c->path,
		                  c->rejoin);
	c->self = -1;
	if (!(flags & HA_CONFIG_AGENT)) {
		if (c->node[0])
			for (unsigned i = 0; i < c->n_nodes; i++)
				if (!strcmp(c->nodes[i].name, c->node))
					c->self = (int)i;
		return 0;
	}
	if (!c->node[0])
		return ha_err_set(e, HA_ECONFIG, "%s: [agent] node: missing (required)", c->path);
	for (unsigned i = 0; i < c->n_nodes; i++)
		if (!strcmp(c->nodes[i].name, c->node))
			c->self = (int)i;
	if (c->self < 0)
		return ha_err_set(e, HA_ECONFIG, "%s:%d: [agent] node: no [node %s] section",
		                  c->path, c->line_of_node, c->node);
	if (!c->data_dir[0])
		return ha_err_set(e, HA_ECONFIG, "%s: [agent] data_dir: missing (required)",
		                  c->path);
	if (!c->db_password_file[0])
		return ha_err_set(e, HA_ECONFIG, "%s: [agent] db_password_file: missing (required)",
		                  c->path);
	if (c->semi_sync_timeout_ms && c->semi_sync_timeout_ms <= c->lease_ms)
		return ha_err_set(
		    e, HA_ECONFIG,
		    "%s: [failover] semi_sync_timeout_ms: %u must exceed lease_ms (%u), "
		    "or an isolated primary acknowledges writes no replica has",
		    c->path, c->semi_sync_timeout_ms, c->lease_ms);
	if (c->report_interval_ms * 3 > c->lease_ms)
		return ha_err_set(
		    e, HA_ECONFIG,
		    "%s: [agent] report_interval_ms: %u must be at most a third of "
		    "[failover] lease_ms (%u): the leader's write lease is renewed by "
		    "reports that echo its acks, two report intervals apart",
		    c->path, c->report_interval_ms, c->lease_ms);
	if (c->heartbeat_timeout_ms * 2 > c->election_timeout_ms)
		return ha_err_set(e, HA_ECONFIG,
		                  "%s: [raft] heartbeat_timeout_ms: %u must be at most half of "
		                  "election_timeout_ms (%u)",
		                  c->path, c->heartbeat_timeout_ms, c->election_timeout_ms);
	if (validate_repos(c, e) != 0)
		return HA_ECONFIG;
	int rc = load_secret(c, "agent", "db_password_file", c->db_password_file,
	                     c->line_of_password_file, c->db_password, sizeof(c->db_password), e);
	if (rc == 0 && c->repl_password_file[0])
		rc = load_secret(c, "agent", "repl_password_file", c->repl_password_file,
		                 c->line_of_repl_password_file, c->repl_password,
		                 sizeof(c->repl_password), e);
	/* the key itself is read where it is used (backups, the archive, haadm); its file is
	 * held to the same rule here, so that --check refuses it before the first backup does */
	struct ha_err se = {0};
	if (rc == 0 && c->backup_key_file[0] && ha_secret_file_check(c->backup_key_file, &se))
		rc = ha_err_set(e, HA_ECONFIG, "%s:%d: [backup] key_file: %s", c->path,
		                c->line_of_key_file, se.msg);
	if (rc == 0 && !c->tls_insecure && (!c->tls_ca[0] || !c->tls_cert[0] || !c->tls_key[0]))
		rc = ha_err_set(
		    e, HA_ECONFIG,
		    "%s: [tls] ca, cert and key are required: every port speaks mutual "
		    "TLS (create them with `haadm cert cluster --dir DIR -c %s`), or set "
		    "insecure = yes on a closed test network (docs/security.md)",
		    c->path, c->path);
	/* the TLS key is a secret file like the others (its certificate and the CA are not) */
	if (rc == 0 && !c->tls_insecure && ha_secret_file_check(c->tls_key, &se))
		rc = ha_err_set(e, HA_ECONFIG, "%s: [tls] key: %s", c->path, se.msg);
	if (rc == 0 && !c->tls_insecure && ha_trust_file_check(c->tls_ca, &se))
		rc = ha_err_set(e, HA_ECONFIG, "%s: [tls] ca: %s", c->path, se.msg);
	if (rc != 0)
		ha_config_wipe(c);
	return rc;
}

int ha_config_load(const char *path, unsigned flags, struct ha_config *c, struct ha_err *e)
{
	memset(c, 0, sizeof(*c));
	set_defaults(c);
	snprintf(c->path, sizeof(c->path), "%s", path);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return ha_err_set(e, HA_ECONFIG, "%s: cannot open: %s", path, strerror(errno));
	struct parse_state st = {.c = c, .e = e, .f = f};
	int rc = ini_parse_stream(read_line, &st, on_entry, &st);
	fclose(f);
	if (st.failed)
		return HA_ECONFIG;
	if (rc > 0)
		return ha_err_set(e, HA_ECONFIG,
		                  "%s:%d: syntax error (expected [section] or key = value)", path,
		                  rc);
	if (rc < 0)
		return ha_err_set(e, HA_ECONFIG, "%s: cannot read", path);
	return validate(c, flags, e);
}

void ha_config_wipe(struct ha_config *c)
{
	ha_wipe(c->db_password, sizeof(c->db_password));
	ha_wipe(c->repl_password, sizeof(c->repl_password));
}

const struct ha_node_conf *ha_config_node_by_id(const struct ha_config *c, uint32_t id)
{
	for (unsigned i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].id == id)
			return &c->nodes[i];
	return NULL;
}

const struct ha_node_conf *ha_config_node_by_name(const struct ha_config *c, const char *name)
{
	for (unsigned i = 0; i < c->n_nodes; i++)
		if (!strcmp(c->nodes[i].name, name))
			return &c->nodes[i];
	return NULL;
}

void ha_config_print_reference(void)
{
	const char *last = "";
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];
		if (strcmp(k->section, last)) {
			printf("\n[%s]\n", strcmp(k->section, "node") ? k->section : "node NAME");
			last = k->section;
		}
		/* a default that is empty or has spaces is quoted: one word per column */
		char def[PATH_MAX + 2];
		if (k->def == NULL)
			snprintf(def, sizeof(def), "(required)");
		else if (!k->def[0] || strchr(k->def, ' '))
			snprintf(def, sizeof(def), "\"%s\"", k->def);
		else
			snprintf(def, sizeof(def), "%s", k->def);
		printf("  %-22s %-10s %s\n", k->name, def, k->doc);
	}
}
