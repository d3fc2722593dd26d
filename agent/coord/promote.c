/* The coordinator core: choosing the candidate (what each node received, what the failover
 * owes) and following its promotion (the relay log, the salvage, a failed candidate). */
#include "core_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/gtid.h"

/* Merges the position in text into *into (ignored when it does not parse or the union would
 * exceed the domain bound: the accounting then errs towards "lost 0", which the log says). */
static void merge_text(const struct ha_core_in *in, struct ha_gtid_pos *into, const char *text)
{
	struct ha_gtid_pos p;
	if (text && text[0] && ha_gtid_parse(text, &p, NULL) == 0 &&
	    ha_gtid_merge(into, &p, into) != 0)
		INLOGW(in, "gtid-merge-overflow", "position=%s", text);
}

/* Everything a failover owes: the old primary's last reported position, what a superseded
 * failover's candidate was to apply, and what every node in nodes[] received. */
static void owed_position(const struct ha_core_in *in, const struct ha_failover *f,
                          const struct ha_fo_node *nodes, size_t n, struct ha_gtid_pos *want)
{
	memset(want, 0, sizeof(*want));
	int oi = co_node_index(in->cfg, f->old_primary);
	if (oi >= 0)
		merge_text(in, want, in->reports[oi].last_binlog);
	merge_text(in, want, f->owed_gtid);
	merge_text(in, want, f->received_gtid);
	for (size_t i = 0; i < n; i++) {
		struct ha_gtid_pos r;
		if (nodes[i].fresh && nodes[i].db == HAAGENT__DB_STATE__DB_UP &&
		    ha_fo_received(&nodes[i], &r) == 0 && ha_gtid_merge(want, &r, want) != 0)
			INLOGW(in, "gtid-merge-overflow", "node=%s", nodes[i].name);
	}
}

/* The part of want that have lacks, as text (upper bounds per domain); returns its count. */
static uint64_t missing_text(const struct ha_gtid_pos *want, const struct ha_gtid_pos *have,
                             char *out, size_t size)
{
	struct ha_gtid_pos miss;
	ha_gtid_missing_from(want, have, &miss, NULL);
	ha_gtid_format(&miss, out, size);
	return ha_gtid_count_missing(want, have);
}

/* What the failover gives up if the candidate stops applying now: everything it owes (the old
 * primary's last position, what the candidate and every other node received, a superseded
 * failover's debt) less what the candidate applied. */
uint64_t ha_core_loss_if_now(const struct ha_core_in *in, char *lost, size_t size)
{
	const struct ha_failover *f = &in->st->failover;
	struct ha_fo_node all[HA_FSM_MAX_MEMBERS];
	size_t n = ha_core_view(in, f->old_primary, all, false);
	struct ha_gtid_pos want, cur;
	lost[0] = '\0';
	owed_position(in, f, all, n, &want);
	struct ha_fo_node c;
	ha_core_node_view(in, f->candidate, &c);
	if (f->candidate == 0 || ha_gtid_parse(c.gtid_current, &cur, NULL))
		memset(&cur, 0, sizeof(cur));
	if (f->phase == HA_FO_FENCED) {
		/* no candidate yet: the best eligible one's received position is what it keeps */
		char why[256];
		int best = ha_fo_choose(all, n, false, why, sizeof(why));
		if (best >= 0)
			ha_fo_received(&all[best], &cur);
	}
	return missing_text(&want, &cur, lost, size);
}

/* PROMOTING, unplanned: has the candidate failed? Silent for agent_timeout_ms (it is then not
 * fresh) and again as long, or its database down for confirm_ms, or hung for hang_timeout_ms.
 * Applying a long relay log is not failing: its reports say so. */
static const char *candidate_failed(struct ha_core *k, const struct ha_failover *f,
                                    const char *name, char *why, size_t size)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->candidate, &fresh);
	uint64_t now = k->now;
	enum ha_cand_state cs = !fresh                                    ? HA_CAND_SILENT
	                        : !h                                      ? HA_CAND_FINE
	                        : h->db == HAAGENT__DB_STATE__DB_DOWN     ? HA_CAND_DOWN
	                        : h->db == HAAGENT__DB_STATE__DB_HUNG     ? HA_CAND_HUNG
	                        : h->db == HAAGENT__DB_STATE__DB_UNUSABLE ? HA_CAND_UNUSABLE
	                                                                  : HA_CAND_FINE;
	if (cs != k->m->cand_state) {
		k->m->cand_state = cs;
		k->m->cand_since_ms = now;
	}
	if (cs == HA_CAND_FINE)
		return NULL;
	uint64_t for_ms = now - k->m->cand_since_ms;
	uint64_t need = cs == HA_CAND_SILENT ? 2 * (uint64_t)k->cfg->agent_timeout_ms
	                : cs == HA_CAND_DOWN ? k->cfg->confirm_ms
	                                     : k->cfg->hang_timeout_ms;
	if (for_ms < need)
		return NULL;
	snprintf(why, size, "candidate %s failed while promoting: %s for %llu ms", name,
	         cs == HA_CAND_SILENT ? "its agent is unreachable"
	         : cs == HA_CAND_DOWN ? "mariadbd down"
	         : cs == HA_CAND_HUNG ? "mariadbd hung"
	                              : "its agent cannot use its database",
	         (unsigned long long)for_ms);
	return why;
}

/* The bounded exit of PROMOTING: a new failover whose old primary is the failed candidate (the
 * FSM supersedes the current one). */
static void supersede(struct ha_core *k, const struct ha_fsm_state *st, const struct ha_failover *f,
                      const char *event, const char *why)
{
	struct ha_fo_begin b = {.expected_epoch = st->epoch,
	                        .old_primary = f->candidate,
	                        .reason = why,
	                        .unix_ms = k->unix_ms};
	uint8_t *buf;
	size_t len;
	LOGW(k, event, "failover=%llu why=\"%s\"", (unsigned long long)f->id, why);
	if (ha_fsm_cmd_failover_begin(&b, k->in->alloc, &buf, &len) == 0)
		co_propose(k, buf, len, "failover-begin");
}

/* PROMOTING: the candidate stops applying its relay log; lost is what is given up at most. */
static void give_up(struct ha_core *k, const struct ha_failover *f, const char *lost,
                    uint64_t count, const char *why)
{
	struct ha_fo_advance acc = {.id = f->id,
	                            .phase = HA_FO_PROMOTING,
	                            .accept_loss = true,
	                            .lost_gtid = lost,
	                            .lost_count = count,
	                            .unix_ms = k->unix_ms,
	                            .detail = why};
	co_advance(k, &acc);
}

/* The candidate's relay log is exhausted short of what it claimed. When another node has
 * received something the candidate has not applied, a new failover replaces the candidate
 * (proposed here, true); otherwise false, with why saying that nobody has the rest. */
static bool shortfall(struct ha_core *k, const struct ha_fsm_state *st, const struct ha_failover *f,
                      const struct ha_fo_node *c, char *why, size_t size)
{
	struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
	size_t n = ha_core_view(k->in, f->old_primary, nodes, false);
	struct ha_gtid_pos cur, r;
	char b1[HA_GTID_BRIEF_MAX];
	if (ha_gtid_parse(c->gtid_current, &cur, NULL))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (nodes[i].id == f->candidate || !nodes[i].fresh ||
		    nodes[i].db != HAAGENT__DB_STATE__DB_UP || ha_fo_received(&nodes[i], &r) ||
		    ha_gtid_contains(&cur, &r))
			continue;
		snprintf(why, size,
		         "candidate %s's relay log ended at %s, short of what it reported; %s has "
		         "more: it takes over",
		         c->name, ha_gtid_brief(c->gtid_current, b1), nodes[i].name);
		supersede(k, st, f, "failover-relay-short", why);
		return true;
	}
	snprintf(why, size,
	         "candidate %s's relay log ended at %s, short of what it reported, and no other "
	         "node has the rest: it is lost, and the candidate takes writes",
	         c->name, ha_gtid_brief(c->gtid_current, b1));
	return false;
}

/* Has the candidate applied everything its IO thread received (whatever was recorded when it
 * was chosen)? */
static bool relay_drained(const struct ha_fo_node *c)
{
	struct ha_gtid_pos cur, got;
	return ha_gtid_parse(c->gtid_current, &cur, NULL) == 0 && ha_fo_received(c, &got) == 0 &&
	       ha_gtid_contains(&cur, &got);
}

/* Has the candidate still to apply part of what it received (the position recorded when it
 * was chosen, and what its IO thread got since)? */
static bool relay_pending(const struct ha_core_in *in, const struct ha_failover *f,
                          const struct ha_fo_node *c)
{
	struct ha_gtid_pos cur, want;
	if (ha_gtid_parse(c->gtid_current, &cur, NULL) || ha_fo_received(c, &want))
		return true;
	merge_text(in, &want, f->received_gtid);
	return !ha_gtid_contains(&cur, &want);
}

/* Should the old primary's agent salvage what its binlog holds (db/salvage.h)? Its mariadbd
 * is gone (reported down at this failover's epoch) but its agent reports: it can read the
 * local binlog. Unplanned failovers only (a switchover's old primary hands over everything). */
static bool salvage_possible(struct ha_core *k, const struct ha_failover *f)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
	return k->cfg->salvage && !f->planned && !f->accept_loss && h && fresh &&
	       h->epoch_seen >= f->epoch && h->db == HAAGENT__DB_STATE__DB_DOWN;
}

/* PROMOTING with salvage WANTED: records the outcome when the old primary's agent reported
 * one, or gives up on it (silent agent, no outcome in time). Returns true when it proposed. */
static bool salvage_outcome(struct ha_core *k, const struct ha_fsm_state *st,
                            const struct ha_failover *f, char *wait, size_t wait_size)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
	const struct ha_member *o = ha_fsm_member(st, f->old_primary);
	const char *oname = o ? o->name : "?";
	uint64_t now = k->now;
	uint64_t bound = (uint64_t)k->cfg->salvage_timeout_ms + 2ull * k->cfg->agent_timeout_ms;
	struct ha_fo_advance adv = {.id = f->id, .phase = HA_FO_PROMOTING, .unix_ms = k->unix_ms};
	char detail[512];
	if (h && fresh && h->salvage_fo_id == f->id && h->salvage_state >= HA_SALVAGE_RUN_DONE) {
		/* what is lost now: what the failover owes less what the candidate received and
		 * what the salvage applied */
		struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
		size_t n = ha_core_view(k->in, f->old_primary, nodes, false);
		struct ha_gtid_pos want, keeps;
		char lost[HA_FSM_GTID_MAX] = "";
		owed_position(k->in, f, nodes, n, &want);
		memset(&keeps, 0, sizeof(keeps));
		merge_text(k->in, &keeps, f->received_gtid);
		merge_text(k->in, &keeps, h->salvaged_gtid);
		adv.lost_count = missing_text(&want, &keeps, lost, sizeof(lost));
		adv.lost_gtid = lost;
		adv.salvage =
		    h->salvage_state == HA_SALVAGE_RUN_DONE ? HA_SALVAGE_DONE : HA_SALVAGE_FAILED;
		adv.salvaged_gtid = h->salvaged_gtid;
		adv.salvaged_count = h->salvaged_count;
		snprintf(detail, sizeof(detail), "from %s's binlog: %s", oname,
		         h->salvage_detail ? h->salvage_detail : "");
		adv.detail = detail;
		LOGI(k, "failover-salvage", "failover=%llu count=%llu detail=\"%s\"",
		     (unsigned long long)f->id, (unsigned long long)h->salvaged_count, detail);
		co_advance(k, &adv);
		return true;
	}
	/* silence counts only after twice agent_timeout_ms under this leader: a new leader has
	 * no report from anyone at first */
	bool silent = !fresh && now - k->m->phase_seen_ms >= 2ull * k->cfg->agent_timeout_ms;
	/* its mariadbd runs again (restarted) and no salvage ran: its agent salvages only from a
	 * stopped server, so none will (found by the simulator: the candidate waited the whole
	 * bound, 33 s without a primary) */
	bool back = h && fresh && h->epoch_seen >= f->epoch && h->db == HAAGENT__DB_STATE__DB_UP &&
	            h->salvage_fo_id != f->id;
	if (silent || back || now - k->m->phase_seen_ms >= bound) {
		snprintf(detail, sizeof(detail),
		         "no salvage from %s's binlog: %s; the new primary takes writes without it",
		         oname,
		         silent ? "its agent stopped reporting"
		         : back ? "its mariadbd runs again"
		                : "no outcome within the salvage bound");
		adv.salvage = HA_SALVAGE_FAILED;
		adv.detail = detail;
		adv.lost_gtid = f->lost_gtid;
		adv.lost_count = f->lost_count;
		LOGW(k, "failover-salvage-failed", "failover=%llu why=\"%s\"",
		     (unsigned long long)f->id, detail);
		co_advance(k, &adv);
		return true;
	}
	snprintf(wait, wait_size,
	         "%s's agent applies what its binlog holds (its mariadbd is gone) to the new "
	         "primary before it takes writes: %s",
	         oname,
	         h && h->salvage_fo_id == f->id && h->salvage_detail ? h->salvage_detail
	                                                             : "starting");
	return false;
}

/* "; about 12 s at 130/s": the candidate's apply rate, smoothed over its reports, and the
 * time left at that rate ("" until two samples a second apart show progress). */
static const char *estimate(struct ha_core *k, uint64_t left, uint64_t now, char out[64])
{
	if (k->m->apply_left_ms == 0 || left > k->m->apply_left) {
		k->m->apply_left = left;
		k->m->apply_left_ms = now;
		k->m->apply_rate = 0;
	} else if (now - k->m->apply_left_ms >= 1000) {
		double rate = (double)(k->m->apply_left - left) * 1000.0 /
		              (double)(now - k->m->apply_left_ms);
		k->m->apply_rate =
		    k->m->apply_rate > 0 ? 0.7 * k->m->apply_rate + 0.3 * rate : rate;
		k->m->apply_left = left;
		k->m->apply_left_ms = now;
	}
	if (k->m->apply_rate < 0.01) {
		out[0] = '\0';
		return out;
	}
	snprintf(out, 64, "; about %.0f s at %.0f/s", (double)left / k->m->apply_rate,
	         k->m->apply_rate);
	return out;
}

/* Is every transaction that n has and the old primary lacked (n's errant set, as its agent
 * reported it or the replicated state recorded it) one the old primary itself wrote (its server
 * id)? Then n holds what the old primary's crash recovery dropped: it is ahead, not diverged. */
static bool ahead_of_old_primary(struct ha_core *k, const struct ha_fsm_state *st,
                                 const struct ha_failover *f, const struct ha_fo_node *n)
{
	bool fresh;
	const Haagent__Health *o = health_of(k->in, f->old_primary, &fresh);
	const Haagent__Health *h = health_of(k->in, n->id, &fresh);
	const struct ha_member *m = ha_fsm_member(st, n->id);
	const char *errant = h && h->diverged && h->errant_gtid && h->errant_gtid[0]
	                         ? h->errant_gtid
	                     : m ? m->errant_gtid
	                         : "";
	struct ha_gtid_pos e;
	if (o == NULL || o->server_id == 0 || !errant[0] || ha_gtid_parse(errant, &e, NULL) ||
	    e.n == 0)
		return false;
	for (size_t i = 0; i < e.n; i++)
		if (e.g[i].server != o->server_id)
			return false;
	return true;
}

/* Has the old primary, back, applied everything any other node received (and what a
 * superseded failover owed)? Every other node's position must be known. What only the old
 * primary had before its crash and no replica received was never acknowledged (semi-sync waits
 * for a replica); what a replica received, the old primary's crash recovery may have dropped,
 * acknowledged or not (measured: init-rpl-role=SLAVE recovery rolled back the last write a
 * client had been told was committed). */
static bool old_primary_has_all(struct ha_core *k, const struct ha_failover *f,
                                const struct ha_fo_node *nodes, size_t n, bool received)
{
	struct ha_gtid_pos want, cur, r;
	memset(&want, 0, sizeof(want));
	merge_text(k->in, &want, f->owed_gtid);
	merge_text(k->in, &want, f->received_gtid);
	for (size_t i = 0; i < n; i++) {
		/* a diverged node replicates from nobody: what it has beyond the history is its
		 * own (never acknowledged: a partition cut it off), the rest the history has */
		if (nodes[i].flags & HA_MEMBER_DIVERGED)
			continue;
		if (!nodes[i].fresh || nodes[i].db != HAAGENT__DB_STATE__DB_UP ||
		    ha_fo_received(&nodes[i], &r) || ha_gtid_merge(&want, &r, &want))
			return false;
	}
	if (received) { /* what its IO thread wrote to its relay log counts too */
		struct ha_fo_node o;
		ha_core_node_view(k->in, f->old_primary, &o);
		return ha_fo_received(&o, &cur) == 0 && ha_gtid_contains(&cur, &want);
	}
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->old_primary, &fresh);
	return h && h->gtid_current && ha_gtid_parse(h->gtid_current, &cur, NULL) == 0 &&
	       ha_gtid_contains(&cur, &want);
}

/* The old primary takes its role back (the failover ends, aborted) when it is back, read-only
 * at this epoch, and has applied everything the other nodes received; used when no replica can
 * be promoted, or when the best one would lack transactions (the old primary, a superseded
 * failover's candidate, may be the one that has them). */
static bool hand_back(struct ha_core *k, const struct ha_fsm_state *st, const struct ha_failover *f,
                      const struct ha_fo_node *nodes, size_t n, const char *because)
{
	if (f->accept_loss || !co_old_primary_back(k, st, f) ||
	    !old_primary_has_all(k, f, nodes, n, false))
		return false;
	char back[HA_FSM_TEXT_MAX];
	snprintf(back, sizeof(back),
	         "%.400s; the old primary is back, read-only at epoch %llu, with everything the "
	         "others received: it takes its role back",
	         because, (unsigned long long)f->epoch);
	co_roll_back(k, f, back);
	return true;
}

/* FENCED: the nodes as the choice sees them. Only reports taken at the new epoch count: they
 * were sampled after the fence; and a node "diverged" only by transactions of the old primary
 * itself is ahead of it, not astray (the old primary's crash recovery dropped what that node
 * received). */
static size_t fenced_view(struct ha_core *k, const struct ha_fsm_state *st,
                          const struct ha_failover *f, struct ha_fo_node *nodes)
{
	size_t n = ha_core_view(k->in, f->old_primary, nodes, false);
	for (size_t i = 0; i < n; i++) {
		bool fresh;
		const Haagent__Health *h = health_of(k->in, nodes[i].id, &fresh);
		if (h && h->epoch_seen < f->epoch)
			nodes[i].fresh = false;
		if ((nodes[i].flags & HA_MEMBER_DIVERGED) &&
		    ahead_of_old_primary(k, st, f, &nodes[i]))
			nodes[i].flags &= ~(uint32_t)HA_MEMBER_DIVERGED;
	}
	return n;
}

/* No acknowledged write may be lost: an acknowledged transaction is on at least one replica,
 * not necessarily an eligible one. Wait for a candidate that has received what every reporting
 * node has received, however long, unless an operator accepts the loss; and for every replica
 * whose position cannot be read now, at most apply_timeout_ms. False (why says what is waited
 * for) when best must not be chosen yet. */
static bool safe_to_choose(struct ha_core *k, const struct ha_failover *f,
                           const struct ha_fo_node *nodes, size_t n, int best, char *why,
                           size_t size)
{
	bool waited = k->now - k->m->phase_seen_ms >= k->cfg->apply_timeout_ms;
	if (f->accept_loss)
		return true;
	bool known;
	const char *unsafe = ha_fo_unsafe(nodes, n, best, why, size, &known);
	return !(unsafe && (known || !waited));
}

/* What is given up: what the old primary had (as last reported), what a superseded failover's
 * candidate was to apply, and what any reporting node received, less what the candidate
 * received (it applies all of that). Its count, lost as text, and what the candidate received
 * in received (both stay "" when its position does not parse). */
static uint64_t given_up(struct ha_core *k, const struct ha_failover *f,
                         const struct ha_fo_node *nodes, size_t n, int best,
                         char lost[HA_FSM_GTID_MAX], char received[HA_FSM_GTID_MAX])
{
	struct ha_gtid_pos cand;
	if (ha_fo_received(&nodes[best], &cand) != 0)
		return 0;
	ha_gtid_format(&cand, received, HA_FSM_GTID_MAX);
	struct ha_gtid_pos want, keeps = cand;
	owed_position(k->in, f, nodes, n, &want);
	/* with the loss accepted the candidate does not apply its relay log either: what it
	 * keeps is what it applied (DONE counts against its final position) */
	if (f->accept_loss)
		ha_gtid_parse(nodes[best].gtid_current, &keeps, NULL);
	return missing_text(&want, &keeps, lost, HA_FSM_GTID_MAX);
}

/* The candidate would lack lost_count transactions: the old primary (a superseded failover's
 * candidate) takes its role back when it has them, now or once it applied its relay log. True
 * when it did or is waited for. */
static bool defer_to_old_primary(struct ha_core *k, const struct ha_fsm_state *st,
                                 const struct ha_failover *f, const struct ha_fo_node *nodes,
                                 size_t n, int best, uint64_t lost_count)
{
	char short_of[300];
	snprintf(short_of, sizeof(short_of), "%s would lack %llu transactions", nodes[best].name,
	         (unsigned long long)lost_count);
	if (hand_back(k, st, f, nodes, n, short_of))
		return true;
	/* the old primary is back and has them in its relay log: it takes its role back once it
	 * applied them */
	if (!f->accept_loss && co_old_primary_back(k, st, f) &&
	    old_primary_has_all(k, f, nodes, n, true)) {
		char w[512];
		snprintf(w, sizeof(w),
		         "%s; the old primary is back and applies its relay log, which has "
		         "them: it will take its role back",
		         short_of);
		co_set_wait(k, f, w);
		return true;
	}
	return false;
}

/* FENCED, unplanned: the candidate that received the most, once every reachable node's
 * position is known (or the old primary takes its role back when nobody can be promoted). */
void co_phase_fenced(struct ha_core *k, const struct ha_fsm_state *st, const struct ha_failover *f)
{
	struct ha_fo_advance adv = {.id = f->id, .unix_ms = k->unix_ms};
	struct ha_fo_node nodes[HA_FSM_MAX_MEMBERS];
	size_t n = fenced_view(k, st, f, nodes);
	/* Ranked by what each received: the candidate applies its whole relay log before it
	 * turns writable (reconcile.c), so nothing is waited for here but the reports. */
	char why[1024];
	int best = ha_fo_choose(nodes, n, false, why, sizeof(why));
	if (best < 0 && hand_back(k, st, f, nodes, n, why))
		return;
	if (best >= 0 && !safe_to_choose(k, f, nodes, n, best, why, sizeof(why)))
		best = -1;
	if (best < 0) {
		/* nobody eligible, or waiting for positions: keep waiting, say why */
		co_set_wait(k, f, why);
		return;
	}
	char lost[HA_FSM_GTID_MAX] = "", received[HA_FSM_GTID_MAX] = "";
	uint64_t lost_count = given_up(k, f, nodes, n, best, lost, received);
	if (lost_count > 0 && defer_to_old_primary(k, st, f, nodes, n, best, lost_count))
		return;
	LOGI(k, "candidate-chosen", "failover=%llu candidate=%s why=\"%s\" lost=%llu",
	     (unsigned long long)f->id, nodes[best].name, why, (unsigned long long)lost_count);
	adv.phase = HA_FO_PROMOTING;
	adv.candidate = nodes[best].id;
	adv.received_gtid = received;
	if (salvage_possible(k, f))
		adv.salvage = HA_SALVAGE_WANTED;
	adv.lost_gtid = lost;
	adv.lost_count = lost_count;
	adv.detail = why;
	co_advance(k, &adv);
}

/* PROMOTING, the candidate not writable yet: has it failed (superseded), is a salvage to be
 * recorded, is its relay log short (replaced, or the gap recorded), has a ceiling been
 * reached — or what it is waited for. */
/* PROMOTING, the candidate still applying what it received: its relay log ended short of
 * what it claimed when chosen (another node that has more takes over in a new failover; when
 * none has, what is missing is gone and recorded as lost rather than waited for for ever), or
 * a ceiling was reached. Returns true when it proposed; otherwise why says what is waited for.
 *
 * "Ended short" is also: everything it received applied, for RELAY_DRAINED_MS, while its IO
 * thread still runs (connected to a restarted old primary whose crash recovery dropped what the
 * candidate had claimed, it streams nothing more). Only on a sample of a running server: one
 * its agent cannot read has no position, which is not an empty one (found by the simulator: a
 * candidate that lost its agent's login was taken for one whose relay log ended at nothing). */
static bool relay_wait(struct ha_core *k, const struct ha_fsm_state *st,
                       const struct ha_failover *f, const Haagent__Health *h,
                       const struct ha_fo_node *cv, const char *cname, char *why, size_t size)
{
	uint64_t now = k->now;
	char lost[HA_FSM_GTID_MAX];
	uint64_t left = ha_core_loss_if_now(k->in, lost, sizeof(lost));
	bool drained = h->db == HAAGENT__DB_STATE__DB_UP && relay_drained(cv);
	if (!drained)
		k->m->drained_since_ms = 0;
	else if (k->m->drained_since_ms == 0)
		k->m->drained_since_ms = now;
	bool exhausted =
	    cv->relay_exhausted || (drained && now - k->m->drained_since_ms >= RELAY_DRAINED_MS);
	if (exhausted && !f->planned) {
		if (shortfall(k, st, f, cv, why, size))
			return true;
		LOGW(k, "failover-relay-short", "failover=%llu why=\"%s\"",
		     (unsigned long long)f->id, why);
		give_up(k, f, lost, left, why);
		return true;
	}
	if (k->cfg->max_apply_wait_ms && now - k->m->phase_seen_ms >= k->cfg->max_apply_wait_ms) {
		snprintf(why, size,
		         "max_apply_wait_ms (%u) reached: %s stops applying its relay log, up to "
		         "%llu transactions given up",
		         k->cfg->max_apply_wait_ms, cname, (unsigned long long)left);
		give_up(k, f, lost, left, why);
		return true;
	}
	char b1[HA_GTID_BRIEF_MAX], b2[HA_GTID_BRIEF_MAX], est[64];
	if (cv->replicating && !cv->sql_running && cv->sql_error[0])
		snprintf(why, size,
		         "%s cannot apply its relay log: its SQL thread stopped on an error (%s); "
		         "%llu transactions to go: fix it, or give them up with haadm failover "
		         "--accept-loss",
		         cname, cv->sql_error, (unsigned long long)left);
	else
		snprintf(why, size,
		         "%s applies its relay log before taking writes: %llu transactions to go%s "
		         "(applied %s, received %s%s); haadm failover --accept-loss gives them up",
		         cname, (unsigned long long)left, estimate(k, left, now, est),
		         ha_gtid_brief(cv->gtid_current, b1), ha_gtid_brief(cv->gtid_io_pos, b2),
		         h->sql_delay ? "; a delayed replica: its MASTER_DELAY is waited out "
		                        "(changing it would discard its relay log)"
		                      : "");
	return false;
}

/* PROMOTING, the candidate not writable yet: has it failed (superseded), is a salvage to be
 * recorded, is its relay log short or a ceiling reached (relay_wait) — or what it waits for. */
static void promoting_wait(struct ha_core *k, const struct ha_fsm_state *st,
                           const struct ha_failover *f, const Haagent__Health *h, bool fresh,
                           const char *cname)
{
	char why[512];
	/* the bounded exit: a candidate that dies is replaced by a new failover (a switchover's
	 * target too: the old primary is fenced by now) */
	if (candidate_failed(k, f, cname, why, sizeof(why))) {
		supersede(k, st, f, "failover-candidate-failed", why);
		return;
	}
	char salvage_wait[700] = "";
	if (f->salvage == HA_SALVAGE_WANTED && !f->accept_loss &&
	    salvage_outcome(k, st, f, salvage_wait, sizeof(salvage_wait)))
		return;
	/* the relay log: waited for, however long, unless a ceiling or an operator says not */
	struct ha_fo_node cv;
	ha_core_node_view(k->in, f->candidate, &cv);
	if (h && fresh && !f->accept_loss && relay_pending(k->in, f, &cv)) {
		if (relay_wait(k, st, f, h, &cv, cname, why, sizeof(why)))
			return;
	} else if (salvage_wait[0]) {
		snprintf(why, sizeof(why), "%s", salvage_wait);
	} else {
		snprintf(why, sizeof(why), "waiting for %s to turn writable (%s)", cname,
		         h && h->action && h->action[0] ? h->action
		                                        : "no report from its agent yet");
	}
	snprintf(k->m->wait, sizeof(k->m->wait), "%s", why);
}

/* PROMOTING, the candidate writable at the epoch: done, with what was really lost. */
static void promoting_done(struct ha_core *k, const struct ha_fsm_state *st,
                           const struct ha_failover *f, const Haagent__Health *h, const char *cname)
{
	struct ha_fo_advance adv = {.id = f->id, .unix_ms = k->unix_ms};
	const struct ha_member *o = ha_fsm_member(st, f->old_primary);
	char detail[256];
	char lost[HA_FSM_GTID_MAX] = "";
	uint64_t lost_count = f->lost_count;
	if (f->accept_loss) {
		/* what was given up at most, less what the candidate applied before it
		 * stopped: the truth */
		struct ha_gtid_pos upto, cur, miss;
		const char *took =
		    h->promoted_gtid && h->promoted_gtid[0] ? h->promoted_gtid : h->gtid_current;
		if (ha_gtid_parse(f->lost_gtid, &upto, NULL) == 0 &&
		    ha_gtid_parse(took, &cur, NULL) == 0) {
			ha_gtid_missing_from(&upto, &cur, &miss, NULL);
			ha_gtid_format(&miss, lost, sizeof(lost));
			lost_count = ha_gtid_count_missing(&upto, &cur);
		}
		adv.lost_gtid = lost;
		adv.lost_count = lost_count;
	}
	snprintf(detail, sizeof(detail), "%s writable at epoch %llu; lost %llu transactions", cname,
	         (unsigned long long)f->epoch, (unsigned long long)lost_count);
	LOGI(k, f->planned ? "switchover-done" : "failover-done", "failover=%llu %s",
	     (unsigned long long)f->id, detail);
	adv.phase = HA_FO_DONE;
	adv.detail = detail;
	co_advance(k, &adv);
	char epoch[24];
	snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)f->epoch);
	co_run_hook(k, HA_CORE_HOOK_POST_FAILOVER, o ? o->name : "", cname, epoch);
	return;
}

void co_phase_promoting(struct ha_core *k, const struct ha_fsm_state *st,
                        const struct ha_failover *f)
{
	bool fresh;
	const Haagent__Health *h = health_of(k->in, f->candidate, &fresh);
	const struct ha_member *c = ha_fsm_member(st, f->candidate);
	const char *cname = c ? c->name : "?";
	if (!h || h->writable_epoch != f->epoch)
		promoting_wait(k, st, f, h, fresh, cname);
	else
		promoting_done(k, st, f, h, cname);
}
