#include "render.h"

#include <string.h>

#include "../common/buf.h"

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
	default:
		return "unknown";
	}
}

static bool db_up(const Haagent__NodeStatus *n)
{
	return n->has_health && n->health && n->health->db == HAAGENT__DB_STATE__DB_UP;
}

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
	fprintf(f, "\n%-10s %-10s %-7s %-4s %-24s %-5s %-11s %-10s %-11s\n", "NODE", "ROLE", "DB",
	        "RO", "GTID", "LAG", "IO/SQL", "LOAD", "AGENT");
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
		fprintf(f, "%-10s %-10s %-7s %-4s %-24s %-5s %-11s %-10s %-11s\n", n->name, n->role,
		        db_name(n), up ? (h->read_only ? "on" : "off") : "-", gtid, lag, iosql,
		        load, n->agent_reachable ? "ok" : "UNREACHABLE");
	}
	bool any = false;
	for (size_t i = 0; i < s->n_nodes; i++) {
		const Haagent__NodeStatus *n = s->nodes[i];
		const Haagent__Health *h = n->has_health ? n->health : NULL;
		if (h == NULL)
			continue;
		const char *err = h->db != HAAGENT__DB_STATE__DB_UP ? h->db_error
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
