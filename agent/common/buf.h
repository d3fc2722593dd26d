/* A growable byte buffer and a small JSON writer on top of it.
 *
 * Allocation failure is sticky: after it, every append is a no-op and ha_buf_failed() is true,
 * so callers check once at the end. */
#ifndef HA_BUF_H
#define HA_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ha_buf {
	char *data; /* NUL-terminated when len > 0 or after ha_buf_cstr() */
	size_t len;
	size_t cap;
	bool failed;
};

#define HA_BUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0, false                                                                  \
	}

void ha_buf_free(struct ha_buf *b);
void ha_buf_reset(struct ha_buf *b);
bool ha_buf_failed(const struct ha_buf *b);
void ha_buf_append(struct ha_buf *b, const void *data, size_t n);
void ha_buf_puts(struct ha_buf *b, const char *s);
void ha_buf_printf(struct ha_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void ha_buf_consume(struct ha_buf *b, size_t n);
/* Never NULL: "" for an empty buffer. */
const char *ha_buf_cstr(struct ha_buf *b);

/* JSON writer. Tracks whether a comma is needed at each nesting level (depth <= 32). */
struct ha_json {
	struct ha_buf *out;
	int depth;
	bool need_comma[32];
	bool pretty;
};

void ha_json_init(struct ha_json *j, struct ha_buf *out, bool pretty);
void ha_json_obj_begin(struct ha_json *j, const char *key);
void ha_json_obj_end(struct ha_json *j);
void ha_json_arr_begin(struct ha_json *j, const char *key);
void ha_json_arr_end(struct ha_json *j);
/* key is NULL inside arrays. */
void ha_json_str(struct ha_json *j, const char *key, const char *v);
/* Writes null when v is NULL or empty. */
void ha_json_str_or_null(struct ha_json *j, const char *key, const char *v);
void ha_json_int(struct ha_json *j, const char *key, int64_t v);
void ha_json_uint(struct ha_json *j, const char *key, uint64_t v);
void ha_json_double(struct ha_json *j, const char *key, double v);
void ha_json_bool(struct ha_json *j, const char *key, bool v);
void ha_json_null(struct ha_json *j, const char *key);

#endif
