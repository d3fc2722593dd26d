#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ha_buf_free(struct ha_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}

void ha_buf_reset(struct ha_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

bool ha_buf_failed(const struct ha_buf *b)
{
	return b->failed;
}

static bool reserve(struct ha_buf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2) {
			b->failed = true;
			return false;
		}
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void ha_buf_append(struct ha_buf *b, const void *data, size_t n)
{
	if (!reserve(b, n))
		return;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void ha_buf_puts(struct ha_buf *b, const char *s)
{
	ha_buf_append(b, s, strlen(s));
}

void ha_buf_printf(struct ha_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n)) {
		b->failed = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void ha_buf_consume(struct ha_buf *b, size_t n)
{
	if (n >= b->len) {
		ha_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

const char *ha_buf_cstr(struct ha_buf *b)
{
	return b->data ? b->data : "";
}

/* ---- JSON ---- */

void ha_json_init(struct ha_json *j, struct ha_buf *out, bool pretty)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	j->pretty = pretty;
}

static void indent(struct ha_json *j)
{
	if (!j->pretty)
		return;
	ha_buf_puts(j->out, "\n");
	for (int i = 0; i < j->depth; i++)
		ha_buf_puts(j->out, "  ");
}

static void put_escaped(struct ha_buf *b, const char *s)
{
	ha_buf_puts(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			ha_buf_puts(b, "\\\"");
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
		case '\t':
			ha_buf_puts(b, "\\t");
			break;
		default:
			if (*p < 0x20)
				ha_buf_printf(b, "\\u%04x", *p);
			else
				ha_buf_append(b, p, 1);
		}
	}
	ha_buf_puts(b, "\"");
}

static void key(struct ha_json *j, const char *k)
{
	if (j->depth > 0 && j->need_comma[j->depth])
		ha_buf_puts(j->out, ",");
	if (j->depth > 0)
		indent(j);
	j->need_comma[j->depth] = true;
	if (k) {
		put_escaped(j->out, k);
		ha_buf_puts(j->out, j->pretty ? ": " : ":");
	}
}

static void open_(struct ha_json *j, const char *k, const char *c)
{
	key(j, k);
	ha_buf_puts(j->out, c);
	if (j->depth < 31)
		j->depth++;
	j->need_comma[j->depth] = false;
}

static void close_(struct ha_json *j, const char *c)
{
	bool had = j->need_comma[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (had)
		indent(j);
	ha_buf_puts(j->out, c);
}

void ha_json_obj_begin(struct ha_json *j, const char *k)
{
	open_(j, k, "{");
}

void ha_json_obj_end(struct ha_json *j)
{
	close_(j, "}");
}

void ha_json_arr_begin(struct ha_json *j, const char *k)
{
	open_(j, k, "[");
}

void ha_json_arr_end(struct ha_json *j)
{
	close_(j, "]");
}

void ha_json_str(struct ha_json *j, const char *k, const char *v)
{
	key(j, k);
	put_escaped(j->out, v ? v : "");
}

void ha_json_str_or_null(struct ha_json *j, const char *k, const char *v)
{
	if (v == NULL || v[0] == '\0')
		ha_json_null(j, k);
	else
		ha_json_str(j, k, v);
}

void ha_json_int(struct ha_json *j, const char *k, int64_t v)
{
	key(j, k);
	ha_buf_printf(j->out, "%lld", (long long)v);
}

void ha_json_uint(struct ha_json *j, const char *k, uint64_t v)
{
	key(j, k);
	ha_buf_printf(j->out, "%llu", (unsigned long long)v);
}

void ha_json_double(struct ha_json *j, const char *k, double v)
{
	key(j, k);
	ha_buf_printf(j->out, "%.2f", v);
}

void ha_json_bool(struct ha_json *j, const char *k, bool v)
{
	key(j, k);
	ha_buf_puts(j->out, v ? "true" : "false");
}

void ha_json_null(struct ha_json *j, const char *k)
{
	key(j, k);
	ha_buf_puts(j->out, "null");
}
