/* Topology reasoning on reported health. Pure functions, any thread. */
#ifndef HA_TOPOLOGY_H
#define HA_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ha_topo_node {
	uint32_t id;
	const char *name;
	const char *address; /* node address; mariadbd listens on address:db_port */
	unsigned db_port;
	bool reported; /* a fresh health report exists */
	bool db_up;
	bool replicating;
	const char *master_host;
	unsigned master_port;
};

/* Finds the primary of an existing replication setup: the one node whose database is up and not
 * replicating, such that every replicating node replicates from it.
 *
 * All nodes must have reported with their database up, unless allow_majority is set, in which case
 * a majority suffices (the others are then not counted as evidence either way).
 *
 * Returns the primary's id and writes into why the evidence it used; returns 0 and writes into why
 * what it saw and why that is not enough (ambiguous, incomplete, or inconsistent). */
uint32_t ha_topo_find_primary(const struct ha_topo_node *n, size_t count, bool allow_majority,
                              char *why, size_t why_size);

#endif
