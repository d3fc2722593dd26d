/* Membership changes, decided by the ready leader: see members.h. Pure. */
#include "members.h"

#include "core_int.h"

#include <stdio.h>
#include <string.h>

#include <raft.h>

#define BACKUP_ASK_MS 60000 /* a full backup asked for a joining node at most this often */

static const struct ha_raft_server *raft_find(const struct ha_members_in *in, uint32_t id)
{
	for (unsigned i = 0; i < in->n_raft; i++)
		if (in->raft[i].id == id)
			return &in->raft[i];
	return NULL;
}

bool ha_members_db_ready(const struct ha_core_in *in, uint32_t id, char *why, size_t size)
{
	char scratch[8];
	if (why == NULL) {
		why = scratch;
		size = sizeof(scratch);
	}
	const struct ha_fsm_state *st = in->st;
	const struct ha_member *p = ha_fsm_member(st, st->primary_id);
	int i = co_node_index(in->cfg, id);
	const Haagent__Health *h = i >= 0 ? in->reports[i].h : NULL;
	if (p == NULL || ha_fsm_failover_active(st)) {
		snprintf(why, size, "waiting for a primary");
		return false;
	}
	if (h == NULL || in->now_ms - in->reports[i].recv_ms > in->cfg->agent_timeout_ms) {
		snprintf(why, size, "waiting for its agent's report");
		return false;
	}
	if (h->db != HAAGENT__DB_STATE__DB_UP) {
		snprintf(why, size, "its database is not up");
		return false;
	}
	if (!h->replicating || strcmp(h->master_host ? h->master_host : "", p->address) != 0 ||
	    h->master_port != p->db_port) {
		snprintf(why, size, "its database is being built (%s)",
		         h->action && h->action[0] ? h->action
		                                   : "not replicating from the primary");
		return false;
	}
	if (!h->io_running || !h->sql_running || h->lag_seconds != 0) {
		snprintf(why, size, "replicating, catching up (lag %d s%s)", (int)h->lag_seconds,
		         h->last_error && h->last_error[0] ? ", error" : "");
		return false;
	}
	snprintf(why, size, "replicating, caught up");
	return true;
}

/* raft servers that are no longer members leave raft; members that raft lacks join it */
static bool follow_members(const struct ha_members_in *in, struct ha_members_out *out)
{
	const struct ha_fsm_state *st = in->core->st;
	uint32_t self = in->core->cfg->nodes[in->core->cfg->self].id;
	if (ha_fsm_member(st, self) == NULL) {
		/* removed while it led (its removal committed by itself): another voter leads and
		 * removes it from raft */
		out->act = HA_MEMBERS_TRANSFER;
		out->id = self;
		snprintf(out->why, sizeof(out->why), "this leader is no longer a member");
		return true;
	}
	for (unsigned i = 0; i < in->n_raft; i++) {
		uint32_t id = in->raft[i].id;
		if (ha_fsm_member(st, id) || id == self)
			continue;
		out->act = HA_MEMBERS_RAFT_REMOVE;
		out->id = id;
		snprintf(out->why, sizeof(out->why), "raft server %u is no longer a member", id);
		return true;
	}
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *mb = &st->members[i];
		const struct ha_raft_server *r = raft_find(in, mb->id);
		bool joining = (mb->flags & HA_MEMBER_JOINING) != 0;
		if (r == NULL) {
			out->act = HA_MEMBERS_RAFT_ADD;
			out->id = mb->id;
			snprintf(out->address, sizeof(out->address), "%s:%u", mb->address,
			         mb->raft_port);
			snprintf(out->why, sizeof(out->why), "member %s joins raft", mb->name);
			return true;
		}
		/* a joining member receives the log without voting; a full one votes */
		int want = joining ? RAFT_STANDBY : RAFT_VOTER;
		if (r->role == RAFT_SPARE || (!joining && r->role != RAFT_VOTER)) {
			out->act = HA_MEMBERS_RAFT_ASSIGN;
			out->id = mb->id;
			out->role = want;
			snprintf(out->why, sizeof(out->why), "member %s: raft %s", mb->name,
			         want == RAFT_VOTER ? "voter" : "standby (receives the log)");
			return true;
		}
	}
	return false;
}

/* the command just encoded into out->cmd (rc its encoder's result) is to be proposed */
static void propose(struct ha_members_out *out, int rc)
{
	if (rc == 0)
		out->act = HA_MEMBERS_PROPOSE;
}

/* a finished full backup to build a joining node from, or one being taken */
static bool has_full_backup(const struct ha_fsm_state *st)
{
	for (unsigned i = 0; i < st->n_backups; i++) {
		const struct ha_backup_rec *b = &st->backups[i];
		if (b->state == HA_BK_RUNNING ||
		    (b->state == HA_BK_DONE && !strcmp(b->type, "full")))
			return true;
	}
	return false;
}

/* The join of j fails now (its agent silent for join_silent_ms, or longer than join_timeout_ms
 * in all): out proposes its undo. Never while a failover runs or no primary is established: the
 * joining node may hold acknowledged writes in its relay log, and the failover must see them
 * (its clock goes on; the undo comes after, if it still must). A member raft already made a
 * voter has joined: that is recorded instead (follow_join). */
static bool undo_join(const struct ha_members_in *in, const struct ha_members_mem *m,
                      const struct ha_member *j, struct ha_members_out *out)
{
	const struct ha_core_in *k = in->core;
	const struct ha_raft_server *r = raft_find(in, j->id);
	if (r && r->role == RAFT_VOTER)
		return false;
	if (ha_fsm_failover_active(k->st) || k->st->primary_id == 0)
		return false;
	int i = co_node_index(k->cfg, j->id);
	uint64_t heard = i >= 0 && k->reports[i].h ? k->reports[i].recv_ms : 0;
	if (heard < m->since_ms)
		heard = m->since_ms;
	const char *fail = NULL;
	/* a standby with a raft change in flight may be the one raft is making a voter (libraft
	 * catches its log up first): only silence undoes it then, not the clock, so that it does
	 * not become a voter that is no member */
	bool promoting = in->raft_changing && r && r->role == RAFT_STANDBY;
	if (k->now_ms - heard > k->cfg->join_silent_ms)
		fail = "its agent went silent";
	else if (!promoting && k->now_ms - m->since_ms > k->cfg->join_timeout_ms)
		fail = "it took longer than join_timeout_ms";
	if (fail == NULL)
		return false;
	char why[256];
	if (in->raft_changing && (r == NULL || r->role == RAFT_SPARE))
		snprintf(why, sizeof(why),
		         "raft never sent it the log: a raft change did not finish");
	else
		ha_members_db_ready(k, j->id, why, sizeof(why));
	char reason[HA_FSM_TEXT_MAX];
	snprintf(reason, sizeof(reason), "join undone: %s (last: %s)", fail, why);
	snprintf(out->why, sizeof(out->why), "%s: %s", j->name, reason);
	propose(out, ha_fsm_cmd_member_remove(j->id, reason, k->unix_ms, k->alloc, &out->cmd,
	                                      &out->cmd_len));
	return true;
}

/* the joining member: made a voter once its database replicates, recorded once it votes */
static void follow_join(const struct ha_members_in *in, struct ha_members_mem *m,
                        const struct ha_member *j, struct ha_members_out *out)
{
	const struct ha_core_in *k = in->core;
	const struct ha_raft_server *r = raft_find(in, j->id);
	if (r && r->role == RAFT_VOTER) {
		snprintf(out->why, sizeof(out->why), "%s is a raft voter: joined", j->name);
		propose(out, ha_fsm_cmd_member_joined(j->id, k->unix_ms, k->alloc, &out->cmd,
		                                      &out->cmd_len));
		return;
	}
	char why[256];
	if (ha_members_db_ready(k, j->id, why, sizeof(why))) {
		if (r && r->role == RAFT_STANDBY) {
			out->act = HA_MEMBERS_RAFT_ASSIGN;
			out->id = j->id;
			out->role = RAFT_VOTER;
			snprintf(out->why, sizeof(out->why), "%s: %s: raft voter", j->name, why);
		}
		return;
	}
	if (!has_full_backup(k->st) &&
	    (m->backup_asked_ms == 0 || k->now_ms - m->backup_asked_ms >= BACKUP_ASK_MS)) {
		m->backup_asked_ms = k->now_ms;
		out->act = HA_MEMBERS_BACKUP;
		out->id = j->id;
		snprintf(out->why, sizeof(out->why),
		         "%s joins and no full backup exists to build it from: a full backup first",
		         j->name);
	}
}

void ha_members_decide(const struct ha_members_in *in, struct ha_members_mem *m,
                       struct ha_members_out *out)
{
	memset(out, 0, sizeof(*out));
	const struct ha_fsm_state *st = in->core->st;
	if (st->n_members == 0 || in->core->proposing)
		return;
	const struct ha_member *j = ha_fsm_joining(st);
	if (j == NULL) {
		m->joining = 0;
	} else if (m->joining != j->id) {
		m->joining = j->id;
		m->since_ms = in->core->now_ms;
	}
	/* The undo comes first: a raft change that does not finish (or one that fails again and
	 * again) must not hold a failed join, and with it the next one, forever. */
	if (j && undo_join(in, m, j, out))
		return;
	if (in->raft_changing)
		return;
	if (follow_members(in, out))
		return;
	if (j)
		follow_join(in, m, j, out);
}
