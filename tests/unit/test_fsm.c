#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../consensus/fsm.h"

static unsigned make_members(struct ha_member *m)
{
	memset(m, 0, sizeof(*m) * 3);
	for (unsigned i = 0; i < 3; i++) {
		m[i].id = i + 1;
		snprintf(m[i].name, sizeof(m[i].name), "node%u", i + 1);
		snprintf(m[i].address, sizeof(m[i].address), "127.0.0.%u", 11 + i);
		m[i].raft_port = 7100;
		m[i].rpc_port = 7200;
		m[i].db_port = 3306;
	}
	return 3;
}

static int apply_init(struct ha_fsm_state *s)
{
	struct ha_member m[3];
	unsigned n = make_members(m);
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_init_members("c1", m, n, NULL, &buf, &len), 0);
	assert_int_equal(len % 8, 0); /* libraft's uv backend needs 8-byte multiples */
	struct ha_err e = {0};
	int rc = ha_fsm_apply(s, buf, len, &e);
	free(buf);
	return rc;
}

static int apply_set(struct ha_fsm_state *s, uint64_t expected, uint32_t id)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_set_primary(expected, id, "test", NULL, &buf, &len), 0);
	struct ha_err e = {0};
	int rc = ha_fsm_apply(s, buf, len, &e);
	free(buf);
	return rc;
}

static void init_members_once(void **state)
{
	(void)state;
	struct ha_fsm_state s;
	ha_fsm_init(&s);
	assert_int_equal(apply_init(&s), HA_FSM_APPLIED);
	assert_int_equal(s.n_members, 3);
	assert_string_equal(s.cluster, "c1");
	assert_string_equal(ha_fsm_member(&s, 2)->name, "node2");
	/* idempotent: a second proposal (e.g. after RAFT_LEADERSHIPLOST) changes nothing */
	assert_int_equal(apply_init(&s), HA_FSM_NOOP);
	assert_int_equal(s.n_members, 3);
}

static void set_primary_is_compare_and_set(void **state)
{
	(void)state;
	struct ha_fsm_state s;
	ha_fsm_init(&s);
	/* not a member yet */
	assert_true(apply_set(&s, 0, 1) < 0);
	apply_init(&s);
	assert_int_equal(apply_set(&s, 0, 1), HA_FSM_APPLIED);
	assert_int_equal(s.primary_id, 1);
	assert_int_equal(s.epoch, 1);
	/* the same decision applied twice: no second epoch bump */
	assert_int_equal(apply_set(&s, 0, 1), HA_FSM_NOOP);
	assert_int_equal(s.epoch, 1);
	/* a decision taken on a stale view is ignored */
	assert_int_equal(apply_set(&s, 0, 2), HA_FSM_NOOP);
	assert_int_equal(s.primary_id, 1);
	assert_int_equal(apply_set(&s, 1, 2), HA_FSM_APPLIED);
	assert_int_equal(s.primary_id, 2);
	assert_int_equal(s.epoch, 2);
	assert_true(apply_set(&s, 2, 99) < 0); /* unknown node */
	assert_int_equal(s.primary_id, 2);
}

static void snapshot_round_trip(void **state)
{
	(void)state;
	struct ha_fsm_state s, r;
	ha_fsm_init(&s);
	apply_init(&s);
	apply_set(&s, 0, 3);
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_snapshot(&s, NULL, &buf, &len), 0);
	ha_fsm_init(&r);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(&r, buf, len, &e), 0);
	free(buf);
	assert_int_equal(r.n_members, 3);
	assert_int_equal(r.primary_id, 3);
	assert_int_equal(r.epoch, 1);
	assert_int_equal(r.applied_commands, s.applied_commands);
	assert_string_equal(r.cluster, "c1");
	assert_string_equal(r.members[2].address, "127.0.0.13");
	assert_string_equal(r.primary_reason, "test");
	/* restored state keeps applying the same way */
	assert_int_equal(apply_set(&r, 1, 1), HA_FSM_APPLIED);
	assert_int_equal(r.epoch, 2);
}

/* Entries and snapshots that are truncated or corrupted are refused and leave the state as it
 * was. */
static void hostile_input(void **state)
{
	(void)state;
	struct ha_fsm_state s;
	ha_fsm_init(&s);
	apply_init(&s);
	apply_set(&s, 0, 1);
	struct ha_fsm_state before = s;
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_set_primary(1, 2, "x", NULL, &buf, &len), 0);
	struct ha_err e = {0};
	for (size_t cut = 0; cut < len; cut++)
		assert_true(ha_fsm_apply(&s, buf, cut, &e) < 0);
	assert_memory_equal(&s, &before, sizeof(s));
	srand(7);
	for (int i = 0; i < 5000; i++) {
		uint8_t *c = malloc(len);
		memcpy(c, buf, len);
		c[(size_t)rand() % len] ^= (uint8_t)(1 + rand() % 255);
		struct ha_fsm_state t = before;
		int rc = ha_fsm_apply(&t, c, len, &e);
		/* either refused (unchanged), or decoded to some valid command */
		if (rc < 0)
			assert_memory_equal(&t, &before, sizeof(t));
		free(c);
	}
	free(buf);

	uint8_t junk[64];
	memset(junk, 0xff, sizeof(junk));
	assert_true(ha_fsm_restore(&s, junk, sizeof(junk), &e) < 0);
	assert_int_equal(s.primary_id, before.primary_id);
	/* a snapshot naming a primary that is not a member */
	struct ha_fsm_state bad = before;
	bad.primary_id = 42;
	assert_int_equal(ha_fsm_snapshot(&bad, NULL, &buf, &len), 0);
	assert_true(ha_fsm_restore(&s, buf, len, &e) < 0);
	assert_int_equal(s.primary_id, before.primary_id);
	free(buf);
}

static int apply_buf(struct ha_fsm_state *s, uint8_t *buf, size_t len)
{
	struct ha_err e = {0};
	int rc = ha_fsm_apply(s, buf, len, &e);
	free(buf);
	return rc;
}

static int begin(struct ha_fsm_state *s, uint64_t expected, uint32_t old)
{
	uint8_t *buf;
	size_t len;
	struct ha_fo_begin b = {
	    .expected_epoch = expected, .old_primary = old, .reason = "db down", .unix_ms = 1000};
	assert_int_equal(ha_fsm_cmd_failover_begin(&b, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

static int switchover(struct ha_fsm_state *s, uint64_t expected, uint32_t old, uint32_t target)
{
	uint8_t *buf;
	size_t len;
	struct ha_fo_begin b = {.expected_epoch = expected,
	                        .old_primary = old,
	                        .reason = "operator",
	                        .unix_ms = 1000,
	                        .planned = true,
	                        .target = target,
	                        .timeout_ms = 5000,
	                        .grace_ms = 700};
	assert_int_equal(ha_fsm_cmd_failover_begin(&b, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

static int advance(struct ha_fsm_state *s, uint64_t id, enum ha_fo_phase phase, uint32_t cand)
{
	struct ha_fo_advance a = {.id = id,
	                          .phase = phase,
	                          .candidate = cand,
	                          .unix_ms = 2000 + phase,
	                          .fenced_by = "own agent: mariadbd down",
	                          .lost_gtid = "0-1-7",
	                          .lost_count = 2,
	                          .detail = "most advanced"};
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_failover_advance(&a, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

static void failover_lifecycle(void **state)
{
	(void)state;
	struct ha_fsm_state s;
	ha_fsm_init(&s);
	apply_init(&s);
	apply_set(&s, 0, 1);
	assert_false(ha_fsm_failover_active(&s));
	/* wrong epoch or wrong old primary: no-op */
	assert_int_equal(begin(&s, 0, 1), HA_FSM_NOOP);
	assert_int_equal(begin(&s, 1, 2), HA_FSM_NOOP);
	assert_int_equal(begin(&s, 1, 1), HA_FSM_APPLIED);
	assert_true(ha_fsm_failover_active(&s));
	assert_int_equal(s.epoch, 2);
	assert_int_equal(s.primary_id, 0); /* nobody may write while the old primary is fenced */
	assert_int_equal(s.failover.id, 1);
	assert_int_equal(s.failover.phase, HA_FO_BEGIN);
	assert_int_equal(s.failover.epoch, 2);
	/* a repeated begin (RAFT_LEADERSHIPLOST retry) does not start a second failover */
	assert_int_equal(begin(&s, 1, 1), HA_FSM_NOOP);
	assert_int_equal(s.epoch, 2);
	/* phases move forward only, in order */
	assert_int_equal(advance(&s, 1, HA_FO_PROMOTING, 2), HA_FSM_NOOP); /* not fenced yet */
	assert_int_equal(advance(&s, 1, HA_FO_DONE, 0), HA_FSM_NOOP);
	assert_int_equal(advance(&s, 9, HA_FO_FENCED, 0), HA_FSM_NOOP); /* other failover */
	assert_int_equal(advance(&s, 1, HA_FO_FENCED, 0), HA_FSM_APPLIED);
	assert_string_equal(s.failover.fenced_by, "own agent: mariadbd down");
	assert_int_equal(advance(&s, 1, HA_FO_FENCED, 0), HA_FSM_NOOP);
	assert_true(advance(&s, 1, HA_FO_PROMOTING, 42) < 0); /* not a member */
	assert_int_equal(advance(&s, 1, HA_FO_PROMOTING, 3), HA_FSM_APPLIED);
	assert_int_equal(s.primary_id, 3);
	assert_int_equal(s.epoch, 2); /* the epoch was bumped at begin, once */
	assert_string_equal(s.failover.lost_gtid, "0-1-7");
	assert_int_equal(s.failover.lost_count, 2);
	assert_int_equal(advance(&s, 1, HA_FO_ABORTED, 1), HA_FSM_NOOP); /* too late to abort */
	assert_int_equal(advance(&s, 1, HA_FO_DONE, 0), HA_FSM_APPLIED);
	assert_false(ha_fsm_failover_active(&s));
	assert_int_equal(s.failover.done_ms, 2000 + HA_FO_DONE);
	assert_int_equal(s.failovers_done, 1);
	/* the next failover starts from the new primary and epoch */
	assert_int_equal(begin(&s, 2, 1), HA_FSM_NOOP);
	assert_int_equal(begin(&s, 2, 3), HA_FSM_APPLIED);
	assert_int_equal(s.failover.id, 2);
	assert_int_equal(s.epoch, 3);
	/* abort before promotion hands the primary back (planned rollback) */
	assert_int_equal(advance(&s, 2, HA_FO_ABORTED, 3), HA_FSM_APPLIED);
	assert_int_equal(s.primary_id, 3);
	assert_false(ha_fsm_failover_active(&s));
	/* events were recorded in order */
	const char *want[] = {"primary-established", "failover-begin", "old-primary-fenced",
	                      "candidate-chosen",    "failover-done",  "failover-begin",
	                      "failover-aborted"};
	assert_int_equal(s.n_events, 7);
	for (unsigned i = 0; i < 7; i++) {
		assert_string_equal(s.events[i].name, want[i]);
		assert_int_equal(s.events[i].seq, i + 1);
	}
	assert_string_equal(s.events[3].node, "node3");
}

/* The bounded exits of PROMOTING: a candidate that dies is superseded by a new failover; an
 * operator's --accept-loss is a modifier of PROMOTING whose final lost set comes with DONE. */
static void promoting_exits(void **state)
{
	(void)state;
	struct ha_fsm_state s;
	ha_fsm_init(&s);
	apply_init(&s);
	apply_set(&s, 0, 1);
	assert_int_equal(begin(&s, 1, 1), HA_FSM_APPLIED);
	assert_int_equal(advance(&s, 1, HA_FO_FENCED, 0), HA_FSM_APPLIED);
	/* not superseded before promotion, nor with the wrong node or epoch */
	assert_int_equal(begin(&s, 2, 0 + 2), HA_FSM_NOOP);
	assert_int_equal(advance(&s, 1, HA_FO_PROMOTING, 2), HA_FSM_APPLIED);
	assert_int_equal(begin(&s, 2, 3), HA_FSM_NOOP); /* node3 is not the candidate */
	assert_int_equal(begin(&s, 1, 2), HA_FSM_NOOP); /* stale epoch */
	/* the candidate node2 died while promoting: a new failover, node2 its old primary */
	assert_int_equal(begin(&s, 2, 2), HA_FSM_APPLIED);
	assert_int_equal(s.failover.id, 2);
	assert_int_equal(s.failover.old_primary, 2);
	assert_int_equal(s.failover.phase, HA_FO_BEGIN);
	assert_int_equal(s.epoch, 3);
	assert_int_equal(s.primary_id, 0);
	assert_string_equal(s.events[s.n_events - 2].name, "failover-superseded");
	assert_int_equal(begin(&s, 2, 2), HA_FSM_NOOP); /* idempotent */
	/* accept-loss: only in PROMOTING, once */
	struct ha_fo_advance acc = {.id = 2,
	                            .phase = HA_FO_PROMOTING,
	                            .accept_loss = true,
	                            .lost_gtid = "0-1-30",
	                            .lost_count = 20,
	                            .detail = "operator"};
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_failover_advance(&acc, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_NOOP); /* still fencing */
	assert_int_equal(advance(&s, 2, HA_FO_FENCED, 0), HA_FSM_APPLIED);
	assert_int_equal(advance(&s, 2, HA_FO_PROMOTING, 3), HA_FSM_APPLIED);
	assert_false(s.failover.accept_loss);
	assert_int_equal(ha_fsm_cmd_failover_advance(&acc, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_true(s.failover.accept_loss);
	assert_int_equal(s.failover.phase, HA_FO_PROMOTING);
	assert_string_equal(s.failover.lost_gtid, "0-1-30");
	assert_int_equal(ha_fsm_cmd_failover_advance(&acc, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_NOOP);
	/* DONE carries the truth: what the candidate did not apply before it stopped */
	struct ha_fo_advance done = {
	    .id = 2, .phase = HA_FO_DONE, .lost_gtid = "0-1-30", .lost_count = 4, .detail = "d"};
	assert_int_equal(ha_fsm_cmd_failover_advance(&done, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_int_equal(s.failover.lost_count, 4);
	/* it survives a snapshot */
	struct ha_fsm_state r;
	assert_int_equal(ha_fsm_snapshot(&s, NULL, &buf, &len), 0);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(&r, buf, len, &e), 0);
	free(buf);
	assert_true(r.failover.accept_loss);
	assert_int_equal(r.failover.lost_count, 4);
}

/* Salvage from the old primary's binlog: wanted only when promoting an unplanned failover; its
 * outcome is a modifier of PROMOTING, recorded once, with the lost set recomputed; it survives
 * a snapshot, and a new failover starts without it. */
static void salvage_states(void **state)
{
	(void)state;
	struct ha_fsm_state s;
	ha_fsm_init(&s);
	apply_init(&s);
	apply_set(&s, 0, 1);
	uint8_t *buf;
	size_t len;
	struct ha_fo_advance out = {.id = 1,
	                            .phase = HA_FO_PROMOTING,
	                            .salvage = HA_SALVAGE_DONE,
	                            .salvaged_gtid = "0-1-30",
	                            .salvaged_count = 23,
	                            .lost_gtid = "",
	                            .lost_count = 0,
	                            .detail = "23 transactions"};
	assert_int_equal(begin(&s, 1, 1), HA_FSM_APPLIED);
	/* salvage in another phase is malformed */
	struct ha_fo_advance bad = {.id = 1, .phase = HA_FO_FENCED, .salvage = HA_SALVAGE_WANTED};
	assert_int_equal(ha_fsm_cmd_failover_advance(&bad, NULL, &buf, &len), 0);
	assert_true(apply_buf(&s, buf, len) < 0);
	bad.phase = HA_FO_PROMOTING;
	bad.salvage = 7;
	assert_int_equal(ha_fsm_cmd_failover_advance(&bad, NULL, &buf, &len), 0);
	assert_true(apply_buf(&s, buf, len) < 0);
	assert_int_equal(advance(&s, 1, HA_FO_FENCED, 0), HA_FSM_APPLIED);
	/* an outcome before anything was wanted changes nothing */
	assert_int_equal(ha_fsm_cmd_failover_advance(&out, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_NOOP);
	struct ha_fo_advance prom = {.id = 1,
	                             .phase = HA_FO_PROMOTING,
	                             .candidate = 2,
	                             .salvage = HA_SALVAGE_WANTED,
	                             .lost_gtid = "0-1-30",
	                             .lost_count = 25,
	                             .received_gtid = "0-1-5",
	                             .detail = "most advanced"};
	assert_int_equal(ha_fsm_cmd_failover_advance(&prom, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_int_equal(s.failover.salvage, HA_SALVAGE_WANTED);
	assert_int_equal(s.primary_id, 2);
	/* the outcome: once, with the lost set recomputed */
	assert_int_equal(ha_fsm_cmd_failover_advance(&out, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_int_equal(s.failover.salvage, HA_SALVAGE_DONE);
	assert_int_equal(s.failover.salvaged_count, 23);
	assert_string_equal(s.failover.salvaged_gtid, "0-1-30");
	assert_int_equal(s.failover.lost_count, 0);
	assert_string_equal(s.failover.salvage_detail, "23 transactions");
	assert_int_equal(s.failover.phase, HA_FO_PROMOTING);
	assert_string_equal(s.events[s.n_events - 1].name, "failover-salvaged");
	out.salvage = HA_SALVAGE_FAILED;
	assert_int_equal(ha_fsm_cmd_failover_advance(&out, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_NOOP);
	struct ha_fsm_state r;
	assert_int_equal(ha_fsm_snapshot(&s, NULL, &buf, &len), 0);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(&r, buf, len, &e), 0);
	free(buf);
	assert_int_equal(r.failover.salvage, HA_SALVAGE_DONE);
	assert_int_equal(r.failover.salvaged_count, 23);
	/* a failed salvage keeps the lost set of the choice */
	assert_int_equal(advance(&s, 1, HA_FO_DONE, 0), HA_FSM_APPLIED);
	assert_int_equal(begin(&s, 2, 2), HA_FSM_APPLIED);
	assert_int_equal(s.failover.salvage, HA_SALVAGE_NONE);
	assert_int_equal(s.failover.salvaged_count, 0);
	assert_int_equal(advance(&s, 2, HA_FO_FENCED, 0), HA_FSM_APPLIED);
	prom.id = 2;
	prom.candidate = 3;
	assert_int_equal(ha_fsm_cmd_failover_advance(&prom, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	out.id = 2;
	out.lost_count = 99;
	assert_int_equal(ha_fsm_cmd_failover_advance(&out, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_int_equal(s.failover.salvage, HA_SALVAGE_FAILED);
	assert_int_equal(s.failover.lost_count, 25);
	assert_string_equal(s.events[s.n_events - 1].name, "failover-salvage-failed");
}

/* Issue: a switchover with a 35-domain, 7-digit GTID position stayed in fencing forever
 * (fenced_by and the lost set did not fit). Every GTID field takes any position that parses. */
static void many_domain_positions(void **state)
{
	(void)state;
	char big[HA_GTID_TEXT_MAX];
	size_t n = 0;
	for (unsigned d = 0; d < HA_GTID_MAX_DOMAINS; d++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s%u-4294967295-%llu",
		                      d ? "," : "", 4000000000u + d, 18446744073709551000ull + d);
	struct ha_gtid_pos p;
	assert_int_equal(ha_gtid_parse(big, &p, NULL), 0);
	assert_int_equal(p.n, HA_GTID_MAX_DOMAINS);
	struct ha_fsm_state s;
	ha_fsm_init(&s);
	apply_init(&s);
	apply_set(&s, 0, 1);
	assert_int_equal(switchover(&s, 1, 1, 2), HA_FSM_APPLIED);
	struct ha_fo_advance a = {.id = 1,
	                          .phase = HA_FO_FENCED,
	                          .fenced_by =
	                              "own agent: read-only, client sessions killed and gone",
	                          .fenced_gtid = big};
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_failover_advance(&a, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_string_equal(s.failover.fenced_gtid, big);
	struct ha_fo_advance pr = {
	    .id = 1, .phase = HA_FO_PROMOTING, .candidate = 2, .lost_gtid = big, .detail = "x"};
	assert_int_equal(ha_fsm_cmd_failover_advance(&pr, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_string_equal(s.failover.lost_gtid, big);
	assert_int_equal(ha_fsm_cmd_node_diverged(3, true, big, 5, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_string_equal(ha_fsm_member(&s, 3)->errant_gtid, big);
	/* one domain more does not parse: refused where it enters, never cut */
	char more[HA_GTID_TEXT_MAX + 64];
	snprintf(more, sizeof(more), "%s,1-1-1", big);
	assert_int_not_equal(ha_gtid_parse(more, &p, NULL), 0);
	char copy[HA_GTID_TEXT_MAX];
	assert_int_equal(ha_gtid_copy_text(copy, sizeof(copy), big), 0);
	assert_int_equal(ha_gtid_copy_text(copy, sizeof(copy), more), -1);
	assert_string_equal(copy, "");
	/* the catalog keeps a backup's position whole or as a text that does not parse */
	char rec[HA_FSM_TEXT_MAX];
	ha_fsm_backup_gtid(rec, sizeof(rec), "0-1-5,1-2-7");
	assert_string_equal(rec, "0-1-5,1-2-7");
	ha_fsm_backup_gtid(rec, sizeof(rec), big);
	assert_int_not_equal(ha_gtid_parse(rec, &p, NULL), 0);
}

static void diverged_and_events(void **state)
{
	(void)state;
	struct ha_fsm_state s, r;
	ha_fsm_init(&s);
	apply_init(&s);
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_node_diverged(2, true, "0-2-5", 1, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_true(ha_fsm_member(&s, 2)->flags & HA_MEMBER_DIVERGED);
	assert_string_equal(ha_fsm_member(&s, 2)->errant_gtid, "0-2-5");
	assert_int_equal(ha_fsm_cmd_node_diverged(2, true, "0-2-5", 1, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_NOOP);
	/* the history is bounded: the oldest entries go */
	for (int i = 0; i < HA_FSM_MAX_EVENTS + 10; i++) {
		char d[16];
		snprintf(d, sizeof(d), "%d", i);
		assert_int_equal(
		    ha_fsm_cmd_event("test-event", "node1", d, (uint64_t)i, NULL, &buf, &len), 0);
		assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	}
	assert_int_equal(s.n_events, HA_FSM_MAX_EVENTS);
	assert_string_equal(s.events[HA_FSM_MAX_EVENTS - 1].detail, "73");
	assert_string_equal(s.events[0].detail, "10");
	/* everything survives a snapshot */
	apply_set(&s, 0, 1);
	begin(&s, 1, 1);
	advance(&s, 1, HA_FO_FENCED, 0);
	assert_int_equal(ha_fsm_snapshot(&s, NULL, &buf, &len), 0);
	ha_fsm_init(&r);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(&r, buf, len, &e), 0);
	free(buf);
	assert_int_equal(r.n_events, s.n_events);
	assert_int_equal(r.next_event_seq, s.next_event_seq);
	assert_string_equal(r.events[5].detail, s.events[5].detail);
	assert_int_equal(r.failover.phase, HA_FO_FENCED);
	assert_int_equal(r.failover.id, 1);
	assert_int_equal(r.next_failover_id, 1);
	assert_string_equal(r.failover.reason, "db down");
	assert_true(ha_fsm_member(&r, 2)->flags & HA_MEMBER_DIVERGED);
	assert_string_equal(ha_fsm_member(&r, 2)->errant_gtid, "0-2-5");
	/* and the restored state continues identically */
	assert_int_equal(advance(&r, 1, HA_FO_PROMOTING, 2), HA_FSM_APPLIED);
	assert_int_equal(r.primary_id, 2);
}

static void planned_switchover(void **state)
{
	(void)state;
	struct ha_fsm_state s, r;
	ha_fsm_init(&s);
	apply_init(&s);
	apply_set(&s, 0, 1);
	/* the target must be another member */
	assert_true(switchover(&s, 1, 1, 1) < 0);
	assert_true(switchover(&s, 1, 1, 42) < 0);
	assert_false(ha_fsm_failover_active(&s));
	assert_int_equal(switchover(&s, 1, 1, 2), HA_FSM_APPLIED);
	assert_true(s.failover.planned);
	assert_int_equal(s.failover.target, 2);
	assert_int_equal(s.failover.timeout_ms, 5000);
	assert_int_equal(s.failover.grace_ms, 700);
	assert_int_equal(s.primary_id, 0);
	assert_int_equal(s.epoch, 2);
	/* a second request while one runs is a no-op */
	assert_int_equal(switchover(&s, 2, 1, 3), HA_FSM_NOOP);
	struct ha_fo_advance a = {.id = 1,
	                          .phase = HA_FO_FENCED,
	                          .unix_ms = 3,
	                          .fenced_by = "own agent",
	                          .fenced_gtid = "0-1-99"};
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_failover_advance(&a, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_string_equal(s.failover.fenced_gtid, "0-1-99");
	/* the planned fields survive a snapshot */
	assert_int_equal(ha_fsm_snapshot(&s, NULL, &buf, &len), 0);
	ha_fsm_init(&r);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(&r, buf, len, &e), 0);
	free(buf);
	assert_true(r.failover.planned);
	assert_int_equal(r.failover.target, 2);
	assert_int_equal(r.failover.grace_ms, 700);
	assert_string_equal(r.failover.fenced_gtid, "0-1-99");
	/* rollback: the old primary is the primary again, at the switchover's epoch */
	assert_int_equal(advance(&r, 1, HA_FO_ABORTED, 1), HA_FSM_APPLIED);
	assert_int_equal(r.primary_id, 1);
	assert_int_equal(r.epoch, 2);
	assert_string_equal(r.events[r.n_events - 1].name, "switchover-aborted");
	assert_int_equal(r.aborted, 1);
	assert_int_equal(r.switchovers_done, 0);
}

static int set_maint(struct ha_fsm_state *s, uint32_t node, bool on)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_set_maintenance(node, on, 5, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

static int set_paused(struct ha_fsm_state *s, bool on, const char *reason)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_set_paused(on, reason, 6, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

static void maintenance_and_pause(void **state)
{
	(void)state;
	struct ha_fsm_state s, r;
	ha_fsm_init(&s);
	apply_init(&s);
	apply_set(&s, 0, 1);
	assert_true(set_maint(&s, 42, true) < 0);
	/* never the primary */
	assert_int_equal(set_maint(&s, 1, true), HA_FSM_NOOP);
	assert_false(ha_fsm_member(&s, 1)->flags & HA_MEMBER_MAINTENANCE);
	assert_int_equal(set_maint(&s, 2, true), HA_FSM_APPLIED);
	assert_true(ha_fsm_member(&s, 2)->flags & HA_MEMBER_MAINTENANCE);
	assert_int_equal(set_maint(&s, 2, true), HA_FSM_NOOP);
	assert_string_equal(s.events[s.n_events - 1].name, "maintenance-on");
	assert_int_equal(set_paused(&s, true, "upgrade window"), HA_FSM_APPLIED);
	assert_true(s.paused);
	assert_int_equal(set_paused(&s, true, "again"), HA_FSM_NOOP);
	assert_string_equal(s.pause_reason, "upgrade window");
	/* both survive a snapshot */
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_snapshot(&s, NULL, &buf, &len), 0);
	ha_fsm_init(&r);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(&r, buf, len, &e), 0);
	free(buf);
	assert_true(r.paused);
	assert_string_equal(r.pause_reason, "upgrade window");
	assert_true(ha_fsm_member(&r, 2)->flags & HA_MEMBER_MAINTENANCE);
	assert_int_equal(set_maint(&r, 2, false), HA_FSM_APPLIED);
	assert_false(ha_fsm_member(&r, 2)->flags & HA_MEMBER_MAINTENANCE);
	assert_int_equal(set_paused(&r, false, ""), HA_FSM_APPLIED);
	assert_false(r.paused);
	assert_string_equal(r.pause_reason, "");
	assert_string_equal(r.events[r.n_events - 1].name, "resumed");
}

static int bk_begin(struct ha_fsm_state *s, uint64_t id, const char *type, uint64_t parent)
{
	char name[64];
	snprintf(name, sizeof(name), "%06llu-%s", (unsigned long long)id, type);
	struct ha_bk_begin b = {
	    .expected_id = id, .name = name, .type = type, .parent = parent, .node = 2};
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_backup_begin(&b, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

static int bk_end(struct ha_fsm_state *s, uint64_t id, enum ha_backup_state st)
{
	struct ha_backup_rec res = {.to_lsn = 100 * id, .bytes_in = 10, .chunks = 1};
	snprintf(res.gtid, sizeof(res.gtid), "0-1-%llu", (unsigned long long)id);
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_backup_end(id, st, "x", &res, 5, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

static int bk_copied(struct ha_fsm_state *s, uint64_t id, const char *repo, bool removed)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_backup_copied(id, repo, removed, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

/* Where a backup is complete: the repository it was written to, each copy added once, one
 * taken off by its retention, a list that would not fit or a bad name refused, and the list
 * through a snapshot. */
static void backup_repositories(void **state)
{
	(void)state;
	static struct ha_fsm_state s, r;
	ha_fsm_init(&s);
	apply_init(&s);
	assert_int_equal(bk_begin(&s, 1, "full", 0), HA_FSM_APPLIED);
	assert_int_equal(bk_copied(&s, 1, "offsite", false), HA_FSM_NOOP); /* not finished */
	struct ha_backup_rec res = {.to_lsn = 100, .bytes_in = 10, .chunks = 1};
	snprintf(res.repos, sizeof(res.repos), "local");
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_backup_end(1, HA_BK_DONE, "x", &res, 5, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_string_equal(ha_fsm_backup(&s, 1)->repos, "local");
	assert_int_equal(bk_copied(&s, 1, "offsite", false), HA_FSM_APPLIED);
	assert_int_equal(bk_copied(&s, 1, "offsite", false), HA_FSM_NOOP); /* idempotent */
	assert_int_equal(bk_copied(&s, 1, "s3", false), HA_FSM_APPLIED);
	assert_string_equal(ha_fsm_backup(&s, 1)->repos, "local,offsite,s3");
	assert_true(ha_fsm_backup_in(ha_fsm_backup(&s, 1), "offsite"));
	assert_false(ha_fsm_backup_in(ha_fsm_backup(&s, 1), "offs"));
	assert_true(bk_copied(&s, 1, "../x", false) < 0);
	assert_true(bk_copied(&s, 1, "", false) < 0);
	assert_int_equal(bk_copied(&s, 1, "offsite", true), HA_FSM_APPLIED); /* its retention */
	assert_string_equal(ha_fsm_backup(&s, 1)->repos, "local,s3");
	assert_int_equal(bk_copied(&s, 1, "offsite", true), HA_FSM_NOOP);
	assert_int_equal(bk_copied(&s, 1, "local", true), HA_FSM_APPLIED);
	assert_string_equal(ha_fsm_backup(&s, 1)->repos, "s3");
	/* names up to 63 characters: four more fit, a fifth would not and is refused, never cut */
	char n63[64];
	for (int k = 0; k < 4; k++) {
		memset(n63, 'a' + k, 63);
		n63[63] = '\0';
		assert_int_equal(bk_copied(&s, 1, n63, false), HA_FSM_APPLIED);
	}
	memset(n63, 'z', 63);
	assert_true(bk_copied(&s, 1, n63, false) < 0);
	assert_int_equal(strlen(ha_fsm_backup(&s, 1)->repos), 2 + 4 * 64);
	/* through a snapshot */
	assert_int_equal(ha_fsm_snapshot(&s, NULL, &buf, &len), 0);
	ha_fsm_init(&r);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(&r, buf, len, &e), 0);
	free(buf);
	assert_string_equal(ha_fsm_backup(&r, 1)->repos, ha_fsm_backup(&s, 1)->repos);
}

/* Long on purpose: one catalog's life, command after command, each result checked where it
 * happens. */
static void backup_catalog(void **state)
{
	(void)state;
	static struct ha_fsm_state s, r;
	ha_fsm_init(&s);
	apply_init(&s);
	/* an incremental needs a finished parent; a full one has none */
	assert_true(bk_begin(&s, 1, "incremental", 0) < 0);
	assert_true(bk_begin(&s, 1, "full", 3) < 0);
	assert_int_equal(bk_begin(&s, 1, "incremental", 9), HA_FSM_NOOP);
	{ /* a name that would be a path elsewhere than its own folder is refused */
		const char *bad[] = {"..", ".", "../x", "a/b", "-x", ""};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			struct ha_bk_begin b = {
			    .expected_id = 1, .name = bad[i], .type = "full", .node = 2};
			uint8_t *bb;
			size_t bl;
			assert_int_equal(ha_fsm_cmd_backup_begin(&b, NULL, &bb, &bl), 0);
			assert_true(apply_buf(&s, bb, bl) < 0);
		}
		assert_int_equal(s.n_backups, 0);
	}
	assert_int_equal(bk_begin(&s, 1, "full", 0), HA_FSM_APPLIED);
	/* one job at a time, compare-and-set on the id */
	assert_int_equal(bk_begin(&s, 2, "full", 0), HA_FSM_NOOP);
	assert_int_equal(bk_begin(&s, 1, "full", 0), HA_FSM_NOOP);
	assert_non_null(ha_fsm_backup_running(&s));
	assert_int_equal(bk_begin(&s, 2, "incremental", 1), HA_FSM_NOOP); /* parent running */
	assert_int_equal(bk_end(&s, 1, HA_BK_DONE), HA_FSM_APPLIED);
	assert_int_equal(bk_end(&s, 1, HA_BK_FAILED), HA_FSM_NOOP); /* ended once */
	assert_null(ha_fsm_backup_running(&s));
	assert_int_equal(ha_fsm_backup(&s, 1)->to_lsn, 100);
	assert_string_equal(ha_fsm_backup(&s, 1)->gtid, "0-1-1");
	assert_false(ha_fsm_backup(&s, 1)->on_primary);
	{ /* a job placed on the primary (last resort) says so */
		struct ha_bk_begin b = {.expected_id = 2,
		                        .name = "000002-incremental",
		                        .type = "incremental",
		                        .parent = 1,
		                        .node = 1,
		                        .on_primary = true};
		uint8_t *bb;
		size_t bl;
		assert_int_equal(ha_fsm_cmd_backup_begin(&b, NULL, &bb, &bl), 0);
		assert_int_equal(apply_buf(&s, bb, bl), HA_FSM_APPLIED);
	}
	assert_true(ha_fsm_backup(&s, 2)->on_primary);
	assert_int_equal(bk_end(&s, 2, HA_BK_ABANDONED), HA_FSM_APPLIED);
	assert_int_equal(ha_fsm_backup(&s, 2)->to_lsn, 0); /* no results unless done */
	/* verify and delete */
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_backup_verified(1, true, true, "ok", 1500, 7, NULL, &buf, &len),
	                 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_int_equal(ha_fsm_backup(&s, 1)->verified, 1);
	assert_true(ha_fsm_backup(&s, 1)->drilled);
	/* a hold only extends; a backup not finished is not held */
	assert_int_equal(ha_fsm_cmd_backup_hold(1, 5000, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_int_equal(ha_fsm_cmd_backup_hold(1, 4000, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_NOOP);
	assert_int_equal(ha_fsm_backup(&s, 1)->held_until_ms, 5000);
	assert_int_equal(ha_fsm_cmd_backup_hold(2, 5000, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_NOOP);
	{ /* it survives a snapshot */
		uint8_t *sb;
		size_t sl;
		static struct ha_fsm_state h;
		struct ha_err he = {0};
		assert_int_equal(ha_fsm_snapshot(&s, NULL, &sb, &sl), 0);
		ha_fsm_init(&h);
		assert_int_equal(ha_fsm_restore(&h, sb, sl, &he), 0);
		free(sb);
		assert_int_equal(ha_fsm_backup(&h, 1)->held_until_ms, 5000);
	}
	/* retention's delete of a held backup (or of a chain's full under a held one) does not
	 * apply until the hold has lapsed */
	assert_int_equal(ha_fsm_cmd_backup_deleted(1, 8, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_NOOP);
	assert_int_equal(ha_fsm_backup(&s, 1)->state, HA_BK_DONE);
	assert_int_equal(ha_fsm_cmd_backup_deleted(1, 5001, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_int_equal(ha_fsm_backup(&s, 1)->state, HA_BK_DELETED);
	assert_int_equal(bk_begin(&s, 3, "incremental", 1), HA_FSM_NOOP); /* parent deleted */
	/* the policy */
	struct ha_backup_policy p = {.set = true, .keep_full = 3};
	snprintf(p.full, sizeof(p.full), "0 3 * * 0");
	assert_int_equal(ha_fsm_cmd_set_backup_policy(&p, 9, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	/* all of it survives a snapshot */
	assert_int_equal(ha_fsm_snapshot(&s, NULL, &buf, &len), 0);
	ha_fsm_init(&r);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(&r, buf, len, &e), 0);
	free(buf);
	assert_int_equal(r.n_backups, 2);
	assert_int_equal(r.next_backup_id, 2);
	assert_int_equal(ha_fsm_backup(&r, 1)->state, HA_BK_DELETED);
	assert_int_equal(ha_fsm_backup(&r, 2)->state, HA_BK_ABANDONED);
	assert_true(ha_fsm_backup(&r, 2)->on_primary);
	assert_false(ha_fsm_backup(&r, 1)->on_primary);
	assert_true(r.backup_policy.set);
	assert_int_equal(r.backup_policy.keep_full, 3);
	assert_string_equal(r.backup_policy.full, "0 3 * * 0");
	/* the catalog is bounded: failed, abandoned and deleted records make room */
	for (uint64_t id = 3; id < 3 + 2 * HA_FSM_MAX_BACKUPS; id++) {
		assert_int_equal(bk_begin(&r, id, "full", 0), HA_FSM_APPLIED);
		assert_int_equal(bk_end(&r, id, HA_BK_FAILED), HA_FSM_APPLIED);
	}
	assert_int_equal(r.n_backups, HA_FSM_MAX_BACKUPS);
}

/* A catalog full of backups that exist takes no more (and says so through room); a deleted
 * full backup is evicted only once nothing recorded builds on it. */
static void backup_catalog_full(void **state)
{
	(void)state;
	static struct ha_fsm_state s;
	ha_fsm_init(&s);
	apply_init(&s);
	uint64_t id = 1;
	assert_int_equal(bk_begin(&s, id, "full", 0), HA_FSM_APPLIED);
	assert_int_equal(bk_end(&s, id, HA_BK_DONE), HA_FSM_APPLIED);
	for (id = 2; id <= HA_FSM_MAX_BACKUPS; id++) {
		assert_int_equal(bk_begin(&s, id, "incremental", id - 1), HA_FSM_APPLIED);
		assert_int_equal(bk_end(&s, id, HA_BK_DONE), HA_FSM_APPLIED);
	}
	assert_int_equal(s.n_backups, HA_FSM_MAX_BACKUPS);
	assert_false(ha_fsm_backup_room(&s));
	assert_int_equal(bk_begin(&s, id, "full", 0), HA_FSM_NOOP);
	/* the full backup deleted, its first incremental still there: not evictable */
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_backup_deleted(1, 9, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_false(ha_fsm_backup_room(&s));
	/* its child deleted too: both can go, the oldest first */
	assert_int_equal(ha_fsm_cmd_backup_deleted(2, 9, NULL, &buf, &len), 0);
	assert_int_equal(apply_buf(&s, buf, len), HA_FSM_APPLIED);
	assert_true(ha_fsm_backup_room(&s));
	assert_int_equal(bk_begin(&s, id, "full", 0), HA_FSM_APPLIED);
	assert_null(ha_fsm_backup(&s, 1));
	assert_non_null(ha_fsm_backup(&s, 2));
	assert_non_null(ha_fsm_backup(&s, id));
	assert_null(ha_fsm_backup(&s, id + 1));
	/* lookups by id across the whole catalog */
	for (uint64_t k = 2; k <= id; k++)
		assert_int_equal(ha_fsm_backup(&s, k)->id, k);
	/* a snapshot whose catalog is out of order is refused */
	struct ha_backup_rec tmp = s.backups[3];
	s.backups[3] = s.backups[4];
	s.backups[4] = tmp;
	assert_int_equal(ha_fsm_snapshot(&s, NULL, &buf, &len), 0);
	static struct ha_fsm_state r;
	ha_fsm_init(&r);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(&r, buf, len, &e), HA_EINVAL);
	assert_non_null(strstr(e.msg, "out of order"));
	free(buf);
}

static int add_member(struct ha_fsm_state *s, uint32_t id, const char *name, const char *addr)
{
	struct ha_member m = {.id = id, .raft_port = 7100, .rpc_port = 7200, .db_port = 3306};
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.address, sizeof(m.address), "%s", addr);
	m.flags = HA_MEMBER_DIVERGED | HA_MEMBER_MAINTENANCE; /* not taken from the request */
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_member_add(&m, 1000, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

static int remove_member(struct ha_fsm_state *s, uint32_t id)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_member_remove(id, "test", 2000, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

static int joined(struct ha_fsm_state *s, uint32_t id)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_member_joined(id, 3000, NULL, &buf, &len), 0);
	return apply_buf(s, buf, len);
}

static void membership_changes(void **state)
{
	(void)state;
	struct ha_fsm_state s;
	ha_fsm_init(&s);
	/* nothing joins a cluster that was never bootstrapped */
	assert_int_equal(add_member(&s, 4, "node4", "127.0.0.14"), HA_FSM_NOOP);
	assert_int_equal(apply_init(&s), HA_FSM_APPLIED);
	assert_int_equal(apply_set(&s, 0, 1), HA_FSM_APPLIED);
	/* a clash of id, name or raft address is a no-op */
	assert_int_equal(add_member(&s, 2, "node9", "127.0.0.19"), HA_FSM_NOOP);
	assert_int_equal(add_member(&s, 9, "node2", "127.0.0.19"), HA_FSM_NOOP);
	assert_int_equal(add_member(&s, 9, "node9", "127.0.0.12"), HA_FSM_NOOP);
	assert_int_equal(add_member(&s, 4, "node4", "127.0.0.14"), HA_FSM_APPLIED);
	assert_int_equal(s.n_members, 4);
	const struct ha_member *m = ha_fsm_member(&s, 4);
	assert_non_null(m);
	assert_int_equal(m->flags, HA_MEMBER_JOINING);
	assert_ptr_equal(ha_fsm_joining(&s), m);
	assert_int_equal(ha_fsm_voters(&s), 3);
	/* one node joins at a time; the same add again is a no-op */
	assert_int_equal(add_member(&s, 5, "node5", "127.0.0.15"), HA_FSM_NOOP);
	assert_int_equal(add_member(&s, 4, "node4", "127.0.0.14"), HA_FSM_NOOP);
	/* a snapshot keeps the joining member */
	uint8_t *snap;
	size_t len;
	assert_int_equal(ha_fsm_snapshot(&s, NULL, &snap, &len), 0);
	struct ha_fsm_state r;
	ha_fsm_init(&r);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(&r, snap, len, &e), 0);
	assert_int_equal(r.n_members, 4);
	assert_int_equal(ha_fsm_member(&r, 4)->flags, HA_MEMBER_JOINING);
	free(snap);
	assert_int_equal(joined(&s, 4), HA_FSM_APPLIED);
	assert_int_equal(joined(&s, 4), HA_FSM_NOOP);
	assert_null(ha_fsm_joining(&s));
	assert_int_equal(ha_fsm_voters(&s), 4);
	/* never the primary; a stranger is a no-op; a member goes, the others keep their order */
	assert_int_equal(remove_member(&s, 1), HA_FSM_NOOP);
	assert_int_equal(remove_member(&s, 42), HA_FSM_NOOP);
	assert_int_equal(remove_member(&s, 2), HA_FSM_APPLIED);
	assert_int_equal(s.n_members, 3);
	assert_null(ha_fsm_member(&s, 2));
	assert_int_equal(s.members[0].id, 1);
	assert_int_equal(s.members[1].id, 3);
	assert_int_equal(s.members[2].id, 4);
	assert_string_equal(s.events[s.n_events - 1].name, "member-removed");
	/* the slot is free again: up to HA_FSM_MAX_MEMBERS */
	char name[16], addr[32];
	for (uint32_t id = 10; s.n_members < HA_FSM_MAX_MEMBERS; id++) {
		snprintf(name, sizeof(name), "n%u", id);
		snprintf(addr, sizeof(addr), "127.0.1.%u", id);
		assert_int_equal(add_member(&s, id, name, addr), HA_FSM_APPLIED);
		assert_int_equal(joined(&s, id), HA_FSM_APPLIED);
	}
	assert_int_equal(add_member(&s, 99, "n99", "127.0.1.99"), HA_FSM_NOOP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(init_members_once),   cmocka_unit_test(set_primary_is_compare_and_set),
	    cmocka_unit_test(snapshot_round_trip), cmocka_unit_test(hostile_input),
	    cmocka_unit_test(promoting_exits),     cmocka_unit_test(many_domain_positions),
	    cmocka_unit_test(failover_lifecycle),  cmocka_unit_test(diverged_and_events),
	    cmocka_unit_test(planned_switchover),  cmocka_unit_test(maintenance_and_pause),
	    cmocka_unit_test(backup_catalog),      cmocka_unit_test(backup_repositories),
	    cmocka_unit_test(backup_catalog_full), cmocka_unit_test(salvage_states),
	    cmocka_unit_test(membership_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
