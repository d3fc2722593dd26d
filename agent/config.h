/* haagent configuration file (INI, parsed with inih). The keys are declared once, in the table in
 * config.c, together with their defaults, bounds and documentation; docs/config.md describes the
 * same table. An unknown section or key, a missing value, a bad number or address, a bad name, an
 * unreadable credentials file or one that breaks the secret file rule (common/secret.h): each
 * fails with "FILE:LINE: [section] key: what is wrong".
 *
 * Any thread; no I/O besides reading the file and the credentials file. */
#ifndef HA_CONFIG_H
#define HA_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define HA_MAX_NODES      9
#define HA_NODE_ID_MAX    1000000 /* a [node] section's id: 1 to this */
#define HA_REPOS_MAX      4       /* [repository NAME] sections */
#define HA_REPO_KV_MAX    16
#define HA_REPO_VALUE_MAX 512
#define HA_NAME_MAX       64
#define HA_ADDR_MAX       64

struct ha_node_conf {
	uint32_t id;
	char name[HA_NAME_MAX];
	char address[HA_ADDR_MAX]; /* IPv4; raft, RPC and (by default) mariadbd listen here */
	unsigned raft_port;
	unsigned rpc_port;
	unsigned db_port;
	unsigned http_port;  /* 0: no HTTP endpoint */
	unsigned priority;   /* higher is preferred among equally advanced candidates */
	unsigned no_promote; /* 1: never promote this node */
	int line;            /* where the [node NAME] section starts */
};

/* One repository: a directory (a local disk or a mount) or an S3 bucket. Each backup and each
 * archive slice goes to every repository (docs/backup.md, "Several repositories"). */
struct ha_repo_conf {
	char name[HA_NAME_MAX];
	char type[8];        /* "dir" or "s3" */
	char path[PATH_MAX]; /* dir */
	/* its own retention, shorter than the cluster's (0: the cluster's alone) */
	unsigned keep_full, keep_days;
	/* s3: its keys as written, checked by backup/s3.c (ha_s3_conf_set) at load */
	struct ha_repo_kv {
		char key[32];
		char value[HA_REPO_VALUE_MAX];
		int line;
	} kv[HA_REPO_KV_MAX];
	unsigned n_kv;
	int line;
};

struct ha_config {
	char path[PATH_MAX];
	char cluster[HA_NAME_MAX];
	unsigned join;                            /* [cluster] join: no raft bootstrap */
	unsigned join_timeout_ms, join_silent_ms; /* a node add that fails is undone */

	/* [agent]: this node */
	char node[HA_NAME_MAX];
	char data_dir[PATH_MAX];
	char db_user[HA_NAME_MAX];
	char db_password_file[PATH_MAX];
	char db_password[256]; /* loaded from db_password_file, never logged */
	unsigned probe_interval_ms;
	unsigned probe_timeout_ms;
	unsigned report_interval_ms;
	unsigned agent_timeout_ms;
	char log_level[16];
	char db_datadir[PATH_MAX];      /* "" : ask the server */
	char db_stop_command[PATH_MAX]; /* haadm node reclone */
	char db_start_command[PATH_MAX];
	char db_pid_file[PATH_MAX]; /* fencing escalation: SIGKILL of the process it names */
	char repl_user[HA_NAME_MAX];
	char repl_password_file[PATH_MAX];
	char repl_password[256]; /* loaded from repl_password_file, never logged */

	/* [failover] */
	unsigned auto_failover; /* 0 or 1 */
	unsigned lease_ms;
	unsigned confirm_ms;
	unsigned hang_timeout_ms;
	unsigned stream_timeout_ms;
	unsigned apply_timeout_ms;
	unsigned max_apply_wait_ms; /* 0: the candidate applies its whole relay log, however long */
	unsigned fence_escalate_ms; /* 0: never stop the server to fence it */
	unsigned salvage;           /* 0 or 1: apply what a crashed primary's binlog holds */
	unsigned salvage_timeout_ms; /* the most a salvage may take */
	unsigned cooldown_ms;
	unsigned semi_sync_timeout_ms; /* 0: the agent leaves semi-sync alone */
	char rejoin[8];                /* "auto" or "manual" (docs/failover.md) */
	unsigned rejoin_max_errant;    /* the most errant transactions an auto rejoin discards */
	unsigned rejoin_timeout_ms;    /* one re-clone's bound */
	char haadm_path[PATH_MAX];     /* "": beside haagentd, else on PATH */

	/* [switchover] */
	unsigned switchover_timeout_ms;
	unsigned switchover_grace_ms;
	unsigned switchover_max_lag_ms;

	/* [repository NAME] sections, in the file's order (or the one [backup] repository
	 * stands for, named "default"); none: backups off */
	struct ha_repo_conf repos[HA_REPOS_MAX];
	unsigned n_repos;

	/* [backup] */
	char backup_repository[PATH_MAX]; /* the short form of one directory repository */
	char backup_key_file[PATH_MAX];
	char backup_tool[PATH_MAX];
	char backup_mbstream[PATH_MAX];
	unsigned backup_compress_level;
	unsigned backup_chunk_kb;
	unsigned backup_workers;
	unsigned backup_max_lag_ms;
	unsigned backup_allow_primary;
	unsigned backup_archive, backup_archive_seal_ms, backup_archive_prune_ms;
	unsigned backup_copy_interval_ms;
	char backup_binlog_tool[PATH_MAX], backup_client_tool[PATH_MAX];
	unsigned backup_throttle;
	unsigned backup_lag_pause_ms, backup_lag_pause_max_ms;
	unsigned backup_checksum_max_mb;
	char backup_schedule_full[64], backup_schedule_differential[64],
	    backup_schedule_incremental[64];
	unsigned backup_schedule_catch_up_min;
	unsigned backup_keep_full, backup_keep_days;

	/* [hooks]: executables, run with documented arguments and environment */
	char hook_on_role_change[PATH_MAX];
	char hook_pre_failover[PATH_MAX];
	char hook_post_failover[PATH_MAX];
	char hook_fence[PATH_MAX];

	/* [tls]: docs/security.md */
	char tls_ca[PATH_MAX], tls_cert[PATH_MAX], tls_key[PATH_MAX];
	unsigned tls_insecure;          /* 1: plain TCP everywhere, nobody authenticated */
	unsigned tls_http_plain_checks; /* 1: /primary and /replica also answer plain HTTP */
	char tls_haadm_cert[PATH_MAX], tls_haadm_key[PATH_MAX]; /* what haadm presents */

	/* [raft] */
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	unsigned snapshot_threshold;
	unsigned snapshot_trailing;

	struct ha_node_conf nodes[HA_MAX_NODES];
	unsigned n_nodes;
	int self; /* index into nodes of [agent] node, -1 when not an agent config */

	int line_of_node, line_of_password_file, line_of_data_dir, line_of_db_user;
	int line_of_repl_password_file, line_of_key_file, line_of_cluster;
};

enum {
	HA_CONFIG_AGENT = 1 << 0, /* require the [agent] section and load the credentials */
};

/* Fills c from the file at path. flags: HA_CONFIG_AGENT for haagentd; 0 for clients, which only
 * need the cluster and its nodes. */
int ha_config_load(const char *path, unsigned flags, struct ha_config *c, struct ha_err *e);

/* Every key at its default, no node (the simulator builds its configurations on this). */
void ha_config_defaults(struct ha_config *c);

const struct ha_node_conf *ha_config_node_by_id(const struct ha_config *c, uint32_t id);
const struct ha_node_conf *ha_config_node_by_name(const struct ha_config *c, const char *name);

/* A name that may become part of a path or a command: the cluster's, a node's, a backup's, an
 * archive slice's. 1 to 63 characters of [A-Za-z0-9._-], the first a letter or a digit: never
 * "", "." or "..", never a '/', a space or a quote. Checked where a name enters: the
 * configuration, haadm's arguments, the replicated state, a repository's listing and
 * manifests. */
#define HA_NAME_RULE "1 to 63 letters, digits, '.', '_' or '-', beginning with a letter or a digit"
bool ha_name_valid(const char *s);

/* Wipes the passwords in c (OPENSSL_cleanse): call before c is freed or goes out of scope. */
void ha_config_wipe(struct ha_config *c);

/* Prints every key with its default and documentation (for `haagentd --help-config`). */
void ha_config_print_reference(void);

#endif
