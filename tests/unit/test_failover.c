#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../consensus/fsm.h"
#include "failover.h"

static const struct ha_fo_conf conf = {
    .confirm_ms = 500, .hang_timeout_ms = 8000, .stream_timeout_ms = 2500};

static struct ha_fo_node node(uint32_t id, const char *name, const char *gtid)
{
	struct ha_fo_node n = {.id = id,
	                       .name = name,
	                       .fresh = true,
	                       .db = 1,
	                       .db_error = "",
	                       .replicating = true,
	                       .io_running = true,
	                       .sql_running = true,
	                       .last_error = "",
	                       .rx_age_ms = 300,
	                       .gtid_current = gtid,
	                       .gtid_io_pos = gtid,
	                       .lag_seconds = 0,
	                       .priority = 100};
	return n;
}

static enum ha_verdict judge(struct ha_fo_node *p, struct ha_fo_node *r, uint64_t for_ms,
                             const char **kind)
{
	char why[512];
	return ha_fo_judge(p, r, 2, &conf, for_ms, kind, why, sizeof(why));
}

static void detection(void **state)
{
	(void)state;
	const char *kind;
	struct ha_fo_node p = node(1, "node1", "0-1-10");
	p.replicating = false;
	struct ha_fo_node r[2] = {node(2, "node2", "0-1-10"), node(3, "node3", "0-1-10")};

	assert_int_equal(judge(&p, r, 0, &kind), HA_PRIMARY_OK);
	/* mariadbd killed: its own agent sees refused connections; confirmed after confirm_ms */
	p.db = 2;
	assert_int_equal(judge(&p, r, 100, &kind), HA_PRIMARY_SUSPECT);
	assert_string_equal(kind, "db-down");
	assert_int_equal(judge(&p, r, 500, &kind), HA_PRIMARY_FAILED);
	/* mariadbd stopped shorter than the hang timeout: no failover */
	p.db = 3;
	assert_int_equal(judge(&p, r, 5000, &kind), HA_PRIMARY_SUSPECT);
	assert_string_equal(kind, "db-hung");
	assert_int_equal(judge(&p, r, 8000, &kind), HA_PRIMARY_FAILED);
	/* primary's agent stopped (SIGSTOP) while replicas still stream: never a failover */
	p.db = 1;
	p.fresh = false;
	assert_int_equal(judge(&p, r, 60000, &kind), HA_PRIMARY_SUSPECT);
	assert_string_equal(kind, "agent-unreachable");
	/* one replica cut from the primary (2 s network blip): not a majority */
	r[0].io_running = false;
	assert_int_equal(judge(&p, r, 60000, &kind), HA_PRIMARY_SUSPECT);
	/* host gone: agent silent and every replica lost its stream */
	r[1].rx_age_ms = 4000;
	assert_int_equal(judge(&p, r, 100, &kind), HA_PRIMARY_SUSPECT); /* not for long enough */
	assert_int_equal(judge(&p, r, 600, &kind), HA_PRIMARY_FAILED);
	/* no witness (replicas unreachable too): no decision, however long */
	r[0].fresh = r[1].fresh = false;
	assert_int_equal(judge(&p, r, 600000, &kind), HA_PRIMARY_SUSPECT);
	/* minutes of lag on a replica do not matter while the primary is fine */
	struct ha_fo_node p2 = node(1, "node1", "0-1-10");
	struct ha_fo_node r2[2] = {node(2, "node2", "0-1-2"), node(3, "node3", "0-1-10")};
	r2[0].lag_seconds = 300;
	assert_int_equal(judge(&p2, r2, 0, &kind), HA_PRIMARY_OK);
}

static void choose(void **state)
{
	(void)state;
	char why[1024];
	struct ha_fo_node n[3] = {node(2, "node2", "0-1-10"), node(3, "node3", "0-1-12"),
	                          node(4, "node4", "0-1-12")};
	/* most advanced wins; equal positions: higher priority, then lower lag, then id */
	n[2].priority = 200;
	assert_int_equal(ha_fo_choose(n, 3, false, why, sizeof(why)), 2);
	n[2].priority = 100;
	n[1].lag_seconds = 5;
	assert_int_equal(ha_fo_choose(n, 3, false, why, sizeof(why)), 2);
	n[1].lag_seconds = 0;
	assert_int_equal(ha_fo_choose(n, 3, false, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "node3"));
	/* ineligible nodes are skipped, each with its reason */
	n[1].flags = HA_MEMBER_MAINTENANCE;
	n[2].flags = HA_MEMBER_DIVERGED;
	assert_int_equal(ha_fo_choose(n, 3, false, why, sizeof(why)), 0);
	n[0].flags = HA_MEMBER_NO_PROMOTE;
	assert_int_equal(ha_fo_choose(n, 3, false, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "node2: no-promote"));
	assert_non_null(strstr(why, "node3: in maintenance"));
	assert_non_null(strstr(why, "node4: diverged"));
	/* broken replication, unreachable agent, dead database */
	struct ha_fo_node m[3] = {node(2, "node2", "0-1-10"), node(3, "node3", "0-1-10"),
	                          node(4, "node4", "0-1-10")};
	m[0].sql_running = false;
	m[0].last_error = "Duplicate entry";
	m[1].fresh = false;
	m[2].db = 2;
	assert_int_equal(ha_fo_choose(m, 3, false, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "replication broken"));
	assert_non_null(strstr(why, "agent unreachable"));
	assert_non_null(strstr(why, "database down"));
	/* relay log not applied yet: waits when asked to */
	struct ha_fo_node k[1] = {node(2, "node2", "0-1-10")};
	k[0].gtid_io_pos = "0-1-15";
	assert_false(ha_fo_relay_applied(&k[0]));
	assert_int_equal(ha_fo_choose(k, 1, true, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "relay log not applied"));
	assert_int_equal(ha_fo_choose(k, 1, false, why, sizeof(why)), 0);
	k[0].gtid_current = "0-1-15";
	assert_true(ha_fo_relay_applied(&k[0]));
}

static void unsafe(void **state)
{
	(void)state;
	char why[512];
	struct ha_fo_node n[3] = {node(2, "node2", "0-1-10"), node(3, "node3", "0-1-12"),
	                          node(4, "node4", "0-1-12")};
	n[1].flags = HA_MEMBER_NO_PROMOTE; /* the most advanced cannot be promoted */
	int best = ha_fo_choose(n, 3, false, why, sizeof(why));
	assert_int_equal(best, 2);
	assert_null(ha_fo_unsafe(n, 3, best, why, sizeof(why)));
	n[2].gtid_current = "0-1-11";
	best = ha_fo_choose(n, 3, false, why, sizeof(why));
	assert_int_equal(best, 2);
	/* node3 (no-promote) has 0-1-12 that node4 lacks: not safe yet */
	assert_non_null(ha_fo_unsafe(n, 3, best, why, sizeof(why)));
	assert_non_null(strstr(why, "node3 has transactions node4 lacks"));
	/* an unreported node may hold anything */
	n[1].gtid_current = "0-1-11";
	n[0].fresh = false;
	assert_non_null(ha_fo_unsafe(n, 3, best, why, sizeof(why)));
	assert_non_null(strstr(why, "waiting for node2"));
	/* a node whose database is down cannot be read: not a reason to wait */
	n[0].fresh = true;
	n[0].db = 2;
	n[0].gtid_current = "0-1-99";
	assert_null(ha_fo_unsafe(n, 3, best, why, sizeof(why)));
}

static bool has_check(const struct ha_so_check *c, size_t n, bool ok, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].ok == ok && strstr(c[i].text, text))
			return true;
	return false;
}

static void switchover_plan(void **state)
{
	(void)state;
	struct ha_fo_node p = node(1, "node1", "0-1-10");
	p.replicating = false;
	p.read_only = false;
	p.lease_held = true;
	p.server_id = 1;
	struct ha_fo_node r[2] = {node(2, "node2", "0-1-10"), node(3, "node3", "0-1-10")};
	r[0].server_id = 2;
	r[1].server_id = 3;
	r[1].priority = 200;
	struct ha_so_check c[HA_SO_MAX_CHECKS];
	size_t n;
	char why[1024];
	/* no target: the best healthy replica (equal positions: priority) */
	assert_int_equal(ha_so_plan(&p, r, 2, NULL, 10000, c, &n, why, sizeof(why)), 1);
	assert_true(has_check(c, n, true, "node1 (primary): writable"));
	assert_true(has_check(c, n, true, "node2: healthy"));
	/* named target */
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), 0);
	/* the primary itself, an unknown node */
	assert_int_equal(ha_so_plan(&p, r, 2, "node1", 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "already the primary"));
	assert_int_equal(ha_so_plan(&p, r, 2, "node9", 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no node named node9 (replicas: node2, node3)"));
	/* lagging beyond the limit, with advice */
	r[0].lag_seconds = 30;
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "lags 30 s (limit 10000 ms)"));
	assert_non_null(strstr(why, "max_lag_ms"));
	assert_true(has_check(c, n, false, "node2 (target): lags 30 s"));
	/* ...and then the automatic pick skips it even with the better priority */
	r[0].priority = 500;
	assert_int_equal(ha_so_plan(&p, r, 2, NULL, 10000, c, &n, why, sizeof(why)), 1);
	r[0].lag_seconds = 0;
	/* stopped SQL thread, database down, maintenance, no-promote, diverged */
	r[0].sql_running = false;
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not both running"));
	r[0].sql_running = true;
	r[0].db = 2;
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "database down"));
	r[0].db = 1;
	r[0].flags = HA_MEMBER_MAINTENANCE;
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "haadm node maintenance NODE off"));
	r[0].flags = HA_MEMBER_NO_PROMOTE;
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), -1);
	r[0].flags = HA_MEMBER_DIVERGED;
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "diverged"));
	r[0].flags = 0;
	/* errant transactions: its own server id beyond the primary, or a domain the primary lacks
	 */
	r[0].gtid_current = "0-2-11";
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "transactions the primary lacks"));
	r[0].gtid_current = "0-1-10,9-2-1";
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), -1);
	/* ahead of the primary's last report with the primary's server id: only a newer sample */
	r[0].gtid_current = "0-1-12";
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), 0);
	/* an unhealthy primary: no switchover (automatic failover's job) */
	p.read_only = true;
	assert_int_equal(ha_so_plan(&p, r, 2, NULL, 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "read-only"));
	p.read_only = false;
	p.lease_held = false;
	assert_int_equal(ha_so_plan(&p, r, 2, NULL, 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "write lease"));
	/* nobody fit */
	p.lease_held = true;
	r[0].db = 2;
	r[1].flags = HA_MEMBER_MAINTENANCE;
	assert_int_equal(ha_so_plan(&p, r, 2, NULL, 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no replica can take over"));
	assert_non_null(strstr(why, "node3: in maintenance"));
}

static void maintenance_is_no_witness(void **state)
{
	(void)state;
	const char *kind;
	struct ha_fo_node p = node(1, "node1", "0-1-10");
	p.fresh = false; /* the primary's agent is silent */
	struct ha_fo_node r[2] = {node(2, "node2", "0-1-10"), node(3, "node3", "0-1-10")};
	/* node3's replication was stopped by an operator during maintenance: not evidence */
	r[1].io_running = false;
	r[1].flags = HA_MEMBER_MAINTENANCE;
	assert_int_equal(judge(&p, r, 5000, &kind), HA_PRIMARY_SUSPECT);
	/* so the one real witness decides: it lost its stream too */
	r[0].io_running = false;
	assert_int_equal(judge(&p, r, 5000, &kind), HA_PRIMARY_FAILED);
	r[0].io_running = true;
	r[1].flags = 0;
	/* out of maintenance node3 is a witness again, and 1 of 2 is no majority */
	assert_int_equal(judge(&p, r, 5000, &kind), HA_PRIMARY_SUSPECT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(detection),
	    cmocka_unit_test(choose),
	    cmocka_unit_test(unsafe),
	    cmocka_unit_test(switchover_plan),
	    cmocka_unit_test(maintenance_is_no_witness),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
