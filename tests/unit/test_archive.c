/* The binlog archive's pure parts: events read from hostile bytes, transactions split where
 * the server ends them, slice manifests authenticated, the replicated head advanced only by
 * the slice that follows it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../consensus/fsm.h"
#include "backup/binlogev.h"
#include "backup/slice.h"
#include "common/gtid.h"

/* ---- building events ---- */

struct ev {
	uint8_t b[512];
	size_t n;
};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* header + body + a 4-byte checksum (zeros: not checked here) */
static struct ev make(uint8_t type, uint32_t ts, uint32_t server, const uint8_t *body, size_t n)
{
	struct ev e = {0};
	e.n = HA_BL_HEADER + n + 4;
	put32(e.b, ts);
	e.b[4] = type;
	put32(e.b + 5, server);
	put32(e.b + 9, (uint32_t)e.n);
	memcpy(e.b + HA_BL_HEADER, body, n);
	return e;
}

static struct ev gtid_ev(uint32_t domain, uint32_t server, uint64_t seq, uint8_t flags)
{
	uint8_t body[13];
	put64(body, seq);
	put32(body + 8, domain);
	body[12] = flags;
	return make(HA_BL_GTID, 1000, server, body, sizeof(body));
}

static struct ev query_ev(const char *q)
{
	uint8_t body[256] = {0};
	/* thread 4, exec time 4, db length 1 ("db"), error 2, status length 2 (0) */
	body[8] = 2;
	memcpy(body + 13, "db", 3);
	size_t n = strlen(q);
	memcpy(body + 16, q, n);
	return make(HA_BL_QUERY, 1000, 1, body, 16 + n);
}

static struct ev plain_ev(uint8_t type)
{
	uint8_t body[8] = {0};
	return make(type, 1000, 1, body, sizeof(body));
}

static enum ha_bl_role feed(struct ha_bl_split *s, const struct ev *e)
{
	struct ha_bl_event ev;
	assert_int_equal(ha_bl_event(e->b, e->n, 4, &ev), 1);
	enum ha_bl_role r;
	assert_int_equal(ha_bl_split_feed(s, &ev, &r), 0);
	return r;
}

/* ---- tests ---- */

static void event_bounds(void **state)
{
	(void)state;
	struct ev e = query_ev("COMMIT");
	struct ha_bl_event ev;
	/* fewer bytes than the header, than the event: more are needed */
	assert_int_equal(ha_bl_event(e.b, 10, 4, &ev), 0);
	assert_int_equal(ha_bl_event(e.b, e.n - 1, 4, &ev), 0);
	assert_int_equal(ha_bl_event(e.b, e.n, 4, &ev), 1);
	assert_int_equal(ev.size, e.n);
	assert_int_equal(ev.body_len, e.n - HA_BL_HEADER - 4);
	/* a size below the header, or absurd: not an event */
	put32(e.b + 9, 5);
	assert_int_equal(ha_bl_event(e.b, e.n, 4, &ev), -1);
	put32(e.b + 9, 0xffffffffu);
	assert_int_equal(ha_bl_event(e.b, e.n, 4, &ev), -1);
}

static void query_text_is_bounded(void **state)
{
	(void)state;
	struct ev e = query_ev("DROP TABLE `orders`");
	struct ha_bl_event ev;
	assert_int_equal(ha_bl_event(e.b, e.n, 4, &ev), 1);
	const char *t;
	size_t n;
	assert_int_equal(ha_bl_query_text(&ev, &t, &n), 0);
	assert_int_equal(n, strlen("DROP TABLE `orders`"));
	assert_memory_equal(t, "DROP TABLE `orders`", n);
	/* a status-variables length past the event */
	e.b[HA_BL_HEADER + 11] = 0xff;
	assert_int_equal(ha_bl_event(e.b, e.n, 4, &ev), 1);
	assert_int_equal(ha_bl_query_text(&ev, &t, &n), -1);
}

static void transactions_end_where_the_server_ends_them(void **state)
{
	(void)state;
	struct ha_bl_split s = {0};
	struct ev g = gtid_ev(0, 1, 7, 0x0c), begin = query_ev("BEGIN"), rows = plain_ev(30),
	          xid = plain_ev(HA_BL_XID);
	assert_int_equal(feed(&s, &g), HA_BL_TX_START);
	assert_int_equal(s.gtid.seq, 7);
	assert_int_equal(s.gtid.server, 1);
	assert_int_equal(feed(&s, &begin), HA_BL_TX_BODY);
	assert_int_equal(feed(&s, &rows), HA_BL_TX_BODY);
	assert_int_equal(feed(&s, &xid), HA_BL_TX_END);
	assert_false(s.in_tx);
	/* a non-transactional one ends with its COMMIT query */
	struct ev g2 = gtid_ev(0, 1, 8, 0), commit = query_ev("COMMIT");
	assert_int_equal(feed(&s, &g2), HA_BL_TX_START);
	assert_int_equal(feed(&s, &begin), HA_BL_TX_BODY);
	assert_int_equal(feed(&s, &commit), HA_BL_TX_END);
	/* DDL: a standalone GTID and its one query */
	struct ev g3 = gtid_ev(0, 1, 9, HA_BL_FL_STANDALONE), ddl = query_ev("DROP TABLE t");
	assert_int_equal(feed(&s, &g3), HA_BL_TX_START);
	assert_int_equal(feed(&s, &ddl), HA_BL_TX_END);
	/* outside any transaction: file events */
	struct ev rot = plain_ev(HA_BL_ROTATE), cp = plain_ev(HA_BL_CHECKPOINT);
	assert_int_equal(feed(&s, &rot), HA_BL_OUTSIDE);
	assert_int_equal(feed(&s, &cp), HA_BL_OUTSIDE);
}

static void a_cut_transaction_is_noticed(void **state)
{
	(void)state;
	struct ha_bl_split s = {0};
	struct ev g = gtid_ev(0, 1, 7, 0x0c), begin = query_ev("BEGIN"),
	          g2 = gtid_ev(0, 1, 8, 0x0c);
	feed(&s, &g);
	feed(&s, &begin);
	/* a new transaction before the open one's end was seen: the server writes whole
	 * transactions, so the open one ended with the event before */
	assert_int_equal(feed(&s, &g2), HA_BL_TX_START);
	assert_true(s.closed);
	assert_false(s.cut);
	assert_int_equal(s.closed_gtid.seq, 7);
	assert_int_equal(s.gtid.seq, 8);
	/* a Stop (or Rotate) event inside a transaction: the server writes them between
	 * transactions, so the open one had ended */
	struct ev stop = plain_ev(HA_BL_STOP);
	assert_int_equal(feed(&s, &stop), HA_BL_OUTSIDE);
	assert_true(s.closed);
	assert_int_equal(s.closed_gtid.seq, 8);
	assert_false(s.cut);
	assert_false(s.in_tx);
	/* a new file's header inside a transaction: the file before ended in its middle */
	struct ev g5 = gtid_ev(0, 1, 11, 0), fd = plain_ev(HA_BL_FD);
	feed(&s, &g5);
	assert_int_equal(feed(&s, &fd), HA_BL_OUTSIDE);
	assert_true(s.cut);
	assert_false(s.closed);
	assert_false(s.in_tx);
	/* XA COMMIT of an xid ends its transaction */
	struct ev g3 = gtid_ev(0, 1, 9, 0), xa = query_ev("XA COMMIT X'31',X'',1");
	feed(&s, &g3);
	assert_int_equal(feed(&s, &xa), HA_BL_TX_END);
	struct ev g4 = gtid_ev(0, 1, 10, 0), notend = query_ev("COMMITTED_TABLE_INSERT");
	feed(&s, &g4);
	assert_int_equal(feed(&s, &notend), HA_BL_TX_BODY);
}

static void rotate_and_gtid_list_are_checked(void **state)
{
	(void)state;
	uint8_t body[64] = {0};
	memcpy(body + 8, "bin.000002", 10);
	struct ev r = make(HA_BL_ROTATE, 1, 1, body, 18);
	struct ha_bl_event ev;
	assert_int_equal(ha_bl_event(r.b, r.n, 4, &ev), 1);
	char name[64];
	assert_int_equal(ha_bl_rotate_name(&ev, name, sizeof(name)), 0);
	assert_string_equal(name, "bin.000002");
	memcpy(body + 8, "../etc/xx1", 10); /* a path: never a file name we open */
	r = make(HA_BL_ROTATE, 1, 1, body, 18);
	assert_int_equal(ha_bl_event(r.b, r.n, 4, &ev), 1);
	assert_int_equal(ha_bl_rotate_name(&ev, name, sizeof(name)), -1);
	/* "..", ".", a hidden name: never a file of its own in the scratch directory */
	const char *dots[] = {"..", ".", ".hidden"};
	for (size_t i = 0; i < 3; i++) {
		memset(body + 8, 0, 16);
		memcpy(body + 8, dots[i], strlen(dots[i]));
		r = make(HA_BL_ROTATE, 1, 1, body, 8 + strlen(dots[i]));
		assert_int_equal(ha_bl_event(r.b, r.n, 4, &ev), 1);
		assert_int_equal(ha_bl_rotate_name(&ev, name, sizeof(name)), -1);
	}
	/* a Gtid_list claiming more entries than it holds */
	uint8_t gl[4 + 16] = {0};
	put32(gl, 2);
	struct ev l = make(HA_BL_GTID_LIST, 1, 1, gl, sizeof(gl));
	assert_int_equal(ha_bl_event(l.b, l.n, 4, &ev), 1);
	struct ha_gtid_pos p;
	assert_int_equal(ha_bl_gtid_list(&ev, &p), -1);
	put32(gl, 1);
	put32(gl + 4, 3);
	put32(gl + 8, 2);
	put64(gl + 12, 41);
	l = make(HA_BL_GTID_LIST, 1, 1, gl, sizeof(gl));
	assert_int_equal(ha_bl_event(l.b, l.n, 4, &ev), 1);
	assert_int_equal(ha_bl_gtid_list(&ev, &p), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.g[0].domain, 3);
	assert_int_equal(p.g[0].seq, 41);
}

static void state_has(void **state)
{
	(void)state;
	struct ha_gtid g = {.domain = 0, .server = 1, .seq = 10};
	assert_int_equal(ha_gtid_state_has("0-1-10,0-2-12", &g), 1);
	g.seq = 11;
	assert_int_equal(ha_gtid_state_has("0-1-10,0-2-12", &g), 0); /* server 2's 12 is not 1's */
	g.server = 3;
	g.seq = 1;
	assert_int_equal(ha_gtid_state_has("0-1-10,0-2-12", &g), 0);
	assert_true(ha_gtid_state_has("0-1-x", &g) < 0);
}

static const uint8_t KEY[HA_KEY_LEN] = {1, 2, 3};

static void slice_manifest_round_trip_and_tamper(void **state)
{
	(void)state;
	struct ha_slice s = {0};
	ha_slice_name(42, 2, 0xabcdef01, s.name);
	assert_string_equal(s.name, "000000000042-s2-abcdef01");
	s.seq = 42;
	snprintf(s.prev, sizeof(s.prev), "000000000041-s1-00000001");
	s.server_id = 2;
	snprintf(s.start, sizeof(s.start), "0-1-100");
	snprintf(s.end, sizeof(s.end), "0-2-103");
	snprintf(s.errant, sizeof(s.errant), "errant (never replayed): domain 0: ...");
	snprintf(s.wrapped_key, sizeof(s.wrapped_key), "ab");
	struct ha_chunk_ref c = {.stored = 10, .plain = 20};
	memset(c.sha, 'a', 64);
	s.chunks = &c;
	s.n_chunks = 1;
	s.bytes_stored = 10;
	s.txns = 3;
	struct ha_buf b = HA_BUF_INIT;
	ha_slice_write(&s, KEY, &b);
	struct ha_slice r;
	struct ha_err e = {0};
	assert_int_equal(ha_slice_open(b.data, b.len, KEY, &r, &e), 0);
	assert_string_equal(r.name, s.name);
	assert_string_equal(r.prev, s.prev);
	assert_string_equal(r.start, "0-1-100");
	assert_string_equal(r.end, "0-2-103");
	assert_string_equal(r.errant, s.errant);
	assert_int_equal(r.n_chunks, 1);
	ha_slice_free(&r);
	/* another key, one changed byte, no mac: refused */
	uint8_t other[HA_KEY_LEN] = {9};
	assert_int_not_equal(ha_slice_open(b.data, b.len, other, &r, &e), 0);
	char *bad = malloc(b.len);
	memcpy(bad, b.data, b.len);
	char *at = strstr(bad, "0-2-103");
	at[6] = '9';
	assert_int_not_equal(ha_slice_open(bad, b.len, KEY, &r, &e), 0);
	char *mac = strstr(bad, "mac ");
	assert_int_not_equal(ha_slice_open(b.data, (size_t)(mac - bad), KEY, &r, &e), 0);
	free(bad);
	ha_buf_free(&b);
}

static int apply_slice(struct ha_fsm_state *st, uint64_t seq, const char *prev, const char *name,
                       const char *gap)
{
	struct ha_slice_rec r = {.prev = prev,
	                         .name = name,
	                         .seq = seq,
	                         .server_id = 1,
	                         .start_gtid = "0-1-1",
	                         .end_gtid = "0-1-5",
	                         .txns = 4,
	                         .bytes = 100,
	                         .gap = gap};
	uint8_t *buf;
	size_t len;
	assert_int_equal(ha_fsm_cmd_archive_slice(&r, 1000, NULL, &buf, &len), 0);
	struct ha_err e = {0};
	int rc = ha_fsm_apply(st, buf, len, &e);
	free(buf);
	return rc;
}

static void head_moves_only_to_the_next_slice(void **state)
{
	(void)state;
	struct ha_fsm_state *st = calloc(1, sizeof(*st));
	ha_fsm_init(st);
	assert_int_equal(apply_slice(st, 1, "", "s1", ""), HA_FSM_APPLIED);
	assert_string_equal(st->archive.head, "s1");
	assert_int_equal(st->archive.run_seq, 1);
	/* again, a wrong number, a wrong predecessor: a racing archiver's, ignored */
	assert_int_equal(apply_slice(st, 1, "", "s1b", ""), HA_FSM_NOOP);
	assert_int_equal(apply_slice(st, 3, "s1", "s3", ""), HA_FSM_NOOP);
	assert_int_equal(apply_slice(st, 2, "s0", "s2", ""), HA_FSM_NOOP);
	/* a slice whose name is not a name (it becomes a path) is refused */
	assert_true(apply_slice(st, 2, "s1", "..", "") < 0);
	assert_true(apply_slice(st, 2, "s1", "../s2", "") < 0);
	assert_string_equal(st->archive.head, "s1");
	assert_int_equal(apply_slice(st, 2, "s1", "s2", ""), HA_FSM_APPLIED);
	assert_int_equal(st->archive.slices, 2);
	assert_int_equal(st->archive.gaps, 0);
	/* a gap: counted, an event, a new unbroken run */
	assert_int_equal(apply_slice(st, 3, "s2", "s3", "gap: purged ..."), HA_FSM_APPLIED);
	assert_int_equal(st->archive.gaps, 1);
	assert_int_equal(st->archive.run_seq, 3);
	assert_string_equal(st->archive.last_gap, "gap: purged ...");
	assert_string_equal(st->events[st->n_events - 1].name, "archive-gap");
	/* the snapshot keeps it */
	uint8_t *snap;
	size_t len;
	assert_int_equal(ha_fsm_snapshot(st, NULL, &snap, &len), 0);
	struct ha_fsm_state *back = calloc(1, sizeof(*back));
	ha_fsm_init(back);
	struct ha_err e = {0};
	assert_int_equal(ha_fsm_restore(back, snap, len, &e), 0);
	assert_string_equal(back->archive.head, "s3");
	assert_int_equal(back->archive.seq, 3);
	assert_int_equal(back->archive.gaps, 1);
	free(snap);
	free(back);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(event_bounds),
	    cmocka_unit_test(query_text_is_bounded),
	    cmocka_unit_test(transactions_end_where_the_server_ends_them),
	    cmocka_unit_test(a_cut_transaction_is_noticed),
	    cmocka_unit_test(rotate_and_gtid_list_are_checked),
	    cmocka_unit_test(state_has),
	    cmocka_unit_test(slice_manifest_round_trip_and_tamper),
	    cmocka_unit_test(head_moves_only_to_the_next_slice),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
