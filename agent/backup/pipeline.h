/* Backup and restore pipelines: blocking, run on a dedicated thread (agent) or in haadm, never
 * on the event loop or libuv's pool.
 *
 * Backup: `mariadb-backup --backup --stream=mbstream` runs as a child (its password in a 0600
 * defaults file, never in argv); its output is cut into chunks that worker threads compress and
 * encrypt (chunk.h) while a writer thread hands them in order, with their SHA-256, to the store
 * (store.h), which makes the backup visible only whole, with its manifest.
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
#include "store.h"

struct ha_backup_spec {
	struct ha_store *store;
	const char *work_dir; /* local scratch: password file, logs, LSN files */
	const uint8_t *master_key;
	const char *tool; /* mariadb-backup */
	const char *host;
	unsigned port;
	const char *user, *password;
	uint64_t incremental_lsn; /* 0: full */
	unsigned throttle;        /* mariadb-backup --throttle (0: none) */
	atomic_int *hold;         /* nonzero: stop reading the stream for now (source lagging) */
	unsigned hold_max_ms; /* at most this long in total (mariadb-backup's redo copy waits) */
	uint64_t held_ms;     /* out: how long it was held */
	int level;            /* zstd level */
	unsigned chunk_bytes;
	unsigned workers;
	atomic_int *cancel;    /* nonzero: stop (the child is killed) */
	atomic_int *child_pid; /* the running mariadb-backup, for the caller's information */
	struct ha_manifest *m; /* in: id, name, type, parent, parent_name, node, lag, load;
	                          out: everything else */
	/* Called once mariadb-backup succeeded and m describes the backup, before the manifest
	 * is written: may add to m (the table checksums). NULL: nothing. */
	void (*before_commit)(struct ha_backup_spec *s);
	void *arg; /* the caller's, for before_commit */
};

int ha_backup_create(struct ha_backup_spec *s, struct ha_err *e);

/* Reads, authenticates (manifest.h) and parses a backup's manifest from the store. */
int ha_backup_manifest(struct ha_store *store, const uint8_t *master_key, const char *name,
                       struct ha_manifest *m, struct ha_err *e);

/* Checks every chunk of a backup (hash and decryption); with mbstream and dir set, also
 * extracts it into dir (which must exist). workers: decryption threads. */
int ha_backup_extract(struct ha_store *store, const uint8_t *master_key,
                      const struct ha_manifest *m, const char *mbstream, const char *dir,
                      unsigned workers, struct ha_err *e);

#endif
