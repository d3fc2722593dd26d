/* Internal to the agent (agent.c, coordinator.c, reconcile.c): the agent's state. Loop thread. */
#ifndef HA_AGENT_INT_H
#define HA_AGENT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../consensus/node.h"
#include "agent.h"
#include "config.h"
#include "coord/core.h"
#include "coord/members.h"
#include "common/log.h"
#include "node/decide.h"
#include "db/action.h"
#include "db/probe.h"
#include "haagent.pb-c.h"
#include "http/server.h"
#include "rpc/rpc.h"

struct node_health {
	Haagent__HealthReport *report;     /* unpacked, owned; NULL when none received */
	uint64_t recv_ms;                  /* monotonic */
	char last_binlog[HA_GTID_STR_MAX]; /* gtid_binlog_pos of the last report with the db up */
	uint64_t last_ack_sent_ms;         /* coordinator: last HealthAck sent to that node */
	struct ha_contact contact;         /* its contact for this leader's write lease */
};

/* rebuild.c: this node's database rebuilt by `haadm node reclone SELF` run as a child */
struct ha_rebuild {
	bool running;
	unsigned failures;
	uint64_t next_ms, started_ms;
	char why[256];
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
	struct ha_arch *ar;          /* archiver.c; NULL without a repository */
	struct ha_copier *cp;        /* copier.c; NULL with fewer than two repositories */
	struct ha_rejoiner *rj;      /* rejoin.c */
	Haagent__BackupReport bk_report;
	uv_timer_t tick;
	uv_timer_t kick;     /* a tick now, after an FSM change or a new sample */
	uv_timer_cb on_tick; /* agent.c's tick, for ha_agent_kick */
	uv_signal_t sigterm, sigint, sighup;
	/* TLS contexts (docs/security.md); both NULL with insecure = yes. SIGHUP reloads them. */
	SSL_CTX *tls_server, *tls_client;
	struct node_health health[HA_MAX_NODES]; /* by config node index */
	bool proposing;
	uint64_t proposed_fo_id;      /* the proposal in flight is a step of this failover */
	struct ha_lease_follow lease; /* the acks this agent accepted (node/decide.h) */
	int last_db_state;
	bool stopping;
	struct ha_core_mem co;    /* the coordinator's soft memory (coord/core.h) */
	struct ha_node_mem rc;    /* the agent's own memory (node/decide.h) */
	struct ha_members_mem mm; /* the leader's membership memory (coord/members.h) */
	struct ha_log_limit members_log;
	uint64_t members_said_ms; /* a waiting join was last said then (members.c) */
	bool removed_said;        /* this node was removed: said once */
	bool was_member;          /* this node has been a member (so its absence is a removal) */
	bool peers_synced;        /* the transport accepts the members (not any node: join = yes) */
	struct ha_rebuild rb;
};

/* state.c: the shared state's services (below every duty) */
int ha_agent_node_index(const struct ha_agent *a, uint32_t id);
bool ha_agent_fresh(const struct ha_agent *a, int i);
/* Proposes an encoded command (one at a time); logs and drops it when raft refuses (and returns
 * nonzero). */
int ha_agent_propose(struct ha_agent *a, uint8_t *buf, size_t len);
/* A tick now (after an FSM change, a new sample, an action's end). */
void ha_agent_kick(struct ha_agent *a);
/* Stores a node's report (takes r). */
void ha_agent_store_report(struct ha_agent *a, Haagent__HealthReport *r);
/* Sends this node's health from sample s (to the leader, or stores it when leading); _now:
 * from the latest sample. */
void ha_agent_report(struct ha_agent *a, const struct ha_probe_sample *s);
void ha_agent_report_now(struct ha_agent *a);
bool ha_agent_lease_held(struct ha_agent *a);
/* The coordinator core's input from this agent's state (rep: HA_MAX_NODES entries), and the
 * core's views and loss on it. */
void ha_agent_core_input(struct ha_agent *a, struct ha_core_in *in, struct ha_core_report *rep);
struct ha_fo_node;
size_t ha_agent_view(struct ha_agent *a, uint32_t primary, struct ha_fo_node *out,
                     bool replicas_of_primary_only);
void ha_agent_primary_view(struct ha_agent *a, uint32_t id, struct ha_fo_node *v);
uint64_t ha_agent_loss_if_now(struct ha_agent *a, char *lost, size_t size);

/* members.c: the node table follows the members (every agent); the ready leader makes raft's
 * configuration follow them and records joins (docs/membership.md) */
void ha_members_sync(struct ha_agent *a);
void ha_members_tick(struct ha_agent *a);

void ha_rebuild_want(struct ha_agent *a, const char *why);
/* rejoin.c: the haadm the agent runs: [failover] haadm, else the one beside this executable,
 * else on PATH */
void ha_find_haadm(const char *configured, char *out, size_t size);
bool ha_rebuild_running(const struct ha_agent *a);

/* coordinator.c: the shell around coord/core.c */
void ha_coord_tick(struct ha_agent *a);
void ha_coord_reset(struct ha_agent *a);
void ha_coord_fill_status(struct ha_agent *a, Haagent__StatusResponse *resp, Haagent__Failover *fo);

/* backupjob.c: runs the catalog's backup jobs assigned to this node */
struct ha_bkrun;
int ha_bkrun_start(struct ha_agent *a, struct ha_err *e);
void ha_bkrun_tick(struct ha_agent *a, const struct ha_probe_sample *s);
void ha_bkrun_stop(struct ha_agent *a);
void ha_bkrun_free(struct ha_agent *a);

/* copier.c: with several repositories, the ready leader copies to those that lack a backup or
 * an archive slice */
struct ha_copier;
int ha_copier_start(struct ha_agent *a, struct ha_err *e);
void ha_copier_tick(struct ha_agent *a);
void ha_copier_stop(struct ha_agent *a);
void ha_copier_free(struct ha_agent *a);

/* rejoin.c: saves a diverged node's unacknowledged tail and re-clones it (node/rejoin.h) */
struct ha_rejoiner;
int ha_rejoiner_start(struct ha_agent *a, struct ha_err *e);
void ha_rejoiner_run(struct ha_agent *a, const struct ha_rejoin_req *q);
void ha_rejoiner_stop(struct ha_agent *a);
void ha_rejoiner_free(struct ha_agent *a);

/* archiver.c: the binlog archive, run by the ready leader */
struct ha_arch;
int ha_arch_start(struct ha_agent *a, struct ha_err *e);
void ha_arch_tick(struct ha_agent *a);
void ha_arch_stop(struct ha_agent *a);
void ha_arch_free(struct ha_agent *a);
/* The archive for an answer (status, backups): false when there is nothing to say; the
 * archiver's state only where this agent leads (buf may hold it). */
bool ha_arch_fill(struct ha_agent *a, bool leading, Haagent__ArchiveState *pb, char *buf,
                  size_t size);
/* "streaming from node2", "stopped: ...", "idle", "off" (buf may be used) */
const char *ha_arch_state(struct ha_agent *a, char *buf, size_t size);

/* coordinator.c: starting a backup job (haadm backup run), through the core */
int ha_backup_start(struct ha_agent *a, const char *type, const char *node, const char *trigger,
                    struct ha_bk_started *started);

/* endpoints.c: GET /primary, /replica, /health, /metrics */
void ha_endpoints_handle(void *data, const struct ha_http_req *req, struct ha_http_resp *resp);

/* admin.c: operator requests (switchover, maintenance, pause), answered by the ready leader. */
void ha_admin_request(struct ha_agent *a, struct ha_rpc_conn *c, const uint8_t *p, size_t n);

/* reconcile.c */
void ha_reconcile(struct ha_agent *a, const struct ha_probe_sample *s);
void ha_reconcile_done(void *data, const struct ha_action_result *r);

#endif
