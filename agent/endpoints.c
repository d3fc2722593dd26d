/* The agent's HTTP endpoints (http/server.c serves them): what a load balancer and Prometheus
 * ask. Every answer is computed from in-memory state (the latest probe sample, the replicated
 * state, raft's view): nothing here touches the database or blocks. Loop thread.
 *
 *   GET /primary              200 only on the current epoch's writable primary, else 503
 *   GET /replica[?max_lag=S]  200 on a healthy replica of the current primary, else 503
 *   GET /health               this node's own view, JSON (always 200)
 *   GET /metrics              Prometheus text exposition format 0.0.4 (docs/metrics.md) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "common/gtid.h"
#include "common/clock.h"

/* Why this node is not the writable primary right now, or NULL when it is. */
static const char *not_primary(struct ha_agent *a, const struct ha_fsm_state *st,
                               const struct ha_probe_sample *s)
{
	if (st->primary_id != a->self->id)
		return st->primary_id ? "another node is the primary"
		                      : "no primary (a failover is in progress)";
	if (s->db != HA_DB_UP)
		return "database not up";
	if (a->rc.writable_epoch != st->epoch)
		return "not made writable at this epoch yet";
	if (!ha_agent_lease_held(a))
		return "write lease not held";
	/* a sample taken after the promotion that says read-only: someone set it by hand */
	if (s->read_only && s->started_ms >= a->rc.writable_ms)
		return "read_only is ON";
	return NULL;
}

/* Why this node is not a healthy replica right now (lag limit max_lag_s, or none when < 0). */
static const char *not_replica(struct ha_agent *a, const struct ha_fsm_state *st,
                               const struct ha_probe_sample *s, long max_lag_s, char *buf,
                               size_t size)
{
	const struct ha_member *me = ha_fsm_member(st, a->self->id);
	const struct ha_member *p = ha_fsm_member(st, st->primary_id);
	if (st->primary_id == a->self->id)
		return "this node is the primary";
	if (p == NULL)
		return "no primary (a failover is in progress)";
	/* the local sample as the coordinator's view of a replica (coord/failover.h) */
	struct ha_fo_node v = {.fresh = true,
	                       .db = (int)s->db,
	                       .flags = me ? me->flags : 0,
	                       .replicating = s->replicating &&
	                                      !strcmp(s->master_host, p->address) &&
	                                      s->master_port == p->db_port,
	                       .io_running = s->io_running,
	                       .sql_running = s->sql_running,
	                       .lag_seconds = s->lag_seconds};
	if (a->rc.diverged)
		v.flags |= HA_MEMBER_DIVERGED;
	unsigned limit_ms = max_lag_s >= 0 && max_lag_s < UINT32_MAX / 1000
	                        ? (unsigned)max_lag_s * 1000
	                        : UINT32_MAX;
	const char *no = ha_fo_replica_unfit(&v, limit_ms, buf, size);
	if (no == buf)
		snprintf(buf, size, "lags %lld s (max_lag=%ld)", (long long)s->lag_seconds,
		         max_lag_s);
	return no;
}

static const char *role_of(struct ha_agent *a, const struct ha_fsm_state *st,
                           const struct ha_probe_sample *s)
{
	const struct ha_member *me = ha_fsm_member(st, a->self->id);
	if (st->primary_id == a->self->id)
		return "primary";
	if (me && (me->flags & HA_MEMBER_DIVERGED))
		return "diverged";
	if (s->db != HA_DB_UP)
		return "unknown";
	return s->replicating ? "replica" : "standalone";
}

static void health_json(struct ha_agent *a, const struct ha_fsm_state *st,
                        const struct ha_probe_sample *s, struct ha_buf *out)
{
	struct ha_json j;
	const struct ha_member *me = ha_fsm_member(st, a->self->id);
	const struct ha_member *p = ha_fsm_member(st, st->primary_id);
	uint32_t leader = ha_raft_leader_id(a->raft);
	const struct ha_node_conf *l = leader ? ha_config_node_by_id(&a->cfg, leader) : NULL;
	char buf[96];
	const char *np = not_primary(a, st, s), *nr = not_replica(a, st, s, -1, buf, sizeof(buf));
	bool up = s->db == HA_DB_UP;
	ha_json_init(&j, out, true);
	ha_json_obj_begin(&j, NULL);
	ha_json_uint(&j, "format", 1);
	ha_json_str(&j, "node", a->self->name);
	ha_json_str(&j, "role", role_of(a, st, s));
	ha_json_bool(&j, "writable_primary", np == NULL);
	ha_json_bool(&j, "healthy_replica", nr == NULL);
	ha_json_str_or_null(&j, "why_not_primary", np);
	ha_json_str_or_null(&j, "why_not_replica", nr);
	ha_json_str_or_null(&j, "primary", p ? p->name : NULL);
	ha_json_uint(&j, "epoch", st->epoch);
	ha_json_str_or_null(&j, "leader", l ? l->name : NULL);
	ha_json_uint(&j, "term", ha_raft_term(a->raft));
	ha_json_bool(&j, "write_lease", ha_agent_lease_held(a));
	ha_json_bool(&j, "maintenance", me && (me->flags & HA_MEMBER_MAINTENANCE));
	ha_json_str(&j, "db", ha_db_state_name(s->db));
	if (up)
		ha_json_bool(&j, "read_only", s->read_only);
	else
		ha_json_null(&j, "read_only");
	ha_json_str_or_null(&j, "gtid", up ? s->gtid_current : NULL);
	if (up && s->replicating && s->lag_seconds >= 0)
		ha_json_int(&j, "lag_seconds", s->lag_seconds);
	else
		ha_json_null(&j, "lag_seconds");
	ha_json_str_or_null(&j, "db_error", s->db_error);
	ha_json_str_or_null(&j, "last_action", a->rc.last_action);
	ha_json_obj_end(&j);
	ha_buf_puts(out, "\n");
}

/* ---- Prometheus ---- */

static void metric(struct ha_buf *b, const char *name, const char *type, const char *help)
{
	ha_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Long on purpose: one Prometheus family after another, in the order docs/metrics.md lists
 * them; nothing is decided here. */
static void metrics(struct ha_agent *a, const struct ha_fsm_state *st,
                    const struct ha_probe_sample *s, struct ha_buf *b)
{
	const char *n = a->self->name; /* config-validated: [A-Za-z0-9_.-] */
	const struct ha_member *me = ha_fsm_member(st, a->self->id);
	bool up = s->db == HA_DB_UP;
	char buf[96];

	metric(b, "haagent_db_up", "gauge", "1 when the local mariadbd answers the probe");
	ha_buf_printf(b, "haagent_db_up{node=\"%s\"} %d\n", n, up);
	metric(b, "haagent_db_state", "gauge", "the local database state (1 for the current one)");
	static const enum ha_db_state states[] = {HA_DB_UP, HA_DB_DOWN, HA_DB_HUNG, HA_DB_UNUSABLE,
	                                          HA_DB_UNKNOWN};
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		ha_buf_printf(b, "haagent_db_state{node=\"%s\",state=\"%s\"} %d\n", n,
		              ha_db_state_name(states[i]), s->db == states[i]);
	metric(b, "haagent_probe_duration_seconds", "gauge", "duration of the last complete probe");
	ha_buf_printf(b, "haagent_probe_duration_seconds{node=\"%s\"} %.3f\n", n,
	              s->probe_ms / 1000.0);

	metric(b, "haagent_role", "gauge", "this node's role (1 for the current one)");
	static const char *const roles[] = {"primary", "replica", "diverged", "standalone",
	                                    "unknown"};
	const char *role = role_of(a, st, s);
	for (size_t i = 0; i < 5; i++)
		ha_buf_printf(b, "haagent_role{node=\"%s\",role=\"%s\"} %d\n", n, roles[i],
		              !strcmp(role, roles[i]));
	metric(b, "haagent_writable_primary", "gauge",
	       "1 when this node is the epoch's writable primary (what GET /primary says)");
	ha_buf_printf(b, "haagent_writable_primary{node=\"%s\"} %d\n", n,
	              not_primary(a, st, s) == NULL);
	metric(b, "haagent_healthy_replica", "gauge",
	       "1 when this node is a healthy replica of the primary (GET /replica)");
	ha_buf_printf(b, "haagent_healthy_replica{node=\"%s\"} %d\n", n,
	              not_replica(a, st, s, -1, buf, sizeof(buf)) == NULL);
	metric(b, "haagent_read_only", "gauge",
	       "@@read_only of the local server (absent when down)");
	if (up)
		ha_buf_printf(b, "haagent_read_only{node=\"%s\"} %d\n", n, s->read_only);
	metric(b, "haagent_write_lease", "gauge", "1 while this agent holds the write lease");
	ha_buf_printf(b, "haagent_write_lease{node=\"%s\"} %d\n", n, ha_agent_lease_held(a));
	metric(b, "haagent_fenced_epoch", "gauge",
	       "epoch at which this agent last fenced its server (0: never since it started)");
	ha_buf_printf(b, "haagent_fenced_epoch{node=\"%s\"} %llu\n", n,
	              (unsigned long long)a->rc.fenced_epoch);
	metric(b, "haagent_maintenance", "gauge", "1 while this node is in maintenance");
	ha_buf_printf(b, "haagent_maintenance{node=\"%s\"} %d\n", n,
	              me && (me->flags & HA_MEMBER_MAINTENANCE));
	metric(b, "haagent_diverged", "gauge",
	       "1 when this node holds transactions the primary lacks");
	ha_buf_printf(b, "haagent_diverged{node=\"%s\"} %d\n", n,
	              a->rc.diverged || (me && (me->flags & HA_MEMBER_DIVERGED)));

	metric(b, "haagent_replication_lag_seconds", "gauge",
	       "Seconds_Behind_Master (absent when not replicating or unknown)");
	if (up && s->replicating && s->lag_seconds >= 0)
		ha_buf_printf(b, "haagent_replication_lag_seconds{node=\"%s\"} %lld\n", n,
		              (long long)s->lag_seconds);
	metric(b, "haagent_replication_io_running", "gauge", "1 when the IO thread runs");
	metric(b, "haagent_replication_sql_running", "gauge", "1 when the SQL thread runs");
	if (up && s->replicating) {
		ha_buf_printf(b, "haagent_replication_io_running{node=\"%s\"} %d\n", n,
		              s->io_running);
		ha_buf_printf(b, "haagent_replication_sql_running{node=\"%s\"} %d\n", n,
		              s->sql_running);
	}
	metric(b, "haagent_semisync_master_active", "gauge",
	       "Rpl_semi_sync_master_status of the local server");
	if (up)
		ha_buf_printf(b, "haagent_semisync_master_active{node=\"%s\"} %d\n", n,
		              s->semisync_master_active);

	uint32_t leader = ha_raft_leader_id(a->raft);
	metric(b, "haagent_raft_term", "gauge", "raft term seen by this agent");
	ha_buf_printf(b, "haagent_raft_term{node=\"%s\"} %llu\n", n,
	              (unsigned long long)ha_raft_term(a->raft));
	metric(b, "haagent_raft_leader", "gauge", "1 when this agent is the raft leader");
	ha_buf_printf(b, "haagent_raft_leader{node=\"%s\"} %d\n", n, leader == a->self->id);
	metric(b, "haagent_raft_leader_known", "gauge", "1 when this agent knows a raft leader");
	ha_buf_printf(b, "haagent_raft_leader_known{node=\"%s\"} %d\n", n, leader != 0);
	metric(b, "haagent_raft_commit_index", "gauge", "raft commit index");
	ha_buf_printf(b, "haagent_raft_commit_index{node=\"%s\"} %llu\n", n,
	              (unsigned long long)ha_raft_commit_index(a->raft));

	metric(b, "haagent_epoch", "gauge", "the fencing epoch: bumped by every change of primary");
	ha_buf_printf(b, "haagent_epoch{node=\"%s\"} %llu\n", n, (unsigned long long)st->epoch);
	metric(b, "haagent_auto_failover_enabled", "gauge",
	       "0 when automatic failover is paused or disabled");
	ha_buf_printf(b, "haagent_auto_failover_enabled{node=\"%s\"} %d\n", n,
	              a->cfg.auto_failover && !st->paused);
	metric(b, "haagent_failovers_total", "counter", "failovers and switchovers that completed");
	ha_buf_printf(b, "haagent_failovers_total{node=\"%s\",kind=\"automatic\"} %llu\n", n,
	              (unsigned long long)st->failovers_done);
	ha_buf_printf(b, "haagent_failovers_total{node=\"%s\",kind=\"planned\"} %llu\n", n,
	              (unsigned long long)st->switchovers_done);
	metric(b, "haagent_failovers_aborted_total", "counter",
	       "switchovers rolled back (the old primary kept its role)");
	ha_buf_printf(b, "haagent_failovers_aborted_total{node=\"%s\"} %llu\n", n,
	              (unsigned long long)st->aborted);
	metric(b, "haagent_failover_in_progress", "gauge", "1 while a failover or switchover runs");
	ha_buf_printf(b, "haagent_failover_in_progress{node=\"%s\"} %d\n", n,
	              ha_fsm_failover_active(st));
	const struct ha_failover *f = &st->failover;
	metric(b, "haagent_last_failover_phase_seconds", "gauge",
	       "durations of the last completed failover or switchover, per phase");
	metric(b, "haagent_last_failover_timestamp_seconds", "gauge",
	       "when the last failover or switchover ended (unix time)");
	if (f->id && f->done_ms) {
		const char *kind = f->planned ? "planned" : "automatic";
		uint64_t fence = f->fenced_ms > f->begin_ms ? f->fenced_ms - f->begin_ms : 0;
		uint64_t choose =
		    f->promoting_ms > f->fenced_ms ? f->promoting_ms - f->fenced_ms : 0;
		uint64_t promote = f->done_ms > f->promoting_ms && f->promoting_ms
		                       ? f->done_ms - f->promoting_ms
		                       : 0;
		uint64_t total = f->done_ms > f->begin_ms ? f->done_ms - f->begin_ms : 0;
		const char *ph[] = {"fence", "choose", "promote", "total"};
		uint64_t v[] = {fence, choose, promote, total};
		for (size_t i = 0; i < 4; i++)
			ha_buf_printf(b,
			              "haagent_last_failover_phase_seconds{node=\"%s\",kind=\"%s\","
			              "phase=\"%s\"} %.3f\n",
			              n, kind, ph[i], v[i] / 1000.0);
		ha_buf_printf(b, "haagent_last_failover_timestamp_seconds{node=\"%s\"} %.3f\n", n,
		              f->done_ms / 1000.0);
	}
}

static void backup_metrics(const char *n, const struct ha_fsm_state *st, struct ha_buf *b)
{
	metric(b, "haagent_backup_running", "gauge", "1 while a backup job runs");
	ha_buf_printf(b, "haagent_backup_running{node=\"%s\"} %d\n", n,
	              ha_fsm_backup_running(st) != NULL);
	metric(b, "haagent_backup_last_success_timestamp_seconds", "gauge",
	       "when the last successful backup of each type finished (unix time)");
	metric(b, "haagent_backup_last_duration_seconds", "gauge",
	       "duration of the last successful backup of each type");
	metric(b, "haagent_backup_last_bytes", "gauge",
	       "size of the last successful backup of each type: read from mariadb-backup, stored");
	metric(b, "haagent_backup_last_verified", "gauge",
	       "verify result of the last successful backup of each type: 1 passed, 0 never, -1 "
	       "failed");
	static const char *types[] = {"full", "differential", "incremental"};
	for (int t = 0; t < 3; t++) {
		const struct ha_backup_rec *last = NULL;
		for (unsigned i = 0; i < st->n_backups; i++)
			if (st->backups[i].state == HA_BK_DONE &&
			    !strcmp(st->backups[i].type, types[t]))
				last = &st->backups[i];
		if (last == NULL)
			continue;
		ha_buf_printf(
		    b,
		    "haagent_backup_last_success_timestamp_seconds{node=\"%s\",type=\"%s\"} "
		    "%.3f\n",
		    n, types[t], last->finished_ms / 1000.0);
		ha_buf_printf(
		    b, "haagent_backup_last_duration_seconds{node=\"%s\",type=\"%s\"} %.3f\n", n,
		    types[t],
		    last->finished_ms > last->started_ms
		        ? (last->finished_ms - last->started_ms) / 1000.0
		        : 0.0);
		ha_buf_printf(
		    b, "haagent_backup_last_bytes{node=\"%s\",type=\"%s\",kind=\"read\"} %llu\n", n,
		    types[t], (unsigned long long)last->bytes_in);
		ha_buf_printf(
		    b, "haagent_backup_last_bytes{node=\"%s\",type=\"%s\",kind=\"stored\"} %llu\n",
		    n, types[t], (unsigned long long)last->bytes_stored);
		ha_buf_printf(b, "haagent_backup_last_verified{node=\"%s\",type=\"%s\"} %d\n", n,
		              types[t], last->verified);
	}
}

static void archive_metrics(struct ha_agent *a, const struct ha_fsm_state *st, struct ha_buf *b)
{
	const char *n = a->self->name;
	const struct ha_archive *ar = &st->archive;
	char state[600];
	const char *now = ha_arch_state(a, state, sizeof(state));
	metric(b, "haagent_archive_streaming", "gauge",
	       "1 while this agent's archiver streams the primary's binary log");
	ha_buf_printf(b, "haagent_archive_streaming{node=\"%s\"} %d\n", n,
	              !strncmp(now, "streaming", 9));
	if (!ar->head[0])
		return;
	metric(b, "haagent_archive_head_timestamp_seconds", "gauge",
	       "when the archive's newest transaction began (unix time, from the binary log)");
	ha_buf_printf(b, "haagent_archive_head_timestamp_seconds{node=\"%s\"} %llu\n", n,
	              (unsigned long long)ar->last_ts);
	metric(b, "haagent_archive_sealed_timestamp_seconds", "gauge",
	       "when the archive's newest slice was sealed (unix time)");
	ha_buf_printf(b, "haagent_archive_sealed_timestamp_seconds{node=\"%s\"} %.3f\n", n,
	              ar->sealed_ms / 1000.0);
	metric(b, "haagent_archive_slices_total", "counter", "archive slices committed");
	ha_buf_printf(b, "haagent_archive_slices_total{node=\"%s\"} %llu\n", n,
	              (unsigned long long)ar->slices);
	metric(b, "haagent_archive_transactions_total", "counter", "transactions archived");
	ha_buf_printf(b, "haagent_archive_transactions_total{node=\"%s\"} %llu\n", n,
	              (unsigned long long)ar->txns);
	metric(b, "haagent_archive_bytes_total", "counter", "archive bytes stored");
	ha_buf_printf(b, "haagent_archive_bytes_total{node=\"%s\"} %llu\n", n,
	              (unsigned long long)ar->bytes);
	metric(b, "haagent_archive_gaps_total", "counter",
	       "gaps in the archive (transactions purged or missing before they were archived)");
	ha_buf_printf(b, "haagent_archive_gaps_total{node=\"%s\"} %llu\n", n,
	              (unsigned long long)ar->gaps);
	metric(b, "haagent_archive_errant_total", "counter",
	       "failovers that left archived transactions off the main line");
	ha_buf_printf(b, "haagent_archive_errant_total{node=\"%s\"} %llu\n", n,
	              (unsigned long long)ar->errant);
	int i = ha_agent_node_index(a, st->primary_id);
	struct ha_gtid_pos p, h;
	if (i >= 0 && a->health[i].last_binlog[0] &&
	    ha_gtid_parse(a->health[i].last_binlog, &p, NULL) == 0 &&
	    ha_gtid_parse(ar->end_gtid, &h, NULL) == 0) {
		metric(b, "haagent_archive_lag_transactions", "gauge",
		       "transactions the primary logged that the archive does not hold yet (the "
		       "leader knows the primary's position)");
		ha_buf_printf(b, "haagent_archive_lag_transactions{node=\"%s\"} %llu\n", n,
		              (unsigned long long)ha_gtid_count_missing(&p, &h));
	}
}

/* The HTTP server's own counters (http/server.h): what it answered and what it cut off. */
static void http_metrics(struct ha_agent *a, struct ha_buf *b)
{
	const char *n = a->self->name;
	struct ha_http_stats hs;
	ha_http_server_stats(a->http, &hs);
	metric(b, "haagent_http_connections", "gauge", "HTTP connections open now");
	ha_buf_printf(b, "haagent_http_connections{node=\"%s\"} %u\n", n, hs.open);
	metric(b, "haagent_http_connections_accepted_total", "counter",
	       "HTTP connections accepted");
	ha_buf_printf(b, "haagent_http_connections_accepted_total{node=\"%s\"} %llu\n", n,
	              (unsigned long long)hs.accepted);
	metric(b, "haagent_http_requests_total", "counter", "HTTP requests answered, by status");
	for (int i = 0; i < HA_HTTP_N_CODES; i++) {
		char code[16];
		snprintf(code, sizeof(code), "%d", ha_http_codes[i]);
		ha_buf_printf(b, "haagent_http_requests_total{node=\"%s\",code=\"%s\"} %llu\n", n,
		              ha_http_codes[i] ? code : "other",
		              (unsigned long long)hs.answered[i]);
	}
	metric(b, "haagent_http_dropped_total", "counter",
	       "HTTP connections closed without an answer: slow (request not whole in time), "
	       "evicted (slot given to a newer connection), unread (answer not taken), refused "
	       "(every slot held by a connection not read yet), error");
	for (int i = 0; i < HA_HTTP_DROP_N_; i++)
		ha_buf_printf(b, "haagent_http_dropped_total{node=\"%s\",reason=\"%s\"} %llu\n", n,
		              ha_http_drop_name((enum ha_http_drop)i),
		              (unsigned long long)hs.dropped[i]);
}

void ha_endpoints_handle(void *data, const struct ha_http_req *req, struct ha_http_resp *resp)
{
	struct ha_agent *a = data;
	struct ha_probe_sample *s = malloc(sizeof(*s));
	if (s == NULL) {
		resp->status = 503;
		return;
	}
	ha_probe_latest(a->probe, s);
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	char buf[96];
	const char *no;
	if (!strcmp(req->path, "/primary")) {
		no = not_primary(a, st, s);
		resp->status = no ? 503 : 200;
		ha_buf_printf(&resp->body, "%s%s\n", no ? "not the primary: " : "primary",
		              no ? no : "");
	} else if (!strcmp(req->path, "/replica")) {
		unsigned max_lag;
		bool bad;
		long limit =
		    ha_http_query_uint(req->query, "max_lag", &max_lag, &bad) ? (long)max_lag : -1L;
		if (bad) {
			resp->status = 400;
			ha_buf_puts(&resp->body, "max_lag: expected whole seconds\n");
		} else {
			no = not_replica(a, st, s, limit, buf, sizeof(buf));
			resp->status = no ? 503 : 200;
			ha_buf_printf(&resp->body, "%s%s\n",
			              no ? "not a healthy replica: " : "replica", no ? no : "");
		}
	} else if (!strcmp(req->path, "/health")) {
		resp->status = 200;
		resp->content_type = "application/json";
		health_json(a, st, s, &resp->body);
	} else if (!strcmp(req->path, "/metrics")) {
		resp->status = 200;
		resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
		metrics(a, st, s, &resp->body);
		backup_metrics(a->self->name, st, &resp->body);
		archive_metrics(a, st, &resp->body);
		if (a->http)
			http_metrics(a, &resp->body);
	} else {
		resp->status = 404;
		ha_buf_puts(&resp->body, "not found: try /primary, /replica, /health, /metrics\n");
	}
	free(s);
}
