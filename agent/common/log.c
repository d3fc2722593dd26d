#include "log.h"

#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum ha_log_level min_level = HA_LOG_INFO;
static char line_prefix[64];

void ha_log_set_level(enum ha_log_level level)
{
	min_level = level;
}

int ha_log_parse_level(const char *s)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void ha_log_set_prefix(const char *prefix)
{
	snprintf(line_prefix, sizeof(line_prefix), "%s", prefix ? prefix : "");
}

void ha_log(enum ha_log_level level, const char *event, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info ", "warn ", "error"};
	if (level < min_level)
		return;
	char line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s%s%s ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, (int)(tv.tv_usec / 1000), names[level], line_prefix,
	                 line_prefix[0] ? " " : "", event);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 2;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

bool ha_log_due(struct ha_log_limit *l, unsigned long long *count)
{
	unsigned long long now = ha_now_ms();
	if (!l->ever) {
		l->ever = true;
		l->tokens = HA_LOG_BURST;
		l->last_ms = now;
	}
	unsigned long long earned = (now - l->last_ms) / HA_LOG_EVERY_MS;
	if (earned > 0) {
		l->tokens = earned >= HA_LOG_BURST || l->tokens + earned >= HA_LOG_BURST
		                ? HA_LOG_BURST
		                : l->tokens + (unsigned)earned;
		l->last_ms += earned * HA_LOG_EVERY_MS;
	}
	l->held++;
	if (l->tokens == 0)
		return false;
	l->tokens--;
	*count = l->held;
	l->held = 0;
	return true;
}
