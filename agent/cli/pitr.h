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

/* A re-clone's roll forward: replays every archived transaction after backup id onto its
 * restored, prepared datadir dir (a throwaway server, stopped cleanly after), which then stands
 * at *position (less to catch up by replication). An error when the archive cannot (no
 * archive, a gap after the backup, a backup off the main line, the replay failing): dir is
 * then partly replayed and must be restored again. */
struct repo;
int ha_pitr_roll_forward(struct repo *rp, const Haagent__BackupsResponse *cat, uint64_t id,
                         const char *dir, char *position, size_t size, uint64_t *replayed,
                         struct ha_err *e);

/* haadm binlog list | verify | find */
int ha_cmd_binlog(struct globals *g, int argc, char **argv);

#endif
