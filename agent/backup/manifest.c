#include "manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ha_manifest_write(const struct ha_manifest *m, struct ha_buf *b)
{
	ha_buf_printf(b, "haagent-backup 3\n");
	ha_buf_printf(b, "id %llu\nname %s\ntype %s\nparent %llu\nparent_name %s\nnode %s\n",
	              (unsigned long long)m->id, m->name, m->type, (unsigned long long)m->parent,
	              m->parent_name[0] ? m->parent_name : "-", m->node[0] ? m->node : "-");
	ha_buf_printf(b, "server_id %u\ninstance %s\n", m->server_id,
	              m->instance[0] ? m->instance : "-");
	ha_buf_printf(b, "server_version %s\nfrom_lsn %llu\nto_lsn %llu\ngtid %s\nbinlog %s\n",
	              m->server_version[0] ? m->server_version : "-",
	              (unsigned long long)m->from_lsn, (unsigned long long)m->to_lsn,
	              m->gtid[0] ? m->gtid : "-", m->binlog[0] ? m->binlog : "-");
	ha_buf_printf(b,
	              "started_unix_ms %llu\nfinished_unix_ms %llu\nlag_seconds %lld\nload %.2f\n",
	              (unsigned long long)m->started_ms, (unsigned long long)m->finished_ms,
	              (long long)m->lag_seconds, m->load);
	ha_buf_printf(b, "bytes_in %llu\nbytes_stored %llu\nwrapped_key %s\nchunks %zu\n",
	              (unsigned long long)m->bytes_in, (unsigned long long)m->bytes_stored,
	              m->wrapped_key, m->n_chunks);
	for (size_t i = 0; i < m->n_chunks; i++)
		ha_buf_printf(b, "chunk %zu %u %u %s\n", i, m->chunks[i].stored, m->chunks[i].plain,
		              m->chunks[i].sha);
	if (m->sums_note[0])
		ha_buf_printf(b, "checksums_note %s\n", m->sums_note);
	ha_buf_printf(b, "checksums %zu\n", m->n_sums);
	for (size_t i = 0; i < m->n_sums; i++)
		ha_buf_printf(b, "checksum %llu %s\n", (unsigned long long)m->sums[i].sum,
		              m->sums[i].name);
	ha_buf_puts(b, "end\n");
}

void ha_manifest_free(struct ha_manifest *m)
{
	free(m->chunks);
	m->chunks = NULL;
	m->n_chunks = 0;
	free(m->sums);
	m->sums = NULL;
	m->n_sums = 0;
}

/* Text to the end of the line: printable (UTF-8 allowed), no control characters. */
int ha_mf_text(const char *v, char *out, size_t size)
{
	size_t n = strlen(v);
	if (n == 0 || n >= size)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] == 0x7f)
			return -1;
	memcpy(out, v, n + 1);
	return 0;
}

int ha_mf_word(const char *v, char *out, size_t size)
{
	size_t n = strlen(v);
	if (n == 0 || n >= size)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
			return -1;
	memcpy(out, strcmp(v, "-") ? v : "", strcmp(v, "-") ? n + 1 : 1);
	return 0;
}

int ha_mf_num(const char *v, uint64_t *out)
{
	char *end;
	if (*v < '0' || *v > '9')
		return -1;
	unsigned long long x = strtoull(v, &end, 10);
	if (*end)
		return -1;
	*out = x;
	return 0;
}

int ha_mf_chunk(const char *v, size_t index, struct ha_chunk_ref *c)
{
	unsigned long long idx;
	unsigned stored, plain;
	char sha[80];
	if (sscanf(v, "%llu %u %u %79s", &idx, &stored, &plain, sha) != 4 || idx != index ||
	    strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64 || plain > HA_CHUNK_MAX)
		return -1;
	c->stored = stored;
	c->plain = plain;
	memcpy(c->sha, sha, 65);
	return 0;
}

/* Long on purpose: one key after another, each checked where it is read (the input is
 * hostile); splitting it would spread one format over several places. */
int ha_manifest_parse(const char *text, size_t len, struct ha_manifest *m, struct ha_err *e)
{
	memset(m, 0, sizeof(*m));
	char line[2200];
	size_t pos = 0, ln = 0, expected = 0, next_chunk = 0, sums_expected = 0;
	int have_sums = 0;
	int have_end = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (text + pos)) : len - pos;
		ln++;
		if (l >= sizeof(line) || memchr(text + pos, '\0', l)) {
			ha_manifest_free(m);
			return ha_err_set(e, HA_EPROTO, "manifest line %zu: too long or binary",
			                  ln);
		}
		memcpy(line, text + pos, l);
		line[l] = '\0';
		pos += l + (nl ? 1 : 0);
		if (have_end)
			goto bad; /* nothing after "end" */
		char *sp = strchr(line, ' ');
		const char *k = line, *v = sp ? sp + 1 : "";
		if (sp)
			*sp = '\0';
		int rc = 0;
		uint64_t x = 0;
		if (ln == 1) {
			rc = strcmp(k, "haagent-backup") || strlen(v) != 1 || v[0] < '1' ||
			     v[0] > '3';
			m->version = rc ? 0 : (unsigned)(v[0] - '0');
		} else if (!strcmp(k, "server_id")) {
			rc = ha_mf_num(v, &x) || x > UINT32_MAX;
			m->server_id = (uint32_t)x;
		} else if (!strcmp(k, "instance"))
			rc = ha_mf_word(v, m->instance, sizeof(m->instance)) ||
			     strspn(m->instance, "0123456789abcdef") != strlen(m->instance);
		else if (!strcmp(k, "id"))
			rc = ha_mf_num(v, &m->id);
		else if (!strcmp(k, "name"))
			rc = ha_mf_word(v, m->name, sizeof(m->name));
		else if (!strcmp(k, "type"))
			rc = ha_mf_word(v, m->type, sizeof(m->type)) ||
			     (strcmp(m->type, "full") && strcmp(m->type, "differential") &&
			      strcmp(m->type, "incremental"));
		else if (!strcmp(k, "parent"))
			rc = ha_mf_num(v, &m->parent);
		else if (!strcmp(k, "parent_name"))
			rc = ha_mf_word(v, m->parent_name, sizeof(m->parent_name));
		else if (!strcmp(k, "node"))
			rc = ha_mf_word(v, m->node, sizeof(m->node));
		else if (!strcmp(k, "server_version"))
			rc = strlen(v) >= sizeof(m->server_version) ||
			     !memcpy(m->server_version, v, strlen(v) + 1);
		else if (!strcmp(k, "from_lsn"))
			rc = ha_mf_num(v, &m->from_lsn);
		else if (!strcmp(k, "to_lsn"))
			rc = ha_mf_num(v, &m->to_lsn);
		else if (!strcmp(k, "gtid"))
			rc = ha_mf_word(v, m->gtid, sizeof(m->gtid));
		else if (!strcmp(k, "binlog"))
			rc = ha_mf_word(v, m->binlog, sizeof(m->binlog));
		else if (!strcmp(k, "started_unix_ms"))
			rc = ha_mf_num(v, &m->started_ms);
		else if (!strcmp(k, "finished_unix_ms"))
			rc = ha_mf_num(v, &m->finished_ms);
		else if (!strcmp(k, "lag_seconds"))
			rc = sscanf(v, "%lld", (long long *)&m->lag_seconds) != 1;
		else if (!strcmp(k, "load"))
			rc = sscanf(v, "%lf", &m->load) != 1;
		else if (!strcmp(k, "bytes_in"))
			rc = ha_mf_num(v, &m->bytes_in);
		else if (!strcmp(k, "bytes_stored"))
			rc = ha_mf_num(v, &m->bytes_stored);
		else if (!strcmp(k, "wrapped_key"))
			rc = ha_mf_word(v, m->wrapped_key, sizeof(m->wrapped_key));
		else if (!strcmp(k, "chunks")) {
			rc = ha_mf_num(v, &x) || x > HA_MANIFEST_MAX_CHUNKS || m->chunks;
			if (!rc) {
				expected = (size_t)x;
				m->chunks = calloc(expected ? expected : 1, sizeof(*m->chunks));
				rc = m->chunks == NULL;
			}
		} else if (!strcmp(k, "chunk")) {
			rc = !m->chunks || next_chunk >= expected ||
			     ha_mf_chunk(v, next_chunk, &m->chunks[next_chunk]);
			if (!rc)
				next_chunk++;
		} else if (!strcmp(k, "checksums_note")) {
			rc = ha_mf_text(v, m->sums_note, sizeof(m->sums_note));
		} else if (!strcmp(k, "checksums")) {
			rc = ha_mf_num(v, &x) || x > HA_MANIFEST_MAX_SUMS || have_sums;
			if (!rc) {
				have_sums = 1;
				sums_expected = (size_t)x;
				m->sums =
				    calloc(sums_expected ? sums_expected : 1, sizeof(*m->sums));
				rc = m->sums == NULL;
			}
		} else if (!strcmp(k, "checksum")) {
			char *name = strchr(v, ' ');
			rc = !have_sums || m->n_sums >= sums_expected || name == NULL;
			if (!rc) {
				*name++ = '\0';
				struct ha_table_sum *t = &m->sums[m->n_sums];
				rc = ha_mf_num(v, &t->sum) ||
				     ha_mf_text(name, t->name, sizeof(t->name));
				if (!rc)
					m->n_sums++;
			}
		} else if (!strcmp(k, "end"))
			have_end = 1;
		else
			rc = 1; /* unknown key: a newer format, or damage */
		if (rc)
			goto bad;
	}
	if (!have_end || next_chunk != expected || !m->chunks || !m->name[0] || !m->type[0] ||
	    !m->wrapped_key[0] || m->n_sums != sums_expected) {
		ha_manifest_free(m);
		return ha_err_set(e, HA_EPROTO, "manifest incomplete (no end, or chunks missing)");
	}
	m->n_chunks = expected;
	return 0;
bad:
	ha_manifest_free(m);
	return ha_err_set(e, HA_EPROTO, "manifest line %zu: malformed", ln);
}

void ha_mf_seal(struct ha_buf *b, const uint8_t master[HA_KEY_LEN])
{
	uint8_t k[HA_KEY_LEN];
	char mac[65];
	ha_key_derive(master, HA_MANIFEST_MAC_LABEL, k);
	ha_hmac_hex(k, b->data ? b->data : "", b->len, mac);
	memset(k, 0, sizeof(k));
	ha_buf_printf(b, "mac %s\n", mac);
}

void ha_manifest_seal(struct ha_buf *b, const uint8_t master[HA_KEY_LEN])
{
	ha_mf_seal(b, master);
}

size_t ha_mf_body(const char *text, size_t len, const char **mac)
{
	/* the last line, "mac HEX\n", and the body before it */
	*mac = NULL;
	if (len >= 2 && text[len - 1] == '\n') {
		size_t start = len - 1;
		while (start > 0 && text[start - 1] != '\n')
			start--;
		if (len - start == 4 + 64 + 1 && !memcmp(text + start, "mac ", 4)) {
			*mac = text + start + 4;
			return start;
		}
	}
	return len;
}

bool ha_mf_mac_ok(const char *text, size_t body, const char *mac, const uint8_t master[HA_KEY_LEN])
{
	char want[65];
	uint8_t k[HA_KEY_LEN];
	ha_key_derive(master, HA_MANIFEST_MAC_LABEL, k);
	ha_hmac_hex(k, text, body, want);
	memset(k, 0, sizeof(k));
	return mac != NULL && ha_equal_ct(mac, want, 64);
}

int ha_manifest_open(const char *text, size_t len, const uint8_t master[HA_KEY_LEN],
                     struct ha_manifest *m, struct ha_err *e)
{
	const char *mac;
	size_t body = ha_mf_body(text, len, &mac);
	int rc = ha_manifest_parse(text, body, m, e);
	if (rc != 0)
		return rc;
	ha_sha256_hex((const uint8_t *)text, len, m->file_sha);
	if (mac == NULL && m->version < 3)
		return 0; /* an older format: unauthenticated */
	if (!ha_mf_mac_ok(text, body, mac, master)) {
		ha_manifest_free(m);
		return ha_err_set(e, HA_EPROTO,
		                  mac ? "manifest fails authentication: altered, or written with "
		                        "another repository key (wrong key file?)"
		                      : "manifest fails authentication: its mac line is missing");
	}
	m->authenticated = true;
	return 0;
}

int ha_manifest_check(const struct ha_manifest *m, const struct ha_manifest_expect *x,
                      struct ha_err *e)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < m->n_chunks; i++)
		sum += m->chunks[i].stored;
	const char *what = NULL;
	if (m->id != x->id || strcmp(m->name, x->name) != 0)
		what = "names another backup";
	else if (strcmp(m->type, x->type) != 0 || m->parent != x->parent)
		what = "has another type or parent";
	else if (m->n_chunks != x->chunks)
		return ha_err_set(
		    e, HA_EPROTO,
		    "backup %s: its manifest lists %zu chunks, the catalog recorded %u "
		    "(chunks dropped or added)",
		    x->name, m->n_chunks, x->chunks);
	else if (sum != m->bytes_stored || m->bytes_stored != x->bytes_stored)
		return ha_err_set(e, HA_EPROTO,
		                  "backup %s: its chunks hold %llu bytes, its manifest says %llu, "
		                  "the catalog recorded %llu",
		                  x->name, (unsigned long long)sum,
		                  (unsigned long long)m->bytes_stored,
		                  (unsigned long long)x->bytes_stored);
	else if (x->instance && x->instance[0] &&
	         (m->server_id != x->server_id || strcmp(m->instance, x->instance) != 0))
		what = "names another server or datadir";
	else if (x->manifest_sha && x->manifest_sha[0] && strcmp(m->file_sha, x->manifest_sha) != 0)
		what =
		    "is not the one written at backup time (its hash differs from the catalog's)";
	else if (!m->authenticated &&
	         ((x->instance && x->instance[0]) || (x->manifest_sha && x->manifest_sha[0])))
		what = "carries no mac, but the catalog says it was written with one (format 3)";
	if (what)
		return ha_err_set(e, HA_EPROTO, "backup %s: its manifest %s", x->name, what);
	return 0;
}
