#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/parse.h"
#include "http/slots.h"

static int parse(const char *s, struct ha_http_req *r)
{
	return ha_http_parse(s, strlen(s), NULL, r);
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
	assert_int_equal(ha_http_parse(nul, sizeof(nul) - 1, NULL, &r), HA_HTTP_BAD);
	/* a path longer than the limit */
	char big[HA_HTTP_MAX_REQUEST + 16];
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	memcpy(big + 600, " HTTP/1.1\r\n\r\n", 13);
	assert_int_equal(ha_http_parse(big, 613, NULL, &r), HA_HTTP_BAD);
	/* no end of headers within the limit: bad, not "more" forever */
	memset(big, 'a', sizeof(big));
	assert_int_equal(ha_http_parse(big, HA_HTTP_MAX_REQUEST, NULL, &r), HA_HTTP_BAD);
	assert_int_equal(ha_http_parse(big, HA_HTTP_MAX_REQUEST - 1, NULL, &r), HA_HTTP_MORE);
	/* the request line ends with CR LF, not a bare CR */
	assert_int_equal(parse("GET /primary HTTP/1.1\rX\r\n\r\n", &r), HA_HTTP_BAD);
	/* the end of headers past the limit does not count */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 20);
	memcpy(big + HA_HTTP_MAX_REQUEST - 2, "\r\n\r\n", 4);
	assert_int_equal(ha_http_parse(big, HA_HTTP_MAX_REQUEST + 2, NULL, &r), HA_HTTP_BAD);
	assert_int_equal(ha_http_parse(big, HA_HTTP_MAX_REQUEST - 1, NULL, &r), HA_HTTP_MORE);
}

/* Bytes trickled in one at a time: each call resumes the search where the last stopped (an end
 * of headers straddling two calls is found), with the answer a whole parse gives. */
static void incremental(void **state)
{
	(void)state;
	const char *reqs[] = {"GET /replica?max_lag=5 HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\n",
	                      "GET /health HTTP/1.0\r\n\r\n", "GET /\r\n\r\n",
	                      "PUT / HTTP/1.1\r\n\r\n", "\r\n\r\n"};
	for (size_t k = 0; k < sizeof(reqs) / sizeof(reqs[0]); k++) {
		size_t n = strlen(reqs[k]), scanned = 0;
		struct ha_http_req a, b;
		for (size_t i = 0; i <= n; i++) {
			int inc = ha_http_parse(reqs[k], i, &scanned, &a);
			int whole = ha_http_parse(reqs[k], i, NULL, &b);
			assert_int_equal(inc, whole);
			assert_memory_equal(&a, &b, sizeof(a));
			assert_true(scanned <= i);
			if (inc != HA_HTTP_MORE)
				assert_int_equal(i, n); /* not before the last byte */
		}
	}
	/* a buffer that is not the last call's (shorter): searched from its start */
	size_t scanned = 1000;
	struct ha_http_req r;
	assert_int_equal(ha_http_parse("GET / HTTP/1.1\r\n\r\n", 18, &scanned, &r),
	                 HA_HTTP_COMPLETE);
}

/* Which connection gives way when every slot is taken (slots.h). */
static void slot_victim(void **state)
{
	(void)state;
	struct ha_http_slot s[32];
	memset(s, 0, sizeof(s));
	assert_int_equal(ha_http_slot_victim(s, 32), -1);
	/* every slot waiting, from two peers under their share: the oldest goes */
	for (int i = 0; i < 32; i++)
		s[i] = (struct ha_http_slot){HA_HTTP_SLOT_WAITING, (uint64_t)(100 - i),
		                             (uint32_t)(1 + i % 8), false, HA_HTTP_RANK_PLAIN};
	s[7].order = 5;
	/* 8 peers with 4 each: nobody above the share of 8 */
	assert_int_equal(ha_http_slot_victim(s, 32), 7);
	/* one peer above its share: its oldest goes, even though another's is older */
	for (int i = 16; i < 32; i++)
		s[i].peer = 99;
	assert_int_equal(ha_http_slot_victim(s, 32), 31);
	s[31].state = HA_HTTP_SLOT_WRITING;
	assert_int_equal(ha_http_slot_victim(s, 32), 30);
	/* a connection already answered and written goes first */
	s[3].state = HA_HTTP_SLOT_DONE;
	s[4].state = HA_HTTP_SLOT_DONE;
	assert_int_equal(ha_http_slot_victim(s, 32), 4);
	/* nobody waits: the oldest still writing goes */
	for (int i = 0; i < 32; i++)
		s[i].state = HA_HTTP_SLOT_WRITING;
	assert_int_equal(ha_http_slot_victim(s, 32), 7);
	/* a peer at exactly its share is not singled out */
	memset(s, 0, sizeof(s));
	for (int i = 0; i < 16; i++)
		s[i] = (struct ha_http_slot){HA_HTTP_SLOT_WAITING, (uint64_t)(i + 1),
		                             i < HA_HTTP_PEER_SHARE ? 7u : (uint32_t)(100 + i),
		                             false, HA_HTTP_RANK_PLAIN};
	s[15].order = 0;
	assert_int_equal(ha_http_slot_victim(s, 32), 15);
	s[15].peer = 7; /* now above it: the oldest of peer 7 */
	assert_int_equal(ha_http_slot_victim(s, 32), 15);
	s[15].order = 50;
	assert_int_equal(ha_http_slot_victim(s, 32), 0);
	/* a connection not read yet is never the victim, however old, nor its peer's count's */
	s[0].fresh = true;
	assert_int_equal(ha_http_slot_victim(s, 32), 1);
	for (int i = 0; i < 16; i++)
		s[i].fresh = i != 9;
	assert_int_equal(ha_http_slot_victim(s, 32), 9);
	s[9].fresh = true;
	assert_int_equal(ha_http_slot_victim(s, 32), -1); /* the newcomer is refused */
	s[12].state = HA_HTTP_SLOT_WRITING;
	assert_int_equal(ha_http_slot_victim(s, 32), 12);
}

/* Plain slow clients on a TLS server never evict a TLS check, from whatever address. */
static void slot_rank(void **state)
{
	(void)state;
	struct ha_http_slot s[32];
	memset(s, 0, sizeof(s));
	/* 31 plain slow clients and a TLS check, all from one address (a load balancer shares
	 * its host with the attacker, or both come through one NAT); the check is the oldest */
	for (int i = 0; i < 32; i++)
		s[i] = (struct ha_http_slot){HA_HTTP_SLOT_WAITING, (uint64_t)(i + 10), 7u, false,
		                             HA_HTTP_RANK_PLAIN};
	s[20].rank = HA_HTTP_RANK_TRYING;
	s[20].order = 1;
	assert_int_equal(ha_http_slot_victim(s, 32), 0); /* the oldest plain one */
	/* verified beats trying beats plain, whatever the age and the address */
	for (int i = 0; i < 32; i++)
		if (i != 20)
			s[i].rank = HA_HTTP_RANK_VERIFIED;
	s[5].peer = 8;
	assert_int_equal(ha_http_slot_victim(s, 32), 20);
	s[20].rank = HA_HTTP_RANK_VERIFIED;
	assert_int_equal(ha_http_slot_victim(s, 32), 20); /* all alike: the oldest again */
	/* a plain one not read yet is not the victim: the lowest rank that may go is */
	s[30].rank = HA_HTTP_RANK_PLAIN;
	s[30].fresh = true;
	assert_int_equal(ha_http_slot_victim(s, 32), 20);
	s[30].fresh = false;
	assert_int_equal(ha_http_slot_victim(s, 32), 30);
	/* an answered connection still goes before any waiting one */
	s[25].state = HA_HTTP_SLOT_DONE;
	assert_int_equal(ha_http_slot_victim(s, 32), 25);
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
	    cmocka_unit_test(requests),    cmocka_unit_test(query),
	    cmocka_unit_test(incremental), cmocka_unit_test(slot_victim),
	    cmocka_unit_test(slot_rank),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
