#include "failover.h"

#include <stdio.h>
#include <string.h>

#include "../consensus/fsm.h"
#include "common/buf.h"
#include "common/gtid.h"

#define DB_UP   1
#define DB_DOWN 2
#define DB_HUNG 3

static void put(char *why, size_t size, struct ha_buf *b)
{
	snprintf(why, size, "%s", ha_buf_failed(b) ? "out of memory" : ha_buf_cstr(b));
	ha_buf_free(b);
}

static bool lost_stream(const struct ha_fo_node *r, const struct ha_fo_conf *c)
{
	return !r->io_running || r->rx_age_ms > c->stream_timeout_ms;
}

enum ha_verdict ha_fo_judge(const struct ha_fo_node *p, const struct ha_fo_node *replicas,
                            size_t n_replicas, const struct ha_fo_conf *c, uint64_t suspect_for_ms,
                            const char **kind, char *why, size_t why_size)
{
	struct ha_buf b = HA_BUF_INIT;
	*kind = "";
	why[0] = '\0';
	if (p->fresh) {
		if (p->db == DB_UP)
			return HA_PRIMARY_OK;
		if (p->db == DB_DOWN) {
			*kind = "db-down";
			ha_buf_printf(&b, "%s's agent reports mariadbd down (%s) for %llu ms",
			              p->name,
			              p->db_error && p->db_error[0] ? p->db_error : "no detail",
			              (unsigned long long)suspect_for_ms);
			put(why, why_size, &b);
			return suspect_for_ms >= c->confirm_ms ? HA_PRIMARY_FAILED
			                                       : HA_PRIMARY_SUSPECT;
		}
		if (p->db == DB_HUNG) {
			*kind = "db-hung";
			ha_buf_printf(
			    &b, "%s's mariadbd does not answer for %llu ms (hang timeout %u ms)",
			    p->name, (unsigned long long)suspect_for_ms, c->hang_timeout_ms);
			put(why, why_size, &b);
			return suspect_for_ms >= c->hang_timeout_ms ? HA_PRIMARY_FAILED
			                                            : HA_PRIMARY_SUSPECT;
		}
		*kind = "db-unknown";
		ha_buf_printf(&b, "%s's agent has not probed its database yet", p->name);
		put(why, why_size, &b);
		return HA_PRIMARY_SUSPECT;
	}
	/* The agent is silent: the host may be gone, or only the agent. Ask the replicas. */
	*kind = "agent-unreachable";
	size_t witnesses = 0, lost = 0;
	for (size_t i = 0; i < n_replicas; i++) {
		const struct ha_fo_node *r = &replicas[i];
		if (!r->fresh || r->db != DB_UP || !r->replicating)
			continue;
		witnesses++;
		if (lost_stream(r, c))
			lost++;
	}
	ha_buf_printf(&b, "%s's agent is unreachable; %zu of %zu replicas lost their stream",
	              p->name, lost, witnesses);
	if (witnesses == 0) {
		ha_buf_puts(&b, " (no replica can vouch either way: no decision)");
		put(why, why_size, &b);
		return HA_PRIMARY_SUSPECT;
	}
	put(why, why_size, &b);
	if (lost * 2 > witnesses && suspect_for_ms >= c->confirm_ms)
		return HA_PRIMARY_FAILED;
	return HA_PRIMARY_SUSPECT;
}

bool ha_fo_relay_applied(const struct ha_fo_node *n)
{
	struct ha_gtid_pos cur, io;
	if (ha_gtid_parse(n->gtid_current, &cur, NULL) || ha_gtid_parse(n->gtid_io_pos, &io, NULL))
		return false;
	return ha_gtid_contains(&cur, &io);
}

static const char *ineligible(const struct ha_fo_node *n, bool require_applied)
{
	if (!n->fresh)
		return "agent unreachable";
	if (n->db != DB_UP)
		return n->db == DB_HUNG ? "database hung" : "database down";
	if (n->flags & HA_MEMBER_MAINTENANCE)
		return "in maintenance";
	if (n->flags & HA_MEMBER_NO_PROMOTE)
		return "no-promote";
	if (n->flags & HA_MEMBER_DIVERGED)
		return "diverged";
	if (n->replicating && !n->sql_running && n->last_error && n->last_error[0])
		return "replication broken";
	if (require_applied && n->replicating && !ha_fo_relay_applied(n))
		return "relay log not applied yet";
	struct ha_gtid_pos g;
	if (ha_gtid_parse(n->gtid_current, &g, NULL))
		return "unreadable GTID position";
	return NULL;
}

/* a better than b? */
static bool better(const struct ha_fo_node *a, const struct ha_fo_node *b)
{
	struct ha_gtid_pos ga, gb;
	ha_gtid_parse(a->gtid_current, &ga, NULL);
	ha_gtid_parse(b->gtid_current, &gb, NULL);
	enum ha_gtid_cmp c = ha_gtid_compare(&ga, &gb);
	if (c == HA_GTID_AHEAD)
		return true;
	if (c == HA_GTID_BEHIND)
		return false;
	if (c == HA_GTID_DIVERGED) {
		/* incomparable: the one with more transactions the other lacks */
		uint64_t ma = ha_gtid_count_missing(&ga, &gb), mb = ha_gtid_count_missing(&gb, &ga);
		if (ma != mb)
			return ma > mb;
	}
	if (a->priority != b->priority)
		return a->priority > b->priority;
	int64_t la = a->lag_seconds < 0 ? INT64_MAX : a->lag_seconds;
	int64_t lb = b->lag_seconds < 0 ? INT64_MAX : b->lag_seconds;
	if (la != lb)
		return la < lb;
	double ka = a->loadavg1 + a->threads_running, kb = b->loadavg1 + b->threads_running;
	if (ka != kb)
		return ka < kb;
	return a->id < b->id;
}

int ha_fo_choose(const struct ha_fo_node *nodes, size_t n, bool require_applied, char *why,
                 size_t why_size)
{
	struct ha_buf b = HA_BUF_INIT;
	int best = -1;
	size_t n_eligible = 0;
	for (size_t i = 0; i < n; i++) {
		const char *no = ineligible(&nodes[i], require_applied);
		if (no) {
			ha_buf_printf(&b, "%s%s: %s", b.len ? "; " : "", nodes[i].name, no);
			continue;
		}
		n_eligible++;
		if (best < 0 || better(&nodes[i], &nodes[best]))
			best = (int)i;
	}
	if (best < 0) {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "no eligible replica (%s)",
		         b.len ? ha_buf_cstr(&b) : "no replicas");
		ha_buf_free(&b);
		snprintf(why, why_size, "%s", tmp);
		return -1;
	}
	ha_buf_free(&b);
	snprintf(why, why_size,
	         "%s: most advanced of %zu eligible (gtid %s, priority %u, lag %lld s)",
	         nodes[best].name, n_eligible, nodes[best].gtid_current, nodes[best].priority,
	         (long long)nodes[best].lag_seconds);
	return best;
}

const char *ha_fo_unsafe(const struct ha_fo_node *nodes, size_t n, int best, char *why,
                         size_t why_size)
{
	struct ha_gtid_pos cand, other;
	if (ha_gtid_parse(nodes[best].gtid_current, &cand, NULL))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if ((int)i == best)
			continue;
		if (!nodes[i].fresh) {
			snprintf(
			    why, why_size,
			    "waiting for %s to report its position (it may hold transactions %s "
			    "lacks)",
			    nodes[i].name, nodes[best].name);
			return why;
		}
		if (nodes[i].db != DB_UP || ha_gtid_parse(nodes[i].gtid_current, &other, NULL))
			continue;
		if (!ha_gtid_contains(&cand, &other)) {
			snprintf(why, why_size, "%s has transactions %s lacks (%s vs %s); waiting",
			         nodes[i].name, nodes[best].name, nodes[i].gtid_current,
			         nodes[best].gtid_current);
			return why;
		}
	}
	return NULL;
}
