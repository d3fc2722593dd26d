/* Every agent converges its own server to the replicated state, one action at a time. What to do
 * next is decided here, as a pure function of (configuration, replicated state, the latest
 * sample of the local server, whether this node holds its write lease, monotonic time, the
 * agent's own memory); the daemon (agent/reconcile.c) runs the action on its worker and the
 * escalation's process work, and the simulator (tests/sim/) runs this same function against its
 * model of a server.
 *
 *   1. writable only if this node is the epoch's primary AND holds the write lease; otherwise
 *      read_only=ON and client sessions killed (fencing, including self-fencing on a partition);
 *   2. the epoch's primary stops replicating, records the epoch in haagent.heartbeat, and turns
 *      read_only off once it holds the lease;
 *   3. every other node replicates from the epoch's primary, but only when its own GTID history
 *      is contained in the primary's; otherwise it is diverged and is left alone. A node in
 *      maintenance keeps its replication as the operator left it (it is still fenced);
 *   4. during a failover the old primary's agent proves its fence: read_only, every client
 *      session gone, and the final binlog position, reported as fenced_epoch/fenced_gtid; the
 *      target of a planned switchover waits until it has applied up to that position;
 *   5. the new primary of a failover applies its whole relay log before it turns writable (no
 *      acknowledged write lost), unless the loss was accepted (accept_loss);
 *   6. a server that must be fenced but that the agent cannot reach through SQL (hung, login
 *      refused, no connection left) is stopped after fence_escalate_ms: db_stop_command, then
 *      SIGKILL by db_pid_file. Its port then refuses connections: that is the fence's proof;
 *   7. the old primary of a failover whose mariadbd is gone salvages what its binlog holds
 *      (db/salvage.h) when the coordinator asks.
 *
 * Decisions are taken on samples: after an action, the next one waits for a sample that began
 * after it, so it never acts twice on a stale view. A coordinator crash loses nothing here:
 * agents act on the replicated state, whoever leads. */
#ifndef HA_NODE_DECIDE_H
#define HA_NODE_DECIDE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../consensus/fsm.h"
#include "../config.h"
#include "../coord/core.h"
#include "../db/action.h"
#include "../db/probe.h"
#include "haagent.pb-c.h"
#include "rejoin.h"

/* The agent's own memory (lost with the process; rebuilt from samples). */
struct ha_node_mem {
	uint64_t backoff_until_ms;
	char last_action[512];
	bool diverged;
	char errant[HA_GTID_TEXT_MAX];
	uint64_t writable_epoch; /* epoch at which this agent made its server writable */
	uint64_t writable_ms;    /* when (monotonic) */
	uint64_t diverged_checked_ms;
	uint64_t stalled_checked_ms; /* last repoint of a replica whose IO thread had stopped */
	char role[16];               /* last role the on_role_change hook was told */
	uint64_t after_ms;           /* the last action ended then: act on samples started later */
	bool kick_on_sample;         /* tick as soon as such a sample arrives */
	uint64_t fenced_epoch;       /* FENCE succeeded at this epoch, */
	char fenced_gtid[HA_ACTION_GTID_MAX];   /* leaving the binlog here */
	char promoted_gtid[HA_ACTION_GTID_MAX]; /* applied when it turned writable (reported) */
	bool seen_writable; /* the last sample with the database up showed read_only=OFF */
	/* Fencing a server the agent cannot reach through SQL (hung, login refused): escalation
	 * to db_stop_command, then SIGKILL (docs/failover.md). */
	uint64_t blind_since_ms;  /* must fence, cannot reach the server: since then */
	uint64_t esc_started_ms;  /* db_stop_command started (0: no escalation under way) */
	bool esc_killed;          /* SIGKILL sent */
	uint64_t escalated_epoch; /* the epoch of the last escalation, reported */
	char escalation[256];     /* what it did, reported (the shell writes it) */
	/* Salvage from this server's binlog after its mariadbd died (db/salvage.h): where the
	 * binlog is, as the server last said while up, and the last salvage, reported. */
	char binlog_index[PATH_MAX];
	char datadir[PATH_MAX];
	uint64_t salvage_fo_id;
	enum ha_salvage_run salvage_state;
	char salvaged_gtid[HA_ACTION_GTID_MAX];
	uint64_t salvaged_count;
	char salvage_detail[512];
	/* This node's server went down while it was the primary of this epoch: when it comes back
	 * it stays read-only (its crash recovery may have dropped transactions it acknowledged,
	 * which replicas have) and the coordinator fails over. */
	uint64_t down_epoch;
	/* The last sample that saw its server up (its probe's start, monotonic; 0 none): a
	 * server whose Uptime says it started after that restarted in between, seen down or not
	 * (this agent was frozen, or between two probes). */
	uint64_t server_up_ms;
	/* This agent made or saw its server writable at this epoch (a fence for a lost lease
	 * keeps it: the server did not restart). */
	uint64_t owned_epoch;
	uint64_t held_epoch; /* held read-only at this epoch for that reason (reported) */
	/* Rejoin of this node, diverged (node/rejoin.h): semi-sync as watched while it was the
	 * primary; the binlog states its last repoint compared; the verdict on them; the shell's
	 * run (agent/rejoin.c) and its retries; what is reported. */
	struct ha_rejoin_watch ss;
	char local_state[HA_REJOIN_STATE_MAX];
	char target_state[HA_REJOIN_STATE_MAX];
	uint32_t server_id;
	bool rejoin_judged;
	struct ha_rejoin_verdict verdict;
	bool rejoin_running;
	unsigned rejoin_failures;
	uint64_t rejoin_retry_ms;
	char rejoin[HA_REJOIN_WHY_MAX]; /* why it stays diverged, or where its rejoin is */
	char errant_saved[512];         /* the last errant transactions saved, and where */
};

struct ha_node_in {
	const struct ha_config *cfg; /* cfg->self is this node */
	const struct ha_fsm_state *st;
	const struct ha_probe_sample *s; /* the latest sample of the local server */
	uint64_t now_ms;                 /* monotonic */
	bool lease_held;                 /* this node's write lease */
	bool action_busy;                /* an action runs on the worker */
	ha_core_log_fn log;              /* NULL: silent */
	void *log_ctx;
};

enum ha_node_esc {
	HA_NODE_ESC_NONE = 0,
	HA_NODE_ESC_STOP, /* run db_stop_command */
	HA_NODE_ESC_KILL, /* SIGKILL the server named by db_pid_file */
};

struct ha_node_out {
	bool submit; /* run q on the action worker */
	struct ha_action_req q;
	const char *why;
	bool cancel;          /* cancel the running action (a salvage whose server came back) */
	enum ha_node_esc esc; /* the escalation step to take now */
	bool role_changed;    /* mem->role is new: the on_role_change hook */
	bool build;           /* rebuild this node's database from a backup (agent/rebuild.c) */
	bool rejoin;          /* save the errant tail and re-clone (agent/rejoin.c): rq */
	struct ha_rejoin_req rq;
};

/* The write lease (docs/failover.md): the primary may be writable only while it is in contact
 * with a raft majority. A follower holds it while the ready leader acknowledged one of its
 * reports within lease_ms (counted from when that report was sent); the leader holds it for
 * lease_ms after it issued its barrier (a majority voted for it before), then while a majority,
 * itself included, echoed one of its acks sent within lease_ms. */
struct ha_lease_in {
	bool leading;            /* this node is the ready raft leader */
	uint64_t ready_since_ms; /* since then */
	unsigned reporting;      /* leading: nodes (itself included) whose contact (the report's
	                            echo: ha_node_report_contact) is within lease_ms */
	uint64_t last_ack_ms;    /* following: the send time of the last acknowledged report */
	unsigned n_nodes;
	unsigned lease_ms;
	uint64_t now_ms;
};
bool ha_node_lease_held(const struct ha_lease_in *l);

/* A follower's side of the lease: the acks it accepted. An ack counts only from the leader and
 * term this agent's raft knows; it renews the lease only when it also carries this agent's
 * epoch (an agent whose log is behind, after a healed partition or a resumed process, still
 * believes in an epoch that has ended: the leader's ack must not let it write there). */
struct ha_lease_follow {
	uint64_t last_ack_ms;    /* the lease runs from this instant (this agent's clock) */
	uint64_t echo_term;      /* the last accepted ack's term, 0 none: echoed in reports */
	uint64_t echo_leader_ms; /* and the leader's clock when it sent it */
};
struct ha_ack_in {
	uint32_t leader_id; /* the leader and term this agent's raft knows */
	uint64_t term;
	uint64_t epoch; /* this agent's replicated state */
	uint64_t now_ms;
};
/* Takes an ack into f; true when it renewed the lease. */
bool ha_node_ack(struct ha_lease_follow *f, const Haagent__HealthAck *ack,
                 const struct ha_ack_in *in);

/* The leader's side: the instant, on the leader's clock, from which report r proves contact
 * with its sender (0: none). It is the echoed send time of an ack of this term, never the
 * report's arrival: a report that waited in a frozen leader's socket proves nothing about now.
 * An agent of an older version echoes nothing: its arrival (recv_ms), as before. */
uint64_t ha_node_report_contact(const Haagent__HealthReport *r, uint64_t term, uint64_t recv_ms,
                                uint64_t now_ms);
/* A node's contact as the leader keeps it: reports of this term move it forward only, so a report
 * that proves less (a restarted agent echoing nothing yet) never takes back what an earlier one
 * proved; a new term starts it again. */
struct ha_contact {
	uint64_t ms, term;
};
void ha_node_contact_update(struct ha_contact *c, const Haagent__HealthReport *r, uint64_t term,
                            uint64_t recv_ms, uint64_t now_ms);
uint64_t ha_node_contact_at(const struct ha_contact *c, uint64_t term);

/* One decision. out is zeroed first. */
void ha_node_decide(const struct ha_node_in *in, struct ha_node_mem *m, struct ha_node_out *out);

/* What an action's end changes in the memory (now_ms: monotonic). */
void ha_node_done(struct ha_node_mem *m, const struct ha_action_result *r, uint64_t now_ms);

/* What the shell's rejoin run changes in the memory: ok, its message, what it saved ("" none). */
void ha_node_rejoin_done(struct ha_node_mem *m, bool ok, const char *msg, const char *saved,
                         uint64_t now_ms);

/* This node's health report from its sample and memory (strings point into both). */
void ha_node_health(const struct ha_probe_sample *s, const struct ha_node_mem *m, uint64_t epoch,
                    bool lease_held, Haagent__Health *h);

/* The role this node has in st: "primary", "replica", "diverged" or "none". */
const char *ha_node_role(const struct ha_fsm_state *st, uint32_t me);

#endif
