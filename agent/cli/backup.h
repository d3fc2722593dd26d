/* haadm's access to the backups, in restore.c, shared by backup.c (haadm backup), restore.c
 * (haadm restore, backup verify) and reclone.c: the replicated catalog from any agent, the
 * repository and its key from the configuration, and restoring a chain into a datadir.
 * Blocking; haadm only. */
#ifndef HA_CLI_BACKUP_H
#define HA_CLI_BACKUP_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "../backup/chunk.h"
#include "../backup/repos.h"
#include "../backup/store.h"
#include "../common/err.h"
#include "../db/db.h"
#include "haadm.h"

struct repo {
	char path[PATH_MAX + 80]; /* for messages: the first repository, or all their names */
	struct ha_repos repos;    /* every [repository NAME]; store and archive read them all */
	struct ha_store store;
	char mbstream[PATH_MAX];
	char tool[PATH_MAX];
	char binlog_tool[PATH_MAX], client_tool[PATH_MAX];
	struct ha_store archive; /* the binlog archive's slices (backup/archive.h) */
	uint8_t key[HA_KEY_LEN];
	unsigned workers;
};

/* The catalog, from the first agent that answers. */
int ha_cli_catalog(const struct globals *g, Haagent__BackupsResponse **out, struct ha_err *e);

/* Holds backup id and its chain against retention while this haadm reads it (HA_CLI_HOLD_MS),
 * then fetches the catalog again into *cat (freeing the old one) once the hold shows there.
 * A hold that cannot be had (no raft leader: a restore is needed most when the cluster is
 * broken) is warned about on stderr and the read goes on; returns 0 then too. */
#define HA_CLI_HOLD_MS (24 * 3600 * 1000ULL)
int ha_cli_hold(const struct globals *g, uint64_t id, Haagent__BackupsResponse **cat,
                struct ha_err *e);

/* Backup id in the catalog, or NULL. */
const Haagent__BackupRecord *ha_cli_backup_find(const Haagent__BackupsResponse *r, uint64_t id);

#define HA_CLI_MAX_CHAIN 1024 /* backups in one restore chain, full one included */

/* The chain of backup id, from id down to its full backup: its length, or a negative code
 * with e saying which link is missing or not finished. */
int ha_cli_backup_chain(const Haagent__BackupsResponse *cat, uint64_t id,
                        uint64_t chain[HA_CLI_MAX_CHAIN], struct ha_err *e);

/* The repository and the master key of haadm's configuration ([backup]). */
int ha_cli_open_repo(const struct globals *g, struct repo *rp, struct ha_err *e);

/* Restores backup id with its chain (full, then each differential or incremental backup) into
 * dir, prepared and ready to start; dir must not exist or be empty. Atomic: dir appears whole
 * or not at all. n_out: the length of the chain. */
int ha_cli_restore_chain(struct repo *rp, const Haagent__BackupsResponse *cat, uint64_t id,
                         const char *dir, unsigned *n_out, struct ha_err *e);

/* A backup state's name, as the catalog shows it ("running", "done", ...). */
const char *ha_cli_state_name(uint32_t state);

/* The one-line JSON result of backup run, verify and restore (dir: target_dir, or null). */
void ha_cli_result_json(const char *result, uint64_t id, const char *detail, uint64_t ms,
                        const char *dir);

/* haadm backup verify ID [--drill]: checks backup id (every chunk, or with drilling the chain
 * restored and started), reports the result to the catalog and prints it; an exit code. */
int ha_cli_backup_verify(struct globals *g, uint64_t id, bool drilling);

/* A throwaway mariadbd on a restored datadir (the drill, point-in-time replay): no network, no
 * grant tables, its socket and pid file NAME.sock and NAME.pid in dir, its error log
 * logs/NAME.err. Started and answering, or an error. _stop: a clean shutdown (SIGKILL after a
 * minute); 0 when it shut down cleanly. */
struct ha_cli_server {
	pid_t pid;
	char sock[PATH_MAX + 16];
	struct ha_db_where where;
};
int ha_cli_server_start(const char *dir, const char *logs, const char *name,
                        struct ha_cli_server *srv, struct ha_err *e);
int ha_cli_server_stop(struct ha_cli_server *srv);

#endif
