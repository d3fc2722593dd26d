/* See raftconf.h. */
#include "raftconf.h"

#include <string.h>

/* The head of libraft 0.22's in-memory log (its src/log.h), read only; the fields after these
 * (reference counts, snapshot) are not read. */
struct log_head {
	struct raft_entry *entries; /* circular buffer */
	size_t size;                /* its slots */
	size_t front, back;         /* the used slots, [front, back) */
	raft_index offset;          /* the first entry's index is offset + 1 */
};

static size_t log_count(const struct log_head *l)
{
	return l->front <= l->back ? l->back - l->front : l->size - l->front + l->back;
}

/* raft's log, when this is the libraft whose layout is known (built against 0.22; the
 * package's shared library follows its headers) and the log agrees with raft's own last
 * index; else NULL */
static const struct log_head *log_of(struct raft *r)
{
#if RAFT_VERSION_MAJOR != 0 || RAFT_VERSION_MINOR != 22
	(void)r;
	return NULL; /* another libraft: its log's layout is not known here */
#else
	const struct log_head *l = (const struct log_head *)r->legacy.log;
	if (l == NULL || l->size == 0 || l->entries == NULL || l->front >= l->size ||
	    l->back > l->size)
		return NULL;
	if (l->offset + log_count(l) != raft_last_index(r))
		return NULL;
	return l;
#endif
}

static const struct raft_entry *log_entry(const struct log_head *l, raft_index index)
{
	size_t n = log_count(l);
	if (n == 0 || index <= l->offset || index > l->offset + n)
		return NULL;
	return &l->entries[(l->front + (size_t)(index - 1 - l->offset)) % l->size];
}

static bool same_servers(const struct raft_configuration *a, const struct raft_configuration *b)
{
	if (a->n != b->n)
		return false;
	for (unsigned i = 0; i < a->n; i++) {
		const struct raft_server *x = &a->servers[i];
		const struct raft_server *y = &b->servers[i];
		if (x->id != y->id || x->role != y->role || strcmp(x->address, y->address) != 0)
			return false;
	}
	return true;
}

static bool copy_servers(const struct raft_configuration *from, struct raft_configuration *to)
{
	raft_configuration_init(to);
	for (unsigned i = 0; i < from->n; i++) {
		const struct raft_server *s = &from->servers[i];
		if (raft_configuration_add(to, s->id, s->address, s->role) != 0) {
			raft_configuration_close(to);
			return false;
		}
	}
	return true;
}

/* the first voter of c other than self (a leader with a ghost hands over to it), or 0 */
static raft_id other_voter(const struct raft_configuration *c, raft_id self)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].role == RAFT_VOTER && c->servers[i].id != self)
			return c->servers[i].id;
	return 0;
}

enum ha_raftconf_result ha_raftconf_repair(struct raft *r, bool change_in_flight,
                                           struct ha_raftconf_fix *fix)
{
	memset(fix, 0, sizeof(*fix));
	raft_index record = r->configuration_uncommitted_index;
	fix->record = record;
	if (change_in_flight)
		return HA_RAFTCONF_NONE;
	const struct log_head *l = log_of(r);
	if (l == NULL)
		return record != 0 ? HA_RAFTCONF_UNCHECKED : HA_RAFTCONF_NONE;
	const struct raft_entry *e = NULL;
	raft_index t = 0;
	for (raft_index i = raft_last_index(r); i > l->offset; i--) {
		const struct raft_entry *x = log_entry(l, i);
		if (x && x->type == RAFT_CHANGE) {
			e = x;
			t = i;
			break;
		}
	}
	fix->index = t;
	if (e == NULL) /* the last configuration entry is before the log kept in memory */
		return record != 0 ? HA_RAFTCONF_UNCHECKED : HA_RAFTCONF_NONE;
	bool applied = t <= raft_last_applied(r);
	/* what libraft would hold: the record at t while t is not applied, none after; the
	 * committed configuration at t once it is, and then the current one the same (a ghost
	 * left by a truncation libraft did not roll back differs from it) */
	if (!applied && record == t)
		return HA_RAFTCONF_NONE;
	if (applied && record == 0 && r->configuration_committed_index == t &&
	    same_servers(&r->configuration, &r->configuration_committed))
		return HA_RAFTCONF_NONE;
	struct raft_configuration logged;
	if (e->buf.len == 0 || raft_configuration_decode(&e->buf, &logged) != 0)
		return HA_RAFTCONF_UNCHECKED;
	fix->servers = logged.n;
	bool same = same_servers(&logged, &r->configuration);
	if (!same && raft_state(r) != RAFT_FOLLOWER) {
		/* a leader's progress and a candidate's votes are sized by its configuration: only
		 * a follower's is replaced (a candidate is one again soon) */
		fix->voter = other_voter(&logged, r->id);
		raft_configuration_close(&logged);
		return raft_state(r) == RAFT_LEADER ? HA_RAFTCONF_LEADER_GHOST : HA_RAFTCONF_NONE;
	}
	if (applied) {
		struct raft_configuration committed;
		if (!copy_servers(&logged, &committed)) {
			raft_configuration_close(&logged);
			return HA_RAFTCONF_NONE; /* out of memory: tried again next time */
		}
		raft_configuration_close(&r->configuration_committed);
		r->configuration_committed = committed;
		r->configuration_committed_index = t;
		r->configuration_uncommitted_index = 0;
	} else {
		/* not applied yet: recorded as uncommitted at its own index, so that libraft clears
		 * the record as it applies it, rolls it back if it is truncated, and allows no
		 * second change meanwhile */
		r->configuration_uncommitted_index = t;
	}
	if (same) {
		raft_configuration_close(&logged);
		return HA_RAFTCONF_REPAIRED;
	}
	raft_configuration_close(&r->configuration);
	r->configuration = logged;
	return HA_RAFTCONF_REPLACED;
}
