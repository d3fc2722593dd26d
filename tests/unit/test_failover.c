#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../consensus/fsm.h"
#include "common/gtid.h"
#include "db/binlog.h"
#include "db/classify.h"
#include "coord/failover.h"

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
                             enum ha_suspicion *kind)
{
	char why[512];
	return ha_fo_judge(p, r, 2, &conf, for_ms, kind, why, sizeof(why));
}

static void detection(void **state)
{
	(void)state;
	enum ha_suspicion kind;
	struct ha_fo_node p = node(1, "node1", "0-1-10");
	p.replicating = false;
	struct ha_fo_node r[2] = {node(2, "node2", "0-1-10"), node(3, "node3", "0-1-10")};

	assert_int_equal(judge(&p, r, 0, &kind), HA_PRIMARY_OK);
	/* mariadbd killed: its own agent sees refused connections; confirmed after confirm_ms */
	p.db = 2;
	assert_int_equal(judge(&p, r, 100, &kind), HA_PRIMARY_SUSPECT);
	assert_string_equal(ha_suspicion_name(kind), "db-down");
	assert_int_equal(judge(&p, r, 500, &kind), HA_PRIMARY_FAILED);
	/* mariadbd stopped shorter than the hang timeout: no failover */
	p.db = 3;
	assert_int_equal(judge(&p, r, 5000, &kind), HA_PRIMARY_SUSPECT);
	assert_string_equal(ha_suspicion_name(kind), "db-hung");
	assert_int_equal(judge(&p, r, 8000, &kind), HA_PRIMARY_FAILED);
	/* primary's agent stopped (SIGSTOP) while replicas still stream: never a failover */
	p.db = 1;
	p.fresh = false;
	assert_int_equal(judge(&p, r, 60000, &kind), HA_PRIMARY_SUSPECT);
	assert_string_equal(ha_suspicion_name(kind), "agent-unreachable");
	/* one replica cut from the primary (2 s network blip): not a majority */
	r[0].io_running = false;
	assert_int_equal(judge(&p, r, 60000, &kind), HA_PRIMARY_SUSPECT);
	/* host gone: agent silent and every replica lost its stream */
	r[1].rx_age_ms = 4000;
	r[0].lost_for_ms = r[1].lost_for_ms = 600;
	assert_int_equal(judge(&p, r, 100, &kind), HA_PRIMARY_SUSPECT); /* not for long enough */
	assert_int_equal(judge(&p, r, 600, &kind), HA_PRIMARY_FAILED);
	/* a replica just repointed or restarted, its IO thread still connecting, is no witness
	 * yet, however long the primary's agent has been silent (a frozen agent: its server may
	 * still be writable) */
	r[1].lost_for_ms = 100;
	assert_int_equal(judge(&p, r, 60000, &kind), HA_PRIMARY_SUSPECT);
	r[1].lost_for_ms = 500;
	assert_int_equal(judge(&p, r, 60000, &kind), HA_PRIMARY_FAILED);
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

/* The long-DDL failure: node2's SQL thread is stuck behind a long ALTER (applied 0-1-100) while
 * its relay log holds up to 0-1-258, acknowledged by semi-sync; node3 applied more (0-1-150) but
 * received less. Ranking by what was applied chose node3 and lost 108 acknowledged writes. */
static void ranks_by_received(void **state)
{
	(void)state;
	char why[512];
	bool known;
	struct ha_fo_node n[2] = {node(2, "node2", "0-1-100"), node(3, "node3", "0-1-150")};
	n[0].gtid_io_pos = "0-1-258";
	n[1].gtid_io_pos = "0-1-150";
	assert_int_equal(ha_fo_choose(n, 2, false, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "received 0-1-258"));
	assert_null(ha_fo_unsafe(n, 2, 0, why, sizeof(why), &known));
	/* node3 as the candidate would be unsafe: node2 received what it lacks */
	assert_non_null(ha_fo_unsafe(n, 2, 1, why, sizeof(why), &known));
	/* many domains: the union per domain of applied and received */
	struct ha_gtid_pos rx;
	struct ha_fo_node m = node(4, "node4", "1-1-5,2-1-9");
	m.gtid_io_pos = "2-1-12,3-1-1";
	assert_int_equal(ha_fo_received(&m, &rx), 0);
	char text[128];
	ha_gtid_format(&rx, text, sizeof(text));
	assert_string_equal(text, "1-1-5,2-1-12,3-1-1");
	/* its relay log exhausted and no stream: Gtid_IO_Pos may claim more than it holds */
	m.relay_exhausted = true;
	assert_int_equal(ha_fo_received(&m, &rx), 0);
	ha_gtid_format(&rx, text, sizeof(text));
	assert_string_equal(text, "1-1-5,2-1-9");
	m.relay_exhausted = false;
	/* not replicating: the relay log is not counted */
	m.replicating = false;
	assert_int_equal(ha_fo_received(&m, &rx), 0);
	ha_gtid_format(&rx, text, sizeof(text));
	assert_string_equal(text, "1-1-5,2-1-9");
}

/* Only a refused port is "down": an error the server answers with is "unusable". */
static void classify(void **state)
{
	(void)state;
	/* 1045 access denied, 1040 too many connections, 1226 limits, 1129 blocked, 1227
	 * privilege, 1820/1862 password expired: the server is there */
	const unsigned answered[] = {1045, 1040, 1226, 1129, 1227, 1820, 1862, 1044, 1142};
	for (size_t i = 0; i < sizeof(answered) / sizeof(answered[0]); i++) {
		assert_int_equal(ha_db_classify(answered[i], false, HA_PORT_OPEN), HA_DB_UNUSABLE);
		assert_int_equal(ha_db_classify(answered[i], false, HA_PORT_UNKNOWN),
		                 HA_DB_UNUSABLE);
	}
	assert_string_equal(ha_db_unusable_kind(1045), "login");
	assert_string_equal(ha_db_unusable_kind(1040), "connection-limit");
	assert_string_equal(ha_db_unusable_kind(1227), "privilege");
	assert_string_equal(ha_db_unusable_kind(1862), "password-expired");
	/* nothing listens: down, whatever the library said */
	assert_int_equal(ha_db_classify(2003, false, HA_PORT_REFUSED), HA_DB_DOWN);
	assert_int_equal(ha_db_classify(2013, false, HA_PORT_REFUSED), HA_DB_DOWN);
	/* the port check could not tell (no local port left, EINTR): no proof */
	assert_int_equal(ha_db_classify(2003, false, HA_PORT_UNKNOWN), HA_DB_UNUSABLE);
	/* a server that answered with its own error exists, whatever the port says next */
	assert_int_equal(ha_db_classify(1045, false, HA_PORT_REFUSED), HA_DB_UNUSABLE);
	/* the library could not connect, yet the port accepts now (restarted): not proof */
	assert_int_equal(ha_db_classify(2003, false, HA_PORT_OPEN), HA_DB_UNUSABLE);
	/* lost at once while something listens */
	assert_int_equal(ha_db_classify(2013, false, HA_PORT_OPEN), HA_DB_UNUSABLE);
	/* timeouts: hung */
	assert_int_equal(ha_db_classify(2013, true, HA_PORT_UNKNOWN), HA_DB_HUNG);
	assert_int_equal(ha_db_classify(2003, false, HA_PORT_SILENT), HA_DB_HUNG);
	/* the server says it is shutting down: down only once its port refuses */
	assert_int_equal(ha_db_classify(1053, false, HA_PORT_OPEN), HA_DB_UNUSABLE);
}

/* A primary whose agent cannot log in is no failed primary: its replicas still stream. */
static void unusable_is_not_down(void **state)
{
	(void)state;
	char why[512];
	enum ha_suspicion kind;
	struct ha_fo_node p = node(1, "node1", "0-1-10");
	struct ha_fo_node r[2] = {node(2, "node2", "0-1-10"), node(3, "node3", "0-1-10")};
	p.db = 4;
	p.db_error = "connect: Access denied for user 'haagent' (1045)";
	/* for a long time, replicas streaming: never failed */
	assert_int_equal(ha_fo_judge(&p, r, 2, &conf, 600000, &kind, why, sizeof(why)),
	                 HA_PRIMARY_SUSPECT);
	assert_string_equal(ha_suspicion_name(kind), "db-unusable");
	assert_non_null(strstr(why, "Access denied"));
	assert_non_null(strstr(why, "0 of 2 replicas lost their stream"));
	/* the replicas lost their stream too: the server is really gone */
	r[0].io_running = r[1].io_running = false;
	r[0].lost_for_ms = r[1].lost_for_ms = 600;
	assert_int_equal(ha_fo_judge(&p, r, 2, &conf, 100, &kind, why, sizeof(why)),
	                 HA_PRIMARY_SUSPECT);
	assert_int_equal(ha_fo_judge(&p, r, 2, &conf, 600, &kind, why, sizeof(why)),
	                 HA_PRIMARY_FAILED);
	/* an unusable replica is not promoted */
	struct ha_fo_node c[1] = {node(2, "node2", "0-1-10")};
	c[0].db = 4;
	assert_int_equal(ha_fo_choose(c, 1, false, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "unusable"));
}

static void unsafe(void **state)
{
	(void)state;
	char why[512];
	bool known;
	struct ha_fo_node n[3] = {node(2, "node2", "0-1-10"), node(3, "node3", "0-1-12"),
	                          node(4, "node4", "0-1-12")};
	n[1].flags = HA_MEMBER_NO_PROMOTE; /* the most advanced cannot be promoted */
	int best = ha_fo_choose(n, 3, false, why, sizeof(why));
	assert_int_equal(best, 2);
	assert_null(ha_fo_unsafe(n, 3, best, why, sizeof(why), &known));
	/* node4 applied 0-1-11 but received 0-1-12: what it received counts, it applies the rest
	 * before it turns writable */
	n[2].gtid_current = "0-1-11";
	assert_null(ha_fo_unsafe(n, 3, best, why, sizeof(why), &known));
	n[2].gtid_io_pos = "0-1-11";
	best = ha_fo_choose(n, 3, false, why, sizeof(why));
	assert_int_equal(best, 2);
	/* node3 (no-promote) has 0-1-12 that node4 has not received: not safe yet */
	assert_non_null(ha_fo_unsafe(n, 3, best, why, sizeof(why), &known));
	assert_non_null(strstr(why, "node3 has received transactions node4 lacks"));
	assert_true(known); /* a reachable node has more: worth waiting for, however long */
	/* node3 received 0-1-12 without applying it: the same */
	n[1].gtid_current = "0-1-11";
	assert_non_null(ha_fo_unsafe(n, 3, best, why, sizeof(why), &known));
	/* an unreported node may hold anything */
	n[1].gtid_io_pos = "0-1-11";
	n[0].fresh = false;
	assert_non_null(ha_fo_unsafe(n, 3, best, why, sizeof(why), &known));
	assert_non_null(strstr(why, "waiting for node2"));
	assert_false(known); /* unknown: bounded by apply_timeout_ms */
	/* a replica whose agent cannot read its database: unknown too, not "holds nothing" */
	n[0].fresh = true;
	n[0].db = 4;
	assert_non_null(ha_fo_unsafe(n, 3, best, why, sizeof(why), &known));
	assert_non_null(strstr(why, "unusable"));
	assert_false(known);
	n[0].db = 3;
	assert_non_null(ha_fo_unsafe(n, 3, best, why, sizeof(why), &known));
	assert_non_null(strstr(why, "hung"));
	n[0].db = 1;
	n[0].fresh = false;
	/* a node whose database is down cannot be read: not a reason to wait */
	n[0].fresh = true;
	n[0].db = 2;
	n[0].gtid_current = "0-1-99";
	assert_null(ha_fo_unsafe(n, 3, best, why, sizeof(why), &known));
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
	/* the target already applied a new domain the primary wrote after its last report: not
	 * errant (the primary's own server id); a domain from another server the primary lacks
	 * is */
	r[0].gtid_current = "0-1-10,7-1-1000";
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), 0);
	r[0].gtid_current = "0-1-10,7-3-1000";
	assert_int_equal(ha_so_plan(&p, r, 2, "node2", 10000, c, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "has transactions the primary lacks"));
	r[0].gtid_current = "0-1-10";
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
	enum ha_suspicion kind;
	struct ha_fo_node p = node(1, "node1", "0-1-10");
	p.fresh = false; /* the primary's agent is silent */
	struct ha_fo_node r[2] = {node(2, "node2", "0-1-10"), node(3, "node3", "0-1-10")};
	/* node3's replication was stopped by an operator during maintenance: not evidence */
	r[1].io_running = false;
	r[1].lost_for_ms = 5000;
	r[1].flags = HA_MEMBER_MAINTENANCE;
	assert_int_equal(judge(&p, r, 5000, &kind), HA_PRIMARY_SUSPECT);
	/* so the one real witness decides: it lost its stream too */
	r[0].io_running = false;
	r[0].lost_for_ms = 5000;
	assert_int_equal(judge(&p, r, 5000, &kind), HA_PRIMARY_FAILED);
	r[0].io_running = true;
	r[1].flags = 0;
	/* out of maintenance node3 is a witness again, and 1 of 2 is no majority */
	assert_int_equal(judge(&p, r, 5000, &kind), HA_PRIMARY_SUSPECT);
}

/* A binlog head: magic, a Format_description event of fde bytes, a Gtid_list event. */
static size_t binlog_head(uint8_t *b, uint32_t fde, uint32_t count, const uint32_t *ent,
                          bool checksum)
{
	size_t at = 0;
	memcpy(b,
	       "\xfe"
	       "bin",
	       4);
	at = 4;
	memset(b + at, 0, fde);
	b[at + 4] = 15;
	memcpy(b + at + 9, &fde, 4); /* little-endian host */
	at += fde;
	uint32_t size = 19 + 4 + count * 16 + (checksum ? 4 : 0);
	memset(b + at, 0, size);
	b[at + 4] = 163;
	memcpy(b + at + 9, &size, 4);
	memcpy(b + at + 19, &count, 4);
	for (uint32_t i = 0; i < count; i++) {
		uint64_t seq = ent[i * 3 + 2];
		memcpy(b + at + 23 + i * 16, &ent[i * 3], 4);
		memcpy(b + at + 27 + i * 16, &ent[i * 3 + 1], 4);
		memcpy(b + at + 31 + i * 16, &seq, 8);
	}
	return at + size;
}

/* Salvage begins at the newest binlog file whose Gtid_list lies within what the candidate has;
 * the head is parsed as hostile input. */
static void binlog_heads(void **state)
{
	(void)state;
	uint8_t b[4096];
	struct ha_gtid_pos p, have;
	/* domain 0 from two servers (the highest seq wins), domain 5 */
	uint32_t ent[] = {0, 1, 90, 0, 2, 120, 5, 1, 7};
	size_t n = binlog_head(b, 256, 3, ent, true);
	assert_int_equal(ha_binlog_head_position(b, n, &p), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.g[0].domain, 0);
	assert_int_equal(p.g[0].seq, 120);
	assert_int_equal(p.g[0].server, 2);
	assert_int_equal(p.g[1].domain, 5);
	assert_int_equal(p.g[1].seq, 7);
	/* within: every domain present, at a sequence number no higher */
	assert_int_equal(ha_gtid_parse("0-2-120,5-1-9", &have, NULL), 0);
	assert_true(ha_binlog_starts_within(&p, &have));
	assert_int_equal(ha_gtid_parse("0-2-119,5-1-9", &have, NULL), 0);
	assert_false(ha_binlog_starts_within(&p, &have));
	assert_int_equal(ha_gtid_parse("0-2-500", &have, NULL), 0);
	assert_false(ha_binlog_starts_within(&p, &have)); /* domain 5 missing */
	/* an empty list (the first file ever) starts within anything */
	n = binlog_head(b, 256, 0, ent, false);
	assert_int_equal(ha_binlog_head_position(b, n, &p), 0);
	assert_int_equal(p.n, 0);
	assert_true(ha_binlog_starts_within(&p, &have));
	/* hostile: every truncation, a count beyond the event, an event beyond the bytes, no
	 * magic, a first event that is not a Format_description */
	n = binlog_head(b, 256, 3, ent, true);
	for (size_t cut = 0; cut < n - 4; cut++)
		assert_int_equal(ha_binlog_head_position(b, cut, &p), -1);
	uint8_t c[4096];
	memcpy(c, b, n);
	uint32_t big = 1000;
	memcpy(c + 4 + 256 + 19, &big, 4);
	assert_int_equal(ha_binlog_head_position(c, n, &p), -1);
	memcpy(c, b, n);
	uint32_t huge = 0xfffffff0u;
	memcpy(c + 4 + 9, &huge, 4);
	assert_int_equal(ha_binlog_head_position(c, n, &p), -1);
	uint32_t tiny = 3;
	memcpy(c + 4 + 9, &tiny, 4);
	assert_int_equal(ha_binlog_head_position(c, n, &p), -1);
	memcpy(c, b, n);
	c[0] = 0;
	assert_int_equal(ha_binlog_head_position(c, n, &p), -1);
	memcpy(c, b, n);
	c[4 + 4] = 2;
	assert_int_equal(ha_binlog_head_position(c, n, &p), -1);
	/* more domains than a position holds: refused, not cut */
	static uint32_t many[3 * (HA_GTID_MAX_DOMAINS + 1)];
	for (uint32_t i = 0; i <= HA_GTID_MAX_DOMAINS; i++) {
		many[i * 3] = i;
		many[i * 3 + 1] = 1;
		many[i * 3 + 2] = 5;
	}
	n = binlog_head(b, 64, HA_GTID_MAX_DOMAINS + 1, many, true);
	assert_int_equal(ha_binlog_head_position(b, n, &p), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(detection),
	    cmocka_unit_test(choose),
	    cmocka_unit_test(unsafe),
	    cmocka_unit_test(ranks_by_received),
	    cmocka_unit_test(unusable_is_not_down),
	    cmocka_unit_test(classify),
	    cmocka_unit_test(binlog_heads),
	    cmocka_unit_test(switchover_plan),
	    cmocka_unit_test(maintenance_is_no_witness),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
