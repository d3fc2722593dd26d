/* consensus/raftconf.c against the real libraft, in its test fixture (an in-memory cluster):
 * a follower that receives a configuration change behind another entry keeps it recorded as
 * uncommitted (libraft 0.22's batch bug), so that once leader it refuses every change; the
 * repair puts it right once every entry is committed, and only then. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "../../consensus/raftconf.h"

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	(void)fsm;
	(void)buf;
	*result = NULL;
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
	(void)fsm;
	*bufs = raft_malloc(sizeof(**bufs));
	(*bufs)[0].base = raft_malloc(8);
	(*bufs)[0].len = 8;
	memset((*bufs)[0].base, 0, 8);
	*n = 1;
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	(void)fsm;
	raft_free(buf->base);
	return 0;
}

static int changes_ended;
static void change_cb(struct raft_change *req, int status)
{
	(void)req;
	(void)status;
	changes_ended++;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	(void)req;
	(void)status;
	(void)result;
}

struct cluster {
	struct raft_fixture f;
	struct raft_fsm fsm[3];
};

static void start(struct cluster *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(raft_fixture_init(&c->f), 0);
	for (unsigned i = 0; i < 3; i++) {
		c->fsm[i] = (struct raft_fsm){.version = 1,
		                              .apply = fsm_apply,
		                              .snapshot = fsm_snapshot,
		                              .restore = fsm_restore};
		assert_int_equal(raft_fixture_grow(&c->f, &c->fsm[i]), 0);
	}
	struct raft_configuration conf;
	assert_int_equal(raft_fixture_configuration(&c->f, 3, &conf), 0);
	assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
	raft_configuration_close(&conf);
	assert_int_equal(raft_fixture_start(&c->f), 0);
	raft_fixture_elect(&c->f, 0);
}

/* every server has applied the leader's whole log */
static void settle(struct cluster *c, unsigned server, raft_index index)
{
	assert_true(raft_fixture_step_until_applied(&c->f, server, index, 10000));
}

static void stale_record_repaired(void **state)
{
	(void)state;
	struct cluster c;
	start(&c);
	struct raft *leader = raft_fixture_get(&c.f, 0);
	struct raft *late = raft_fixture_get(&c.f, 2);
	settle(&c, 2, raft_last_index(leader));

	/* server 2 hears nothing while a command and then a configuration change commit */
	raft_fixture_saturate(&c.f, 0, 2);
	struct raft_apply areq;
	struct raft_buffer b = {.base = raft_malloc(8), .len = 8};
	memset(b.base, 0, 8);
	assert_int_equal(raft_apply(leader, &areq, &b, 1, apply_cb), 0);
	struct raft_change creq;
	assert_int_equal(raft_add(leader, &creq, 4, "4", change_cb), 0);
	raft_index change_index = raft_last_index(leader);
	settle(&c, 1, change_index);
	assert_int_equal(changes_ended, 1);
	raft_fixture_desaturate(&c.f, 0, 2);
	settle(&c, 2, change_index);
	assert_int_equal(raft_commit_index(late), change_index);
	assert_int_equal(late->configuration.n, 4);

	/* libraft 0.22's bug: committed and applied, still recorded as uncommitted, at an index
	 * that is not the change's (if this fails, libraft was fixed: the repair can go) */
	assert_int_not_equal(late->configuration_uncommitted_index, 0);
	assert_true(late->configuration_uncommitted_index < change_index);

	/* the repair waits while any entry is not yet committed */
	raft_index idx = 0;
	assert_false(ha_raftconf_repair(late, true, &idx)); /* a change of its own in flight */

	/* server 2 leads: it refuses every configuration change */
	raft_fixture_depose(&c.f);
	raft_fixture_elect(&c.f, 2);
	assert_int_equal(raft_state(late), RAFT_LEADER);
	struct raft_change creq2;
	assert_int_equal(raft_add(late, &creq2, 5, "5", change_cb), RAFT_CANTCHANGE);

	/* once its log is all committed and applied: put right, and changes go through */
	settle(&c, 2, raft_last_index(late));
	raft_index recorded = late->configuration_uncommitted_index;
	assert_true(ha_raftconf_repair(late, false, &idx));
	assert_int_equal(idx, recorded);
	assert_int_equal(late->configuration_uncommitted_index, 0);
	assert_int_equal(late->configuration_committed.n, 4);
	assert_int_equal(late->configuration_committed.servers[3].id, 4);
	assert_false(ha_raftconf_repair(late, false, &idx)); /* nothing left to do */
	assert_int_equal(raft_add(late, &creq2, 5, "5", change_cb), 0);
	settle(&c, 2, raft_last_index(late));
	assert_int_equal(late->configuration.n, 5);
	assert_int_equal(late->configuration_uncommitted_index, 0); /* the leader's own: right */
	raft_fixture_close(&c.f);
}

/* a configuration change that is really uncommitted is never touched */
static void uncommitted_left_alone(void **state)
{
	(void)state;
	struct cluster c;
	start(&c);
	struct raft *leader = raft_fixture_get(&c.f, 0);
	settle(&c, 1, raft_last_index(leader));
	raft_fixture_saturate(&c.f, 0, 1);
	raft_fixture_saturate(&c.f, 0, 2);
	struct raft_change creq;
	assert_int_equal(raft_add(leader, &creq, 4, "4", change_cb), 0);
	raft_fixture_step_n(&c.f, 20);
	raft_index idx = 0;
	assert_int_not_equal(leader->configuration_uncommitted_index, 0);
	assert_false(ha_raftconf_repair(leader, false, &idx)); /* not committed: left alone */
	assert_int_not_equal(leader->configuration_uncommitted_index, 0);
	raft_fixture_close(&c.f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(stale_record_repaired),
	    cmocka_unit_test(uncommitted_left_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
