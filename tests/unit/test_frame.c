#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/frame.h"
#include "haagent.pb-c.h"

static size_t make_frame(uint8_t *out, int type, const uint8_t *p, uint32_t n)
{
	ha_frame_header(out, (enum ha_msg_type)type, n);
	memcpy(out + HA_FRAME_HEADER, p, n);
	return HA_FRAME_HEADER + n;
}

static void whole_and_partial(void **state)
{
	(void)state;
	uint8_t buf[64];
	const uint8_t payload[] = {1, 2, 3, 4, 5};
	size_t len = make_frame(buf, HA_MSG_STATUS_REQUEST, payload, sizeof(payload));
	int type;
	const uint8_t *p;
	size_t plen, flen;
	struct ha_err e = {0};
	/* every strict prefix asks for more */
	for (size_t i = 0; i < len; i++)
		assert_int_equal(
		    ha_frame_decode(buf, i, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e), 0);
	assert_int_equal(
	    ha_frame_decode(buf, len, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e), 1);
	assert_int_equal(type, HA_MSG_STATUS_REQUEST);
	assert_int_equal(plen, 5);
	assert_int_equal(flen, len);
	assert_memory_equal(p, payload, 5);
	/* two frames back to back: the first is returned, frame_len tells where the next starts */
	size_t len2 = make_frame(buf + len, HA_MSG_ERROR, payload, 2);
	assert_int_equal(
	    ha_frame_decode(buf, len + len2, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e), 1);
	assert_int_equal(flen, len);
	assert_int_equal(
	    ha_frame_decode(buf + flen, len2, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e),
	    1);
	assert_int_equal(type, HA_MSG_ERROR);
	/* empty payload is valid */
	len = make_frame(buf, HA_MSG_STATUS_REQUEST, payload, 0);
	assert_int_equal(
	    ha_frame_decode(buf, len, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e), 1);
	assert_int_equal(plen, 0);
}

static void rejects_bad_headers(void **state)
{
	(void)state;
	int type;
	const uint8_t *p;
	size_t plen, flen;
	struct ha_err e = {0};
	uint8_t good[HA_FRAME_HEADER];
	ha_frame_header(good, HA_MSG_HEALTH_REPORT, 10);

	uint8_t b[HA_FRAME_HEADER];
	memcpy(b, good, sizeof(b));
	b[0] = 'G'; /* refused on the first byte already */
	assert_int_equal(ha_frame_decode(b, 1, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e),
	                 HA_EPROTO);
	memcpy(b, good, sizeof(b));
	b[2] = 2; /* version */
	assert_int_equal(ha_frame_decode(b, 3, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e),
	                 HA_EPROTO);
	memcpy(b, good, sizeof(b));
	b[3] = 0; /* type */
	assert_int_equal(ha_frame_decode(b, 8, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e),
	                 HA_EPROTO);
	b[3] = HA_MSG_MAX_ + 1;
	assert_int_equal(ha_frame_decode(b, 8, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e),
	                 HA_EPROTO);
	/* oversized: refused from the header alone, before any payload arrives */
	ha_frame_header(b, HA_MSG_HEALTH_REPORT, HA_FRAME_MAX_PAYLOAD + 1);
	assert_int_equal(ha_frame_decode(b, 8, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e),
	                 HA_ETOOBIG);
	ha_frame_header(b, HA_MSG_HEALTH_REPORT, 0xffffffffu);
	assert_int_equal(ha_frame_decode(b, 8, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e),
	                 HA_ETOOBIG);
	assert_non_null(strstr(e.msg, "exceeds"));
}

/* Random garbage never crashes the decoder, and a payload that is not protobuf is refused by
 * the message decoder rather than misread. */
static void garbage(void **state)
{
	(void)state;
	srand(42);
	uint8_t buf[256];
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)(rand() % (int)sizeof(buf));
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rand();
		if (round % 2) { /* valid header, garbage payload */
			ha_frame_header(buf, HA_MSG_HEALTH_REPORT, (uint32_t)(n > 8 ? n - 8 : 0));
		}
		int type;
		const uint8_t *p;
		size_t plen, flen;
		struct ha_err e = {0};
		int rc = ha_frame_decode(buf, n, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e);
		assert_true(rc == 0 || rc == 1 || rc < 0);
		if (rc == 1) {
			assert_true(flen <= n);
			Haagent__HealthReport *r = haagent__health_report__unpack(NULL, plen, p);
			if (r)
				haagent__health_report__free_unpacked(r, NULL);
		}
	}
}

/* A field numbered 0 written in two bytes (80 00): protobuf-c unpacks it as an unknown field and
 * packs it back as a lone 00 that it refuses; ha_frame_message_sound finds it at any depth. */
static void field_zero(void **state)
{
	(void)state;
	/* HealthReport{node_id 2, health{db 1, <80 00> varint 5}} */
	const uint8_t bad[] = {0x08, 0x02, 0x12, 0x05, 0x08, 0x01, 0x80, 0x00, 0x05};
	Haagent__HealthReport *r = haagent__health_report__unpack(NULL, sizeof(bad), bad);
	assert_non_null(r); /* protobuf-c takes it */
	assert_false(ha_frame_message_sound(&r->base));
	uint8_t out[64];
	size_t n = haagent__health_report__pack(r, out);
	Haagent__HealthReport *again = haagent__health_report__unpack(NULL, n, out);
	assert_null(again); /* and refuses its own packing: why the agent checks */
	haagent__health_report__free_unpacked(r, NULL);
	/* the same with field 99 instead: an unknown field of a newer version, kept and fine */
	const uint8_t newer[] = {0x08, 0x02, 0x12, 0x05, 0x08, 0x01, 0x98, 0x06, 0x05};
	r = haagent__health_report__unpack(NULL, sizeof(newer), newer);
	assert_non_null(r);
	assert_true(ha_frame_message_sound(&r->base));
	n = haagent__health_report__pack(r, out);
	again = haagent__health_report__unpack(NULL, n, out);
	assert_non_null(again);
	haagent__health_report__free_unpacked(again, NULL);
	haagent__health_report__free_unpacked(r, NULL);
	/* in a repeated message, and through a oneof only where its case says */
	/* StatusResponse{nodes[0]{health{db 1, <80 00> 0}}} */
	const uint8_t deep[] = {0x42, 0x07, 0x4a, 0x05, 0x08, 0x01, 0x80, 0x00, 0x00};
	Haagent__StatusResponse *sr = haagent__status_response__unpack(NULL, sizeof(deep), deep);
	assert_non_null(sr);
	assert_false(ha_frame_message_sound(&sr->base));
	haagent__status_response__free_unpacked(sr, NULL);
	/* AdminRequest{pause{paused}}: the oneof's other members are not looked at */
	const uint8_t admin[] = {0x1a, 0x02, 0x08, 0x01};
	Haagent__AdminRequest *ar = haagent__admin_request__unpack(NULL, sizeof(admin), admin);
	assert_non_null(ar);
	assert_true(ha_frame_message_sound(&ar->base));
	haagent__admin_request__free_unpacked(ar, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(whole_and_partial),
	    cmocka_unit_test(rejects_bad_headers),
	    cmocka_unit_test(garbage),
	    cmocka_unit_test(field_zero),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
