/* hasim: the deterministic simulator (tests/sim/README.md). Each seed is one schedule: three
 * nodes whose agents run the real decision code (node/decide.c, and coord/core.c on the leader)
 * and the real replicated state machine (consensus/fsm.c) over a model of MariaDB replication,
 * raft and the network, with clients writing and faults injected one at a time. The invariants
 * are checked on every 10 ms step; the first one broken ends the schedule with its seed, which
 * replays it exactly (--seed N --trace).
 *
 * The parts, each calling only those before it: sim.h (the world, its randomness and names),
 * model.c (MariaDB), check.c (the trace and the invariants), world.c (set-up, raft, network,
 * agents, clients) and here the faults and the driver: one schedule, the command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "common/log.h"
#include "world.h"

static const char *const fault_names[F_KINDS] = {
    "none",           "kill-db",       "freeze-db",        "auth-lost",  "kill-agent",
    "freeze-agent",   "host-lost",     "partition",        "msg-loss",   "msg-delay",
    "ddl-then-crash", "mid-promotion", "frozen-partition", "clock-step", "restart-agents",
    "frozen-crash"};

/* ---- faults ---- */

static int current_primary(const struct sim_world *w)
{
	for (int i = 0; i < SIM_NODES; i++)
		if (w->ag[i].leading)
			return (int)w->ag[i].fsm->primary_id - 1;
	return (int)w->ag[0].fsm->primary_id - 1;
}

static void isolate(struct sim_world *w, int i, bool cut)
{
	for (int j = 0; j < SIM_NODES; j++)
		if (j != i)
			w->cut[i][j] = w->cut[j][i] = cut;
}

static void heal(struct sim_world *w)
{
	sim_trace(w, "heal %s", fault_names[w->fault]);
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
		/* a resumed agent, or one whose links come back, hears raft a little later than
		 * its reports and acks flow again */
		if (a->frozen || w->fault == F_PARTITION || w->fault == F_FROZEN_PARTITION)
			a->raft_behind_until = w->now + sim_between(&w->rng, 0, 800);
		a->frozen = false;
		a->clock_offset_ms = 0;
		if (!a->alive) {
			a->alive = true;
			sim_agent_reset(w, i);
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
	if (f == F_FROZEN_CRASH && p >= 0)
		i = p;
	w->fault = f;
	w->fault_node = i;
	/* a crashed mariadbd is back after 5 s at the soonest (systemd's RestartSec, then crash
	 * recovery), a lost host after 15 s (a reboot) */
	uint64_t least =
	    f == F_KILL_DB || f == F_DDL_CRASH || f == F_MID_PROMOTION || f == F_FROZEN_CRASH ? 5000
	    : f == F_HOST ? 15000
	                  : 1000;
	w->fault_until = w->now + sim_between(&w->rng, least, least + 19000);
	sim_trace(w, "FAULT %s on %s until +%.1f s", fault_names[f], sim_node_name(i),
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
		sim_host_down(w, i);
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
	case F_FROZEN_CRASH:
		/* the agent stalls (swap, a stuck disk) and mariadbd is killed (OOM) meanwhile:
		 * the cluster fails over; systemd restarts the server read-only 5 s later; the
		 * agent resumes with its raft view, its reports and its acks as they were */
		w->ag[i].frozen = true;
		sim_db_crash(w, i);
		w->db[i].restart_at = w->now + 5000;
		break;
	case F_CLOCK:
		w->ag[i].clock_offset_ms = sim_chance(&w->rng, 50) ? 3600000 : -3600000;
		break;
	case F_RESTART_AGENTS:
		for (int j = 0; j < SIM_NODES; j++) {
			w->ag[j].alive = true;
			sim_agent_reset(w, j);
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
				sim_trace(w, "%s: mariadbd restarted by its service manager",
				          sim_node_name(i));
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
					sim_trace(w, "the candidate %s dies mid-promotion",
					          sim_node_name(c));
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
	uint64_t recorded_losses, op_accepted;
	unsigned domains;
};

static void run(uint64_t seed, uint64_t sim_ms, bool trace_on, struct sim_result *res)
{
	struct sim_world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		abort();
	sim_world_init(w, seed);
	w->trace = trace_on;
	sim_trace(w, "seed %llu: %u domain(s), fence hook %s", (unsigned long long)seed,
	          w->n_domains, w->fence_hook ? "on" : "off");
	uint64_t end = w->now + sim_ms, settle = end + 60000;
	uint64_t steps = 0;
	while (w->now < settle && !w->violation) {
		w->now += SIM_STEP_MS;
		steps++;
		faults_step(w, w->now >= end);
		sim_raft_step(w);
		sim_commit_step(w);
		sim_net_step(w);
		sim_replicate(w);
		sim_agents_step(w);
		sim_operator_step(w);
		sim_clients_step(w);
		sim_check_step(w);
	}
	if (!w->violation)
		sim_check_settled(w);
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
	res->op_accepted = w->op_accepted;
	res->longest_unwritable = w->longest_unwritable;
	res->steps = steps;
	res->domains = w->n_domains;
	sim_world_free(w);
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
	uint64_t ran, faults, failovers, acked, rejects, sim_ms, longest, recorded, lossy, op;
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
	t->op += r->op_accepted > 0;
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
	       "ended there; %llu where a simulated operator accepted a loss the coordinator "
	       "would not decide alone), %llu FSM rejections, longest without a writable "
	       "primary %.1f s; no invariant broken\n",
	       (unsigned long long)t.ran, (unsigned long long)o->first, el, (double)t.ran / el,
	       (double)t.sim_ms / 1000.0 / el, (unsigned long long)t.faults,
	       (unsigned long long)t.failovers, (unsigned long long)t.acked,
	       (unsigned long long)t.recorded, (unsigned long long)t.lossy,
	       (unsigned long long)t.op, (unsigned long long)t.rejects, (double)t.longest / 1000.0);
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
