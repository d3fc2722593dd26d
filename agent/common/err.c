#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ha_strerror(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
#define HA_ERR_CASE(name, num, text)                                                               \
	case num:                                                                                  \
		return text;
		HA_ERRORS(HA_ERR_CASE)
#undef HA_ERR_CASE
	}
	return "unknown error";
}

int ha_exit_code(int code)
{
	return code < 0 ? -code : code;
}

int ha_err_set(struct ha_err *e, int code, const char *fmt, ...)
{
	if (e == NULL)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->code = code;
	return code;
}

int ha_err_wrap(struct ha_err *e, const char *fmt, ...)
{
	if (e == NULL)
		return HA_EINTERNAL;
	char ctx[HA_ERR_MSG_MAX];
	char old[HA_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	size_t n = strlen(ctx);
	if (n > sizeof(e->msg) - 3)
		n = sizeof(e->msg) - 3;
	memcpy(e->msg, ctx, n);
	memcpy(e->msg + n, ": ", 2);
	size_t rest = sizeof(e->msg) - n - 3;
	size_t m = strlen(old);
	if (m > rest)
		m = rest;
	memcpy(e->msg + n + 2, old, m);
	e->msg[n + 2 + m] = '\0';
	return e->code;
}

void ha_err_clear(struct ha_err *e)
{
	e->code = 0;
	e->msg[0] = '\0';
}
