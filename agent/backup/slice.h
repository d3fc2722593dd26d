/* A slice of the binlog archive: whole transactions of one server's binary log, stored like a
 * backup (sealed chunks, chunk.h) under ROOT/archive/NAME with a manifest written last. The
 * plain bytes of a slice are a binary log file mariadb-binlog reads as is: the magic, the
 * source file's Format_description event, then the transactions' events unchanged.
 *
 * Slices form a chain: each names the one before it (prev) and the position it continues from
 * (start). Normally start is the previous slice's end; after a failover whose new primary
 * lacks the old primary's last archived transactions, start is where the two agree, and the
 * transactions archived beyond it are errant (kept in the older slices, never replayed); after
 * a gap (binary logs purged before they were archived), start is where the new source's
 * oldest binary log begins, and gap says what is missing. The replicated state names the
 * newest slice (the head); the chain is walked back from it.
 *
 * Pure; the parser treats its input as hostile. */
#ifndef HA_BACKUP_SLICE_H
#define HA_BACKUP_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/gtid.h"
#include "chunk.h"
#include "manifest.h"

#define HA_SLICE_NAME_MAX   96
#define HA_SLICE_NOTE_MAX   512
#define HA_SLICE_MAX_CHUNKS 4096 /* 32 GiB of one server's binary log in one slice */

struct ha_slice {
	bool authenticated;
	char file_sha[65];
	char name[HA_SLICE_NAME_MAX];
	uint64_t seq;
	char prev[HA_SLICE_NAME_MAX]; /* "" for the first */
	uint32_t server_id;
	char node[64];    /* the archiver's */
	char source[256]; /* the binary log file its first transaction came from */
	char start[HA_GTID_TEXT_MAX], end[HA_GTID_TEXT_MAX];
	char first_gtid[48], last_gtid[48];
	uint64_t first_ts, last_ts; /* unix seconds of its first and last transaction */
	uint64_t txns;
	uint64_t sealed_ms;
	char gap[HA_SLICE_NOTE_MAX];    /* "" none */
	char errant[HA_SLICE_NOTE_MAX]; /* "" none */
	/* with errant: where the archive and this slice's source agreed (the fork); transactions
	 * of older slices above it are errant ("" none) */
	char fork[HA_GTID_TEXT_MAX];
	uint64_t bytes_in, bytes_stored;
	char wrapped_key[128];
	size_t n_chunks;
	struct ha_chunk_ref *chunks; /* malloc'd; ha_slice_free */
};

/* The manifest text, sealed with its mac. */
void ha_slice_write(const struct ha_slice *s, const uint8_t master[HA_KEY_LEN], struct ha_buf *out);
/* Authenticates (the mac must be there and match) and parses a slice manifest. */
int ha_slice_open(const char *text, size_t len, const uint8_t master[HA_KEY_LEN],
                  struct ha_slice *s, struct ha_err *e);
void ha_slice_free(struct ha_slice *s);

/* A slice's name: its sequence number (12 digits, so names sort in order), the server it came
 * from and a random tag (two archivers racing for the same number never collide). */
void ha_slice_name(uint64_t seq, uint32_t server_id, uint32_t tag, char out[HA_SLICE_NAME_MAX]);

#endif
