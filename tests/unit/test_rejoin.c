/* node/rejoin.c: is a diverged node's errant set an unacknowledged tail it may discard by
 * itself; the semi-sync watch; and node/decide.c's use of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/decide.h"
#include "node/rejoin.h"

/* node1 (server id 1) was the primary at epoch 3, semi-sync active all the while */
static struct ha_rejoin_watch watched(void)
{
	struct ha_rejoin_watch w = {0};
	struct ha_probe_sample s = {.db = HA_DB_UP, .read_only = true, .semisync_off_times = 7};
	ha_rejoin_watch(&w, &s, 3, true); /* promoted: still read-only */
	s.read_only = false;
	s.semisync_master_enabled = true;
	s.semisync_master_active = true;
	ha_rejoin_watch(&w, &s, 3, true);
	ha_rejoin_watch(&w, &s, 3, true);
	return w;
}

static void judge(const char *local, const char *target, const struct ha_rejoin_watch *w,
                  unsigned max, struct ha_rejoin_verdict *v)
{
	struct ha_rejoin_in in = {.node = "node1",
	                          .local_state = local,
	                          .target_state = target,
	                          .self_server = 1,
	                          .watch = w,
	                          .max_errant = max};
	ha_rejoin_judge(&in, v);
}

static void safe_tail(void **state)
{
	(void)state;
	struct ha_rejoin_watch w = watched();
	struct ha_rejoin_verdict v;
	/* node2 took over after 0-1-104 and wrote on; node1 holds 105..107 */
	judge("0-2-50,0-1-107", "0-1-104,0-2-230", &w, 64, &v);
	assert_true(v.safe);
	assert_int_equal(v.count, 3);
	assert_string_equal(v.ranges, "0-1-105..107");
	assert_string_equal(v.start, "0-1-104");
	assert_string_equal(v.stop, "0-1-107");
	assert_string_equal(v.why, "");
	/* one transaction */
	judge("0-1-105", "0-1-104,0-2-106", &w, 64, &v);
	assert_true(v.safe);
	assert_int_equal(v.count, 1);
	assert_string_equal(v.ranges, "0-1-105");
}

static void semisync_off(void **state)
{
	(void)state;
	struct ha_rejoin_verdict v;
	/* semi-sync not active while writable */
	struct ha_rejoin_watch w = {0};
	struct ha_probe_sample s = {.db = HA_DB_UP, .read_only = true};
	ha_rejoin_watch(&w, &s, 3, true);
	s.read_only = false;
	ha_rejoin_watch(&w, &s, 3, true);
	judge("0-1-107", "0-1-104,0-2-230", &w, 64, &v);
	assert_false(v.safe);
	assert_int_equal(v.count, 3);
	assert_non_null(strstr(v.why,
	                       "diverged: 3 errant transactions (0-1-105..107) and semi-sync "
	                       "was off when this node was primary"));
	assert_non_null(strstr(v.why, "HINT:"));
	assert_non_null(strstr(v.why, "haadm node reclone node1"));
	/* active, but it fell back to asynchronous once (a timeout, and back since) */
	w = watched();
	s.semisync_master_enabled = true;
	s.semisync_master_active = true;
	s.semisync_off_times = 8;
	ha_rejoin_watch(&w, &s, 3, true);
	judge("0-1-107", "0-1-104,0-2-230", &w, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "fell back to asynchronous replication 1 time "));
	/* its fence disabled semi-sync (which counts a switch-off): not a fallback */
	w = watched();
	ha_rejoin_fenced(&w, true, true, 7);
	struct ha_probe_sample f = {.db = HA_DB_UP, .read_only = true, .semisync_off_times = 8};
	ha_rejoin_watch(&w, &f, 4, false);
	f.semisync_off_times = 9; /* disabled: whatever it counts */
	ha_rejoin_watch(&w, &f, 4, false);
	judge("0-1-107", "0-1-104,0-2-230", &w, 64, &v);
	assert_true(v.safe);
	/* ...but a fallback its fence found (woken past the timeout) is one */
	w = watched();
	ha_rejoin_fenced(&w, true, true, 8);
	judge("0-1-107", "0-1-104,0-2-230", &w, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "before its fence"));
	/* a fence that could not read it */
	w = watched();
	ha_rejoin_fenced(&w, false, false, 0);
	judge("0-1-107", "0-1-104,0-2-230", &w, 64, &v);
	assert_false(v.safe);
	/* the agent never watched it: restarted since */
	struct ha_rejoin_watch none = {0};
	judge("0-1-107", "0-1-104,0-2-230", &none, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "never watched"));
	/* it started while its server was writable already */
	struct ha_rejoin_watch late = {0};
	s.semisync_off_times = 0;
	ha_rejoin_watch(&late, &s, 3, true);
	judge("0-1-107", "0-1-104,0-2-230", &late, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "already the primary"));
	/* a fallback after the epoch, semi-sync still enabled (a frozen primary woken past its
	 * semi-sync timeout, sampled before its fence) counts */
	w = watched();
	struct ha_probe_sample r = {.db = HA_DB_UP,
	                            .read_only = false,
	                            .semisync_master_enabled = true,
	                            .semisync_off_times = 8};
	ha_rejoin_watch(&w, &r, 4, false);
	judge("0-1-107", "0-1-104,0-2-230", &w, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "after its epoch"));
	/* samples as a replica or down change nothing else */
	w = watched();
	r.semisync_off_times = 7;
	ha_rejoin_watch(&w, &r, 4, false);
	r.db = HA_DB_HUNG;
	ha_rejoin_watch(&w, &r, 3, true);
	judge("0-1-107", "0-1-104,0-2-230", &w, 64, &v);
	assert_true(v.safe);
}

static void too_many(void **state)
{
	(void)state;
	struct ha_rejoin_watch w = watched();
	struct ha_rejoin_verdict v;
	judge("0-1-169", "0-1-104,0-2-230", &w, 64, &v);
	assert_false(v.safe);
	assert_int_equal(v.count, 65);
	assert_non_null(strstr(v.why, "more than rejoin_max_errant (64)"));
	judge("0-1-168", "0-1-104,0-2-230", &w, 64, &v);
	assert_true(v.safe);
}

static void foreign_server(void **state)
{
	(void)state;
	struct ha_rejoin_watch w = watched();
	struct ha_rejoin_verdict v;
	/* node1 holds a transaction of server 3 that the primary lacks */
	judge("0-3-106,0-1-105", "0-1-104,0-2-230", &w, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "comes from server 3"));
	/* another server's transactions the primary has are fine */
	judge("0-3-90,0-1-105", "0-1-104,0-3-90,0-2-230", &w, 64, &v);
	assert_true(v.safe);
	/* ...also when a re-clone reset the primary's binlog state, which forgets them: before
	 * the fork by sequence number (measured: bench_rejoin's third run) */
	judge("0-1-95,0-3-1087,0-2-2051", "0-2-2050,0-3-78950", &w, 64, &v);
	assert_false(v.safe); /* node1's view: the tail 0-2-2051 is not its own */
	struct ha_rejoin_in in2 = {.node = "node2",
	                           .local_state = "0-1-95,0-3-1087,0-2-2051",
	                           .target_state = "0-2-2050,0-3-78950",
	                           .self_server = 2,
	                           .watch = &w,
	                           .max_errant = 64};
	ha_rejoin_judge(&in2, &v);
	assert_true(v.safe);
	assert_string_equal(v.ranges, "0-2-2051");
	/* after the fork it is not held, whatever the primary's sequence numbers */
	in2.local_state = "0-1-2060,0-2-2051";
	ha_rejoin_judge(&in2, &v);
	assert_false(v.safe);
	/* a domain without a tail: held below the primary's last sequence number there */
	judge("0-1-105,1-3-7", "0-1-104,0-2-230,1-2-9", &w, 64, &v);
	assert_true(v.safe);
	judge("0-1-105,1-3-9", "0-1-104,0-2-230,1-2-9", &w, 64, &v);
	assert_false(v.safe);
}

static void gap(void **state)
{
	(void)state;
	struct ha_rejoin_watch w = watched();
	struct ha_rejoin_verdict v;
	/* server 2's 0-2-106, which the primary has, lies inside node1's own range 105..108 */
	judge("0-2-106,0-1-108", "0-1-104,0-2-230", &w, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "not one tail"));
	/* the primary has none of node1's transactions: no tail of its history */
	judge("0-1-3", "0-2-230", &w, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "no transaction of this server"));
	/* nothing the states show: the same GTIDs with other contents */
	judge("0-1-104", "0-1-104,0-2-230", &w, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "only a re-clone"));
	/* states that do not parse */
	judge("", "0-1-104", &w, 64, &v);
	assert_false(v.safe);
	judge("0-1-x", "0-1-104", &w, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "could not be compared"));
}

static void multi_domain(void **state)
{
	(void)state;
	struct ha_rejoin_watch w = watched();
	struct ha_rejoin_verdict v;
	/* a tail in each of two domains: safe, counted together */
	judge("0-1-106,1-1-12", "0-1-104,1-1-10,0-2-230,1-2-40", &w, 64, &v);
	assert_true(v.safe);
	assert_int_equal(v.count, 4);
	assert_string_equal(v.ranges, "0-1-105..106,1-1-11..12");
	assert_string_equal(v.start, "0-1-104,1-1-10");
	assert_string_equal(v.stop, "0-1-106,1-1-12");
	/* together over the bound */
	judge("0-1-106,1-1-12", "0-1-104,1-1-10,0-2-230,1-2-40", &w, 3, &v);
	assert_false(v.safe);
	/* one domain foreign */
	judge("0-1-106,1-3-12", "0-1-104,1-3-10,0-2-230", &w, 64, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "1-3-12"));
	/* a domain the node has and the primary lacks entirely, with another server's: foreign */
	judge("0-1-106,5-2-1", "0-1-104,0-2-230", &w, 64, &v);
	assert_false(v.safe);
}

static void manual(void **state)
{
	(void)state;
	struct ha_rejoin_watch w = watched();
	struct ha_rejoin_verdict v;
	struct ha_rejoin_in in = {.node = "node1",
	                          .local_state = "0-1-105",
	                          .target_state = "0-1-104,0-2-230",
	                          .self_server = 1,
	                          .watch = &w,
	                          .max_errant = 64,
	                          .manual = true};
	ha_rejoin_judge(&in, &v);
	assert_false(v.safe);
	assert_non_null(strstr(v.why, "rejoin = manual"));
}

static void backoff(void **state)
{
	(void)state;
	assert_int_equal(ha_rejoin_backoff_ms(1), 30000);
	assert_int_equal(ha_rejoin_backoff_ms(2), 60000);
	assert_int_equal(ha_rejoin_backoff_ms(3), 120000);
	assert_int_equal(ha_rejoin_backoff_ms(10), 900000);
	assert_int_equal(ha_rejoin_backoff_ms(1000), 900000);
}

/* ---- node/decide.c: a diverged old primary, from its repoint to its rejoin ---- */

struct world {
	struct ha_config cfg;
	struct ha_fsm_state st;
	struct ha_probe_sample s;
	struct ha_node_mem m;
	struct ha_node_out out;
};

static struct world *world(void)
{
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	ha_config_defaults(&w->cfg);
	w->cfg.n_nodes = 3;
	w->cfg.self = 0; /* node1 */
	ha_fsm_init(&w->st);
	w->st.n_members = 3;
	for (int i = 0; i < 3; i++) {
		struct ha_node_conf *n = &w->cfg.nodes[i];
		n->id = (uint32_t)i + 1;
		snprintf(n->name, sizeof(n->name), "node%d", i + 1);
		snprintf(n->address, sizeof(n->address), "127.0.0.%d", 11 + i);
		n->db_port = 3306;
		w->st.members[i].id = n->id;
		snprintf(w->st.members[i].name, sizeof(w->st.members[i].name), "%s", n->name);
		snprintf(w->st.members[i].address, sizeof(w->st.members[i].address), "%s",
		         n->address);
		w->st.members[i].db_port = 3306;
	}
	w->s.db = HA_DB_UP;
	w->s.read_only = true;
	w->s.server_id = 1;
	snprintf(w->s.binlog_index, sizeof(w->s.binlog_index), "/d/mariadb-bin.index");
	snprintf(w->s.datadir, sizeof(w->s.datadir), "/d");
	return w;
}

static void decide(struct world *w, uint64_t now)
{
	struct ha_node_in in = {.cfg = &w->cfg, .st = &w->st, .s = &w->s, .now_ms = now};
	w->s.started_ms = now;
	ha_node_decide(&in, &w->m, &w->out);
}

/* node1 primary at epoch 3 (watched, semi-sync on), then node2 at epoch 4; node1's repoint
 * finds it diverged */
static void diverge(struct world *w, const char *local, const char *target)
{
	w->st.primary_id = 1;
	w->st.epoch = 3;
	w->m.ss = watched();
	w->st.primary_id = 2;
	w->st.epoch = 4;
	decide(w, 1000);
	assert_true(w->out.submit);
	assert_int_equal(w->out.q.kind, HA_ACT_REPOINT);
	struct ha_action_result *r = calloc(1, sizeof(*r));
	r->kind = HA_ACT_REPOINT;
	r->diverged = true;
	snprintf(r->errant, sizeof(r->errant), "0-1-107");
	snprintf(r->local_state, sizeof(r->local_state), "%s", local);
	snprintf(r->target_state, sizeof(r->target_state), "%s", target);
	r->server_id = 1;
	ha_node_done(&w->m, r, 1100);
	free(r);
}

static void decide_rejoins_a_safe_tail(void **state)
{
	(void)state;
	struct world *w = world();
	diverge(w, "0-1-107", "0-1-104,0-2-230");
	decide(w, 2000);
	assert_true(w->out.rejoin);
	assert_false(w->out.submit);
	assert_string_equal(w->out.rq.node, "node1");
	assert_string_equal(w->out.rq.start, "0-1-104");
	assert_string_equal(w->out.rq.stop, "0-1-107");
	assert_string_equal(w->out.rq.binlog_index, "/d/mariadb-bin.index");
	assert_int_equal(w->out.rq.count, 3);
	assert_non_null(strstr(w->m.rejoin, "rejoining: 3 errant"));
	/* one at a time */
	decide(w, 3000);
	assert_false(w->out.rejoin);
	/* a failure: retried after 30 s */
	ha_node_rejoin_done(&w->m, false, "re-clone: no backup", "1 saved to /x", 4000);
	assert_non_null(strstr(w->m.rejoin, "rejoin failed (attempt 1): re-clone: no backup"));
	assert_string_equal(w->m.errant_saved, "1 saved to /x");
	decide(w, 30000);
	assert_false(w->out.rejoin);
	decide(w, 34000);
	assert_true(w->out.rejoin);
	/* done: checked at once, then a replica */
	ha_node_rejoin_done(&w->m, true, "node1 re-cloned", "", 40000);
	assert_string_equal(w->m.errant_saved, "1 saved to /x");
	decide(w, 40001);
	assert_true(w->out.submit);
	assert_int_equal(w->out.q.kind, HA_ACT_REPOINT);
	struct Haagent__Health h;
	ha_node_health(&w->s, &w->m, 4, false, &h);
	assert_string_equal(h.errant_saved, "1 saved to /x");
	free(w);
}

static void decide_holds_an_unsafe_set(void **state)
{
	(void)state;
	struct world *w = world();
	diverge(w, "0-3-106,0-1-105", "0-1-104,0-2-230");
	decide(w, 2000);
	assert_false(w->out.rejoin);
	assert_non_null(strstr(w->m.rejoin, "diverged:"));
	assert_non_null(strstr(w->m.rejoin, "comes from server 3"));
	struct Haagent__Health h;
	ha_node_health(&w->s, &w->m, 4, false, &h);
	assert_string_equal(h.rejoin, w->m.rejoin);
	free(w);
	/* manual: held, says so */
	w = world();
	snprintf(w->cfg.rejoin, sizeof(w->cfg.rejoin), "manual");
	diverge(w, "0-1-105", "0-1-104,0-2-230");
	decide(w, 2000);
	assert_false(w->out.rejoin);
	assert_non_null(strstr(w->m.rejoin, "rejoin = manual"));
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(safe_tail),
	    cmocka_unit_test(semisync_off),
	    cmocka_unit_test(too_many),
	    cmocka_unit_test(foreign_server),
	    cmocka_unit_test(gap),
	    cmocka_unit_test(multi_domain),
	    cmocka_unit_test(manual),
	    cmocka_unit_test(backoff),
	    cmocka_unit_test(decide_rejoins_a_safe_tail),
	    cmocka_unit_test(decide_holds_an_unsafe_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
