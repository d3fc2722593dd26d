/* The instance label of a server's datadir: which copy of the data an InnoDB LSN belongs to.
 *
 * An incremental or differential backup copies the pages whose LSN is above its parent's end
 * LSN; it is garbage unless it comes from the same InnoDB instance as its parent (another
 * server has its own LSN line; a datadir rebuilt by a restore or a reclone starts another).
 * server_id alone cannot tell a rebuilt datadir from the old one, so the label is derived from
 * the identities (inode number and birth time) of the datadir's `mysql` directory, its system
 * tablespace ibdata1 and its redo log ib_logfile0. A restore, a reclone, mariadb-install-db, a
 * copy-back or an rsync creates them anew; the server never does while it runs. Not caught: an
 * in-place overwrite of the very same files (cp onto them, rsync --inplace) or a block-level
 * rollback (a snapshot revert); the backup's LSN check catches a rollback below the parent's
 * end. Reading it needs only search permission on the datadir (no write: the agent may run
 * read-only beside the server). */
#ifndef HA_DB_INSTANCE_H
#define HA_DB_INSTANCE_H

#include "../../consensus/fsm.h" /* HA_INSTANCE_MAX */

/* The label of datadir's instance into out (32 hexadecimal digits). Returns 0, or -1 with out
 * "" when it cannot be read (no such directory, no permission). Blocking (a stat): worker
 * threads only. */
int ha_db_instance(const char *datadir, char out[HA_INSTANCE_MAX]);

#endif
