#include "slots.h"

/* Waiting for its request, old enough to have been read, and of the rank giving way: may go. */
static bool evictable(const struct ha_http_slot *s, enum ha_http_slot_rank rank)
{
	return s->state == HA_HTTP_SLOT_WAITING && !s->fresh && s->rank == rank;
}

/* The lowest rank among the slots that may go, or -1 when none may. */
static int lowest_rank(const struct ha_http_slot *s, size_t n)
{
	int r = -1;
	for (size_t i = 0; i < n; i++)
		if (s[i].state == HA_HTTP_SLOT_WAITING && !s[i].fresh &&
		    (r < 0 || (int)s[i].rank < r))
			r = (int)s[i].rank;
	return r;
}

/* How many slots of peer wait for their request (fresh ones too). */
static unsigned waiting_of(const struct ha_http_slot *s, size_t n, uint32_t peer)
{
	unsigned k = 0;
	for (size_t i = 0; i < n; i++)
		k += s[i].state == HA_HTTP_SLOT_WAITING && s[i].peer == peer;
	return k;
}

/* The oldest slot in state st (for WAITING, only those evictable at rank), or -1. */
static int oldest(const struct ha_http_slot *s, size_t n, enum ha_http_slot_state st,
                  enum ha_http_slot_rank rank)
{
	int best = -1;
	for (size_t i = 0; i < n; i++)
		if (s[i].state == st && (st != HA_HTTP_SLOT_WAITING || evictable(&s[i], rank)) &&
		    (best < 0 || s[i].order < s[best].order))
			best = (int)i;
	return best;
}

int ha_http_slot_victim(const struct ha_http_slot *s, size_t n)
{
	int v = oldest(s, n, HA_HTTP_SLOT_DONE, 0);
	if (v >= 0)
		return v;
	int r = lowest_rank(s, n);
	if (r < 0)
		return oldest(s, n, HA_HTTP_SLOT_WRITING, 0);
	enum ha_http_slot_rank rank = (enum ha_http_slot_rank)r;
	/* top: of the lowest rank, the oldest evictable slot of the peer holding the most waiting
	 * slots (on a tie, of the peer with the oldest one). O(n^2) on n = HA_HTTP_MAX_CONNS: a
	 * thousand comparisons per eviction. */
	int top = -1;
	unsigned top_k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!evictable(&s[i], rank))
			continue;
		unsigned k = waiting_of(s, n, s[i].peer);
		if (k > top_k || (k == top_k && s[i].order < s[top].order)) {
			top = (int)i;
			top_k = k;
		}
	}
	if (top >= 0 && top_k > HA_HTTP_PEER_SHARE)
		return top;
	return oldest(s, n, HA_HTTP_SLOT_WAITING, rank);
}
