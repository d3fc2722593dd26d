/* Logging to stderr in a line format journald keeps readable:
 *     2026-11-24T04:30:01.123Z info  raft-leader term=3 node=node1
 * The first word after the level is an event name (named in one place per module); the rest is
 * key=value fields. Thread-safe: each line is written with a single write(2). */
#ifndef HA_LOG_H
#define HA_LOG_H

enum ha_log_level { HA_LOG_DEBUG, HA_LOG_INFO, HA_LOG_WARN, HA_LOG_ERROR };

void ha_log_set_level(enum ha_log_level level);
/* Parses "debug", "info", "warn", "error"; returns -1 on anything else. */
int ha_log_parse_level(const char *s);
/* Prefix added after the level on every line, e.g. the node name; copied. */
void ha_log_set_prefix(const char *prefix);

void ha_log(enum ha_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ha_debug(ev, ...) ha_log(HA_LOG_DEBUG, ev, __VA_ARGS__)
#define ha_info(ev, ...)  ha_log(HA_LOG_INFO, ev, __VA_ARGS__)
#define ha_warn(ev, ...)  ha_log(HA_LOG_WARN, ev, __VA_ARGS__)
#define ha_error(ev, ...) ha_log(HA_LOG_ERROR, ev, __VA_ARGS__)

#endif
