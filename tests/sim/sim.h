/* The simulated world: three nodes, each a MariaDB model (model.h) and an agent running the real
 * decision code (node/decide.h; coord/core.h when it leads), a model of raft and of the network
 * between them, clients, and the fault schedule. Everything runs on one thread from one seed. */
#ifndef HA_SIM_H
#define HA_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "../../consensus/fsm.h"
#include "coord/core.h"
#include "haagent.pb-c.h"
#include "model.h"
#include "node/decide.h"

#define SIM_STEP_MS 10

/* ---- randomness: splitmix64, one stream per schedule ---- */

struct sim_rng {
	uint64_t s;
};

static inline uint64_t sim_rand(struct sim_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static inline uint64_t sim_between(struct sim_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + sim_rand(r) % (hi - lo + 1);
}

static inline bool sim_chance(struct sim_rng *r, unsigned percent)
{
	return sim_rand(r) % 100 < percent;
}

struct sim_report {
	Haagent__HealthReport *r; /* unpacked copy, owned */
	uint64_t recv_ms, ack_sent_ms;
	struct ha_contact contact;
	char last_binlog[HA_GTID_TEXT_MAX];
};

struct sim_agent {
	bool alive, frozen;
	struct ha_config cfg;
	struct ha_node_mem *mem;
	struct ha_probe_sample *sample; /* the latest published one */
	bool have_sample;
	uint64_t next_probe_ms, next_tick_ms;
	bool kick;
	/* the action worker */
	bool busy, cancel;
	struct ha_action_req *act;
	uint64_t act_end_ms;
	/* raft, as this agent sees it */
	uint64_t term;
	bool leading, ready;
	uint64_t lead_since_ms, ready_at_ms, last_majority_ms;
	uint32_t leader_id;
	uint64_t last_heard_ms, vote_timeout_ms;
	size_t applied;
	struct ha_fsm_state *fsm;
	struct ha_lease_follow lease; /* the acks it accepted (node/decide.h) */
	/* until then the leader's raft messages have not reached it (its view of the log, the
	 * term and the leader stays as it was) while its reports and acks flow: raft catching a
	 * node up after a resume or a healed link takes its own time, on its own connection */
	uint64_t raft_behind_until;
	/* leading: the coordinator */
	struct ha_core_mem *co;
	struct sim_report rep[SIM_NODES];
	bool proposing;
	uint8_t *prop;
	size_t prop_len;
	uint64_t prop_fo_id, prop_at_ms;
	uint64_t stonith_at_ms; /* the fence hook runs: it powers off stonith_node then */
	int stonith_node;
	int64_t clock_offset_ms; /* a wall-clock step on this node */
};

struct sim_msg {
	int type; /* 1 report, 2 ack */
	int from, to;
	uint64_t at_ms;
	uint8_t *buf;
	size_t len;
};

enum sim_fault {
	F_NONE,
	F_KILL_DB,          /* kill -9 of mariadbd; restarted when healed */
	F_FREEZE_DB,        /* SIGSTOP of mariadbd */
	F_AUTH,             /* the agent's login refused (a rotated password) */
	F_KILL_AGENT,       /* the agent process dies */
	F_FREEZE_AGENT,     /* SIGSTOP of the agent */
	F_HOST,             /* the host is lost: agent and server */
	F_PARTITION,        /* one node cut off from the others */
	F_LOSS,             /* the agents lose a share of their messages */
	F_DELAY,            /* the agents' messages are late */
	F_DDL_CRASH,        /* a long DDL holds the replicas' SQL threads, then the primary dies */
	F_MID_PROMOTION,    /* the candidate's server dies while it is being promoted */
	F_FROZEN_PARTITION, /* the primary's agent frozen and its host cut off (fence hook only) */
	F_CLOCK,            /* a node's wall clock jumps */
	F_RESTART_AGENTS,   /* every agent restarted at once */
	F_FROZEN_CRASH,     /* the primary's agent frozen, and its server crashes meanwhile */
	F_KINDS
};

struct sim_world {
	struct sim_rng rng;
	uint64_t seed;
	uint64_t now;
	unsigned n_domains;
	uint64_t seq_base[SIM_MAX_DOMAINS];
	bool fence_hook;
	struct sim_db db[SIM_NODES];
	struct sim_agent ag[SIM_NODES];
	bool cut[SIM_NODES][SIM_NODES];
	unsigned loss_pct;
	unsigned delay_max_ms;
	/* the raft log: committed entries, in order */
	struct {
		uint8_t *buf;
		size_t len;
	} * log;
	size_t log_n, log_cap;
	uint64_t max_term;
	/* messages in flight */
	struct sim_msg *msgs;
	size_t n_msgs, cap_msgs;
	/* clients */
	struct sim_write *writes;
	size_t n_writes, cap_writes;
	uint64_t acked;
	size_t first_open; /* every write before it is acknowledged or failed */
	/* the fault under way */
	enum sim_fault fault;
	int fault_node;
	uint64_t fault_until, next_fault_at, mid_promotion_armed;
	unsigned faults_done;
	/* what was seen */
	uint64_t failovers, rejects, promotions, recorded_losses;
	uint64_t op_wait_since;      /* the failover waits for an operator's decision since then */
	uint64_t op_accepted;        /* losses an operator accepted (sim_operator_step) */
	uint64_t double_fault_until; /* a double failure (mid-promotion) was healed until then */
	uint64_t healthy_since[SIM_NODES]; /* server running, agent running, links up: since */
	uint64_t fo_seen;                  /* the last failover id checked, */
	uint32_t fo_seen_candidate;        /* its candidate while it was promoting */
	uint64_t no_writable_since, longest_unwritable;
	const char *violation; /* the first invariant broken, or NULL */
	char violation_detail[512];
	bool trace;
};

/* The world's primitives, here so that every part of hasim (model.c, check.c, world.c, sim.c)
 * has them from below. */
static inline const char *sim_node_name(int i)
{
	static const char *const names[SIM_NODES] = {"node1", "node2", "node3"};
	return names[i];
}

/* whether a and b can reach each other */
static inline bool sim_link(const struct sim_world *w, int a, int b)
{
	return a == b || !w->cut[a][b];
}

/* whether agent i runs (neither dead nor frozen) */
static inline bool sim_running(const struct sim_world *w, int i)
{
	return w->ag[i].alive && !w->ag[i].frozen;
}

#endif
