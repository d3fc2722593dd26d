/* Backup chunks and keys. Pure (no I/O), any thread; decoders treat their input as hostile.
 *
 * A chunk is up to HA_CHUNK_MAX bytes of the mariadb-backup stream, stored as
 *     "HAC1" | u32 BE plain length | AES-256-GCM(zstd(plain)) | 16-byte GCM tag
 * under the backup's data key, with the nonce 0^4 | BE64(index) (unique: one data key per
 * backup) and the associated data "<backup name>/<index>", so a chunk cannot be moved to another
 * position or another backup unnoticed. The repository stores SHA-256 of each stored chunk as
 * well, which verify checks without the key.
 *
 * The data key is random per backup and stored wrapped by the repository master key:
 *     hex( nonce(12) | AES-256-GCM(master, data key) (32) | tag(16) ). */
#ifndef HA_BACKUP_CHUNK_H
#define HA_BACKUP_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

#define HA_CHUNK_MAX      (8u << 20)
#define HA_CHUNK_OVERHEAD 24 /* header 8 + tag 16 */
#define HA_KEY_LEN        32
#define HA_WRAPPED_HEX    120

/* Upper bound of a sealed chunk of n plain bytes. */
size_t ha_chunk_bound(size_t n);

/* A compression context for one thread, reused across chunks (NULL: one is made per call). */
struct ha_chunk_ctx;
struct ha_chunk_ctx *ha_chunk_ctx_new(void);
void ha_chunk_ctx_free(struct ha_chunk_ctx *c);

/* Seals plain[n] (n <= HA_CHUNK_MAX) into out (capacity ha_chunk_bound(n)); *out_len set.
 * level: zstd level (1 fast .. 19). */
int ha_chunk_seal(struct ha_chunk_ctx *ctx, const uint8_t key[HA_KEY_LEN], const char *name,
                  uint64_t index, int level, const uint8_t *plain, size_t n, uint8_t *out,
                  size_t *out_len, struct ha_err *e);

/* Opens a sealed chunk into plain (capacity HA_CHUNK_MAX); *plain_len set. Fails (HA_EPROTO)
 * on a malformed chunk, a wrong key, a chunk from another position or backup, any bit flipped. */
int ha_chunk_open(const uint8_t key[HA_KEY_LEN], const char *name, uint64_t index,
                  const uint8_t *in, size_t n, uint8_t *plain, size_t *plain_len, struct ha_err *e);

/* SHA-256 of data as 64 lowercase hex characters and a NUL. */
void ha_sha256_hex(const uint8_t *data, size_t n, char out[65]);

/* HMAC-SHA-256 of data under key, as 64 lowercase hex characters and a NUL. */
void ha_hmac_hex(const uint8_t key[HA_KEY_LEN], const void *data, size_t n, char out[65]);
/* A key for one purpose derived from the master key: HMAC-SHA-256(master, label), so the
 * master key itself never authenticates anything directly. */
void ha_key_derive(const uint8_t master[HA_KEY_LEN], const char *label, uint8_t out[HA_KEY_LEN]);
/* Whether two strings of length n are equal, in time independent of where they differ. */
bool ha_equal_ct(const char *a, const char *b, size_t n);

/* A random data key. */
int ha_key_random(uint8_t key[HA_KEY_LEN]);
/* Wraps/unwraps a data key with the master key (hex form above). Unwrap fails on a wrong
 * master key. */
int ha_key_wrap(const uint8_t master[HA_KEY_LEN], const uint8_t key[HA_KEY_LEN],
                char out[HA_WRAPPED_HEX + 1]);
int ha_key_unwrap(const uint8_t master[HA_KEY_LEN], const char *hex, uint8_t key[HA_KEY_LEN],
                  struct ha_err *e);

/* Reads a master key file: its first line is 64 hex characters; the file follows the secret
 * file rule (common/secret.h). On an error key holds nothing of it. */
int ha_key_load(const char *path, uint8_t key[HA_KEY_LEN], struct ha_err *e);

#endif
