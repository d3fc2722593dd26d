#include "reclone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "../common/gtid.h"
#include "conn.h"

/* SET GLOBAL gtid_slave_pos to p, written as the parser reads it back (the text that came from
 * a manifest is never put into the statement as it was), quoted for the server. */
static int set_slave_pos(MYSQL *m, const struct ha_gtid_pos *p, char *err, size_t err_size)
{
	char text[HA_GTID_TEXT_MAX];
	if (ha_gtid_format(p, text, sizeof(text)) >= sizeof(text)) {
		snprintf(err, err_size, "the position has more domains than handled");
		return -1;
	}
	struct ha_buf sql = HA_BUF_INIT;
	ha_buf_puts(&sql, "SET GLOBAL gtid_slave_pos = ");
	ha_db_quote(m, &sql, text);
	int rc = -1;
	if (ha_buf_failed(&sql))
		snprintf(err, err_size, "out of memory");
	else
		rc = ha_db_exec(m, ha_buf_cstr(&sql), err, err_size);
	ha_buf_free(&sql);
	return rc;
}

int ha_db_reset_as_replica(const struct ha_db_where *w, const char *gtid, char *detail, size_t size)
{
	char err[512];
	MYSQL *m = ha_db_open(w, err, sizeof(err), NULL);
	if (m == NULL) {
		snprintf(detail, size, "connect: %s", err);
		return HA_EDB;
	}
	int rc = HA_EDB;
	char restored[HA_GTID_TEXT_MAX] = "";
	if (ha_db_exec(m, "STOP SLAVE", err, sizeof(err)) != 0 ||
	    ha_db_exec(m, "RESET SLAVE ALL", err, sizeof(err)) != 0 ||
	    ha_db_exec(m, "RESET MASTER", err, sizeof(err)) != 0 ||
	    ha_db_query_one(m, "SELECT @@gtid_slave_pos", restored, sizeof(restored), err,
	                    sizeof(err)) != 0) {
		snprintf(detail, size, "%s", err);
		goto out;
	}
	struct ha_gtid_pos have, want;
	if (ha_gtid_parse(restored, &have, NULL) != 0 || ha_gtid_parse(gtid, &want, NULL) != 0) {
		snprintf(detail, size,
		         "cannot compare gtid_slave_pos '%.100s' with the backup's '%.100s'",
		         restored, gtid);
		goto out;
	}
	enum ha_gtid_cmp c = ha_gtid_compare(&want, &have);
	if (c == HA_GTID_AHEAD) {
		if (set_slave_pos(m, &want, err, sizeof(err)) != 0) {
			snprintf(detail, size, "%s", err);
			goto out;
		}
		snprintf(detail, size,
		         "replication reset, binary log reset, gtid_slave_pos set to the backup's "
		         "position %.200s (it was %.200s)",
		         gtid, restored[0] ? restored : "empty");
	} else {
		snprintf(
		    detail, size,
		    "replication reset, binary log reset, gtid_slave_pos %.200s (restored with "
		    "the data)",
		    restored);
	}
	rc = 0;
out:
	mysql_close(m);
	return rc;
}

int ha_db_pitr_finish(const struct ha_db_where *w, const char *gtid, char *detail, size_t size)
{
	char err[512];
	MYSQL *m = ha_db_open(w, err, sizeof(err), NULL);
	if (m == NULL) {
		snprintf(detail, size, "connect: %s", err);
		return HA_EDB;
	}
	int rc = HA_EDB;
	struct ha_gtid_pos want;
	struct ha_err ge = {0};
	if (ha_gtid_parse(gtid, &want, &ge) != 0)
		snprintf(detail, size, "the position to set: %s", ge.msg);
	else if (ha_db_exec(m, "STOP SLAVE", err, sizeof(err)) != 0 ||
	         ha_db_exec(m, "RESET SLAVE ALL", err, sizeof(err)) != 0 ||
	         set_slave_pos(m, &want, err, sizeof(err)) != 0)
		snprintf(detail, size, "%s", err);
	else
		rc = 0;
	mysql_close(m);
	return rc;
}
