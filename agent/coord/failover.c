#include "failover.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../consensus/fsm.h"
#include "../common/buf.h"
#include "../common/gtid.h"

#define DB_UP       1
#define DB_DOWN     2
#define DB_HUNG     3
#define DB_UNUSABLE 4

static void put(char *why, size_t size, struct ha_buf *b)
{
	snprintf(why, size, "%s", ha_buf_failed(b) ? "out of memory" : ha_buf_cstr(b));
	ha_buf_free(b);
}

bool ha_fo_lost_stream(const struct ha_fo_node *r, const struct ha_fo_conf *c)
{
	return !r->io_running || r->rx_age_ms > c->stream_timeout_ms;
}

/* The replicas' view of a primary whose own agent cannot tell (its agent silent, or unable to use
 * its database): failed only when a majority of the replicas that replicate from it lost their
 * stream, each for confirm_ms (a replica whose IO thread is still connecting, just repointed
 * or restarted, is no witness of a death: found by the simulator, a primary whose agent was
 * frozen was failed over on such a sample while its server stayed writable). */
static enum ha_verdict ask_replicas(const struct ha_fo_node *replicas, size_t n_replicas,
                                    const struct ha_fo_conf *c, uint64_t suspect_for_ms,
                                    struct ha_buf *b)
{
	size_t witnesses = 0, lost = 0;
	for (size_t i = 0; i < n_replicas; i++) {
		const struct ha_fo_node *r = &replicas[i];
		/* a node in maintenance may have its replication stopped on purpose; a diverged
		 * one lost its stream to the primary's refusal, not to the primary's death (found
		 * by the simulator: with the primary's agent dead, that was taken for a vote, and
		 * the lease's end for a fence that nobody made) */
		if (!r->fresh || r->db != DB_UP || !r->replicating ||
		    (r->flags & (HA_MEMBER_MAINTENANCE | HA_MEMBER_DIVERGED)))
			continue;
		witnesses++;
		if (ha_fo_lost_stream(r, c) && r->lost_for_ms >= c->confirm_ms)
			lost++;
	}
	ha_buf_printf(b, "; %zu of %zu replicas lost their stream", lost, witnesses);
	if (witnesses == 0) {
		ha_buf_puts(b, " (no replica can vouch either way: no decision)");
		return HA_PRIMARY_SUSPECT;
	}
	if (lost * 2 > witnesses && suspect_for_ms >= c->confirm_ms)
		return HA_PRIMARY_FAILED;
	return HA_PRIMARY_SUSPECT;
}

const char *ha_suspicion_name(enum ha_suspicion k)
{
	switch (k) {
	case HA_SUSPECT_NONE:
		return "";
	case HA_SUSPECT_DB_DOWN:
		return "db-down";
	case HA_SUSPECT_DB_HUNG:
		return "db-hung";
	case HA_SUSPECT_DB_UNUSABLE:
		return "db-unusable";
	case HA_SUSPECT_DB_UNKNOWN:
		return "db-unknown";
	case HA_SUSPECT_AGENT_UNREACHABLE:
		return "agent-unreachable";
	case HA_SUSPECT_DB_RESTARTED:
		return "db-restarted";
	}
	return "?";
}

enum ha_verdict ha_fo_judge(const struct ha_fo_node *p, const struct ha_fo_node *replicas,
                            size_t n_replicas, const struct ha_fo_conf *c, uint64_t suspect_for_ms,
                            enum ha_suspicion *kind, char *why, size_t why_size)
{
	struct ha_buf b = HA_BUF_INIT;
	enum ha_verdict v;
	*kind = HA_SUSPECT_NONE;
	why[0] = '\0';
	int db = p->db;
#ifdef HA_SIM_MUTANT
	/* the simulator's deliberately broken core (tests/sim, "the simulator catches a broken
	 * core"): a login the agent lost counts as a dead server, the bug of docs/failover.md's
	 * first fault class */
	if (db == DB_UNUSABLE)
		db = DB_DOWN;
#endif
	if (p->fresh) {
		if (db == DB_UP && p->restarted) {
			/* crash recovery may have dropped what it acknowledged last: the replicas
			 * have it (found by the nemesis's model in the simulator, then measured) */
			*kind = HA_SUSPECT_DB_RESTARTED;
			ha_buf_printf(
			    &b,
			    "%s's mariadbd went down and came back at this epoch; its "
			    "agent holds it read-only (its crash recovery may have dropped "
			    "transactions it acknowledged, which replicas have)",
			    p->name);
			put(why, why_size, &b);
			return HA_PRIMARY_FAILED;
		}
		if (db == DB_UP)
			return HA_PRIMARY_OK;
		if (db == DB_DOWN) {
			*kind = HA_SUSPECT_DB_DOWN;
			ha_buf_printf(&b, "%s's agent reports mariadbd down (%s) for %llu ms",
			              p->name,
			              p->db_error && p->db_error[0] ? p->db_error : "no detail",
			              (unsigned long long)suspect_for_ms);
			put(why, why_size, &b);
			return suspect_for_ms >= c->confirm_ms ? HA_PRIMARY_FAILED
			                                       : HA_PRIMARY_SUSPECT;
		}
		if (db == DB_HUNG) {
			*kind = HA_SUSPECT_DB_HUNG;
			ha_buf_printf(
			    &b, "%s's mariadbd does not answer for %llu ms (hang timeout %u ms)",
			    p->name, (unsigned long long)suspect_for_ms, c->hang_timeout_ms);
			put(why, why_size, &b);
			return suspect_for_ms >= c->hang_timeout_ms ? HA_PRIMARY_FAILED
			                                            : HA_PRIMARY_SUSPECT;
		}
		if (db == DB_UNUSABLE) {
			/* The server answers, the agent cannot use it (login, limits, privileges):
			 * no evidence that its clients cannot write. Only the replicas can say it
			 * is gone. */
			*kind = HA_SUSPECT_DB_UNUSABLE;
			ha_buf_printf(&b, "%s's agent cannot use its database (%s)", p->name,
			              p->db_error && p->db_error[0] ? p->db_error : "no detail");
			v = ask_replicas(replicas, n_replicas, c, suspect_for_ms, &b);
			put(why, why_size, &b);
			return v;
		}
		*kind = HA_SUSPECT_DB_UNKNOWN;
		ha_buf_printf(&b, "%s's agent has not probed its database yet", p->name);
		put(why, why_size, &b);
		return HA_PRIMARY_SUSPECT;
	}
	/* The agent is silent: the host may be gone, or only the agent. Ask the replicas. */
	*kind = HA_SUSPECT_AGENT_UNREACHABLE;
	ha_buf_printf(&b, "%s's agent is unreachable", p->name);
	v = ask_replicas(replicas, n_replicas, c, suspect_for_ms, &b);
	put(why, why_size, &b);
	return v;
}

bool ha_fo_relay_applied(const struct ha_fo_node *n)
{
	struct ha_gtid_pos cur, io;
	if (ha_gtid_parse(n->gtid_current, &cur, NULL) || ha_gtid_parse(n->gtid_io_pos, &io, NULL))
		return false;
	return ha_gtid_contains(&cur, &io);
}

int ha_fo_received(const struct ha_fo_node *n, struct ha_gtid_pos *out)
{
	struct ha_gtid_pos cur, io;
	if (ha_gtid_parse(n->gtid_current, &cur, NULL))
		return HA_EINVAL;
	if (!n->replicating || n->relay_exhausted || n->gtid_io_pos == NULL || !n->gtid_io_pos[0] ||
	    ha_gtid_parse(n->gtid_io_pos, &io, NULL)) {
		*out = cur;
		return 0;
	}
	return ha_gtid_merge(&cur, &io, out);
}

/* Why n's report says nothing usable (its agent silent, its database not up), or NULL. */
static const char *not_up(const struct ha_fo_node *n)
{
	if (!n->fresh)
		return "agent unreachable";
	if (n->db != DB_UP)
		return n->db == DB_HUNG       ? "database hung"
		       : n->db == DB_UNUSABLE ? "database unusable by the agent"
		                              : "database down";
	return NULL;
}

static const char *ineligible(const struct ha_fo_node *n, bool require_applied);

const char *ha_fo_ineligible(const struct ha_fo_node *n)
{
	const char *no = ineligible(n, false);
	return no ? no : "eligible";
}

bool ha_fo_any_candidate(const struct ha_fo_node *reps, size_t n, char *why, size_t size)
{
	size_t off = 0;
	why[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *no = (reps[i].flags & HA_MEMBER_MAINTENANCE)  ? "in maintenance"
		                 : (reps[i].flags & HA_MEMBER_NO_PROMOTE) ? "no-promote"
		                 : (reps[i].flags & HA_MEMBER_DIVERGED)   ? "diverged"
		                 : (reps[i].flags & HA_MEMBER_JOINING)    ? "joining"
		                                                          : NULL;
		if (no == NULL)
			return true;
		int k =
		    snprintf(why + off, size - off, "%s%s: %s", off ? "; " : "", reps[i].name, no);
		if (k > 0 && (size_t)k < size - off)
			off += (size_t)k;
	}
	return false;
}

static const char *ineligible(const struct ha_fo_node *n, bool require_applied)
{
	const char *no = not_up(n);
	if (no)
		return no;
	if (n->flags & HA_MEMBER_MAINTENANCE)
		return "in maintenance";
	if (n->flags & HA_MEMBER_NO_PROMOTE)
		return "no-promote";
	if (n->flags & HA_MEMBER_DIVERGED)
		return "diverged";
	if (n->flags & HA_MEMBER_JOINING)
		return "joining (not a voter yet)";
	if (n->replicating && !n->sql_running && n->last_error && n->last_error[0])
		return "replication broken";
	if (require_applied && n->replicating && !ha_fo_relay_applied(n))
		return "relay log not applied yet";
	struct ha_gtid_pos g;
	if (ha_fo_received(n, &g))
		return "unreadable GTID position";
	return NULL;
}

/* a better than b? Ranked by what each has received (applied or in its relay log): the
 * candidate applies its relay log before it turns writable, so what it received is what it
 * will have, and an acknowledged semi-sync write may exist only in relay logs. */
static bool better(const struct ha_fo_node *a, const struct ha_fo_node *b)
{
	struct ha_gtid_pos ga, gb;
	ha_fo_received(a, &ga);
	ha_fo_received(b, &gb);
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
	struct ha_gtid_pos rx;
	char rxs[HA_GTID_TEXT_MAX], brief[HA_GTID_BRIEF_MAX];
	ha_fo_received(&nodes[best], &rx);
	ha_gtid_format(&rx, rxs, sizeof(rxs));
	struct ha_buf w = HA_BUF_INIT;
	ha_buf_printf(&w,
	              "%s: most advanced of %zu eligible (received %s, priority %u, lag %lld s)",
	              nodes[best].name, n_eligible, rxs[0] ? ha_gtid_brief(rxs, brief) : "(empty)",
	              nodes[best].priority, (long long)nodes[best].lag_seconds);
	put(why, why_size, &w);
	return best;
}

const char *ha_fo_unsafe(const struct ha_fo_node *nodes, size_t n, int best, char *why,
                         size_t why_size, bool *known)
{
	struct ha_gtid_pos cand, other;
	*known = false;
	if (ha_fo_received(&nodes[best], &cand))
		return NULL;
	const char *unknown = NULL;
	for (size_t i = 0; i < n; i++) {
		if ((int)i == best)
			continue;
		/* its position cannot be read now, but its relay log may hold acknowledged writes:
		 * unknown (a database that is gone holds nothing anyone can get) */
		if (!nodes[i].fresh || nodes[i].db == DB_HUNG || nodes[i].db == DB_UNUSABLE) {
			if (unknown == NULL) {
				snprintf(why, why_size,
				         "waiting for %s to report its position (%s; it may hold "
				         "transactions %s lacks)",
				         nodes[i].name,
				         !nodes[i].fresh ? "agent unreachable"
				         : nodes[i].db == DB_HUNG
				             ? "database hung"
				             : "database unusable by its agent",
				         nodes[best].name);
				unknown = why;
			}
			continue;
		}
		if (nodes[i].db != DB_UP || ha_fo_received(&nodes[i], &other))
			continue;
		if (!ha_gtid_contains(&cand, &other)) {
			snprintf(why, why_size,
			         "%s has received transactions %s lacks (%s); waiting: make it "
			         "promotable, or give them up with haadm failover --accept-loss",
			         nodes[i].name, nodes[best].name, ha_fo_ineligible(&nodes[i]));
			*known = true;
			return why;
		}
	}
	return unknown;
}

/* ---- planned switchover ---- */

/* Transactions n has that primary p lacks: a domain p does not have (unless n's last
 * transaction there is p's own: p wrote it after its report), or a sequence number beyond p's
 * under n's own server id. (A replica merely ahead of p's last report has p's server id there:
 * reports are not taken at the same instant; a new domain p just wrote to is no exception.) */
static bool errant(const struct ha_fo_node *n, const struct ha_fo_node *p)
{
	struct ha_gtid_pos a, b;
	if (ha_gtid_parse(n->gtid_current, &a, NULL) || ha_gtid_parse(p->gtid_current, &b, NULL))
		return false;
	for (size_t i = 0; i < a.n; i++) {
		const struct ha_gtid *x = &a.g[i], *y = NULL;
		for (size_t j = 0; j < b.n; j++)
			if (b.g[j].domain == x->domain)
				y = &b.g[j];
		if ((y == NULL && (p->server_id == 0 || x->server != p->server_id)) ||
		    (y && x->seq > y->seq && x->server == n->server_id))
			return true;
	}
	return false;
}

const char *ha_fo_replica_unfit(const struct ha_fo_node *n, unsigned max_lag_ms, char *buf,
                                size_t size)
{
	const char *no = not_up(n);
	if (no)
		return no;
	if (n->flags & HA_MEMBER_MAINTENANCE)
		return "in maintenance";
	if (n->flags & HA_MEMBER_DIVERGED)
		return "diverged";
	if (!n->replicating)
		return "not replicating from the primary";
	if (!n->io_running || !n->sql_running)
		return "replication threads not both running";
	if (n->lag_seconds < 0)
		return "lag unknown";
	if ((uint64_t)n->lag_seconds * 1000 > max_lag_ms) {
		snprintf(buf, size, "lags %lld s (limit %u ms)", (long long)n->lag_seconds,
		         max_lag_ms);
		return buf;
	}
	return NULL;
}

/* Why replica n cannot be a switchover target from p, or NULL: promotable, nothing the
 * primary lacks, a healthy replica. */
static const char *so_unfit(const struct ha_fo_node *n, const struct ha_fo_node *p,
                            unsigned max_lag_ms, char *buf, size_t size)
{
	const char *no = ineligible(n, false);
	if (no)
		return no;
	if (errant(n, p)) {
		snprintf(buf, size, "has transactions the primary lacks (%s vs %s)",
		         n->gtid_current, p->gtid_current);
		return buf;
	}
	return ha_fo_replica_unfit(n, max_lag_ms, buf, size);
}

/* What the operator can do about a reason given by so_unfit. */
static const char *so_advice(const char *no)
{
	if (!strcmp(no, "agent unreachable"))
		return "start its haagentd";
	if (!strcmp(no, "database down") || !strcmp(no, "database hung"))
		return "bring its mariadbd back";
	if (!strcmp(no, "in maintenance"))
		return "end it with 'haadm node maintenance NODE off'";
	if (!strcmp(no, "no-promote"))
		return "it has no_promote in its [node] section";
	if (!strcmp(no, "diverged") || !strncmp(no, "has transactions", 16))
		return "it holds transactions the primary lacks; re-clone it";
	if (!strncmp(no, "lags", 4) || !strcmp(no, "lag unknown"))
		return "wait until it has caught up, or raise [switchover] max_lag_ms";
	return "check its replication (SHOW SLAVE STATUS)";
}

static void so_add(struct ha_so_check *c, size_t *n, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void so_add(struct ha_so_check *c, size_t *n, bool ok, const char *fmt, ...)
{
	if (*n >= HA_SO_MAX_CHECKS)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c[*n].text, sizeof(c[*n].text), fmt, ap);
	va_end(ap);
	c[(*n)++].ok = ok;
}

int ha_so_plan(const struct ha_fo_node *p, const struct ha_fo_node *replicas, size_t n,
               const char *target, unsigned max_lag_ms, struct ha_so_check *checks,
               size_t *n_checks, char *why, size_t why_size)
{
	*n_checks = 0;
	bool up = p->fresh && p->db == DB_UP, writable = up && !p->read_only && p->lease_held;
	so_add(checks, n_checks, up, "%s (primary): agent reporting, database up", p->name);
	so_add(checks, n_checks, writable, "%s (primary): writable, holds its write lease",
	       p->name);
	if (!writable) {
		snprintf(
		    why, why_size,
		    "the primary %s is not healthy (%s): a switchover needs a working primary; "
		    "a failed one is replaced by automatic failover (see haadm status)",
		    p->name,
		    !p->fresh        ? "its agent is not reporting"
		    : p->db != DB_UP ? "its database is not up"
		    : p->read_only   ? "it is read-only"
		                     : "it does not hold its write lease");
		return -1;
	}
	char buf[200];
	if (target && target[0]) {
		if (!strcmp(target, p->name)) {
			snprintf(why, why_size, "%s is already the primary", target);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			if (strcmp(replicas[i].name, target) != 0)
				continue;
			const char *no = so_unfit(&replicas[i], p, max_lag_ms, buf, sizeof(buf));
			so_add(checks, n_checks, no == NULL, "%s (target): %s", target,
			       no ? no : "healthy, replicating, lag within the limit");
			if (no) {
				snprintf(why, why_size, "cannot switch over to %s: %s; %s", target,
				         no, so_advice(no));
				return -1;
			}
			return (int)i;
		}
		struct ha_buf b = HA_BUF_INIT;
		for (size_t i = 0; i < n; i++)
			ha_buf_printf(&b, "%s%s", i ? ", " : "", replicas[i].name);
		snprintf(why, why_size, "no node named %s (replicas: %s)", target,
		         ha_buf_failed(&b) ? "?" : ha_buf_cstr(&b));
		ha_buf_free(&b);
		return -1;
	}
	int best = -1;
	struct ha_buf b = HA_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const char *no = so_unfit(&replicas[i], p, max_lag_ms, buf, sizeof(buf));
		so_add(checks, n_checks, no == NULL, "%s: %s", replicas[i].name,
		       no ? no : "healthy, replicating, lag within the limit");
		if (no) {
			ha_buf_printf(&b, "%s%s: %s (%s)", b.len ? "; " : "", replicas[i].name, no,
			              so_advice(no));
			continue;
		}
		if (best < 0 || better(&replicas[i], &replicas[best]))
			best = (int)i;
	}
	if (best < 0)
		snprintf(why, why_size, "no replica can take over: %s",
		         b.len ? (ha_buf_failed(&b) ? "?" : ha_buf_cstr(&b)) : "there are none");
	ha_buf_free(&b);
	return best;
}
