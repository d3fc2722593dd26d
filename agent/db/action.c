#include "action.h"

#include <errmsg.h>
#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/gtid.h"
#include "../common/log.h"
#include "../common/secret.h"
#include "classify.h"
#include "conn.h"
#include "salvage.h"

struct ha_action {
	uv_async_t async;
	ha_action_cb cb;
	void *cb_data;
	pthread_t thread;
	bool started;
	char host[64], user[128], password[256], repl_user[128], repl_password[256];
	unsigned port, timeout_ms;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	atomic_bool cancel; /* any thread: a long action (salvage) stops early */
	bool busy;          /* loop side: a request is queued or running */
	bool have_req;      /* under mu */
	bool have_result;   /* under mu */
	struct ha_action_req req;
	struct ha_action_result result;
};

/* ---- worker ---- */

/* extra_ms: added to the read timeout, for a statement that may wait that long on purpose */
static MYSQL *open_conn(struct ha_action *a, const char *host, unsigned port, unsigned extra_ms,
                        char *err, size_t err_size)
{
	struct ha_db_where w = {.host = host,
	                        .port = port,
	                        .user = a->user,
	                        .password = a->password,
	                        .timeout_ms = a->timeout_ms,
	                        .statement_ms = a->timeout_ms + extra_ms};
	char why[400];
	MYSQL *m = ha_db_open(&w, why, sizeof(why), NULL);
	if (m == NULL)
		snprintf(err, err_size, "connect %s:%u: %s", host, port, why);
	return m;
}

static int exec(MYSQL *m, const char *sql, struct ha_action_result *r)
{
	return ha_db_exec(m, sql, r->msg, sizeof(r->msg)) == 0 ? 0 : HA_EDB;
}

/* First column of the first row into out; 0 or HA_EDB. */
static int query_one(MYSQL *m, const char *sql, char *out, size_t size, struct ha_action_result *r)
{
	return ha_db_query_one(m, sql, out, size, r->msg, sizeof(r->msg)) == 0 ? 0 : HA_EDB;
}

#define MAX_SESSIONS 4096
/* ER_MASTER_INFO: "Could not initialize master info structure" */
#define ER_MASTER_INFO_CODE 1201

/* The client sessions: not replication, not system threads, not the agent's own user nor the
 * replication user (both quoted for this server). */
static void clients_where(struct ha_action *a, MYSQL *m, struct ha_buf *b)
{
	ha_buf_puts(b, "ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler', ");
	ha_db_quote(m, b, a->user);
	ha_buf_puts(b, ", ");
	ha_db_quote(m, b, a->repl_user);
	ha_buf_puts(b, ") AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', "
	               "'Slave_IO', 'Slave_SQL', 'Slave_worker')");
}

/* Runs sql built in b (freed); -1 when it could not be built (out of memory) or failed. */
static int query_built(MYSQL *m, struct ha_buf *b)
{
	int rc = ha_buf_failed(b) ? -1 : mysql_real_query(m, b->data, (unsigned long)b->len);
	ha_buf_free(b);
	return rc != 0 ? -1 : 0;
}

/* Ids of client sessions; -1 when the list cannot be read. */
static int list_clients(struct ha_action *a, MYSQL *m, unsigned long *ids, unsigned max)
{
	struct ha_buf sql = HA_BUF_INIT;
	ha_buf_puts(&sql, "SELECT ID FROM information_schema.PROCESSLIST WHERE ");
	clients_where(a, m, &sql);
	if (query_built(m, &sql) != 0)
		return -1;
	MYSQL_RES *res = mysql_store_result(m);
	unsigned n = 0;
	MYSQL_ROW row;
	while (res && (row = mysql_fetch_row(res)) != NULL && n < max)
		if (row[0])
			ids[n++] = strtoul(row[0], NULL, 10);
	if (res)
		mysql_free_result(res);
	return (int)n;
}

/* Kills client sessions; adds their ids to ids[*n] (up to max); returns how many it killed. */
static unsigned kill_clients(struct ha_action *a, MYSQL *m, unsigned long *ids, unsigned *n,
                             unsigned max, struct ha_action_result *r)
{
	unsigned long found[MAX_SESSIONS];
	int k = list_clients(a, m, found, MAX_SESSIONS);
	if (k < 0) {
		snprintf(r->msg, sizeof(r->msg), "list sessions: %s", mysql_error(m));
		return 0;
	}
	unsigned killed = 0;
	char sql[64];
	for (int i = 0; i < k; i++) {
		snprintf(sql, sizeof(sql), "KILL CONNECTION %lu", found[i]);
		if (mysql_real_query(m, sql, (unsigned long)strlen(sql)) == 0)
			killed++; /* a session that ended meanwhile is not an error */
		if (*n < max)
			ids[(*n)++] = found[i];
	}
	return killed;
}

/* Waits (bounded) until none of ids[] is still a session: a killed session may be in the middle
 * of a commit, which it finishes before it goes. Returns how many are left. */
static unsigned wait_gone(struct ha_action *a, MYSQL *m, const unsigned long *ids, unsigned n,
                          unsigned wait_ms)
{
	uint64_t deadline = ha_now_ms() + wait_ms;
	for (;;) {
		unsigned long now[MAX_SESSIONS];
		int k = list_clients(a, m, now, MAX_SESSIONS);
		unsigned left = 0;
		for (int i = 0; i < k; i++)
			for (unsigned j = 0; j < n; j++)
				if (now[i] == ids[j]) {
					left++;
					break;
				}
		if (k < 0)
			left = n;
		if (left == 0 || ha_now_ms() >= deadline)
			return left;
		usleep(5 * 1000);
	}
}

/* Client transactions that wrote and have not committed yet. -1 when unknown. */
static int open_writers(struct ha_action *a, MYSQL *m)
{
	struct ha_buf sql = HA_BUF_INIT;
	ha_buf_puts(&sql, "SELECT COUNT(*) FROM information_schema.INNODB_TRX t JOIN "
	                  "information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE "
	                  "t.trx_rows_modified > 0 AND p.ID <> CONNECTION_ID() AND p.USER NOT IN "
	                  "('system user', ");
	ha_db_quote(m, &sql, a->user);
	ha_buf_puts(&sql, ", ");
	ha_db_quote(m, &sql, a->repl_user);
	ha_buf_puts(&sql, ")");
	char out[32];
	struct ha_action_result scratch;
	int rc =
	    ha_buf_failed(&sql) ? -1 : query_one(m, ha_buf_cstr(&sql), out, sizeof(out), &scratch);
	ha_buf_free(&sql);
	return rc != 0 ? -1 : atoi(out);
}

/* Sessions go first: a commit waiting for a semi-sync acknowledgement holds up
 * SET GLOBAL read_only until the semi-sync timeout, and when that expires the commit is
 * acknowledged asynchronously. Killed while waiting, it is never acknowledged. Then read_only,
 * then whoever connected in between. */
static int do_fence(struct ha_action *a, const struct ha_action_req *q, MYSQL *m,
                    struct ha_action_result *r)
{
	unsigned long ids[MAX_SESSIONS];
	unsigned n = 0;
	int rc;
	char sql[128], drained[128] = "";
	bool read_only = false;
	if (q->grace_ms) {
		/* Planned: read_only first. It waits for running writes and commits, at most the
		 * grace (a commit stuck on semi-sync would otherwise hold it for the semi-sync
		 * timeout); then transactions that already wrote may still commit, for the rest of
		 * the grace. */
		uint64_t t0 = ha_now_ms();
		snprintf(sql, sizeof(sql), "SET SESSION lock_wait_timeout=%u",
		         (q->grace_ms + 999) / 1000);
		if ((rc = exec(m, sql, r)))
			return rc;
		if (exec(m, "SET GLOBAL read_only=ON", r) == 0) {
			read_only = true;
			int w;
			while ((w = open_writers(a, m)) > 0 && ha_now_ms() - t0 < q->grace_ms)
				usleep(10 * 1000);
			snprintf(drained, sizeof(drained), "; drained %llu ms%s",
			         (unsigned long long)(ha_now_ms() - t0),
			         w > 0 ? ", open transactions left" : "");
		} else if (mysql_errno(m) != 1205 /* ER_LOCK_WAIT_TIMEOUT */) {
			return HA_EDB;
		}
	}
	r->killed = kill_clients(a, m, ids, &n, MAX_SESSIONS, r);
	if (!read_only && (rc = exec(m, "SET GLOBAL read_only=ON", r)))
		return rc;
	r->killed += kill_clients(a, m, ids, &n, MAX_SESSIONS, r);
	unsigned left = wait_gone(a, m, ids, n, 2000);
	if (left) {
		snprintf(r->msg, sizeof(r->msg),
		         "read_only=ON but %u killed sessions have not ended yet", left);
		return HA_ETIMEOUT;
	}
	/* whether semi-sync fell back to asynchronous since the last sample (a commit acknowledged
	 * without a replica: node/rejoin.h), read before disabling it counts a switch-off too */
	char en[8], off[24], ignored[256];
	r->semisync_read =
	    ha_db_query_one(m, "SELECT @@global.rpl_semi_sync_master_enabled", en, sizeof(en),
	                    ignored, sizeof(ignored)) == 0 &&
	    ha_db_query_one(m,
	                    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE "
	                    "VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_NO_TIMES'",
	                    off, sizeof(off), ignored, sizeof(ignored)) == 0;
	r->semisync_enabled = r->semisync_read && atoi(en) != 0;
	r->semisync_off_times = r->semisync_read ? strtoull(off, NULL, 10) : 0;
	/* no writer is left waiting for an acknowledgement: semi-sync can go (a server that is not
	 * the primary must not wait for replicas, e.g. at shutdown) */
	if ((rc = exec(m, "SET GLOBAL rpl_semi_sync_master_enabled=OFF", r)) ||
	    (rc = query_one(m, "SELECT @@global.gtid_binlog_pos", r->gtid, sizeof(r->gtid), r)))
		return rc;
	char brief[HA_GTID_BRIEF_MAX];
	snprintf(r->msg, sizeof(r->msg), "read_only=ON, %u client sessions killed%s; binlog at %s",
	         r->killed, drained, r->gtid[0] ? ha_gtid_brief(r->gtid, brief) : "(empty)");
	return 0;
}

static int do_catchup(const struct ha_action_req *q, MYSQL *m, struct ha_action_result *r)
{
	struct ha_gtid_pos want, cur;
	struct ha_err ge = {0};
	char b1[HA_GTID_BRIEF_MAX], b2[HA_GTID_BRIEF_MAX];
	if (ha_gtid_parse(q->gtid, &want, &ge)) {
		snprintf(r->msg, sizeof(r->msg), "bad position %s: %s", q->gtid, ge.msg);
		return HA_EINVAL;
	}
	if (q->start_sql) {
		int rc = exec(m, "START SLAVE SQL_THREAD", r);
		if (rc)
			return rc;
	}
	uint64_t deadline = ha_now_ms() + q->wait_ms;
	for (;;) {
		int rc =
		    query_one(m, "SELECT @@global.gtid_current_pos", r->gtid, sizeof(r->gtid), r);
		if (rc)
			return rc;
		if (ha_gtid_parse(r->gtid, &cur, &ge) == 0 && ha_gtid_contains(&cur, &want)) {
			r->reached = true;
			snprintf(r->msg, sizeof(r->msg), "applied up to %s",
			         ha_gtid_brief(q->gtid, b1));
			return 0;
		}
		if (ha_now_ms() >= deadline)
			break;
		usleep(5 * 1000);
	}
	snprintf(r->msg, sizeof(r->msg), "not yet at %s after %u ms (at %s)",
	         ha_gtid_brief(q->gtid, b1), q->wait_ms, ha_gtid_brief(r->gtid, b2));
	return 0;
}

/* Ends the agent user's sessions that come from `from` (the old primary's address) and waits
 * (bounded) until they are gone: a salvage from the old primary's binlog that outlived its
 * deadline is such a session, and it must not write once this server takes writes (its open
 * transaction rolls back). This node's own agent, its backups and the other agents connect
 * from elsewhere and are left alone. */
static void end_agent_sessions(struct ha_action *a, MYSQL *m, const char *from)
{
	struct ha_buf sql = HA_BUF_INIT;
	ha_buf_puts(&sql,
	            "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
	            "AND USER = ");
	ha_db_quote(m, &sql, a->user);
	ha_buf_puts(&sql, " AND SUBSTRING_INDEX(HOST, ':', 1) = ");
	ha_db_quote(m, &sql, from);
	ha_buf_puts(&sql, " AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID')");
	for (int round = 0; round < 50 && !ha_buf_failed(&sql); round++) {
		if (mysql_real_query(m, sql.data, (unsigned long)sql.len) != 0)
			break;
		MYSQL_RES *res = mysql_store_result(m);
		unsigned long ids[64];
		unsigned n = 0;
		MYSQL_ROW row;
		while (res && (row = mysql_fetch_row(res)) != NULL && n < 64)
			if (row[0])
				ids[n++] = strtoul(row[0], NULL, 10);
		if (res)
			mysql_free_result(res);
		if (n == 0)
			break;
		char k[64];
		for (unsigned i = 0; i < n; i++) {
			snprintf(k, sizeof(k), "KILL CONNECTION %lu", ids[i]);
			mysql_real_query(m, k, (unsigned long)strlen(k)); /* gone meanwhile: fine */
		}
		usleep(20 * 1000);
	}
	ha_buf_free(&sql);
}

static int do_promote(struct ha_action *a, const struct ha_action_req *q, MYSQL *m,
                      struct ha_action_result *r)
{
	int rc;
	if ((rc = exec(m, "STOP SLAVE SQL_THREAD", r)))
		return rc;
	if (!q->writable) {
		snprintf(r->msg, sizeof(r->msg), "SQL thread stopped; waiting for the write lease");
		return 0;
	}
	if (q->kill_agent_sessions && q->target_host[0])
		end_agent_sessions(a, m, q->target_host);
	/* what this server has, applied, before any write of its own: what it took over (the
	 * failover's lost set is counted against it, not against later writes) */
	if ((rc = query_one(m, "SELECT @@global.gtid_current_pos", r->gtid, sizeof(r->gtid), r)))
		return rc;
	char sql[512];
	/* The epoch goes into a heartbeat table, so that writes can be attributed to an epoch;
	 * first, while read_only is still on (the agent's user may write through it) and before
	 * semi-sync is on: the write cannot wait for an acknowledgement from replicas that follow
	 * this server only once it is writable. Best effort: reported, not failed. */
	char have[8] = "";
	struct ha_action_result hb = {0};
	int hrc = query_one(m,
	                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
	                    "TABLE_SCHEMA='haagent' AND TABLE_NAME='heartbeat'",
	                    have, sizeof(have), &hb);
	if (hrc == 0 && strcmp(have, "1") != 0)
		hrc = exec(m, "CREATE DATABASE IF NOT EXISTS haagent", &hb);
	if (hrc == 0 && strcmp(have, "1") != 0)
		hrc = exec(m,
		           "CREATE TABLE IF NOT EXISTS haagent.heartbeat (id TINYINT PRIMARY KEY, "
		           "epoch BIGINT UNSIGNED NOT NULL, node VARCHAR(64) NOT NULL, "
		           "ts TIMESTAMP(3) NOT NULL)",
		           &hb);
	struct ha_buf row = HA_BUF_INIT;
	ha_buf_printf(&row, "REPLACE INTO haagent.heartbeat VALUES (1, %llu, ",
	              (unsigned long long)q->epoch);
	ha_db_quote(m, &row, q->node);
	ha_buf_puts(&row, ", NOW(3))");
	if (hrc == 0 && ha_buf_failed(&row)) {
		snprintf(hb.msg, sizeof(hb.msg), "out of memory");
		hrc = HA_EDB;
	}
	if (hrc == 0)
		hrc = exec(m, ha_buf_cstr(&row), &hb);
	ha_buf_free(&row);
	/* Semi-sync on the primary only, with a timeout longer than the write lease: an isolated
	 * primary fences itself while its writers still wait, instead of falling back to
	 * asynchronous replication and acknowledging writes no replica has. */
	if (q->semi_sync_timeout_ms) {
		snprintf(
		    sql, sizeof(sql),
		    "SET GLOBAL rpl_semi_sync_master_timeout=%u, rpl_semi_sync_master_enabled=ON",
		    q->semi_sync_timeout_ms);
		if ((rc = exec(m, sql, r)))
			return rc;
	}
	if ((rc = exec(m, "SET GLOBAL read_only=OFF", r)))
		return rc;
	r->made_writable = true;
	snprintf(r->msg, sizeof(r->msg), "writable at epoch %llu%s%.400s",
	         (unsigned long long)q->epoch, hrc ? "; heartbeat not written: " : "",
	         hrc ? hb.msg : "");
	return 0;
}

/* Reads this server's gtid_current_pos into local and the target's gtid_binlog_pos; *diverged
 * (with r->errant and r->msg) when this server has transactions the target lacks. */
static int compare_with_target(struct ha_action *a, const struct ha_action_req *q, MYSQL *m,
                               char *local, size_t local_size, bool *diverged,
                               struct ha_action_result *r)
{
	char remote[HA_GTID_MAX_DOMAINS * 48], err[256];
	int rc;
	*diverged = false;
	char sid[16], ignored[256];
	if ((rc = query_one(m, "SELECT @@global.gtid_current_pos", local, local_size, r)))
		return rc;
	/* the binlog states, for node/rejoin.h to judge a divergence on; one that does not fit
	 * stays "" (the judge then says it cannot compare them): never a reason to fail here */
	if (ha_db_query_one(m, "SELECT @@global.gtid_binlog_state", r->local_state,
	                    sizeof(r->local_state), ignored, sizeof(ignored)) != 0)
		r->local_state[0] = '\0';
	if (ha_db_query_one(m, "SELECT @@global.server_id", sid, sizeof(sid), ignored,
	                    sizeof(ignored)) == 0)
		r->server_id = (uint32_t)strtoul(sid, NULL, 10);
	MYSQL *t = open_conn(a, q->target_host, q->target_port, 0, err, sizeof(err));
	if (t == NULL) {
		snprintf(r->msg, sizeof(r->msg), "new primary: %s", err);
		return HA_EDB;
	}
	rc = query_one(t, "SELECT @@global.gtid_binlog_pos", remote, sizeof(remote), r);
	if (rc == 0 && ha_db_query_one(t, "SELECT @@global.gtid_binlog_state", r->target_state,
	                               sizeof(r->target_state), ignored, sizeof(ignored)) != 0)
		r->target_state[0] = '\0';
	mysql_close(t);
	if (rc)
		return rc;
	struct ha_gtid_pos lp, rp, miss;
	struct ha_err ge = {0};
	if (ha_gtid_parse(local, &lp, &ge) || ha_gtid_parse(remote, &rp, &ge)) {
		snprintf(r->msg, sizeof(r->msg), "gtid: %s", ge.msg);
		return HA_EDB;
	}
	if (ha_gtid_missing_from(&lp, &rp, &miss, NULL) > 0) {
		*diverged = true;
		r->diverged = true;
		ha_gtid_format(&miss, r->errant, sizeof(r->errant));
		snprintf(r->msg, sizeof(r->msg), "diverged: local %s has %s that %s:%u lacks",
		         local, r->errant, q->target_host, q->target_port);
	}
	return 0;
}

/* The CHANGE MASTER statement to q's target, every string escaped for m's server; in a buffer
 * of its own (it carries the password) that the caller wipes and frees: *size bytes. NULL when
 * out of memory. */
static char *change_master_sql(struct ha_action *a, const struct ha_action_req *q, MYSQL *m,
                               size_t *size)
{
	char *host = ha_db_escape_secret(m, q->target_host);
	char *user = ha_db_escape_secret(m, a->repl_user);
	char *pass = ha_db_escape_secret(m, a->repl_password);
	char *sql = NULL;
	static const char fmt[] =
	    "CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%u, MASTER_USER='%s', "
	    "MASTER_PASSWORD='%s', MASTER_USE_GTID=current_pos, MASTER_HEARTBEAT_PERIOD=0.5, "
	    "MASTER_CONNECT_RETRY=1";
	if (host && user && pass) {
		*size = sizeof(fmt) + strlen(host) + strlen(user) + strlen(pass) + 16;
		sql = malloc(*size);
		if (sql && (size_t)snprintf(sql, *size, fmt, host, q->target_port, user, pass) >=
		               *size) { /* cannot happen: sized for it; never sent cut */
			free(sql);
			sql = NULL;
		}
	}
	if (pass)
		ha_wipe(pass, 2 * strlen(a->repl_password) + 1);
	free(host);
	free(user);
	free(pass);
	return sql;
}

/* STOP SLAVE and CHANGE MASTER to the target; *reset when RESET SLAVE ALL was needed first. */
static int change_master(struct ha_action *a, const struct ha_action_req *q, MYSQL *m, bool *reset,
                         struct ha_action_result *r)
{
	int rc;
	*reset = false;
	if ((rc = exec(m, "STOP SLAVE", r)))
		return rc;
	size_t size = 0;
	char *sql = change_master_sql(a, q, m, &size);
	if (sql == NULL) {
		snprintf(r->msg, sizeof(r->msg), "CHANGE MASTER: out of memory");
		return HA_EDB;
	}
	int cm = mysql_real_query(m, sql, (unsigned long)strlen(sql));
	/* A server killed in the middle of RESET SLAVE ALL (a candidate dying while it detached)
	 * restarts with master.info naming relay log files that are gone: every CHANGE MASTER
	 * then fails with 1201 until the replication configuration is reset. The relay log is
	 * gone already, and changing the master discards it anyway. */
	*reset = cm != 0 && mysql_errno(m) == ER_MASTER_INFO_CODE;
	if (*reset) {
		if ((rc = exec(m, "RESET SLAVE ALL", r)) == 0)
			cm = mysql_real_query(m, sql, (unsigned long)strlen(sql));
	}
	ha_wipe(sql, size);
	free(sql);
	if (rc)
		return rc;
	if (cm != 0) {
		/* never echo the statement: it carries the password, and so may the server's
		 * message about it ("near '...'", "String '...' is too long") */
		ha_db_secret_stmt_error(r->msg, sizeof(r->msg), "CHANGE MASTER", mysql_errno(m),
		                        mysql_error(m));
		return HA_EDB;
	}
	return 0;
}

/* A target whose binlog lacks our exact GTIDs refuses us (strict mode): that is divergence
 * that sequence numbers alone cannot show (the same sequence number written by another
 * server). Waits until the master either refuses (1236) or starts sending (the dump began);
 * true when it refused, with replication removed and r filled in. */
static bool refused_by_target(MYSQL *m, const char *local, struct ha_action_result *r)
{
	for (int i = 0; i < 30; i++) {
		usleep(100 * 1000);
		struct ha_slave_status ss;
		if (ha_db_slave_status(m, &ss) != 0)
			break;
		unsigned io_errno = ss.io_errno;
		const char *io_error = ss.io_error;
		bool running = ss.io_running,
		     streaming = strstr(ss.io_state_text, "Waiting for master to send") != NULL;
		if (io_errno == 1236) {
			/* leave no replication configured: a diverged node replicates from nobody
			 */
			exec(m, "STOP SLAVE", r);
			exec(m, "RESET SLAVE ALL", r);
			r->diverged = true;
			snprintf(r->errant, sizeof(r->errant), "%s", local);
			snprintf(r->msg, sizeof(r->msg),
			         "diverged: new primary refused position %s: %s", local, io_error);
			return true;
		}
		if (running && streaming)
			break;
	}
	return false;
}

static int do_repoint(struct ha_action *a, const struct ha_action_req *q, MYSQL *m,
                      struct ha_action_result *r)
{
	char local[HA_GTID_MAX_DOMAINS * 48];
	bool diverged, reset;
	int rc;
	if ((rc = compare_with_target(a, q, m, local, sizeof(local), &diverged, r)))
		return rc;
	if (diverged)
		return 0;
	if ((rc = change_master(a, q, m, &reset, r)))
		return rc;
	if ((rc = exec(m, "START SLAVE", r)))
		return rc;
	if (refused_by_target(m, local, r))
		return 0;
	snprintf(r->msg, sizeof(r->msg), "replicating from %s:%u%s", q->target_host, q->target_port,
	         reset ? " (its master.info named a relay log that is gone: RESET SLAVE ALL first)"
	               : "");
	return 0;
}

static void do_salvage(struct ha_action *a, const struct ha_action_req *q,
                       struct ha_action_result *r)
{
	struct ha_salvage_req sq = {.target = {.host = q->target_host,
	                                       .port = q->target_port,
	                                       .user = a->user,
	                                       .password = a->password,
	                                       .timeout_ms = a->timeout_ms,
	                                       .statement_ms = a->timeout_ms},
	                            .binlog_index = q->binlog_index,
	                            .datadir = q->datadir,
	                            .work_dir = q->work_dir,
	                            .binlog_tool = "mariadb-binlog",
	                            .client_tool = "mariadb",
	                            .timeout_ms = q->wait_ms,
	                            .cancel = &a->cancel};
	struct ha_salvage_result sr;
	r->rc = ha_db_salvage(&sq, &sr);
	snprintf(r->msg, sizeof(r->msg), "%s", sr.msg);
	snprintf(r->gtid, sizeof(r->gtid), "%s", sr.salvaged);
	r->salvaged_count = sr.count;
	r->salvage_complete = r->rc == 0 && sr.complete;
}

static void run(struct ha_action *a, const struct ha_action_req *q, struct ha_action_result *r)
{
	char err[256];
	memset(r, 0, sizeof(*r));
	r->kind = q->kind;
	r->epoch = q->epoch;
	if (q->kind == HA_ACT_SALVAGE) {
		atomic_store(&a->cancel, false);
		do_salvage(a, q, r);
		return;
	}
	MYSQL *m = open_conn(a, a->host, a->port, q->kind == HA_ACT_FENCE ? q->grace_ms : 0, err,
	                     sizeof(err));
	if (m == NULL) {
		snprintf(r->msg, sizeof(r->msg), "%s", err);
		r->rc = HA_EDB;
		return;
	}
	switch (q->kind) {
	case HA_ACT_FENCE:
		r->rc = do_fence(a, q, m, r);
		break;
	case HA_ACT_CATCHUP:
		r->rc = do_catchup(q, m, r);
		break;
	case HA_ACT_STOP_IO:
		if ((r->rc = exec(m, "STOP SLAVE IO_THREAD", r)) == 0)
			snprintf(r->msg, sizeof(r->msg),
			         "IO thread stopped; the relay log is kept and applied");
		break;
	case HA_ACT_PROMOTE:
		r->rc = do_promote(a, q, m, r);
		break;
	case HA_ACT_REPOINT:
		r->rc = do_repoint(a, q, m, r);
		break;
	case HA_ACT_SALVAGE:
		break; /* above: no local connection */
	case HA_ACT_DETACH:
		if ((r->rc = exec(m, "STOP SLAVE", r)) == 0 &&
		    (r->rc = exec(m, "RESET SLAVE ALL", r)) == 0)
			snprintf(r->msg, sizeof(r->msg), "replication removed");
		break;
	}
	mysql_close(m);
}

static void *worker(void *arg)
{
	struct ha_action *a = arg;
	mysql_thread_init();
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->stop && !a->have_req)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop)
			break;
		struct ha_action_req q = a->req;
		a->have_req = false;
		pthread_mutex_unlock(&a->mu);
		struct ha_action_result r;
		run(a, &q, &r);
		pthread_mutex_lock(&a->mu);
		a->result = r;
		a->have_result = true;
		if (!a->stop)
			uv_async_send(&a->async);
	}
	pthread_mutex_unlock(&a->mu);
	mysql_thread_end();
	return NULL;
}

/* ---- loop side ---- */

static void on_async(uv_async_t *h)
{
	struct ha_action *a = h->data;
	struct ha_action_result r;
	pthread_mutex_lock(&a->mu);
	bool have = a->have_result;
	if (have)
		r = a->result;
	a->have_result = false;
	pthread_mutex_unlock(&a->mu);
	if (!have)
		return;
	a->busy = false;
	if (a->cb)
		a->cb(a->cb_data, &r);
}

int ha_action_start(uv_loop_t *loop, const struct ha_action_conf *conf, ha_action_cb cb, void *data,
                    struct ha_action **out, struct ha_err *e)
{
	struct ha_action *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	snprintf(a->host, sizeof(a->host), "%s", conf->host);
	snprintf(a->user, sizeof(a->user), "%s", conf->user);
	snprintf(a->password, sizeof(a->password), "%s", conf->password);
	snprintf(a->repl_user, sizeof(a->repl_user), "%s", conf->repl_user);
	snprintf(a->repl_password, sizeof(a->repl_password), "%s", conf->repl_password);
	a->port = conf->port;
	a->timeout_ms = conf->timeout_ms;
	a->cb = cb;
	a->cb_data = data;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (uv_async_init(loop, &a->async, on_async) != 0) {
		free(a);
		return ha_err_set(e, HA_EINTERNAL, "uv_async_init failed");
	}
	a->async.data = a;
	int rc = pthread_create(&a->thread, NULL, worker, a);
	if (rc != 0) {
		uv_close((uv_handle_t *)&a->async, NULL);
		return ha_err_set(e, HA_EINTERNAL, "cannot start action thread: %s", strerror(rc));
	}
	a->started = true;
	*out = a;
	return 0;
}

int ha_action_submit(struct ha_action *a, const struct ha_action_req *req)
{
	if (a->busy)
		return HA_EREFUSED;
	pthread_mutex_lock(&a->mu);
	a->req = *req;
	a->have_req = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	a->busy = true;
	return 0;
}

bool ha_action_busy(const struct ha_action *a)
{
	return a->busy;
}

void ha_action_cancel(struct ha_action *a)
{
	atomic_store(&a->cancel, true);
}

void ha_action_stop(struct ha_action *a)
{
	atomic_store(&a->cancel, true);
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	uv_close((uv_handle_t *)&a->async, NULL);
}

void ha_action_join(struct ha_action *a)
{
	if (a->started)
		pthread_join(a->thread, NULL);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	ha_wipe(a->password, sizeof(a->password));
	ha_wipe(a->repl_password, sizeof(a->repl_password));
	free(a);
}
