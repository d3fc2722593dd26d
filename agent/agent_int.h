/* Internal to the agent (agent.c, coordinator.c, reconcile.c): the agent's state. Loop thread. */
#ifndef HA_AGENT_INT_H
#define HA_AGENT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../consensus/node.h"
#include "agent.h"
#include "config.h"
#include "db/action.h"
#include "db/probe.h"
#include "haagent.pb-c.h"
#include "http/server.h"
#include "rpc/rpc.h"

/* reconcile.c's escalation: db_stop_command's time before SIGKILL (the coordinator waits for it
 * too before it takes an expired lease as proof for a blind old primary) */
#define HA_FENCE_STOP_WAIT_MS 3000

struct node_health {
	Haagent__HealthReport *report;     /* unpacked, owned; NULL when none received */
	uint64_t recv_ms;                  /* monotonic */
	char last_binlog[HA_GTID_STR_MAX]; /* gtid_binlog_pos of the last report with the db up */
	uint64_t last_ack_sent_ms;         /* coordinator: last HealthAck sent to that node */
};

/* The coordinator's soft state: rebuilt from the replicated state and fresh reports by every new
 * leader, so losing it loses nothing. */
struct coord {
	char suspect_kind[32];
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
	uint64_t bk_seen_id, bk_seen_ms, bk_fresh_ms; /* the running backup job, as followed */
	uint64_t bk_sched_ms;     /* when the schedules were last evaluated (monotonic) */
	uint64_t bk_refused_slot; /* a scheduled backup refused (logged once per slot) */
	char bk_refused_type[16];
	bool fence_hook_running;
	int fence_hook_result; /* -2 not run, else exit status */
	uint64_t fence_hook_failover;
	uint64_t fence_hook_ran_ms;
	char plan_candidate[64];
	char wait[1024];        /* what the failover in progress waits for (status, log once) */
	uint64_t hold_until_ms; /* a failover step was refused by the FSM: no retry until then */
	int cand_kind;          /* PROMOTING: 0 fine, 1 silent, 2 down, 3 hung, since: */
	uint64_t cand_since_ms;
	/* PROMOTING: the candidate's apply rate, for the estimate in status (transactions left
	 * when last seen, then, and the smoothed rate per second; 0: none yet) */
	uint64_t apply_left, apply_left_ms;
	double apply_rate;
	uint64_t drained_since_ms; /* PROMOTING: the candidate applied all it received since */
	bool unusable_said[HA_MAX_NODES];   /* that node's database is unusable (said) */
	uint64_t unusable_ms[HA_MAX_NODES]; /* the last db-unusable event proposed for it */
	char plan_blockers[4][1280];
	uint64_t proposed_fo_id;  /* the proposal in flight is a step of this failover */
	uint64_t refused_fo_id;   /* the FSM refused a step of this failover (a bug): held, */
	uint64_t refused_said_id; /* and said once per failover */
	unsigned n_plan_blockers;
};

/* A salvage as its agent reports it (Health.salvage_state). */
enum ha_salvage_run {
	HA_SALVAGE_RUN_NONE = 0,
	HA_SALVAGE_RUN_RUNNING = 1,
	HA_SALVAGE_RUN_DONE = 2,   /* it ran (what applied is measured; the detail says if all) */
	HA_SALVAGE_RUN_FAILED = 3, /* it could not run */
};

/* Agent-side reconcile state. */
struct reconcile {
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
	char fenced_gtid[HA_ACTION_GTID_MAX]; /* leaving the binlog here */
	/* Fencing a server the agent cannot reach through SQL (hung, login refused): escalation
	 * to db_stop_command, then SIGKILL (docs/failover.md). */
	char promoted_gtid[HA_ACTION_GTID_MAX]; /* applied when it turned writable (reported) */
	bool seen_writable;       /* the last sample with the database up showed read_only=OFF */
	uint64_t blind_since_ms;  /* must fence, cannot reach the server: since then */
	uint64_t esc_started_ms;  /* db_stop_command started (0: no escalation under way) */
	bool esc_killed;          /* SIGKILL sent */
	uint64_t escalated_epoch; /* the epoch of the last escalation, reported */
	char escalation[256];     /* what it did, reported */
	/* Salvage from this server's binlog after its mariadbd died (db/salvage.h): where the
	 * binlog is, as the server last said while up, and the last salvage, reported. */
	char binlog_index[PATH_MAX];
	char datadir[PATH_MAX];
	uint64_t salvage_fo_id;
	enum ha_salvage_run salvage_state;
	char salvaged_gtid[HA_ACTION_GTID_MAX];
	uint64_t salvaged_count;
	char salvage_detail[512];
};

struct ha_agent {
	uv_loop_t *loop;
	struct ha_config cfg;
	const struct ha_node_conf *self;
	struct ha_raft *raft;
	struct ha_probe *probe;
	struct ha_action *action;
	struct ha_rpc_server *rpc;
	struct ha_rpc_client *reporter;
	struct ha_http_server *http; /* NULL when http_port = 0 */
	struct ha_bkrun *bk;         /* backupjob.c */
	Haagent__BackupReport bk_report;
	uv_timer_t tick;
	uv_timer_t kick; /* a tick now, after an FSM change or a new sample */
	uv_signal_t sigterm, sigint;
	struct node_health health[HA_MAX_NODES]; /* by config node index */
	char note[1024];
	bool proposing;
	uint64_t last_ack_ms;
	int last_db_state;
	bool stopping;
	struct coord co;
	struct reconcile rc;
};

int ha_agent_node_index(const struct ha_agent *a, uint32_t id);
bool ha_agent_fresh(const struct ha_agent *a, int i);
/* Proposes an encoded command (one at a time); logs and drops it when raft refuses (and returns
 * nonzero). */
int ha_agent_propose(struct ha_agent *a, uint8_t *buf, size_t len);
/* Sends this node's health now (to the leader, or stores it when leading). */
void ha_agent_report_now(struct ha_agent *a);
bool ha_agent_lease_held(struct ha_agent *a);

/* coordinator.c */
void ha_coord_tick(struct ha_agent *a);
void ha_coord_reset(struct ha_agent *a);
void ha_coord_fill_status(struct ha_agent *a, Haagent__StatusResponse *resp, Haagent__Failover *fo);
/* The failover views of the replicas of `primary` (or of every node but it) and of the primary. */
struct ha_fo_node;
size_t ha_coord_view(struct ha_agent *a, const struct ha_fsm_state *st, uint32_t primary,
                     struct ha_fo_node *out, bool replicas_of_primary_only);
void ha_coord_primary_view(struct ha_agent *a, const struct ha_fsm_state *st, uint32_t id,
                           struct ha_fo_node *v);
/* One node's view as a replica (any node, the primary included). */
void ha_coord_node_view(struct ha_agent *a, const struct ha_fsm_state *st, uint32_t id,
                        struct ha_fo_node *v);
/* During PROMOTING: what the failover would give up if the candidate stopped applying its relay
 * log now (the old primary's last position and what the candidate received, less what it
 * applied), as upper bounds per domain in lost; returns the count. */
uint64_t ha_coord_loss_if_now(struct ha_agent *a, const struct ha_fsm_state *st, char *lost,
                              size_t size);

/* backupjob.c: runs the catalog's backup jobs assigned to this node */
struct ha_bkrun;
int ha_bkrun_start(struct ha_agent *a, struct ha_err *e);
void ha_bkrun_tick(struct ha_agent *a, const struct ha_probe_sample *s);
void ha_bkrun_report(struct ha_agent *a, Haagent__BackupReport *r);
void ha_bkrun_stop(struct ha_agent *a);
void ha_bkrun_free(struct ha_agent *a);

/* backupcoord.c: the coordinator's backup duties: follow the running job, the schedules,
 * retention; and starting a job (haadm backup run, or a schedule) */
void ha_backup_coord_tick(struct ha_agent *a, const struct ha_fsm_state *st);
struct ha_bk_started {
	uint64_t id;
	char name[96];
	char node[64];
	char msg[1200]; /* what was started, or why not */
};
int ha_backup_start(struct ha_agent *a, const char *type, const char *node, const char *trigger,
                    struct ha_bk_started *out);

/* endpoints.c: GET /primary, /replica, /health, /metrics */
void ha_endpoints_handle(void *data, const struct ha_http_req *req, struct ha_http_resp *resp);

/* admin.c: operator requests (switchover, maintenance, pause), answered by the ready leader. */
void ha_admin_request(struct ha_agent *a, struct ha_rpc_conn *c, const uint8_t *p, size_t n);

/* reconcile.c */
void ha_reconcile(struct ha_agent *a, const struct ha_probe_sample *s);
void ha_reconcile_done(void *data, const struct ha_action_result *r);

#endif
