/* hasim's world (sim.h): the nodes' set-up, raft as a model, the messages between the agents,
 * the agents running the real decision code (and the coordinator core on the leader), and the
 * clients writing. Faults are done to it from sim.c; check.c watches it. */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

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
	snprintf(c->node, sizeof(c->node), "%s", sim_node_name(i));
	snprintf(c->data_dir, sizeof(c->data_dir), "/sim/%s/agent", sim_node_name(i));
	snprintf(c->db_stop_command, sizeof(c->db_stop_command), "sim-stop");
	snprintf(c->db_pid_file, sizeof(c->db_pid_file), "/sim/%s/mariadbd.pid", sim_node_name(i));
	if (w->fence_hook)
		snprintf(c->hook_fence, sizeof(c->hook_fence), "sim-stonith");
	for (int j = 0; j < SIM_NODES; j++) {
		struct ha_node_conf *n = &c->nodes[j];
		n->id = (uint32_t)j + 1;
		snprintf(n->name, sizeof(n->name), "%s", sim_node_name(j));
		snprintf(n->address, sizeof(n->address), "127.0.0.%d", 11 + j);
		n->raft_port = 7100;
		n->rpc_port = 7200;
		n->db_port = 3306;
		n->priority = 100;
	}
}

void sim_agent_reset(struct sim_world *w, int i)
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
	memset(&a->lease, 0, sizeof(a->lease));
	a->raft_behind_until = w->now + sim_between(&w->rng, 0, 800); /* its log, from disk */
	a->kick = false;
	a->stonith_at_ms = 0;
	a->next_probe_ms = w->now + sim_between(&w->rng, 0, 250);
	a->next_tick_ms = w->now + sim_between(&w->rng, 0, 250);
	a->vote_timeout_ms = sim_between(&w->rng, 300, 600);
}

void sim_world_init(struct sim_world *w, uint64_t seed)
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
		sim_agent_reset(w, i);
	}
	w->next_fault_at = w->now + sim_between(&w->rng, 3000, 8000);
}

void sim_world_free(struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_agent *a = &w->ag[i];
		sim_agent_reset(w, i);
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

static bool reach(const struct sim_world *w, int i, int j)
{
	return sim_running(w, j) && sim_link(w, i, j);
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
	sim_trace(w, "%s steps down (%s)", sim_node_name(i), why);
	a->leading = a->ready = false;
	if (a->proposing) { /* RAFT_LEADERSHIPLOST: not committed, in this model */
		free(a->prop);
		a->prop = NULL;
		a->proposing = false;
	}
	memset(a->co, 0, sizeof(*a->co));
}

void sim_raft_step(struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_agent *a = &w->ag[i];
		if (!sim_running(w, i) || !a->leading || w->now < a->raft_behind_until)
			continue; /* a resumed leader learns late that it was deposed */
		unsigned votes = 1;
		for (int j = 0; j < SIM_NODES; j++) {
			if (j == i || !reach(w, i, j))
				continue;
			struct sim_agent *b = &w->ag[j];
			if (w->now < b->raft_behind_until) {
				votes++; /* its answers are on their way */
				continue;
			}
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
		if (!sim_running(w, i) || a->leading || w->now < a->raft_behind_until ||
		    w->now - a->last_heard_ms < a->vote_timeout_ms)
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
		sim_trace(w, "%s leads, term %llu", sim_node_name(i), (unsigned long long)a->term);
	}
}

/* A proposal commits once its leader still leads with a majority; every node that hears the
 * leader applies it (raft_step). The proposer learns the FSM's result. */
void sim_commit_step(struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_agent *a = &w->ag[i];
		if (!a->proposing || !sim_running(w, i) || w->now < a->prop_at_ms)
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
			sim_trace(w, "fsm-reject: %s", e.msg);
			ha_core_refused(a->co, a->prop_fo_id, w->now);
		}
		for (int j = 0; j < SIM_NODES; j++)
			if (j != i && reach(w, i, j) && w->now >= w->ag[j].raft_behind_until)
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
	ha_node_contact_update(&a->rep[i].contact, r, a->term, w->now, w->now);
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
			ack.epoch = b->fsm->epoch;
			ack.leader_mono_ms = w->now;
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
		struct ha_ack_in in = {.leader_id = b->leader_id,
		                       .term = b->term,
		                       .epoch = b->fsm->epoch,
		                       .now_ms = w->now};
		ha_node_ack(&b->lease, ack, &in);
		haagent__health_ack__free_unpacked(ack, NULL);
	}
}

void sim_net_step(struct sim_world *w)
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
	sim_trace(w, "%s action %s: %s%s", sim_node_name(i), ha_action_name(r.kind),
	          r.rc ? "failed: " : "", r.msg);
	ha_node_done(a->mem, &r, w->now);
	if (r.made_writable)
		sim_check_promotion(w, i, r.epoch);
	a->kick = true; /* ha_probe_now, then a report */
	a->next_probe_ms = w->now;
}

void sim_host_down(struct sim_world *w, int i)
{
	w->ag[i].alive = false;
	sim_db_crash(w, i);
}

static void stonith(struct sim_world *w, int target)
{
	sim_trace(w, "fence hook: %s powered off", sim_node_name(target));
	sim_host_down(w, target);
}

/* ha_agent_core_input: the coordinator core's input from agent i's view */
static void core_input(struct sim_world *w, int i, struct ha_core_in *in,
                       struct ha_core_report *rep)
{
	struct sim_agent *a = &w->ag[i];
	for (int j = 0; j < SIM_NODES; j++) {
		rep[j].h = a->rep[j].r ? a->rep[j].r->health : NULL;
		rep[j].recv_ms = a->rep[j].recv_ms;
		rep[j].ack_sent_ms = a->rep[j].ack_sent_ms;
		rep[j].contact_ms = ha_node_contact_at(&a->rep[j].contact, a->term);
		rep[j].last_binlog = a->rep[j].last_binlog;
	}
	*in = (struct ha_core_in){
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
}

/* ha_agent_lease_held: the real rule (ha_node_lease_held) on the model's raft view */
static bool lease_held(struct sim_world *w, int i)
{
	struct sim_agent *a = &w->ag[i];
	struct ha_core_report rep[SIM_NODES];
	struct ha_core_in in;
	core_input(w, i, &in, rep);
	struct ha_lease_in l = {.leading = a->leading && a->ready,
	                        .ready_since_ms = a->lead_since_ms, /* its barrier's issue */
	                        .reporting = ha_core_lease_contacts(&in, a->cfg.lease_ms),
	                        .last_ack_ms = a->lease.last_ack_ms,
	                        .n_nodes = ha_core_voters(&in),
	                        .lease_ms = a->cfg.lease_ms,
	                        .now_ms = w->now};
	return ha_node_lease_held(&l);
}

static void core_step(struct sim_world *w, int i)
{
	struct sim_agent *a = &w->ag[i];
	struct ha_core_report rep[SIM_NODES];
	struct ha_core_in in;
	core_input(w, i, &in, rep);
	struct ha_core_out out;
	ha_core_tick(&in, a->co, &out);
	if (out.cmd) {
		a->proposing = true;
		a->prop = out.cmd;
		a->prop_len = out.cmd_len;
		a->prop_fo_id = out.cmd_fo_id;
		a->prop_at_ms = w->now + sim_between(&w->rng, 1, 8);
		sim_trace(w, "%s proposes %s", sim_node_name(i), out.cmd_name);
	}
	for (unsigned k = 0; k < out.n_hooks; k++) {
		if (out.hooks[k].hook != HA_CORE_HOOK_FENCE)
			continue;
		int t = -1;
		for (int j = 0; j < SIM_NODES; j++)
			if (!strcmp(sim_node_name(j), out.hooks[k].arg[0]))
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
	r.echoes = true;
	r.echo_term = a->lease.echo_term;
	r.echo_leader_ms = a->lease.echo_leader_ms;
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
		sim_trace(w, "%s escalation: stop", sim_node_name(i));
	} else if (out->esc == HA_NODE_ESC_KILL) {
		snprintf(a->mem->escalation, sizeof(a->mem->escalation), "killed it");
		sim_db_crash(w, i);
		/* systemd's Restart=on-abort, as MariaDB's unit has it */
		w->db[i].restart_at = w->now + 5000;
		sim_trace(w, "%s escalation: SIGKILL", sim_node_name(i));
	}
	if (out->submit && !a->busy) {
		a->busy = true;
		*a->act = out->q;
		a->act_end_ms = w->now + sim_action_ms(w, i, &out->q);
		sim_trace(w, "%s action %s (%s)", sim_node_name(i), ha_action_name(out->q.kind),
		          out->why);
	}
	free(out);
	report(w, i);
	if (a->leading && a->ready)
		core_step(w, i);
}

void sim_agents_step(struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++) {
		struct sim_agent *a = &w->ag[i];
		if (!sim_running(w, i))
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

/* ---- the operator ---- */

void sim_operator_step(struct sim_world *w)
{
	int l = -1;
	for (int i = 0; i < SIM_NODES; i++)
		if (sim_running(w, i) && w->ag[i].leading && w->ag[i].ready)
			l = i;
	struct sim_agent *a = l >= 0 ? &w->ag[l] : NULL;
	const struct ha_failover *f = a ? &a->fsm->failover : NULL;
	/* what haadm status shows: the failover's wait names --accept-loss as the way on */
	bool waits = a && ha_fsm_failover_active(a->fsm) && !f->planned && !f->accept_loss &&
	             f->phase == HA_FO_FENCED && strstr(a->co->wait, "--accept-loss");
	if (!waits) {
		w->op_wait_since = 0;
		return;
	}
	if (w->op_wait_since == 0)
		w->op_wait_since = w->now;
	if (w->now - w->op_wait_since < 60000 || a->proposing)
		return;
	struct ha_core_report rep[SIM_NODES];
	struct ha_core_in in;
	core_input(w, l, &in, rep);
	char lost[HA_FSM_GTID_MAX];
	uint64_t count = ha_core_loss_if_now(&in, lost, sizeof(lost));
	struct ha_fo_advance adv = {.id = f->id,
	                            .phase = f->phase,
	                            .accept_loss = true,
	                            .lost_gtid = lost,
	                            .lost_count = count,
	                            .unix_ms = in.unix_ms,
	                            .detail = "an operator accepted the loss (simulated)"};
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_failover_advance(&adv, malloc, &buf, &len) != 0)
		abort();
	a->proposing = true;
	a->prop = buf;
	a->prop_len = len;
	a->prop_fo_id = f->id;
	a->prop_at_ms = w->now + 1;
	w->op_wait_since = 0;
	w->op_accepted++;
	sim_trace(w, "operator: haadm failover --accept-loss (up to %llu transactions): %s",
	          (unsigned long long)count, a->co->wait);
}

/* ---- clients ---- */

void sim_clients_step(struct sim_world *w)
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
	                                    .server_id = d->server_id,
	                                    .at_ms = w->now};
	sim_list_push(&d->hist[dom], wid);
	d->pending++;
}
