/* hasim's world (world.c): set-up, and one step of each of its parts, in the order sim.c runs
 * them. Above check.c; below sim.c (faults and the driver). */
#ifndef HA_SIM_WORLD_H
#define HA_SIM_WORLD_H

#include "sim.h"

void sim_world_init(struct sim_world *w, uint64_t seed);
void sim_world_free(struct sim_world *w);
/* agent i as just (re)started: its memory, reports, action and proposal cleared, following
 * nobody, its timers drawn again */
void sim_agent_reset(struct sim_world *w, int i);
/* the host of node i is lost: agent and server */
void sim_host_down(struct sim_world *w, int i);

/* raft, as a model: terms, pre-vote, check-quorum, one committed log */
void sim_raft_step(struct sim_world *w);
/* a leader's proposal committed once it hears a majority: applied by it first (a rejection
 * counted), then by the nodes it reaches */
void sim_commit_step(struct sim_world *w);
/* the messages between the agents that arrive now */
void sim_net_step(struct sim_world *w);
/* every running agent: its action, its probe, its tick (and the coordinator on the leader) */
void sim_agents_step(struct sim_world *w);
/* the clients: semi-sync acknowledgements, and one new write */
void sim_clients_step(struct sim_world *w);
/* The operator: a failover that waits for a decision only a person can take (a diverged node
 * holds transactions the candidate lacks) is answered as a DBA would after a minute, with
 * haadm failover --accept-loss; what that gives up is recorded in the failover. */
void sim_operator_step(struct sim_world *w);

#endif
