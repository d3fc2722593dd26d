/* The coordinator's decisions, as a pure function: (configuration, replicated state, the latest
 * report of every agent, monotonic time, the coordinator's soft memory) in; at most one raft
 * command to propose, hooks to run and log lines out. No I/O, no clock reads, no globals: the
 * daemon's loop (agent/coordinator.c) feeds it and carries its output out, and the deterministic
 * simulator (tests/sim/) runs the very same function against a model of MariaDB replication.
 *
 * Failover, happy path (each step one idempotent raft command):
 *   1. detect: the three views agree that the primary failed (failover.c), outside tilt;
 *   2. begin: epoch+1, no primary. The old primary's agent sees it and fences its server;
 *   3. fenced: its agent confirms (read_only on, or mariadbd gone, at the new epoch), or its write
 *      lease has surely run out, or the fence hook succeeded;
 *   4. promoting: the candidate that received the most is recorded (it applies its whole relay
 *      log before it turns writable: node/decide.c); the other agents repoint once it is done;
 *   5. done: the new primary reports itself writable at the new epoch.
 *
 * A planned switchover (admin.c starts it) takes the same steps with a chosen target and
 * stricter rules: only the old primary's own fence counts, with its final binlog position; the
 * target is promoted only once it has applied up to that position (zero loss); and if either
 * does not happen within the switchover's timeout the old primary is handed back its role
 * (ABORTED), since no other node was promoted.
 *
 * The memory is soft: a new leader starts from a zeroed one, and rebuilds what it needs from the
 * replicated state and fresh reports, so a coordinator crash in the middle of a failover is
 * survivable — the next one continues from the recorded phase. */
#ifndef HA_COORD_CORE_H
#define HA_COORD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../consensus/fsm.h"
#include "../config.h"
#include "failover.h"
#include "haagent.pb-c.h"

/* the daemon's escalation of a fence it cannot make through SQL: db_stop_command's time before
 * SIGKILL (the coordinator waits for it too before an expired lease proves a blind primary) */
#define HA_FENCE_STOP_WAIT_MS 3000

/* A salvage as its agent reports it (Health.salvage_state). */
enum ha_salvage_run {
	HA_SALVAGE_RUN_NONE = 0,
	HA_SALVAGE_RUN_RUNNING = 1,
	HA_SALVAGE_RUN_DONE = 2,   /* it ran (what applied is measured; the detail says if all) */
	HA_SALVAGE_RUN_FAILED = 3, /* it could not run */
};

/* What the leader knows of one configured node (by config index). */
struct ha_core_report {
	const Haagent__Health *h; /* its latest report; NULL when none received */
	uint64_t recv_ms;         /* when it arrived (monotonic) */
	uint64_t ack_sent_ms;     /* when this leader last acknowledged one of its reports */
	uint64_t contact_ms;      /* the instant its report proves contact, on this leader's clock
	                             (node/decide.h: ha_node_report_contact); 0 none */
	const char *last_binlog;  /* gtid_binlog_pos of its last report with the database up */
};

/* A candidate that failed, as seen in PROMOTING. */
enum ha_cand_state {
	HA_CAND_FINE = 0,
	HA_CAND_SILENT,
	HA_CAND_DOWN,
	HA_CAND_HUNG,
	HA_CAND_UNUSABLE,
};

#define HA_CORE_BLOCKERS 4

/* The coordinator's soft memory (zeroed by a new leader). */
struct ha_core_mem {
	enum ha_suspicion suspect; /* the suspicion held (ha_fo_judge's kind), since: */
	uint64_t suspect_since_ms;
	char last_why[512];
	char held[32]; /* why a confirmed failure is not acted on (event sent once) */
	uint64_t ready_since_ms;
	uint64_t last_tick_ms;
	uint64_t tilt_until_ms;
	uint64_t phase_seen_ms; /* when this leader first saw the current failover phase */
	uint64_t phase_seen_id;
	unsigned phase_seen;
	uint64_t first_seen_ms; /* when this leader first saw the current failover */
	/* the fence hook: the shell sets running/result when it ends */
	bool fence_hook_running;
	int fence_hook_result; /* -2 not run, else exit status */
	uint64_t fence_hook_failover;
	uint64_t fence_hook_ran_ms;
	char wait[1024];        /* what the failover in progress waits for (status, log once) */
	uint64_t hold_until_ms; /* a failover step was refused by the FSM: no retry until then */
	enum ha_cand_state cand_state; /* PROMOTING: the candidate's health, since: */
	uint64_t cand_since_ms;
	/* PROMOTING: the candidate's apply rate, for the estimate in status (transactions left
	 * when last seen, then, and the smoothed rate per second; 0: none yet) */
	uint64_t apply_left, apply_left_ms;
	double apply_rate;
	uint64_t drained_since_ms; /* PROMOTING: the candidate applied all it received since */
	bool unusable_said[HA_MAX_NODES]; /* that node's database is unusable (said) */
	uint64_t
	    stream_lost_ms[HA_MAX_NODES]; /* since when that replica lost its stream (0: not) */
	uint64_t stream_epoch, stream_seen_ms; /* those clocks' epoch, and their last update */
	uint64_t unusable_ms[HA_MAX_NODES];    /* the last db-unusable event proposed for it */
	uint64_t refused_fo_id;   /* the FSM refused a step of this failover (a bug): */
	uint64_t refused_said_id; /* held, and said once per failover */
	char note[1024];          /* why bootstrap waits ("" when it does not) */
	/* the backup duty (backups.c): the running job as followed, the schedules' last look, a
	 * scheduled backup refused (said once per slot) */
	struct {
		uint64_t seen_id, seen_ms, fresh_ms;
		uint64_t sched_ms;
		uint64_t refused_slot;
		char refused_type[16];
	} bk;
	/* the live plan shown by status */
	char plan_candidate[64];
	char plan_blockers[HA_CORE_BLOCKERS][1280];
	unsigned n_plan_blockers;
};

typedef void (*ha_core_log_fn)(void *ctx, int level, const char *event, const char *line);
/* Formats a log line for log (nothing when NULL): the decision code's only way to speak. */
void ha_core_logf(ha_core_log_fn log, void *ctx, int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

struct ha_core_in {
	const struct ha_config *cfg; /* cfg->self is this node */
	const struct ha_fsm_state *st;
	const struct ha_core_report *reports; /* cfg->n_nodes, by config index */
	uint64_t now_ms;                      /* monotonic */
	uint64_t unix_ms;                     /* wall clock, for the records only */
	unsigned election_timeout_ms;
	bool proposing;       /* a proposal is in flight: decide nothing new */
	ha_alloc_fn alloc;    /* for the command buffer, */
	void (*free)(void *); /* its matching free */
	ha_core_log_fn log;   /* NULL: silent */
	void *log_ctx;
};

enum ha_core_hook {
	HA_CORE_HOOK_PRE_FAILOVER,  /* args: old primary, reason */
	HA_CORE_HOOK_POST_FAILOVER, /* args: old primary, new primary, epoch */
	HA_CORE_HOOK_FENCE,         /* args: old primary, its address; result into the memory */
};

#define HA_CORE_MAX_HOOKS 2

struct ha_core_out {
	uint8_t *cmd; /* a raft command to propose (from in->alloc), or NULL */
	size_t cmd_len;
	uint64_t cmd_fo_id;   /* the command is a step of this failover (a refusal holds it) */
	const char *cmd_name; /* what it is, for logs and the simulator */
	struct {
		enum ha_core_hook hook;
		char arg[3][HA_FSM_TEXT_MAX];
	} hooks[HA_CORE_MAX_HOOKS];
	unsigned n_hooks;
};

/* What a backup start did: the job, or why not. */
struct ha_bk_started {
	uint64_t id;
	char name[96];
	char node[64];
	char msg[1200]; /* what was started, or why not */
};

/* One tick of the ready leader. out is zeroed first. */
void ha_core_tick(const struct ha_core_in *in, struct ha_core_mem *m, struct ha_core_out *out);

/* Starts a backup job of type (full, differential, incremental) on node (NULL: the least-loaded
 * fit replica, the primary as a last resort when allowed), for trigger ("requested by ...",
 * "scheduled (CRON)"): 0 with out->cmd to propose, or a code with started->msg saying why not. */
int ha_core_backup_start(const struct ha_core_in *in, struct ha_core_mem *m, const char *type,
                         const char *node, const char *trigger, struct ha_bk_started *started,
                         struct ha_core_out *out);

/* The FSM refused the command of failover fo_id (a bug in this core): hold that failover's
 * steps for a while, say it once. */
void ha_core_refused(struct ha_core_mem *m, uint64_t fo_id, uint64_t now_ms);

/* ---- views for the failover decisions (failover.h), shared with admin and backups ---- */

struct ha_fo_node;
/* The views of the replicas of `primary` (or of every node but it); returns how many. */
size_t ha_core_view(const struct ha_core_in *in, uint32_t primary, struct ha_fo_node *out,
                    bool replicas_of_primary_only);
/* The primary's view. */
void ha_core_primary_view(const struct ha_core_in *in, uint32_t id, struct ha_fo_node *v);
/* One node's view as a replica (any node, the primary included). */
void ha_core_node_view(const struct ha_core_in *in, uint32_t id, struct ha_fo_node *v);
/* During PROMOTING: what the failover would give up if the candidate stopped applying its relay
 * log now (everything owed less what it applied), as upper bounds per domain in lost; returns
 * the count. */
uint64_t ha_core_loss_if_now(const struct ha_core_in *in, char *lost, size_t size);
/* How many nodes reported within within_ms, this one included (the quorum counts: the plan,
 * an operator request's precondition; not the write lease: ha_core_lease_contacts). */
unsigned ha_core_reporting(const struct ha_core_in *in, unsigned within_ms);
/* The leader's write lease (node/decide.h): how many voters are in contact within lease_ms,
 * this one included, by the echoes of its acks (contact_ms), never by when a report arrived. */
unsigned ha_core_lease_contacts(const struct ha_core_in *in, unsigned lease_ms);
/* The nodes that vote in raft (a joining member does not); ha_core_reporting counts only them. */
unsigned ha_core_voters(const struct ha_core_in *in);
/* A node's latest report, and whether it is fresh (within agent_timeout_ms). */
const Haagent__Health *ha_core_health(const struct ha_core_in *in, uint32_t id, bool *fresh);

#endif
