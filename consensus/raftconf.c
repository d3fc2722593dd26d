/* See raftconf.h. */
#include "raftconf.h"

bool ha_raftconf_repair(struct raft *r, bool change_in_flight, raft_index *index)
{
	raft_index stale = r->configuration_uncommitted_index;
	raft_index commit = raft_commit_index(r);
	if (stale == 0 || change_in_flight || raft_last_index(r) != commit ||
	    raft_last_applied(r) != commit || stale > commit)
		return false;
	struct raft_configuration c;
	raft_configuration_init(&c);
	const struct raft_configuration *cur = &r->configuration;
	for (unsigned i = 0; i < cur->n; i++) {
		if (raft_configuration_add(&c, cur->servers[i].id, cur->servers[i].address,
		                           cur->servers[i].role) != 0) {
			raft_configuration_close(&c);
			return false; /* out of memory: tried again next time */
		}
	}
	raft_configuration_close(&r->configuration_committed);
	r->configuration_committed = c;
	r->configuration_committed_index = stale;
	r->configuration_uncommitted_index = 0;
	*index = stale;
	return true;
}
