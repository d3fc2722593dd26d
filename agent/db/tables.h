/* The user tables of a server, for backups: their CHECKSUM TABLE recorded on the source replica
 * right after a backup, and in a restore drill CHECK TABLE of every table and CHECKSUM TABLE
 * compared with what was recorded. Blocking, every call bounded by timeouts: for the backup
 * thread and haadm, never the event loop.
 *
 * User tables: base tables outside mysql, information_schema, performance_schema and sys, of a
 * local engine whose data a physical backup copies (InnoDB, Aria, MyISAM; not MEMORY, which a
 * restore leaves empty). */
#ifndef HA_DB_TABLES_H
#define HA_DB_TABLES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../backup/manifest.h"
#include "db.h"

/* On the source of a backup, right after mariadb-backup finished at position gtid (its
 * gtid_binlog_pos): when the server's @@gtid_binlog_pos equals gtid before and after, the
 * checksum of every user table goes into m->sums (sorted by name). Otherwise, or when the user
 * tables hold more than max_bytes of data (0: never), or there are more than
 * HA_MANIFEST_MAX_SUMS of them, none, with m->sums_note saying why. cancel, when it becomes
 * nonzero, stops between tables. Never fails the backup: returns the number of sums. */
size_t ha_db_record_sums(const struct ha_db_where *w, const char *gtid, uint64_t max_bytes,
                         atomic_int *cancel, struct ha_manifest *m);

/* The drill, on a restored server: CHECK TABLE on every user table, then CHECKSUM TABLE of
 * every table in want[] compared with the recorded value. Returns 0 with detail saying what
 * passed, or HA_EDB with detail naming the first problem ("CHECK TABLE failed on ...",
 * "checksum of `db`.`t` differs: ..."). */
int ha_db_drill_tables(const struct ha_db_where *w, const struct ha_table_sum *want, size_t n_want,
                       const char *no_sums_note, char *detail, size_t size);

#endif
