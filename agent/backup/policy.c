#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/buf.h"

const char *ha_bk_unfit(const struct ha_fo_node *n, unsigned max_lag_ms)
{
	char buf[96];
	const char *no = ha_fo_replica_unfit(n, max_lag_ms, buf, sizeof(buf));
	return no == buf ? "lagging beyond [backup] max_lag_ms" : no;
}

static double score(const struct ha_fo_node *n)
{
	return (double)n->lag_seconds * 10 + n->threads_running + n->loadavg1 * 10;
}

int ha_bk_choose(const struct ha_fo_node *nodes, size_t n, unsigned max_lag_ms, char *why,
                 size_t why_size)
{
	struct ha_buf b = HA_BUF_INIT;
	int best = -1;
	for (size_t i = 0; i < n; i++) {
		const char *no = ha_bk_unfit(&nodes[i], max_lag_ms);
		if (no) {
			ha_buf_printf(&b, "%s%s: %s", b.len ? "; " : "", nodes[i].name, no);
			continue;
		}
		ha_buf_printf(&b, "%s%s: load score %.1f", b.len ? "; " : "", nodes[i].name,
		              score(&nodes[i]));
		if (best < 0 || score(&nodes[i]) < score(&nodes[best]) ||
		    (score(&nodes[i]) == score(&nodes[best]) && nodes[i].id < nodes[best].id))
			best = (int)i;
	}
	if (best >= 0)
		snprintf(why, why_size, "%s: least-loaded healthy replica (%s)", nodes[best].name,
		         ha_buf_failed(&b) ? "?" : ha_buf_cstr(&b));
	else
		snprintf(why, why_size, "no healthy replica to back up (%s)",
		         b.len ? ha_buf_cstr(&b) : "there are none");
	ha_buf_free(&b);
	return best;
}

long long ha_bk_parent(const struct ha_fsm_state *st, const char *type)
{
	if (!strcmp(type, "full"))
		return 0;
	for (unsigned i = st->n_backups; i-- > 0;) {
		const struct ha_backup_rec *r = &st->backups[i];
		if (r->state != HA_BK_DONE)
			continue;
		if (!strcmp(type, "incremental") || !strcmp(r->type, "full"))
			return (long long)r->id;
	}
	return -1;
}

/* Two links of one chain come from the same datadir: the same node, and, where both were
 * recorded, the same server_id and datadir label. */
static bool same_server(const struct ha_bk_link *a, const struct ha_bk_link *b)
{
	if (a->node != b->node)
		return false;
	if (!a->instance[0] && !b->instance[0])
		return true; /* older records: the node is all that is known */
	return a->server_id == b->server_id && !strcmp(a->instance, b->instance);
}

int ha_bk_chain_of(ha_bk_lookup_fn look, const void *catalog, uint64_t id, uint64_t *chain, int max,
                   char *why, size_t why_size)
{
	uint64_t rev[HA_FSM_MAX_BACKUPS];
	int n = 0;
	struct ha_bk_link child = {0};
	for (uint64_t cur = id;;) {
		struct ha_bk_link l = {.instance = ""};
		look(catalog, cur, &l);
		if (l.instance == NULL)
			l.instance = "";
		if (l.state != HA_BK_DONE) {
			snprintf(why, why_size, "backup %llu %s", (unsigned long long)cur,
			         l.state == 0               ? "is not in the catalog (broken chain)"
			         : l.state == HA_BK_DELETED ? "was deleted (broken chain)"
			                                    : "did not finish (broken chain)");
			return -1;
		}
		if (n == max || n == HA_FSM_MAX_BACKUPS) {
			snprintf(
			    why, why_size,
			    "the chain of backup %llu is longer than %d backups (take a full one)",
			    (unsigned long long)id, n);
			return -1;
		}
		rev[n++] = cur;
		if (n > 1 && !same_server(&l, &child)) {
			snprintf(
			    why, why_size,
			    "backup %llu (node %u, server_id %u, datadir %.12s) and backup %llu "
			    "(node %u, server_id %u, datadir %.12s) come from different servers or "
			    "datadirs: the chain cannot be restored; take a full backup",
			    (unsigned long long)rev[n - 2], child.node, child.server_id,
			    child.instance[0] ? child.instance : "unknown", (unsigned long long)cur,
			    l.node, l.server_id, l.instance[0] ? l.instance : "unknown");
			return -1;
		}
		child = l;
		if (l.full)
			break;
		cur = l.parent;
	}
	for (int i = 0; i < n; i++)
		chain[i] = rev[n - 1 - i];
	return n;
}

static void fsm_lookup(const void *catalog, uint64_t id, struct ha_bk_link *out)
{
	const struct ha_backup_rec *r = ha_fsm_backup(catalog, id);
	out->state = r ? r->state : 0;
	out->full = r && !strcmp(r->type, "full");
	out->parent = r ? r->parent : 0;
	out->node = r ? r->node : 0;
	out->server_id = r ? r->server_id : 0;
	out->instance = r ? r->instance : "";
}

int ha_bk_chain(const struct ha_fsm_state *st, uint64_t id, uint64_t *chain, int max, char *why,
                size_t why_size)
{
	return ha_bk_chain_of(fsm_lookup, st, id, chain, max, why, why_size);
}

/* ---- retention ---- */

int ha_bk_expired(const struct ha_fsm_state *st, unsigned keep_full, unsigned keep_days,
                  uint64_t now_ms, uint64_t *out, int max)
{
	if (keep_full == 0 && keep_days == 0)
		return 0;
	/* The full backup each record's chain starts from, in one pass: a parent always comes
	 * before its children (ids ascend). 0: none (its full backup is no longer recorded). */
	uint64_t root[HA_FSM_MAX_BACKUPS];
	bool keep_root[HA_FSM_MAX_BACKUPS];
	for (unsigned i = 0; i < st->n_backups; i++) {
		const struct ha_backup_rec *r = &st->backups[i];
		const struct ha_backup_rec *p = r->parent ? ha_fsm_backup(st, r->parent) : NULL;
		root[i] = !strcmp(r->type, "full") ? r->id : p && p < r ? root[p - st->backups] : 0;
		keep_root[i] = false;
	}
	unsigned seen = 0;
	for (unsigned i = st->n_backups; i-- > 0;) {
		const struct ha_backup_rec *r = &st->backups[i];
		if (r->state != HA_BK_DONE || strcmp(r->type, "full") != 0)
			continue;
		seen++;
		bool recent =
		    keep_days && r->finished_ms + (uint64_t)keep_days * 86400000ULL >= now_ms;
		keep_root[i] = seen == 1 || (keep_full && seen <= keep_full) || recent;
	}
	/* a chain being read (restore, drill, reclone: ha_fsm_cmd_backup_hold) is kept whole
	 * while any of its backups is held */
	for (unsigned i = 0; i < st->n_backups; i++) {
		const struct ha_backup_rec *r = &st->backups[i];
		const struct ha_backup_rec *full = root[i] ? ha_fsm_backup(st, root[i]) : NULL;
		if (full && r->held_until_ms > now_ms)
			keep_root[full - st->backups] = true;
	}
	int n = 0;
	for (unsigned i = 0; i < st->n_backups && n < max; i++) {
		const struct ha_backup_rec *r = &st->backups[i];
		if (r->state != HA_BK_DONE || root[i] == 0)
			continue; /* a backup whose full backup is gone is useless, but only deleted
			             along with it */
		const struct ha_backup_rec *full = ha_fsm_backup(st, root[i]);
		if (!keep_root[full - st->backups])
			out[n++] = r->id;
	}
	return n;
}

/* ---- cron ---- */

static int field(const char *s, int lo, int hi, uint64_t *bits, bool *any)
{
	*bits = 0;
	*any = !strcmp(s, "*");
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int a = lo, b = hi, step = 1;
		char *slash = strchr(tok, '/');
		if (slash) {
			*slash = '\0';
			char *end;
			long v = strtol(slash + 1, &end, 10);
			if (*end || v < 1 || v > hi)
				return -1;
			step = (int)v;
		}
		if (strcmp(tok, "*") != 0) {
			char *end;
			long v = strtol(tok, &end, 10);
			if (end == tok)
				return -1;
			a = b = (int)v;
			if (*end == '-') {
				char *e2;
				long w = strtol(end + 1, &e2, 10);
				if (e2 == end + 1 || *e2)
					return -1;
				b = (int)w;
			} else if (*end) {
				return -1;
			} else if (slash) {
				b = hi;
			}
		}
		if (a < lo || b > hi || a > b)
			return -1;
		for (int x = a; x <= b; x += step)
			*bits |= 1ULL << x;
	}
	return *bits ? 0 : -1;
}

int ha_cron_parse(const char *s, struct ha_cron *c, char *why, size_t why_size)
{
	memset(c, 0, sizeof(*c));
	char f[5][128];
	int n = s ? sscanf(s, "%127s %127s %127s %127s %127s", f[0], f[1], f[2], f[3], f[4]) : 0;
	char extra[8];
	if (n != 5 || sscanf(s, "%*s %*s %*s %*s %*s %7s", extra) == 1) {
		snprintf(why, why_size, "'%s': expected 5 fields: minute hour day month weekday",
		         s ? s : "");
		return -1;
	}
	static const char *names[] = {"minute", "hour", "day of month", "month", "day of week"};
	static const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
	uint64_t bits[5];
	bool any[5];
	for (int i = 0; i < 5; i++)
		if (field(f[i], lo[i], hi[i], &bits[i], &any[i]) != 0) {
			snprintf(why, why_size, "'%s': bad %s field '%s'", s, names[i], f[i]);
			return -1;
		}
	c->minute = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->month = (uint16_t)bits[3];
	c->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday too */
	c->dom_any = any[2];
	c->dow_any = any[4];
	return 0;
}

bool ha_cron_due(const struct ha_cron *c, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	if (!(c->minute >> tm.tm_min & 1) || !(c->hour >> tm.tm_hour & 1) ||
	    !(c->month >> (tm.tm_mon + 1) & 1))
		return false;
	bool dom = c->dom >> tm.tm_mday & 1, dow = c->dow >> tm.tm_wday & 1;
	/* as cron: when both are restricted, either matches */
	if (!c->dom_any && !c->dow_any)
		return dom || dow;
	return dom && dow;
}

/* Rank of a type: a backup covers the ones of its rank or higher. */
static int rank(const char *type)
{
	return !strcmp(type, "full") ? 0 : !strcmp(type, "differential") ? 1 : 2;
}

const char *ha_bk_due(const struct ha_fsm_state *st, const char *const sched[3], uint64_t now_ms,
                      unsigned catch_up_min, uint64_t *slot_ms)
{
	static const char *const types[3] = {"full", "differential", "incremental"};
	int64_t now_min = (int64_t)(now_ms / 60000);
	for (int i = 0; i < 3; i++) {
		struct ha_cron c;
		char why[128];
		if (sched[i] == NULL || !sched[i][0] ||
		    ha_cron_parse(sched[i], &c, why, sizeof(why)) != 0)
			continue;
		int64_t slot = -1;
		for (int64_t k = 0; k <= (int64_t)catch_up_min && slot < 0; k++)
			if (ha_cron_due(&c, (now_min - k) * 60))
				slot = now_min - k;
		if (slot < 0)
			continue;
		uint64_t slot_start = (uint64_t)slot * 60000;
		bool covered = false;
		for (unsigned k = 0; k < st->n_backups && !covered; k++) {
			const struct ha_backup_rec *r = &st->backups[k];
			covered = r->requested_ms >= slot_start && rank(r->type) <= i;
		}
		if (!covered) {
			*slot_ms = slot_start;
			return types[i];
		}
	}
	return NULL;
}
