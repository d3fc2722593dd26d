/* Backup and restore pipelines: blocking, run on a dedicated thread (agent) or in haadm, never
 * on the event loop or libuv's pool.
 *
 * Backup: `mariadb-backup --backup --stream=mbstream` runs as a child (its password in a 0600
 * defaults file, never in argv); its output is cut into chunks that worker threads compress and
 * encrypt (chunk.h) while a writer thread stores them in order with their SHA-256. The backup is
 * built under REPO/.partial/NODE/NAME and renamed to REPO/backups/NAME only once its manifest is
 * written and synced: a half-written backup never appears.
 *
 * Restore: every chunk is checked (hash, then authenticated decryption) and the stream fed to
 * `mbstream -x`; any damage stops it with the chunk named. */
#ifndef HA_BACKUP_PIPELINE_H
#define HA_BACKUP_PIPELINE_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/err.h"
#include "chunk.h"
#include "manifest.h"

struct ha_backup_spec {
	const char *repo;
	const uint8_t *master_key;
	const char *tool; /* mariadb-backup */
	const char *host;
	unsigned port;
	const char *user, *password;
	uint64_t incremental_lsn; /* 0: full */
	unsigned throttle;        /* mariadb-backup --throttle (0: none) */
	int level;                /* zstd level */
	unsigned chunk_bytes;
	unsigned workers;
	atomic_int *cancel;    /* nonzero: stop (the child is killed) */
	atomic_int *child_pid; /* the running mariadb-backup, for the caller's information */
	struct ha_manifest *m; /* in: id, name, type, parent, parent_name, node, lag, load;
	                          out: everything else */
};

int ha_backup_create(struct ha_backup_spec *s, struct ha_err *e);

/* Reads REPO/backups/NAME/manifest. */
int ha_backup_manifest(const char *repo, const char *name, struct ha_manifest *m, struct ha_err *e);

/* Checks every chunk of a backup (hash and decryption); with mbstream and dir set, also
 * extracts it into dir (which must exist). workers: decryption threads. */
int ha_backup_extract(const char *repo, const uint8_t *master_key, const struct ha_manifest *m,
                      const char *mbstream, const char *dir, unsigned workers, struct ha_err *e);

/* Deletes REPO/backups/NAME. */
int ha_backup_delete(const char *repo, const char *name, struct ha_err *e);

/* Removes what a node left under REPO/.partial/NODE (a backup interrupted by a crash). */
void ha_backup_clean_partial(const char *repo, const char *node);

#endif
