/* What a failed probe means. Pure (no <mysql.h>): the codes are MariaDB's, passed as numbers, so
 * that the rule can be unit-tested and read in one place.
 *
 * Only proof that nothing listens on the server's port is DOWN (the client library could not
 * reach it and a plain TCP connect was refused); a failover may start on it. A
 * server that accepts connections but does not answer in time is HUNG. A server that answers
 * with an error (access denied, too many connections, a resource limit, a blocked host, a
 * missing privilege, an expired password, a server-side read-only file system or full disk...)
 * is UNUSABLE for the agent: it may well be serving its own clients, so that is no evidence of
 * failure, and the coordinator asks the replicas instead (docs/failover.md). */
#ifndef HA_DB_CLASSIFY_H
#define HA_DB_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "probe.h"

enum ha_port_state {
	HA_PORT_UNKNOWN = 0, /* not checked */
	HA_PORT_REFUSED = 1, /* connection refused: nothing listens */
	HA_PORT_OPEN = 2,    /* something accepted the TCP connection */
	HA_PORT_SILENT = 3,  /* the TCP connect itself timed out */
};

/* The state of a server whose connect or query failed with MariaDB error `code` (client errors
 * are >= 2000), after `timed_out` (the call ran into the probe timeout), with the port check's
 * result. */
enum ha_db_state ha_db_classify(unsigned code, bool timed_out, enum ha_port_state port);

/* A short stable word for the kind of an UNUSABLE error ("login", "connection-limit",
 * "privilege", "password-expired", "server-error"), for events and metrics. */
const char *ha_db_unusable_kind(unsigned code);

/* "WHAT: MESSAGE (CODE)" for a failed statement that carries a secret (CHANGE MASTER's
 * MASTER_PASSWORD), into out. The server's message is left out whenever it could quote the
 * statement: a syntax error ("near '...'") or any message with a quoted string in it, such as
 * 1470 "String '...' is too long for MASTER_PASSWORD", which quotes the password itself. */
void ha_db_secret_stmt_error(char *out, size_t size, const char *what, unsigned code,
                             const char *msg);

#endif
