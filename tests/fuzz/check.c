/* The fuzzer's checks (fuzz.h): each decoder's contract, stated against a reference written
 * from its header rather than from its code.
 *
 * Frames (common/frame.h), as agent/rpc/conn.c uses the decoder:
 *   - on the whole input, every answer is the reference's: a frame with the same type, payload
 *     and lengths (8 + payload = frame, within the input, at most the limit), "more" only for a
 *     valid prefix, an error (HA_EPROTO or HA_ETOOBIG, with a message) for anything else;
 *   - cut into random reads, the same frames come out in the same order, and an error comes at
 *     the first read that brings the offending byte: the magic and the version at their own
 *     byte, the type and the length with the eighth; a connection closes on garbage instead of
 *     consuming it, and never waits for more when it already holds an invalid header;
 *   - each frame's payload unpacks as its type's message, or is refused (NULL); a message that
 *     unpacks passes protobuf_c_message_check, packs to get_packed_size bytes, and packs the
 *     same after another unpack (the lengths are consistent). One other message type, chosen at
 *     random among all of the schema, gets the same payload.
 * HTTP (http/parse.h):
 *   - the whole input parses as the reference parses it, with the same request;
 *   - trickled in random pieces with the resume point, each prefix parses as it would whole,
 *     and "more" never comes once HA_HTTP_MAX_REQUEST bytes are there;
 *   - a complete request has GET or HEAD, a path that starts with '/', printable bytes only.
 * FSM (consensus/fsm.h): an entry applied to a fresh state and to one with members, the input
 *   restored as a snapshot; an error has a message; a state that accepted the input snapshots
 *   into bytes that restore. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"
#include "../consensus/fsm.h"
#include "fuzz.h"
#include "http/parse.h"

struct fz_stats fz_stats;

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(why, size, __VA_ARGS__);                                                  \
		return -1;                                                                         \
	} while (0)

/* ---- frames ---- */

/* The reference decoder, from frame.h. Returns 1 (a frame), 0 (a valid prefix) or -1; *bad is
 * the index of the byte that made it invalid. */
static int ref_frame(const uint8_t *b, size_t len, uint32_t max, int *type, size_t *plen,
                     size_t *bad)
{
	static const uint8_t magic[3] = {'H', 'A', HA_FRAME_VERSION};
	for (size_t i = 0; i < 3 && i < len; i++)
		if (b[i] != magic[i]) {
			*bad = i;
			return -1;
		}
	if (len < HA_FRAME_HEADER)
		return 0;
	uint32_t n = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
	if (b[3] < 1 || b[3] > HA_MSG_MAX_ || n > max) {
		*bad = 7;
		return -1;
	}
	if (len - HA_FRAME_HEADER < n)
		return 0;
	*type = b[3];
	*plen = n;
	return 1;
}

struct frame_seen {
	size_t at, plen;
	int type;
};

/* What the reference finds in the whole input: its frames, then an error at *err_at (the
 * offending byte's offset) or the end (SIZE_MAX). */
static size_t ref_stream(const uint8_t *in, size_t len, uint32_t max, struct frame_seen *out,
                         size_t cap, size_t *err_at)
{
	size_t k = 0, pos = 0, bad = 0, plen = 0;
	int type = 0;
	*err_at = SIZE_MAX;
	while (k < cap) {
		int rc = ref_frame(in + pos, len - pos, max, &type, &plen, &bad);
		if (rc < 0)
			*err_at = pos + bad;
		if (rc <= 0)
			break;
		out[k++] = (struct frame_seen){pos, plen, type};
		pos += HA_FRAME_HEADER + plen;
	}
	return k;
}

/* The whole input at once: the decoder against the reference, answer by answer. */
static int check_whole(const uint8_t *in, size_t len, uint32_t max, char *why, size_t size)
{
	for (size_t pos = 0;;) {
		int type = -1, rtype = -1;
		const uint8_t *p = NULL;
		size_t plen = 0, flen = 0, rplen = 0, bad;
		struct ha_err e = {0};
		int rc = ha_frame_decode(in + pos, len - pos, max, &type, &p, &plen, &flen, &e);
		int ref = ref_frame(in + pos, len - pos, max, &rtype, &rplen, &bad);
		if ((rc > 0) != (ref > 0) || (rc == 0) != (ref == 0))
			FAIL("frame at %zu: decoder says %d, reference %d", pos, rc, ref);
		if (rc < 0 && ((rc != HA_EPROTO && rc != HA_ETOOBIG) || e.msg[0] == 0))
			FAIL("frame at %zu: error %d without a known code or a message", pos, rc);
		if (rc <= 0)
			return 0;
		if (type != rtype || plen != rplen || p != in + pos + HA_FRAME_HEADER ||
		    flen != HA_FRAME_HEADER + plen || flen > len - pos || plen > max)
			FAIL("frame at %zu: type %d plen %zu flen %zu, reference type %d plen %zu",
			     pos, type, plen, flen, rtype, rplen);
		pos += flen;
	}
}

/* The input in random reads, decoded after each read the way conn.c does. */
static int check_reads(const uint8_t *in, size_t len, uint32_t max, struct fz_rng *r,
                       const struct frame_seen *want, size_t n_want, size_t err_at, char *why,
                       size_t size)
{
	size_t fed = 0, start = 0, k = 0, small = fz_below(r, 2);
	while (fed < len) {
		size_t chunk = 1 + fz_below(r, small ? 16 : len);
		if (chunk > len - fed)
			chunk = len - fed;
		size_t before = fed;
		fed += chunk;
		for (;;) {
			int type;
			const uint8_t *p;
			size_t plen, flen;
			struct ha_err e = {0};
			int rc = ha_frame_decode(in + start, fed - start, max, &type, &p, &plen,
			                         &flen, &e);
			if (rc == 0)
				break;
			if (rc < 0) {
				if (k != n_want || err_at == SIZE_MAX)
					FAIL("reads: error after %zu of %zu frames (%s)", k, n_want,
					     e.msg);
				if (err_at >= fed || err_at < before)
					FAIL(
					    "reads: error with the read of bytes %zu..%zu, the bad "
					    "byte is at %zu",
					    before, fed, err_at);
				return 0; /* the connection closes */
			}
			if (k == n_want || want[k].at != start || want[k].type != type ||
			    want[k].plen != plen)
				FAIL("reads: frame %zu at %zu is not the reference's", k, start);
			k++;
			start += flen;
		}
	}
	if (k != n_want || err_at != SIZE_MAX)
		FAIL("reads: %zu of %zu frames and %s the error at %zu", k, n_want,
		     err_at == SIZE_MAX ? "no" : "not", err_at);
	return 0;
}

/* A payload as message d: refused, or a message whose lengths agree with itself. */
static int check_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, char *why,
                        size_t size)
{
	uint8_t *exact = malloc(n ? n : 1), *b1 = NULL, *b2 = NULL;
	ProtobufCMessage *m = NULL, *m2 = NULL;
	int rc = 0;
	if (exact == NULL)
		FAIL("out of memory");
	memcpy(exact, p, n);
	m = protobuf_c_message_unpack(d, NULL, n, exact);
	if (m == NULL) {
		fz_stats.refused++;
		goto free_exact;
	}
	fz_stats.unpacked++;
	if (!ha_frame_message_sound(m)) {
		/* protobuf-c kept a field numbered 0 (frame.h): the agent refuses such a message
		 * where it would forward it; the round trip below cannot hold for it */
		fz_stats.unsound++;
		goto free_m;
	}
	size_t n1 = protobuf_c_message_get_packed_size(m);
	b1 = malloc(n1 ? n1 : 1);
	size_t w1 = b1 ? protobuf_c_message_pack(m, b1) : 0;
	if (!protobuf_c_message_check(m)) {
		rc = -1;
		snprintf(why, size, "%s: unpacked but fails protobuf_c_message_check", d->name);
	} else if (b1 == NULL || w1 != n1) {
		rc = -1;
		snprintf(why, size, "%s: packed %zu bytes, get_packed_size said %zu", d->name, w1,
		         n1);
	} else if ((m2 = protobuf_c_message_unpack(d, NULL, n1, b1)) == NULL) {
		rc = -1;
		snprintf(why, size, "%s: its own packing does not unpack", d->name);
	} else {
		size_t n2 = protobuf_c_message_get_packed_size(m2);
		b2 = malloc(n2 ? n2 : 1);
		if (b2 == NULL || protobuf_c_message_pack(m2, b2) != n1 || n2 != n1 ||
		    memcmp(b1, b2, n1) != 0) {
			rc = -1;
			snprintf(why, size, "%s: packs %zu bytes, then %zu after another unpack",
			         d->name, n1, n2);
		}
	}
	free(b2);
	free(b1);
	if (m2)
		protobuf_c_message_free_unpacked(m2, NULL);
free_m:
	protobuf_c_message_free_unpacked(m, NULL);
free_exact:
	free(exact);
	return rc;
}

static int check_frames(const uint8_t *in, size_t len, struct fz_rng *r, char *why, size_t size)
{
	/* mostly the agent's limit; now and then a small one, to cross it often */
	uint32_t max = fz_below(r, 8) ? HA_FRAME_MAX_PAYLOAD : (uint32_t)fz_below(r, 300);
	struct frame_seen want[64];
	size_t err_at, n = ref_stream(in, len, max, want, 64, &err_at);
	if (n == 64)
		return 0; /* the check follows 64 frames at most */
	fz_stats.frames += n;
	fz_stats.frame_errors += err_at != SIZE_MAX;
	uint8_t *b = malloc(len ? len : 1);
	if (b == NULL)
		FAIL("out of memory");
	memcpy(b, in, len);
	int rc = check_whole(b, len, max, why, size) ||
	         check_reads(b, len, max, r, want, n, err_at, why, size);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const uint8_t *p = b + want[i].at + HA_FRAME_HEADER;
		rc = check_unpack(fz_rpc_message(want[i].type), p, want[i].plen, why, size) ||
		     check_unpack(fz_messages[fz_below(r, fz_n_messages)], p, want[i].plen, why,
		                  size);
	}
	free(b);
	return rc ? -1 : 0;
}

/* ---- HTTP ---- */

/* The reference parser, from parse.h's grammar: METHOD SP TARGET SP HTTP/1.(0|1) CR LF, the
 * line in printable ASCII, an end of headers within the limit; GET and HEAD only (checked
 * after the line's shape, before the target); a target that starts with '/', its path and
 * query under HA_HTTP_MAX_PATH. */
static int ref_http(const char *b, size_t len, struct ha_http_req *req)
{
	memset(req, 0, sizeof(*req));
	size_t n = len < HA_HTTP_MAX_REQUEST ? len : HA_HTTP_MAX_REQUEST, end = SIZE_MAX;
	for (size_t i = 0; i + 4 <= n && end == SIZE_MAX; i++)
		if (!memcmp(b + i, "\r\n\r\n", 4))
			end = i;
	if (end == SIZE_MAX)
		return len >= HA_HTTP_MAX_REQUEST ? HA_HTTP_BAD : HA_HTTP_MORE;
	size_t eol = 0;
	while (b[eol] != '\r')
		eol++;
	if (b[eol + 1] != '\n')
		return HA_HTTP_BAD;
	size_t sp[3], k = 0;
	for (size_t i = 0; i < eol; i++) {
		unsigned char c = (unsigned char)b[i];
		if (c < 0x20 || c > 0x7e)
			return HA_HTTP_BAD;
		if (c == ' ' && k < 3)
			sp[k++] = i;
	}
	if (k != 2 || sp[0] == 0 || sp[1] == sp[0] + 1 || eol - sp[1] - 1 != 8 ||
	    (memcmp(b + sp[1] + 1, "HTTP/1.0", 8) && memcmp(b + sp[1] + 1, "HTTP/1.1", 8)))
		return HA_HTTP_BAD;
	if (!(sp[0] == 3 && !memcmp(b, "GET", 3)) && !(sp[0] == 4 && !memcmp(b, "HEAD", 4)))
		return HA_HTTP_METHOD;
	memcpy(req->method, b, sp[0]);
	const char *t = b + sp[0] + 1;
	size_t tlen = sp[1] - sp[0] - 1, plen = 0;
	if (t[0] != '/')
		return HA_HTTP_BAD;
	while (plen < tlen && t[plen] != '?')
		plen++;
	size_t qlen = plen < tlen ? tlen - plen - 1 : 0;
	if (plen >= HA_HTTP_MAX_PATH || qlen >= HA_HTTP_MAX_PATH)
		return HA_HTTP_BAD;
	memcpy(req->path, t, plen);
	if (plen < tlen)
		memcpy(req->query, t + plen + 1, qlen);
	return HA_HTTP_COMPLETE;
}

static int check_request(const struct ha_http_req *q, char *why, size_t size)
{
	if (strcmp(q->method, "GET") && strcmp(q->method, "HEAD"))
		FAIL("complete with method \"%s\"", q->method);
	if (q->path[0] != '/' || strchr(q->path, '?'))
		FAIL("complete with path \"%s\"", q->path);
	for (const char *s = q->path; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			FAIL("complete with byte %#x in the path", (unsigned char)*s);
	for (const char *s = q->query; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			FAIL("complete with byte %#x in the query", (unsigned char)*s);
	unsigned v = 0;
	bool bad = false;
	if (ha_http_query_uint(q->query, "max_lag", &v, &bad) && !bad && v > 1000000000u)
		FAIL("max_lag %u over its bound", v);
	return 0;
}

static int check_http(const uint8_t *in, size_t len, struct fz_rng *r, char *why, size_t size)
{
	char *b = malloc(len ? len : 1);
	if (b == NULL)
		FAIL("out of memory");
	memcpy(b, in, len);
	struct ha_http_req q, rq;
	int rc = ha_http_parse(b, len, NULL, &q), ref = ref_http(b, len, &rq), out = -1;
	/* the request is only filled when complete */
	if (rc != ref || (rc == HA_HTTP_COMPLETE && memcmp(&q, &rq, sizeof(q)) != 0)) {
		snprintf(why, size, "parse says %d (%s %s ? %s), reference %d (%s %s ? %s)", rc,
		         q.method, q.path, q.query, ref, rq.method, rq.path, rq.query);
		goto out;
	}
	fz_stats.http[rc == HA_HTTP_MORE       ? 0
	              : rc == HA_HTTP_COMPLETE ? 1
	              : rc == HA_HTTP_BAD      ? 2
	                                       : 3]++;
	if (rc == HA_HTTP_COMPLETE && check_request(&q, why, size))
		goto out;
	/* trickled: the server stops at the first answer other than "more" */
	size_t scanned = 0, small = fz_below(r, 2);
	for (size_t have = 0; have < len;) {
		have += 1 + fz_below(r, small ? 8 : len);
		if (have > len)
			have = len;
		struct ha_http_req a, w;
		int inc = ha_http_parse(b, have, &scanned, &a);
		int whole = ha_http_parse(b, have, NULL, &w);
		if (inc != whole || scanned > have ||
		    (inc == HA_HTTP_COMPLETE && memcmp(&a, &w, sizeof(a)) != 0)) {
			snprintf(why, size, "after %zu bytes: resumed parse says %d, whole %d",
			         have, inc, whole);
			goto out;
		}
		if (inc == HA_HTTP_MORE && have >= HA_HTTP_MAX_REQUEST) {
			snprintf(why, size, "more wanted after %zu bytes", have);
			goto out;
		}
		if (inc != HA_HTTP_MORE)
			break;
	}
	out = 0;
out:
	free(b);
	return out;
}

/* ---- FSM ---- */

/* A state's snapshot must restore. */
static int check_snapshot_restores(const struct ha_fsm_state *s, struct ha_fsm_state *tmp,
                                   const char *after, char *why, size_t size)
{
	uint8_t *snap = NULL;
	size_t n = 0;
	if (ha_fsm_snapshot(s, NULL, &snap, &n) != 0)
		FAIL("%s: no snapshot", after);
	struct ha_err e = {0};
	ha_fsm_init(tmp);
	int rc = ha_fsm_restore(tmp, snap, n, &e);
	free(snap);
	if (rc != 0)
		FAIL("%s: its own snapshot does not restore: %s", after, e.msg);
	return 0;
}

static int check_fsm(const uint8_t *in, size_t len, struct fz_rng *r, char *why, size_t size)
{
	(void)r;
	static struct ha_fsm_state *s, *tmp;
	static uint8_t *members;
	static size_t members_len;
	if (s == NULL) {
		s = malloc(sizeof(*s));
		tmp = malloc(sizeof(*tmp));
		struct ha_member m[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
		for (int i = 0; i < 3; i++) {
			m[i].raft_port = 7100;
			m[i].rpc_port = 7200;
			m[i].db_port = 3306;
			snprintf(m[i].name, sizeof(m[i].name), "node%d", i + 1);
			snprintf(m[i].address, sizeof(m[i].address), "127.0.0.%d", 11 + i);
		}
		if (s == NULL || tmp == NULL ||
		    ha_fsm_cmd_init_members("fuzz", m, 3, NULL, &members, &members_len) != 0)
			FAIL("out of memory");
	}
	uint8_t *b = malloc(len ? len : 1);
	if (b == NULL)
		FAIL("out of memory");
	memcpy(b, in, len);
	int out = -1;
	for (int with_members = 0; with_members < 2; with_members++) {
		struct ha_err e = {0};
		ha_fsm_init(s);
		if (with_members && ha_fsm_apply(s, members, members_len, &e) != HA_FSM_APPLIED) {
			snprintf(why, size, "the members do not apply: %s", e.msg);
			goto out;
		}
		int rc = ha_fsm_apply(s, b, len, &e);
		fz_stats.fsm_applied += rc > 0;
		fz_stats.fsm_refused += rc < 0;
		if (rc < 0 && e.msg[0] == 0) {
			snprintf(why, size, "apply: error %d without a message", rc);
			goto out;
		}
		if (rc > 0 && check_snapshot_restores(s, tmp, "apply", why, size))
			goto out;
	}
	struct ha_err e = {0};
	ha_fsm_init(s);
	int rc = ha_fsm_restore(s, b, len, &e);
	fz_stats.restored += rc == 0;
	fz_stats.restore_refused += rc != 0;
	if (rc < 0 && e.msg[0] == 0) {
		snprintf(why, size, "restore: error %d without a message", rc);
		goto out;
	}
	if (rc == 0 && check_snapshot_restores(s, tmp, "restore", why, size))
		goto out;
	out = 0;
out:
	free(b);
	return out;
}

int fz_check(enum fz_target t, const uint8_t *in, size_t len, struct fz_rng *r, char *why,
             size_t size)
{
	why[0] = 0;
	switch (t) {
	case FZ_FRAMES:
		return check_frames(in, len, r, why, size);
	case FZ_HTTP:
		return check_http(in, len, r, why, size);
	default:
		return check_fsm(in, len, r, why, size);
	}
}
