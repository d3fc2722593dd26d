/* Failover decisions on reported health. Pure functions, any thread; the coordinator (agent.c)
 * feeds them its current view and writes their decisions into the Raft log.
 *
 * Detection combines three views (docs/failover.md):
 *   1. the primary's own agent: mariadbd refusing/gone (down) vs hung vs fine;
 *   2. the replicas: is their IO thread connected, how long since the last event or heartbeat;
 *   3. agent reachability: is the primary's agent reporting at all.
 * One observer's suspicion is not a verdict: an unreachable agent alone, or one replica losing its
 * stream, never confirms a failure. */
#ifndef HA_FAILOVER_H
#define HA_FAILOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ha_fo_node {
	uint32_t id;
	const char *name;
	bool fresh; /* a health report within agent_timeout_ms */
	int db;     /* HAAGENT__DB_STATE__* (1 up, 2 down, 3 hung, 4 unusable) */
	const char *db_error;
	bool replicating; /* from the primary being judged */
	bool io_running;
	bool sql_running;
	const char *last_error;
	const char *sql_error; /* Last_SQL_Error alone ("" none) */
	bool relay_exhausted;  /* applied all its relay log, not streaming: received = applied */
	uint64_t rx_age_ms;
	uint64_t lost_for_ms; /* how long (as this leader saw it) it has lost its stream */
	const char *gtid_current;
	const char *gtid_io_pos;
	int64_t lag_seconds;
	unsigned threads_running;
	double loadavg1;
	uint32_t flags; /* HA_MEMBER_* */
	uint32_t priority;
	uint32_t server_id;
	bool read_only;  /* the primary's view only */
	bool lease_held; /* the primary's view only */
	bool restarted;  /* the primary's view only: its server restarted at this epoch, held */
};

struct ha_fo_conf {
	unsigned confirm_ms;      /* a down primary must stay down this long */
	unsigned hang_timeout_ms; /* a hung primary must stay hung this long */
	unsigned
	    stream_timeout_ms; /* a replica without event/heartbeat this long lost its stream */
};

/* Has replica r lost its stream (IO thread not running, or silent for stream_timeout_ms)? */
bool ha_fo_lost_stream(const struct ha_fo_node *r, const struct ha_fo_conf *c);

/* What is suspected of the primary (ha_fo_judge). */
enum ha_suspicion {
	HA_SUSPECT_NONE = 0,
	HA_SUSPECT_DB_DOWN,
	HA_SUSPECT_DB_HUNG,
	HA_SUSPECT_DB_UNUSABLE,
	HA_SUSPECT_DB_UNKNOWN,
	HA_SUSPECT_AGENT_UNREACHABLE,
	HA_SUSPECT_DB_RESTARTED,
};
/* "db-down", "db-hung", "db-unusable", "db-unknown", "agent-unreachable", "db-restarted"; ""
 * for none */
const char *ha_suspicion_name(enum ha_suspicion k);

enum ha_verdict {
	HA_PRIMARY_OK = 0,
	HA_PRIMARY_SUSPECT = 1, /* something is wrong, not (yet) enough evidence */
	HA_PRIMARY_FAILED = 2,  /* confirmed: fail over */
};

/* Judges the primary. `suspect_for_ms` is how long the caller has seen the same suspicion (the
 * caller keeps that clock, so this stays pure). `kind` receives the kind of suspicion
 * (HA_SUSPECT_NONE when OK). A database
 * the agent cannot use (login, limits) is judged like a silent agent: by the replicas' streams.
 * why receives a sentence. */
enum ha_verdict ha_fo_judge(const struct ha_fo_node *primary, const struct ha_fo_node *replicas,
                            size_t n_replicas, const struct ha_fo_conf *c, uint64_t suspect_for_ms,
                            enum ha_suspicion *kind, char *why, size_t why_size);

struct ha_gtid_pos;
/* What n has received: its applied position merged with what its IO thread wrote to the relay
 * log (while it replicates). 0, or HA_EINVAL when a position does not parse. */
int ha_fo_received(const struct ha_fo_node *n, struct ha_gtid_pos *out);

/* True when the replica has applied everything its IO thread received. */
bool ha_fo_relay_applied(const struct ha_fo_node *n);

/* Chooses the replica to promote among nodes[] (the old primary excluded by the caller):
 * eligible (fresh, database up, not in maintenance, not no-promote, not diverged, SQL thread not
 * broken), the most advanced received GTID position (ha_fo_received), then the highest priority,
 * then the lowest lag, then the lowest load, then the lowest id. Returns the index or -1, and
 * explains in why (the choice, or every reason each node was not eligible). When require_applied is
 * set, a node that has not applied its relay log is not eligible yet. */
int ha_fo_choose(const struct ha_fo_node *nodes, size_t n, bool require_applied, char *why,
                 size_t why_size);

/* Why promoting nodes[best] could lose transactions, or NULL when it cannot: a node has not
 * reported (its position is unknown), or a reporting node (eligible or not, its database up) has
 * received transactions nodes[best] has not received. *known is set in the second case (a
 * reachable node has more: waiting is worth it however long), not for a position that cannot
 * be read now (a silent agent, a hung or unusable database: bounded by apply_timeout_ms). When
 * both apply, the known one is returned. Writes the sentence into why. */
const char *ha_fo_unsafe(const struct ha_fo_node *nodes, size_t n, int best, char *why,
                         size_t why_size, bool *known);

/* Why n is not a healthy replica of the primary, or NULL: its agent reports, its database is
 * up, it is not in maintenance nor diverged, it replicates from the primary with both threads
 * running, its lag is known and at most max_lag_ms (buf holds that sentence). The one rule
 * behind a switchover target, a backup's node and /replica. */
const char *ha_fo_replica_unfit(const struct ha_fo_node *n, unsigned max_lag_ms, char *buf,
                                size_t size);

/* Why n cannot be promoted ("in maintenance", ...), or "eligible". */
const char *ha_fo_ineligible(const struct ha_fo_node *n);

/* Whether any of the replicas could ever take over without an operator: not in maintenance,
 * not no-promote, not diverged (a replica down, lagging or behind may still become eligible).
 * When none can, why lists each one's reason. */
bool ha_fo_any_candidate(const struct ha_fo_node *reps, size_t n, char *why, size_t size);

/* ---- planned switchover ---- */

#define HA_SO_MAX_CHECKS 12

struct ha_so_check {
	bool ok;
	char text[200];
};

/* Checks a planned switchover from primary p to the replica named target (NULL or "": the best
 * one that passes), and records every check made, passed or failed, in checks[] (at most
 * HA_SO_MAX_CHECKS). Returns the index in replicas[] of the node to promote, or -1 with why set
 * to the reason and what to do about it. max_lag_ms: the most a target may lag. */
int ha_so_plan(const struct ha_fo_node *p, const struct ha_fo_node *replicas, size_t n,
               const char *target, unsigned max_lag_ms, struct ha_so_check *checks,
               size_t *n_checks, char *why, size_t why_size);

#endif
