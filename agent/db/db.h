/* Short blocking database calls for haadm and worker threads (never the event loop), each
 * bounded by timeouts. The other public headers of this folder (check.h, tables.h, reclone.h)
 * build on these; none of them exposes <mysql.h>. */
#ifndef HA_DB_DB_H
#define HA_DB_DB_H

#include <stddef.h>

/* A server, by TCP address or by unix socket (socket set: host and port unused). */
struct ha_db_where {
	const char *host;
	unsigned port;
	const char *socket;
	const char *user;
	const char *password;
	unsigned timeout_ms;   /* connect and write */
	unsigned statement_ms; /* the longest one statement may take (0: timeout_ms) */
};

/* 0 when the server answers (a connect and a ping), else -1. */
int ha_db_ping(const struct ha_db_where *w);

/* The value of one expression (SELECT expr): 0 with out set ("" for NULL), or HA_EDB with why
 * ("connect: ..." or the server's error). */
int ha_db_read(const struct ha_db_where *w, const char *expr, char *out, size_t size, char *why,
               size_t why_size);

#endif
