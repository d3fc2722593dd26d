#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/gtid.h"

static struct ha_gtid_pos P(const char *s) {
	struct ha_gtid_pos p;
	struct ha_err e = {0};
	assert_int_equal(ha_gtid_parse(s, &p, &e), 0);
	return p;
}

static void
parse_single_and_multi(void **state)
{
	(void)state;
	struct ha_gtid_pos p = P("0-1-100");
	assert_int_equal(p.n, 1);
	assert_int_equal(p.g[0].domain, 0);
	assert_int_equal(p.g[0].server, 1);
	assert_int_equal(p.g[0].seq, 100);

	p = P("2-3-7, 0-1-100,\n1-2-5");
	assert_int_equal(p.n, 3);
	/* sorted by domain */
	assert_int_equal(p.g[0].domain, 0);
	assert_int_equal(p.g[1].domain, 1);
	assert_int_equal(p.g[2].domain, 2);
	assert_int_equal(p.g[2].seq, 7);
	char buf[128];
	ha_gtid_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "0-1-100,1-2-5,2-3-7");

	p = P("");
	assert_int_equal(p.n, 0);
	p = P(NULL);
	assert_int_equal(p.n, 0);
	p = P("0-4294967295-18446744073709551615");
	assert_int_equal(p.g[0].server, 4294967295u);
	assert_true(p.g[0].seq == UINT64_MAX);
}

static void parse_rejects_garbage(void **state)
{
	(void)state;
	static const char *bad[] = {
	    "0-1",
	    "0-1-",
	    "a-1-2",
	    "0-1-2,",
	    "0-1-2 x",
	    "0-1-2,0-3-4", /* repeated domain */
	    "4294967296-1-1",
	    "0-4294967296-1",
	    "0-1-18446744073709551616",
	    "-0-1-2",
	    "0--1-2",
	    "0-1-2;1-2-3",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ha_gtid_pos p;
		struct ha_err e = {0};
		assert_int_equal(ha_gtid_parse(bad[i], &p, &e), HA_EINVAL);
		assert_true(strlen(e.msg) > 0);
	}
	/* too many domains */
	char big[4096] = "";
	for (int i = 0; i <= HA_GTID_MAX_DOMAINS; i++) {
		char one[32];
		snprintf(one, sizeof(one), "%s%d-1-1", i ? "," : "", i);
		strcat(big, one);
	}
	struct ha_gtid_pos p;
	struct ha_err e = {0};
	assert_int_equal(ha_gtid_parse(big, &p, &e), HA_EINVAL);
}

static void containment(void **state)
{
	(void)state;
	struct ha_gtid_pos a = P("0-1-100,1-2-5"), b = P("0-1-90"), c = P("0-1-100,1-2-6"),
	                   d = P("0-2-101"), empty = P("");
	assert_true(ha_gtid_contains(&a, &b));
	assert_false(ha_gtid_contains(&b, &a));
	assert_true(ha_gtid_contains(&c, &a));
	assert_true(ha_gtid_contains(&a, &empty));
	assert_false(ha_gtid_contains(&empty, &a));
	/* server id does not take part: 0-2-101 contains 0-1-100's domain-0 history */
	struct ha_gtid_pos a0 = P("0-1-100");
	assert_true(ha_gtid_contains(&d, &a0));

	assert_int_equal(ha_gtid_compare(&a, &a), HA_GTID_EQUAL);
	assert_int_equal(ha_gtid_compare(&a, &b), HA_GTID_AHEAD);
	assert_int_equal(ha_gtid_compare(&b, &a), HA_GTID_BEHIND);
	/* each has something the other lacks */
	struct ha_gtid_pos x = P("0-1-100,1-2-4"), y = P("0-1-99,1-2-5");
	assert_int_equal(ha_gtid_compare(&x, &y), HA_GTID_DIVERGED);
	/* a domain only one side has */
	struct ha_gtid_pos z = P("0-1-100,5-9-1");
	assert_int_equal(ha_gtid_compare(&z, &a0), HA_GTID_AHEAD);
	/* the same sequence number from two servers: two transactions, diverged (an old primary's
	 * last write against the new primary's first) */
	struct ha_gtid_pos o9 = P("0-1-9"), n9 = P("0-2-9"), n10 = P("0-2-10");
	assert_false(ha_gtid_contains(&n9, &o9));
	assert_false(ha_gtid_contains(&o9, &n9));
	assert_int_equal(ha_gtid_compare(&o9, &n9), HA_GTID_DIVERGED);
	assert_true(ha_gtid_contains(&n10, &o9)); /* beyond it: ordered by seq, as before */
	struct ha_gtid_pos m;
	uint64_t from[HA_GTID_MAX_DOMAINS];
	assert_int_equal(ha_gtid_missing_from(&o9, &n9, &m, from), 1);
	assert_true(from[0] == 9);
	assert_true(ha_gtid_count_missing(&o9, &n9) == 1);
	struct ha_gtid_pos o9b = P("0-1-9");
	assert_true(ha_gtid_count_missing(&o9, &o9b) == 0);
	assert_string_equal(ha_gtid_cmp_name(HA_GTID_DIVERGED), "diverged");
}

static void missing_from(void **state)
{
	(void)state;
	struct ha_gtid_pos old_primary = P("0-1-105,1-1-3"), new_primary = P("0-1-100,2-2-8");
	struct ha_gtid_pos miss;
	uint64_t from[HA_GTID_MAX_DOMAINS];
	size_t n = ha_gtid_missing_from(&old_primary, &new_primary, &miss, from);
	assert_int_equal(n, 2);
	assert_int_equal(miss.g[0].domain, 0);
	assert_int_equal(miss.g[0].seq, 105);
	assert_int_equal(from[0], 101);
	assert_int_equal(miss.g[1].domain, 1);
	assert_int_equal(from[1], 1);
	assert_int_equal(ha_gtid_count_missing(&old_primary, &new_primary), 5 + 3);
	assert_int_equal(ha_gtid_count_missing(&new_primary, &new_primary), 0);
	/* nothing missing when contained */
	struct ha_gtid_pos behind = P("0-1-50");
	assert_int_equal(ha_gtid_missing_from(&behind, &new_primary, &miss, NULL), 0);
}

/* A restored server must already hold its own server id's transactions (a replica skips them). */
static void binlog_state_held(void **state)
{
	(void)state;
	struct ha_gtid_pos pos;
	char miss[64];
	/* node 1 was primary up to 0-1-150, then node 2 wrote up to 0-2-160 */
	const char *st = "0-1-150,0-2-160,1-1-7";
	assert_int_equal(ha_gtid_parse("0-2-120,1-1-7", &pos, NULL), 0);
	assert_int_equal(ha_gtid_state_held(st, 1, 0, &pos, miss, sizeof(miss)), 0);
	assert_string_equal(miss, "0-1-150");
	assert_int_equal(ha_gtid_state_held(st, 3, 0, &pos, miss, sizeof(miss)),
	                 1); /* never wrote */
	assert_int_equal(ha_gtid_parse("0-2-151,1-1-7", &pos, NULL), 0);
	assert_int_equal(ha_gtid_state_held(st, 1, 0, &pos, miss, sizeof(miss)),
	                 1);                                             /* seq orders */
	assert_int_equal(ha_gtid_parse("0-2-150,1-1-7", &pos, NULL), 0); /* another 150th */
	assert_int_equal(ha_gtid_state_held(st, 1, 0, &pos, miss, sizeof(miss)), 0);
	assert_int_equal(ha_gtid_parse("0-2-155", &pos, NULL), 0);
	assert_int_equal(ha_gtid_state_held(st, 1, 0, &pos, miss, sizeof(miss)), 0);
	assert_string_equal(miss, "1-1-7"); /* domain 1 missing altogether */
	/* the server unknown: every server but the primary's (2) */
	assert_int_equal(ha_gtid_parse("0-2-155,1-1-7", &pos, NULL), 0);
	assert_int_equal(ha_gtid_state_held(st, 0, 2, &pos, miss, sizeof(miss)), 1);
	assert_int_equal(ha_gtid_parse("0-2-149,1-1-7", &pos, NULL), 0);
	assert_int_equal(ha_gtid_state_held(st, 0, 2, &pos, miss, sizeof(miss)), 0);
	assert_int_equal(ha_gtid_state_held("", 1, 0, &pos, miss, sizeof(miss)), 1);
	assert_int_equal(ha_gtid_state_held(NULL, 1, 0, &pos, NULL, 0), 1);
	assert_int_equal(ha_gtid_state_held("0-1-x", 1, 0, &pos, miss, sizeof(miss)), HA_EINVAL);
	assert_int_equal(ha_gtid_state_held("0-1-5 0-1-6", 1, 0, &pos, miss, sizeof(miss)),
	                 HA_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(binlog_state_held),     cmocka_unit_test(parse_single_and_multi),
	    cmocka_unit_test(parse_rejects_garbage), cmocka_unit_test(containment),
	    cmocka_unit_test(missing_from),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
