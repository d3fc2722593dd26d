#include "../../consensus/fsm.h"
#include "render.h"

#include <string.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/gtid.h"

static const char *db_name(const Haagent__NodeStatus *n)
{
	if (!n->has_health || n->health == NULL)
		return "unknown";
	switch (n->health->db) {
	case HAAGENT__DB_STATE__DB_UP:
		return "up";
	case HAAGENT__DB_STATE__DB_DOWN:
		return "down";
	case HAAGENT__DB_STATE__DB_HUNG:
		return "hung";
	case HAAGENT__DB_STATE__DB_UNUSABLE:
		return "unusable";
	default:
		return "unknown";
	}
}

static bool db_up(const Haagent__NodeStatus *n)
{
	return n->has_health && n->health && n->health->db == HAAGENT__DB_STATE__DB_UP;
}

static const char *name_of(const Haagent__StatusResponse *s, uint32_t id)
{
	for (size_t i = 0; i < s->n_nodes; i++)
		if (s->nodes[i]->id == id)
			return s->nodes[i]->name;
	return NULL;
}

static const char *phase_name(uint32_t p)
{
	static const char *const names[] = {"none",      "fencing", "fenced",
	                                    "promoting", "done",    "aborted"};
	return p < 6 ? names[p] : "?";
}

static uint64_t span(uint64_t from, uint64_t to)
{
	return from && to >= from ? to - from : 0;
}

static void failover_json(struct ha_json *j, const Haagent__StatusResponse *s)
{
	const Haagent__Failover *f = s->failover;
	if (f == NULL || f->id == 0) {
		ha_json_null(j, "failover");
		return;
	}
	ha_json_obj_begin(j, "failover");
	ha_json_uint(j, "id", f->id);
	ha_json_str(j, "phase", phase_name(f->phase));
	ha_json_bool(j, "planned", f->planned);
	ha_json_str_or_null(j, "old_primary", name_of(s, f->old_primary));
	ha_json_str_or_null(j, "new_primary", f->candidate ? name_of(s, f->candidate) : NULL);
	ha_json_uint(j, "epoch", f->epoch);
	ha_json_str(j, "reason", f->reason);
	ha_json_str_or_null(j, "fenced_by", f->fenced_by);
	ha_json_str_or_null(j, "detail", f->detail);
	ha_json_str_or_null(j, "lost_gtid", f->lost_gtid);
	ha_json_uint(j, "lost_count", f->lost_count);
	ha_json_bool(j, "accept_loss", f->accept_loss);
	static const char *const salvage[] = {"none", "wanted", "done", "failed"};
	ha_json_str(j, "salvage", f->salvage < 4 ? salvage[f->salvage] : "?");
	ha_json_str_or_null(j, "salvaged_gtid", f->salvaged_gtid);
	ha_json_uint(j, "salvaged_count", f->salvaged_count);
	ha_json_str_or_null(j, "salvage_detail", f->salvage_detail);
	ha_json_str_or_null(j, "target", f->planned ? name_of(s, f->target) : NULL);
	ha_json_str_or_null(j, "fenced_gtid", f->planned ? f->fenced_gtid : NULL);
	if (f->planned) {
		ha_json_uint(j, "timeout_ms", f->timeout_ms);
		ha_json_uint(j, "grace_ms", f->grace_ms);
	} else {
		ha_json_null(j, "timeout_ms");
		ha_json_null(j, "grace_ms");
	}
	ha_json_uint(j, "begin_unix_ms", f->begin_unix_ms);
	ha_json_obj_begin(j, "phase_ms");
	ha_json_uint(j, "fence", span(f->begin_unix_ms, f->fenced_unix_ms));
	ha_json_uint(j, "choose", span(f->fenced_unix_ms, f->promoting_unix_ms));
	ha_json_uint(j, "promote", span(f->promoting_unix_ms, f->done_unix_ms));
	ha_json_uint(j, "total", span(f->begin_unix_ms, f->done_unix_ms));
	ha_json_obj_end(j);
	ha_json_obj_end(j);
}

/* The primary's binary log position as its last report gave it ("" unknown). */
static const char *primary_binlog(const Haagent__StatusResponse *s)
{
	for (size_t i = 0; i < s->n_nodes; i++) {
		const Haagent__NodeStatus *n = s->nodes[i];
		if (n->id == s->primary_id && n->has_health && db_up(n))
			return n->health->gtid_binlog;
	}
	return "";
}

const char *ha_cli_utc(uint64_t unix_s, char *buf, size_t size)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	if (unix_s == 0 || gmtime_r(&t, &tm) == NULL)
		return "-";
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

void ha_archive_lag(const Haagent__ArchiveState *a, const char *primary_pos, uint64_t now_ms,
                    uint64_t *txns, double *seconds)
{
	struct ha_gtid_pos p, h;
	*txns = 0;
	*seconds = 0;
	if (primary_pos == NULL || !primary_pos[0] || ha_gtid_parse(primary_pos, &p, NULL) != 0 ||
	    ha_gtid_parse(a->end_gtid, &h, NULL) != 0)
		return;
	*txns = ha_gtid_count_missing(&p, &h);
	if (*txns && a->sealed_unix_ms && now_ms > a->sealed_unix_ms)
		*seconds = (double)(now_ms - a->sealed_unix_ms) / 1000.0;
}

void ha_render_archive_json(struct ha_json *j, const Haagent__ArchiveState *a,
                            const char *primary_pos)
{
	ha_json_obj_begin(j, "archive");
	ha_json_str_or_null(j, "state", a->state);
	ha_json_str_or_null(j, "head", a->head);
	ha_json_uint(j, "seq", a->seq);
	ha_json_str_or_null(j, "head_gtid", a->end_gtid);
	ha_json_uint(j, "head_time_unix", a->last_ts);
	ha_json_uint(j, "sealed_unix_ms", a->sealed_unix_ms);
	ha_json_str_or_null(j, "archiver", a->node);
	uint64_t txns;
	double secs;
	ha_archive_lag(a, primary_pos, ha_unix_ms(), &txns, &secs);
	if (primary_pos) {
		ha_json_uint(j, "lag_transactions", txns);
		ha_json_double(j, "lag_seconds", secs);
	}
	ha_json_uint(j, "slices", a->slices);
	ha_json_uint(j, "bytes", a->bytes);
	ha_json_uint(j, "transactions", a->txns);
	ha_json_uint(j, "gaps", a->gaps);
	ha_json_str_or_null(j, "last_gap", a->last_gap);
	ha_json_uint(j, "errant", a->errant);
	ha_json_str_or_null(j, "last_errant", a->last_errant);
	ha_json_uint(j, "run_first_seq", a->run_seq);
	ha_json_str_or_null(j, "run_start_gtid", a->run_start_gtid);
	ha_json_uint(j, "run_first_time_unix", a->run_first_ts);
	ha_json_obj_end(j);
}

void ha_render_archive_line(FILE *f, const Haagent__ArchiveState *a, const char *primary_pos)
{
	if (!a->head[0]) {
		fprintf(f, "binlog archive: %s, nothing archived yet\n",
		        a->state[0] ? a->state : "unknown");
		return;
	}
	uint64_t txns;
	double secs;
	ha_archive_lag(a, primary_pos, ha_unix_ms(), &txns, &secs);
	char brief[HA_GTID_BRIEF_MAX], when[32];
	fprintf(f, "binlog archive: %s; head %s (%s UTC, slice %llu)", a->state[0] ? a->state : "-",
	        ha_gtid_brief(a->end_gtid, brief), ha_cli_utc(a->last_ts, when, sizeof(when)),
	        (unsigned long long)a->seq);
	if (primary_pos)
		fprintf(f, ", %s", txns ? "behind" : "up to date");
	if (txns)
		fprintf(f, " by %llu transactions (%.1f s)", (unsigned long long)txns, secs);
	if (a->gaps)
		fprintf(f, "; %llu GAP%s, last: %s", (unsigned long long)a->gaps,
		        a->gaps == 1 ? "" : "S", a->last_gap);
	fprintf(f, "\n");
}

/* Long on purpose: one field after another, in docs/json.md's order; nothing is decided. */
void ha_render_status_json(FILE *f, const Haagent__StatusResponse *s)
{
	struct ha_buf b = HA_BUF_INIT;
	struct ha_json j;
	ha_json_init(&j, &b, true);
	ha_json_obj_begin(&j, NULL);
	ha_json_uint(&j, "format", 1);
	ha_json_str(&j, "cluster", s->cluster);
	ha_json_str_or_null(&j, "leader", s->leader);
	ha_json_uint(&j, "term", s->term);
	ha_json_str_or_null(&j, "primary", s->primary);
	ha_json_uint(&j, "epoch", s->epoch);
	ha_json_bool(&j, "authoritative", s->authoritative);
	ha_json_str(&j, "served_by", s->served_by);
	ha_json_str_or_null(&j, "note", s->note);
	ha_json_uint(&j, "commit_index", s->commit_index);
	ha_json_bool(&j, "auto_failover", !s->paused);
	ha_json_str_or_null(&j, "pause_reason", s->paused ? s->pause_reason : NULL);
	failover_json(&j, s);
	if (s->archive)
		ha_render_archive_json(&j, s->archive, primary_binlog(s));
	else
		ha_json_null(&j, "archive");
	ha_json_obj_begin(&j, "plan");
	ha_json_str_or_null(&j, "candidate", s->plan_candidate);
	ha_json_arr_begin(&j, "blockers");
	for (size_t i = 0; i < s->n_plan_blockers; i++)
		ha_json_str(&j, NULL, s->plan_blockers[i]);
	ha_json_arr_end(&j);
	ha_json_obj_end(&j);
	ha_json_arr_begin(&j, "nodes");
	for (size_t i = 0; i < s->n_nodes; i++) {
		const Haagent__NodeStatus *n = s->nodes[i];
		const Haagent__Health *h = n->has_health ? n->health : NULL;
		bool up = db_up(n);
		ha_json_obj_begin(&j, NULL);
		ha_json_str(&j, "name", n->name);
		ha_json_uint(&j, "id", n->id);
		ha_json_str(&j, "address", n->address);
		ha_json_str(&j, "db_address", n->db_address);
		ha_json_str(&j, "rpc_address", n->rpc_address);
		ha_json_str(&j, "role", n->role);
		ha_json_bool(&j, "maintenance", n->flags & HA_MEMBER_MAINTENANCE);
		ha_json_bool(&j, "no_promote", n->flags & HA_MEMBER_NO_PROMOTE);
		ha_json_str(&j, "db", db_name(n));
		if (up)
			ha_json_bool(&j, "read_only", h->read_only);
		else
			ha_json_null(&j, "read_only");
		ha_json_str_or_null(&j, "gtid", up ? h->gtid_current : NULL);
		ha_json_str_or_null(&j, "gtid_binlog", up ? h->gtid_binlog : NULL);
		ha_json_str_or_null(&j, "gtid_slave", up ? h->gtid_slave : NULL);
		bool rep = up && h->replicating;
		ha_json_bool(&j, "replicating", rep);
		if (rep) {
			char m[300];
			snprintf(m, sizeof(m), "%s:%u", h->master_host, h->master_port);
			ha_json_str(&j, "master", m);
			ha_json_bool(&j, "io_running", h->io_running);
			ha_json_str(&j, "io_state", h->io_state);
			ha_json_bool(&j, "sql_running", h->sql_running);
			if (h->lag_seconds >= 0)
				ha_json_int(&j, "lag_seconds", h->lag_seconds);
			else
				ha_json_null(&j, "lag_seconds");
			ha_json_str_or_null(&j, "last_error", h->last_error);
		} else {
			ha_json_null(&j, "master");
			ha_json_null(&j, "io_running");
			ha_json_null(&j, "io_state");
			ha_json_null(&j, "sql_running");
			ha_json_null(&j, "lag_seconds");
			ha_json_null(&j, "last_error");
		}
		if (up) {
			ha_json_uint(&j, "threads_running", h->threads_running);
			ha_json_obj_begin(&j, "semisync");
			ha_json_bool(&j, "master_enabled", h->semisync_master_enabled);
			ha_json_bool(&j, "master_active", h->semisync_master_active);
			ha_json_bool(&j, "slave_active", h->semisync_slave_active);
			ha_json_obj_end(&j);
			ha_json_str(&j, "version", h->version);
		} else {
			ha_json_null(&j, "threads_running");
			ha_json_null(&j, "semisync");
			ha_json_null(&j, "version");
		}
		if (h)
			ha_json_double(&j, "loadavg1", h->loadavg1);
		else
			ha_json_null(&j, "loadavg1");
		ha_json_str_or_null(&j, "db_error", h ? h->db_error : NULL);
		if (h)
			ha_json_uint(&j, "probe_ms", h->probe_ms);
		else
			ha_json_null(&j, "probe_ms");
		ha_json_str_or_null(&j, "errant_gtid", h ? h->errant_gtid : NULL);
		ha_json_str_or_null(&j, "rejoin", h ? h->rejoin : NULL);
		ha_json_str_or_null(&j, "errant_saved", h ? h->errant_saved : NULL);
		ha_json_str_or_null(&j, "datadir_instance", h ? h->datadir_instance : NULL);
		if (h) {
			ha_json_uint(&j, "epoch_seen", h->epoch_seen);
			ha_json_bool(&j, "write_lease", h->lease_held);
			ha_json_uint(&j, "master_rx_age_ms", h->master_rx_age_ms);
		} else {
			ha_json_null(&j, "epoch_seen");
			ha_json_null(&j, "write_lease");
			ha_json_null(&j, "master_rx_age_ms");
		}
		ha_json_str_or_null(&j, "last_action", h ? h->action : NULL);
		ha_json_str(&j, "agent", n->agent_reachable ? "reachable" : "unreachable");
		if (n->has_health)
			ha_json_uint(&j, "report_age_ms", n->report_age_ms);
		else
			ha_json_null(&j, "report_age_ms");
		ha_json_obj_end(&j);
	}
	ha_json_arr_end(&j);
	ha_json_obj_end(&j);
	fprintf(f, "%s\n", ha_buf_cstr(&b));
	ha_buf_free(&b);
}

static void trunc_gtid(const char *g, char *out, size_t size)
{
	if (strlen(g) < size) {
		snprintf(out, size, "%s", g);
		return;
	}
	snprintf(out, size, "%.*s~", (int)size - 2, g);
}

/* Long on purpose: the table's lines in order; nothing is decided. */
void ha_render_status_table(FILE *f, const Haagent__StatusResponse *s)
{
	fprintf(f, "cluster %s   leader %s (term %llu)   primary %s (epoch %llu)%s\n", s->cluster,
	        s->leader[0] ? s->leader : "NONE", (unsigned long long)s->term,
	        s->primary[0] ? s->primary : "NONE", (unsigned long long)s->epoch,
	        s->authoritative ? ""
	                         : "   [not authoritative: local view of "
	                           "agent]");
	if (!s->authoritative)
		fprintf(f, "(answered by %s, which does not know a ready leader)\n", s->served_by);
	if (s->note && s->note[0])
		fprintf(f, "note: %s\n", s->note);
	if (s->paused)
		fprintf(f, "automatic failover PAUSED: %s\n", s->pause_reason);
	const Haagent__Failover *fo = s->failover;
	if (fo && fo->id) {
		const char *o = name_of(s, fo->old_primary), *c = name_of(s, fo->candidate);
		fprintf(f, "%s #%llu: %s, %s -> %s at epoch %llu",
		        fo->planned ? "switchover" : "failover", (unsigned long long)fo->id,
		        phase_name(fo->phase), o ? o : "?", c ? c : "(choosing)",
		        (unsigned long long)fo->epoch);
		if (fo->done_unix_ms)
			fprintf(f, " in %.2f s (fence %.2f, choose %.2f, promote %.2f), lost %llu",
			        span(fo->begin_unix_ms, fo->done_unix_ms) / 1000.0,
			        span(fo->begin_unix_ms, fo->fenced_unix_ms) / 1000.0,
			        span(fo->fenced_unix_ms, fo->promoting_unix_ms) / 1000.0,
			        span(fo->promoting_unix_ms, fo->done_unix_ms) / 1000.0,
			        (unsigned long long)fo->lost_count);
		fprintf(f, "\n  reason: %s\n", fo->reason);
		if (fo->salvage >= 2)
			fprintf(f, "  salvage: %s, %llu transactions (%s)\n",
			        fo->salvage == 2 ? "done" : "failed",
			        (unsigned long long)fo->salvaged_count, fo->salvage_detail);
		else if (fo->salvage == 1)
			fprintf(f, "  salvage: under way from %s's binlog\n", o ? o : "?");
	}
	if (s->authoritative) {
		fprintf(f, "failover plan: %s%s", s->plan_candidate[0] ? "would promote " : "",
		        s->plan_candidate[0] ? s->plan_candidate : "no candidate");
		for (size_t i = 0; i < s->n_plan_blockers; i++)
			fprintf(f, "%s%s", i ? "; " : " (blocked: ", s->plan_blockers[i]);
		fprintf(f, "%s\n", s->n_plan_blockers ? ")" : "");
	}
	if (s->archive)
		ha_render_archive_line(f, s->archive, primary_binlog(s));
	fprintf(f, "\n%-10s %-10s %-7s %-4s %-24s %-5s %-11s %-10s %-11s %s\n", "NODE", "ROLE",
	        "DB", "RO", "GTID", "LAG", "IO/SQL", "LOAD", "AGENT", "FLAGS");
	for (size_t i = 0; i < s->n_nodes; i++) {
		const Haagent__NodeStatus *n = s->nodes[i];
		const Haagent__Health *h = n->has_health ? n->health : NULL;
		bool up = db_up(n);
		char gtid[25] = "-", lag[16] = "-", iosql[16] = "-", load[24] = "-";
		if (up) {
			trunc_gtid(h->gtid_current[0] ? h->gtid_current : "(empty)", gtid,
			           sizeof(gtid));
			if (h->replicating) {
				if (h->lag_seconds >= 0)
					snprintf(lag, sizeof(lag), "%llds",
					         (long long)h->lag_seconds);
				else
					snprintf(lag, sizeof(lag), "null");
				snprintf(iosql, sizeof(iosql), "%s/%s",
				         h->io_state[0] ? h->io_state : "No",
				         h->sql_running ? "Yes" : "No");
			}
			snprintf(load, sizeof(load), "%.2f/%u", h->loadavg1, h->threads_running);
		}
		char flags[48];
		bool mnt = n->flags & HA_MEMBER_MAINTENANCE, np = n->flags & HA_MEMBER_NO_PROMOTE;
		snprintf(flags, sizeof(flags), "%s%s%s", mnt ? "maintenance" : "",
		         mnt && np ? "," : "", np ? "no-promote" : "");
		fprintf(f, "%-10s %-10s %-7s %-4s %-24s %-5s %-11s %-10s %-11s %s\n", n->name,
		        n->role, db_name(n), up ? (h->read_only ? "on" : "off") : "-", gtid, lag,
		        iosql, load, n->agent_reachable ? "ok" : "UNREACHABLE",
		        flags[0] ? flags : "-");
	}
	bool any = false;
	for (size_t i = 0; i < s->n_nodes; i++) {
		const Haagent__NodeStatus *n = s->nodes[i];
		const Haagent__Health *h = n->has_health ? n->health : NULL;
		if (h == NULL)
			continue;
		const char *err = h->db != HAAGENT__DB_STATE__DB_UP ? h->db_error
		                  : h->rejoin[0]                    ? h->rejoin
		                  : h->errant_gtid[0]               ? h->action
		                  : h->last_error[0]                ? h->last_error
		                                                    : NULL;
		if (err && err[0]) {
			if (!any)
				fprintf(f, "\n");
			any = true;
			fprintf(f, "%s: %s\n", n->name, err);
		}
	}
}

void ha_render_events(FILE *f, const Haagent__EventsResponse *r, bool json)
{
	if (json) {
		struct ha_buf b = HA_BUF_INIT;
		struct ha_json j;
		ha_json_init(&j, &b, true);
		ha_json_obj_begin(&j, NULL);
		ha_json_uint(&j, "format", 1);
		ha_json_arr_begin(&j, "events");
		for (size_t i = 0; i < r->n_events; i++) {
			const Haagent__Event *e = r->events[i];
			ha_json_obj_begin(&j, NULL);
			ha_json_uint(&j, "seq", e->seq);
			ha_json_uint(&j, "unix_ms", e->unix_ms);
			ha_json_str(&j, "name", e->name);
			ha_json_str_or_null(&j, "node", e->node);
			ha_json_uint(&j, "epoch", e->epoch);
			ha_json_str_or_null(&j, "detail", e->detail);
			ha_json_obj_end(&j);
		}
		ha_json_arr_end(&j);
		ha_json_obj_end(&j);
		fprintf(f, "%s\n", ha_buf_cstr(&b));
		ha_buf_free(&b);
		return;
	}
	for (size_t i = 0; i < r->n_events; i++) {
		const Haagent__Event *e = r->events[i];
		char when[32] = "-";
		if (e->unix_ms) {
			time_t t = (time_t)(e->unix_ms / 1000);
			struct tm tm;
			gmtime_r(&t, &tm);
			snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			         tm.tm_min, tm.tm_sec, (int)(e->unix_ms % 1000));
		}
		fprintf(f, "%4llu %-24s %-22s %-8s epoch=%llu %s\n", (unsigned long long)e->seq,
		        when, e->name, e->node, (unsigned long long)e->epoch, e->detail);
	}
}
