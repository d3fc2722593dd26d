/* Point-in-time recovery and the binlog archive for haadm (pitr.c; docs/backup.md). */
#ifndef HA_CLI_PITR_H
#define HA_CLI_PITR_H

#include <stddef.h>
#include <stdint.h>

#include "../common/gtid.h"
#include "haadm.h"

enum ha_pitr_kind {
	HA_PITR_TIME = 1,        /* every transaction that began before the time (UTC) */
	HA_PITR_TO_GTID = 2,     /* up to and including the GTID */
	HA_PITR_BEFORE_GTID = 3, /* up to and excluding the GTID */
};

struct ha_pitr_point {
	enum ha_pitr_kind kind;
	uint64_t unix_s;
	struct ha_gtid gtid;
};

struct ha_pitr_result {
	uint64_t backup, replayed, last_ts, head_ts;
	size_t slices;
	bool stopped; /* the point was reached inside the archive */
	char last_gtid[48];
	char position[HA_GTID_TEXT_MAX];
};

/* "YYYY-MM-DD HH:MM:SS" (or with a T), UTC, or followed by Z, UTC, +HH:MM or -HH:MM. */
int ha_pitr_parse_time(const char *text, uint64_t *unix_s, char *why, size_t size);
int ha_pitr_point_from(int kind, const char *text, struct ha_pitr_point *pt, char *why,
                       size_t size);

/* haadm restore [ID] --to-... --target-dir DIR: restores the newest backup before the point
 * (or backup ID) and replays the archive up to it; an exit code. */
int ha_pitr_restore(struct globals *g, uint64_t want, const struct ha_pitr_point *pt,
                    const char *dir);

/* haadm binlog list | find */
int ha_cmd_binlog(struct globals *g, int argc, char **argv);

#endif
