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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(init_members_once),
	    cmocka_unit_test(set_primary_is_compare_and_set),
	    cmocka_unit_test(snapshot_round_trip),
	    cmocka_unit_test(hostile_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
