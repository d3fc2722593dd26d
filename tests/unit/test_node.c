/* node/decide.c: an agent's decisions on its own server, and the write lease. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/decide.h"

struct world {
	struct ha_config cfg;
	struct ha_fsm_state st;
	struct ha_probe_sample s;
	struct ha_node_mem m;
	struct ha_node_out out;
};

/* node2 of three; node1 the primary at epoch 1; node2's server a replica of it */
static struct world *world(void)
{
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	ha_config_defaults(&w->cfg);
	w->cfg.n_nodes = 3;
	w->cfg.self = 1;
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
	w->st.primary_id = 1;
	w->st.epoch = 1;
	w->s.db = HA_DB_UP;
	w->s.read_only = true;
	w->s.replicating = true;
	snprintf(w->s.master_host, sizeof(w->s.master_host), "127.0.0.11");
	w->s.master_port = 3306;
	w->s.io_running = w->s.sql_running = true;
	snprintf(w->s.io_state, sizeof(w->s.io_state), "Yes");
	snprintf(w->s.gtid_current, sizeof(w->s.gtid_current), "0-1-10");
	snprintf(w->s.gtid_io_pos, sizeof(w->s.gtid_io_pos), "0-1-10");
	w->s.started_ms = 1000;
	return w;
}

static void decide(struct world *w, bool lease, uint64_t now)
{
	struct ha_node_in in = {
	    .cfg = &w->cfg, .st = &w->st, .s = &w->s, .now_ms = now, .lease_held = lease};
	ha_node_decide(&in, &w->m, &w->out);
}

static void a_replica_in_place_does_nothing(void **state)
{
	(void)state;
	struct world *w = world();
	decide(w, false, 2000);
	assert_false(w->out.submit);
	assert_true(w->out.role_changed);
	assert_string_equal(w->m.role, "replica");
	free(w);
}

static void writable_without_being_the_primary_is_fenced(void **state)
{
	(void)state;
	struct world *w = world();
	w->s.read_only = false;
	decide(w, true, 2000);
	assert_true(w->out.submit);
	assert_int_equal(w->out.q.kind, HA_ACT_FENCE);
	/* the primary without its lease fences itself too */
	w->st.primary_id = 2;
	decide(w, false, 2000);
	assert_int_equal(w->out.q.kind, HA_ACT_FENCE);
	free(w);
}

static void a_new_primary_applies_its_relay_log_first(void **state)
{
	(void)state;
	struct world *w = world();
	w->st.primary_id = 2;
	w->st.epoch = 2;
	w->st.failover.id = 1;
	w->st.failover.phase = HA_FO_PROMOTING;
	w->st.failover.candidate = 2;
	w->st.failover.old_primary = 1;
	w->st.failover.epoch = 2;
	snprintf(w->s.gtid_io_pos, sizeof(w->s.gtid_io_pos), "0-1-25");
	decide(w, true, 2000);
	assert_int_equal(w->out.q.kind, HA_ACT_CATCHUP);
	assert_string_equal(w->out.q.gtid, "0-1-25");
	/* applied: it turns writable */
	snprintf(w->s.gtid_current, sizeof(w->s.gtid_current), "0-1-25");
	decide(w, true, 2000);
	assert_int_equal(w->out.q.kind, HA_ACT_PROMOTE);
	assert_true(w->out.q.writable);
	free(w);
}

static void acts_only_on_a_sample_taken_after_its_last_action(void **state)
{
	(void)state;
	struct world *w = world();
	w->s.read_only = false;
	struct ha_action_result r = {.kind = HA_ACT_FENCE, .epoch = 1};
	ha_node_done(&w->m, &r, 5000);
	assert_int_equal(w->m.fenced_epoch, 1);
	decide(w, true, 5100); /* the sample began at 1000: stale */
	assert_false(w->out.submit);
	w->s.started_ms = 5050;
	decide(w, true, 5100);
	assert_int_equal(w->out.q.kind, HA_ACT_FENCE);
	free(w);
}

static void a_blind_server_that_must_be_fenced_is_stopped_then_killed(void **state)
{
	(void)state;
	struct world *w = world();
	w->st.primary_id = 2; /* this node, without its lease */
	w->s.db = HA_DB_HUNG;
	w->cfg.fence_escalate_ms = 2000;
	decide(w, false, 10000);
	assert_int_equal(w->out.esc, HA_NODE_ESC_NONE);
	decide(w, false, 12000);
	assert_int_equal(w->out.esc, HA_NODE_ESC_STOP);
	decide(w, false, 12000 + HA_FENCE_STOP_WAIT_MS - 1);
	assert_int_equal(w->out.esc, HA_NODE_ESC_NONE);
	decide(w, false, 12000 + HA_FENCE_STOP_WAIT_MS);
	assert_int_equal(w->out.esc, HA_NODE_ESC_KILL);
	decide(w, false, 20000);
	assert_int_equal(w->out.esc, HA_NODE_ESC_NONE); /* once */
	free(w);
}

static void the_write_lease(void **state)
{
	(void)state;
	struct ha_lease_in l = {.n_nodes = 3, .lease_ms = 2000, .now_ms = 10000};
	assert_false(ha_node_lease_held(&l)); /* never acknowledged */
	l.last_ack_ms = 8000;
	assert_true(ha_node_lease_held(&l));
	l.last_ack_ms = 7999;
	assert_false(ha_node_lease_held(&l));
	/* the leader: right after its barrier, then by the reports of a majority */
	l.leading = true;
	l.ready_since_ms = 9000;
	l.reporting = 1;
	assert_true(ha_node_lease_held(&l));
	l.ready_since_ms = 1000;
	assert_false(ha_node_lease_held(&l));
	l.reporting = 2;
	assert_true(ha_node_lease_held(&l));
}

/* This node (node2) the primary at epoch 1, writable, its server up an hour, seen at 10 s. */
static struct world *writable_primary(void)
{
	struct world *w = world();
	w->st.primary_id = 2;
	w->st.primary_writable_epoch = 1;
	w->s.replicating = w->s.io_running = w->s.sql_running = false;
	w->s.read_only = false;
	w->s.uptime_known = true;
	w->s.uptime_s = 3600;
	w->s.started_ms = 10000;
	decide(w, true, 10000);
	assert_false(w->out.submit); /* writable, as it should be */
	return w;
}

/* The primary's server restarted while its agent was frozen: the agent never saw it down, but
 * its Uptime says it started after the last sample that saw it up. It stays read-only (its crash
 * recovery may have dropped what it acknowledged) and reports itself held. */
static void a_restart_the_agent_did_not_see_holds_the_primary(void **state)
{
	(void)state;
	struct world *w = writable_primary();
	/* one second later, one second older: the same server */
	w->s.started_ms = 11000;
	w->s.uptime_s = 3601;
	decide(w, true, 11000);
	assert_false(w->out.submit);
	/* a clock step back of a minute on a server up an hour: still the same server */
	w->s.started_ms = 12000;
	w->s.uptime_s = 3541;
	decide(w, true, 12000);
	assert_false(w->out.submit);
	/* frozen 30 s; meanwhile mariadbd was killed and restarted (read-only, up 9 s) */
	w->s.started_ms = 42000;
	w->s.uptime_s = 9;
	w->s.read_only = true;
	decide(w, true, 42000);
	assert_false(w->out.submit && w->out.q.kind == HA_ACT_PROMOTE);
	Haagent__Health h;
	ha_node_health(&w->s, &w->m, 1, true, &h);
	assert_int_equal(h.restarted_epoch, 1);
	/* a quick restart: killed just after a sample, up again 1.5 s later (Uptime 0) */
	struct world *q = writable_primary();
	q->s.started_ms = 11500;
	q->s.uptime_s = 0;
	q->s.read_only = true;
	decide(q, true, 11500);
	assert_false(q->out.submit && q->out.q.kind == HA_ACT_PROMOTE);
	free(q);
	free(w);
}

/* A follower's acks: only from the leader and term its raft knows; they renew its lease only at
 * its own epoch (its log may be behind: a healed partition, a resumed process), and the lease
 * runs from the acknowledged report's send time. */
static void acks_renew_the_lease_only_at_this_epoch(void **state)
{
	(void)state;
	struct ha_lease_follow f = {0};
	struct ha_ack_in in = {.leader_id = 2, .term = 5, .epoch = 7, .now_ms = 10000};
	Haagent__HealthAck ack = HAAGENT__HEALTH_ACK__INIT;
	ack.leader_id = 3; /* another leader */
	ack.term = 5;
	ack.sent_mono_ms = 9800;
	ack.epoch = 7;
	ack.leader_mono_ms = 50000;
	assert_false(ha_node_ack(&f, &ack, &in));
	assert_int_equal(f.last_ack_ms, 0);
	assert_int_equal(f.echo_term, 0);
	ack.leader_id = 2;
	ack.term = 4; /* an older term */
	assert_false(ha_node_ack(&f, &ack, &in));
	/* the leader has moved on to epoch 8 while this agent's log still says 7: in contact
	 * (echoed), but no lease at an epoch that has ended */
	ack.term = 5;
	ack.epoch = 8;
	assert_false(ha_node_ack(&f, &ack, &in));
	assert_int_equal(f.last_ack_ms, 0);
	assert_int_equal(f.echo_term, 5);
	assert_int_equal(f.echo_leader_ms, 50000);
	/* at its epoch: the lease runs from the report's send time, not the ack's arrival */
	ack.epoch = 7;
	ack.leader_mono_ms = 50100;
	assert_true(ha_node_ack(&f, &ack, &in));
	assert_int_equal(f.last_ack_ms, 9800);
	assert_int_equal(f.echo_leader_ms, 50100);
	/* an older ack arriving late moves nothing back */
	ack.sent_mono_ms = 9500;
	ack.leader_mono_ms = 49000;
	assert_true(ha_node_ack(&f, &ack, &in));
	assert_int_equal(f.last_ack_ms, 9800);
	assert_int_equal(f.echo_leader_ms, 50100);
	/* a leader of an older version sends no epoch and no clock: as before */
	Haagent__HealthAck old = HAAGENT__HEALTH_ACK__INIT;
	old.leader_id = 2;
	old.term = 5;
	old.sent_mono_ms = 9900;
	assert_true(ha_node_ack(&f, &old, &in));
	assert_int_equal(f.last_ack_ms, 9900);
	assert_int_equal(f.echo_leader_ms, 50100);
}

/* The leader's side: a report proves contact as of the echoed ack, never as of its arrival (a
 * report that waited in a frozen leader's socket is old news). */
static void a_report_proves_contact_as_of_its_echo(void **state)
{
	(void)state;
	Haagent__HealthReport r = HAAGENT__HEALTH_REPORT__INIT;
	/* an agent of an older version: its arrival */
	assert_int_equal(ha_node_report_contact(&r, 5, 70000, 70010), 70000);
	r.echoes = true; /* nothing accepted yet */
	assert_int_equal(ha_node_report_contact(&r, 5, 70000, 70010), 0);
	r.echo_term = 5;
	r.echo_leader_ms = 61000; /* it arrived now, but echoes an ack of 9 s ago */
	assert_int_equal(ha_node_report_contact(&r, 5, 70000, 70010), 61000);
	r.echo_term = 4; /* another term's ack: another leader's clock */
	assert_int_equal(ha_node_report_contact(&r, 5, 70000, 70010), 0);
	r.echo_term = 5;
	r.echo_leader_ms = 80000; /* from the future: not this process's clock */
	assert_int_equal(ha_node_report_contact(&r, 5, 70000, 70010), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_replica_in_place_does_nothing),
	    cmocka_unit_test(writable_without_being_the_primary_is_fenced),
	    cmocka_unit_test(a_new_primary_applies_its_relay_log_first),
	    cmocka_unit_test(acts_only_on_a_sample_taken_after_its_last_action),
	    cmocka_unit_test(a_blind_server_that_must_be_fenced_is_stopped_then_killed),
	    cmocka_unit_test(the_write_lease),
	    cmocka_unit_test(a_restart_the_agent_did_not_see_holds_the_primary),
	    cmocka_unit_test(acks_renew_the_lease_only_at_this_epoch),
	    cmocka_unit_test(a_report_proves_contact_as_of_its_echo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
