/* hasim's watcher (check.c): the trace of a schedule, and the invariants. Below world.c and
 * sim.c, which call it; it reads the world and calls nothing above it. */
#ifndef HA_SIM_CHECK_H
#define HA_SIM_CHECK_H

#include "sim.h"

/* A line of the schedule's trace (--trace), stamped with the simulated time. */
void sim_trace(struct sim_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the first invariant broken (what, and the detail); later ones are ignored. */
void sim_violate(struct sim_world *w, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Node i's server turned writable as the primary of epoch: every acknowledged write is on it
 * (or in the lost set its failover recorded). */
void sim_check_promotion(struct sim_world *w, int i, uint64_t epoch);

/* After every step: one writable primary at most, no needless failover, never stuck. */
void sim_check_step(struct sim_world *w);

/* Once the schedule has settled: a writable primary with every acknowledged write, no failover
 * open. */
void sim_check_settled(struct sim_world *w);

#endif
