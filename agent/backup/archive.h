/* The continuous binlog archive (docs/backup.md, "Binlog archive"): blocking, on the archive
 * thread of the agent that leads (agent/archiver.c) and in haadm; never on the event loop.
 *
 * The archiver streams the primary's binary log with `mariadb-binlog --read-from-remote-server
 * --raw --stop-never` into a local scratch directory, reads the files as they grow, cuts the
 * history into slices of whole transactions (slice.h), seals them like backups and commits
 * each to the repository (ROOT/archive), at least every seal_ms while transactions arrive.
 * It starts where the replicated head ends: from that GTID position when the primary has it;
 * from where the two agree when the primary lacks the head's last transactions (a failover
 * left them behind on the old primary: errant, listed in the next slice); from the primary's
 * oldest binary log when the position was purged (a gap, said in the next slice). */
#ifndef HA_BACKUP_ARCHIVE_H
#define HA_BACKUP_ARCHIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/err.h"
#include "../common/gtid.h"
#include "binlogev.h"
#include "slice.h"
#include "store.h"

struct ha_archive_spec {
	struct ha_store *store; /* of kind "archive" */
	const uint8_t *master_key;
	const char *work_dir; /* local scratch, emptied at start */
	const char *tool;     /* mariadb-binlog */
	const char *host;
	unsigned port;
	const char *user, *password;
	const char *node; /* the archiver's node (the manifests say who wrote them) */
	uint32_t
	    dump_server_id; /* the binlog dump's server id: unique among the source's replicas */
	const char *head;   /* the newest slice the replicated state knows ("" none) */
	uint64_t head_seq;
	unsigned seal_ms;
	int level;
	atomic_int *cancel; /* nonzero: stop (mariadb-binlog is killed; sealed slices stay) */
	atomic_int *child_pid;
	_Atomic uint64_t *read_ms; /* when the stream last brought bytes (monotonic ms) */
	/* called on this thread after each slice is committed: the caller records it */
	void (*sealed)(void *arg, const struct ha_slice *s);
	/* the position the oldest backup kept starts from ("" none: nothing is pruned); asked now
	 * and then (every prune_ms) */
	void (*keep_from)(void *arg, char *out, size_t size);
	uint64_t prune_ms;
	void *arg;
};

/* Runs until cancelled or until the stream ends (the source went away: mariadb-binlog does
 * not reconnect; the caller starts it again). 0 when cancelled, else an error. */
int ha_archive_run(struct ha_archive_spec *s, struct ha_err *e);

/* Retention: removes the slices no restore can need: those numbered below the slice that
 * holds the first transaction after keep_from (per domain the lowest position of the kept
 * backups), and so also any orphan (a racing archiver's) below it. That slice is found by
 * halving over the listing (start positions only grow along the chain): a few manifests read,
 * not the whole chain. *removed: how many. */
int ha_archive_prune(struct ha_store *store, const uint8_t *master_key, const char *head,
                     const char *keep_from, unsigned *removed, struct ha_err *e);

/* Reads a slice's manifest from the store (authenticated). */
int ha_archive_slice(struct ha_store *store, const uint8_t *master_key, const char *name,
                     struct ha_slice *out, struct ha_err *e);

/* Every event of a slice in order, with its role (binlogev.h) and, inside a transaction, the
 * transaction's GTID and timestamp. raw/size: the event's bytes as stored. The first event is
 * the Format_description (HA_BL_OUTSIDE). Checks each chunk's hash and decryption. The
 * callback returns 0 to go on, 1 to stop early (not an error), or an error code. */
typedef int (*ha_archive_event_fn)(void *arg, const struct ha_bl_event *ev, enum ha_bl_role role,
                                   const struct ha_bl_split *tx, const uint8_t *raw);
int ha_archive_scan(struct ha_store *store, const uint8_t *master_key, const struct ha_slice *s,
                    ha_archive_event_fn fn, void *arg, struct ha_err *e);

#endif
