#include "policy.h"

#include <stdio.h>
#include <string.h>

#include "../common/buf.h"

const char *ha_bk_unfit(const struct ha_fo_node *n, unsigned max_lag_ms)
{
	if (!n->fresh)
		return "agent unreachable";
	if (n->db != 1)
		return "database not up";
	if (n->flags & HA_MEMBER_MAINTENANCE)
		return "in maintenance";
	if (n->flags & HA_MEMBER_DIVERGED)
		return "diverged";
	if (!n->replicating || !n->io_running || !n->sql_running)
		return "not replicating from the primary";
	if (n->lag_seconds < 0)
		return "lag unknown";
	if ((uint64_t)n->lag_seconds * 1000 > max_lag_ms)
		return "lagging beyond [backup] max_lag_ms";
	return NULL;
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

int ha_bk_chain(const struct ha_fsm_state *st, uint64_t id, uint64_t *chain, int max, char *why,
                size_t why_size)
{
	uint64_t rev[HA_FSM_MAX_BACKUPS];
	int n = 0;
	for (uint64_t cur = id; n < HA_FSM_MAX_BACKUPS;) {
		const struct ha_backup_rec *r = ha_fsm_backup(st, cur);
		if (r == NULL || r->state != HA_BK_DONE) {
			snprintf(why, why_size, "backup %llu %s", (unsigned long long)cur,
			         r == NULL ? "is not in the catalog (broken chain)"
			         : r->state == HA_BK_DELETED ? "was deleted (broken chain)"
			                                     : "did not finish");
			return -1;
		}
		rev[n++] = cur;
		if (!strcmp(r->type, "full"))
			break;
		cur = r->parent;
	}
	if (n > max || n == HA_FSM_MAX_BACKUPS) {
		snprintf(why, why_size, "the chain of backup %llu is too long",
		         (unsigned long long)id);
		return -1;
	}
	for (int i = 0; i < n; i++)
		chain[i] = rev[n - 1 - i];
	return n;
}
