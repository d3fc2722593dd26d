/* Quoting values for the places they are put into: MariaDB SQL (string literals, identifiers)
 * and MariaDB option files. Pure; any thread.
 *
 * A statement sent on a live connection quotes its literals with ha_db_quote (agent/db/conn.h):
 * mysql_real_escape_string follows that server's sql_mode. The SQL literal here is for where
 * there is no connection (a hint shown to the operator); it assumes the default sql_mode. */
#ifndef HA_QUOTE_H
#define HA_QUOTE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Appends s as a SQL string literal, '...', for a server in the default sql_mode: a quote is
 * doubled ('' reads as ' in every mode), a backslash, NUL, CR, LF and ^Z escaped with a
 * backslash. Under NO_BACKSLASH_ESCAPES a backslash in s would read as two: prefer ha_db_quote
 * where a connection exists. */
void ha_quote_sql_string(struct ha_buf *b, const char *s);

/* Appends s as a SQL identifier, `...`, its backquotes doubled (every sql_mode but
 * ANSI_QUOTES reads it so; the agent's sessions keep the server's default). */
void ha_quote_sql_ident(struct ha_buf *b, const char *s);

/* Whether s is exactly `schema`.`table` as ha_quote_sql_ident quotes both parts (nonempty,
 * every backquote inside doubled, nothing before, between or after): a table name read back
 * from a manifest is only put into a statement when it passes. */
bool ha_quote_sql_table_valid(const char *s);

/* Writes s as the value of an option file line (password=VALUE) into out, in double quotes,
 * so that MariaDB's option file reader (mysys my_default.c: quotes around a value stripped, '#'
 * outside quotes starts a comment, spaces at either end dropped, \\ \" \' \n \r \t \b \s
 * unescaped) gives back s exactly: a backslash, a double quote, LF, CR, TAB and BS are escaped;
 * '#', single quotes, inner and outer spaces and bytes above 0x7f stay as they are, inside the
 * quotes. Returns the quoted length (out NULL: only that), or -1 with out "" when it does not fit
 * in size bytes or would be longer than HA_QUOTE_OPTION_MAX (the reader's line buffer is 4 KiB).
 * No allocation: a caller quoting a password knows the only copy is in out. */
#define HA_QUOTE_OPTION_MAX 2048
long ha_quote_option_value(char *out, size_t size, const char *s);

#endif
