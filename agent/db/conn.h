/* Blocking connections for worker threads and haadm (never the event loop): every connection
 * has connect, read and write timeouts. Internal to agent/db: only this folder includes
 * <mysql.h>; other modules use the functions of db/check.h, db/tables.h and db/reclone.h. */
#ifndef HA_DB_CONN_H
#define HA_DB_CONN_H

#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/gtid.h"
#include "db.h"

/* Connects to w (db.h) with its timeouts; NULL with err set ("message (errno)": callers add
 * where) and, when errnum is not NULL, the client library's error number. */
MYSQL *ha_db_open(const struct ha_db_where *w, char *err, size_t err_size, unsigned *errnum);

/* Appends s to b as a string literal for m's server, '...', escaped by mysql_real_escape_string:
 * it follows the session's sql_mode (under NO_BACKSLASH_ESCAPES it doubles quotes instead of
 * adding backslashes) and its character set. Out of memory: b is marked failed. Not for a
 * secret (b may leave copies behind when it grows): ha_db_escape_secret. */
void ha_db_quote(MYSQL *m, struct ha_buf *b, const char *s);

/* s escaped as ha_db_quote does (without the quotes), in a buffer of its own that the caller
 * wipes (ha_wipe, 2 * strlen(s) + 1 bytes) and frees; NULL when out of memory. */
char *ha_db_escape_secret(MYSQL *m, const char *s);

/* Runs a statement and discards any result; 0, or -1 with err set. */
int ha_db_exec(MYSQL *m, const char *sql, char *err, size_t err_size);

/* The first column of the first row into out ("" for no row or NULL), whole: 0, or -1 with err
 * set (also when the value does not fit in size: it is never cut). */
int ha_db_query_one(MYSQL *m, const char *sql, char *out, size_t size, char *err, size_t err_size);

/* One row of SHOW SLAVE STATUS (the default connection), the fields the agent uses. Texts are
 * copied whole or marked: a GTID position longer than HA_GTID_MAX_DOMAINS domains becomes a text
 * that does not parse (never a position with domains cut off); error texts may be shortened
 * (messages only). */
struct ha_slave_status {
	bool configured; /* a row exists */
	char master_host[256];
	unsigned master_port;
	char io_state[32]; /* Slave_IO_Running: Yes / No / Connecting */
	bool io_running, sql_running;
	char io_state_text[256]; /* Slave_IO_State ("Waiting for master to send event", ...) */
	int64_t lag_seconds;     /* Seconds_Behind_Master, -1 when NULL */
	unsigned io_errno;
	char io_error[512], sql_error[512];
	char sql_state[256]; /* Slave_SQL_Running_State */
	unsigned sql_delay;
	char gtid_io_pos[HA_GTID_TEXT_MAX];
	char master_log_file[512];
	uint64_t read_master_log_pos;
};

/* 0 with *out filled (out->configured false when replication is not configured), or -1 with
 * the server's error in m. */
int ha_db_slave_status(MYSQL *m, struct ha_slave_status *out);

#endif
