/* Salvage from a crashed primary's binary log (worker threads only: blocking).
 *
 * When mariadbd died but its host and agent live, its binlog on disk may hold transactions no
 * replica received: always so with asynchronous replication, or after semi-sync fell back. The
 * old primary's agent reads them from its local binlog files and applies them to the new primary
 * before that one takes writes, so an asynchronous cluster loses nothing on a mariadbd crash:
 *
 *   1. on the candidate (still read-only): STOP SLAVE IO_THREAD, then wait until its SQL thread
 *      applied everything relayed (what was relayed comes first: GTID order);
 *   2. its gtid_current_pos is the start: `mariadb-binlog --start-position=<it> <files of the
 *      local binlog index>` prints exactly the transactions after it (it matches GTIDs, never
 *      prints one the start already holds, and prints nothing when the logs begin after the
 *      start: purged), with their original GTIDs (domain, server id, sequence number), so the
 *      old primary can later replicate from the new one without diverging;
 *   3. piped into `mariadb` connected to the candidate with a private 0600 defaults file (the
 *      password never in argv), --skip-reconnect (a reconnect would lose the session state and
 *      apply the rest out of context), both in one process group killed at the deadline;
 *   4. what was salvaged is measured, not assumed: the candidate's gtid_current_pos after, less
 *      before. mariadb-binlog exits non-zero whenever a domain has nothing after the start, so
 *      its exit status says nothing; the client's says whether everything it was given applied.
 *
 * The agent's user must be able to replay them on a read-only server: READ_ONLY ADMIN, BINLOG
 * REPLAY (the BINLOG statements of row events) and the data privileges; docs/failover.md. */
#ifndef HA_DB_SALVAGE_H
#define HA_DB_SALVAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/gtid.h"
#include "db.h"

struct ha_salvage_req {
	struct ha_db_where target; /* the candidate's server, as the agent's user */
	const char *binlog_index;  /* this server's @@log_bin_index, as it last reported it */
	const char *datadir;       /* relative names in the index are relative to it */
	const char *work_dir;      /* private scratch (0700): the defaults file and the logs */
	const char *binlog_tool;   /* "mariadb-binlog" */
	const char *client_tool;   /* "mariadb" */
	unsigned timeout_ms;       /* everything, waiting for the relay log included */
	/* set (any thread) to stop early: the local server came back (it must be fenceable at
	 * once) or the agent stops; the processes are killed, what applied is still measured */
	const atomic_bool *cancel;
};

struct ha_salvage_result {
	bool complete;                   /* the client applied all it was given */
	char before[HA_GTID_TEXT_MAX];   /* the candidate's position before */
	char salvaged[HA_GTID_TEXT_MAX]; /* what it gained (upper bounds per domain) */
	uint64_t count;                  /* how many transactions */
	unsigned files;                  /* binlog files read */
	char msg[512];                   /* what happened, or why it could not */
};

/* 0 when the salvage ran (r->complete says whether the client applied everything; r->count what
 * did apply), or a negative HA_E... code with r->msg when it could not run at all. */
int ha_db_salvage(const struct ha_salvage_req *q, struct ha_salvage_result *r);

/* The binlog files an index file lists, each resolved against datadir when relative: a
 * NULL-terminated array (free it with ha_salvage_free_files), or NULL with why set. */
char **ha_salvage_index_files(const char *index_path, const char *datadir, unsigned *count,
                              char *why, size_t why_size);
void ha_salvage_free_files(char **files);

#endif
