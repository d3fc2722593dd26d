/* Changes to the local MariaDB server, made on a dedicated worker thread (the loop never calls
 * mysql_*). One action at a time; each opens its own connection with connect/read/write timeouts
 * and reports back on the loop thread through uv_async.
 *
 *   FENCE    a primary that may no longer write stops writing: client sessions (not
 *            replication, not system, not the agent's own) are killed, read_only=ON, the sessions
 *            that connected meanwhile are killed, and once every killed session is gone the
 *            binlog position is read: it is final, since under read_only a session that had
 *            written before could still commit (MariaDB checks read_only per statement), and no
 *            session is left. With a grace (planned switchover) read_only comes first, bounded by
 *            the grace as lock_wait_timeout, and open transactions may commit during the grace.
 *   CATCHUP  wait (bounded) until gtid_current_pos contains a position: a switchover target
 *            applying the old primary's last transactions.
 *   PROMOTE  STOP SLAVE SQL_THREAD (local and instant: nothing relayed is applied any more),
 *            then, when `writable` is set: the applied position read (what it took over),
 *            the epoch recorded in haagent.heartbeat while read_only is still on and
 *            semi-sync still off (best effort; it cannot wait for an acknowledgement), then
 *            semi-sync on and SET GLOBAL read_only=OFF.
 *   DETACH   STOP SLAVE; RESET SLAVE ALL. Separate from PROMOTE because stopping an IO thread
 *            stuck on an unreachable old primary can take seconds: the new primary takes writes
 *            before that.
 *   STOP_IO  STOP SLAVE IO_THREAD: a replica waiting for a new primary keeps its relay log (the
 *            SQL thread applies it) and takes nothing more from the old primary.
 *   SALVAGE  this server's mariadbd is gone: apply what its local binlog holds that the target
 *            (a failover's candidate, still read-only) lacks (salvage.h). No local connection.
 *   REPOINT  replicate from target with MASTER_USE_GTID=current_pos, but only when the local GTID
 *            history is contained in the target's; otherwise report the node diverged with the
 *            errant set. A target that refuses our position (error 1236) also means diverged. */
#ifndef HA_ACTION_H
#define HA_ACTION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../common/err.h"
#include "../common/gtid.h"

enum ha_action_kind {
	HA_ACT_FENCE = 1,
	HA_ACT_PROMOTE = 2,
	HA_ACT_REPOINT = 3,
	HA_ACT_DETACH = 4,
	HA_ACT_CATCHUP = 5,
	HA_ACT_STOP_IO = 6,
	HA_ACT_SALVAGE = 7,
};

#define HA_ACTION_GTID_MAX HA_GTID_TEXT_MAX

struct ha_action_req {
	enum ha_action_kind kind;
	bool writable;                 /* PROMOTE: also make the server writable */
	uint64_t epoch;                /* PROMOTE: written to haagent.heartbeat */
	char node[64];                 /* PROMOTE: this node's name, for the heartbeat row */
	unsigned semi_sync_timeout_ms; /* PROMOTE: 0 leaves semi-sync alone, else enables it */
	char target_host[64];          /* REPOINT */
	unsigned target_port;
	unsigned grace_ms;             /* FENCE: drain time (0: kill at once) */
	char gtid[HA_ACTION_GTID_MAX]; /* CATCHUP: the position to reach */
	unsigned wait_ms;              /* CATCHUP: at most this long */
	bool start_sql;                /* CATCHUP: START SLAVE SQL_THREAD first (it was stopped) */
	bool kill_agent_sessions;      /* PROMOTE: end the agent user's sessions from target_host (a
	                                  salvage that outlived its deadline must not write on) */
	/* SALVAGE (with target_host/port and wait_ms, the deadline) */
	char binlog_index[4096]; /* this server's @@log_bin_index */
	char datadir[4096];      /* its @@datadir */
	char work_dir[4096];     /* private scratch */
};

struct ha_action_result {
	enum ha_action_kind kind;
	int rc;        /* 0 or a negative HA_E... code */
	char msg[512]; /* what was done, or why it failed */
	bool diverged; /* REPOINT: local history is not contained in the target's */
	char errant[HA_GTID_TEXT_MAX];
	/* REPOINT: the binlog states compared (node/rejoin.h judges a divergence on them) */
	char local_state[4096];
	char target_state[4096];
	uint32_t server_id;
	unsigned killed; /* FENCE: client sessions killed */
	/* FENCE: semi-sync as it was once no client was left, before it was disabled: enabled,
	 * and Rpl_semi_sync_master_no_times (fallbacks to asynchronous); read: both were read */
	bool semisync_read, semisync_enabled;
	uint64_t semisync_off_times;
	uint64_t epoch;                /* the request's epoch */
	char gtid[HA_ACTION_GTID_MAX]; /* FENCE: the final binlog position; CATCHUP: reached;
	                                  PROMOTE: applied before it turned writable */
	bool reached;                  /* CATCHUP: gtid_current_pos contains the position */
	bool made_writable;            /* PROMOTE: read_only is OFF now (gtid: the position then) */
	uint64_t salvaged_count;       /* SALVAGE: transactions applied (gtid: which) */
	bool salvage_complete;         /* SALVAGE: everything read was applied */
};

struct ha_action_conf {
	const char *host;
	unsigned port;
	const char *user, *password;
	const char *repl_user, *repl_password;
	unsigned timeout_ms;
};

struct ha_action;
typedef void (*ha_action_cb)(void *data, const struct ha_action_result *r);

int ha_action_start(uv_loop_t *loop, const struct ha_action_conf *conf, ha_action_cb cb, void *data,
                    struct ha_action **out, struct ha_err *e);
/* Queues req when idle; HA_EREFUSED while another action runs. Loop thread. */
int ha_action_submit(struct ha_action *a, const struct ha_action_req *req);
bool ha_action_busy(const struct ha_action *a);
/* Asks a running salvage to stop early (any thread); other actions are short and ignore it. */
void ha_action_cancel(struct ha_action *a);
/* As ha_probe_stop/ha_probe_join. */
void ha_action_stop(struct ha_action *a);
void ha_action_join(struct ha_action *a);

const char *ha_action_name(enum ha_action_kind k);

#endif
