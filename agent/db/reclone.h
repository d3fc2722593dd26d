/* The database steps of `haadm node reclone` (agent/cli/reclone.c), on the freshly restored
 * server of the node being re-cloned, while it is in maintenance (its agent leaves its
 * replication alone). Blocking, bounded by timeouts: haadm only. */
#ifndef HA_DB_RECLONE_H
#define HA_DB_RECLONE_H

#include <stddef.h>

#include "db.h"

/* Leaves the server ready to be repointed by its agent: no replication configured (STOP SLAVE,
 * RESET SLAVE ALL), no binary log of its own (RESET MASTER: binlogs kept outside the datadir
 * would carry the transactions it was re-cloned to be rid of), and gtid_slave_pos at the
 * backup's position `gtid` when that contains the restored one (a backup of a primary, or of a
 * replica that had been primary and applied nothing since, restores a gtid_slave_pos behind
 * its data). Returns 0 with detail saying what was done, or HA_EDB with detail. */
int ha_db_reset_as_replica(const struct ha_db_where *w, const char *gtid, char *detail,
                           size_t size);

/* After a point-in-time replay into a throwaway server: no replication configured (the
 * restored replica's settings would start it rolling forward past the point), and
 * gtid_slave_pos at the position reached, so a replica made of it resumes there. */
int ha_db_pitr_finish(const struct ha_db_where *w, const char *gtid, char *detail, size_t size);

#endif
