/* A bounded, deterministic run of the decoders' fuzzer (tests/fuzz/fuzz.h): a fixed seed, a
 * fixed number of inputs per target, a few seconds at most (under the sanitizers too). A failure
 * names the seed and the iteration: tests/bench/fuzz_decoders --target T --seed S
 * --iteration I makes that input again. The longer run is tests/bench/fuzz_decoders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/fuzz.h"
#include "common/frame.h"

#define SEED 20261203u

static uint8_t input[FZ_MAX_INPUT];

static void run(enum fz_target t, unsigned iterations)
{
	for (unsigned i = 0; i < iterations; i++) {
		/* one generator per input, from the seed and the iteration: replayable alone */
		struct fz_rng r;
		fz_seed_input(&r, SEED, t, i);
		size_t len = fz_make(t, &r, input);
		char why[512];
		if (fz_check(t, input, len, &r, why, sizeof(why)) != 0) {
			fprintf(stderr, "fuzz %s: seed %u iteration %u (%zu bytes): %s\n",
			        fz_target_name(t), SEED, i, len, why);
			fail();
		}
	}
	printf("fuzz %s: %u inputs checked (seed %u)\n", fz_target_name(t), iterations, SEED);
}

/* Every message of the schema is in the fuzzer's table (a new message is fuzzed too). */
static void schema_is_complete(void **state)
{
	(void)state;
	FILE *f = fopen(HA_PROTO_FILE, "r");
	assert_non_null(f);
	char line[512];
	size_t seen = 0;
	while (fgets(line, sizeof(line), f)) {
		char name[128];
		if (sscanf(line, "message %127[A-Za-z0-9_]", name) != 1)
			continue;
		seen++;
		size_t i = 0;
		while (i < fz_n_messages && strcmp(fz_messages[i]->short_name, name))
			i++;
		if (i == fz_n_messages)
			fprintf(stderr, "message %s is missing from tests/fuzz/gen.c\n", name);
		assert_true(i < fz_n_messages);
	}
	fclose(f);
	assert_int_equal(seen, fz_n_messages);
	for (int t = 1; t <= HA_MSG_MAX_; t++)
		assert_non_null(fz_rpc_message(t));
}

static void frames(void **state)
{
	(void)state;
	memset(&fz_stats, 0, sizeof(fz_stats));
	run(FZ_FRAMES, 15000);
	/* the inputs reach every outcome */
	assert_true(fz_stats.frames > 10000);
	assert_true(fz_stats.frame_errors > 2000);
	assert_true(fz_stats.unpacked > 5000);
	assert_true(fz_stats.refused > 1000);
}

static void http(void **state)
{
	(void)state;
	memset(&fz_stats, 0, sizeof(fz_stats));
	run(FZ_HTTP, 20000);
	for (int i = 0; i < 4; i++)
		assert_true(fz_stats.http[i] > 500);
}

static void fsm(void **state)
{
	(void)state;
	memset(&fz_stats, 0, sizeof(fz_stats));
	run(FZ_FSM, 3000);
	assert_true(fz_stats.fsm_applied > 20);
	assert_true(fz_stats.fsm_refused > 200);
	assert_true(fz_stats.restored > 0);
}

/* The largest frame, whole and one byte short, and one over the limit with all its bytes. */
static void largest_frame(void **state)
{
	(void)state;
	size_t n = HA_FRAME_HEADER + HA_FRAME_MAX_PAYLOAD + 1;
	uint8_t *b = calloc(1, n);
	assert_non_null(b);
	int type;
	const uint8_t *p;
	size_t plen, flen;
	struct ha_err e = {0};
	ha_frame_header(b, HA_MSG_STATUS_RESPONSE, HA_FRAME_MAX_PAYLOAD);
	assert_int_equal(
	    ha_frame_decode(b, n - 2, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e), 0);
	assert_int_equal(
	    ha_frame_decode(b, n - 1, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e), 1);
	assert_int_equal(plen, HA_FRAME_MAX_PAYLOAD);
	ha_frame_header(b, HA_MSG_STATUS_RESPONSE, HA_FRAME_MAX_PAYLOAD + 1);
	assert_int_equal(ha_frame_decode(b, n, HA_FRAME_MAX_PAYLOAD, &type, &p, &plen, &flen, &e),
	                 HA_ETOOBIG);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(schema_is_complete),
	    cmocka_unit_test(largest_frame),
	    cmocka_unit_test(frames),
	    cmocka_unit_test(http),
	    cmocka_unit_test(fsm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
