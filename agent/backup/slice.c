#include "slice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ha_slice_name(uint64_t seq, uint32_t server_id, uint32_t tag, char out[HA_SLICE_NAME_MAX])
{
	snprintf(out, HA_SLICE_NAME_MAX, "%012llu-s%u-%08x", (unsigned long long)seq, server_id,
	         tag);
}

void ha_slice_write(const struct ha_slice *s, const uint8_t master[HA_KEY_LEN], struct ha_buf *b)
{
	ha_buf_printf(b, "haagent-slice 1\nname %s\nseq %llu\nprev %s\n", s->name,
	              (unsigned long long)s->seq, s->prev[0] ? s->prev : "-");
	ha_buf_printf(b, "server_id %u\nnode %s\nsource %s\n", s->server_id,
	              s->node[0] ? s->node : "-", s->source[0] ? s->source : "-");
	ha_buf_printf(b, "start %s\nend %s\n", s->start[0] ? s->start : "-",
	              s->end[0] ? s->end : "-");
	ha_buf_printf(b, "first_gtid %s\nlast_gtid %s\nfirst_ts %llu\nlast_ts %llu\ntxns %llu\n",
	              s->first_gtid[0] ? s->first_gtid : "-", s->last_gtid[0] ? s->last_gtid : "-",
	              (unsigned long long)s->first_ts, (unsigned long long)s->last_ts,
	              (unsigned long long)s->txns);
	ha_buf_printf(b, "sealed_unix_ms %llu\n", (unsigned long long)s->sealed_ms);
	if (s->gap[0])
		ha_buf_printf(b, "gap %s\n", s->gap);
	if (s->errant[0])
		ha_buf_printf(b, "errant %s\n", s->errant);
	if (s->fork[0])
		ha_buf_printf(b, "fork %s\n", s->fork);
	ha_buf_printf(b, "bytes_in %llu\nbytes_stored %llu\nwrapped_key %s\nchunks %zu\n",
	              (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_stored,
	              s->wrapped_key, s->n_chunks);
	for (size_t i = 0; i < s->n_chunks; i++)
		ha_buf_printf(b, "chunk %zu %u %u %s\n", i, s->chunks[i].stored, s->chunks[i].plain,
		              s->chunks[i].sha);
	ha_buf_puts(b, "end\n");
	ha_mf_seal(b, master);
}

void ha_slice_free(struct ha_slice *s)
{
	free(s->chunks);
	s->chunks = NULL;
	s->n_chunks = 0;
}

/* A GTID position's text: "-" for the empty one, else one that parses. */
static int position(const char *v, char *out, size_t size)
{
	if (ha_mf_word(v, out, size) != 0)
		return -1;
	struct ha_gtid_pos p;
	return ha_gtid_parse(out, &p, NULL) == 0 ? 0 : -1;
}

/* One "key value" line into s; -1 when the key is unknown or the value malformed. */
static int field(struct ha_slice *s, const char *k, const char *v, size_t *expected,
                 size_t *next_chunk)
{
	uint64_t x = 0;
	if (!strcmp(k, "name"))
		return ha_mf_word(v, s->name, sizeof(s->name));
	if (!strcmp(k, "seq"))
		return ha_mf_num(v, &s->seq);
	if (!strcmp(k, "prev"))
		return ha_mf_word(v, s->prev, sizeof(s->prev));
	if (!strcmp(k, "server_id")) {
		int rc = ha_mf_num(v, &x) || x > UINT32_MAX;
		s->server_id = (uint32_t)x;
		return rc ? -1 : 0;
	}
	if (!strcmp(k, "node"))
		return ha_mf_word(v, s->node, sizeof(s->node));
	if (!strcmp(k, "source"))
		return ha_mf_word(v, s->source, sizeof(s->source));
	if (!strcmp(k, "start"))
		return position(v, s->start, sizeof(s->start));
	if (!strcmp(k, "end"))
		return position(v, s->end, sizeof(s->end));
	if (!strcmp(k, "first_gtid"))
		return ha_mf_word(v, s->first_gtid, sizeof(s->first_gtid));
	if (!strcmp(k, "last_gtid"))
		return ha_mf_word(v, s->last_gtid, sizeof(s->last_gtid));
	if (!strcmp(k, "first_ts"))
		return ha_mf_num(v, &s->first_ts);
	if (!strcmp(k, "last_ts"))
		return ha_mf_num(v, &s->last_ts);
	if (!strcmp(k, "txns"))
		return ha_mf_num(v, &s->txns);
	if (!strcmp(k, "sealed_unix_ms"))
		return ha_mf_num(v, &s->sealed_ms);
	if (!strcmp(k, "gap"))
		return ha_mf_text(v, s->gap, sizeof(s->gap));
	if (!strcmp(k, "errant"))
		return ha_mf_text(v, s->errant, sizeof(s->errant));
	if (!strcmp(k, "fork"))
		return position(v, s->fork, sizeof(s->fork));
	if (!strcmp(k, "bytes_in"))
		return ha_mf_num(v, &s->bytes_in);
	if (!strcmp(k, "bytes_stored"))
		return ha_mf_num(v, &s->bytes_stored);
	if (!strcmp(k, "wrapped_key"))
		return ha_mf_word(v, s->wrapped_key, sizeof(s->wrapped_key));
	if (!strcmp(k, "chunks")) {
		if (ha_mf_num(v, &x) || x == 0 || x > HA_SLICE_MAX_CHUNKS || s->chunks)
			return -1;
		*expected = (size_t)x;
		s->chunks = calloc(*expected, sizeof(*s->chunks));
		return s->chunks ? 0 : -1;
	}
	if (!strcmp(k, "chunk")) {
		if (!s->chunks || *next_chunk >= *expected ||
		    ha_mf_chunk(v, *next_chunk, &s->chunks[*next_chunk]))
			return -1;
		(*next_chunk)++;
		return 0;
	}
	return -1; /* unknown key: a newer format, or damage */
}

static int parse(const char *text, size_t len, struct ha_slice *s, struct ha_err *e)
{
	char line[HA_GTID_TEXT_MAX + 64];
	size_t pos = 0, ln = 0, expected = 0, next_chunk = 0;
	bool have_end = false;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (text + pos)) : len - pos;
		ln++;
		if (l >= sizeof(line) || memchr(text + pos, '\0', l) || have_end)
			goto bad;
		memcpy(line, text + pos, l);
		line[l] = '\0';
		pos += l + (nl ? 1 : 0);
		char *sp = strchr(line, ' ');
		const char *k = line, *v = sp ? sp + 1 : "";
		if (sp)
			*sp = '\0';
		int rc;
		if (ln == 1)
			rc = strcmp(k, "haagent-slice") || strcmp(v, "1");
		else if (!strcmp(k, "end") && !sp)
			rc = 0, have_end = true;
		else
			rc = field(s, k, v, &expected, &next_chunk);
		if (rc)
			goto bad;
	}
	if (!have_end || !s->chunks || next_chunk != expected || !s->name[0] ||
	    !s->wrapped_key[0] || s->seq == 0) {
		ha_slice_free(s);
		return ha_err_set(e, HA_EPROTO,
		                  "slice manifest incomplete (no end, or chunks missing)");
	}
	s->n_chunks = expected;
	uint64_t sum = 0;
	for (size_t i = 0; i < s->n_chunks; i++)
		sum += s->chunks[i].stored;
	if (sum != s->bytes_stored) {
		ha_slice_free(s);
		return ha_err_set(e, HA_EPROTO, "slice %s: its chunks hold %llu bytes, not %llu",
		                  s->name, (unsigned long long)sum,
		                  (unsigned long long)s->bytes_stored);
	}
	return 0;
bad:
	ha_slice_free(s);
	return ha_err_set(e, HA_EPROTO, "slice manifest line %zu: malformed", ln);
}

int ha_slice_open(const char *text, size_t len, const uint8_t master[HA_KEY_LEN],
                  struct ha_slice *s, struct ha_err *e)
{
	memset(s, 0, sizeof(*s));
	const char *mac;
	size_t body = ha_mf_body(text, len, &mac);
	if (!ha_mf_mac_ok(text, body, mac, master))
		return ha_err_set(
		    e, HA_EPROTO,
		    mac ? "slice manifest fails authentication: altered, or written "
		          "with another repository key"
		        : "slice manifest fails authentication: its mac line is missing");
	int rc = parse(text, body, s, e);
	if (rc != 0)
		return rc;
	ha_sha256_hex((const uint8_t *)text, len, s->file_sha);
	s->authenticated = true;
	return 0;
}
