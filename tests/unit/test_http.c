#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/parse.h"

static int parse(const char *s, struct ha_http_req *r)
{
	return ha_http_parse(s, strlen(s), r);
}

static void requests(void **state)
{
	(void)state;
	struct ha_http_req r;
	assert_int_equal(parse("GET /primary HTTP/1.1\r\nHost: x\r\n\r\n", &r), HA_HTTP_COMPLETE);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/primary");
	assert_string_equal(r.query, "");
	assert_int_equal(parse("HEAD /replica?max_lag=5 HTTP/1.0\r\n\r\n", &r), HA_HTTP_COMPLETE);
	assert_string_equal(r.path, "/replica");
	assert_string_equal(r.query, "max_lag=5");
	/* incomplete: more */
	assert_int_equal(parse("GET /primary HTTP/1.1\r\nHost: x\r\n", &r), HA_HTTP_MORE);
	assert_int_equal(parse("", &r), HA_HTTP_MORE);
	/* methods other than GET/HEAD */
	assert_int_equal(parse("POST /primary HTTP/1.1\r\n\r\n", &r), HA_HTTP_METHOD);
	assert_int_equal(parse("VERYLONGMETHOD /primary HTTP/1.1\r\n\r\n", &r), HA_HTTP_METHOD);
	/* malformed */
	assert_int_equal(parse("GET\r\n\r\n", &r), HA_HTTP_BAD);
	assert_int_equal(parse("GET  HTTP/1.1\r\n\r\n", &r), HA_HTTP_BAD);
	assert_int_equal(parse("GET primary HTTP/1.1\r\n\r\n", &r), HA_HTTP_BAD);
	assert_int_equal(parse("GET /primary HTTP/2.0\r\n\r\n", &r), HA_HTTP_BAD);
	assert_int_equal(parse("GET /primary FTP/1.1\r\n\r\n", &r), HA_HTTP_BAD);
	assert_int_equal(parse("GET /pri\x01mary HTTP/1.1\r\n\r\n", &r), HA_HTTP_BAD);
	assert_int_equal(parse("GET /pri\xffmary HTTP/1.1\r\n\r\n", &r), HA_HTTP_BAD);
	/* embedded NUL */
	const char nul[] = "GET /a\0b HTTP/1.1\r\n\r\n";
	assert_int_equal(ha_http_parse(nul, sizeof(nul) - 1, &r), HA_HTTP_BAD);
	/* a path longer than the limit */
	char big[HA_HTTP_MAX_REQUEST + 16];
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	memcpy(big + 600, " HTTP/1.1\r\n\r\n", 13);
	assert_int_equal(ha_http_parse(big, 613, &r), HA_HTTP_BAD);
	/* no end of headers within the limit: bad, not "more" forever */
	memset(big, 'a', sizeof(big));
	assert_int_equal(ha_http_parse(big, HA_HTTP_MAX_REQUEST, &r), HA_HTTP_BAD);
	assert_int_equal(ha_http_parse(big, HA_HTTP_MAX_REQUEST - 1, &r), HA_HTTP_MORE);
}

static void query(void **state)
{
	(void)state;
	unsigned v = 0;
	bool bad;
	assert_true(ha_http_query_uint("max_lag=5", "max_lag", &v, &bad));
	assert_false(bad);
	assert_int_equal(v, 5);
	assert_true(ha_http_query_uint("a=1&max_lag=30&b", "max_lag", &v, &bad));
	assert_int_equal(v, 30);
	assert_false(ha_http_query_uint("a=1", "max_lag", &v, &bad));
	assert_false(ha_http_query_uint("", "max_lag", &v, &bad));
	assert_false(ha_http_query_uint("xmax_lag=3", "max_lag", &v, &bad));
	assert_true(ha_http_query_uint("max_lag=abc", "max_lag", &v, &bad));
	assert_true(bad);
	assert_true(ha_http_query_uint("max_lag=", "max_lag", &v, &bad));
	assert_true(bad);
	assert_true(ha_http_query_uint("max_lag=-1", "max_lag", &v, &bad));
	assert_true(bad);
	assert_true(ha_http_query_uint("max_lag=99999999999", "max_lag", &v, &bad));
	assert_true(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(requests),
	    cmocka_unit_test(query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
