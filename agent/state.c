/* The agent's shared state and its services, below every duty that uses them (the tick in
 * agent.c, the coordinator's and the agent's shells, admin, endpoints, backups): the health
 * table, proposals, the write lease, this node's report, and the coordinator core's input built
 * from them. Loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/log.h"

void ha_agent_kick(struct ha_agent *a)
{
	if (!a->stopping && a->on_tick)
		uv_timer_start(&a->kick, a->on_tick, 0, 0);
}

int ha_agent_node_index(const struct ha_agent *a, uint32_t id)
{
	for (unsigned i = 0; i < a->cfg.n_nodes; i++)
		if (a->cfg.nodes[i].id == id)
			return (int)i;
	return -1;
}

bool ha_agent_fresh(const struct ha_agent *a, int i)
{
	return i >= 0 && a->health[i].report &&
	       ha_now_ms() - a->health[i].recv_ms <= a->cfg.agent_timeout_ms;
}

/* ---- proposals ---- */

static void proposed(void *data, int status, int result)
{
	struct ha_agent *a = data;
	a->proposing = false;
	if (status != 0)
		ha_warn("proposal-failed", "status=%d", status);
	else
		ha_debug("proposal-done", "result=%d", result);
	/* The state machine refused a decision (fsm-reject is logged with the reason on every
	 * node): a bug in the coordinator. It is said once as an event and the step is held, never
	 * proposed again in a tight loop (coord/core.c). */
	if (status == 0 && result < 0 && !a->stopping)
		ha_core_refused(&a->co, a->proposed_fo_id, ha_now_ms());
	a->proposed_fo_id = 0;
	ha_agent_kick(a);
}

int ha_agent_propose(struct ha_agent *a, uint8_t *buf, size_t len)
{
	int rc = ha_raft_propose(a->raft, buf, len, proposed, a);
	a->proposed_fo_id = 0; /* a failover step says so after this call (coordinator.c) */
	if (rc == 0)
		a->proposing = true;
	return rc;
}

/* ---- lease (node/decide.h: ha_node_lease_held) ---- */

bool ha_agent_lease_held(struct ha_agent *a)
{
	struct ha_core_report rep[HA_MAX_NODES];
	struct ha_core_in in;
	ha_agent_core_input(a, &in, rep);
	bool leading = ha_raft_ready(a->raft);
	struct ha_lease_in l = {.leading = leading,
	                        .ready_since_ms = leading ? ha_raft_lease_since(a->raft) : 0,
	                        .reporting = ha_core_lease_contacts(&in, a->cfg.lease_ms),
	                        .last_ack_ms = a->lease.last_ack_ms,
	                        .n_nodes = ha_core_voters(&in),
	                        .lease_ms = a->cfg.lease_ms,
	                        .now_ms = in.now_ms};
	return ha_node_lease_held(&l);
}

/* ---- health ---- */

static void sample_to_pb(struct ha_agent *a, const struct ha_probe_sample *s, Haagent__Health *h)
{
	ha_node_health(s, &a->rc, ha_raft_fsm(a->raft)->epoch, ha_agent_lease_held(a), h);
	if (a->bk)
		h->backup = &a->bk_report; /* kept current by backupjob.c */
}

void ha_agent_store_report(struct ha_agent *a, Haagent__HealthReport *r)
{
	int i = ha_agent_node_index(a, r->node_id);
	if (i < 0 || r->health == NULL) {
		haagent__health_report__free_unpacked(r, NULL);
		return;
	}
	/* kept and forwarded in status answers as received: it must pack again (frame.h) */
	if (!ha_frame_message_sound(&r->base)) {
		ha_warn("rpc-bad-message",
		        "type=health-report node_id=%u error=\"field 0\" action=ignore",
		        r->node_id);
		haagent__health_report__free_unpacked(r, NULL);
		return;
	}
	if (a->health[i].report)
		haagent__health_report__free_unpacked(a->health[i].report, NULL);
	a->health[i].report = r;
	a->health[i].recv_ms = ha_now_ms();
	ha_node_contact_update(&a->health[i].contact, r, ha_raft_term(a->raft),
	                       a->health[i].recv_ms, a->health[i].recv_ms);
	if (r->health->db == HAAGENT__DB_STATE__DB_UP && r->health->gtid_binlog)
		snprintf(a->health[i].last_binlog, sizeof(a->health[i].last_binlog), "%s",
		         r->health->gtid_binlog);
}

static void store_own(struct ha_agent *a, const Haagent__HealthReport *r)
{
	size_t n = haagent__health_report__get_packed_size(r);
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		return;
	haagent__health_report__pack(r, buf);
	Haagent__HealthReport *copy = haagent__health_report__unpack(NULL, n, buf);
	free(buf);
	if (copy)
		ha_agent_store_report(a, copy);
}

void ha_agent_report(struct ha_agent *a, const struct ha_probe_sample *s)
{
	Haagent__Health h;
	sample_to_pb(a, s, &h);
	Haagent__HealthReport r = HAAGENT__HEALTH_REPORT__INIT;
	r.node_id = a->self->id;
	r.health = &h;
	r.sent_mono_ms = ha_now_ms();
	r.echoes = true;
	r.echo_term = a->lease.echo_term;
	r.echo_leader_ms = a->lease.echo_leader_ms;
	/* our own entry: the leader's view of itself, and the local view when asked directly */
	store_own(a, &r);
	uint32_t leader = ha_raft_leader_id(a->raft);
	if (leader != 0 && leader != a->self->id) {
		const struct ha_node_conf *l = ha_config_node_by_id(&a->cfg, leader);
		if (l) {
			ha_rpc_client_target(a->reporter, l->address, l->rpc_port, l->id);
			ha_rpc_client_send(a->reporter, HA_MSG_HEALTH_REPORT, &r);
		}
	}
}

void ha_agent_report_now(struct ha_agent *a)
{
	struct ha_probe_sample *s = malloc(sizeof(*s));
	if (s == NULL)
		return;
	ha_probe_latest(a->probe, s);
	ha_agent_report(a, s);
	free(s);
}

/* ---- the coordinator core's input (coord/core.h), from this agent's state ---- */

static void core_log(void *ctx, int level, const char *event, const char *line)
{
	(void)ctx;
	ha_log((enum ha_log_level)level, event, "%s", line);
}

void ha_agent_core_input(struct ha_agent *a, struct ha_core_in *in, struct ha_core_report *rep)
{
	for (unsigned i = 0; i < a->cfg.n_nodes; i++) {
		const struct node_health *nh = &a->health[i];
		rep[i].h = nh->report ? nh->report->health : NULL;
		rep[i].recv_ms = nh->recv_ms;
		rep[i].ack_sent_ms = nh->last_ack_sent_ms;
		rep[i].contact_ms = ha_node_contact_at(&nh->contact, ha_raft_term(a->raft));
		rep[i].last_binlog = nh->last_binlog;
	}
	memset(in, 0, sizeof(*in));
	in->cfg = &a->cfg;
	in->st = ha_raft_fsm(a->raft);
	in->reports = rep;
	in->now_ms = ha_now_ms();
	in->unix_ms = ha_unix_ms();
	in->election_timeout_ms = ha_raft_election_timeout(a->raft);
	in->proposing = a->proposing;
	in->alloc = raft_malloc;
	in->free = raft_free;
	in->log = core_log;
}

size_t ha_agent_view(struct ha_agent *a, uint32_t primary, struct ha_fo_node *out,
                     bool replicas_of_primary_only)
{
	struct ha_core_report rep[HA_MAX_NODES];
	struct ha_core_in in;
	ha_agent_core_input(a, &in, rep);
	return ha_core_view(&in, primary, out, replicas_of_primary_only);
}

void ha_agent_primary_view(struct ha_agent *a, uint32_t id, struct ha_fo_node *v)
{
	struct ha_core_report rep[HA_MAX_NODES];
	struct ha_core_in in;
	ha_agent_core_input(a, &in, rep);
	ha_core_primary_view(&in, id, v);
}

uint64_t ha_agent_loss_if_now(struct ha_agent *a, char *lost, size_t size)
{
	struct ha_core_report rep[HA_MAX_NODES];
	struct ha_core_in in;
	ha_agent_core_input(a, &in, rep);
	return ha_core_loss_if_now(&in, lost, size);
}
