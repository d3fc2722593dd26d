/* coord/members.c: raft's configuration follows the members; a join is made a voter, recorded,
 * or undone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>

#include "../agent/coord/members.h"

struct fixture {
	struct ha_config cfg;
	struct ha_fsm_state st;
	struct ha_core_report rep[HA_MAX_NODES];
	Haagent__Health h[HA_MAX_NODES];
	struct ha_core_in in;
	struct ha_raft_server raft[HA_MAX_NODES];
	struct ha_members_in mi;
	struct ha_members_mem mem;
	struct ha_members_out out;
};

static void apply_raw(struct fixture *f, uint8_t *buf, size_t len)
{
	struct ha_err e = {0};
	int r = ha_fsm_apply(&f->st, buf, len, &e);
	if (r < 0)
		fprintf(stderr, "apply: %s\n", e.msg);
	assert_true(r >= 0);
	free(buf);
}

/* encodes with expr (which fills buf and len), then applies: two statements, since the order
 * in which a call's arguments are evaluated is unspecified */
#define APPLY(f, expr)                                                                             \
	do {                                                                                       \
		uint8_t *buf;                                                                      \
		size_t len;                                                                        \
		assert_int_equal((expr), 0);                                                       \
		apply_raw((f), buf, len);                                                          \
	} while (0)

/* three voters (node1 the primary, leading), node4 joining; every agent reports node4 as its
 * fixture says */
static void setup(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	ha_config_defaults(&f->cfg);
	ha_fsm_init(&f->st);
	struct ha_member m[4];
	memset(m, 0, sizeof(m));
	for (unsigned i = 0; i < 4; i++) {
		m[i].id = i + 1;
		snprintf(m[i].name, sizeof(m[i].name), "node%u", i + 1);
		snprintf(m[i].address, sizeof(m[i].address), "127.0.0.%u", 11 + i);
		m[i].raft_port = 7100;
		m[i].db_port = 3306;
		m[i].rpc_port = 7200;
		struct ha_node_conf *n = &f->cfg.nodes[i];
		n->id = m[i].id;
		snprintf(n->name, sizeof(n->name), "%s", m[i].name);
		snprintf(n->address, sizeof(n->address), "%s", m[i].address);
		n->db_port = 3306;
	}
	f->cfg.n_nodes = 4;
	f->cfg.self = 0;
	APPLY(f, ha_fsm_cmd_init_members("c", m, 3, NULL, &buf, &len));
	APPLY(f, ha_fsm_cmd_set_primary(0, 1, "t", NULL, &buf, &len));
	APPLY(f, ha_fsm_cmd_member_add(&m[3], 1, NULL, &buf, &len));
	for (unsigned i = 0; i < 4; i++) {
		haagent__health__init(&f->h[i]);
		f->h[i].db = HAAGENT__DB_STATE__DB_UP;
		f->rep[i].h = &f->h[i];
		f->rep[i].recv_ms = 100000;
	}
	f->in.cfg = &f->cfg;
	f->in.st = &f->st;
	f->in.reports = f->rep;
	f->in.now_ms = 100000;
	f->in.alloc = malloc;
	f->in.free = free;
	for (unsigned i = 0; i < 3; i++)
		f->raft[i] = (struct ha_raft_server){.id = i + 1, .role = RAFT_VOTER};
	/* a finished full backup to build node4 from */
	f->st.n_backups = 1;
	f->st.backups[0].id = 1;
	f->st.backups[0].state = HA_BK_DONE;
	snprintf(f->st.backups[0].type, sizeof(f->st.backups[0].type), "full");
	f->mi.core = &f->in;
	f->mi.raft = f->raft;
	f->mi.n_raft = 3;
}

static void decide(struct fixture *f)
{
	free(f->out.cmd);
	ha_members_decide(&f->mi, &f->mem, &f->out);
}

static void replicating(struct fixture *f, unsigned i, bool caught_up)
{
	f->h[i].replicating = true;
	f->h[i].master_host = "127.0.0.11";
	f->h[i].master_port = 3306;
	f->h[i].io_running = true;
	f->h[i].sql_running = true;
	f->h[i].lag_seconds = caught_up ? 0 : 12;
}

static const char *last_event(struct fixture *f)
{
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_apply(&f->st, f->out.cmd, f->out.cmd_len, &e), HA_FSM_APPLIED);
	return f->st.events[f->st.n_events - 1].name;
}

static void join_happy_path(void **state)
{
	(void)state;
	struct fixture f;
	setup(&f);
	decide(&f); /* raft lacks node4: added (as a spare) */
	assert_int_equal(f.out.act, HA_MEMBERS_RAFT_ADD);
	assert_int_equal(f.out.id, 4);
	assert_string_equal(f.out.address, "127.0.0.14:7100");
	f.raft[3] = (struct ha_raft_server){.id = 4, .role = RAFT_SPARE};
	f.mi.n_raft = 4;
	decide(&f); /* a spare receives nothing: a standby receives the log without voting */
	assert_int_equal(f.out.act, HA_MEMBERS_RAFT_ASSIGN);
	assert_int_equal(f.out.role, RAFT_STANDBY);
	f.raft[3].role = RAFT_STANDBY;
	f.mi.raft_changing = true;
	decide(&f); /* one change at a time */
	assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	f.mi.raft_changing = false;
	decide(&f); /* its database is being built: it waits */
	assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	/* with nothing to build it from, a full backup is asked for, at most once a minute */
	f.st.backups[0].state = HA_BK_FAILED;
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_BACKUP);
	assert_int_equal(f.out.id, 4);
	f.in.now_ms += 1000;
	f.rep[3].recv_ms = f.in.now_ms;
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	f.st.backups[0].state = HA_BK_RUNNING; /* being taken: nothing more */
	f.in.now_ms += 60000;
	f.rep[3].recv_ms = f.in.now_ms;
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	f.st.backups[0].state = HA_BK_DONE;
	replicating(&f, 3, false);
	decide(&f); /* replicating but behind: waits */
	assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	replicating(&f, 3, true);
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_RAFT_ASSIGN);
	assert_int_equal(f.out.id, 4);
	assert_int_equal(f.out.role, RAFT_VOTER);
	f.raft[3].role = RAFT_VOTER;
	decide(&f); /* a voter: recorded as joined */
	assert_int_equal(f.out.act, HA_MEMBERS_PROPOSE);
	assert_string_equal(last_event(&f), "member-joined");
	assert_null(ha_fsm_joining(&f.st));
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	free(f.out.cmd);
}

/* The fixture with node 4 joining: in raft as a standby, the join's bounds given. */
static void setup_joining(struct fixture *f, uint64_t silent_ms, uint64_t timeout_ms)
{
	setup(f);
	f->raft[3] = (struct ha_raft_server){.id = 4, .role = RAFT_STANDBY};
	f->mi.n_raft = 4;
	f->cfg.join_silent_ms = silent_ms;
	f->cfg.join_timeout_ms = timeout_ms;
}

static void join_undone(void **state)
{
	(void)state;
	struct fixture f;
	setup_joining(&f, 5000, 60000);
	decide(&f); /* the clock starts */
	assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	f.in.now_ms += 4000;
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	f.in.now_ms += 2000; /* silent 6 s > 5 s */
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_PROPOSE);
	assert_non_null(strstr(f.out.why, "went silent"));
	assert_string_equal(last_event(&f), "member-removed");
	assert_null(ha_fsm_member(&f.st, 4));
	decide(&f); /* then raft forgets it */
	assert_int_equal(f.out.act, HA_MEMBERS_RAFT_REMOVE);
	assert_int_equal(f.out.id, 4);
	free(f.out.cmd);

	/* reporting, but too slow in all */
	setup_joining(&f, 5000, 20000);
	decide(&f);
	f.mi.raft_changing = true; /* raft may be making it a voter: the clock waits for it */
	for (int i = 0; i < 5; i++) {
		f.in.now_ms += 4500;
		f.rep[3].recv_ms = f.in.now_ms;
		decide(&f);
		assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	}
	f.mi.raft_changing = false;
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_PROPOSE);
	assert_non_null(strstr(f.out.why, "join_timeout_ms"));
	free(f.out.cmd);
}

/* A raft change that never finishes, or a raft add that fails again and again (raft never
 * sends the new node the log, so its agent never reports): the join is still undone once
 * silent, and the reason says raft never reached it. */
static void undo_not_held_by_raft(void **state)
{
	(void)state;
	struct fixture f;
	setup(&f); /* raft lacks node4 */
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_RAFT_ADD);
	f.cfg.join_silent_ms = 5000;
	f.in.now_ms += 6000;
	decide(&f); /* the add failed: tried again, but the join went silent first */
	assert_int_equal(f.out.act, HA_MEMBERS_PROPOSE);
	assert_non_null(strstr(f.out.why, "went silent"));
	free(f.out.cmd);
	f.out.cmd = NULL;

	setup(&f);
	f.cfg.join_silent_ms = 5000;
	f.raft[3] = (struct ha_raft_server){.id = 4, .role = RAFT_SPARE};
	f.mi.n_raft = 4;
	f.mi.raft_changing = true; /* the standby assignment never finishes */
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	f.in.now_ms += 6000;
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_PROPOSE);
	assert_non_null(strstr(f.out.why, "raft never sent it the log"));
	assert_string_equal(last_event(&f), "member-removed");
	assert_null(ha_fsm_member(&f.st, 4));
	f.mi.raft_changing = false;
	decide(&f); /* once raft can change again, it forgets the node */
	assert_int_equal(f.out.act, HA_MEMBERS_RAFT_REMOVE);
	assert_int_equal(f.out.id, 4);
	free(f.out.cmd);
}

static void full_members_vote(void **state)
{
	(void)state;
	struct fixture f;
	setup(&f);
	APPLY(&f, ha_fsm_cmd_member_remove(4, "t", 1, NULL, &buf, &len));
	f.raft[1].role = RAFT_STANDBY; /* a full member that lost its vote gets it back */
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_RAFT_ASSIGN);
	assert_int_equal(f.out.id, 2);
	assert_int_equal(f.out.role, RAFT_VOTER);
	f.raft[1].role = RAFT_VOTER;
	f.raft[3] = (struct ha_raft_server){.id = 9, .role = RAFT_VOTER}; /* not a member */
	f.mi.n_raft = 4;
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_RAFT_REMOVE);
	assert_int_equal(f.out.id, 9);
	free(f.out.cmd);
}

/* the review's cases: a join is never undone while a failover runs (the joining node may hold
 * acknowledged writes the failover must see); a leader removed from the members hands over */
static void undo_waits_for_failover(void **state)
{
	(void)state;
	struct fixture f;
	setup_joining(&f, 5000, 20000);
	decide(&f);
	APPLY(&f, ha_fsm_cmd_failover_begin(&(struct ha_fo_begin){.expected_epoch = f.st.epoch,
	                                                          .old_primary = 1,
	                                                          .reason = "t"},
	                                    NULL, &buf, &len));
	assert_true(ha_fsm_failover_active(&f.st));
	f.in.now_ms += 60000; /* silent and too slow: still not undone */
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_NONE);
	/* and the state machine would not apply a removal now either */
	APPLY(&f, ha_fsm_cmd_member_remove(4, "t", 1, NULL, &buf, &len));
	assert_non_null(ha_fsm_member(&f.st, 4));
	free(f.out.cmd);
}

static void removed_leader_hands_over(void **state)
{
	(void)state;
	struct fixture f;
	setup(&f);
	f.cfg.self = 1; /* node2 leads */
	APPLY(&f, ha_fsm_cmd_member_remove(2, "t", 1, NULL, &buf, &len));
	decide(&f);
	assert_int_equal(f.out.act, HA_MEMBERS_TRANSFER);
	free(f.out.cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(join_happy_path),           cmocka_unit_test(join_undone),
	    cmocka_unit_test(full_members_vote),         cmocka_unit_test(undo_waits_for_failover),
	    cmocka_unit_test(removed_leader_hands_over), cmocka_unit_test(undo_not_held_by_raft),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
