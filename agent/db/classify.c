#include "classify.h"

#include <stdio.h>
#include <string.h>

/* MariaDB server error codes (include/mysqld_error.h), by number: this file stays free of
 * <mysql.h> so that the unit tests link it without the client library. */
enum {
	ER_CON_COUNT_ERROR = 1040,           /* too many connections */
	ER_DBACCESS_DENIED = 1044,           /* access denied to database */
	ER_ACCESS_DENIED = 1045,             /* access denied for user (wrong password) */
	ER_SERVER_SHUTDOWN = 1053,           /* server shutdown in progress */
	ER_HOST_IS_BLOCKED = 1129,           /* too many connection errors */
	ER_HOST_NOT_PRIVILEGED = 1130,       /* host not allowed to connect */
	ER_TABLEACCESS_DENIED = 1142,        /* command denied */
	ER_USER_LIMIT_REACHED = 1226,        /* max_user_connections, max_questions... */
	ER_SPECIFIC_ACCESS_DENIED = 1227,    /* privilege missing */
	ER_MUST_CHANGE_PASSWORD = 1820,      /* password reset required */
	ER_MUST_CHANGE_PASSWORD_LOGIN = 1862 /* password expired */
};

/* Client errors (errmsg.h) */
enum {
	CR_CONNECTION_ERROR = 2002,
	CR_CONN_HOST_ERROR = 2003,
	CR_SERVER_GONE_ERROR = 2006,
	CR_SERVER_LOST = 2013,
};

enum ha_db_state ha_db_classify(unsigned code, bool timed_out, enum ha_port_state port)
{
	bool client = code == CR_CONNECTION_ERROR || code == CR_CONN_HOST_ERROR ||
	              code == CR_SERVER_GONE_ERROR || code == CR_SERVER_LOST;
	/* Proof, and the only one: the client library could not reach the server, and a plain TCP
	 * connect to its port was refused right after. A server that answered with an error of
	 * its own exists, whatever the port check says next. */
	if (client && port == HA_PORT_REFUSED)
		return HA_DB_DOWN;
	if (port == HA_PORT_SILENT || timed_out)
		return HA_DB_HUNG;
	/* Everything else: the server answered with an error (login, limits, privileges, shutting
	 * down), or it closed the connection while something still listens, or the port check
	 * could not tell (no local port, an interrupted poll): not proof that it is gone. The
	 * replicas' view decides (docs/failover.md). */
	return HA_DB_UNUSABLE;
}

const char *ha_db_unusable_kind(unsigned code)
{
	switch (code) {
	case ER_ACCESS_DENIED:
	case ER_DBACCESS_DENIED:
	case ER_HOST_NOT_PRIVILEGED:
		return "login";
	case ER_CON_COUNT_ERROR:
	case ER_USER_LIMIT_REACHED:
	case ER_HOST_IS_BLOCKED:
		return "connection-limit";
	case ER_SPECIFIC_ACCESS_DENIED:
	case ER_TABLEACCESS_DENIED:
		return "privilege";
	case ER_MUST_CHANGE_PASSWORD:
	case ER_MUST_CHANGE_PASSWORD_LOGIN:
		return "password-expired";
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
		return "connection-lost";
	default:
		return "server-error";
	}
}

/* (declared in probe.h) */
const char *ha_db_state_name(enum ha_db_state s)
{
	switch (s) {
	case HA_DB_UP:
		return "up";
	case HA_DB_DOWN:
		return "down";
	case HA_DB_HUNG:
		return "hung";
	case HA_DB_UNUSABLE:
		return "unusable";
	default:
		return "unknown";
	}
}

void ha_db_secret_stmt_error(char *out, size_t size, const char *what, unsigned code,
                             const char *msg)
{
	/* ER_PARSE_ERROR 1064, ER_SYNTAX_ERROR 1149: "near '...'", the statement from there on */
	bool quotes = code == 1064 || code == 1149 || msg == NULL || strpbrk(msg, "'\"`") != NULL;
	if (quotes)
		snprintf(out, size,
		         "%s: error %u (the server's message is not shown: it may quote the "
		         "statement, which holds the password)",
		         what, code);
	else
		snprintf(out, size, "%s: %s (%u)", what, msg, code);
}
