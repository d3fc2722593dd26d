/* Rejoin of a diverged node (docs/failover.md#rejoin-of-a-diverged-node): pure decisions, any
 * thread, no I/O. The agent's shell (agent/rejoin.c) saves and re-clones; the simulator runs
 * the same code as part of node/decide.c.
 *
 * A node is diverged when its binlog holds transactions the primary lacks. They may be thrown
 * away, by the node itself, only when no client was ever told they committed:
 *
 *   1. semi-sync was active on this node during the whole time it was last the writable
 *      primary, as its own agent watched it from before it turned writable until its fence
 *      (Rpl_semi_sync_master_status ON at every writable sample, Rpl_semi_sync_master_no_times
 *      never grew while semi-sync was enabled: it never fell back to asynchronous, when a
 *      commit returns without an acknowledgement), so a transaction no replica has was never
 *      acknowledged: its client got an error (its session killed by the fence) or nothing;
 *   2. every errant transaction carries this node's own server id (another server's are not
 *      this node's in-flight writes), in each domain directly after the last transaction of
 *      this server that the primary has (no other server's transaction in between);
 *   3. there are at most rejoin_max_errant of them (by sequence numbers): an in-flight tail is
 *      one transaction per client connection that was committing at the freeze.
 *
 * Anything else stays diverged, and the reason is reported with a HINT for the operator. */
#ifndef HA_NODE_REJOIN_H
#define HA_NODE_REJOIN_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/gtid.h"
#include "../db/probe.h"

/* A binary log state's text (@@gtid_binlog_state: one entry per domain and server). */
#define HA_REJOIN_STATE_MAX 4096
#define HA_REJOIN_WHY_MAX   768

/* What this node's agent saw of semi-sync the last time its server was the writable primary. */
struct ha_rejoin_watch {
	uint64_t epoch;     /* that epoch (0: never seen as the primary) */
	bool from_start;    /* watched since before its server turned writable at that epoch */
	bool lapsed;        /* semi-sync not active at a writable sample, or it fell back */
	char lapse[160];    /* what was seen */
	uint64_t off_times; /* Rpl_semi_sync_master_no_times last seen */
	bool seen_writable; /* its server was writable at a sample of that epoch */
};

/* Every sample with the database up: primary says this node is the epoch's primary. */
void ha_rejoin_watch(struct ha_rejoin_watch *w, const struct ha_probe_sample *s, uint64_t epoch,
                     bool primary);
/* A fence's end: semi-sync as the fence read it once no client was left (read: it could). */
void ha_rejoin_fenced(struct ha_rejoin_watch *w, bool read, bool enabled, uint64_t off_times);

struct ha_rejoin_in {
	const char *node;         /* this node's name, for the message */
	const char *local_state;  /* this server's @@gtid_binlog_state */
	const char *target_state; /* the primary's @@gtid_binlog_state */
	uint32_t self_server;     /* this server's server_id */
	const struct ha_rejoin_watch *watch;
	unsigned max_errant;
	bool manual; /* [failover] rejoin = manual */
};

struct ha_rejoin_verdict {
	bool safe;
	uint64_t count;               /* errant transactions, at most (by sequence numbers) */
	char start[HA_GTID_TEXT_MAX]; /* per errant domain: the primary's last of this server */
	char stop[HA_GTID_TEXT_MAX];  /* per errant domain: this server's last */
	char ranges[256];             /* "0-1-105..107" for messages */
	char why[HA_REJOIN_WHY_MAX];  /* not safe: why, and a HINT */
};

/* Is the errant set an unacknowledged tail this node may discard by itself? v is filled in
 * either way (start/stop/ranges/count when the states could be compared). */
void ha_rejoin_judge(const struct ha_rejoin_in *in, struct ha_rejoin_verdict *v);

/* What the shell does for a safe verdict: save the tail as text, then re-clone. */
struct ha_rejoin_req {
	char node[64];
	uint32_t server_id;
	uint64_t count;
	char start[HA_GTID_TEXT_MAX];
	char stop[HA_GTID_TEXT_MAX];
	char ranges[256];
	char binlog_index[PATH_MAX]; /* this server's @@log_bin_index, as it last said */
	char datadir[PATH_MAX];      /* relative names in the index are relative to it */
};

/* The pause before the next attempt after `failures` failed ones: 30 s doubling, at most
 * 15 min. */
uint64_t ha_rejoin_backoff_ms(unsigned failures);

#endif
