/* The simulator's model of MariaDB servers and GTID replication (tests/sim/README.md).
 *
 * Each server holds, per replication domain, its history (the binlog, equal to what it applied:
 * log_slave_updates) and its relay log (received, not applied), as lists of write ids; a write id
 * names one client transaction for the whole run, so "is this acknowledged write on that server"
 * is a lookup, and two histories agree up to a point when their entries there are equal (a write
 * is placed after one prefix only: GTID strict mode). Positions are rendered in MariaDB's text
 * form ("domain-server-seq,...") for the agent code, which parses them as it parses a server's.
 *
 * Semi-sync is AFTER_SYNC without the timeout fallback: a write is acknowledged once a replica of
 * its server received it. A crashed server loses nothing durable; on restart its unacknowledged
 * tail is dropped (init-rpl-role=SLAVE, as the sandbox runs it) and it comes back read-only. */
#ifndef HA_SIM_MODEL_H
#define HA_SIM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/action.h"
#include "db/probe.h"

#define SIM_NODES       3
#define SIM_MAX_DOMAINS 48

struct sim_list {
	uint32_t *v;
	size_t n, cap;
};

enum sim_db_state { SIM_DB_RUN, SIM_DB_DOWN, SIM_DB_HUNG };

struct sim_db {
	enum sim_db_state st;
	bool auth_broken; /* the agent's login is refused; clients are served */
	bool read_only;
	unsigned server_id;
	struct sim_list hist[SIM_MAX_DOMAINS];  /* binlog = applied */
	struct sim_list relay[SIM_MAX_DOMAINS]; /* received, not applied */
	int master;                             /* -1: no replication configured */
	bool io_on, sql_on;                     /* the threads as configured */
	bool io_err;                            /* the IO thread stopped on an error */
	char io_error[128];
	bool io_connected;        /* streaming from a live master */
	uint64_t last_rx_ms;      /* last event or heartbeat from the master */
	uint64_t started_at;      /* when it last started (its Uptime counts from there) */
	uint64_t sql_stall_until; /* a long DDL holds the SQL thread until then */
	uint64_t hung_since;
	uint64_t restart_at; /* its service manager restarts it then (0: not) */
	bool crashed;        /* down by a crash: recovery on the next start */
	uint64_t crashed_at; /* when */
	size_t pending;      /* unacknowledged writes at its history's tail (any domain) */
	/* The probe's last rendering of its positions, [0] without the relay log, [1] with it: a
	 * position's text depends only on each domain's length and last write, so it is rendered
	 * again only when one of those changed (the probe runs every few steps, the text is long).
	 */
	struct sim_pos_cache {
		bool valid;
		uint32_t n[SIM_MAX_DOMAINS], last[SIM_MAX_DOMAINS];
		char text[HA_GTID_STR_MAX];
	} pos_cache[2];
};

struct sim_write {
	uint16_t node; /* where the client committed it */
	uint16_t dom;
	uint32_t idx; /* its index in that domain's history */
	unsigned server_id;
	bool acked, failed;
	uint64_t at_ms;     /* when the client committed it (on node) */
	bool lost_recorded; /* lost in a double failure, listed in the failover's record */
};

struct sim_world; /* sim.c */

/* Positions as MariaDB prints them. */
void sim_pos_text(const struct sim_world *w, const struct sim_db *d, bool with_relay, char *out,
                  size_t size);
/* Does d (with its relay log when with_relay) agree with the history of m, and is it a prefix of
 * it, in every domain? */
bool sim_prefix_of(const struct sim_db *d, bool with_relay, const struct sim_db *m);
/* Does d hold write id w (applied)? */
bool sim_has(const struct sim_world *w, const struct sim_db *d, uint32_t wid);

void sim_list_push(struct sim_list *l, uint32_t v);
void sim_db_free(struct sim_db *d);

/* One 10 ms step of replication: IO threads stream, SQL threads apply, heartbeats. */
void sim_replicate(struct sim_world *w);

/* The probe's sample of node i's server (its agent's view). */
void sim_probe(struct sim_world *w, int i, struct ha_probe_sample *s);

/* How long an action of node i takes, and its outcome once it ends (applied to the model). */
unsigned sim_action_ms(struct sim_world *w, int i, const struct ha_action_req *q);
void sim_action_end(struct sim_world *w, int i, const struct ha_action_req *q,
                    struct ha_action_result *r);

/* Server lifecycle. */
void sim_db_crash(struct sim_world *w, int i);
void sim_db_start(struct sim_world *w, int i);

#endif
