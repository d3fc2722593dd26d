#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/secret.h"

/* ---- tick ---- */

static void tick(struct ha_agent *a)
{
	if (a->stopping)
		return;
	struct ha_probe_sample *s = malloc(sizeof(*s));
	if (s == NULL)
		return;
	ha_raft_tick(a->raft);
	ha_members_sync(a);
	ha_probe_latest(a->probe, s);
	ha_reconcile(a, s);
	ha_bkrun_tick(a, s);
	ha_agent_report(a, s);
	free(s);
	if (ha_raft_ready(a->raft)) {
		ha_coord_tick(a);
		ha_members_tick(a);
	} else {
		ha_coord_reset(a);
		memset(&a->mm, 0, sizeof(a->mm)); /* soft: a leader again starts from zero */
	}
	ha_arch_tick(a);
	ha_copier_tick(a);
}

/* The periodic tick, and the "kick" that runs one now. */
static void on_tick(uv_timer_t *t)
{
	tick(t->data);
}

/* After an FSM change: act on it now rather than at the next tick. */
static void on_applied(void *data)
{
	ha_agent_kick(data);
}

/* A new sample: a change of database state, or the first sample after an action, is acted on
 * and reported at once. */
static void on_probe(void *data)
{
	struct ha_agent *a = data;
	if (a->stopping)
		return;
	int db = (int)ha_probe_db_state(a->probe);
	bool kick = db != a->last_db_state;
	/* a database that comes back may have been restored (re-cloned): a diverged node is
	 * rechecked at once rather than at its next periodic recheck */
	if (kick && db == HA_DB_UP && a->last_db_state != -1)
		a->rc.diverged_checked_ms = 0;
	a->last_db_state = db;
	if (a->rc.kick_on_sample && ha_probe_latest_started(a->probe) >= a->rc.after_ms) {
		a->rc.kick_on_sample = false;
		kick = true;
	}
	if (kick)
		uv_timer_start(&a->kick, on_tick, 0, 0);
}

/* ---- RPC ---- */

/* One node's line of the status. A non-leader answering for itself only knows its own
 * health. */
static void node_status(struct ha_agent *a, const struct ha_fsm_state *st, unsigned i, bool leading,
                        uint64_t now, Haagent__NodeStatus *x, char db_addr[96], char rpc_addr[96])
{
	const struct ha_node_conf *n = &a->cfg.nodes[i];
	haagent__node_status__init(x);
	x->id = n->id;
	x->name = (char *)n->name;
	x->address = (char *)n->address;
	snprintf(db_addr, 96, "%s:%u", n->address, n->db_port);
	snprintf(rpc_addr, 96, "%s:%u", n->address, n->rpc_port);
	x->db_address = db_addr;
	x->rpc_address = rpc_addr;
	bool usable = a->health[i].report && (leading || (int)i == a->cfg.self);
	const Haagent__Health *h = usable ? a->health[i].report->health : NULL;
	x->has_health = h != NULL;
	x->health = (Haagent__Health *)h;
	x->report_age_ms = usable ? now - a->health[i].recv_ms : 0;
	x->agent_reachable = (int)i == a->cfg.self || (usable && ha_agent_fresh(a, (int)i));
	const struct ha_member *m = ha_fsm_member(st, n->id);
	x->flags = m ? m->flags : 0;
	if (st->primary_id == n->id)
		x->role = "primary";
	else if (m && (m->flags & HA_MEMBER_DIVERGED))
		x->role = "diverged";
	else if (m && (m->flags & HA_MEMBER_JOINING))
		x->role = "joining";
	else if (h == NULL || h->db != HAAGENT__DB_STATE__DB_UP)
		x->role = "unknown";
	else
		x->role = h->replicating ? "replica" : "standalone";
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
	resp.note = a->co.note;
	resp.commit_index = ha_raft_commit_index(a->raft);
	resp.applied_index = ha_raft_applied_index(a->raft);
	Haagent__Failover fo;
	char *blockers[4];
	ha_coord_fill_status(a, &resp, &fo);
	Haagent__ArchiveState arch;
	char arch_state[600];
	if (ha_arch_fill(a, leading, &arch, arch_state, sizeof(arch_state)))
		resp.archive = &arch;
	if (resp.authoritative) {
		for (unsigned i = 0; i < a->co.n_plan_blockers; i++)
			blockers[i] = a->co.plan_blockers[i];
		resp.n_plan_blockers = a->co.n_plan_blockers;
		resp.plan_blockers = blockers;
	}

	Haagent__NodeStatus ns[HA_MAX_NODES];
	Haagent__NodeStatus *nsp[HA_MAX_NODES];
	char db_addr[HA_MAX_NODES][96], rpc_addr[HA_MAX_NODES][96];
	uint64_t now = ha_now_ms();
	for (unsigned i = 0; i < a->cfg.n_nodes; i++) {
		nsp[i] = &ns[i];
		node_status(a, st, i, leading, now, &ns[i], db_addr[i], rpc_addr[i]);
	}
	resp.n_nodes = a->cfg.n_nodes;
	resp.nodes = nsp;
	ha_rpc_send(c, HA_MSG_STATUS_RESPONSE, &resp);
}

static void answer_events(struct ha_agent *a, struct ha_rpc_conn *c, unsigned limit)
{
	/* The history is replicated: any agent answers from its own copy. */
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	Haagent__Event ev[HA_FSM_MAX_EVENTS];
	Haagent__Event *evp[HA_FSM_MAX_EVENTS];
	unsigned n = st->n_events, first = 0;
	if (limit && limit < n)
		first = n - limit;
	for (unsigned i = first; i < n; i++) {
		ha_fsm_event_to_pb(&st->events[i], &ev[i - first]);
		evp[i - first] = &ev[i - first];
	}
	Haagent__EventsResponse resp = HAAGENT__EVENTS_RESPONSE__INIT;
	resp.n_events = n - first;
	resp.events = evp;
	ha_rpc_send(c, HA_MSG_EVENTS_RESPONSE, &resp);
}

static const char *msg_name(int type)
{
	switch (type) {
	case HA_MSG_HEALTH_REPORT:
		return "health-report";
	case HA_MSG_STATUS_REQUEST:
		return "status";
	case HA_MSG_EVENTS_REQUEST:
		return "events";
	case HA_MSG_ADMIN_REQUEST:
		return "admin";
	case HA_MSG_BACKUPS_REQUEST:
		return "backup-list";
	default:
		return "other";
	}
}

/* Who may send what (docs/security.md): health reports only from a node's certificate (the
 * node it names is checked against the report); changes only from an admin; reading from
 * anyone the CA vouched for. A plain connection (insecure = yes) may do everything. Returns
 * NULL when allowed, else why not. */
static const char *refusal(const struct ha_identity *who, int type)
{
	if (who == NULL)
		return NULL;
	switch (type) {
	case HA_MSG_HEALTH_REPORT:
		return who->role == HA_ROLE_NODE ? NULL : "only a node's certificate sends health";
	case HA_MSG_ADMIN_REQUEST:
		return who->role == HA_ROLE_ADMIN
		           ? NULL
		           : "changes need an operator certificate with role admin (haadm cert "
		             "operator NAME --role admin)";
	case HA_MSG_STATUS_REQUEST:
	case HA_MSG_EVENTS_REQUEST:
	case HA_MSG_BACKUPS_REQUEST:
		return who->role != HA_ROLE_NONE ? NULL : "a certificate without identity";
	default:
		return NULL; /* answered "unexpected message type" */
	}
}

static void log_refused(struct ha_rpc_conn *c, const char *what, const char *why)
{
	char who[128];
	const struct ha_identity *id = ha_rpc_peer(c);
	if (id)
		ha_identity_str(id, who, sizeof(who));
	else
		snprintf(who, sizeof(who), "(plain)");
	ha_warn("rpc-refused", "peer=%s who=\"%s\" request=%s reason=\"%s\"", ha_rpc_peer_addr(c),
	        who, what, why);
}

/* Long on purpose: one case per message type, each decoding its message and answering. */
static int on_rpc(void *data, struct ha_rpc_conn *c, int type, const uint8_t *p, size_t n)
{
	struct ha_agent *a = data;
	const char *why = refusal(ha_rpc_peer(c), type);
	if (why) {
		log_refused(c, msg_name(type), why);
		if (type == HA_MSG_HEALTH_REPORT)
			return -1; /* not an operator: nobody to tell */
		if (type == HA_MSG_ADMIN_REQUEST) {
			Haagent__AdminResponse ar = HAAGENT__ADMIN_RESPONSE__INIT;
			ar.code = HA_EPERM;
			ar.message = (char *)why;
			ha_rpc_send(c, HA_MSG_ADMIN_RESPONSE, &ar);
			return 0;
		}
		Haagent__ErrorResponse er = HAAGENT__ERROR_RESPONSE__INIT;
		er.code = HA_EPERM;
		er.message = (char *)why;
		ha_rpc_send(c, HA_MSG_ERROR, &er);
		return 0;
	}
	switch (type) {
	case HA_MSG_HEALTH_REPORT: {
		Haagent__HealthReport *r = haagent__health_report__unpack(NULL, n, p);
		if (r == NULL) {
			ha_warn("rpc-bad-message", "type=health-report action=close");
			return -1;
		}
		const struct ha_identity *who = ha_rpc_peer(c);
		if (who && who->node_id != r->node_id) {
			char why_id[96];
			snprintf(why_id, sizeof(why_id), "the report says node id %u", r->node_id);
			log_refused(c, "health-report", why_id);
			haagent__health_report__free_unpacked(r, NULL);
			return -1;
		}
		int i = ha_agent_node_index(a, r->node_id);
		if (i < 0 || i == a->cfg.self) {
			ha_warn("rpc-unknown-node", "node_id=%u action=close", r->node_id);
			haagent__health_report__free_unpacked(r, NULL);
			return -1;
		}
		bool changed =
		    !a->health[i].report || !a->health[i].report->health || !r->health ||
		    a->health[i].report->health->db != r->health->db ||
		    a->health[i].report->health->epoch_seen != r->health->epoch_seen ||
		    a->health[i].report->health->writable_epoch != r->health->writable_epoch;
		uint64_t sent = r->sent_mono_ms;
		ha_agent_store_report(a, r); /* takes r */
		/* Only a ready leader acknowledges: an ack renews the sender's write lease. */
		if (ha_raft_ready(a->raft)) {
			Haagent__HealthAck ack = HAAGENT__HEALTH_ACK__INIT;
			ack.leader_id = a->self->id;
			ack.term = ha_raft_term(a->raft);
			ack.sent_mono_ms = sent;
			ack.epoch = ha_raft_fsm(a->raft)->epoch;
			ack.leader_mono_ms = ha_now_ms();
			if (ha_rpc_send(c, HA_MSG_HEALTH_ACK, &ack) == 0)
				a->health[i].last_ack_sent_ms = ha_now_ms();
			if (changed && !a->stopping)
				uv_timer_start(&a->kick, on_tick, 0, 0);
		}
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
	case HA_MSG_EVENTS_REQUEST: {
		Haagent__EventsRequest *r = haagent__events_request__unpack(NULL, n, p);
		if (r == NULL) {
			ha_warn("rpc-bad-message", "type=events-request action=close");
			return -1;
		}
		unsigned limit = r->limit;
		haagent__events_request__free_unpacked(r, NULL);
		answer_events(a, c, limit);
		return 0;
	}
	case HA_MSG_ADMIN_REQUEST:
		ha_admin_request(a, c, p, n);
		return 0;
	case HA_MSG_BACKUPS_REQUEST: {
		/* the catalog is replicated: any agent answers from its own copy */
		const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
		static Haagent__BackupRecord recs[HA_FSM_MAX_BACKUPS];
		static Haagent__BackupRecord *ptrs[HA_FSM_MAX_BACKUPS];
		for (unsigned i = 0; i < st->n_backups; i++) {
			ha_fsm_backup_to_pb(&st->backups[i], &recs[i]);
			ptrs[i] = &recs[i];
		}
		Haagent__BackupsResponse resp = HAAGENT__BACKUPS_RESPONSE__INIT;
		resp.n_backups = st->n_backups;
		resp.backups = ptrs;
		Haagent__CmdSetBackupPolicy pol = HAAGENT__CMD_SET_BACKUP_POLICY__INIT;
		const struct ha_backup_policy *bp = &st->backup_policy;
		pol.full = (char *)(bp->set ? bp->full : a->cfg.backup_schedule_full);
		pol.differential =
		    (char *)(bp->set ? bp->differential : a->cfg.backup_schedule_differential);
		pol.incremental =
		    (char *)(bp->set ? bp->incremental : a->cfg.backup_schedule_incremental);
		pol.keep_full = bp->set ? bp->keep_full : a->cfg.backup_keep_full;
		pol.keep_days = bp->set ? bp->keep_days : a->cfg.backup_keep_days;
		resp.policy = &pol;
		resp.policy_from_config = !bp->set;
		Haagent__ArchiveState arch;
		char state[600];
		if (ha_arch_fill(a, ha_raft_leader_id(a->raft) == a->self->id, &arch, state,
		                 sizeof(state)) &&
		    arch.head[0])
			resp.archive = &arch;
		ha_rpc_send(c, HA_MSG_BACKUPS_RESPONSE, &resp);
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
	if (type != HA_MSG_HEALTH_ACK)
		return;
	Haagent__HealthAck *ack = haagent__health_ack__unpack(NULL, n, p);
	if (ack == NULL)
		return;
	/* node/decide.h: from the leader and term we know, renewing the lease only at our epoch,
	 * from when the acknowledged report was sent (docs/failover.md, "the write lease") */
	struct ha_ack_in in = {.leader_id = ha_raft_leader_id(a->raft),
	                       .term = ha_raft_term(a->raft),
	                       .epoch = ha_raft_fsm(a->raft)->epoch,
	                       .now_ms = ha_now_ms()};
	ha_node_ack(&a->lease, ack, &in);
	haagent__health_ack__free_unpacked(ack, NULL);
}

/* ---- lifecycle ---- */

static void on_signal(uv_signal_t *s, int signum)
{
	struct ha_agent *a = s->data;
	ha_info("shutdown", "signal=%d", signum);
	ha_agent_stop(a);
}

/* Both TLS contexts from the files the configuration names. */
static int load_tls(const struct ha_config *c, SSL_CTX **server, SSL_CTX **client, struct ha_err *e)
{
	*server = *client = NULL;
	if (c->tls_insecure)
		return 0;
	const struct ha_node_conf *self = &c->nodes[c->self];
	struct ha_err se = {0};
	if (ha_secret_file_check(c->tls_key, &se) != 0) /* again at every reload */
		return ha_err_set(e, HA_ECONFIG, "[tls] key: %s", se.msg);
	if (ha_trust_file_check(c->tls_ca, &se) != 0)
		return ha_err_set(e, HA_ECONFIG, "[tls] ca: %s", se.msg);
	if (ha_tls_ctx_new(c->tls_ca, c->tls_cert, c->tls_key, true, server, e) != 0)
		return HA_ECONFIG;
	if (ha_tls_ctx_is_node(*server, self->name, self->id, e) != 0) {
		ha_err_wrap(e, "%s", c->tls_cert);
		SSL_CTX_free(*server);
		*server = NULL;
		return HA_ECONFIG;
	}
	if (ha_tls_ctx_new(c->tls_ca, c->tls_cert, c->tls_key, false, client, e) != 0) {
		SSL_CTX_free(*server);
		*server = NULL;
		return HA_ECONFIG;
	}
	return 0;
}

/* SIGHUP: the certificates, key and CA are read again; new connections use them, open ones
 * keep theirs. A bad file keeps the old ones and says why. */
static void on_sighup(uv_signal_t *s, int signum)
{
	(void)signum;
	struct ha_agent *a = s->data;
	if (a->cfg.tls_insecure) {
		ha_info("tls-reload", "result=skipped reason=\"insecure = yes\"");
		return;
	}
	SSL_CTX *srv, *cli;
	struct ha_err e = {0};
	if (load_tls(&a->cfg, &srv, &cli, &e) != 0) {
		ha_error("tls-reload", "result=failed error=\"%s\" action=\"keeps the old ones\"",
		         e.msg);
		return;
	}
	ha_raft_set_tls(a->raft, srv, cli);
	ha_rpc_server_set_tls(a->rpc, srv);
	ha_rpc_client_set_tls(a->reporter, cli);
	if (a->http)
		ha_http_server_set_tls(a->http, srv, a->cfg.tls_http_plain_checks);
	SSL_CTX_free(a->tls_server);
	SSL_CTX_free(a->tls_client);
	a->tls_server = srv;
	a->tls_client = cli;
	ha_info("tls-reload", "result=ok cert=%s", a->cfg.tls_cert);
}

/* Long on purpose: every part of the agent started in its order (TLS, raft, RPC, the workers,
 * HTTP, timers, signals), each failure said with the part's name. */
int ha_agent_start(uv_loop_t *loop, const struct ha_config *c, struct ha_agent **out,
                   struct ha_err *e)
{
	struct ha_agent *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	a->loop = loop;
	a->cfg = *c;
	a->self = &a->cfg.nodes[a->cfg.self];
	a->last_db_state = -1;
	int rc;

	if ((rc = load_tls(&a->cfg, &a->tls_server, &a->tls_client, e)) != 0) {
		free(a);
		return ha_err_wrap(e, "load TLS");
	}
	if (a->cfg.tls_insecure)
		ha_warn("tls-off", "reason=\"[tls] insecure = yes\" risk=\"anyone who reaches the "
		                   "raft, rpc or http port is trusted\"");
	if ((rc = ha_raft_start(loop, &a->cfg, a->tls_server, a->tls_client, &a->raft, e)) != 0) {
		free(a);
		return ha_err_wrap(e, "start raft");
	}
	ha_raft_on_applied(a->raft, on_applied, a);
	if ((rc = ha_rpc_server_start(loop, a->self->address, a->self->rpc_port, a->tls_server,
	                              on_rpc, a, &a->rpc, e)) != 0)
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
	struct ha_action_conf ac = {
	    .host = a->self->address,
	    .port = a->self->db_port,
	    .user = a->cfg.db_user,
	    .password = a->cfg.db_password,
	    .repl_user = a->cfg.repl_user,
	    .repl_password = a->cfg.repl_password,
	    .timeout_ms = a->cfg.probe_timeout_ms * 2,
	};
	if ((rc = ha_action_start(loop, &ac, ha_reconcile_done, a, &a->action, e)) != 0)
		return ha_err_wrap(e, "start action worker");
	if ((rc = ha_bkrun_start(a, e)) != 0)
		return ha_err_wrap(e, "start backup runner");
	if ((rc = ha_arch_start(a, e)) != 0)
		return ha_err_wrap(e, "start binlog archiver");
	if ((rc = ha_copier_start(a, e)) != 0)
		return ha_err_wrap(e, "start repository copier");
	if ((rc = ha_rejoiner_start(a, e)) != 0)
		return ha_err_wrap(e, "start rejoiner");
	/* every worker holds its own copy now */
	ha_config_wipe(&a->cfg);
	if (ha_rpc_client_new(loop, a->self->address, a->tls_client, on_reporter_msg, a,
	                      &a->reporter) != 0)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	if (a->self->http_port &&
	    (rc = ha_http_server_start(loop, a->self->address, a->self->http_port,
	                               ha_endpoints_handle, a, &a->http, e)) != 0)
		return ha_err_wrap(e, "start http");
	if (a->http)
		ha_http_server_set_tls(a->http, a->tls_server, a->cfg.tls_http_plain_checks);

	uv_timer_init(loop, &a->tick);
	a->tick.data = a;
	uv_timer_init(loop, &a->kick);
	a->kick.data = a;
	a->on_tick = on_tick;
	uv_timer_start(&a->tick, on_tick, a->cfg.report_interval_ms, a->cfg.report_interval_ms);
	uv_signal_init(loop, &a->sigterm);
	uv_signal_init(loop, &a->sigint);
	a->sigterm.data = a->sigint.data = a;
	uv_signal_start(&a->sigterm, on_signal, SIGTERM);
	uv_signal_start(&a->sigint, on_signal, SIGINT);
	uv_signal_init(loop, &a->sighup);
	a->sighup.data = a;
	uv_signal_start(&a->sighup, on_sighup, SIGHUP);
	ha_info("agent-started",
	        "node=%s id=%u address=%s raft_port=%u rpc_port=%u http_port=%u db=%s:%u",
	        a->self->name, a->self->id, a->self->address, a->self->raft_port, a->self->rpc_port,
	        a->self->http_port, a->self->address, a->self->db_port);
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
	uv_close((uv_handle_t *)&a->kick, NULL);
	uv_close((uv_handle_t *)&a->sigterm, NULL);
	uv_close((uv_handle_t *)&a->sigint, NULL);
	uv_close((uv_handle_t *)&a->sighup, NULL);
	ha_rpc_server_close(a->rpc);
	ha_http_server_close(a->http);
	ha_rpc_client_close(a->reporter);
	ha_probe_stop(a->probe);
	ha_action_stop(a->action);
	ha_bkrun_stop(a);
	ha_arch_stop(a);
	ha_copier_stop(a);
	ha_rejoiner_stop(a);
	ha_raft_close(a->raft, raft_closed, a);
}

void ha_agent_free(struct ha_agent *a)
{
	ha_probe_join(a->probe);
	ha_action_join(a->action);
	ha_bkrun_free(a);
	ha_arch_free(a);
	ha_copier_free(a);
	ha_rejoiner_free(a);
	for (unsigned i = 0; i < HA_MAX_NODES; i++)
		if (a->health[i].report)
			haagent__health_report__free_unpacked(a->health[i].report, NULL);
	SSL_CTX_free(a->tls_server);
	SSL_CTX_free(a->tls_client);
	ha_config_wipe(&a->cfg);
	free(a);
}
