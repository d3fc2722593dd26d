/* The MariaDB model: replication streams, probes and the agent's actions (model.h). */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/gtid.h"
#include "sim.h"

/* replication throughput per 10 ms step and domain */
#define IO_PER_STEP  64
#define SQL_PER_STEP 5

void sim_list_push(struct sim_list *l, uint32_t v)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			abort();
	}
	l->v[l->n++] = v;
}

void sim_db_free(struct sim_db *d)
{
	for (int i = 0; i < SIM_MAX_DOMAINS; i++) {
		free(d->hist[i].v);
		free(d->relay[i].v);
	}
	memset(d, 0, sizeof(*d));
}

static size_t dom_len(const struct sim_db *d, unsigned dom, bool with_relay)
{
	return d->hist[dom].n + (with_relay ? d->relay[dom].n : 0);
}

static uint32_t dom_at(const struct sim_db *d, unsigned dom, size_t k)
{
	return k < d->hist[dom].n ? d->hist[dom].v[k] : d->relay[dom].v[k - d->hist[dom].n];
}

void sim_pos_text(const struct sim_world *w, const struct sim_db *d, bool with_relay, char *out,
                  size_t size)
{
	size_t off = 0;
	out[0] = '\0';
	for (unsigned dom = 0; dom < w->n_domains; dom++) {
		size_t n = dom_len(d, dom, with_relay);
		if (n == 0)
			continue;
		uint32_t last = dom_at(d, dom, n - 1);
		int k =
		    snprintf(out + off, size - off, "%s%u-%u-%llu", off ? "," : "", dom,
		             w->writes[last].server_id, (unsigned long long)(w->seq_base[dom] + n));
		if (k < 0 || (size_t)k >= size - off)
			abort(); /* the buffers are sized for every position that parses */
		off += (size_t)k;
	}
}

/* sim_pos_text through d's cache (see struct sim_pos_cache). */
static const char *pos_text_cached(const struct sim_world *w, struct sim_db *d, bool with_relay)
{
	struct sim_pos_cache *c = &d->pos_cache[with_relay];
	bool same = c->valid;
	for (unsigned dom = 0; dom < w->n_domains; dom++) {
		size_t n = dom_len(d, dom, with_relay);
		uint32_t last = n ? dom_at(d, dom, n - 1) : 0;
		if (c->n[dom] != n || c->last[dom] != last) {
			c->n[dom] = (uint32_t)n;
			c->last[dom] = last;
			same = false;
		}
	}
	if (!same)
		sim_pos_text(w, d, with_relay, c->text, sizeof(c->text));
	c->valid = true;
	return c->text;
}

bool sim_prefix_of(const struct sim_db *d, bool with_relay, const struct sim_db *m)
{
	for (unsigned dom = 0; dom < SIM_MAX_DOMAINS; dom++) {
		size_t n = dom_len(d, dom, with_relay);
		if (n == 0)
			continue;
		if (n > m->hist[dom].n || dom_at(d, dom, n - 1) != m->hist[dom].v[n - 1])
			return false;
	}
	return true;
}

bool sim_has(const struct sim_world *w, const struct sim_db *d, uint32_t wid)
{
	const struct sim_write *x = &w->writes[wid];
	return d->hist[x->dom].n > x->idx && d->hist[x->dom].v[x->idx] == wid;
}

static void relay_clear(struct sim_db *d)
{
	for (int i = 0; i < SIM_MAX_DOMAINS; i++)
		d->relay[i].n = 0;
}

static size_t relay_total(const struct sim_db *d)
{
	size_t n = 0;
	for (int i = 0; i < SIM_MAX_DOMAINS; i++)
		n += d->relay[i].n;
	return n;
}

/* Can d's IO thread stream from m, as MariaDB decides it by GTID: in every domain m has at
 * least as many transactions, and the one at d's position has the same server id (the same
 * GTID; whether it is the same transaction, MariaDB cannot tell). */
static bool gtid_follows(const struct sim_world *w, const struct sim_db *d, const struct sim_db *m)
{
	for (unsigned dom = 0; dom < w->n_domains; dom++) {
		size_t n = dom_len(d, dom, true);
		if (n == 0)
			continue;
		if (n > m->hist[dom].n || w->writes[dom_at(d, dom, n - 1)].server_id !=
		                              w->writes[m->hist[dom].v[n - 1]].server_id)
			return false;
	}
	return true;
}

void sim_replicate(struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_db *d = &w->db[i];
		if (d->st != SIM_DB_RUN)
			continue;
		if (d->master >= 0 && d->io_on && !d->io_err) {
			struct sim_db *m = &w->db[d->master];
			bool reach = sim_link(w, i, d->master) && m->st != SIM_DB_DOWN;
			if (!reach)
				d->io_connected = false;
			else if (m->st == SIM_DB_RUN) {
				d->io_connected = true;
				d->last_rx_ms = w->now; /* events or heartbeats */
				if (!gtid_follows(w, d, m)) {
					d->io_err = true;
					d->io_connected = false;
					snprintf(d->io_error, sizeof(d->io_error),
					         "Got fatal error 1236 from master: the slave has "
					         "transactions the master lacks");
				} else {
					for (unsigned dom = 0; dom < w->n_domains; dom++) {
						size_t have = dom_len(d, dom, true);
						for (size_t k = 0;
						     k < IO_PER_STEP && have + k < m->hist[dom].n;
						     k++)
							sim_list_push(&d->relay[dom],
							              m->hist[dom].v[have + k]);
					}
				}
			}
		}
		if (d->sql_on && w->now >= d->sql_stall_until) {
			for (unsigned dom = 0; dom < w->n_domains; dom++) {
				struct sim_list *r = &d->relay[dom];
				size_t k = r->n < SQL_PER_STEP ? r->n : SQL_PER_STEP;
				for (size_t j = 0; j < k; j++)
					sim_list_push(&d->hist[dom], r->v[j]);
				memmove(r->v, r->v + k, (r->n - k) * sizeof(*r->v));
				r->n -= k;
			}
		}
	}
}

void sim_probe(struct sim_world *w, int i, struct ha_probe_sample *s)
{
	struct sim_db *d = &w->db[i];
	const struct ha_config *c = &w->ag[i].cfg;
	memset(s, 0, offsetof(struct ha_probe_sample, binlog_index));
	snprintf(s->instance, sizeof(s->instance), "%032d", i + 1); /* one datadir each */
	s->started_ms = w->now;
	s->sampled_unix_ms = w->now + 1700000000000ull;
	s->lag_seconds = -1;
	if (d->st == SIM_DB_DOWN) {
		s->db = HA_DB_DOWN;
		s->db_errno = 2002;
		snprintf(s->db_error, sizeof(s->db_error), "Can't connect to server on '%s' (111)",
		         c->nodes[i].address);
		return;
	}
	if (d->st == SIM_DB_HUNG) {
		s->db = HA_DB_HUNG;
		snprintf(s->db_error, sizeof(s->db_error), "probe timed out");
		return;
	}
	if (d->auth_broken) {
		s->db = HA_DB_UNUSABLE;
		s->db_errno = 1045;
		snprintf(s->db_error, sizeof(s->db_error),
		         "Access denied for user 'haagent'@'%s' (using password: YES)",
		         c->nodes[i].address);
		return;
	}
	s->db = HA_DB_UP;
	s->uptime_s = (w->now - d->started_at) / 1000;
	s->uptime_known = true;
	s->read_only = d->read_only;
	s->server_id = d->server_id;
	const char *cur = pos_text_cached(w, d, false);
	size_t cur_len = strlen(cur) + 1; /* fits: the cache's buffer has the sample's size */
	memcpy(s->gtid_current, cur, cur_len);
	memcpy(s->gtid_binlog, cur, cur_len);
	memcpy(s->gtid_slave, cur, cur_len);
	snprintf(s->version, sizeof(s->version), "10.11.6-MariaDB-sim");
	snprintf(s->binlog_index, sizeof(s->binlog_index), "/sim/%s/binlog.index",
	         sim_node_name(i));
	snprintf(s->datadir, sizeof(s->datadir), "/sim/%s/", sim_node_name(i));
	if (d->master < 0)
		return;
	const struct ha_node_conf *m = &c->nodes[d->master];
	s->replicating = true;
	snprintf(s->master_host, sizeof(s->master_host), "%s", m->address);
	s->master_port = m->db_port;
	s->io_running = d->io_on && !d->io_err && d->io_connected;
	s->sql_running = d->sql_on;
	snprintf(s->io_state, sizeof(s->io_state), "%s",
	         s->io_running            ? "Yes"
	         : d->io_on && !d->io_err ? "Connecting"
	                                  : "No");
	if (d->io_err)
		snprintf(s->last_error, sizeof(s->last_error), "%s", d->io_error);
	size_t pending = relay_total(d);
	if (s->io_running && s->sql_running)
		s->lag_seconds = (int64_t)(pending / (SQL_PER_STEP * 100));
	s->relay_exhausted = pending == 0 && !s->io_running;
	const char *io = pos_text_cached(w, d, true);
	memcpy(s->gtid_io_pos, io, strlen(io) + 1);
	s->master_rx_age_ms = w->now - d->last_rx_ms;
}

static int node_by_address(const struct sim_world *w, const char *address)
{
	for (int i = 0; i < SIM_NODES; i++)
		if (!strcmp(w->ag[0].cfg.nodes[i].address, address))
			return i;
	return -1;
}

unsigned sim_action_ms(struct sim_world *w, int i, const struct ha_action_req *q)
{
	if (q->kind != HA_ACT_SALVAGE && w->db[i].st == SIM_DB_HUNG)
		return 3000; /* its read timeout */
	switch (q->kind) {
	case HA_ACT_CATCHUP:
		return q->wait_ms < 100 ? q->wait_ms : 100;
	case HA_ACT_SALVAGE:
		return (unsigned)sim_between(&w->rng, 200, 900);
	default:
		return (unsigned)sim_between(&w->rng, 5, 60);
	}
}

/* The clients whose writes wait on server i lose their sessions: errors, not acknowledgements. */
static void end_sessions(struct sim_world *w, int i)
{
	for (size_t k = w->first_open; k < w->n_writes; k++) {
		struct sim_write *x = &w->writes[k];
		if (x->node == i && !x->acked && !x->failed) {
			x->failed = true;
		}
	}
	w->db[i].pending = 0;
}

static void salvage(struct sim_world *w, int i, const struct ha_action_req *q,
                    struct ha_action_result *r)
{
	struct sim_db *old = &w->db[i];
	int c = node_by_address(w, q->target_host);
	if (old->st != SIM_DB_DOWN) {
		r->rc = -1;
		snprintf(r->msg, sizeof(r->msg), "the local server is running again");
		return;
	}
	if (c < 0 || w->db[c].st != SIM_DB_RUN || w->db[c].auth_broken || !sim_link(w, i, c)) {
		r->rc = -1;
		snprintf(r->msg, sizeof(r->msg), "cannot reach the new primary");
		return;
	}
	struct sim_db *d = &w->db[c];
	d->io_on = false;
	d->io_connected = false;
	/* its relay log applied first, then what the binlog has beyond it */
	for (unsigned dom = 0; dom < w->n_domains; dom++) {
		for (size_t j = 0; j < d->relay[dom].n; j++)
			sim_list_push(&d->hist[dom], d->relay[dom].v[j]);
		d->relay[dom].n = 0;
	}
	bool complete = true;
	struct sim_db got = {0};
	for (unsigned dom = 0; dom < w->n_domains; dom++) {
		size_t n = d->hist[dom].n;
		if (n > old->hist[dom].n)
			continue; /* the candidate is ahead here */
		if (n && d->hist[dom].v[n - 1] != old->hist[dom].v[n - 1]) {
			complete = false;
			continue;
		}
		for (size_t k = n; k < old->hist[dom].n; k++) {
			sim_list_push(&d->hist[dom], old->hist[dom].v[k]);
			r->salvaged_count++;
		}
		for (size_t k = 0; k < d->hist[dom].n; k++)
			sim_list_push(&got.hist[dom], d->hist[dom].v[k]);
	}
	sim_pos_text(w, &got, false, r->gtid, sizeof(r->gtid));
	sim_db_free(&got);
	r->salvage_complete = complete;
	snprintf(r->msg, sizeof(r->msg), "applied %llu transactions%s",
	         (unsigned long long)r->salvaged_count, complete ? "" : " (some domains diverged)");
}

static void act_fence(struct sim_world *w, int i, struct ha_action_result *r)
{
	struct sim_db *d = &w->db[i];
	d->read_only = true;
	end_sessions(w, i);
	sim_pos_text(w, d, false, r->gtid, sizeof(r->gtid));
	snprintf(r->msg, sizeof(r->msg), "read_only on");
}

static void act_promote(struct sim_world *w, int i, const struct ha_action_req *q,
                        struct ha_action_result *r)
{
	struct sim_db *d = &w->db[i];
	d->sql_on = false;
	if (!q->writable) {
		snprintf(r->msg, sizeof(r->msg), "SQL thread stopped");
		return;
	}
	sim_pos_text(w, d, false, r->gtid, sizeof(r->gtid));
	d->read_only = false;
	r->made_writable = true;
	snprintf(r->msg, sizeof(r->msg), "writable at epoch %llu", (unsigned long long)q->epoch);
}

static void act_detach(struct sim_db *d, struct ha_action_result *r)
{
	d->io_on = d->sql_on = d->io_err = d->io_connected = false;
	d->master = -1;
	relay_clear(d);
	snprintf(r->msg, sizeof(r->msg), "replication removed");
}

static void act_stop_io(struct sim_db *d, struct ha_action_result *r)
{
	d->io_on = false;
	d->io_connected = false;
	snprintf(r->msg, sizeof(r->msg), "IO thread stopped");
}

static void act_catchup(struct sim_world *w, int i, const struct ha_action_req *q,
                        struct ha_action_result *r)
{
	struct sim_db *d = &w->db[i];
	if (q->start_sql)
		d->sql_on = true;
	struct ha_gtid_pos want, cur;
	sim_pos_text(w, d, false, r->gtid, sizeof(r->gtid));
	r->reached = ha_gtid_parse(q->gtid, &want, NULL) == 0 &&
	             ha_gtid_parse(r->gtid, &cur, NULL) == 0 && ha_gtid_contains(&cur, &want);
	snprintf(r->msg, sizeof(r->msg), "%s", r->reached ? "reached" : "still applying");
}

/* divergence as MariaDB sees it, by GTID (db/action.c): the same sequence number from the same
 * server is the same transaction to it, even when a crashed server's recovery dropped one and it
 * wrote another under that number. What node i has that node t lacks goes to r->errant. */
static bool diverged_by_gtid(struct sim_world *w, int i, int t, struct ha_action_result *r)
{
	char *lt = malloc(HA_GTID_TEXT_MAX), *tt = malloc(HA_GTID_TEXT_MAX);
	struct ha_gtid_pos lp, tp, miss;
	if (lt == NULL || tt == NULL)
		abort();
	sim_pos_text(w, &w->db[i], false, lt, HA_GTID_TEXT_MAX);
	sim_pos_text(w, &w->db[t], false, tt, HA_GTID_TEXT_MAX);
	if (ha_gtid_parse(lt, &lp, NULL) || ha_gtid_parse(tt, &tp, NULL))
		abort();
	bool diverged = ha_gtid_missing_from(&lp, &tp, &miss, NULL) > 0;
	if (diverged)
		ha_gtid_format(&miss, r->errant, sizeof(r->errant));
	free(lt);
	free(tt);
	return diverged;
}

static void act_repoint(struct sim_world *w, int i, const struct ha_action_req *q,
                        struct ha_action_result *r)
{
	struct sim_db *d = &w->db[i];
	int t = node_by_address(w, q->target_host);
	if (t < 0 || t == i || w->db[t].st != SIM_DB_RUN || w->db[t].auth_broken ||
	    !sim_link(w, i, t)) {
		r->rc = -1;
		snprintf(r->msg, sizeof(r->msg), "new primary: cannot connect");
		return;
	}
	if (diverged_by_gtid(w, i, t, r)) {
		r->diverged = true; /* replication left as it was (db/action.c) */
		snprintf(r->msg, sizeof(r->msg), "diverged");
		return;
	}
	relay_clear(d);
	/* START SLAVE: the new primary refuses a position it does not have (1236): no
	 * replication is left configured and the node is diverged (db/action.c) */
	if (!gtid_follows(w, d, &w->db[t])) {
		d->master = -1;
		d->io_on = d->sql_on = d->io_err = d->io_connected = false;
		r->diverged = true;
		sim_pos_text(w, d, false, r->errant, sizeof(r->errant));
		snprintf(r->msg, sizeof(r->msg), "diverged: 1236 from %s", sim_node_name(t));
		return;
	}
	d->master = t;
	d->io_on = d->sql_on = true;
	d->io_err = d->io_connected = false;
	d->io_error[0] = '\0';
	snprintf(r->msg, sizeof(r->msg), "replicating from %s", sim_node_name(t));
}

void sim_action_end(struct sim_world *w, int i, const struct ha_action_req *q,
                    struct ha_action_result *r)
{
	struct sim_db *d = &w->db[i];
	memset(r, 0, sizeof(*r));
	r->kind = q->kind;
	r->epoch = q->epoch;
	if (q->kind == HA_ACT_SALVAGE) {
		salvage(w, i, q, r);
		return;
	}
	if (d->st != SIM_DB_RUN || d->auth_broken) {
		r->rc = -1;
		snprintf(r->msg, sizeof(r->msg), "%s",
		         d->st == SIM_DB_DOWN   ? "Can't connect to server (111)"
		         : d->st == SIM_DB_HUNG ? "Lost connection to server during query"
		                                : "Access denied for user 'haagent'");
		return;
	}
	switch (q->kind) {
	case HA_ACT_FENCE:
		act_fence(w, i, r);
		break;
	case HA_ACT_PROMOTE:
		act_promote(w, i, q, r);
		break;
	case HA_ACT_DETACH:
		act_detach(d, r);
		break;
	case HA_ACT_STOP_IO:
		act_stop_io(d, r);
		break;
	case HA_ACT_CATCHUP:
		act_catchup(w, i, q, r);
		break;
	case HA_ACT_REPOINT:
		act_repoint(w, i, q, r);
		break;
	case HA_ACT_SALVAGE:
		break;
	}
}

void sim_db_crash(struct sim_world *w, int i)
{
	struct sim_db *d = &w->db[i];
	if (d->st == SIM_DB_DOWN)
		return;
	/* what waited for an acknowledgement is binlogged, not committed: recovery drops it */
	for (size_t k = w->n_writes; k-- > w->first_open;) {
		struct sim_write *x = &w->writes[k];
		if (x->node == i && !x->acked && !x->failed) {
			x->failed = true;
			struct sim_list *h = &d->hist[x->dom];
			if (h->n == (size_t)x->idx + 1 && h->v[x->idx] == k)
				h->n--; /* at the tail (an acknowledged write never follows it) */
		}
	}
	d->pending = 0;
	d->st = SIM_DB_DOWN;
	d->crashed = true;
	d->crashed_at = w->now;
	d->io_connected = false;
}

void sim_db_start(struct sim_world *w, int i)
{
	struct sim_db *d = &w->db[i];
	/* Crash recovery as a semi-sync replica (init-rpl-role=SLAVE) may drop the last
	 * transactions this server wrote, acknowledged ones included (measured: a primary killed
	 * 2 ms after acknowledging a write restarted without it, which both replicas had). */
	if (d->crashed) {
		for (unsigned dom = 0; dom < w->n_domains; dom++) {
			struct sim_list *h = &d->hist[dom];
			/* only its own commits of the last moments (not yet durable in the
			 * engine); one of its writes that came back by replication long after
			 * was applied durably (found by the simulator's own frozen-crash, which
			 * otherwise dropped a write applied 20 s before the crash) */
			for (uint64_t k = sim_between(&w->rng, 0, 2);
			     k > 0 && h->n > 0 && w->writes[h->v[h->n - 1]].node == i &&
			     d->crashed_at - w->writes[h->v[h->n - 1]].at_ms <= 1000;
			     k--)
				h->n--;
		}
		d->crashed = false;
	}
	d->st = SIM_DB_RUN;
	d->started_at = w->now;
	d->read_only = true; /* read-only=ON in its configuration */
	d->io_connected = false;
	d->hung_since = 0;
	d->restart_at = 0;
	if (d->master >= 0) {
		d->io_on = d->sql_on = true;
		d->io_err = false;
	}
}
