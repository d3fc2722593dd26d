#include "topology.h"

#include <stdio.h>
#include <string.h>

#include "../common/buf.h"

static bool points_at(const struct ha_topo_node *replica, const struct ha_topo_node *primary)
{
	return replica->master_host && !strcmp(replica->master_host, primary->address) &&
	       replica->master_port == primary->db_port;
}

static void put(char *why, size_t size, struct ha_buf *b)
{
	snprintf(why, size, "%s", ha_buf_failed(b) ? "out of memory" : ha_buf_cstr(b));
	ha_buf_free(b);
}

uint32_t ha_topo_find_primary(const struct ha_topo_node *n, size_t count, bool allow_majority,
                              char *why, size_t why_size)
{
	struct ha_buf b = HA_BUF_INIT;
	size_t up = 0;
	const struct ha_topo_node *cand = NULL;
	size_t n_cand = 0;

	for (size_t i = 0; i < count; i++) {
		if (n[i].reported && n[i].db_up) {
			up++;
			if (!n[i].replicating) {
				cand = &n[i];
				n_cand++;
			}
		}
	}
	if (up < count && !(allow_majority && up * 2 > count)) {
		ha_buf_puts(&b, "waiting for health of");
		for (size_t i = 0; i < count; i++)
			if (!n[i].reported || !n[i].db_up)
				ha_buf_printf(&b, " %s (%s)", n[i].name,
				              n[i].reported ? "database down" : "no report");
		put(why, why_size, &b);
		return 0;
	}
	if (n_cand != 1) {
		if (n_cand == 0)
			ha_buf_puts(&b, "no primary: every reachable node is replicating");
		else {
			ha_buf_puts(&b,
			            "ambiguous primary: more than one node is not replicating:");
			for (size_t i = 0; i < count; i++)
				if (n[i].reported && n[i].db_up && !n[i].replicating)
					ha_buf_printf(&b, " %s", n[i].name);
		}
		ha_buf_puts(&b, "; HINT: configure replication so that exactly one node is the "
		                "primary and the others replicate from it");
		put(why, why_size, &b);
		return 0;
	}
	size_t n_rep = 0;
	for (size_t i = 0; i < count; i++) {
		if (!n[i].reported || !n[i].db_up || !n[i].replicating)
			continue;
		if (!points_at(&n[i], cand)) {
			ha_buf_printf(&b,
			              "inconsistent: %s is not replicating but %s replicates from "
			              "%s:%u, not from %s:%u",
			              cand->name, n[i].name,
			              n[i].master_host ? n[i].master_host : "?", n[i].master_port,
			              cand->address, cand->db_port);
			put(why, why_size, &b);
			return 0;
		}
		n_rep++;
	}
	ha_buf_printf(&b,
	              "bootstrap: %s is not replicating and %zu of %zu other nodes replicate "
	              "from it",
	              cand->name, n_rep, count - 1);
	put(why, why_size, &b);
	return cand->id;
}
