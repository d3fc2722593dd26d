/* hasim: the deterministic simulator (tests/sim/README.md). Each seed is one schedule: three
 * nodes whose agents run the real decision code (node/decide.c, and coord/core.c on the leader)
 * and the real replicated state machine (consensus/fsm.c) over a model of MariaDB replication,
 * raft and the network, with clients writing and faults injected one at a time. The invariants
 * are checked on every 10 ms step; the first one broken ends the schedule with its seed, which
 * replays it exactly (--seed N --trace). */
#include "sim.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/gtid.h"
#include "common/log.h"
#include "coord/failover.h"

/* ---- randomness: splitmix64, one stream per schedule ---- */

uint64_t sim_rand(struct sim_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t sim_between(struct sim_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + sim_rand(r) % (hi - lo + 1);
}

bool sim_chance(struct sim_rng *r, unsigned percent)
{
	return sim_rand(r) % 100 < percent;
}

static const char *const names[SIM_NODES] = {"node1", "node2", "node3"};

const char *sim_node_name(int i)
{
	return names[i];
}

bool sim_link(const struct sim_world *w, int a, int b)
{
	return a == b || !w->cut[a][b];
}

static const char *const fault_names[F_KINDS] = {
    "none",           "kill-db",       "freeze-db",        "auth-lost",  "kill-agent",
    "freeze-agent",   "host-lost",     "partition",        "msg-loss",   "msg-delay",
    "ddl-then-crash", "mid-promotion", "frozen-partition", "clock-step", "restart-agents"};

static void trace(struct sim_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace(struct sim_world *w, const char *fmt, ...)
{
	if (!w->trace)
		return;
	va_list ap;
	va_start(ap, fmt);
	printf("%8.2f ", (double)w->now / 1000.0);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static void violate(struct sim_world *w, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void violate(struct sim_world *w, const char *what, const char *fmt, ...)
{
	if (w->violation)
		return;
	w->violation = what;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->violation_detail, sizeof(w->violation_detail), fmt, ap);
	va_end(ap);
	trace(w, "VIOLATION %s: %s", what, w->violation_detail);
}

/* the decision code's log lines, in a trace */
static void code_log(void *ctx, int level, const char *event, const char *line)
{
	const struct sim_agent *a = ctx;
	(void)level;
	printf("         %s %s %s\n", a->cfg.nodes[a->cfg.self].name, event, line);
}

/* ---- set-up ---- */

static void config(struct sim_world *w, int i)
{
	struct ha_config *c = &w->ag[i].cfg;
	ha_config_defaults(c);
	snprintf(c->cluster, sizeof(c->cluster), "sim");
	c->n_nodes = SIM_NODES;
	c->self = i;
	snprintf(c->node, sizeof(c->node), "%s", names[i]);
	snprintf(c->data_dir, sizeof(c->data_dir), "/sim/%s/agent", names[i]);
	snprintf(c->db_stop_command, sizeof(c->db_stop_command), "sim-stop");
	snprintf(c->db_pid_file, sizeof(c->db_pid_file), "/sim/%s/mariadbd.pid", names[i]);
	if (w->fence_hook)
		snprintf(c->hook_fence, sizeof(c->hook_fence), "sim-stonith");
	for (int j = 0; j < SIM_NODES; j++) {
		struct ha_node_conf *n = &c->nodes[j];
		n->id = (uint32_t)j + 1;
		snprintf(n->name, sizeof(n->name), "%s", names[j]);
		snprintf(n->address, sizeof(n->address), "127.0.0.%d", 11 + j);
		n->raft_port = 7100;
		n->rpc_port = 7200;
		n->db_port = 3306;
		n->priority = 100;
	}
}

static void agent_reset(struct sim_world *w, int i)
{
	struct sim_agent *a = &w->ag[i];
	memset(a->mem, 0, sizeof(*a->mem));
	memset(a->co, 0, sizeof(*a->co));
	for (int j = 0; j < SIM_NODES; j++) {
		if (a->rep[j].r)
			haagent__health_report__free_unpacked(a->rep[j].r, NULL);
		memset(&a->rep[j], 0, sizeof(a->rep[j]));
	}
	free(a->prop);
	a->prop = NULL;
	a->proposing = false;
	a->have_sample = false;
	a->busy = a->cancel = false;
	a->leading = a->ready = false;
	a->leader_id = 0;
	a->last_heard_ms = w->now;
	a->last_ack_ms = 0;
	a->kick = false;
	a->stonith_at_ms = 0;
	a->next_probe_ms = w->now + sim_between(&w->rng, 0, 250);
	a->next_tick_ms = w->now + sim_between(&w->rng, 0, 250);
	a->vote_timeout_ms = sim_between(&w->rng, 300, 600);
}

static void world_init(struct sim_world *w, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->seed = seed;
	w->rng.s = seed;
	w->now = 1000000;
	/* one domain usually; sometimes many, with long sequence numbers (multi-source) */
	w->n_domains = sim_chance(&w->rng, 25) ? (unsigned)sim_between(&w->rng, 30, 40) : 1;
	for (unsigned d = 0; d < w->n_domains; d++)
		w->seq_base[d] = w->n_domains > 1 ? sim_between(&w->rng, 1000000, 9000000) : 0;
	w->fence_hook = sim_chance(&w->rng, 30);
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_db *d = &w->db[i];
		d->st = SIM_DB_RUN;
		d->read_only = true;
		d->server_id = (unsigned)i + 1;
		d->master = i == 0 ? -1 : 0; /* node1 the primary, as deployed */
		d->io_on = d->sql_on = i != 0;
		struct sim_agent *a = &w->ag[i];
		a->alive = true;
		config(w, i);
		a->mem = calloc(1, sizeof(*a->mem));
		a->co = calloc(1, sizeof(*a->co));
		a->sample = calloc(1, sizeof(*a->sample));
		a->act = calloc(1, sizeof(*a->act));
		a->fsm = calloc(1, sizeof(*a->fsm));
		if (!a->mem || !a->co || !a->sample || !a->act || !a->fsm)
			abort();
		ha_fsm_init(a->fsm);
		agent_reset(w, i);
	}
	w->next_fault_at = w->now + sim_between(&w->rng, 3000, 8000);
}

static void world_free(struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_agent *a = &w->ag[i];
		agent_reset(w, i);
		free(a->mem);
		free(a->co);
		free(a->sample);
		free(a->act);
		free(a->fsm);
		sim_db_free(&w->db[i]);
	}
	for (size_t k = 0; k < w->log_n; k++)
		free(w->log[k].buf);
	free(w->log);
	for (size_t k = 0; k < w->n_msgs; k++)
		free(w->msgs[k].buf);
	free(w->msgs);
	free(w->writes);
}

/* ---- raft, as a model: terms, pre-vote, check-quorum, one committed log ---- */

static bool running(const struct sim_world *w, int i)
{
	return w->ag[i].alive && !w->ag[i].frozen;
}

static bool reach(const struct sim_world *w, int i, int j)
{
	return running(w, j) && sim_link(w, i, j);
}

static void apply_log(struct sim_world *w, int i)
{
	struct sim_agent *a = &w->ag[i];
	bool any = false;
	while (a->applied < w->log_n) {
		struct ha_err e = {0};
		ha_fsm_apply(a->fsm, w->log[a->applied].buf, w->log[a->applied].len, &e);
		a->applied++;
		any = true;
	}
	if (any)
		a->kick = true; /* on_applied: a tick now */
}

static void step_down(struct sim_world *w, int i, const char *why)
{
	struct sim_agent *a = &w->ag[i];
	if (!a->leading)
		return;
	trace(w, "%s steps down (%s)", names[i], why);
	a->leading = a->ready = false;
	if (a->proposing) { /* RAFT_LEADERSHIPLOST: not committed, in this model */
		free(a->prop);
		a->prop = NULL;
		a->proposing = false;
	}
	memset(a->co, 0, sizeof(*a->co));
}

static void raft_step(struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_agent *a = &w->ag[i];
		if (!running(w, i) || !a->leading)
			continue;
		unsigned votes = 1;
		for (int j = 0; j < SIM_NODES; j++) {
			if (j == i || !reach(w, i, j))
				continue;
			struct sim_agent *b = &w->ag[j];
			if (b->term > a->term) {
				a->term = b->term;
				step_down(w, i, "a higher term");
				break;
			}
			votes++;
			b->term = a->term;
			b->leader_id = (uint32_t)i + 1;
			b->last_heard_ms = w->now;
			if (b->leading && j != i)
				step_down(w, j, "another leader in its term");
			apply_log(w, j);
		}
		if (!a->leading)
			continue;
		if (votes * 2 > SIM_NODES)
			a->last_majority_ms = w->now;
		else if (w->now - a->last_majority_ms > a->cfg.election_timeout_ms)
			step_down(w, i, "no majority (check-quorum)");
		if (a->leading && !a->ready && w->now >= a->ready_at_ms)
			a->ready = true; /* the barrier committed */
	}
	/* elections: a follower that heard no leader for its timeout, with a pre-vote majority */
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_agent *a = &w->ag[i];
		if (!running(w, i) || a->leading || w->now - a->last_heard_ms < a->vote_timeout_ms)
			continue;
		unsigned votes = 1;
		for (int j = 0; j < SIM_NODES; j++) {
			if (j == i || !reach(w, i, j))
				continue;
			struct sim_agent *b = &w->ag[j];
			bool heard =
			    b->leading || w->now - b->last_heard_ms < b->cfg.election_timeout_ms;
			if (!heard && b->applied <= a->applied)
				votes++;
		}
		a->vote_timeout_ms = sim_between(&w->rng, 300, 600);
		a->last_heard_ms = w->now;
		if (votes * 2 <= SIM_NODES)
			continue;
		w->max_term++;
		if (a->term >= w->max_term)
			w->max_term = a->term + 1;
		a->term = w->max_term;
		a->leading = true;
		a->ready = false;
		a->leader_id = (uint32_t)i + 1;
		a->lead_since_ms = a->last_majority_ms = w->now;
		a->ready_at_ms = w->now + 20;
		memset(a->co, 0, sizeof(*a->co));
		apply_log(w, i);
		trace(w, "%s leads, term %llu", names[i], (unsigned long long)a->term);
	}
}

/* A proposal commits once its leader still leads with a majority; every node that hears the
 * leader applies it (raft_step). The proposer learns the FSM's result. */
static void commit_step(struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_agent *a = &w->ag[i];
		if (!a->proposing || !running(w, i) || w->now < a->prop_at_ms)
			continue;
		if (!a->leading || w->now - a->last_majority_ms > 0)
			continue; /* waits: commits when it hears a majority, or fails stepping down
			           */
		if (w->log_n == w->log_cap) {
			w->log_cap = w->log_cap ? 2 * w->log_cap : 256;
			w->log = realloc(w->log, w->log_cap * sizeof(*w->log));
			if (w->log == NULL)
				abort();
		}
		w->log[w->log_n].buf = a->prop;
		w->log[w->log_n].len = a->prop_len;
		w->log_n++;
		a->prop = NULL;
		a->proposing = false;
		/* the leader applies it first: its result is the proposal's */
		struct ha_err e = {0};
		int rc = ha_fsm_apply(a->fsm, w->log[a->applied].buf, w->log[a->applied].len, &e);
		a->applied++;
		a->kick = true;
		if (rc < 0) {
			w->rejects++;
			trace(w, "fsm-reject: %s", e.msg);
			ha_core_refused(a->co, a->prop_fo_id, w->now);
		}
		for (int j = 0; j < SIM_NODES; j++)
			if (j != i && reach(w, i, j))
				apply_log(w, j);
	}
}

/* ---- messages between agents ---- */

static void send_msg(struct sim_world *w, int type, int from, int to, uint8_t *buf, size_t len)
{
	if (!sim_link(w, from, to) || (w->loss_pct && sim_chance(&w->rng, w->loss_pct))) {
		free(buf);
		return;
	}
	if (w->n_msgs == w->cap_msgs) {
		w->cap_msgs = w->cap_msgs ? 2 * w->cap_msgs : 64;
		w->msgs = realloc(w->msgs, w->cap_msgs * sizeof(*w->msgs));
		if (w->msgs == NULL)
			abort();
	}
	uint64_t delay = sim_between(&w->rng, 1, 5 + w->delay_max_ms);
	w->msgs[w->n_msgs++] = (struct sim_msg){
	    .type = type, .from = from, .to = to, .at_ms = w->now + delay, .buf = buf, .len = len};
}

static void store_report(struct sim_world *w, int at, Haagent__HealthReport *r)
{
	struct sim_agent *a = &w->ag[at];
	int i = (int)r->node_id - 1;
	if (i < 0 || i >= SIM_NODES || r->health == NULL) {
		haagent__health_report__free_unpacked(r, NULL);
		return;
	}
	if (a->rep[i].r)
		haagent__health_report__free_unpacked(a->rep[i].r, NULL);
	a->rep[i].r = r;
	a->rep[i].recv_ms = w->now;
	if (r->health->db == HAAGENT__DB_STATE__DB_UP && r->health->gtid_binlog)
		snprintf(a->rep[i].last_binlog, sizeof(a->rep[i].last_binlog), "%s",
		         r->health->gtid_binlog);
}

static void deliver(struct sim_world *w, struct sim_msg *m)
{
	struct sim_agent *b = &w->ag[m->to];
	if (m->type == 1) {
		Haagent__HealthReport *r = haagent__health_report__unpack(NULL, m->len, m->buf);
		if (r == NULL)
			abort();
		uint64_t sent = r->sent_mono_ms;
		store_report(w, m->to, r);
		if (b->leading && b->ready) {
			Haagent__HealthAck ack = HAAGENT__HEALTH_ACK__INIT;
			ack.leader_id = (uint32_t)m->to + 1;
			ack.term = b->term;
			ack.sent_mono_ms = sent;
			size_t n = haagent__health_ack__get_packed_size(&ack);
			uint8_t *buf = malloc(n ? n : 1);
			haagent__health_ack__pack(&ack, buf);
			b->rep[m->from].ack_sent_ms = w->now;
			send_msg(w, 2, m->to, m->from, buf, n);
		}
	} else {
		Haagent__HealthAck *ack = haagent__health_ack__unpack(NULL, m->len, m->buf);
		if (ack == NULL)
			abort();
		if (ack->leader_id == b->leader_id && ack->term == b->term) {
			uint64_t from = ack->sent_mono_ms <= w->now ? ack->sent_mono_ms : w->now;
			if (from > b->last_ack_ms)
				b->last_ack_ms = from;
		}
		haagent__health_ack__free_unpacked(ack, NULL);
	}
}

static void net_step(struct sim_world *w)
{
	size_t keep = 0;
	for (size_t k = 0; k < w->n_msgs; k++) {
		struct sim_msg *m = &w->msgs[k];
		/* a frozen or dead receiver: TCP holds it (frozen) or drops it (dead) */
		if (m->at_ms <= w->now && w->ag[m->to].alive && !w->ag[m->to].frozen) {
			if (sim_link(w, m->from, m->to))
				deliver(w, m);
			free(m->buf);
		} else if (!w->ag[m->to].alive) {
			free(m->buf);
		} else {
			w->msgs[keep++] = *m;
		}
	}
	w->n_msgs = keep;
}

/* ---- agents ---- */

/* ha_agent_lease_held: the real rule (ha_node_lease_held) on the model's raft view */
static bool lease_held(const struct sim_world *w, int i)
{
	const struct sim_agent *a = &w->ag[i];
	unsigned n = 0;
	for (int j = 0; j < SIM_NODES; j++)
		if (j == i || (a->rep[j].r && w->now - a->rep[j].recv_ms <= a->cfg.lease_ms))
			n++;
	struct ha_lease_in l = {.leading = a->leading && a->ready,
	                        .ready_since_ms = a->ready_at_ms,
	                        .reporting = n,
	                        .last_ack_ms = a->last_ack_ms,
	                        .n_nodes = SIM_NODES,
	                        .lease_ms = a->cfg.lease_ms,
	                        .now_ms = w->now};
	return ha_node_lease_held(&l);
}

static void check_promotion(struct sim_world *w, int i, uint64_t epoch);

static void action_step(struct sim_world *w, int i)
{
	struct sim_agent *a = &w->ag[i];
	if (!a->busy || w->now < a->act_end_ms)
		return;
	a->busy = false;
	struct ha_action_result r;
	if (a->cancel) {
		memset(&r, 0, sizeof(r));
		r.kind = a->act->kind;
		r.rc = -1;
		snprintf(r.msg, sizeof(r.msg), "cancelled");
	} else {
		sim_action_end(w, i, a->act, &r);
	}
	a->cancel = false;
	trace(w, "%s action %s: %s%s", names[i], ha_action_name(r.kind), r.rc ? "failed: " : "",
	      r.msg);
	ha_node_done(a->mem, &r, w->now);
	if (r.made_writable)
		check_promotion(w, i, r.epoch);
	a->kick = true; /* ha_probe_now, then a report */
	a->next_probe_ms = w->now;
}

static void stonith(struct sim_world *w, int target);

static void core_step(struct sim_world *w, int i)
{
	struct sim_agent *a = &w->ag[i];
	struct ha_core_report rep[SIM_NODES];
	for (int j = 0; j < SIM_NODES; j++) {
		rep[j].h = a->rep[j].r ? a->rep[j].r->health : NULL;
		rep[j].recv_ms = a->rep[j].recv_ms;
		rep[j].ack_sent_ms = a->rep[j].ack_sent_ms;
		rep[j].last_binlog = a->rep[j].last_binlog;
	}
	struct ha_core_in in = {
	    .cfg = &a->cfg,
	    .st = a->fsm,
	    .reports = rep,
	    .now_ms = w->now,
	    .unix_ms = (uint64_t)((int64_t)w->now + 1700000000000ll + a->clock_offset_ms),
	    .election_timeout_ms = a->cfg.election_timeout_ms,
	    .proposing = a->proposing,
	    .alloc = malloc,
	    .free = free,
	    .log = w->trace ? code_log : NULL,
	    .log_ctx = a};
	struct ha_core_out out;
	ha_core_tick(&in, a->co, &out);
	if (out.cmd) {
		a->proposing = true;
		a->prop = out.cmd;
		a->prop_len = out.cmd_len;
		a->prop_fo_id = out.cmd_fo_id;
		a->prop_at_ms = w->now + sim_between(&w->rng, 1, 8);
		trace(w, "%s proposes %s", names[i], out.cmd_name);
	}
	for (unsigned k = 0; k < out.n_hooks; k++) {
		if (out.hooks[k].hook != HA_CORE_HOOK_FENCE)
			continue;
		int t = -1;
		for (int j = 0; j < SIM_NODES; j++)
			if (!strcmp(names[j], out.hooks[k].arg[0]))
				t = j;
		a->stonith_node = t;
		a->stonith_at_ms = w->now + 300;
	}
	if (a->stonith_at_ms && w->now >= a->stonith_at_ms) {
		a->stonith_at_ms = 0;
		if (a->stonith_node >= 0)
			stonith(w, a->stonith_node);
		a->co->fence_hook_running = false;
		a->co->fence_hook_result = 0;
	}
}

static void report(struct sim_world *w, int i)
{
	struct sim_agent *a = &w->ag[i];
	Haagent__Health h;
	ha_node_health(a->sample, a->mem, a->fsm->epoch, lease_held(w, i), &h);
	Haagent__HealthReport r = HAAGENT__HEALTH_REPORT__INIT;
	r.node_id = (uint32_t)i + 1;
	r.health = &h;
	r.sent_mono_ms = w->now;
	size_t n = haagent__health_report__get_packed_size(&r);
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		abort();
	haagent__health_report__pack(&r, buf);
	/* its own entry (what the leader knows of itself) */
	Haagent__HealthReport *own = haagent__health_report__unpack(NULL, n, buf);
	if (own == NULL)
		abort();
	store_report(w, i, own);
	int leader = (int)a->leader_id - 1;
	if (leader >= 0 && leader != i)
		send_msg(w, 1, i, leader, buf, n);
	else
		free(buf);
}

static void agent_tick(struct sim_world *w, int i)
{
	struct sim_agent *a = &w->ag[i];
	if (!a->have_sample)
		return;
	struct ha_node_in in = {.cfg = &a->cfg,
	                        .st = a->fsm,
	                        .s = a->sample,
	                        .now_ms = w->now,
	                        .lease_held = lease_held(w, i),
	                        .action_busy = a->busy,
	                        .log = w->trace ? code_log : NULL,
	                        .log_ctx = a};
	struct ha_node_out *out = malloc(sizeof(*out));
	if (out == NULL)
		abort();
	ha_node_decide(&in, a->mem, out);
	if (out->cancel && a->busy)
		a->cancel = true;
	if (out->esc == HA_NODE_ESC_STOP) {
		/* db_stop_command: a hung (stopped) server does not stop; one that refuses the
		 * agent's login does */
		snprintf(a->mem->escalation, sizeof(a->mem->escalation), "ran db_stop_command");
		if (w->db[i].st == SIM_DB_RUN) {
			sim_db_crash(w, i);
			w->db[i].restart_at = w->now + 5000;
		}
		trace(w, "%s escalation: stop", names[i]);
	} else if (out->esc == HA_NODE_ESC_KILL) {
		snprintf(a->mem->escalation, sizeof(a->mem->escalation), "killed it");
		sim_db_crash(w, i);
		/* systemd's Restart=on-abort, as MariaDB's unit has it */
		w->db[i].restart_at = w->now + 5000;
		trace(w, "%s escalation: SIGKILL", names[i]);
	}
	if (out->submit && !a->busy) {
		a->busy = true;
		*a->act = out->q;
		a->act_end_ms = w->now + sim_action_ms(w, i, &out->q);
		trace(w, "%s action %s (%s)", names[i], ha_action_name(out->q.kind), out->why);
	}
	free(out);
	report(w, i);
	if (a->leading && a->ready)
		core_step(w, i);
}

static void agents_step(struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_agent *a = &w->ag[i];
		if (!running(w, i))
			continue;
		action_step(w, i);
		if (w->now >= a->next_probe_ms) {
			struct sim_db *d = &w->db[i];
			/* a hung server: the probe in flight is reported hung after its timeout */
			bool publish = d->st != SIM_DB_HUNG ||
			               w->now - d->hung_since >= a->cfg.probe_timeout_ms;
			if (publish) {
				int before = a->have_sample ? (int)a->sample->db : -1;
				sim_probe(w, i, a->sample);
				a->have_sample = true;
				if ((int)a->sample->db != before ||
				    (a->mem->kick_on_sample &&
				     a->sample->started_ms >= a->mem->after_ms)) {
					a->mem->kick_on_sample = false;
					a->kick = true;
				}
			}
			a->next_probe_ms = w->now + a->cfg.probe_interval_ms;
		}
		if (w->now >= a->next_tick_ms || a->kick) {
			if (w->now >= a->next_tick_ms)
				a->next_tick_ms = w->now + a->cfg.report_interval_ms +
				                  sim_between(&w->rng, 0, 20);
			a->kick = false;
			agent_tick(w, i);
		}
	}
}

/* ---- clients ---- */

static void clients_step(struct sim_world *w)
{
	/* semi-sync acknowledgements: a replica of the write's server received it */
	while (w->first_open < w->n_writes &&
	       (w->writes[w->first_open].acked || w->writes[w->first_open].failed))
		w->first_open++;
	for (size_t k = w->first_open; k < w->n_writes; k++) {
		struct sim_write *x = &w->writes[k];
		if (x->acked || x->failed)
			continue;
		struct sim_db *m = &w->db[x->node];
		if (m->st != SIM_DB_RUN)
			continue;
		for (int r = 0; r < SIM_NODES; r++) {
			struct sim_db *d = &w->db[r];
			if (r == x->node || d->master != x->node || !d->io_connected ||
			    !sim_link(w, r, x->node) || d->st == SIM_DB_DOWN)
				continue;
			size_t n = d->hist[x->dom].n + d->relay[x->dom].n;
			if (n > x->idx) {
				x->acked = true;
				w->acked++;
				if (m->pending)
					m->pending--;
				break;
			}
		}
	}
	/* one new write attempt per step, on a writable server (clients of a stale proxy reach
	 * any of them), at most 8 waiting */
	int cand[SIM_NODES], n = 0;
	for (int i = 0; i < SIM_NODES; i++)
		if (w->db[i].st == SIM_DB_RUN && !w->db[i].read_only && w->db[i].pending < 8)
			cand[n++] = i;
	if (n == 0)
		return;
	int i = cand[sim_between(&w->rng, 0, (uint64_t)n - 1)];
	struct sim_db *d = &w->db[i];
	unsigned dom = (unsigned)sim_between(&w->rng, 0, w->n_domains - 1);
	if (w->n_writes == w->cap_writes) {
		w->cap_writes = w->cap_writes ? 2 * w->cap_writes : 1024;
		w->writes = realloc(w->writes, w->cap_writes * sizeof(*w->writes));
		if (w->writes == NULL)
			abort();
	}
	uint32_t wid = (uint32_t)w->n_writes++;
	w->writes[wid] = (struct sim_write){.node = (uint16_t)i,
	                                    .dom = (uint16_t)dom,
	                                    .idx = (uint32_t)d->hist[dom].n,
	                                    .server_id = d->server_id};
	sim_list_push(&d->hist[dom], wid);
	d->pending++;
}

/* ---- invariants ---- */

/* Every acknowledged write is on a server when it turns writable as a primary. */
/* Is write k in the lost set the failover recorded (a double failure may lose what only the
 * failed nodes held; it must say so)? */
static bool recorded_lost(const struct sim_world *w, const struct ha_failover *f, size_t k)
{
	struct ha_gtid_pos lost;
	const struct sim_write *x = &w->writes[k];
	if (w->now > w->double_fault_until || ha_gtid_parse(f->lost_gtid, &lost, NULL))
		return false;
	for (size_t j = 0; j < lost.n; j++)
		if (lost.g[j].domain == x->dom && lost.g[j].seq >= w->seq_base[x->dom] + x->idx + 1)
			return true;
	return false;
}

static void check_promotion(struct sim_world *w, int i, uint64_t epoch)
{
	w->promotions++;
	const struct ha_failover *f = &w->ag[i].fsm->failover;
	bool accepted = f->accept_loss && f->epoch == epoch;
	/* after a double failure lost writes (recorded), a node that held them may follow the new
	 * primary, which reuses their GTIDs: silently diverged until re-cloned (issue 15). The
	 * write checks end there for this schedule; the others go on. */
	if (w->recorded_losses)
		return;
	for (size_t k = 0; k < w->n_writes && !accepted; k++) {
		if (!w->writes[k].acked || w->writes[k].lost_recorded ||
		    sim_has(w, &w->db[i], (uint32_t)k))
			continue;
		if (f->epoch == epoch && recorded_lost(w, f, k)) {
			w->writes[k].lost_recorded = true;
			w->recorded_losses++;
			continue;
		}
		violate(w, "acknowledged-write-lost",
		        "%s turned writable at epoch %llu without write %zu (domain %u, index %u, "
		        "acknowledged on %s)",
		        names[i], (unsigned long long)epoch, k, w->writes[k].dom, w->writes[k].idx,
		        names[w->writes[k].node]);
		return;
	}
}

static void check_step(struct sim_world *w)
{
	int writable = 0, first = -1;
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_db *d = &w->db[i];
		if (d->st != SIM_DB_DOWN && !d->read_only) {
			if (writable++ == 0)
				first = i;
			else
				violate(w, "two-writable-primaries", "%s and %s are both writable",
				        names[first], names[i]);
		}
	}
	/* no failover of a primary that serves its clients: its server running and reachable,
	 * its agent running (an agent that cannot log in is no evidence), for 5 s before */
	for (int i = 0; i < SIM_NODES; i++) {
		bool ok = w->db[i].st == SIM_DB_RUN && running(w, i);
		for (int j = 0; j < SIM_NODES; j++)
			ok = ok && sim_link(w, i, j);
		if (!ok)
			w->healthy_since[i] = 0;
		else if (w->healthy_since[i] == 0)
			w->healthy_since[i] = w->now;
	}
	for (int i = 0; i < SIM_NODES; i++) {
		const struct ha_failover *f = &w->ag[i].fsm->failover;
		if (w->ag[i].applied != w->log_n)
			continue;
		if (f->id == w->fo_seen) {
			if (ha_fsm_failover_active(w->ag[i].fsm) && f->phase == HA_FO_PROMOTING)
				w->fo_seen_candidate = f->candidate;
			continue;
		}
		if (f->id < w->fo_seen)
			continue;
		/* a failover that replaces the candidate of the one before is not detection's */
		bool replaces = w->fo_seen_candidate && w->fo_seen_candidate == f->old_primary;
		w->fo_seen = f->id;
		w->fo_seen_candidate = 0;
		int o = (int)f->old_primary - 1;
		if (!f->planned && !replaces && o >= 0 && w->healthy_since[o] &&
		    w->now - w->healthy_since[o] >= 5000)
			violate(
			    w, "needless-failover",
			    "failover %llu of %s, whose server and agent ran and were reachable "
			    "for %.1f s (%s)",
			    (unsigned long long)f->id, names[o],
			    (double)(w->now - w->healthy_since[o]) / 1000.0, f->reason);
	}
	if (writable == 0) {
		if (w->no_writable_since == 0)
			w->no_writable_since = w->now;
	} else if (w->no_writable_since) {
		uint64_t gap = w->now - w->no_writable_since;
		if (gap > w->longest_unwritable)
			w->longest_unwritable = gap;
		w->no_writable_since = 0;
	}
	/* never stuck: a failover ends, and a writable primary comes back, within a bound
	 * (faults last at most 20 s; the longest wait designed in is the salvage's 30 s) */
	if (w->no_writable_since && w->now - w->no_writable_since > 120000)
		violate(w, "stuck", "no writable primary for 120 s");
}

/* ---- faults ---- */

static int current_primary(const struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++)
		if (w->ag[i].leading)
			return (int)w->ag[i].fsm->primary_id - 1;
	return (int)w->ag[0].fsm->primary_id - 1;
}

static void host_down(struct sim_world *w, int i)
{
	w->ag[i].alive = false;
	sim_db_crash(w, i);
}

static void stonith(struct sim_world *w, int target)
{
	trace(w, "fence hook: %s powered off", names[target]);
	host_down(w, target);
}

static void isolate(struct sim_world *w, int i, bool cut)
{
	for (int j = 0; j < SIM_NODES; j++)
		if (j != i)
			w->cut[i][j] = w->cut[j][i] = cut;
}

static void heal(struct sim_world *w)
{
	trace(w, "heal %s", fault_names[w->fault]);
	if (w->fault == F_MID_PROMOTION)
		w->double_fault_until = w->now + 60000;
	memset(w->cut, 0, sizeof(w->cut));
	w->loss_pct = 0;
	w->delay_max_ms = 0;
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_db *d = &w->db[i];
		d->auth_broken = false;
		d->sql_stall_until = 0;
		if (d->st != SIM_DB_RUN)
			sim_db_start(w, i);
		struct sim_agent *a = &w->ag[i];
		a->frozen = false;
		a->clock_offset_ms = 0;
		if (!a->alive) {
			a->alive = true;
			agent_reset(w, i);
		}
	}
	w->fault = F_NONE;
	w->faults_done++;
	w->next_fault_at = w->now + sim_between(&w->rng, 2000, 10000);
}

static void inject(struct sim_world *w)
{
	enum sim_fault f = (enum sim_fault)sim_between(&w->rng, 1, F_KINDS - 1);
	if (f == F_FROZEN_PARTITION && !w->fence_hook)
		f = F_PARTITION; /* a frozen agent cannot fence: covered by a fence hook only */
	int p = current_primary(w);
	int i = p >= 0 && sim_chance(&w->rng, 70) ? p : (int)sim_between(&w->rng, 0, SIM_NODES - 1);
	w->fault = f;
	w->fault_node = i;
	/* a crashed mariadbd is back after 5 s at the soonest (systemd's RestartSec, then crash
	 * recovery), a lost host after 15 s (a reboot) */
	uint64_t least = f == F_KILL_DB || f == F_DDL_CRASH || f == F_MID_PROMOTION ? 5000
	                 : f == F_HOST                                              ? 15000
	                                                                            : 1000;
	w->fault_until = w->now + sim_between(&w->rng, least, least + 19000);
	trace(w, "FAULT %s on %s until +%.1f s", fault_names[f], names[i],
	      (double)(w->fault_until - w->now) / 1000.0);
	switch (f) {
	case F_KILL_DB:
		sim_db_crash(w, i);
		break;
	case F_FREEZE_DB:
		if (w->db[i].st == SIM_DB_RUN) {
			w->db[i].st = SIM_DB_HUNG;
			w->db[i].hung_since = w->now;
		}
		break;
	case F_AUTH:
		w->db[i].auth_broken = true;
		break;
	case F_KILL_AGENT:
		w->ag[i].alive = false;
		w->ag[i].leading = false;
		break;
	case F_FREEZE_AGENT:
		w->ag[i].frozen = true;
		break;
	case F_HOST:
		host_down(w, i);
		break;
	case F_PARTITION:
		isolate(w, i, true);
		break;
	case F_LOSS:
		w->loss_pct = (unsigned)sim_between(&w->rng, 10, 50);
		break;
	case F_DELAY:
		w->delay_max_ms = (unsigned)sim_between(&w->rng, 50, 800);
		break;
	case F_DDL_CRASH:
		for (int j = 0; j < SIM_NODES; j++)
			if (j != p)
				w->db[j].sql_stall_until =
				    w->now + sim_between(&w->rng, 3000, 40000);
		w->mid_promotion_armed = w->now + sim_between(&w->rng, 500, 3000);
		break;
	case F_MID_PROMOTION:
		w->mid_promotion_armed = 1;
		w->double_fault_until = UINT64_MAX; /* until healed, and a minute after */
		sim_db_crash(w, p >= 0 ? p : i);
		break;
	case F_FROZEN_PARTITION:
		w->ag[p >= 0 ? p : i].frozen = true;
		isolate(w, p >= 0 ? p : i, true);
		break;
	case F_CLOCK:
		w->ag[i].clock_offset_ms = sim_chance(&w->rng, 50) ? 3600000 : -3600000;
		break;
	case F_RESTART_AGENTS:
		for (int j = 0; j < SIM_NODES; j++) {
			w->ag[j].alive = true;
			agent_reset(w, j);
		}
		break;
	default:
		break;
	}
}

static void faults_step(struct sim_world *w, bool quiet)
{
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_db *d = &w->db[i];
		if (d->restart_at && w->now >= d->restart_at) {
			d->restart_at = 0;
			if (d->st == SIM_DB_DOWN && w->ag[i].alive) {
				trace(w, "%s: mariadbd restarted by its service manager", names[i]);
				sim_db_start(w, i);
			}
		}
	}
	if (w->fault != F_NONE) {
		/* the faults that act later */
		if (w->fault == F_DDL_CRASH && w->mid_promotion_armed &&
		    w->now >= w->mid_promotion_armed) {
			int p = current_primary(w);
			if (p >= 0)
				sim_db_crash(w, p);
			w->mid_promotion_armed = 0;
		}
		if (w->fault == F_MID_PROMOTION && w->mid_promotion_armed) {
			for (int i = 0; i < SIM_NODES; i++) {
				const struct ha_fsm_state *st = w->ag[i].fsm;
				if (w->ag[i].leading && ha_fsm_failover_active(st) &&
				    st->failover.phase == HA_FO_PROMOTING) {
					int c = (int)st->failover.candidate - 1;
					trace(w, "the candidate %s dies mid-promotion", names[c]);
					sim_db_crash(w, c);
					w->mid_promotion_armed = 0;
				}
			}
		}
		if (w->now >= w->fault_until)
			heal(w);
		return;
	}
	if (!quiet && w->now >= w->next_fault_at)
		inject(w);
}

/* ---- one schedule ---- */

struct sim_result {
	const char *violation;
	char detail[512];
	uint64_t faults, failovers, acked, rejects, promotions, longest_unwritable, steps;
	uint64_t recorded_losses;
	unsigned domains;
};

static void run(uint64_t seed, uint64_t sim_ms, bool trace_on, struct sim_result *res)
{
	struct sim_world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		abort();
	world_init(w, seed);
	w->trace = trace_on;
	trace(w, "seed %llu: %u domain(s), fence hook %s", (unsigned long long)seed, w->n_domains,
	      w->fence_hook ? "on" : "off");
	uint64_t end = w->now + sim_ms, settle = end + 60000;
	uint64_t steps = 0;
	while (w->now < settle && !w->violation) {
		w->now += SIM_STEP_MS;
		steps++;
		faults_step(w, w->now >= end);
		raft_step(w);
		commit_step(w);
		net_step(w);
		sim_replicate(w);
		agents_step(w);
		clients_step(w);
		check_step(w);
	}
	/* settled: one writable primary that has every acknowledged write, no failover open */
	if (!w->violation) {
		int p = -1;
		for (int i = 0; i < SIM_NODES; i++)
			if (w->db[i].st == SIM_DB_RUN && !w->db[i].read_only)
				p = i;
		const struct ha_fsm_state *st = w->ag[p >= 0 ? p : 0].fsm;
		if (p < 0)
			violate(w, "stuck", "no writable primary 60 s after the last fault healed");
		else if (ha_fsm_failover_active(st))
			violate(w, "stuck", "failover %llu still in %s 60 s after the last fault",
			        (unsigned long long)st->failover.id,
			        ha_fo_phase_name(st->failover.phase));
		else
			for (size_t k = 0; k < w->n_writes && !w->violation && !w->recorded_losses;
			     k++)
				if (w->writes[k].acked && !w->writes[k].lost_recorded &&
				    !sim_has(w, &w->db[p], (uint32_t)k))
					violate(
					    w, "acknowledged-write-lost",
					    "write %zu acknowledged on %s is not on the primary %s",
					    k, names[w->writes[k].node], names[p]);
	}
	memset(res, 0, sizeof(*res));
	res->violation = w->violation;
	snprintf(res->detail, sizeof(res->detail), "%s", w->violation_detail);
	res->faults = w->faults_done;
	for (int i = 0; i < SIM_NODES; i++)
		if (w->ag[i].fsm->failovers_done > res->failovers)
			res->failovers = w->ag[i].fsm->failovers_done;
	res->acked = w->acked;
	res->rejects = w->rejects;
	res->promotions = w->promotions;
	res->recorded_losses = w->recorded_losses;
	res->longest_unwritable = w->longest_unwritable;
	res->steps = steps;
	res->domains = w->n_domains;
	world_free(w);
	free(w);
}

/* ---- the command line ---- */

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: hasim [--seeds N] [--first SEED] [--seconds S] [--sim-seconds T]\n"
	    "             [--seed SEED --trace]\n"
	    "Runs randomized fault schedules against the real coordinator core, agent decisions\n"
	    "and replicated state machine, over a model of MariaDB replication, checking on\n"
	    "every step: at most one writable primary, no acknowledged write lost, never stuck.\n"
	    "  --seeds N        schedules to run (default 200)\n"
	    "  --first SEED     the first seed (default: from the clock, printed)\n"
	    "  --seconds S      stop after S seconds of wall time instead of N schedules\n"
	    "  --sim-seconds T  simulated time per schedule before the final settling (90)\n"
	    "  --seed SEED      run that one schedule (replays a failure exactly)\n"
	    "  --trace          print every decision, action and fault of the schedule\n"
	    "  --list           print one line per schedule\n"
	    "Exit status: 0 none broken, 1 an invariant broken (the seed is printed), 2 usage.\n");
}

struct options {
	uint64_t seeds, first, one, sim_s;
	double seconds;
	bool have_first, have_one, trace_on, list;
};

/* The options into o: -1 to go on, or the exit status (0 after --help, 2 on a usage error). */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {{"seeds", required_argument, NULL, 'n'},
	                                     {"first", required_argument, NULL, 'f'},
	                                     {"seconds", required_argument, NULL, 's'},
	                                     {"sim-seconds", required_argument, NULL, 't'},
	                                     {"seed", required_argument, NULL, 'S'},
	                                     {"trace", no_argument, NULL, 'T'},
	                                     {"list", no_argument, NULL, 'l'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o->seeds = strtoull(optarg, NULL, 10);
			break;
		case 'f':
			o->first = strtoull(optarg, NULL, 10);
			o->have_first = true;
			break;
		case 's':
			o->seconds = strtod(optarg, NULL);
			break;
		case 't':
			o->sim_s = strtoull(optarg, NULL, 10);
			break;
		case 'S':
			o->one = strtoull(optarg, NULL, 10);
			o->have_one = true;
			break;
		case 'T':
			o->trace_on = true;
			break;
		case 'l':
			o->list = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || o->sim_s == 0) {
		usage(stderr);
		return 2;
	}
	return -1;
}

/* --seed: one schedule, replayed exactly (traced with --trace). */
static int run_one(const struct options *o)
{
	struct sim_result r;
	run(o->one, o->sim_s * 1000, o->trace_on, &r);
	printf("seed %llu: %s%s%s (%llu faults, %llu failovers, %llu acknowledged writes, "
	       "%u domain(s))\n",
	       (unsigned long long)o->one, r.violation ? r.violation : "ok",
	       r.violation ? ": " : "", r.violation ? r.detail : "", (unsigned long long)r.faults,
	       (unsigned long long)r.failovers, (unsigned long long)r.acked, r.domains);
	return r.violation ? 1 : 0;
}

/* What the schedules of one invocation add up to. */
struct totals {
	uint64_t ran, faults, failovers, acked, rejects, sim_ms, longest, recorded, lossy;
};

static void add_result(struct totals *t, const struct sim_result *r)
{
	t->ran++;
	t->faults += r->faults;
	t->failovers += r->failovers;
	t->acked += r->acked;
	t->rejects += r->rejects;
	t->recorded += r->recorded_losses;
	t->lossy += r->recorded_losses > 0;
	t->sim_ms += r->steps * SIM_STEP_MS;
	if (r->longest_unwritable > t->longest)
		t->longest = r->longest_unwritable;
}

static double elapsed_s(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* --seeds N (or --seconds S) schedules from o->first: the first broken invariant stops them
 * with its seed; otherwise one line of totals. */
static int run_many(const struct options *o)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct totals t = {0};
	for (uint64_t k = 0;; k++) {
		double el = elapsed_s(&t0);
		if (o->seconds > 0 ? el >= o->seconds : k >= o->seeds)
			break;
		uint64_t seed = o->first + k;
		struct sim_result r;
		run(seed, o->sim_s * 1000, false, &r);
		if (o->list)
			printf(
			    "seed %llu: %llu faults, %llu failovers, %u domain(s), longest without "
			    "a writable primary %.1f s\n",
			    (unsigned long long)seed, (unsigned long long)r.faults,
			    (unsigned long long)r.failovers, r.domains,
			    (double)r.longest_unwritable / 1000.0);
		add_result(&t, &r);
		if (r.violation) {
			printf("FAILED seed %llu: %s: %s\nreplay: hasim --seed %llu --trace\n",
			       (unsigned long long)seed, r.violation, r.detail,
			       (unsigned long long)seed);
			return 1;
		}
	}
	double el = elapsed_s(&t0);
	printf("%llu schedules from seed %llu in %.1f s (%.0f schedules/s, %.0fx real time): "
	       "%llu faults, %llu failovers, %llu acknowledged writes (%llu lost in double "
	       "failures, each listed in its failover's record; %llu schedules' write checks "
	       "ended there), %llu FSM rejections, longest without a writable primary %.1f s; "
	       "no invariant broken\n",
	       (unsigned long long)t.ran, (unsigned long long)o->first, el, (double)t.ran / el,
	       (double)t.sim_ms / 1000.0 / el, (unsigned long long)t.faults,
	       (unsigned long long)t.failovers, (unsigned long long)t.acked,
	       (unsigned long long)t.recorded, (unsigned long long)t.lossy,
	       (unsigned long long)t.rejects, (double)t.longest / 1000.0);
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {.seeds = 200, .sim_s = 90};
	int rc = parse_options(argc, argv, &o);
	if (rc >= 0)
		return rc;
	ha_log_set_level(HA_LOG_ERROR);
	if (o.have_one)
		return run_one(&o);
	if (!o.have_first) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		o.first = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
	}
	return run_many(&o);
}
