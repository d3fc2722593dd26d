#include "chunk.h"

#include <errno.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "../common/secret.h"

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void nonce_of(uint64_t index, uint8_t nonce[12])
{
	memset(nonce, 0, 12);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(index >> (56 - 8 * i));
}

size_t ha_chunk_bound(size_t n)
{
	return ZSTD_compressBound(n) + HA_CHUNK_OVERHEAD;
}

/* AES-256-GCM; encrypt or decrypt in place from in to out; tag written or checked. */
static int gcm(int enc, const uint8_t key[HA_KEY_LEN], const uint8_t nonce[12], const char *aad,
               size_t aad_len, const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, ok = c != NULL;
	ok = ok && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1;
	ok = ok && EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1;
	ok = ok && EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)aad, (int)aad_len) == 1;
	ok = ok && (n == 0 || EVP_CipherUpdate(c, out, &len, in, (int)n) == 1);
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
	ok = ok && EVP_CipherFinal_ex(c, out + (n ? (size_t)len : 0), &len) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

static size_t aad_of(const char *name, uint64_t index, char *aad, size_t size)
{
	int k = snprintf(aad, size, "%s/%llu", name, (unsigned long long)index);
	return k < 0 ? 0 : (size_t)k < size ? (size_t)k : size - 1;
}

struct ha_chunk_ctx *ha_chunk_ctx_new(void)
{
	return (struct ha_chunk_ctx *)ZSTD_createCCtx();
}

void ha_chunk_ctx_free(struct ha_chunk_ctx *c)
{
	ZSTD_freeCCtx((ZSTD_CCtx *)c);
}

int ha_chunk_seal(struct ha_chunk_ctx *ctx, const uint8_t key[HA_KEY_LEN], const char *name,
                  uint64_t index, int level, const uint8_t *plain, size_t n, uint8_t *out,
                  size_t *out_len, struct ha_err *e)
{
	if (n > HA_CHUNK_MAX)
		return ha_err_set(e, HA_EINVAL, "chunk of %zu bytes is too large", n);
	size_t cap = ZSTD_compressBound(n);
	/* compress straight into the ciphertext area, then encrypt in place */
	size_t z = ctx ? ZSTD_compressCCtx((ZSTD_CCtx *)ctx, out + 8, cap, plain, n, level)
	               : ZSTD_compress(out + 8, cap, plain, n, level);
	if (ZSTD_isError(z))
		return ha_err_set(e, HA_EINTERNAL, "zstd: %s", ZSTD_getErrorName(z));
	memcpy(out, "HAC1", 4);
	be32(out + 4, (uint32_t)n);
	uint8_t nonce[12];
	char aad[160];
	nonce_of(index, nonce);
	size_t alen = aad_of(name, index, aad, sizeof(aad));
	if (gcm(1, key, nonce, aad, alen, out + 8, z, out + 8, out + 8 + z) != 0)
		return ha_err_set(e, HA_EINTERNAL, "encryption failed");
	*out_len = 8 + z + 16;
	return 0;
}

int ha_chunk_open(const uint8_t key[HA_KEY_LEN], const char *name, uint64_t index,
                  const uint8_t *in, size_t n, uint8_t *plain, size_t *plain_len, struct ha_err *e)
{
	if (n < HA_CHUNK_OVERHEAD || memcmp(in, "HAC1", 4) != 0)
		return ha_err_set(e, HA_EPROTO, "chunk %llu: not a haagent chunk",
		                  (unsigned long long)index);
	uint32_t want = rd32(in + 4);
	if (want > HA_CHUNK_MAX)
		return ha_err_set(e, HA_EPROTO, "chunk %llu: length %u out of range",
		                  (unsigned long long)index, want);
	size_t z = n - HA_CHUNK_OVERHEAD;
	uint8_t *tmp = malloc(z ? z : 1);
	if (tmp == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	uint8_t nonce[12], tag[16];
	char aad[160];
	nonce_of(index, nonce);
	memcpy(tag, in + 8 + z, 16);
	size_t alen = aad_of(name, index, aad, sizeof(aad));
	if (gcm(0, key, nonce, aad, alen, in + 8, z, tmp, tag) != 0) {
		free(tmp);
		return ha_err_set(e, HA_EPROTO,
		                  "chunk %llu: authentication failed (wrong key, or the chunk was "
		                  "altered or moved)",
		                  (unsigned long long)index);
	}
	size_t got = ZSTD_decompress(plain, HA_CHUNK_MAX, tmp, z);
	free(tmp);
	if (ZSTD_isError(got) || got != want)
		return ha_err_set(e, HA_EPROTO, "chunk %llu: does not decompress to %u bytes",
		                  (unsigned long long)index, want);
	*plain_len = got;
	return 0;
}

void ha_sha256_hex(const uint8_t *data, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned len = 0;
	EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void ha_hmac_hex(const uint8_t key[HA_KEY_LEN], const void *data, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned len = 0;
	HMAC(EVP_sha256(), key, HA_KEY_LEN, data, n, md, &len);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void ha_key_derive(const uint8_t master[HA_KEY_LEN], const char *label, uint8_t out[HA_KEY_LEN])
{
	unsigned len = 0;
	HMAC(EVP_sha256(), master, HA_KEY_LEN, (const uint8_t *)label, strlen(label), out, &len);
}

bool ha_equal_ct(const char *a, const char *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int ha_key_random(uint8_t key[HA_KEY_LEN])
{
	return RAND_bytes(key, HA_KEY_LEN) == 1 ? 0 : HA_EINTERNAL;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (!s[2 * i] || !s[2 * i + 1] || sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		const char *d = "0123456789abcdefABCDEF";
		if (!strchr(d, s[2 * i]) || !strchr(d, s[2 * i + 1]))
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

int ha_key_wrap(const uint8_t master[HA_KEY_LEN], const uint8_t key[HA_KEY_LEN],
                char out[HA_WRAPPED_HEX + 1])
{
	uint8_t buf[60];
	if (RAND_bytes(buf, 12) != 1 ||
	    gcm(1, master, buf, "haagent-data-key", 16, key, HA_KEY_LEN, buf + 12, buf + 44) != 0)
		return HA_EINTERNAL;
	for (int i = 0; i < 60; i++)
		snprintf(out + 2 * i, 3, "%02x", buf[i]);
	return 0;
}

int ha_key_unwrap(const uint8_t master[HA_KEY_LEN], const char *hex, uint8_t key[HA_KEY_LEN],
                  struct ha_err *e)
{
	uint8_t buf[60];
	if (hex == NULL || strlen(hex) != HA_WRAPPED_HEX || unhex(hex, buf, 60) != 0)
		return ha_err_set(e, HA_EPROTO, "the wrapped data key is malformed");
	if (gcm(0, master, buf, "haagent-data-key", 16, buf + 12, HA_KEY_LEN, key, buf + 44) != 0)
		return ha_err_set(e, HA_EPROTO,
		                  "the repository key does not open this backup (wrong key file?)");
	return 0;
}

int ha_key_load(const char *path, uint8_t key[HA_KEY_LEN], struct ha_err *e)
{
	char line[2 * HA_KEY_LEN + 2];
	struct ha_err se = {0};
	if (ha_secret_read_line(path, line, sizeof(line), &se) != 0)
		return ha_err_set(e, HA_ECONFIG, "key file: %s", se.msg);
	int rc = strlen(line) == 2 * HA_KEY_LEN ? unhex(line, key, HA_KEY_LEN) : -1;
	ha_wipe(line, sizeof(line));
	if (rc != 0) {
		ha_wipe(key, HA_KEY_LEN);
		return ha_err_set(e, HA_ECONFIG,
		                  "key file %s: the first line must be 64 hex characters (e.g. "
		                  "openssl rand -hex 32)",
		                  path);
	}
	return 0;
}
