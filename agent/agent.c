#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../consensus/node.h"
#include "common/clock.h"
#include "common/log.h"
#include "db/probe.h"
#include "haagent.pb-c.h"
#include "rpc/rpc.h"
#include "topology.h"

/* Bootstrap waits this long for every node before deciding from a majority. */
#define BOOTSTRAP_WAIT_ALL_MS 10000

struct node_health {
	Haagent__HealthReport *report; /* unpacked, owned; NULL when none received */
	uint64_t recv_ms;              /* monotonic */
};

struct ha_agent {
	uv_loop_t *loop;
	struct ha_config cfg;
	const struct ha_node_conf *self;
	struct ha_raft *raft;
	struct ha_probe *probe;
	struct ha_rpc_server *rpc;
	struct ha_rpc_client *reporter;
	uv_timer_t tick;
	uv_signal_t sigterm, sigint;
	struct node_health health[HA_MAX_NODES]; /* by config node index */
	char note[1024];
	bool proposing;
	uint64_t ready_since_ms;
	uint64_t last_ack_ms;
	bool stopping;
	int open_handles;
};

static int node_index(const struct ha_agent *a, uint32_t id)
{
	for (unsigned i = 0; i < a->cfg.n_nodes; i++)
		if (a->cfg.nodes[i].id == id)
			return (int)i;
	return -1;
}

/* ---- health ---- */

static void sample_to_pb(const struct ha_probe_sample *s, Haagent__Health *h)
{
	haagent__health__init(h);
	h->db = (Haagent__DbState)s->db;
	h->read_only = s->read_only;
	h->gtid_current = (char *)s->gtid_current;
	h->gtid_slave = (char *)s->gtid_slave;
	h->gtid_binlog = (char *)s->gtid_binlog;
	h->replicating = s->replicating;
	h->master_host = (char *)s->master_host;
	h->master_port = s->master_port;
	h->io_running = s->io_running;
	h->sql_running = s->sql_running;
	h->io_state = (char *)s->io_state;
	h->lag_seconds = s->lag_seconds;
	h->last_error = (char *)s->last_error;
	h->db_error = (char *)s->db_error;
	h->threads_running = s->threads_running;
	h->loadavg1 = s->loadavg1;
	h->version = (char *)s->version;
	h->server_id = s->server_id;
	h->probe_ms = s->probe_ms;
	h->semisync_master_enabled = s->semisync_master_enabled;
	h->semisync_master_active = s->semisync_master_active;
	h->semisync_slave_active = s->semisync_slave_active;
	h->sampled_unix_ms = s->sampled_unix_ms;
}

static void store_report(struct ha_agent *a, Haagent__HealthReport *r)
{
	int i = node_index(a, r->node_id);
	if (i < 0 || r->health == NULL) {
		haagent__health_report__free_unpacked(r, NULL);
		return;
	}
	if (a->health[i].report)
		haagent__health_report__free_unpacked(a->health[i].report, NULL);
	a->health[i].report = r;
	a->health[i].recv_ms = ha_now_ms();
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
		store_report(a, copy);
}

static bool fresh(const struct ha_agent *a, int i)
{
	return a->health[i].report && ha_now_ms() - a->health[i].recv_ms <= a->cfg.agent_timeout_ms;
}

/* ---- coordinator duties ---- */

static void proposed(void *data, int status, int result)
{
	struct ha_agent *a = data;
	a->proposing = false;
	if (status != 0)
		ha_warn("proposal-failed", "status=%d", status);
	else
		ha_debug("proposal-done", "result=%d", result);
}

static void propose(struct ha_agent *a, uint8_t *buf, size_t len)
{
	if (ha_raft_propose(a->raft, buf, len, proposed, a) == 0)
		a->proposing = true;
}

static void set_note(struct ha_agent *a, const char *note)
{
	if (strcmp(a->note, note) != 0) {
		snprintf(a->note, sizeof(a->note), "%s", note);
		if (note[0])
			ha_warn("bootstrap-waiting", "reason=\"%s\"", note);
	}
}

static void coordinate(struct ha_agent *a)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	if (a->proposing)
		return;
	if (st->n_members == 0) {
		struct ha_member m[HA_MAX_NODES];
		memset(m, 0, sizeof(m));
		for (unsigned i = 0; i < a->cfg.n_nodes; i++) {
			const struct ha_node_conf *n = &a->cfg.nodes[i];
			m[i].id = n->id;
			snprintf(m[i].name, sizeof(m[i].name), "%s", n->name);
			snprintf(m[i].address, sizeof(m[i].address), "%s", n->address);
			m[i].raft_port = n->raft_port;
			m[i].rpc_port = n->rpc_port;
			m[i].db_port = n->db_port;
		}
		uint8_t *buf;
		size_t len;
		if (ha_fsm_cmd_init_members(a->cfg.cluster, m, a->cfg.n_nodes, raft_malloc, &buf,
		                            &len) == 0) {
			ha_info("init-members", "cluster=%s members=%u", a->cfg.cluster,
			        a->cfg.n_nodes);
			propose(a, buf, len);
		}
		return;
	}
	if (st->primary_id != 0) {
		set_note(a, "");
		return;
	}
	/* Bootstrap: establish the primary from what the nodes report. */
	struct ha_topo_node view[HA_FSM_MAX_MEMBERS];
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		int ci = node_index(a, m->id);
		struct ha_topo_node *v = &view[i];
		memset(v, 0, sizeof(*v));
		v->id = m->id;
		v->name = m->name;
		v->address = m->address;
		v->db_port = m->db_port;
		if (ci >= 0 && fresh(a, ci)) {
			const Haagent__Health *h = a->health[ci].report->health;
			v->reported = true;
			v->db_up = h->db == HAAGENT__DB_STATE__DB_UP;
			v->replicating = h->replicating;
			v->master_host = h->master_host;
			v->master_port = h->master_port;
		}
	}
	bool may_use_majority = ha_now_ms() - a->ready_since_ms >= BOOTSTRAP_WAIT_ALL_MS;
	char why[1024];
	uint32_t primary =
	    ha_topo_find_primary(view, st->n_members, may_use_majority, why, sizeof(why));
	if (primary == 0) {
		set_note(a, why);
		return;
	}
	set_note(a, "");
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_set_primary(0, primary, why, raft_malloc, &buf, &len) == 0) {
		ha_info("bootstrap-primary", "primary=%u reason=\"%s\"", primary, why);
		propose(a, buf, len);
	}
}

/* ---- tick ---- */

static void on_tick(uv_timer_t *t)
{
	struct ha_agent *a = t->data;
	struct ha_probe_sample *s = malloc(sizeof(*s));
	if (s == NULL)
		return;
	ha_probe_latest(a->probe, s);
	Haagent__Health h;
	sample_to_pb(s, &h);
	Haagent__HealthReport r = HAAGENT__HEALTH_REPORT__INIT;
	r.node_id = a->self->id;
	r.health = &h;

	uint32_t leader = ha_raft_leader_id(a->raft);
	if (leader == a->self->id || leader == 0) {
		/* Leading (or no leader yet): keep our own view current locally. */
		store_own(a, &r);
	}
	if (leader != 0 && leader != a->self->id) {
		const struct ha_node_conf *l = ha_config_node_by_id(&a->cfg, leader);
		if (l) {
			ha_rpc_client_target(a->reporter, l->address, l->rpc_port);
			ha_rpc_client_send(a->reporter, HA_MSG_HEALTH_REPORT, &r);
		}
		/* keep our own entry for the local view shown when asked directly */
		store_own(a, &r);
	}
	free(s);

	if (ha_raft_ready(a->raft)) {
		if (a->ready_since_ms == 0)
			a->ready_since_ms = ha_now_ms();
		coordinate(a);
	} else {
		a->ready_since_ms = 0;
	}
}

static void on_probe(void *data)
{
	(void)data; /* samples are picked up by the tick */
}

/* ---- status ---- */

static const char *role_of(const struct ha_fsm_state *st, uint32_t id, const Haagent__Health *h)
{
	if (st->primary_id == id)
		return "primary";
	if (h == NULL || h->db != HAAGENT__DB_STATE__DB_UP)
		return "unknown";
	return h->replicating ? "replica" : "standalone";
}

static void answer_status(struct ha_agent *a, struct ha_rpc_conn *c, bool local_only)
{
	uint32_t leader = ha_raft_leader_id(a->raft);
	bool leading = leader == a->self->id;
	Haagent__StatusResponse resp = HAAGENT__STATUS_RESPONSE__INIT;
	char redirect[96] = "";
	if (!leading && leader != 0 && !local_only) {
		const struct ha_node_conf *l = ha_config_node_by_id(&a->cfg, leader);
		if (l) {
			snprintf(redirect, sizeof(redirect), "%s:%u", l->address, l->rpc_port);
			resp.redirect = redirect;
			resp.leader_id = leader;
			resp.leader = (char *)l->name;
			ha_rpc_send(c, HA_MSG_STATUS_RESPONSE, &resp);
			return;
		}
	}
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	const struct ha_node_conf *lc = leader ? ha_config_node_by_id(&a->cfg, leader) : NULL;
	const struct ha_member *pm = st->primary_id ? ha_fsm_member(st, st->primary_id) : NULL;
	resp.cluster = st->cluster[0] ? (char *)st->cluster : a->cfg.cluster;
	resp.leader_id = leader;
	resp.leader = lc ? (char *)lc->name : "";
	resp.term = ha_raft_term(a->raft);
	resp.primary = pm ? (char *)pm->name : "";
	resp.primary_id = st->primary_id;
	resp.epoch = st->epoch;
	resp.authoritative = leading && ha_raft_ready(a->raft);
	resp.served_by = (char *)a->self->name;
	resp.note = a->note;
	resp.commit_index = ha_raft_commit_index(a->raft);
	resp.applied_index = ha_raft_applied_index(a->raft);

	Haagent__NodeStatus ns[HA_MAX_NODES];
	Haagent__NodeStatus *nsp[HA_MAX_NODES];
	char db_addr[HA_MAX_NODES][96], rpc_addr[HA_MAX_NODES][96];
	uint64_t now = ha_now_ms();
	for (unsigned i = 0; i < a->cfg.n_nodes; i++) {
		const struct ha_node_conf *n = &a->cfg.nodes[i];
		Haagent__NodeStatus *x = &ns[i];
		haagent__node_status__init(x);
		nsp[i] = x;
		x->id = n->id;
		x->name = (char *)n->name;
		x->address = (char *)n->address;
		snprintf(db_addr[i], sizeof(db_addr[i]), "%s:%u", n->address, n->db_port);
		snprintf(rpc_addr[i], sizeof(rpc_addr[i]), "%s:%u", n->address, n->rpc_port);
		x->db_address = db_addr[i];
		x->rpc_address = rpc_addr[i];
		/* A non-leader answering for itself only knows its own health. */
		bool usable = a->health[i].report && (leading || (int)i == a->cfg.self);
		const Haagent__Health *h = usable ? a->health[i].report->health : NULL;
		x->has_health = h != NULL;
		x->health = (Haagent__Health *)h;
		x->report_age_ms = usable ? now - a->health[i].recv_ms : 0;
		x->agent_reachable = (int)i == a->cfg.self || (usable && fresh(a, (int)i));
		x->role = (char *)role_of(st, n->id, h);
	}
	resp.n_nodes = a->cfg.n_nodes;
	resp.nodes = nsp;
	ha_rpc_send(c, HA_MSG_STATUS_RESPONSE, &resp);
}

static int on_rpc(void *data, struct ha_rpc_conn *c, int type, const uint8_t *p, size_t n)
{
	struct ha_agent *a = data;
	switch (type) {
	case HA_MSG_HEALTH_REPORT: {
		Haagent__HealthReport *r = haagent__health_report__unpack(NULL, n, p);
		if (r == NULL) {
			ha_warn("rpc-bad-message", "type=health-report action=close");
			return -1;
		}
		if (node_index(a, r->node_id) < 0) {
			ha_warn("rpc-unknown-node", "node_id=%u action=close", r->node_id);
			haagent__health_report__free_unpacked(r, NULL);
			return -1;
		}
		store_report(a, r);
		Haagent__HealthAck ack = HAAGENT__HEALTH_ACK__INIT;
		ack.leader_id = ha_raft_leader_id(a->raft);
		ack.term = ha_raft_term(a->raft);
		ha_rpc_send(c, HA_MSG_HEALTH_ACK, &ack);
		return 0;
	}
	case HA_MSG_STATUS_REQUEST: {
		Haagent__StatusRequest *r = haagent__status_request__unpack(NULL, n, p);
		if (r == NULL) {
			ha_warn("rpc-bad-message", "type=status-request action=close");
			return -1;
		}
		bool local_only = r->local_only;
		haagent__status_request__free_unpacked(r, NULL);
		answer_status(a, c, local_only);
		return 0;
	}
	default: {
		Haagent__ErrorResponse er = HAAGENT__ERROR_RESPONSE__INIT;
		er.code = HA_EPROTO;
		er.message = "unexpected message type";
		ha_rpc_send(c, HA_MSG_ERROR, &er);
		return 0;
	}
	}
}

static void on_reporter_msg(void *data, int type, const uint8_t *p, size_t n)
{
	struct ha_agent *a = data;
	(void)p;
	(void)n;
	if (type == HA_MSG_HEALTH_ACK)
		a->last_ack_ms = ha_now_ms();
}

/* ---- lifecycle ---- */

static void on_signal(uv_signal_t *s, int signum)
{
	struct ha_agent *a = s->data;
	ha_info("shutdown", "signal=%d", signum);
	ha_agent_stop(a);
}

int ha_agent_start(uv_loop_t *loop, const struct ha_config *c, struct ha_agent **out,
                   struct ha_err *e)
{
	struct ha_agent *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	a->loop = loop;
	a->cfg = *c;
	a->self = &a->cfg.nodes[a->cfg.self];
	int rc;

	if ((rc = ha_raft_start(loop, &a->cfg, &a->raft, e)) != 0) {
		free(a);
		return ha_err_wrap(e, "start raft");
	}
	if ((rc = ha_rpc_server_start(loop, a->self->address, a->self->rpc_port, on_rpc, a, &a->rpc,
	                              e)) != 0)
		return ha_err_wrap(e, "start rpc");
	struct ha_probe_conf pc = {
	    .host = a->self->address,
	    .port = a->self->db_port,
	    .user = a->cfg.db_user,
	    .password = a->cfg.db_password,
	    .interval_ms = a->cfg.probe_interval_ms,
	    .timeout_ms = a->cfg.probe_timeout_ms,
	};
	if ((rc = ha_probe_start(loop, &pc, on_probe, a, &a->probe, e)) != 0)
		return ha_err_wrap(e, "start probe");
	memset(a->cfg.db_password, 0, sizeof(a->cfg.db_password));
	if (ha_rpc_client_new(loop, a->self->address, on_reporter_msg, a, &a->reporter) != 0)
		return ha_err_set(e, HA_ENOMEM, "out of memory");

	uv_timer_init(loop, &a->tick);
	a->tick.data = a;
	uv_timer_start(&a->tick, on_tick, a->cfg.report_interval_ms, a->cfg.report_interval_ms);
	uv_signal_init(loop, &a->sigterm);
	uv_signal_init(loop, &a->sigint);
	a->sigterm.data = a->sigint.data = a;
	uv_signal_start(&a->sigterm, on_signal, SIGTERM);
	uv_signal_start(&a->sigint, on_signal, SIGINT);
	ha_info("agent-started", "node=%s id=%u address=%s raft_port=%u rpc_port=%u db=%s:%u",
	        a->self->name, a->self->id, a->self->address, a->self->raft_port, a->self->rpc_port,
	        a->self->address, a->self->db_port);
	*out = a;
	return 0;
}

static void raft_closed(void *data)
{
	struct ha_agent *a = data;
	a->raft = NULL;
	ha_info("raft-closed", "node=%s", a->self->name);
}

void ha_agent_stop(struct ha_agent *a)
{
	if (a->stopping)
		return;
	a->stopping = true;
	uv_close((uv_handle_t *)&a->tick, NULL);
	uv_close((uv_handle_t *)&a->sigterm, NULL);
	uv_close((uv_handle_t *)&a->sigint, NULL);
	ha_rpc_server_close(a->rpc);
	ha_rpc_client_close(a->reporter);
	ha_probe_stop(a->probe);
	ha_raft_close(a->raft, raft_closed, a);
}

void ha_agent_free(struct ha_agent *a)
{
	ha_probe_join(a->probe);
	for (unsigned i = 0; i < HA_MAX_NODES; i++)
		if (a->health[i].report)
			haagent__health_report__free_unpacked(a->health[i].report, NULL);
	free(a);
}
