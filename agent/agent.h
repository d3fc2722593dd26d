/* The agent: one per database node. Owns the libuv loop's handles: the raft server, the local
 * probe, the RPC server and the health reporter.
 *
 * Every report_interval_ms (tick):
 *   1. the latest local probe sample becomes a Health message;
 *   2. it is sent to the raft leader (or stored directly when this node leads);
 *   3. when this node is the ready leader (the coordinator), it keeps the replicated state
 *      current: it records the membership once and, at bootstrap, establishes the primary from the
 *      health reports (the one node that is not replicating and that every replica points at).
 *
 * Loop thread only. */
#ifndef HA_AGENT_H
#define HA_AGENT_H

#include <uv.h>

#include "config.h"

struct ha_agent;

/* Starts everything. On error nothing is left running that needs the loop (the process exits). */
int ha_agent_start(uv_loop_t *loop, const struct ha_config *c, struct ha_agent **out,
                   struct ha_err *e);

/* Begins a clean shutdown; uv_run returns once every handle has closed. */
void ha_agent_stop(struct ha_agent *a);

/* After uv_run has returned: joins worker threads and frees the agent. */
void ha_agent_free(struct ha_agent *a);

#endif
