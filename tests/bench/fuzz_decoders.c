/* fuzz_decoders: the decoders' fuzzer (tests/fuzz/fuzz.h) for as long as asked, by hand.
 *
 *     fuzz_decoders [--seconds N] [--target frames|http|fsm] [--seed S] [--out DIR]
 *     fuzz_decoders --target T --seed S --iteration I      (one input made again and checked)
 *     fuzz_decoders --target T --replay FILE               (a saved input checked)
 *
 * Runs each target (all three by default) for N seconds (10) divided among them, and prints
 * inputs per second and what the inputs reached. An input that breaks a check, crashes or
 * trips a sanitizer is written to DIR/fuzz-<target>-crash.bin (and its seed and iteration
 * printed); the exit status is then 1. Build with -DHA_SANITIZE=ON for AddressSanitizer and
 * UBSan. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../fuzz/fuzz.h"

static uint8_t input[FZ_MAX_INPUT];
static volatile size_t input_len;
static char crash_path[FZ_N_TARGETS][4096];
static volatile int current = -1;

/* Writes the input being checked to its target's crash file: async-signal-safe. */
static void save_input(void)
{
	if (current < 0)
		return;
	int fd = open(crash_path[current], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, input, input_len);
		(void)w;
		close(fd);
	}
	static const char msg[] = "fuzz_decoders: crash input written to ";
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	w = write(2, crash_path[current], strlen(crash_path[current]));
	w = write(2, "\n", 1);
	(void)w;
}

static void on_fatal(int sig)
{
	save_input();
	signal(sig, SIG_DFL);
	raise(sig);
}

#if defined(__SANITIZE_ADDRESS__)
void __sanitizer_set_death_callback(void (*callback)(void));
#endif

static void install_handlers(void)
{
	static char altstack[64 * 1024];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
	sigaltstack(&ss, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
	int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
#if defined(__SANITIZE_ADDRESS__)
	__sanitizer_set_death_callback(save_input); /* ASan and UBSan end the process themselves */
#endif
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One input checked; 0, or 1 after saving it. */
static int check_one(enum fz_target t, struct fz_rng *r, uint64_t seed, uint64_t i)
{
	char why[512];
	current = (int)t;
	if (fz_check(t, input, input_len, r, why, sizeof(why)) == 0)
		return 0;
	fprintf(stderr,
	        "fuzz_decoders: %s: seed %" PRIu64 " iteration %" PRIu64 " (%zu bytes): %s\n",
	        fz_target_name(t), seed, i, (size_t)input_len, why);
	save_input();
	return 1;
}

static int run(enum fz_target t, uint64_t seed, double seconds)
{
	memset(&fz_stats, 0, sizeof(fz_stats));
	double t0 = now_s(), t1 = t0;
	uint64_t i = 0;
	for (; t1 - t0 < seconds; i++) {
		struct fz_rng r;
		fz_seed_input(&r, seed, t, i);
		input_len = fz_make(t, &r, input);
		if (check_one(t, &r, seed, i))
			return 1;
		if ((i & 255) == 0)
			t1 = now_s();
	}
	t1 = now_s();
	const struct fz_stats *s = &fz_stats;
	printf("%-6s %10" PRIu64 " inputs in %5.1f s: %8.0f/s;", fz_target_name(t), i, t1 - t0,
	       (double)i / (t1 - t0));
	if (t == FZ_FRAMES)
		printf(" %" PRIu64 " frames decoded, %" PRIu64 " streams refused, %" PRIu64
		       " payloads unpacked (%" PRIu64 " with a field 0), %" PRIu64 " refused\n",
		       s->frames, s->frame_errors, s->unpacked, s->unsound, s->refused);
	else if (t == FZ_HTTP)
		printf(" %" PRIu64 " complete, %" PRIu64 " incomplete, %" PRIu64 " bad, %" PRIu64
		       " other methods\n",
		       s->http[1], s->http[0], s->http[2], s->http[3]);
	else
		printf(" %" PRIu64 " entries applied, %" PRIu64 " refused; %" PRIu64
		       " snapshots restored, %" PRIu64 " refused\n",
		       s->fsm_applied, s->fsm_refused, s->restored, s->restore_refused);
	fflush(stdout);
	return 0;
}

static int replay(enum fz_target t, const char *path, uint64_t seed)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return 2;
	}
	input_len = fread(input, 1, sizeof(input), f);
	fclose(f);
	struct fz_rng r;
	fz_seed(&r, seed);
	int rc = check_one(t, &r, seed, 0);
	printf("%s: %s\n", path, rc ? "FAILS" : "passes");
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: fuzz_decoders [--seconds N] [--target frames|http|fsm] [--seed S] "
	                "[--out DIR] [--iteration I | --replay FILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
	                                     {"target", required_argument, NULL, 't'},
	                                     {"seed", required_argument, NULL, 'S'},
	                                     {"out", required_argument, NULL, 'o'},
	                                     {"iteration", required_argument, NULL, 'i'},
	                                     {"replay", required_argument, NULL, 'r'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	double seconds = 10;
	int target = -1;
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	const char *out = ".", *replay_path = NULL;
	long long iteration = -1;
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (c) {
		case 's':
			seconds = atof(optarg);
			break;
		case 't':
			if ((target = fz_target_parse(optarg)) < 0)
				return usage();
			break;
		case 'S':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'o':
			out = optarg;
			break;
		case 'i':
			iteration = atoll(optarg);
			break;
		case 'r':
			replay_path = optarg;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc || seconds <= 0 || ((replay_path || iteration >= 0) && target < 0))
		return usage();
	for (int t = 0; t < FZ_N_TARGETS; t++)
		snprintf(crash_path[t], sizeof(crash_path[t]), "%s/fuzz-%s-crash.bin", out,
		         fz_target_name((enum fz_target)t));
	install_handlers();
	if (replay_path)
		return replay((enum fz_target)target, replay_path, seed);
	if (iteration >= 0) {
		struct fz_rng r;
		fz_seed_input(&r, seed, target, (uint64_t)iteration);
		input_len = fz_make((enum fz_target)target, &r, input);
		int rc = check_one((enum fz_target)target, &r, seed, (uint64_t)iteration);
		printf("iteration %lld (%zu bytes): %s\n", iteration, (size_t)input_len,
		       rc ? "FAILS" : "passes");
		return rc;
	}
	printf("fuzz_decoders: seed %" PRIu64 "\n", seed);
	fflush(stdout);
	int n = target < 0 ? FZ_N_TARGETS : 1;
	for (int t = 0; t < FZ_N_TARGETS; t++)
		if ((target < 0 || t == target) && run((enum fz_target)t, seed, seconds / n))
			return 1;
	return 0;
}
