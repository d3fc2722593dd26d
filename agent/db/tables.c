#include "tables.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "../common/buf.h"
#include "../common/gtid.h"
#include "../common/quote.h"
#include "conn.h"

#define USER_TABLES                                                                                \
	"FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN "  \
	"('mysql', 'information_schema', 'performance_schema', 'sys') AND ENGINE IN ('InnoDB', "   \
	"'Aria', 'MyISAM')"

struct table {
	char *name; /* `schema`.`table`, quoted by the server */
	uint64_t bytes;
};

static void tables_free(struct table *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++)
		free(t[i].name);
	free(t);
}

/* The user tables, quoted, sorted by name; -1 with err set when they cannot be listed or there
 * are more than max. */
static int list_tables(MYSQL *m, struct table **out, size_t *n, size_t max, char *err, size_t size)
{
	*out = NULL;
	*n = 0;
	const char *q =
	    "SELECT CONCAT('`', REPLACE(TABLE_SCHEMA, '`', '``'), '`.`', "
	    "REPLACE(TABLE_NAME, '`', '``'), '`'), COALESCE(DATA_LENGTH, 0) " USER_TABLES
	    " ORDER BY 1";
	if (mysql_real_query(m, q, (unsigned long)strlen(q)) != 0) {
		snprintf(err, size, "cannot list the tables: %s", mysql_error(m));
		return -1;
	}
	MYSQL_RES *res = mysql_store_result(m);
	if (res == NULL) {
		snprintf(err, size, "cannot list the tables: %s", mysql_error(m));
		return -1;
	}
	size_t rows = (size_t)mysql_num_rows(res);
	if (rows > max) {
		snprintf(err, size, "%zu tables, more than %zu", rows, max);
		mysql_free_result(res);
		return -1;
	}
	struct table *t = calloc(rows ? rows : 1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, size, "out of memory");
		mysql_free_result(res);
		return -1;
	}
	MYSQL_ROW row;
	size_t k = 0;
	while ((row = mysql_fetch_row(res)) != NULL && k < rows) {
		/* quoted by the server: checked all the same before it goes into a statement */
		if (row[0] == NULL || !ha_quote_sql_table_valid(row[0])) {
			snprintf(err, size,
			         "the server listed a table name that is not quoted: %.100s",
			         row[0] ? row[0] : "NULL");
			break;
		}
		if ((t[k].name = strdup(row[0])) == NULL) {
			snprintf(err, size, "out of memory");
			break;
		}
		t[k].bytes = row[1] ? strtoull(row[1], NULL, 10) : 0;
		k++;
	}
	bool whole = row == NULL || k == rows;
	mysql_free_result(res);
	if (!whole) {
		tables_free(t, k);
		return -1;
	}
	*out = t;
	*n = k;
	return 0;
}

/* CHECKSUM TABLE name: 1 with the sum, 0 when the server has none (no such table), -1 on an
 * error (err set). */
/* "VERB `schema`.`table`" run on m: 0, or -1 with err set (also for a name that is not quoted
 * as ha_quote_sql_table_valid requires: a name read from a manifest never goes in as it is). */
static int table_statement(MYSQL *m, const char *verb, const char *name, char *err, size_t size)
{
	if (!ha_quote_sql_table_valid(name)) {
		snprintf(err, size, "%s: '%.100s' is not a quoted table name", verb, name);
		return -1;
	}
	struct ha_buf sql = HA_BUF_INIT;
	ha_buf_printf(&sql, "%s %s", verb, name);
	int rc = ha_buf_failed(&sql) ? -1 : mysql_real_query(m, sql.data, (unsigned long)sql.len);
	ha_buf_free(&sql);
	if (rc != 0)
		snprintf(err, size, "%s %s: %s", verb, name,
		         mysql_errno(m) ? mysql_error(m) : "out of memory");
	return rc != 0 ? -1 : 0;
}

static int checksum(MYSQL *m, const char *name, uint64_t *sum, char *err, size_t size)
{
	if (table_statement(m, "CHECKSUM TABLE", name, err, size) != 0) {
		return -1;
	}
	MYSQL_RES *res = mysql_store_result(m);
	MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
	int rc = 0;
	if (row && mysql_num_fields(res) >= 2 && row[1]) {
		*sum = strtoull(row[1], NULL, 10);
		rc = 1;
	}
	if (res)
		mysql_free_result(res);
	return rc;
}

/* Whether the server's @@gtid_binlog_pos is the position want. */
static int at_position(MYSQL *m, const char *want, char *now, size_t now_size, char *err,
                       size_t size)
{
	if (ha_db_query_one(m, "SELECT @@gtid_binlog_pos", now, now_size, err, size) != 0)
		return -1;
	struct ha_gtid_pos a, b;
	if (ha_gtid_parse(now, &a, NULL) == 0 && ha_gtid_parse(want, &b, NULL) == 0)
		return ha_gtid_compare(&a, &b) == HA_GTID_EQUAL;
	return strcmp(now, want) == 0;
}

/* Whether the server is at the backup's position gtid when the sums are to be computed; when
 * not, why not in note. */
static bool at_backup_position(MYSQL *db, const char *gtid, char *note, size_t ns)
{
	char err[512], now[2048];
	int at = at_position(db, gtid, now, sizeof(now), err, sizeof(err));
	if (at <= 0) {
		snprintf(note, ns,
		         at < 0 ? "not recorded: %.150s"
		                : "not recorded: the replica had applied more by the end of the "
		                  "backup (%.60s)",
		         at < 0 ? err : now);
		return false;
	}
	return true;
}

/* The user tables into *t and *n, when they can be listed and hold no more than max_bytes;
 * when not, why not in note. */
static bool tables_within(MYSQL *db, uint64_t max_bytes, struct table **t, size_t *n, char *note,
                          size_t ns)
{
	char err[512];
	if (list_tables(db, t, n, HA_MANIFEST_MAX_SUMS, err, sizeof(err)) != 0) {
		snprintf(note, ns, "not recorded: %.170s", err);
		return false;
	}
	uint64_t bytes = 0;
	for (size_t i = 0; i < *n; i++)
		bytes += (*t)[i].bytes;
	if (bytes > max_bytes) {
		snprintf(note, ns,
		         "not recorded: the tables hold %llu MiB, more than [backup] "
		         "checksum_max_mb (%llu)",
		         (unsigned long long)(bytes >> 20), (unsigned long long)(max_bytes >> 20));
		return false;
	}
	return true;
}

/* CHECKSUM TABLE over the n tables t into sums (those the server has a sum for), their count
 * in *k; false with why in note when cancelled or a checksum fails. */
static bool sum_tables(MYSQL *db, const struct table *t, size_t n, atomic_int *cancel,
                       struct ha_table_sum *sums, size_t *k, char *note, size_t ns)
{
	char err[512];
	size_t long_names = 0;
	for (size_t i = 0; i < n; i++) {
		if (cancel && atomic_load(cancel)) {
			snprintf(note, ns, "not recorded: cancelled");
			return false;
		}
		if (strlen(t[i].name) >= sizeof(sums[0].name)) {
			long_names++; /* a manifest line cannot hold it: said in the note, never cut
			               */
			continue;
		}
		int rc = checksum(db, t[i].name, &sums[*k].sum, err, sizeof(err));
		if (rc < 0) {
			snprintf(note, ns, "not recorded: %.170s", err);
			return false;
		}
		if (rc > 0) {
			memcpy(sums[*k].name, t[i].name, strlen(t[i].name) + 1);
			(*k)++;
		}
	}
	if (long_names)
		snprintf(note, ns,
		         "%zu tables left out: their quoted names are longer than %d bytes",
		         long_names, HA_SUM_NAME_MAX - 1);
	return true;
}

size_t ha_db_record_sums(const struct ha_db_where *w, const char *gtid, uint64_t max_bytes,
                         atomic_int *cancel, struct ha_manifest *m)
{
	free(m->sums);
	m->sums = NULL;
	m->n_sums = 0;
	m->sums_note[0] = '\0';
	char *note = m->sums_note;
	size_t ns = sizeof(m->sums_note);
	if (max_bytes == 0) {
		snprintf(note, ns, "not recorded: [backup] checksum_max_mb = 0");
		return 0;
	}
	if (gtid == NULL || !gtid[0]) {
		snprintf(note, ns, "not recorded: the backup has no GTID position");
		return 0;
	}
	char err[512], now[2048];
	MYSQL *db = ha_db_open(w, err, sizeof(err), NULL);
	if (db == NULL) {
		snprintf(note, ns, "not recorded: cannot connect: %s", err);
		return 0;
	}
	struct table *t = NULL;
	size_t n = 0, k = 0;
	struct ha_table_sum *sums = NULL;
	if (!at_backup_position(db, gtid, note, ns) ||
	    !tables_within(db, max_bytes, &t, &n, note, ns))
		goto out;
	sums = calloc(n ? n : 1, sizeof(*sums));
	if (sums == NULL) {
		snprintf(note, ns, "not recorded: out of memory");
		goto out;
	}
	if (!sum_tables(db, t, n, cancel, sums, &k, note, ns))
		goto out;
	/* the position did not move while they were computed: they are the backup's */
	if (at_position(db, gtid, now, sizeof(now), err, sizeof(err)) <= 0) {
		snprintf(note, ns, "not recorded: the replica applied transactions meanwhile");
		goto out;
	}
	m->sums = sums;
	m->n_sums = k;
	sums = NULL;
out:
	free(sums);
	tables_free(t, n);
	mysql_close(db);
	return m->n_sums;
}

/* CHECK TABLE name: 1 when every status row says OK (or the table needs no check), 0 when a
 * row reports an error or another status, -1 when the statement fails (err set). */
static int check_table(MYSQL *m, const char *name, char *err, size_t size)
{
	if (table_statement(m, "CHECK TABLE", name, err, size) != 0)
		return -1;
	MYSQL_RES *res = mysql_store_result(m);
	MYSQL_ROW x;
	int ok = 1;
	/* Table, Op, Msg_type, Msg_text */
	while (res && mysql_num_fields(res) >= 4 && (x = mysql_fetch_row(res)) != NULL) {
		if (x[2] && !strcmp(x[2], "error"))
			ok = 0;
		else if (x[2] && !strcmp(x[2], "status") && x[3] && strcmp(x[3], "OK") != 0)
			ok = 0;
	}
	if (res)
		mysql_free_result(res);
	return ok;
}

int ha_db_drill_tables(const struct ha_db_where *w, const struct ha_table_sum *want, size_t n_want,
                       const char *no_sums_note, char *detail, size_t size)
{
	char err[512];
	MYSQL *db = ha_db_open(w, err, sizeof(err), NULL);
	if (db == NULL) {
		snprintf(detail, size, "cannot connect to the restored server: %s", err);
		return HA_EDB;
	}
	struct table *t = NULL;
	size_t n = 0;
	int rc = HA_EDB;
	if (list_tables(db, &t, &n, (size_t)-1 / sizeof(*t), err, sizeof(err)) != 0) {
		snprintf(detail, size, "%s", err);
		goto out;
	}
	unsigned bad = 0;
	char first_bad[HA_SUM_NAME_MAX + 80] = "";
	for (size_t i = 0; i < n; i++) {
		int ok = check_table(db, t[i].name, err, sizeof(err));
		if (ok > 0)
			continue;
		if (!bad++)
			snprintf(first_bad, sizeof(first_bad), "%s", ok < 0 ? err : t[i].name);
	}
	if (bad) {
		snprintf(detail, size, "CHECK TABLE failed on %u of %zu tables (first: %s)", bad, n,
		         first_bad);
		goto out;
	}
	for (size_t i = 0; i < n_want; i++) {
		uint64_t sum = 0;
		int got = checksum(db, want[i].name, &sum, err, sizeof(err));
		if (got < 0 && mysql_errno(db) == 1146) /* ER_NO_SUCH_TABLE */
			got = 0;
		if (got < 0) {
			snprintf(detail, size, "%s", err);
			goto out;
		}
		if (got == 0) {
			snprintf(detail, size,
			         "%s is missing from the restored datadir (it had a checksum at "
			         "backup time)",
			         want[i].name);
			goto out;
		}
		if (sum != want[i].sum) {
			snprintf(detail, size,
			         "checksum of %s differs: %llu at backup time, %llu restored",
			         want[i].name, (unsigned long long)want[i].sum,
			         (unsigned long long)sum);
			goto out;
		}
	}
	if (n_want)
		snprintf(
		    detail, size,
		    "CHECK TABLE passed on %zu tables; checksums match those recorded at backup "
		    "time on %zu tables",
		    n, n_want);
	else
		snprintf(detail, size,
		         "CHECK TABLE passed on %zu tables; no checksums to compare (%s)", n,
		         no_sums_note && no_sums_note[0] ? no_sums_note : "none recorded");
	rc = 0;
out:
	tables_free(t, n);
	mysql_close(db);
	return rc;
}
