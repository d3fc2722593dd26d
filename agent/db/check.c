#include "check.h"

#include "../common/quote.h"
#include "conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ha_check_add(struct ha_check_list *l, enum ha_check_level level, const char *what,
                  const char *fmt, ...)
{
	if (l->n >= HA_CHECK_MAX)
		return;
	struct ha_check *k = &l->c[l->n++];
	k->level = level;
	snprintf(k->what, sizeof(k->what), "%s", what);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(k->detail, sizeof(k->detail), fmt, ap);
	va_end(ap);
}

/* 'user'@'%' for a hint (text for the operator, not a statement run here): the user quoted as
 * SQL in the default sql_mode. In b, which the caller frees. */
static const char *account(struct ha_buf *b, const char *user)
{
	ha_buf_reset(b);
	ha_quote_sql_string(b, user);
	ha_buf_puts(b, "@'%'");
	return ha_buf_cstr(b);
}

static unsigned last_errno; /* of the last failed connect_db (CLI: one thread) */

static MYSQL *connect_db(const char *host, unsigned port, const char *user, const char *password,
                         unsigned timeout_ms, char *err, size_t err_size)
{
	struct ha_db_where w = {.host = host,
	                        .port = port,
	                        .user = user,
	                        .password = password,
	                        .timeout_ms = timeout_ms};
	return ha_db_open(&w, err, err_size, &last_errno);
}

/* The first column of each row, joined with ',' and framed by ',' (",A,B,"), whole, in out
 * (the caller frees it); -1 on a server error or when out of memory. */
static int query_list(MYSQL *m, const char *sql, struct ha_buf *out)
{
	ha_buf_reset(out);
	if (mysql_real_query(m, sql, (unsigned long)strlen(sql)) != 0)
		return -1;
	MYSQL_RES *res = mysql_store_result(m);
	MYSQL_ROW row;
	while (res && (row = mysql_fetch_row(res)) != NULL)
		if (row[0])
			ha_buf_printf(out, ",%s", row[0]);
	if (res)
		mysql_free_result(res);
	ha_buf_puts(out, ",");
	return ha_buf_failed(out) ? -1 : 0;
}

static bool has(const char *list, const char *priv)
{
	char needle[64];
	snprintf(needle, sizeof(needle), ",%s,", priv);
	return strstr(list, needle) != NULL;
}

/* What the agent does, and the global privileges that allow it (any one of them). */
static const struct need {
	const char *does;
	const char *privs[3];
} needs[] = {
    {"set read_only (fence, promote)", {"READ_ONLY ADMIN", "SUPER", NULL}},
    {"kill client sessions (fence)", {"CONNECTION ADMIN", "SUPER", NULL}},
    {"see every session and open transaction", {"PROCESS", NULL, NULL}},
    {"stop/start replication, CHANGE MASTER", {"REPLICATION SLAVE ADMIN", "SUPER", NULL}},
    {"read SHOW SLAVE STATUS", {"SLAVE MONITOR", "SUPER", NULL}},
    {"set the semi-sync master variables", {"REPLICATION MASTER ADMIN", "SUPER", NULL}},
    {"create haagent.heartbeat", {"CREATE", NULL, NULL}},
    {"write haagent.heartbeat (REPLACE)", {"INSERT", NULL, NULL}},
    {"write haagent.heartbeat (REPLACE)", {"DELETE", NULL, NULL}},
};

static void check_privileges(MYSQL *m, const char *user, struct ha_check_list *out)
{
	struct ha_buf gb = HA_BUF_INIT, sb = HA_BUF_INIT;
	const char *gq =
	    "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = "
	    "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
	    "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
	const char *sq =
	    "SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = "
	    "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
	    "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') AND TABLE_SCHEMA = 'haagent'";
	if (query_list(m, gq, &gb) != 0 || query_list(m, sq, &sb) != 0) {
		ha_check_add(out, HA_CHECK_FAIL, "privileges", "cannot read them: %s",
		             mysql_errno(m) ? mysql_error(m) : "out of memory");
		ha_buf_free(&gb);
		ha_buf_free(&sb);
		return;
	}
	const char *global = ha_buf_cstr(&gb), *schema = ha_buf_cstr(&sb);
	char missing[512] = "", grant[512] = "";
	size_t ml = 0, gl = 0;
	for (size_t i = 0; i < sizeof(needs) / sizeof(needs[0]); i++) {
		const struct need *nd = &needs[i];
		bool ok = false;
		for (int k = 0; k < 3 && nd->privs[k] && !ok; k++)
			ok = has(global, nd->privs[k]) ||
			     (i >= 6 && has(schema, nd->privs[k])); /* heartbeat: on haagent.* */
		if (ok || strstr(missing, nd->does))
			continue;
		ml += (size_t)snprintf(missing + ml, sizeof(missing) - ml, "%s%s", ml ? "; " : "",
		                       nd->does);
		gl += (size_t)snprintf(grant + gl, sizeof(grant) - gl, "%s%s", gl ? ", " : "",
		                       nd->privs[0]);
		if (ml >= sizeof(missing) || gl >= sizeof(grant))
			break;
	}
	struct ha_buf who = HA_BUF_INIT;
	if (missing[0])
		ha_check_add(out, HA_CHECK_FAIL, "agent user privileges",
		             "missing for: %s. HINT: GRANT %s ON *.* TO %s", missing, grant,
		             account(&who, user));
	else
		ha_check_add(out, HA_CHECK_OK, "agent user privileges",
		             "everything the agent uses");
	ha_buf_free(&who);
	ha_buf_free(&gb);
	ha_buf_free(&sb);
}

static const char *const backup_privs[][2] = {
    {"RELOAD", NULL}, {"PROCESS", NULL}, {"BINLOG MONITOR", "SUPER"}};

/* Salvage replays another server's binlog on a read-only server: row events (BINLOG), their
 * original server id and GTID, and the data itself (global grants; schema grants are not
 * followed here, so the check can only warn). */
static const char *const salvage_privs[][2] = {{"BINLOG REPLAY", "SUPER"},
                                               {"READ_ONLY ADMIN", NULL},
                                               {"INSERT", NULL},
                                               {"UPDATE", NULL},
                                               {"DELETE", NULL}};

static int privs_missing(MYSQL *m, const char *const (*privs)[2], size_t n, char *missing,
                         size_t size);

static void check_salvage(MYSQL *m, const char *user, struct ha_check_list *out)
{
	char missing[256];
	int rc = privs_missing(m, salvage_privs, sizeof(salvage_privs) / sizeof(salvage_privs[0]),
	                       missing, sizeof(missing));
	if (rc == 0)
		ha_check_add(out, HA_CHECK_OK, "salvage privileges",
		             "BINLOG REPLAY, READ_ONLY ADMIN and data privileges (salvage from a "
		             "crashed primary's binlog)");
	else {
		struct ha_buf who = HA_BUF_INIT;
		ha_check_add(out, HA_CHECK_WARN, "salvage privileges",
		             "%s%s: a salvage from a crashed primary's binlog would fail (the rest "
		             "of failover works). HINT: GRANT ALL ON *.* TO %s, or set "
		             "[failover] salvage = no",
		             rc > 0 ? "missing globally: " : "", missing, account(&who, user));
		ha_buf_free(&who);
	}
}

static int backup_missing(MYSQL *m, char *missing, size_t size)
{
	return privs_missing(m, backup_privs, sizeof(backup_privs) / sizeof(backup_privs[0]),
	                     missing, size);
}

static int privs_missing(MYSQL *m, const char *const (*privs)[2], size_t n, char *missing,
                         size_t size)
{
	struct ha_buf gb = HA_BUF_INIT;
	const char *gq =
	    "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = "
	    "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
	    "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
	missing[0] = '\0';
	if (query_list(m, gq, &gb) != 0) {
		snprintf(missing, size, "cannot read privileges: %s",
		         mysql_errno(m) ? mysql_error(m) : "out of memory");
		ha_buf_free(&gb);
		return -1;
	}
	const char *global = ha_buf_cstr(&gb);
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		bool ok = has(global, privs[i][0]) || (privs[i][1] && has(global, privs[i][1]));
		if (!ok && len < size)
			len += (size_t)snprintf(missing + len, size - len, "%s%s", len ? ", " : "",
			                        privs[i][0]);
	}
	ha_buf_free(&gb);
	return len ? 1 : 0;
}

int ha_db_backup_privileges(const char *host, unsigned port, const char *user, const char *password,
                            unsigned timeout_ms, char *missing, size_t size)
{
	char err[512];
	MYSQL *m = connect_db(host, port, user, password, timeout_ms, err, sizeof(err));
	if (m == NULL) {
		snprintf(missing, size, "cannot connect to check privileges: %s", err);
		return -1;
	}
	int rc = backup_missing(m, missing, size);
	mysql_close(m);
	return rc;
}

static void check_settings(MYSQL *m, struct ha_check_list *out)
{
	const char *sql = "SELECT @@log_bin, @@log_slave_updates, @@gtid_strict_mode, @@read_only, "
	                  "@@server_id, @@version";
	if (mysql_real_query(m, sql, (unsigned long)strlen(sql)) != 0) {
		ha_check_add(out, HA_CHECK_FAIL, "server settings", "cannot read them: %s",
		             mysql_error(m));
		return;
	}
	MYSQL_RES *res = mysql_store_result(m);
	MYSQL_ROW r = res ? mysql_fetch_row(res) : NULL;
	if (r == NULL || !r[0] || !r[1] || !r[2] || !r[3] || !r[4] || !r[5]) {
		ha_check_add(out, HA_CHECK_FAIL, "server settings", "unexpected answer");
	} else {
		ha_check_add(out, strcmp(r[0], "1") ? HA_CHECK_FAIL : HA_CHECK_OK, "log_bin", "%s",
		             strcmp(r[0], "1") ? "OFF: a replica without a binary log cannot "
		                                 "be promoted. HINT: log-bin in my.cnf"
		                               : "ON");
		ha_check_add(out, strcmp(r[1], "1") ? HA_CHECK_FAIL : HA_CHECK_OK,
		             "log_slave_updates", "%s",
		             strcmp(r[1], "1") ? "OFF: a promoted replica would lack the "
		                                 "transactions it replicated. HINT: "
		                                 "log-slave-updates in my.cnf"
		                               : "ON");
		ha_check_add(out, strcmp(r[2], "1") ? HA_CHECK_WARN : HA_CHECK_OK,
		             "gtid_strict_mode", "%s",
		             strcmp(r[2], "1") ? "OFF: divergence is detected later. HINT: "
		                                 "gtid-strict-mode in my.cnf"
		                               : "ON");
		ha_check_add(out, HA_CHECK_OK, "server", "MariaDB %s, server_id %s, read_only %s",
		             r[5], r[4], strcmp(r[3], "1") ? "OFF" : "ON");
	}
	if (res)
		mysql_free_result(res);
}

/* Long on purpose: `haadm config check`'s checks one after another, in the order it prints
 * them. */
void ha_db_check(const struct ha_config *c, unsigned timeout_ms, struct ha_check_list *out)
{
	const struct ha_node_conf *self = &c->nodes[c->self];
	char err[512], what[96];
	struct ha_buf who = HA_BUF_INIT;
	MYSQL *m = connect_db(self->address, self->db_port, c->db_user, c->db_password, timeout_ms,
	                      err, sizeof(err));
	snprintf(what, sizeof(what), "connect %s:%u as %s", self->address, self->db_port,
	         c->db_user);
	if (m == NULL) {
		ha_check_add(out, HA_CHECK_FAIL, what,
		             "%s. HINT: is mariadbd running and listening on %s? CREATE USER %s "
		             "IDENTIFIED BY '...' and put the password in db_password_file",
		             err, self->address, account(&who, c->db_user));
	} else {
		ha_check_add(out, HA_CHECK_OK, what, "connected");
		check_privileges(m, c->db_user, out);
		if (c->salvage)
			check_salvage(m, c->db_user, out);
		if (c->n_repos) {
			char missing[256];
			int rc = backup_missing(m, missing, sizeof(missing));
			if (rc == 0)
				ha_check_add(out, HA_CHECK_OK, "backup privileges",
				             "RELOAD, PROCESS, BINLOG MONITOR (mariadb-backup)");
			else
				ha_check_add(
				    out, HA_CHECK_FAIL, "backup privileges",
				    "%s%s. HINT: GRANT %s ON *.* TO %s (mariadb-backup "
				    "needs them; without BINLOG MONITOR it fails at the very end)",
				    rc > 0 ? "missing: " : "", missing,
				    rc > 0 ? missing
				           : "RELOAD, "
				             "PROCESS, BINLOG MONITOR",
				    account(&who, c->db_user));
		}
		check_settings(m, out);
		mysql_close(m);
	}
	/* the replication user, as replicas will connect with it */
	snprintf(what, sizeof(what), "connect %s:%u as %s (replication)", self->address,
	         self->db_port, c->repl_user);
	MYSQL *r = connect_db(self->address, self->db_port, c->repl_user, c->repl_password,
	                      timeout_ms, err, sizeof(err));
	if (r == NULL) {
		const char *repl = account(&who, c->repl_user);
		ha_check_add(out, HA_CHECK_FAIL, what,
		             "%s. HINT: CREATE USER %s IDENTIFIED BY '...'; GRANT REPLICATION "
		             "SLAVE ON *.* TO %s",
		             err, repl, repl);
	} else {
		struct ha_buf privs = HA_BUF_INIT;
		const char *q =
		    "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = "
		    "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
		    "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
		bool ok =
		    query_list(r, q, &privs) == 0 && has(ha_buf_cstr(&privs), "REPLICATION SLAVE");
		ha_buf_free(&privs);
		ha_check_add(out, ok ? HA_CHECK_OK : HA_CHECK_FAIL, what, "%s",
		             ok ? "connected, has REPLICATION SLAVE"
		                : "connected but lacks REPLICATION SLAVE. HINT: GRANT REPLICATION "
		                  "SLAVE ON *.* TO the replication user");
		mysql_close(r);
	}
	/* every other node's database, with the agent's credentials */
	for (unsigned i = 0; i < c->n_nodes; i++) {
		const struct ha_node_conf *n = &c->nodes[i];
		if ((int)i == c->self)
			continue;
		snprintf(what, sizeof(what), "reach %s's database %s:%u", n->name, n->address,
		         n->db_port);
		MYSQL *o = connect_db(n->address, n->db_port, c->db_user, c->db_password,
		                      timeout_ms, err, sizeof(err));
		if (o) {
			mysql_close(o);
			ha_check_add(out, HA_CHECK_OK, what, "connected");
		} else if (last_errno == 1045 || last_errno == 1044) {
			ha_check_add(
			    out, HA_CHECK_FAIL, what,
			    "%s: the agent's user must exist with the same password on every "
			    "node (this node reads a new primary's position before "
			    "repointing to it)",
			    err);
		} else {
			ha_check_add(
			    out, HA_CHECK_WARN, what,
			    "%s (needed when this node repoints to it; fine if that node is "
			    "down right now)",
			    err);
		}
	}
	ha_buf_free(&who);
}
