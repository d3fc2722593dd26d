/* Membership, the shell (docs/membership.md): every agent's node table follows the members of
 * the replicated state, and the ready leader carries out coord/members.c's decisions — raft
 * configuration changes and the commands that record a join or undo it. Loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "coord/members.h"

static void drop_node(struct ha_agent *a, unsigned i)
{
	ha_info("member-gone", "node=%s id=%u", a->cfg.nodes[i].name, a->cfg.nodes[i].id);
	if (a->health[i].report)
		haagent__health_report__free_unpacked(a->health[i].report, NULL);
	unsigned rest = a->cfg.n_nodes - i - 1;
	memmove(&a->cfg.nodes[i], &a->cfg.nodes[i + 1], sizeof(a->cfg.nodes[0]) * rest);
	memmove(&a->health[i], &a->health[i + 1], sizeof(a->health[0]) * rest);
	memmove(&a->co.unusable_said[i], &a->co.unusable_said[i + 1],
	        sizeof(a->co.unusable_said[0]) * rest);
	memmove(&a->co.unusable_ms[i], &a->co.unusable_ms[i + 1],
	        sizeof(a->co.unusable_ms[0]) * rest);
	a->cfg.n_nodes--;
	memset(&a->health[a->cfg.n_nodes], 0, sizeof(a->health[0]));
	a->co.unusable_said[a->cfg.n_nodes] = false;
	a->co.unusable_ms[a->cfg.n_nodes] = 0;
	if (a->cfg.self > (int)i)
		a->cfg.self--;
}

static bool node_differs(const struct ha_node_conf *n, const struct ha_member *m)
{
	return strcmp(n->name, m->name) != 0 || strcmp(n->address, m->address) != 0 ||
	       n->raft_port != m->raft_port || n->rpc_port != m->rpc_port ||
	       n->db_port != m->db_port;
}

static void fill_node(struct ha_node_conf *n, const struct ha_member *m)
{
	unsigned http_port = n->http_port;
	memset(n, 0, sizeof(*n));
	n->http_port = http_port;
	n->id = m->id;
	snprintf(n->name, sizeof(n->name), "%s", m->name);
	snprintf(n->address, sizeof(n->address), "%s", m->address);
	n->raft_port = m->raft_port;
	n->rpc_port = m->rpc_port;
	n->db_port = m->db_port;
	n->priority = m->priority;
	n->no_promote = (m->flags & HA_MEMBER_NO_PROMOTE) != 0;
}

static void add_node(struct ha_agent *a, const struct ha_member *m)
{
	if (a->cfg.n_nodes >= HA_MAX_NODES)
		return;
	fill_node(&a->cfg.nodes[a->cfg.n_nodes], m);
	memset(&a->health[a->cfg.n_nodes], 0, sizeof(a->health[0]));
	a->cfg.n_nodes++;
	ha_info("member-known", "node=%s id=%u address=%s", m->name, m->id, m->address);
}

void ha_members_sync(struct ha_agent *a)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	if (st->n_members == 0)
		return; /* not bootstrapped: the configuration's nodes are the seeds */
	uint32_t self = a->self->id;
	bool changed = false;
	for (unsigned i = 0; i < a->cfg.n_nodes;) {
		if (a->cfg.nodes[i].id == self || ha_fsm_member(st, a->cfg.nodes[i].id)) {
			i++;
			continue;
		}
		drop_node(a, i);
		changed = true;
	}
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		struct ha_node_conf *n =
		    (struct ha_node_conf *)ha_config_node_by_id(&a->cfg, m->id);
		if (n == NULL) {
			add_node(a, m);
			changed = true;
		} else if (m->id != self && node_differs(n, m)) {
			/* removed and added again with the same id at another address: the state
			 * is right, a configuration file's [node] section may be old */
			ha_info("member-moved", "node=%s id=%u address=%s", m->name, m->id,
			        m->address);
			fill_node(n, m);
			changed = true;
		}
	}
	a->self = &a->cfg.nodes[a->cfg.self];
	bool member = ha_fsm_member(st, self) != NULL;
	a->was_member |= member;
	if (!changed && a->peers_synced)
		return;
	ha_raft_set_peers(a->raft, &a->cfg); /* a joining node now accepts only members */
	a->peers_synced = true;
	/* (a node being added replays the log from before its own addition: not a removal) */
	if (!member && a->was_member && !a->removed_said) {
		a->removed_said = true;
		ha_warn("member-removed-self",
		        "node=%s this node is no longer a member: its agent stopped its "
		        "replication and leaves its database alone; stop it",
		        a->self->name);
	}
}

#define JOIN_SAY_MS 10000 /* a join that waits is said this often on the leader */

static const char *role_name(const struct ha_members_in *mi, uint32_t id)
{
	for (unsigned i = 0; i < mi->n_raft; i++)
		if (mi->raft[i].id == id)
			return mi->raft[i].role == RAFT_VOTER     ? "voter"
			       : mi->raft[i].role == RAFT_STANDBY ? "standby"
			                                          : "spare";
	return "none";
}

/* A join that waits is said now and then: what it waits for (its database, its agent, raft, a
 * proposal), so that a join that does not move can be explained from the leader's log. */
static void say_join_wait(struct ha_agent *a, const struct ha_members_in *mi)
{
	const struct ha_core_in *in = mi->core;
	const struct ha_member *j = ha_fsm_joining(in->st);
	if (j == NULL) {
		a->members_said_ms = 0;
		return;
	}
	if (a->members_said_ms != 0 && in->now_ms - a->members_said_ms < JOIN_SAY_MS)
		return;
	a->members_said_ms = in->now_ms;
	char db[256];
	char raft[256];
	ha_members_db_ready(in, j->id, db, sizeof(db));
	ha_raft_change_state(a->raft, raft, sizeof(raft));
	ha_info("membership-waiting",
	        "node=%s for_ms=%llu raft_role=%s database=\"%s\" raft_change=\"%s\" proposing=%s",
	        j->name, (unsigned long long)(in->now_ms - a->mm.since_ms), role_name(mi, j->id),
	        db, raft[0] ? raft : "none", in->proposing ? "yes" : "no");
}

void ha_members_tick(struct ha_agent *a)
{
	struct ha_core_report rep[HA_MAX_NODES];
	struct ha_core_in in;
	ha_agent_core_input(a, &in, rep);
	struct ha_raft_server servers[HA_MAX_NODES + 4];
	struct ha_members_in mi = {
	    .core = &in,
	    .raft = servers,
	    .n_raft = ha_raft_servers(a->raft, servers, HA_MAX_NODES + 4),
	    .raft_changing = ha_raft_changing(a->raft),
	};
	struct ha_members_out out;
	ha_members_decide(&mi, &a->mm, &out);
	struct ha_err e = {0};
	switch (out.act) {
	case HA_MEMBERS_NONE:
		say_join_wait(a, &mi);
		return;
	case HA_MEMBERS_PROPOSE:
		ha_info("membership", "%s", out.why);
		ha_agent_propose(a, out.cmd, out.cmd_len);
		return;
	case HA_MEMBERS_TRANSFER: {
		unsigned long long k;
		if (ha_raft_transfer(a->raft, &e) != 0 && ha_log_due(&a->members_log, &k))
			ha_warn("membership-transfer-failed", "why=\"%s\" error=\"%s\" count=%llu",
			        out.why, e.msg, k);
		return;
	}
	case HA_MEMBERS_BACKUP: {
		struct ha_bk_started started;
		int rc =
		    ha_backup_start(a, "full", NULL, "a node joins and no backup exists", &started);
		ha_log(rc == 0 ? HA_LOG_INFO : HA_LOG_WARN, "membership", "%s: %s", out.why,
		       started.msg);
		return;
	}
	case HA_MEMBERS_RAFT_ADD:
	case HA_MEMBERS_RAFT_ASSIGN:
	case HA_MEMBERS_RAFT_REMOVE:
		break;
	}
	enum ha_raft_op op = out.act == HA_MEMBERS_RAFT_ADD      ? HA_RAFT_ADD
	                     : out.act == HA_MEMBERS_RAFT_ASSIGN ? HA_RAFT_ASSIGN
	                                                         : HA_RAFT_REMOVE;
	if (ha_raft_change(a->raft, op, out.id, out.address, out.role, &e) != 0) {
		unsigned long long k;
		if (ha_log_due(&a->members_log, &k))
			ha_warn("membership-change-failed", "why=\"%s\" error=\"%s\" count=%llu",
			        out.why, e.msg, k);
		return;
	}
	ha_info("membership", "%s", out.why);
}
