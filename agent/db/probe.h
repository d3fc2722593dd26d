/* Health probe of the local MariaDB server, on a dedicated worker thread.
 *
 * The loop thread never calls mysql_*: the worker connects, queries and publishes a sample under
 * a mutex, then wakes the loop with uv_async_send. Every call is bounded by connect, read and write
 * timeouts. Independently of those, ha_probe_latest() reports the database HUNG when a probe has
 * been in flight longer than probe_timeout_ms, so a stopped mariadbd is seen even while the worker
 * is still blocked in the client library.
 *
 * Only agent/db includes <mysql.h> (its .c files and the internal conn.h). */
#ifndef HA_PROBE_H
#define HA_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../common/err.h"
#include "../common/gtid.h"

#include "instance.h"

#define HA_GTID_STR_MAX HA_GTID_TEXT_MAX

/* What a probe found. Only DOWN is evidence that the server cannot serve its clients: nothing
 * listens on its port. HUNG: it accepts connections but does not answer in time. UNUSABLE: it
 * answers, but the agent cannot use it (its login refused, connection limits, missing privileges,
 * an expired password): the server may be serving its clients perfectly well. */
enum ha_db_state {
	HA_DB_UNKNOWN = 0,
	HA_DB_UP = 1,
	HA_DB_DOWN = 2,
	HA_DB_HUNG = 3,
	HA_DB_UNUSABLE = 4,
};

struct ha_probe_sample {
	enum ha_db_state db;
	bool read_only;
	char gtid_current[HA_GTID_STR_MAX];
	char gtid_slave[HA_GTID_STR_MAX];
	char gtid_binlog[HA_GTID_STR_MAX];
	bool replicating;
	char master_host[256];
	unsigned master_port;
	bool io_running, sql_running;
	char io_state[32];
	int64_t lag_seconds; /* -1 unknown */
	char last_error[512];
	char sql_error[512]; /* Last_SQL_Error alone */
	unsigned sql_delay;  /* SQL_Delay: MASTER_DELAY in seconds */
	/* The SQL thread has read all its relay log and the IO thread is not streaming: what this
	 * server has applied is all it can deliver (Gtid_IO_Pos may claim more: measured here, a
	 * replica whose master was killed reported 3 transactions its relay log never held) */
	bool relay_exhausted;
	char db_error[512];
	unsigned db_errno; /* the MariaDB error behind db_error, 0 when none */
	unsigned threads_running;
	double loadavg1;
	char version[64];
	unsigned server_id;
	unsigned probe_ms;
	bool semisync_master_enabled, semisync_master_active, semisync_slave_active;
	/* Rpl_semi_sync_master_no_times: how often semi-sync fell back to asynchronous (a
	 * replica's acknowledgement timed out: commits then return without one) since the server
	 * started; node/rejoin.h watches it */
	uint64_t semisync_off_times;
	uint64_t sampled_unix_ms;
	char gtid_io_pos[HA_GTID_STR_MAX];
	uint64_t master_rx_age_ms; /* since the last event or heartbeat from the master */
	uint64_t seq;              /* increments with every published sample */
	uint64_t started_ms; /* monotonic: when this probe began (it reflects no earlier state) */
	uint64_t uptime_s;   /* the server's Uptime: seconds since it started (db up) */
	bool uptime_known;   /* it was read (0 s is a server that just started) */
	/* where the binlog is (salvage after a crash reads it): "" when off, unknown, or longer
	 * than the buffer (never cut) */
	char binlog_index[4096];
	char datadir[4096];
	char instance[HA_INSTANCE_MAX]; /* the datadir's label (instance.h), "" unknown */
};

struct ha_probe_conf {
	const char *host;
	unsigned port;
	const char *user;
	const char *password;
	unsigned interval_ms;
	unsigned timeout_ms;
};

struct ha_probe;

typedef void (*ha_probe_cb)(void *data);

/* Starts the worker. cb runs on the loop thread after each new sample. The conf strings are
 * copied. Loop thread. */
int ha_probe_start(uv_loop_t *loop, const struct ha_probe_conf *conf, ha_probe_cb cb, void *data,
                   struct ha_probe **out, struct ha_err *e);

/* Asks for a probe now rather than at the next interval (after a change to the server, so that
 * the next sample shows it). A probe in flight finishes first. Loop thread. */
void ha_probe_now(struct ha_probe *p);

/* Copies the latest sample (db = HUNG when the current probe overran its timeout). Any thread. */
void ha_probe_latest(struct ha_probe *p, struct ha_probe_sample *out);

/* When the latest sample's probe began (monotonic ms). Any thread. */
uint64_t ha_probe_latest_started(struct ha_probe *p);

/* The database state of ha_probe_latest() without copying the sample. Any thread. */
enum ha_db_state ha_probe_db_state(struct ha_probe *p);

/* Asks the worker to stop and closes the async handle (loop thread). ha_probe_join() must be
 * called after the loop has finished: it joins the worker and frees everything. */
void ha_probe_stop(struct ha_probe *p);
void ha_probe_join(struct ha_probe *p);

const char *ha_db_state_name(enum ha_db_state s);

#endif
