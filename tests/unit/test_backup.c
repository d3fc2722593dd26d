#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup/chunk.h"
#include "backup/manifest.h"
#include "backup/policy.h"
#include "backup/fsutil.h"
#include "backup/store.h"

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
	assert_int_equal(ha_chunk_seal(NULL, key, "b1", 5, 1, plain, n, sealed, &slen, &e), 0);
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
	assert_int_equal(ha_chunk_seal(NULL, key, "b1", 0, 1, plain, 0, sealed, &slen, &e), 0);
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

/* Table checksums recorded at backup time: written, read back, and hostile lines refused. */
static void manifest_checksums(void **state)
{
	(void)state;
	struct ha_manifest m, r;
	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "000001-full-x");
	snprintf(m.type, sizeof(m.type), "full");
	snprintf(m.wrapped_key, sizeof(m.wrapped_key), "%0120d", 0);
	struct ha_chunk_ref c = {10, 20, ""};
	memset(c.sha, 'a', 64);
	m.chunks = &c;
	m.n_chunks = 1;
	struct ha_table_sum sums[2] = {{4021871634u, "`shop`.`orders`"},
	                               {18446744073709551615ull, "`odd ``name`.`t 1`"}};
	m.sums = sums;
	m.n_sums = 2;
	struct ha_buf b = HA_BUF_INIT;
	ha_manifest_write(&m, &b);
	struct ha_err e = {0};
	assert_int_equal(ha_manifest_parse(b.data, b.len, &r, &e), 0);
	assert_int_equal(r.n_sums, 2);
	assert_true(r.sums[0].sum == 4021871634u);
	assert_string_equal(r.sums[1].name, "`odd ``name`.`t 1`"); /* spaces kept */
	assert_true(r.sums[1].sum == 18446744073709551615ull);
	assert_string_equal(r.sums_note, "");
	ha_manifest_free(&r);
	assert_null(r.sums);
	/* one checksum line missing, one too many, a bad number, a control character */
	char *t = strdup(b.data);
	char *l = strstr(t, "checksum 4021871634");
	memmove(l, strchr(l, '\n') + 1, strlen(strchr(l, '\n') + 1) + 1);
	assert_true(ha_manifest_parse(t, strlen(t), &r, &e) < 0);
	free(t);
	t = strdup(b.data);
	memcpy(strstr(t, "checksums 2"), "checksums 1", 11);
	assert_true(ha_manifest_parse(t, strlen(t), &r, &e) < 0);
	free(t);
	t = strdup(b.data);
	memcpy(strstr(t, "checksum 4021871634"), "checksum x021871634", 19);
	assert_true(ha_manifest_parse(t, strlen(t), &r, &e) < 0);
	free(t);
	t = strdup(b.data);
	*strstr(t, "`shop`") = '\x07';
	assert_true(ha_manifest_parse(t, strlen(t), &r, &e) < 0);
	free(t);
	t = strdup(b.data);
	memcpy(strstr(t, "checksums 2"), "checksums 9", 11); /* over the count: ends too early */
	assert_true(ha_manifest_parse(t, strlen(t), &r, &e) < 0);
	free(t);
	ha_buf_free(&b);
	/* none, with the reason; and a version 1 manifest (no checksum lines) still reads */
	m.sums = NULL;
	m.n_sums = 0;
	snprintf(m.sums_note, sizeof(m.sums_note), "not recorded: the replica applied more");
	b = (struct ha_buf)HA_BUF_INIT;
	ha_manifest_write(&m, &b);
	assert_int_equal(ha_manifest_parse(b.data, b.len, &r, &e), 0);
	assert_int_equal(r.n_sums, 0);
	assert_string_equal(r.sums_note, "not recorded: the replica applied more");
	ha_manifest_free(&r);
	t = strdup(b.data);
	memcpy(t, "haagent-backup 1", 16);
	char *cs = strstr(t, "checksums_note");
	memmove(cs, strstr(cs, "end\n"), 5);
	assert_int_equal(ha_manifest_parse(t, strlen(t), &r, &e), 0);
	assert_int_equal(r.n_sums, 0);
	ha_manifest_free(&r);
	free(t);
	ha_buf_free(&b);
	assert_true(ha_manifest_parse("haagent-backup 3\n", 17, &r, &e) < 0);
}

static void add(struct ha_fsm_state *st, uint64_t id, const char *type, uint64_t parent,
                enum ha_backup_state state, uint64_t finished_ms)
{
	struct ha_backup_rec *r = &st->backups[st->n_backups++];
	memset(r, 0, sizeof(*r));
	r->id = id;
	snprintf(r->name, sizeof(r->name), "%06llu-%s", (unsigned long long)id, type);
	snprintf(r->type, sizeof(r->type), "%s", type);
	r->parent = parent;
	r->state = state;
	r->finished_ms = finished_ms;
}

static void retention_and_chains(void **state)
{
	(void)state;
	static struct ha_fsm_state st;
	memset(&st, 0, sizeof(st));
	const uint64_t day = 86400000ULL;
	add(&st, 1, "full", 0, HA_BK_DONE, 1 * day);
	add(&st, 2, "incremental", 1, HA_BK_DONE, 1 * day);
	add(&st, 3, "full", 0, HA_BK_FAILED, 2 * day);
	add(&st, 4, "full", 0, HA_BK_DONE, 3 * day);
	add(&st, 5, "differential", 4, HA_BK_DONE, 4 * day);
	add(&st, 6, "incremental", 5, HA_BK_DONE, 5 * day);
	add(&st, 7, "full", 0, HA_BK_DONE, 6 * day);
	add(&st, 8, "incremental", 7, HA_BK_DONE, 7 * day);
	/* parents */
	assert_int_equal(ha_bk_parent(&st, "full"), 0);
	assert_int_equal(ha_bk_parent(&st, "differential"), 7);
	assert_int_equal(ha_bk_parent(&st, "incremental"), 8);
	/* chains */
	uint64_t chain[8];
	char why[256];
	assert_int_equal(ha_bk_chain(&st, 6, chain, 8, why, sizeof(why)), 3);
	assert_int_equal(chain[0], 4);
	assert_int_equal(chain[1], 5);
	assert_int_equal(chain[2], 6);
	assert_int_equal(ha_bk_chain(&st, 3, chain, 8, why, sizeof(why)), -1);
	/* keep everything without limits */
	uint64_t out[16];
	assert_int_equal(ha_bk_expired(&st, 0, 0, 8 * day, out, 16), 0);
	/* keep the newest 2 full backups with their chains: 1 and 2 go */
	assert_int_equal(ha_bk_expired(&st, 2, 0, 8 * day, out, 16), 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 2);
	/* keep 1: the chain of 4 (4, 5, 6) goes too, never 7 or 8 */
	int n = ha_bk_expired(&st, 1, 0, 8 * day, out, 16);
	assert_int_equal(n, 5);
	for (int i = 0; i < n; i++)
		assert_true(out[i] != 7 && out[i] != 8);
	/* a time window: full backups younger than 3 days at day 8 (7 only); or 6 days (4, 7) */
	assert_int_equal(ha_bk_expired(&st, 0, 3, 8 * day, out, 16), 5);
	assert_int_equal(ha_bk_expired(&st, 0, 6, 9 * day, out, 16), 2);
	/* the newest full backup is kept even when everything is old */
	assert_int_equal(ha_bk_expired(&st, 0, 1, 100 * day, out, 16), 5);
	/* a chain being read (held past now) is kept whole: keep 1 now deletes only 1 and 2 */
	st.backups[5].held_until_ms = 9 * day; /* backup 6, in the chain of 4 */
	n = ha_bk_expired(&st, 1, 0, 8 * day, out, 16);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 2);
	/* the hold lapses */
	assert_int_equal(ha_bk_expired(&st, 1, 0, 9 * day + 1, out, 16), 5);
	st.backups[5].held_until_ms = 0;
	/* a deleted link breaks the chain */
	st.backups[3].state = HA_BK_DELETED;
	assert_int_equal(ha_bk_chain(&st, 6, chain, 8, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "deleted"));
}

/* Format 3: the mac authenticates the whole manifest; older formats read unauthenticated. */
static void manifest_mac(void **state)
{
	(void)state;
	uint8_t key[HA_KEY_LEN], other[HA_KEY_LEN];
	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	struct ha_manifest m, r;
	memset(&m, 0, sizeof(m));
	m.id = 3;
	snprintf(m.name, sizeof(m.name), "000003-full-x");
	snprintf(m.type, sizeof(m.type), "full");
	snprintf(m.wrapped_key, sizeof(m.wrapped_key), "%0120d", 0);
	m.server_id = 12;
	memset(m.instance, 'c', 32);
	struct ha_chunk_ref c[2] = {{10, 20, ""}, {11, 21, ""}};
	memset(c[0].sha, 'a', 64);
	memset(c[1].sha, 'b', 64);
	m.chunks = c;
	m.n_chunks = 2;
	m.bytes_stored = 21;
	struct ha_buf b = HA_BUF_INIT;
	ha_manifest_write(&m, &b);
	ha_manifest_seal(&b, key);
	struct ha_err e = {0};
	assert_int_equal(ha_manifest_open(b.data, b.len, key, &r, &e), 0);
	assert_true(r.authenticated);
	assert_int_equal(r.version, 3);
	assert_int_equal(r.server_id, 12);
	assert_string_equal(r.instance, m.instance);
	char sha[65];
	ha_sha256_hex((const uint8_t *)b.data, b.len, sha);
	assert_string_equal(r.file_sha, sha);
	/* the catalog's record matches it */
	struct ha_manifest_expect x = {.id = 3,
	                               .name = "000003-full-x",
	                               .type = "full",
	                               .chunks = 2,
	                               .bytes_stored = 21,
	                               .server_id = 12,
	                               .instance = m.instance,
	                               .manifest_sha = sha};
	assert_int_equal(ha_manifest_check(&r, &x, &e), 0);
	/* the last chunk dropped from the catalog's view, another hash, another server */
	x.chunks = 1;
	assert_true(ha_manifest_check(&r, &x, &e) < 0);
	assert_non_null(strstr(e.msg, "lists 2 chunks, the catalog recorded 1"));
	x.chunks = 2;
	x.manifest_sha = "0000";
	assert_true(ha_manifest_check(&r, &x, &e) < 0);
	assert_non_null(strstr(e.msg, "hash differs"));
	x.manifest_sha = "";
	x.server_id = 13;
	assert_true(ha_manifest_check(&r, &x, &e) < 0);
	x.server_id = 12;
	x.bytes_stored = 20;
	assert_true(ha_manifest_check(&r, &x, &e) < 0);
	ha_manifest_free(&r);
	/* another repository key, one byte changed, the mac line removed: refused */
	assert_true(ha_manifest_open(b.data, b.len, other, &r, &e) < 0);
	assert_non_null(strstr(e.msg, "fails authentication"));
	char *t = strdup(b.data);
	memcpy(strstr(t, "chunk 1 11 "), "chunk 1 12 ", 11);
	assert_true(ha_manifest_open(t, strlen(t), key, &r, &e) < 0);
	char *mac = strstr(t, "mac ");
	assert_true(ha_manifest_open(t, (size_t)(mac - t), key, &r, &e) < 0);
	assert_non_null(strstr(e.msg, "mac line is missing"));
	free(t);
	/* a format 2 manifest (older backups) carries no mac: read, unauthenticated */
	t = strdup(b.data);
	memcpy(strstr(t, "haagent-backup 3"), "haagent-backup 2", 16);
	mac = strstr(t, "mac ");
	assert_int_equal(ha_manifest_open(t, (size_t)(mac - t), key, &r, &e), 0);
	assert_false(r.authenticated);
	ha_manifest_free(&r);
	/* ...but a format 2 header under a format 3 mac does not pass */
	assert_true(ha_manifest_open(t, strlen(t), key, &r, &e) < 0);
	free(t);
	ha_buf_free(&b);
}

/* A chain whose links come from different servers or datadirs is refused. */
static void chains_stay_on_one_server(void **state)
{
	(void)state;
	static struct ha_fsm_state st;
	memset(&st, 0, sizeof(st));
	add(&st, 1, "full", 0, HA_BK_DONE, 1000);
	add(&st, 2, "incremental", 1, HA_BK_DONE, 2000);
	add(&st, 3, "differential", 1, HA_BK_DONE, 3000);
	for (int i = 0; i < 3; i++) {
		st.backups[i].node = 2;
		st.backups[i].server_id = 2;
		memset(st.backups[i].instance, 'a', 32);
	}
	uint64_t chain[8];
	char why[400];
	assert_int_equal(ha_bk_chain(&st, 2, chain, 8, why, sizeof(why)), 2);
	/* taken on another node (a failover between the full and the incremental) */
	st.backups[1].node = 1;
	st.backups[1].server_id = 1;
	assert_int_equal(ha_bk_chain(&st, 2, chain, 8, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "different servers or datadirs"));
	/* the same node, its datadir rebuilt since (a reclone) */
	st.backups[1].node = 2;
	st.backups[1].server_id = 2;
	st.backups[1].instance[0] = 'b';
	assert_int_equal(ha_bk_chain(&st, 2, chain, 8, why, sizeof(why)), -1);
	assert_int_equal(ha_bk_chain(&st, 3, chain, 8, why, sizeof(why)), 2);
	/* older records (no datadir recorded): the node is all that is compared */
	st.backups[0].instance[0] = '\0';
	st.backups[2].instance[0] = '\0';
	assert_int_equal(ha_bk_chain(&st, 3, chain, 8, why, sizeof(why)), 2);
	st.backups[2].node = 3;
	assert_int_equal(ha_bk_chain(&st, 3, chain, 8, why, sizeof(why)), -1);
}

static void choosing(void **state)
{
	(void)state;
	struct ha_fo_node n[3];
	memset(n, 0, sizeof(n));
	const char *names[] = {"node1", "node2", "node3"};
	for (int i = 0; i < 3; i++) {
		n[i].id = (uint32_t)i + 1;
		n[i].name = names[i];
		n[i].fresh = true;
		n[i].db = 1;
		n[i].replicating = n[i].io_running = n[i].sql_running = true;
		n[i].lag_seconds = 0;
		n[i].threads_running = 2;
		n[i].loadavg1 = 0.5;
	}
	char why[512];
	assert_int_equal(ha_bk_choose(n, 3, 60000, why, sizeof(why)), 0);
	n[0].threads_running = 20; /* busy */
	assert_int_equal(ha_bk_choose(n, 3, 60000, why, sizeof(why)), 1);
	n[1].lag_seconds = 120; /* too far behind */
	assert_int_equal(ha_bk_choose(n, 3, 60000, why, sizeof(why)), 2);
	n[2].flags = HA_MEMBER_MAINTENANCE;
	assert_int_equal(ha_bk_choose(n, 3, 60000, why, sizeof(why)), 0);
	n[0].sql_running = false;
	assert_int_equal(ha_bk_choose(n, 3, 60000, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "node3: in maintenance"));
	assert_non_null(strstr(why, "node2: lagging"));
}

static void cron(void **state)
{
	(void)state;
	struct ha_cron c;
	char why[256];
	/* 2026-11-22 was a Sunday; 03:00 UTC */
	int64_t sun3 = 1795316400;
	assert_int_equal(ha_cron_parse("0 3 * * 0", &c, why, sizeof(why)), 0);
	assert_true(ha_cron_due(&c, sun3));
	assert_true(ha_cron_due(&c, sun3 + 59));
	assert_false(ha_cron_due(&c, sun3 + 60));
	assert_false(ha_cron_due(&c, sun3 + 86400));
	assert_int_equal(ha_cron_parse("0 3 * * 7", &c, why, sizeof(why)), 0); /* 7 = Sunday */
	assert_true(ha_cron_due(&c, sun3));
	assert_int_equal(ha_cron_parse("*/15 * * * *", &c, why, sizeof(why)), 0);
	assert_true(ha_cron_due(&c, sun3 + 15 * 60));
	assert_false(ha_cron_due(&c, sun3 + 16 * 60));
	assert_int_equal(ha_cron_parse("30 1-5/2 * * 1-5", &c, why, sizeof(why)), 0);
	assert_true(ha_cron_due(&c, sun3 + 86400 - 3 * 3600 + 3 * 3600 + 30 * 60)); /* Mon 03:30 */
	assert_false(ha_cron_due(&c, sun3 + 30 * 60));                              /* Sunday */
	/* both day fields restricted: either matches (as cron) */
	assert_int_equal(ha_cron_parse("0 3 1 * 0", &c, why, sizeof(why)), 0);
	assert_true(ha_cron_due(&c, sun3));
	/* refused */
	assert_int_equal(ha_cron_parse("0 3 * *", &c, why, sizeof(why)), -1);
	assert_int_equal(ha_cron_parse("0 3 * * * *", &c, why, sizeof(why)), -1);
	assert_int_equal(ha_cron_parse("60 * * * *", &c, why, sizeof(why)), -1);
	assert_int_equal(ha_cron_parse("0 24 * * *", &c, why, sizeof(why)), -1);
	assert_int_equal(ha_cron_parse("0 3 0 * *", &c, why, sizeof(why)), -1);
	assert_int_equal(ha_cron_parse("5-1 * * * *", &c, why, sizeof(why)), -1);
	assert_int_equal(ha_cron_parse("*/0 * * * *", &c, why, sizeof(why)), -1);
	assert_int_equal(ha_cron_parse("a * * * *", &c, why, sizeof(why)), -1);
	assert_int_equal(ha_cron_parse(NULL, &c, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "5 fields"));
}

/* Scheduled backups decided from the catalog: due at the slot, caught up within the window,
 * covered by a backup of the same or a wider type requested since the slot. */
static void schedules_due(void **state)
{
	(void)state;
	static struct ha_fsm_state st;
	memset(&st, 0, sizeof(st));
	const uint64_t min = 60000, hour = 60 * min;
	const uint64_t sun3 = 1795921200000ULL; /* Sunday 2026-11-29 03:00 UTC */
	const char *weekly[3] = {"0 3 * * 0", "", "0 * * * *"};
	uint64_t slot = 0;
	/* at 03:00 on Sunday both are due: the full one first */
	assert_string_equal(ha_bk_due(&st, weekly, sun3 + 10000, 60, &slot), "full");
	assert_true(slot == sun3);
	/* a full backup requested then covers the incremental one of the same slot */
	add(&st, 1, "full", 0, HA_BK_RUNNING, 0);
	st.backups[0].requested_ms = sun3 + 10000;
	assert_null(ha_bk_due(&st, weekly, sun3 + 20000, 60, &slot));
	/* still running at 04:00: the incremental of 04:00 is due (the caller waits for room),
	 * and stays due until one is requested: nothing is lost while the full one runs */
	assert_string_equal(ha_bk_due(&st, weekly, sun3 + hour + 5000, 60, &slot), "incremental");
	assert_true(slot == sun3 + hour);
	assert_string_equal(ha_bk_due(&st, weekly, sun3 + hour + 50 * min, 60, &slot),
	                    "incremental");
	/* ... within the catch-up window only: without one, a slot missed is gone */
	st.backups[0].state = HA_BK_DONE;
	assert_null(ha_bk_due(&st, weekly, sun3 + hour + 30 * min, 0, &slot));
	assert_string_equal(ha_bk_due(&st, weekly, sun3 + hour + 30 * min, 60, &slot),
	                    "incremental");
	assert_true(slot == sun3 + hour);
	assert_null(ha_bk_due(&st, (const char *[3]){"", "", "0 1 * * *"}, sun3 + hour, 60, &slot));
	add(&st, 2, "incremental", 1, HA_BK_FAILED, 0);
	st.backups[1].requested_ms = sun3 + hour + 30 * min;
	/* a failed attempt counts: no retry loop filling the catalog */
	assert_null(ha_bk_due(&st, weekly, sun3 + hour + 40 * min, 60, &slot));
	/* a differential backup covers an incremental one, not a full one */
	const char *daily[3] = {"0 5 * * *", "0 4 * * *", "0 4 * * *"};
	add(&st, 3, "differential", 1, HA_BK_DONE, 0);
	st.backups[2].requested_ms = sun3 + hour;
	assert_null(ha_bk_due(&st, daily, sun3 + hour + min, 60, &slot));
	assert_string_equal(ha_bk_due(&st, daily, sun3 + 2 * hour + min, 60, &slot), "full");
	/* a manual backup before the slot does not count for it */
	add(&st, 4, "full", 0, HA_BK_DONE, 0);
	st.backups[3].requested_ms = sun3 + 2 * hour - 1;
	assert_string_equal(ha_bk_due(&st, daily, sun3 + 2 * hour + min, 60, &slot), "full");
	/* bad or empty schedules are skipped, never due */
	const char *bad[3] = {"61 * * * *", NULL, ""};
	assert_null(ha_bk_due(&st, bad, sun3, 60, &slot));
}

/* The directory store joins names to paths only when they are names: hostile ones (from the
 * replicated state, a listing or a manifest) fail, and a repository's odd entries are not
 * listed. */
static void store_names(void **state)
{
	(void)state;
	char root[] = "/tmp/ha-store-test-XXXXXX";
	assert_non_null(mkdtemp(root));
	struct ha_store st;
	ha_store_dir_init(&st, root);
	struct ha_err e = {0};
	const uint8_t data[3] = {1, 2, 3};
	/* the good path */
	assert_int_equal(st.ops->begin(&st, "node1", "000001-full-x", &e), 0);
	assert_int_equal(st.ops->put_chunk(&st, "node1", "000001-full-x", 0, data, 3, &e), 0);
	assert_int_equal(st.ops->commit(&st, "node1", "000001-full-x", "m\n", 2, &e), 0);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(st.ops->get_manifest(&st, "000001-full-x", &text, &len, &e), 0);
	free(text);
	const char *bad[] = {"..", ".", "../000001-full-x", "a/b", "", ".partial", "-x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(st.ops->begin(&st, "node1", bad[i], &e), HA_EINVAL);
		assert_non_null(strstr(e.msg, "is not a name"));
		assert_int_equal(st.ops->begin(&st, bad[i], "000002-full-x", &e), HA_EINVAL);
		assert_int_equal(st.ops->put_chunk(&st, bad[i], "000002", 0, data, 3, &e),
		                 HA_EINVAL);
		assert_int_equal(st.ops->commit(&st, "node1", bad[i], "m", 1, &e), HA_EINVAL);
		assert_int_equal(st.ops->get_manifest(&st, bad[i], &text, &len, &e), HA_EINVAL);
		assert_null(text);
		uint8_t buf[8];
		assert_int_equal(st.ops->get_chunk(&st, bad[i], 0, buf, sizeof(buf), &len, &e),
		                 HA_EINVAL);
		assert_int_equal(st.ops->remove(&st, bad[i], &e), HA_EINVAL);
		st.ops->abort(&st, bad[i], "x");
		st.ops->clean(&st, bad[i]);
	}
	/* "..": neither the repository nor its parent was touched */
	char path[128];
	snprintf(path, sizeof(path), "%s/backups/000001-full-x/manifest", root);
	assert_int_equal(access(path, F_OK), 0);
	/* a listing leaves out what is not a name */
	snprintf(path, sizeof(path), "%s/backups/-odd", root);
	assert_int_equal(mkdir(path, 0700), 0);
	char **names;
	size_t n;
	assert_int_equal(st.ops->list(&st, &names, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "000001-full-x");
	ha_store_names_free(names, n);
	assert_int_equal(st.ops->remove(&st, "000001-full-x", &e), 0);
	assert_int_equal(ha_rm_rf(root), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(chunks),
	    cmocka_unit_test(keys),
	    cmocka_unit_test(manifests),
	    cmocka_unit_test(manifest_checksums),
	    cmocka_unit_test(manifest_mac),
	    cmocka_unit_test(chains_stay_on_one_server),
	    cmocka_unit_test(retention_and_chains),
	    cmocka_unit_test(choosing),
	    cmocka_unit_test(cron),
	    cmocka_unit_test(schedules_due),
	    cmocka_unit_test(store_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
