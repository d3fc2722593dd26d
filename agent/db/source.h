/* What the binlog archiver needs to know of its source, the primary, before it streams from it
 * (blocking, bounded by the connection's timeouts; the archive thread). */
#ifndef HA_DB_SOURCE_H
#define HA_DB_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/gtid.h"
#include "db.h"

struct ha_binlog_source {
	uint32_t server_id;
	char *binlog_state;                /* @@gtid_binlog_state, malloc'd (any length) */
	char binlog_pos[HA_GTID_TEXT_MAX]; /* @@gtid_binlog_pos */
	char first_file[256];              /* the oldest binary log it still has */
};

/* 0, or HA_EDB with why (connect, a missing binary log, a value that does not fit). */
int ha_db_binlog_source(const struct ha_db_where *w, struct ha_binlog_source *out, char *why,
                        size_t why_size);
void ha_db_binlog_source_free(struct ha_binlog_source *s);

#endif
