#include "conn.h"

#include "../common/err.h"
#include "../common/quote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ha_db_quote(MYSQL *m, struct ha_buf *b, const char *s)
{
	size_t n = strlen(s);
	char *esc = malloc(2 * n + 1);
	if (esc == NULL) {
		b->failed = true; /* as any failed append: the statement is never sent */
		return;
	}
	unsigned long k = mysql_real_escape_string(m, esc, s, (unsigned long)n);
	ha_buf_puts(b, "'");
	ha_buf_append(b, esc, k);
	ha_buf_puts(b, "'");
	free(esc);
}

char *ha_db_escape_secret(MYSQL *m, const char *s)
{
	size_t n = strlen(s);
	char *esc = malloc(2 * n + 1);
	if (esc != NULL)
		mysql_real_escape_string(m, esc, s, (unsigned long)n);
	return esc;
}

static unsigned seconds(unsigned ms)
{
	return ms ? (ms + 999) / 1000 : 1;
}

MYSQL *ha_db_open(const struct ha_db_where *w, char *err, size_t err_size, unsigned *errnum)
{
	if (errnum)
		*errnum = 0;
	MYSQL *m = mysql_init(NULL);
	if (m == NULL) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	unsigned ct = seconds(w->timeout_ms),
	         rt = seconds(w->statement_ms ? w->statement_ms : w->timeout_ms);
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rt);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &ct);
	my_bool off = 0;
	mysql_options(m, MYSQL_OPT_RECONNECT, &off); /* a lost session is an error, never redone */
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (mysql_real_connect(m, w->socket ? NULL : w->host, w->user, w->password, NULL,
	                       w->socket ? 0 : w->port, w->socket, 0) == NULL) {
		snprintf(err, err_size, "%s (%u)", mysql_error(m), mysql_errno(m));
		if (errnum)
			*errnum = mysql_errno(m);
		mysql_close(m);
		return NULL;
	}
	return m;
}

int ha_db_exec(MYSQL *m, const char *sql, char *err, size_t err_size)
{
	if (mysql_real_query(m, sql, (unsigned long)strlen(sql)) != 0) {
		snprintf(err, err_size, "%.80s: %s (%u)", sql, mysql_error(m), mysql_errno(m));
		return -1;
	}
	MYSQL_RES *res = mysql_store_result(m);
	if (res)
		mysql_free_result(res);
	return 0;
}

int ha_db_query_one(MYSQL *m, const char *sql, char *out, size_t size, char *err, size_t err_size)
{
	out[0] = '\0';
	if (mysql_real_query(m, sql, (unsigned long)strlen(sql)) != 0) {
		snprintf(err, err_size, "%.80s: %s (%u)", sql, mysql_error(m), mysql_errno(m));
		return -1;
	}
	MYSQL_RES *res = mysql_store_result(m);
	MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
	const char *v = row && row[0] ? row[0] : "";
	size_t len = strlen(v);
	int rc = 0;
	if (len >= size) {
		/* a value cut short could still parse (a GTID position losing domains): refuse */
		snprintf(err, err_size,
		         "%.80s: the value has %zu bytes, more than the %zu this "
		         "caller takes",
		         sql, len, size - 1);
		rc = -1;
	} else {
		memcpy(out, v, len + 1);
	}
	if (res)
		mysql_free_result(res);
	return rc;
}

int ha_db_ping(const struct ha_db_where *w)
{
	char err[256];
	MYSQL *m = ha_db_open(w, err, sizeof(err), NULL);
	if (m == NULL)
		return -1;
	int rc = mysql_ping(m) == 0 ? 0 : -1;
	mysql_close(m);
	return rc;
}

int ha_db_read(const struct ha_db_where *w, const char *expr, char *out, size_t size, char *why,
               size_t why_size)
{
	char err[512], sql[512];
	out[0] = '\0';
	MYSQL *m = ha_db_open(w, err, sizeof(err), NULL);
	if (m == NULL) {
		snprintf(why, why_size, "connect: %s", err);
		return HA_EDB;
	}
	int rc = HA_EDB;
	if ((size_t)snprintf(sql, sizeof(sql), "SELECT %s", expr) >= sizeof(sql))
		snprintf(why, why_size, "the expression is longer than %zu bytes", sizeof(sql) - 8);
	else if (ha_db_query_one(m, sql, out, size, why, why_size) == 0)
		rc = 0;
	mysql_close(m);
	return rc;
}

static void field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

int ha_db_slave_status(MYSQL *m, struct ha_slave_status *out)
{
	memset(out, 0, sizeof(*out));
	out->lag_seconds = -1;
	if (mysql_real_query(m, "SHOW SLAVE STATUS", 17) != 0)
		return -1;
	MYSQL_RES *r = mysql_store_result(m);
	if (r == NULL)
		return mysql_field_count(m) != 0 ? -1 : 0;
	MYSQL_ROW row = mysql_fetch_row(r);
	if (row) {
		out->configured = true;
		unsigned nf = mysql_num_fields(r);
		MYSQL_FIELD *f = mysql_fetch_fields(r);
		for (unsigned i = 0; i < nf; i++) {
			const char *v = row[i], *n = f[i].name;
			if (!strcmp(n, "Master_Host"))
				field(out->master_host, sizeof(out->master_host), v);
			else if (!strcmp(n, "Master_Port"))
				out->master_port = v ? (unsigned)strtoul(v, NULL, 10) : 0;
			else if (!strcmp(n, "Slave_IO_Running")) {
				field(out->io_state, sizeof(out->io_state), v);
				out->io_running = v && !strcmp(v, "Yes");
			} else if (!strcmp(n, "Slave_SQL_Running"))
				out->sql_running = v && !strcmp(v, "Yes");
			else if (!strcmp(n, "Slave_IO_State"))
				field(out->io_state_text, sizeof(out->io_state_text), v);
			else if (!strcmp(n, "Seconds_Behind_Master"))
				out->lag_seconds = v ? strtoll(v, NULL, 10) : -1;
			else if (!strcmp(n, "Last_IO_Errno"))
				out->io_errno = v ? (unsigned)strtoul(v, NULL, 10) : 0;
			else if (!strcmp(n, "Last_IO_Error"))
				field(out->io_error, sizeof(out->io_error), v);
			else if (!strcmp(n, "Last_SQL_Error"))
				field(out->sql_error, sizeof(out->sql_error), v);
			else if (!strcmp(n, "Slave_SQL_Running_State"))
				field(out->sql_state, sizeof(out->sql_state), v);
			else if (!strcmp(n, "SQL_Delay"))
				out->sql_delay = v ? (unsigned)strtoul(v, NULL, 10) : 0;
			else if (!strcmp(n, "Gtid_IO_Pos") &&
			         ha_gtid_copy_text(out->gtid_io_pos, sizeof(out->gtid_io_pos), v) !=
			             0)
				snprintf(out->gtid_io_pos, sizeof(out->gtid_io_pos),
				         "(over %d domains: not handled)", HA_GTID_MAX_DOMAINS);
			else if (!strcmp(n, "Master_Log_File"))
				field(out->master_log_file, sizeof(out->master_log_file), v);
			else if (!strcmp(n, "Read_Master_Log_Pos"))
				out->read_master_log_pos = v ? strtoull(v, NULL, 10) : 0;
		}
	}
	mysql_free_result(r);
	return 0;
}
