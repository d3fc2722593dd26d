#include "source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "conn.h"

#define STATE_MAX (1u << 20) /* 64 domains × thousands of servers: far beyond a real one */

static int query_alloc(MYSQL *m, const char *sql, char **out, char *why, size_t why_size)
{
	if (mysql_real_query(m, sql, (unsigned long)strlen(sql)) != 0) {
		snprintf(why, why_size, "%s: %s (%u)", sql, mysql_error(m), mysql_errno(m));
		return HA_EDB;
	}
	MYSQL_RES *res = mysql_store_result(m);
	MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
	const char *v = row && row[0] ? row[0] : "";
	size_t n = strlen(v);
	int rc = 0;
	if (n > STATE_MAX) {
		snprintf(why, why_size, "%s: %zu bytes, more than %u", sql, n, STATE_MAX);
		rc = HA_EDB;
	} else if ((*out = strdup(v)) == NULL) {
		snprintf(why, why_size, "out of memory");
		rc = HA_EDB;
	}
	if (res)
		mysql_free_result(res);
	return rc;
}

int ha_db_binlog_source(const struct ha_db_where *w, struct ha_binlog_source *out, char *why,
                        size_t why_size)
{
	memset(out, 0, sizeof(*out));
	char err[512], id[32], log_bin[8];
	MYSQL *m = ha_db_open(w, err, sizeof(err), NULL);
	if (m == NULL) {
		snprintf(why, why_size, "connect: %s", err);
		return HA_EDB;
	}
	int rc = HA_EDB;
	if (ha_db_query_one(m, "SELECT @@server_id", id, sizeof(id), why, why_size) != 0 ||
	    ha_db_query_one(m, "SELECT @@log_bin", log_bin, sizeof(log_bin), why, why_size) != 0 ||
	    ha_db_query_one(m, "SELECT @@gtid_binlog_pos", out->binlog_pos, sizeof(out->binlog_pos),
	                    why, why_size) != 0 ||
	    query_alloc(m, "SELECT @@gtid_binlog_state", &out->binlog_state, why, why_size) != 0)
		goto done;
	out->server_id = (uint32_t)strtoul(id, NULL, 10);
	if (strcmp(log_bin, "1") != 0) {
		snprintf(why, why_size, "the server has no binary log (log_bin is off)");
		goto done;
	}
	if (mysql_real_query(m, "SHOW BINARY LOGS", 16) != 0) {
		snprintf(why, why_size, "SHOW BINARY LOGS: %s (%u)", mysql_error(m),
		         mysql_errno(m));
		goto done;
	}
	MYSQL_RES *res = mysql_store_result(m);
	MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
	if (row && row[0] && strlen(row[0]) < sizeof(out->first_file) && !strchr(row[0], '/')) {
		memcpy(out->first_file, row[0], strlen(row[0]) + 1);
		rc = 0;
	} else {
		snprintf(why, why_size, "SHOW BINARY LOGS: no usable file name");
	}
	if (res)
		mysql_free_result(res);
done:
	mysql_close(m);
	if (rc != 0)
		ha_db_binlog_source_free(out);
	return rc;
}

void ha_db_binlog_source_free(struct ha_binlog_source *s)
{
	free(s->binlog_state);
	s->binlog_state = NULL;
}
