#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"

static void json_shapes_and_escapes(void **state)
{
	(void)state;
	struct ha_buf b = HA_BUF_INIT;
	struct ha_json j;
	ha_json_init(&j, &b, false);
	ha_json_obj_begin(&j, NULL);
	ha_json_str(&j, "s", "a\"b\\c\nd\x01");
	ha_json_int(&j, "i", -5);
	ha_json_bool(&j, "t", true);
	ha_json_null(&j, "n");
	ha_json_str_or_null(&j, "e", "");
	ha_json_arr_begin(&j, "a");
	ha_json_uint(&j, NULL, 1);
	ha_json_obj_begin(&j, NULL);
	ha_json_obj_end(&j);
	ha_json_arr_end(&j);
	ha_json_arr_begin(&j, "empty");
	ha_json_arr_end(&j);
	ha_json_obj_end(&j);
	assert_false(ha_buf_failed(&b));
	assert_string_equal(ha_buf_cstr(&b),
	                    "{\"s\":\"a\\\"b\\\\c\\nd\\u0001\",\"i\":-5,\"t\":true,\"n\":null,"
	                    "\"e\":null,\"a\":[1,{}],\"empty\":[]}");
	ha_buf_free(&b);
}

static void buf_consume_and_grow(void **state)
{
	(void)state;
	struct ha_buf b = HA_BUF_INIT;
	for (int i = 0; i < 1000; i++)
		ha_buf_printf(&b, "%04d", i);
	assert_int_equal(b.len, 4000);
	ha_buf_consume(&b, 3996);
	assert_string_equal(ha_buf_cstr(&b), "0999");
	ha_buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	ha_buf_free(&b);
}

static void err_wrap_reads_like_a_path(void **state)
{
	(void)state;
	struct ha_err e = {0};
	ha_err_set(&e, HA_EDB, "lost connection");
	ha_err_wrap(&e, "set read_only");
	ha_err_wrap(&e, "promote %s", "node2");
	assert_string_equal(e.msg, "promote node2: set read_only: lost connection");
	assert_int_equal(e.code, HA_EDB);
	assert_int_equal(ha_exit_code(HA_EDB), 10);
	assert_string_equal(ha_strerror(HA_ECONNECT), "cannot reach any agent");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(json_shapes_and_escapes),
	    cmocka_unit_test(buf_consume_and_grow),
	    cmocka_unit_test(err_wrap_reads_like_a_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
