#include "rejoin.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define STATE_ENTRIES  256 /* a binlog state's entries: domains x servers */
#define BACKOFF_MIN_MS 30000
#define BACKOFF_MAX_MS (15 * 60 * 1000)

static void lapse(struct ha_rejoin_watch *w, uint64_t off_times, const char *when)
{
	if (w->lapsed || off_times <= w->off_times)
		return;
	w->lapsed = true;
	snprintf(w->lapse, sizeof(w->lapse),
	         "it fell back to asynchronous replication %llu time%s%s (a replica's "
	         "acknowledgement timed out: commits returned without one)",
	         (unsigned long long)(off_times - w->off_times),
	         off_times - w->off_times == 1 ? "" : "s", when);
}

void ha_rejoin_watch(struct ha_rejoin_watch *w, const struct ha_probe_sample *s, uint64_t epoch,
                     bool primary)
{
	if (s->db != HA_DB_UP || epoch == 0)
		return;
	if (primary && w->epoch != epoch) {
		/* a new epoch as the primary: watched from the start only when its server is still
		 * read-only (it turns writable after this, with semi-sync set first) */
		memset(w, 0, sizeof(*w));
		w->epoch = epoch;
		w->from_start = s->read_only;
		w->off_times = s->semisync_off_times;
	}
	if (w->epoch == 0)
		return;
	/* a fallback while semi-sync is still enabled, also after the epoch: a server frozen past
	 * its semi-sync timeout acknowledges the commit it held as it wakes, before its agent
	 * fences it. Disabling semi-sync (the fence) counts as one too: not while disabled. */
	if (s->semisync_master_enabled)
		lapse(w, s->semisync_off_times, primary ? "" : " after its epoch");
	w->off_times = s->semisync_off_times;
	if (primary && !s->read_only) {
		w->seen_writable = true;
		if (!w->lapsed && !s->semisync_master_active) {
			w->lapsed = true;
			snprintf(w->lapse, sizeof(w->lapse),
			         "semi-sync was not active (Rpl_semi_sync_master_status OFF)");
		}
	}
}

void ha_rejoin_fenced(struct ha_rejoin_watch *w, bool read, bool enabled, uint64_t off_times)
{
	if (w->epoch == 0 || w->lapsed)
		return;
	if (!read) {
		w->lapsed = true;
		snprintf(w->lapse, sizeof(w->lapse),
		         "its fence could not read the semi-sync state");
		return;
	}
	if (enabled)
		lapse(w, off_times, " before its fence");
	w->off_times = off_times;
}

uint64_t ha_rejoin_backoff_ms(unsigned failures)
{
	uint64_t ms = BACKOFF_MIN_MS;
	for (unsigned i = 1; i < failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

struct state {
	size_t n;
	struct ha_gtid g[STATE_ENTRIES];
};

/* A binlog state: "d-s-n" entries, commas between, at most one per domain and server. */
static int parse_state(const char *text, struct state *st)
{
	st->n = 0;
	for (const char *p = text ? text : ""; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char one[80];
		struct ha_gtid_pos e;
		if (len >= sizeof(one))
			return -1;
		memcpy(one, p, len);
		one[len] = '\0';
		if (ha_gtid_parse(one, &e, NULL) != 0 || e.n > 1)
			return -1;
		p += len + (comma ? 1 : 0);
		if (e.n == 0)
			continue;
		for (size_t i = 0; i < st->n; i++)
			if (st->g[i].domain == e.g[0].domain && st->g[i].server == e.g[0].server)
				return -1;
		if (st->n == STATE_ENTRIES)
			return -1;
		st->g[st->n++] = e.g[0];
	}
	return 0;
}

/* The sequence number of (domain, server) in st, 0 when absent. */
static uint64_t seq_of(const struct state *st, uint32_t domain, uint32_t server, bool *found)
{
	*found = false;
	for (size_t i = 0; i < st->n; i++)
		if (st->g[i].domain == domain && st->g[i].server == server) {
			*found = true;
			return st->g[i].seq;
		}
	return 0;
}

static void add(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	if (len + 1 >= size)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static void unsafe(const struct ha_rejoin_in *in, struct ha_rejoin_verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void unsafe(const struct ha_rejoin_in *in, struct ha_rejoin_verdict *v, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	v->safe = false;
	if (v->count)
		snprintf(v->why, sizeof(v->why), "diverged: %llu errant transaction%s (%s) and %s",
		         (unsigned long long)v->count, v->count == 1 ? "" : "s", v->ranges, why);
	else
		snprintf(v->why, sizeof(v->why), "diverged: %s", why);
	add(v->why, sizeof(v->why),
	    "; HINT: inspect them (mariadb-binlog --base64-output=decode-rows -vv%s%s%s%s of "
	    "%s's binlog), keep what must be kept, then 'haadm node reclone %s' on its host",
	    v->start[0] ? " --start-position=" : "", v->start,
	    v->stop[0] ? " --stop-position=" : "", v->stop, in->node, in->node);
}

/* One domain's errant transactions in local that target lacks; 0, or -1 when unsafe (v->why
 * set). Appends to v's start, stop, ranges and count. */
static int judge_domain(const struct ha_rejoin_in *in, const struct state *l, const struct state *t,
                        uint32_t domain, struct ha_rejoin_verdict *v)
{
	bool found, tfound;
	uint64_t mine = seq_of(l, domain, in->self_server, &found);
	uint64_t base = seq_of(t, domain, in->self_server, &tfound);
	if (!found || mine <= base)
		return 0;
	/* every other server's transaction this node has in the domain: the primary has it and it
	 * precedes the tail */
	for (size_t i = 0; i < l->n; i++) {
		const struct ha_gtid *g = &l->g[i];
		if (g->domain != domain || g->server == in->self_server)
			continue;
		if (g->seq > base && g->seq < mine) {
			add(v->ranges, sizeof(v->ranges), "%s%u-%u-%llu..%llu",
			    v->ranges[0] ? "," : "", domain, in->self_server,
			    (unsigned long long)base + 1, (unsigned long long)mine);
			v->count += mine - base;
			unsafe(in, v,
			       "they are not one tail: %u-%u-%llu, from server %u, lies between "
			       "them",
			       g->domain, g->server, (unsigned long long)g->seq, g->server);
			return -1;
		}
	}
	if (!tfound) {
		unsafe(in, v,
		       "the primary has no transaction of this server (server id %u) in domain %u: "
		       "they are not a tail of its history",
		       in->self_server, domain);
		return -1;
	}
	add(v->ranges, sizeof(v->ranges), "%s%u-%u-%llu%s", v->ranges[0] ? "," : "", domain,
	    in->self_server, (unsigned long long)base + 1, mine > base + 1 ? ".." : "");
	if (mine > base + 1)
		add(v->ranges, sizeof(v->ranges), "%llu", (unsigned long long)mine);
	add(v->start, sizeof(v->start), "%s%u-%u-%llu", v->start[0] ? "," : "", domain,
	    in->self_server, (unsigned long long)base);
	add(v->stop, sizeof(v->stop), "%s%u-%u-%llu", v->stop[0] ? "," : "", domain,
	    in->self_server, (unsigned long long)mine);
	v->count += mine - base;
	return 0;
}

/* Whether the primary holds another server's transaction g that this node has: its binlog state
 * says so; or, since a re-cloned primary's binlog state forgets what came before its reset, g
 * precedes by sequence number (strict mode orders a domain) the last transaction of this
 * server that the primary has, when this node has a tail in that domain (before the fork: both
 * have it), or the primary's last transaction in that domain otherwise (the model of
 * common/gtid.h, where the same sequence number from another server is divergence). */
static bool held(const struct ha_rejoin_in *in, const struct state *l, const struct state *t,
                 const struct ha_gtid *g)
{
	bool found;
	uint64_t have = seq_of(t, g->domain, g->server, &found);
	if (found && have >= g->seq)
		return true;
	bool mine_found, base_found;
	uint64_t mine = seq_of(l, g->domain, in->self_server, &mine_found);
	uint64_t base = seq_of(t, g->domain, in->self_server, &base_found);
	if (mine_found && base_found && mine > base)
		return g->seq < base; /* a tail here: before the fork, or not held */
	uint64_t top = 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->g[i].domain == g->domain && t->g[i].seq > top)
			top = t->g[i].seq;
	return g->seq < top;
}

void ha_rejoin_judge(const struct ha_rejoin_in *in, struct ha_rejoin_verdict *v)
{
	memset(v, 0, sizeof(*v));
	struct state l, t;
	if (!in->local_state || !in->local_state[0] || parse_state(in->local_state, &l) ||
	    !in->target_state || parse_state(in->target_state, &t)) {
		unsafe(in, v,
		       "the binary log states could not be compared (local '%.100s', "
		       "primary's '%.100s')",
		       in->local_state ? in->local_state : "",
		       in->target_state ? in->target_state : "");
		return;
	}
	/* another server's transaction the primary lacks: not this node's in-flight writes */
	for (size_t i = 0; i < l.n; i++) {
		const struct ha_gtid *g = &l.g[i];
		if (g->server != in->self_server && !held(in, &l, &t, g)) {
			unsafe(
			    in, v,
			    "%u-%u-%llu, which the primary lacks, comes from server %u, not from "
			    "this node (server id %u): not its own in-flight writes",
			    g->domain, g->server, (unsigned long long)g->seq, g->server,
			    in->self_server);
			return;
		}
	}
	for (size_t i = 0; i < l.n; i++) {
		if (l.g[i].server != in->self_server)
			continue;
		if (judge_domain(in, &l, &t, l.g[i].domain, v) != 0)
			return;
	}
	if (v->count == 0) {
		unsafe(in, v,
		       "its binary log state holds nothing the primary's lacks: the same GTIDs "
		       "with different contents, which only a re-clone can tell apart");
		return;
	}
	const struct ha_rejoin_watch *w = in->watch;
	if (v->count > in->max_errant)
		unsafe(
		    in, v,
		    "that is more than rejoin_max_errant (%u): more than an in-flight tail, some "
		    "may have been acknowledged to clients",
		    in->max_errant);
	else if (w == NULL || w->epoch == 0 || !w->seen_writable)
		unsafe(in, v,
		       "this agent never watched its server as the writable primary (it restarted "
		       "since?): it cannot tell whether semi-sync covered them; they may have "
		       "been acknowledged to clients");
	else if (!w->from_start)
		unsafe(in, v,
		       "this agent started while its server was already the primary (epoch %llu): "
		       "it cannot tell whether semi-sync covered them all; they may have been "
		       "acknowledged to clients",
		       (unsigned long long)w->epoch);
	else if (w->lapsed)
		unsafe(in, v,
		       "semi-sync was off when this node was primary (epoch %llu: %s): they may "
		       "have been acknowledged to clients",
		       (unsigned long long)w->epoch, w->lapse);
	else if (in->manual)
		unsafe(in, v,
		       "[failover] rejoin = manual (semi-sync was active: they were never "
		       "acknowledged)");
	else
		v->safe = true;
}
