#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup/fsutil.h"
#include "common/buf.h"
#include "common/quote.h"
#include "db/classify.h"

static const char *sql_string(const char *s)
{
	static struct ha_buf b = HA_BUF_INIT;
	ha_buf_reset(&b);
	ha_quote_sql_string(&b, s);
	return ha_buf_cstr(&b);
}

static const char *sql_ident(const char *s)
{
	static struct ha_buf b = HA_BUF_INIT;
	ha_buf_reset(&b);
	ha_quote_sql_ident(&b, s);
	return ha_buf_cstr(&b);
}

static void sql_literals(void **state)
{
	(void)state;
	assert_string_equal(sql_string(""), "''");
	assert_string_equal(sql_string("repl"), "'repl'");
	assert_string_equal(sql_string("it's"), "'it''s'");
	assert_string_equal(sql_string("a\\b"), "'a\\\\b'");
	assert_string_equal(sql_string("x'; DROP TABLE t; --"), "'x''; DROP TABLE t; --'");
	assert_string_equal(sql_string("\\'"), "'\\\\'''"); /* never an escaped quote */
	assert_string_equal(sql_string("l1\nl2\r\032"), "'l1\\nl2\\r\\Z'");
	assert_string_equal(sql_string("pä \"#"), "'pä \"#'");
}

static void sql_identifiers(void **state)
{
	(void)state;
	assert_string_equal(sql_ident("t"), "`t`");
	assert_string_equal(sql_ident("a`b"), "`a``b`");
	assert_string_equal(sql_ident("``"), "``````");
	assert_string_equal(sql_ident("x` ; DROP"), "`x`` ; DROP`");
	assert_true(ha_quote_sql_table_valid("`db`.`t`"));
	assert_true(ha_quote_sql_table_valid("`d``b`.`t q`"));
	assert_true(ha_quote_sql_table_valid("`a.b`.`c`"));
	assert_true(ha_quote_sql_table_valid("`pä`.`ü'\"`"));
	const char *bad[] = {"",
	                     "db.t",
	                     "`db`",
	                     "`db`.t",
	                     "``.`t`",
	                     "`db`.``",
	                     "`db`.`t`;DROP TABLE x",
	                     "`db`.`t` ",
	                     " `db`.`t`",
	                     "`d`b`.`t`",
	                     "`db`.`t",
	                     "`db`.`t``",
	                     "`db`..`t`",
	                     "`db``.`t`"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ha_quote_sql_table_valid(bad[i]))
			fail_msg("accepted %s", bad[i]);
	assert_false(ha_quote_sql_table_valid(NULL));
	/* what the quoting makes is valid */
	struct ha_buf b = HA_BUF_INIT;
	ha_quote_sql_ident(&b, "s`");
	ha_buf_puts(&b, ".");
	ha_quote_sql_ident(&b, "`t`");
	assert_true(ha_quote_sql_table_valid(ha_buf_cstr(&b)));
	ha_buf_free(&b);
}

static const char *const values[] = {
    "pä ss'w\"o\\rd#1 x",
    "",
    "plain",
    " leading and trailing ",
    "#starts with a hash",
    "ends with a backslash\\",
    "\\",
    "\\\\",
    "\"",
    "'",
    "''",
    "\"\"",
    "'quoted'",
    "\"quoted\"",
    "tab\there",
    "new\nline",
    "cr\r",
    "bs\b",
    "literal \\n and \\s and \\t",
    "ends in a no-break space byte: \xc3\xa0",
    "\xc2\xa0" /* a latin1 space byte at either end */,
    "a=b; c",
    "!include /etc/passwd",
    "[client]",
};

static void option_values(void **state)
{
	(void)state;
	char out[256];
	assert_int_equal(ha_quote_option_value(out, sizeof(out), "pä ss'w\"o\\rd#1 x"), 21);
	assert_string_equal(out, "\"pä ss'w\\\"o\\\\rd#1 x\"");
	assert_int_equal(ha_quote_option_value(NULL, 0, "a\nb"), 6);
	assert_int_equal(ha_quote_option_value(out, sizeof(out), "a\nb"), 6);
	assert_string_equal(out, "\"a\\nb\"");
	/* too small: nothing cut, "" and -1 */
	assert_int_equal(ha_quote_option_value(out, 6, "a\nb"), -1);
	assert_string_equal(out, "");
	/* longer than the reader takes */
	char *big = malloc(HA_QUOTE_OPTION_MAX);
	memset(big, 'x', HA_QUOTE_OPTION_MAX - 1);
	big[HA_QUOTE_OPTION_MAX - 1] = '\0';
	assert_int_equal(ha_quote_option_value(NULL, 0, big), -1);
	free(big);
}

/* MariaDB's own option file reader (my_print_defaults, when installed) reads back every value
 * exactly. */
static void option_values_read_by_mariadb(void **state)
{
	(void)state;
	const char *tool = NULL;
	if (access("/usr/bin/my_print_defaults", X_OK) == 0)
		tool = "/usr/bin/my_print_defaults";
	else if (access("/usr/local/bin/my_print_defaults", X_OK) == 0)
		tool = "/usr/local/bin/my_print_defaults";
	if (tool == NULL)
		skip();
	char dir[] = "/tmp/ha-quote-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cnf[64];
	snprintf(cnf, sizeof(cnf), "%s/t.cnf", dir);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char q[512];
		assert_true(ha_quote_option_value(q, sizeof(q), values[i]) > 0);
		FILE *f = fopen(cnf, "w");
		fprintf(f, "[client]\npassword=%s\n", q);
		fclose(f);
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "%s --defaults-file=%s client", tool, cnf);
		FILE *p = popen(cmd, "r");
		assert_non_null(p);
		char got[1024];
		size_t n = fread(got, 1, sizeof(got) - 1, p);
		got[n] = '\0';
		assert_int_equal(pclose(p), 0);
		char want[1024];
		snprintf(want, sizeof(want), "--password=%s\n", values[i]);
		if (strcmp(got, want) != 0)
			fail_msg("value %zu: wrote %s, read back [%s], want [%s]", i, q, got, want);
	}
	unlink(cnf);
	rmdir(dir);
}

/* The option file writer: mode 0600 whatever was there, a link in its place replaced (never
 * written through), every value read back by MariaDB's reader. */
static void option_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/ha-quote-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cnf[64], victim[64];
	snprintf(cnf, sizeof(cnf), "%s/client.cnf", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	FILE *f = fopen(victim, "w");
	fputs("untouched\n", f);
	fclose(f);
	chmod(victim, 0644);
	assert_int_equal(symlink(victim, cnf), 0);
	const struct ha_option o[] = {
	    {"user", "u s'er"}, {"password", values[0]}, {"port", "3306"}};
	assert_int_equal(ha_write_option_file(cnf, "client", o, 3), 0);
	struct stat sb;
	assert_int_equal(lstat(cnf, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0600);
	f = fopen(victim, "r");
	char line[64] = "";
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_string_equal(line, "untouched\n");
	/* an existing file with a wider mode is replaced too */
	chmod(cnf, 0644);
	assert_int_equal(ha_write_password_cnf(cnf, "mariadb-backup", values[0]), 0);
	assert_int_equal(stat(cnf, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	if (access("/usr/bin/my_print_defaults", X_OK) == 0) {
		assert_int_equal(ha_write_option_file(cnf, "client", o, 3), 0);
		char cmd[160], got[512], want[512];
		snprintf(cmd, sizeof(cmd), "/usr/bin/my_print_defaults --defaults-file=%s client",
		         cnf);
		FILE *p = popen(cmd, "r");
		size_t n = fread(got, 1, sizeof(got) - 1, p);
		got[n] = '\0';
		assert_int_equal(pclose(p), 0);
		snprintf(want, sizeof(want), "--user=u s'er\n--password=%s\n--port=3306\n",
		         values[0]);
		assert_string_equal(got, want);
	}
	/* a value the tools could not read whole is refused, and nothing is left */
	char *big = malloc(HA_QUOTE_OPTION_MAX);
	memset(big, 'x', HA_QUOTE_OPTION_MAX - 1);
	big[HA_QUOTE_OPTION_MAX - 1] = '\0';
	unlink(cnf);
	assert_int_equal(ha_write_password_cnf(cnf, "client", big), -1);
	assert_int_equal(access(cnf, F_OK), -1);
	free(big);
	unlink(victim);
	rmdir(dir);
}

/* A failed CHANGE MASTER is reported without anything of the statement: MariaDB 10.11 answers a
 * MASTER_PASSWORD over 96 bytes with 1470 "String 'PASSWORD...' is too long", quoting the
 * password's first 67 bytes, and a syntax error quotes the statement "near '...'". */
static void secret_statement_errors(void **state)
{
	(void)state;
	char out[512];
	const char *pw = "LongReplPw_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";
	char msg[256];
	snprintf(msg, sizeof(msg),
	         "String '%.67s...' is too long for MASTER_PASSWORD (should be no longer than 96)",
	         pw);
	ha_db_secret_stmt_error(out, sizeof(out), "CHANGE MASTER", 1470, msg);
	assert_null(strstr(out, "LongReplPw"));
	assert_non_null(strstr(out, "CHANGE MASTER: error 1470"));
	ha_db_secret_stmt_error(out, sizeof(out), "CHANGE MASTER", 1064,
	                        "You have an error in your SQL syntax; check the manual that "
	                        "corresponds to your MariaDB server version for the right syntax "
	                        "to use near 'secret'' at line 1");
	assert_null(strstr(out, "secret"));
	ha_db_secret_stmt_error(out, sizeof(out), "CHANGE MASTER", 1200, "x \"secret\" y");
	assert_null(strstr(out, "secret"));
	ha_db_secret_stmt_error(out, sizeof(out), "CHANGE MASTER", 1200, NULL);
	assert_non_null(strstr(out, "error 1200"));
	/* a message that quotes nothing is shown, for the operator to act on */
	ha_db_secret_stmt_error(out, sizeof(out), "CHANGE MASTER", 1227,
	                        "Access denied; you need (at least one of) the SUPER privilege(s) "
	                        "for this operation");
	assert_string_equal(out, "CHANGE MASTER: Access denied; you need (at least one of) the "
	                         "SUPER privilege(s) for this operation (1227)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sql_literals),  cmocka_unit_test(sql_identifiers),
	    cmocka_unit_test(option_values), cmocka_unit_test(option_values_read_by_mariadb),
	    cmocka_unit_test(option_file),   cmocka_unit_test(secret_statement_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
