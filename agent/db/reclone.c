#include "reclone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "../common/gtid.h"
#include "conn.h"

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
		char sql[HA_GTID_TEXT_MAX + 64];
		snprintf(sql, sizeof(sql), "SET GLOBAL gtid_slave_pos = '%s'", gtid);
		if (ha_db_exec(m, sql, err, sizeof(err)) != 0) {
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
	char *sql = NULL;
	int rc = HA_EDB;
	if (asprintf(&sql, "SET GLOBAL gtid_slave_pos = '%s'", gtid) < 0)
		snprintf(detail, size, "out of memory");
	else if (ha_db_exec(m, "STOP SLAVE", err, sizeof(err)) != 0 ||
	         ha_db_exec(m, "RESET SLAVE ALL", err, sizeof(err)) != 0 ||
	         ha_db_exec(m, sql, err, sizeof(err)) != 0)
		snprintf(detail, size, "%s", err);
	else
		rc = 0;
	free(sql);
	mysql_close(m);
	return rc;
}
