/* A small deterministic fuzzer for the decoders that read hostile bytes: the RPC frame decoder
 * followed by the protobuf-c unpack of the messages (common/frame.h, proto/haagent.proto), the
 * HTTP request parser (http/parse.h), and the replicated state machine's entries and snapshots
 * (consensus/fsm.h). Shared by the unit suite (tests/unit/test_fuzz.c: a fixed seed, a bounded
 * number of inputs) and the hand-run tests/bench/fuzz_decoders.c (a time budget).
 *
 * An input is made in two steps: a valid one, generated from the schema (every field of every
 * message, through the protobuf-c descriptors) or from the HTTP grammar, then 0 to 4 mutations
 * (bit flips, interesting bytes, truncation, random bytes appended or inserted, ranges deleted or
 * duplicated, splices with another valid input, header fields and protobuf varints set to
 * extremes). Everything comes from one seeded generator: a seed and an iteration number make the
 * same input again.
 *
 * The checks (fz_check) state each decoder's contract against an independent reference written
 * from its header, rather than only "no crash": see check.c. Inputs are copied into buffers of
 * their exact size, so that AddressSanitizer sees a read past the end. */
#ifndef HA_FUZZ_H
#define HA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define FZ_MAX_INPUT (64u << 10)

struct fz_rng {
	uint64_t s;
};

void fz_seed(struct fz_rng *r, uint64_t seed);
uint64_t fz_u64(struct fz_rng *r);
/* Uniform in [0, n); n > 0. */
size_t fz_below(struct fz_rng *r, size_t n);

/* The generator of input number i of a run with seed for target t (0..FZ_N_TARGETS-1): each input
 * has its own, so that one input can be made again alone. */
void fz_seed_input(struct fz_rng *r, uint64_t seed, int t, uint64_t i);

enum fz_target {
	FZ_FRAMES, /* a stream of RPC frames, cut into reads as conn.c sees them, and their messages
	            */
	FZ_HTTP,   /* an HTTP request, whole and trickled */
	FZ_FSM,    /* a raft log entry applied, a snapshot restored, and their snapshots restored */
	FZ_N_TARGETS,
};
const char *fz_target_name(enum fz_target t);
int fz_target_parse(const char *name); /* -1 when unknown */

/* One input for target t into buf (FZ_MAX_INPUT bytes); returns its length. */
size_t fz_make(enum fz_target t, struct fz_rng *r, uint8_t *buf);

/* Runs target t's decoders on the input and checks their contracts; r chooses how the input is
 * cut into reads and which other message types to try. Returns 0, or -1 with why set. */
int fz_check(enum fz_target t, const uint8_t *in, size_t len, struct fz_rng *r, char *why,
             size_t size);

/* What the checks saw, summed over calls: that the inputs reach every outcome. */
struct fz_stats {
	uint64_t frames, frame_errors;      /* frames decoded; streams ended by an error */
	uint64_t unpacked, refused;         /* payloads unpacked as a message, or refused */
	uint64_t unsound;                   /* unpacked, but with a field numbered 0 (frame.h) */
	uint64_t http[4];                   /* requests: more wanted, complete, bad, other method */
	uint64_t fsm_applied, fsm_refused;  /* entries applied (or no-ops), refused */
	uint64_t restored, restore_refused; /* snapshots restored, refused */
};
extern struct fz_stats fz_stats;

/* Every message type of proto/haagent.proto, and the one each RPC frame type carries. */
extern const ProtobufCMessageDescriptor *const fz_messages[];
extern const size_t fz_n_messages;
const ProtobufCMessageDescriptor *fz_rpc_message(int frame_type); /* NULL when none */

/* internal to tests/fuzz: gen.c for check.c */
ProtobufCMessage *fz_gen_message(struct fz_rng *r, const ProtobufCMessageDescriptor *d, int depth);
void fz_gen_reset(void); /* frees every generated message at once */
size_t fz_mutate(struct fz_rng *r, enum fz_target t, uint8_t *b, size_t len);

#endif
