#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backup/chunk.h"
#include "backup/manifest.h"

static void chunks(void **state)
{
	(void)state;
	uint8_t key[HA_KEY_LEN], other[HA_KEY_LEN];
	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	size_t n = 1 << 20;
	uint8_t *plain = malloc(n), *sealed = malloc(ha_chunk_bound(n)),
	        *out = malloc(HA_CHUNK_MAX);
	for (size_t i = 0; i < n; i++)
		plain[i] = (uint8_t)(i % 251 < 100 ? 'a' : i % 7);
	size_t slen, olen;
	struct ha_err e = {0};
	assert_int_equal(ha_chunk_seal(key, "b1", 5, 1, plain, n, sealed, &slen, &e), 0);
	assert_true(slen < n); /* compressible data is compressed */
	assert_int_equal(ha_chunk_open(key, "b1", 5, sealed, slen, out, &olen, &e), 0);
	assert_int_equal(olen, n);
	assert_memory_equal(out, plain, n);
	/* wrong key, other position, other backup: refused */
	assert_int_equal(ha_chunk_open(other, "b1", 5, sealed, slen, out, &olen, &e), HA_EPROTO);
	assert_int_equal(ha_chunk_open(key, "b1", 6, sealed, slen, out, &olen, &e), HA_EPROTO);
	assert_int_equal(ha_chunk_open(key, "b2", 5, sealed, slen, out, &olen, &e), HA_EPROTO);
	/* any flipped bit */
	for (size_t pos = 0; pos < slen; pos += slen / 13 + 1) {
		sealed[pos] ^= 0x10;
		assert_int_equal(ha_chunk_open(key, "b1", 5, sealed, slen, out, &olen, &e),
		                 HA_EPROTO);
		sealed[pos] ^= 0x10;
	}
	/* truncated, or a length field beyond the limit */
	assert_int_equal(ha_chunk_open(key, "b1", 5, sealed, 10, out, &olen, &e), HA_EPROTO);
	sealed[4] = 0xff;
	assert_int_equal(ha_chunk_open(key, "b1", 5, sealed, slen, out, &olen, &e), HA_EPROTO);
	/* empty chunk */
	assert_int_equal(ha_chunk_seal(key, "b1", 0, 1, plain, 0, sealed, &slen, &e), 0);
	assert_int_equal(ha_chunk_open(key, "b1", 0, sealed, slen, out, &olen, &e), 0);
	assert_int_equal(olen, 0);
	free(plain);
	free(sealed);
	free(out);
}

static void keys(void **state)
{
	(void)state;
	uint8_t master[HA_KEY_LEN], wrong[HA_KEY_LEN], k[HA_KEY_LEN], back[HA_KEY_LEN];
	memset(master, 1, sizeof(master));
	memset(wrong, 2, sizeof(wrong));
	assert_int_equal(ha_key_random(k), 0);
	char hex[HA_WRAPPED_HEX + 1];
	assert_int_equal(ha_key_wrap(master, k, hex), 0);
	assert_int_equal(strlen(hex), HA_WRAPPED_HEX);
	struct ha_err e = {0};
	assert_int_equal(ha_key_unwrap(master, hex, back, &e), 0);
	assert_memory_equal(k, back, HA_KEY_LEN);
	assert_int_equal(ha_key_unwrap(wrong, hex, back, &e), HA_EPROTO);
	assert_non_null(strstr(e.msg, "wrong key"));
	hex[10] = hex[10] == '0' ? '1' : '0';
	assert_int_equal(ha_key_unwrap(master, hex, back, &e), HA_EPROTO);
	assert_int_equal(ha_key_unwrap(master, "zz", back, &e), HA_EPROTO);
	char sha[65];
	ha_sha256_hex((const uint8_t *)"abc", 3, sha);
	assert_string_equal(sha,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void manifests(void **state)
{
	(void)state;
	struct ha_manifest m, r;
	memset(&m, 0, sizeof(m));
	m.id = 7;
	snprintf(m.name, sizeof(m.name), "000007-incremental-x");
	snprintf(m.type, sizeof(m.type), "incremental");
	m.parent = 6;
	snprintf(m.parent_name, sizeof(m.parent_name), "000006-full-x");
	snprintf(m.node, sizeof(m.node), "node2");
	snprintf(m.server_version, sizeof(m.server_version), "10.11.19-MariaDB-0+deb12u1-log");
	m.from_lsn = 100;
	m.to_lsn = 200;
	snprintf(m.gtid, sizeof(m.gtid), "0-1-6");
	snprintf(m.wrapped_key, sizeof(m.wrapped_key), "%0120d", 0);
	m.n_chunks = 2;
	struct ha_chunk_ref c[2] = {{10, 20, ""}, {11, 21, ""}};
	memset(c[0].sha, 'a', 64);
	memset(c[1].sha, 'b', 64);
	m.chunks = c;
	struct ha_buf b = HA_BUF_INIT;
	ha_manifest_write(&m, &b);
	struct ha_err e = {0};
	assert_int_equal(ha_manifest_parse(b.data, b.len, &r, &e), 0);
	assert_int_equal(r.id, 7);
	assert_string_equal(r.type, "incremental");
	assert_string_equal(r.parent_name, "000006-full-x");
	assert_string_equal(r.server_version, m.server_version);
	assert_int_equal(r.to_lsn, 200);
	assert_int_equal(r.n_chunks, 2);
	assert_int_equal(r.chunks[1].plain, 21);
	ha_manifest_free(&r);
	/* without its last line (a torn write): refused */
	assert_true(ha_manifest_parse(b.data, b.len - 4, &r, &e) < 0);
	/* a chunk line missing, an unknown key, a bad type, binary garbage */
	char *t = strdup(b.data);
	char *c1 = strstr(t, "chunk 1 ");
	memcpy(c1, "chunk 2 ", 8);
	assert_true(ha_manifest_parse(t, strlen(t), &r, &e) < 0);
	free(t);
	t = strdup(b.data);
	memcpy(strstr(t, "load"), "lard", 4);
	assert_true(ha_manifest_parse(t, strlen(t), &r, &e) < 0);
	free(t);
	t = strdup(b.data);
	memcpy(strstr(t, "incremental\n"), "incremantal\n", 12);
	assert_true(ha_manifest_parse(t, strlen(t), &r, &e) < 0);
	free(t);
	assert_true(ha_manifest_parse("\x01\x02", 2, &r, &e) < 0);
	assert_true(ha_manifest_parse("haagent-backup 1\nchunks 99999999999\n", 36, &r, &e) < 0);
	ha_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(chunks),
	    cmocka_unit_test(keys),
	    cmocka_unit_test(manifests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
