/* Logging to stderr in a line format journald keeps readable:
 *     2026-11-24T04:30:01.123Z info  raft-leader term=3 node=node1
 * The first word after the level is an event name (named in one place per module); the rest is
 * key=value fields. Thread-safe: each line is written with a single write(2). */
#ifndef HA_LOG_H
#define HA_LOG_H

#include <stdbool.h>

enum ha_log_level { HA_LOG_DEBUG, HA_LOG_INFO, HA_LOG_WARN, HA_LOG_ERROR };

void ha_log_set_level(enum ha_log_level level);
/* Parses "debug", "info", "warn", "error"; returns -1 on anything else. */
int ha_log_parse_level(const char *s);
/* Prefix added after the level on every line, e.g. the node name; copied. */
void ha_log_set_prefix(const char *prefix);

void ha_log(enum ha_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Lines an outsider can cause (a refused connection, a full server) are rate-limited per
 * limiter: a burst of HA_LOG_BURST lines, then one per HA_LOG_EVERY_MS, each carrying how many
 * occurrences it stands for (count=N, itself and those held back). One thread per limiter (the
 * loop's). */
#define HA_LOG_BURST    20
#define HA_LOG_EVERY_MS 1000
struct ha_log_limit {
	unsigned long long last_ms, held;
	unsigned tokens;
	bool ever;
};
/* True when a line is due now; *count is the occurrences it stands for (this one included). */
bool ha_log_due(struct ha_log_limit *l, unsigned long long *count);

#define ha_debug(ev, ...) ha_log(HA_LOG_DEBUG, ev, __VA_ARGS__)
#define ha_info(ev, ...)  ha_log(HA_LOG_INFO, ev, __VA_ARGS__)
#define ha_warn(ev, ...)  ha_log(HA_LOG_WARN, ev, __VA_ARGS__)
#define ha_error(ev, ...) ha_log(HA_LOG_ERROR, ev, __VA_ARGS__)

#endif
