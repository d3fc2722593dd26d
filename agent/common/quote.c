#include "quote.h"

#include <string.h>

void ha_quote_sql_string(struct ha_buf *b, const char *s)
{
	ha_buf_puts(b, "'");
	for (const char *p = s; *p; p++) {
		switch (*p) {
		case '\'':
			ha_buf_puts(b, "''");
			break;
		case '\\':
			ha_buf_puts(b, "\\\\");
			break;
		case '\n':
			ha_buf_puts(b, "\\n");
			break;
		case '\r':
			ha_buf_puts(b, "\\r");
			break;
		case '\032':
			ha_buf_puts(b, "\\Z");
			break;
		default:
			ha_buf_append(b, p, 1);
		}
	}
	ha_buf_puts(b, "'");
}

void ha_quote_sql_ident(struct ha_buf *b, const char *s)
{
	ha_buf_puts(b, "`");
	for (const char *p = s; *p; p++) {
		ha_buf_append(b, p, 1);
		if (*p == '`')
			ha_buf_append(b, p, 1); /* doubled */
	}
	ha_buf_puts(b, "`");
}

/* One quoted identifier at *p: moves *p past it; false when there is none (or it is empty). */
static bool ident(const char **p)
{
	const char *s = *p;
	if (*s++ != '`')
		return false;
	size_t n = 0;
	for (;;) {
		if (*s == '\0')
			return false;
		if (*s == '`') {
			if (s[1] != '`')
				break;
			s += 2;
		} else {
			s++;
		}
		n++;
	}
	*p = s + 1; /* past the closing backquote */
	return n > 0;
}

bool ha_quote_sql_table_valid(const char *s)
{
	const char *p = s;
	if (s == NULL || !ident(&p) || *p++ != '.' || !ident(&p))
		return false;
	return *p == '\0';
}

/* The escape of ch inside a quoted option value, or 0 when it stays as it is. */
static char option_escape(char ch)
{
	switch (ch) {
	case '\\':
		return '\\';
	case '"':
		return '"';
	case '\n':
		return 'n';
	case '\r':
		return 'r';
	case '\t':
		return 't';
	case '\b':
		return 'b';
	default:
		return 0;
	}
}

long ha_quote_option_value(char *out, size_t size, const char *s)
{
	size_t need = 2;
	for (const char *p = s; *p; p++)
		need += option_escape(*p) ? 2 : 1;
	if (out != NULL && size > 0)
		out[0] = '\0';
	if (need > HA_QUOTE_OPTION_MAX)
		return -1;
	if (out == NULL)
		return (long)need;
	if (need >= size)
		return -1;
	size_t k = 0;
	out[k++] = '"';
	for (const char *p = s; *p; p++) {
		char esc = option_escape(*p);
		if (esc) {
			out[k++] = '\\';
			out[k++] = esc;
		} else {
			out[k++] = *p;
		}
	}
	out[k++] = '"';
	out[k] = '\0';
	return (long)k;
}
