#include "binlogev.h"

#include <string.h>
#include <strings.h>

const uint8_t ha_bl_magic[HA_BL_MAGIC_LEN] = {0xfe, 'b', 'i', 'n'};

#define FD_FIXED     (2 + 50 + 4 + 1) /* version, server version, timestamp, header length */
#define QUERY_POST   13 /* thread id 4, exec time 4, db length 1, error 2, status length 2 */
#define GTID_BODY    13 /* seq 8, domain 4, flags 1 */
#define ROTATE_POST  8
#define CHECKSUM_OFF 0
#define CHECKSUM_CRC 1

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

int ha_bl_event(const uint8_t *p, size_t n, unsigned checksum, struct ha_bl_event *ev)
{
	if (n < HA_BL_HEADER)
		return 0;
	uint32_t size = le32(p + 9);
	if (size < HA_BL_HEADER + checksum || size > HA_BL_EVENT_MAX)
		return -1;
	if (n < size)
		return 0;
	ev->ts = le32(p);
	ev->type = p[4];
	ev->server_id = le32(p + 5);
	ev->size = size;
	ev->flags = le16(p + 17);
	ev->body = p + HA_BL_HEADER;
	ev->body_len = size - HA_BL_HEADER - checksum;
	return 1;
}

int ha_bl_fd_checksum(const struct ha_bl_event *fd)
{
	/* fixed part, then one post-header length per event type, then the algorithm and the
	 * event's own CRC32 (servers since 5.6.1 write both) */
	if (fd->type != HA_BL_FD || fd->body_len < FD_FIXED + 5)
		return -1;
	uint8_t alg = fd->body[fd->body_len - 5];
	if (alg == CHECKSUM_OFF)
		return 0;
	if (alg == CHECKSUM_CRC)
		return 4;
	return -1;
}

int ha_bl_gtid(const struct ha_bl_event *ev, struct ha_gtid *g, uint8_t *flags)
{
	if (ev->type != HA_BL_GTID || ev->body_len < GTID_BODY)
		return -1;
	g->seq = le64(ev->body);
	g->domain = le32(ev->body + 8);
	g->server = ev->server_id;
	*flags = ev->body[12];
	return g->seq == 0 ? -1 : 0;
}

int ha_bl_query_text(const struct ha_bl_event *ev, const char **text, size_t *len)
{
	if (ev->type == HA_BL_ANNOTATE) {
		*text = (const char *)ev->body;
		*len = ev->body_len;
		return 0;
	}
	if (ev->type != HA_BL_QUERY || ev->body_len < QUERY_POST)
		return -1;
	size_t db_len = ev->body[8];
	size_t status_len = le16(ev->body + 11);
	size_t at = QUERY_POST + status_len + db_len + 1; /* the database name ends with a NUL */
	if (at > ev->body_len)
		return -1;
	*text = (const char *)ev->body + at;
	*len = ev->body_len - at;
	return 0;
}

int ha_bl_gtid_list(const struct ha_bl_event *ev, struct ha_gtid_pos *out)
{
	memset(out, 0, sizeof(*out));
	if (ev->type != HA_BL_GTID_LIST || ev->body_len < 4)
		return -1;
	uint32_t count = le32(ev->body) & 0x0fffffffu;
	if ((size_t)count > (ev->body_len - 4) / 16)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = ev->body + 4 + (size_t)i * 16;
		uint32_t domain = le32(e), server = le32(e + 4);
		uint64_t seq = le64(e + 8);
		size_t k = 0;
		while (k < out->n && out->g[k].domain < domain)
			k++;
		if (k < out->n && out->g[k].domain == domain) {
			if (seq > out->g[k].seq)
				out->g[k] = (struct ha_gtid){domain, server, seq};
			continue;
		}
		if (out->n >= HA_GTID_MAX_DOMAINS)
			return -1;
		memmove(&out->g[k + 1], &out->g[k], (out->n - k) * sizeof(out->g[0]));
		out->g[k] = (struct ha_gtid){domain, server, seq};
		out->n++;
	}
	return 0;
}

int ha_bl_rotate_name(const struct ha_bl_event *ev, char *out, size_t size)
{
	if (ev->type != HA_BL_ROTATE || ev->body_len <= ROTATE_POST)
		return -1;
	size_t n = ev->body_len - ROTATE_POST;
	const uint8_t *name = ev->body + ROTATE_POST;
	/* it names a file in the archiver's scratch directory: no '/', not ".", "..", nor hidden */
	if (n >= size || memchr(name, '\0', n) || memchr(name, '/', n) || name[0] == '.')
		return -1;
	memcpy(out, name, n);
	out[n] = '\0';
	return 0;
}

/* Whether a statement ends the transaction it is in: COMMIT or ROLLBACK (also "XA COMMIT" and
 * "XA ROLLBACK" of a transaction prepared earlier). */
static bool ends(const char *t, size_t n)
{
	while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == ';' || t[n - 1] == '\0'))
		n--;
	bool xa = n >= 3 && strncasecmp(t, "XA ", 3) == 0;
	if (xa) {
		t += 3;
		n -= 3;
	}
	if (xa) /* XA COMMIT 'xid' [ONE PHASE], XA ROLLBACK 'xid' */
		return (n >= 6 && strncasecmp(t, "COMMIT", 6) == 0 && (n == 6 || t[6] == ' ')) ||
		       (n >= 8 && strncasecmp(t, "ROLLBACK", 8) == 0 && (n == 8 || t[8] == ' '));
	return (n == 6 && strncasecmp(t, "COMMIT", 6) == 0) ||
	       (n == 8 && strncasecmp(t, "ROLLBACK", 8) == 0);
}

int ha_bl_split_feed(struct ha_bl_split *s, const struct ha_bl_event *ev, enum ha_bl_role *role)
{
	s->cut = false;
	s->closed = false;
	if (ev->type == HA_BL_GTID) {
		uint8_t flags;
		struct ha_gtid g;
		if (ha_bl_gtid(ev, &g, &flags) != 0)
			return -1;
		if (s->in_tx) {
			s->closed = true;
			s->closed_gtid = s->gtid;
			s->closed_ts = s->ts;
		}
		s->gtid = g;
		s->in_tx = true;
		s->standalone = flags & HA_BL_FL_STANDALONE;
		s->ts = ev->ts;
		*role = HA_BL_TX_START;
		return 0;
	}
	if (!s->in_tx) {
		*role = HA_BL_OUTSIDE;
		return 0;
	}
	bool end = false;
	const char *t;
	size_t n;
	if (ev->type == HA_BL_XID || ev->type == HA_BL_XA_PREPARE)
		end = true;
	else if (ev->type == HA_BL_QUERY)
		end = s->standalone || (ha_bl_query_text(ev, &t, &n) == 0 && ends(t, n));
	else if (ev->type == HA_BL_FD) {
		/* a new file's header inside a transaction: the file before ended in the middle of
		 * it (its server died while writing it): it was never whole */
		s->cut = true;
		s->in_tx = false;
		*role = HA_BL_OUTSIDE;
		return 0;
	} else if (ev->type == HA_BL_ROTATE || ev->type == HA_BL_STOP ||
	           ev->type == HA_BL_GTID_LIST || ev->type == HA_BL_CHECKPOINT ||
	           ev->type == HA_BL_HEARTBEAT) {
		/* the server writes these between transactions only: the open one ended with the
		 * event before (an end this reader does not know by its event) */
		s->closed = true;
		s->closed_gtid = s->gtid;
		s->closed_ts = s->ts;
		s->in_tx = false;
		*role = HA_BL_OUTSIDE;
		return 0;
	}
	*role = end ? HA_BL_TX_END : HA_BL_TX_BODY;
	if (end)
		s->in_tx = false;
	return 0;
}
