/* Blocking connections for worker threads and haadm (never the event loop): every connection
 * has connect, read and write timeouts. Internal to agent/db: only this folder includes
 * <mysql.h>; other modules use the functions of db/check.h, db/tables.h and db/reclone.h. */
#ifndef HA_DB_CONN_H
#define HA_DB_CONN_H

#include <mysql.h>
#include <stddef.h>

#include "db.h"

/* Connects to w (db.h) with its timeouts; NULL with err set ("message (errno)": callers add
 * where) and, when errnum is not NULL, the client library's error number. */
MYSQL *ha_db_open(const struct ha_db_where *w, char *err, size_t err_size, unsigned *errnum);

/* Runs a statement and discards any result; 0, or -1 with err set. */
int ha_db_exec(MYSQL *m, const char *sql, char *err, size_t err_size);

/* The first column of the first row into out ("" for no row or NULL), whole: 0, or -1 with err
 * set (also when the value does not fit in size: it is never cut). */
int ha_db_query_one(MYSQL *m, const char *sql, char *out, size_t size, char *err, size_t err_size);

#endif
