#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "coord/topology.h"

static void three(struct ha_topo_node *n)
{
	memset(n, 0, sizeof(*n) * 3);
	static const char *names[] = {"node1", "node2", "node3"};
	static const char *addrs[] = {"127.0.0.11", "127.0.0.12", "127.0.0.13"};
	for (int i = 0; i < 3; i++) {
		n[i].id = (uint32_t)i + 1;
		n[i].name = names[i];
		n[i].address = addrs[i];
		n[i].db_port = 3306;
		n[i].reported = true;
		n[i].db_up = true;
	}
	n[1].replicating = n[2].replicating = true;
	n[1].master_host = n[2].master_host = "127.0.0.11";
	n[1].master_port = n[2].master_port = 3306;
}

static void finds_the_primary(void **state)
{
	(void)state;
	struct ha_topo_node n[3];
	char why[512];
	three(n);
	assert_int_equal(ha_topo_find_primary(n, 3, false, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "node1"));
	/* the primary may be any node */
	three(n);
	n[0].replicating = true;
	n[0].master_host = "127.0.0.12";
	n[0].master_port = 3306;
	n[1].replicating = false;
	n[2].master_host = "127.0.0.12";
	assert_int_equal(ha_topo_find_primary(n, 3, false, why, sizeof(why)), 2);
}

static void refuses_ambiguity(void **state)
{
	(void)state;
	struct ha_topo_node n[3];
	char why[512];
	/* two nodes not replicating */
	three(n);
	n[2].replicating = false;
	assert_int_equal(ha_topo_find_primary(n, 3, false, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "ambiguous"));
	assert_non_null(strstr(why, "node1"));
	assert_non_null(strstr(why, "node3"));
	/* everyone replicating */
	three(n);
	n[0].replicating = true;
	n[0].master_host = "127.0.0.12";
	assert_int_equal(ha_topo_find_primary(n, 3, false, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "every reachable node is replicating"));
	/* a replica pointing somewhere else */
	three(n);
	n[2].master_host = "127.0.0.99";
	assert_int_equal(ha_topo_find_primary(n, 3, false, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "node3 replicates from 127.0.0.99:3306"));
	/* wrong port counts too */
	three(n);
	n[1].master_port = 3307;
	assert_int_equal(ha_topo_find_primary(n, 3, false, why, sizeof(why)), 0);
}

static void waits_for_everyone_unless_majority_allowed(void **state)
{
	(void)state;
	struct ha_topo_node n[3];
	char why[512];
	three(n);
	n[2].reported = false;
	assert_int_equal(ha_topo_find_primary(n, 3, false, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "node3 (no report)"));
	assert_int_equal(ha_topo_find_primary(n, 3, true, why, sizeof(why)), 1);
	/* a minority is never enough */
	n[1].db_up = false;
	assert_int_equal(ha_topo_find_primary(n, 3, true, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "node2 (database down)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(finds_the_primary),
	    cmocka_unit_test(refuses_ambiguity),
	    cmocka_unit_test(waits_for_everyone_unless_majority_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
