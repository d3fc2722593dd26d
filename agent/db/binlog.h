/* Reading the head of a MariaDB binary log file (pure: bytes in, position out).
 *
 * Every binlog file starts with the magic "\xfe" "bin", a Format_description event, then a
 * Gtid_list event: the binlog state when the file was started, the last GTID of each (domain,
 * server). Salvage (salvage.h) uses it to begin reading at the newest file that starts at or
 * before the position to salvage from, instead of parsing every file since the first. */
#ifndef HA_DB_BINLOG_H
#define HA_DB_BINLOG_H

#include <stddef.h>
#include <stdint.h>

#include "../common/gtid.h"

/* The position a file starts from (per domain, the highest sequence number of its Gtid_list),
 * from the first len bytes of the file. 0, or -1 when those bytes are not a binlog head with a
 * Gtid_list event among its first events (another format, an encrypted binlog, a truncated
 * head, more domains than a position holds): the caller then cannot skip this file. Input is
 * hostile: every length is checked against len. */
int ha_binlog_head_position(const uint8_t *head, size_t len, struct ha_gtid_pos *out);

/* Whether a file that starts at `file_start` holds nothing a server at `have` lacks before its
 * events: every domain of file_start is in have, at a sequence number no higher. */
int ha_binlog_starts_within(const struct ha_gtid_pos *file_start, const struct ha_gtid_pos *have);

#endif
