#include "archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/log.h"
#include "../common/proc.h"
#include "../common/secret.h"
#include "../db/source.h"
#include "fsutil.h"

#define POLL_MS           100
#define READ_MAX          (1u << 20)
#define FORK_WALK_MAX     256 /* slices read back to find where a new primary and the archive agree */
#define STOP_MS           5000
#define FILE_NAME_MAX     256
#define PRUNE_FLOOR_TRIES 64

/* ---- reading a slice back ---- */

static int slice_open_named(const char *text, size_t len, const uint8_t *master_key,
                            const char *name, struct ha_slice *out, struct ha_err *e)
{
	int rc = ha_slice_open(text, len, master_key, out, e);
	if (rc == 0 && strcmp(out->name, name) != 0) {
		ha_slice_free(out);
		return ha_err_set(e, HA_EPROTO, "slice %s: its manifest names %s", name, out->name);
	}
	return rc;
}

/* How many copies the store may hold of an object (several repositories: repos.h). */
static size_t copies_of(struct ha_store *store)
{
	return store->ops->copies && store->ops->get_manifest_copy ? store->ops->copies(store) : 0;
}

/* With several repositories, the first copy of the slice's manifest that authenticates (one
 * damaged in a repository is taken from the next, as backups are). */
int ha_archive_slice(struct ha_store *store, const uint8_t *master_key, const char *name,
                     struct ha_slice *out, struct ha_err *e)
{
	size_t n = copies_of(store);
	char *text = NULL;
	size_t len = 0;
	if (n == 0) {
		int rc = store->ops->get_manifest(store, name, &text, &len, e);
		if (rc != 0)
			return rc;
		rc = slice_open_named(text, len, master_key, name, out, e);
		free(text);
		return rc;
	}
	struct ha_buf why = HA_BUF_INIT;
	int rc = HA_EIO;
	unsigned order[32];
	size_t n_order = ha_store_copy_order(store, n, order);
	for (size_t j = 0; j < n_order; j++) {
		size_t k = order[j];
		const char *from = "?";
		struct ha_err pe = {0};
		rc = store->ops->get_manifest_copy(store, k, name, &text, &len, &from, &pe);
		if (rc == 0)
			rc = slice_open_named(text, len, master_key, name, out, &pe);
		free(text);
		text = NULL;
		if (rc != 0)
			ha_store_copy_failed(store, k);
		if (rc == 0) {
			if (j > 0 || k > 0)
				ha_warn("archive-manifest-fallback",
				        "slice=%s repository=%s why=\"%s\"", name, from,
				        ha_buf_cstr(&why));
			ha_buf_free(&why);
			return 0;
		}
		if (n > 1)
			ha_buf_printf(&why, "%srepository %s: ", why.len ? "; " : "", from);
		ha_buf_puts(&why, pe.msg);
		rc = pe.code ? pe.code : rc;
	}
	ha_err_set(e, rc, "%s", ha_buf_cstr(&why));
	ha_buf_free(&why);
	return rc;
}

/* One copy of a slice's chunk, checked (its hash, then its authenticated decryption) into
 * plain. */
static int read_copy(struct ha_store *store, size_t copy, const uint8_t key[HA_KEY_LEN],
                     const struct ha_slice *s, size_t i, uint8_t *in, uint8_t *plain, size_t *plen,
                     const char **from, struct ha_err *e)
{
	size_t k = 0;
	char sha[65];
	int rc =
	    copy == SIZE_MAX
	        ? store->ops->get_chunk(store, s->name, i, in, ha_chunk_bound(HA_CHUNK_MAX), &k, e)
	        : store->ops->get_chunk_copy(store, copy, s->name, i, in,
	                                     ha_chunk_bound(HA_CHUNK_MAX), &k, from, e);
	if (rc != 0)
		return rc;
	ha_sha256_hex(in, k, sha);
	if (k != s->chunks[i].stored || strcmp(sha, s->chunks[i].sha) != 0)
		return ha_err_set(e, HA_EPROTO, "slice %s chunk %zu: damaged (hash)", s->name, i);
	return ha_chunk_open(key, s->name, i, in, k, plain, plen, e);
}

/* One chunk of a slice from the first copy that is intact: a damaged or missing one in a
 * repository is taken from the next. */
static int read_chunk(struct ha_store *store, const uint8_t key[HA_KEY_LEN],
                      const struct ha_slice *s, size_t i, uint8_t *in, uint8_t *plain, size_t *plen,
                      struct ha_err *e)
{
	size_t n = store->ops->copies && store->ops->get_chunk_copy ? store->ops->copies(store) : 0;
	if (n == 0)
		return read_copy(store, SIZE_MAX, key, s, i, in, plain, plen, NULL, e);
	struct ha_buf why = HA_BUF_INIT;
	int rc = HA_EIO;
	unsigned order[32];
	size_t n_order = ha_store_copy_order(store, n, order);
	for (size_t j = 0; j < n_order; j++) {
		size_t k = order[j];
		const char *from = "?";
		struct ha_err pe = {0};
		if ((rc = read_copy(store, k, key, s, i, in, plain, plen, &from, &pe)) == 0) {
			if (j > 0 || k > 0)
				ha_warn("archive-chunk-fallback",
				        "slice=%s chunk=%zu repository=%s why=\"%s\"", s->name, i,
				        from, ha_buf_cstr(&why));
			ha_buf_free(&why);
			return 0;
		}
		ha_store_copy_failed(store, k);
		if (n > 1)
			ha_buf_printf(&why, "%srepository %s: ", why.len ? "; " : "", from);
		ha_buf_puts(&why, pe.msg);
		rc = pe.code ? pe.code : rc;
	}
	ha_err_set(e, rc, "%s", ha_buf_cstr(&why));
	ha_buf_free(&why);
	return rc;
}

/* The events of a slice's plain bytes as they come, chunk after chunk. */
struct reader {
	const struct ha_slice *s;
	ha_archive_event_fn fn;
	void *arg;
	struct ha_buf carry; /* bytes of an event that continues in the next chunk */
	struct ha_bl_split split;
	unsigned checksum;
	bool magic, have_fd;
};

static int feed_events(struct reader *r, struct ha_err *e)
{
	size_t at = 0;
	const uint8_t *d = (const uint8_t *)r->carry.data;
	int rc = 0;
	if (!r->magic && r->carry.len >= HA_BL_MAGIC_LEN) {
		if (memcmp(d, ha_bl_magic, HA_BL_MAGIC_LEN) != 0)
			return ha_err_set(e, HA_EPROTO, "slice %s: not a binary log", r->s->name);
		r->magic = true;
		at = HA_BL_MAGIC_LEN;
	}
	while (rc == 0 && r->magic) {
		struct ha_bl_event ev;
		int k = ha_bl_event(d + at, r->carry.len - at, r->have_fd ? r->checksum : 0, &ev);
		if (k == 0)
			break;
		if (k < 0 || (!r->have_fd && ev.type != HA_BL_FD))
			return ha_err_set(e, HA_EPROTO, "slice %s: malformed event", r->s->name);
		enum ha_bl_role role = HA_BL_OUTSIDE;
		if (!r->have_fd) { /* the slice's one Format_description */
			int c = ha_bl_fd_checksum(&ev);
			if (c < 0)
				return ha_err_set(e, HA_EPROTO, "slice %s: bad format event",
				                  r->s->name);
			r->checksum = (unsigned)c;
			r->have_fd = true;
		} else if (ha_bl_split_feed(&r->split, &ev, &role) != 0) {
			return ha_err_set(e, HA_EPROTO, "slice %s: malformed GTID event",
			                  r->s->name);
		}
		rc = r->fn(r->arg, &ev, role, &r->split, d + at);
		at += ev.size;
	}
	ha_buf_consume(&r->carry, at);
	return rc;
}

int ha_archive_scan(struct ha_store *store, const uint8_t *master_key, const struct ha_slice *s,
                    ha_archive_event_fn fn, void *arg, struct ha_err *e)
{
	uint8_t key[HA_KEY_LEN];
	if (ha_key_unwrap(master_key, s->wrapped_key, key, e) != 0)
		return HA_EPROTO;
	uint8_t *in = malloc(ha_chunk_bound(HA_CHUNK_MAX)), *plain = malloc(HA_CHUNK_MAX);
	struct reader r = {.s = s, .fn = fn, .arg = arg, .carry = HA_BUF_INIT};
	int rc = in && plain ? 0 : ha_err_set(e, HA_EIO, "out of memory");
	for (size_t i = 0; rc == 0 && i < s->n_chunks; i++) {
		size_t plen = 0;
		rc = read_chunk(store, key, s, i, in, plain, &plen, e);
		if (rc == 0) {
			ha_buf_append(&r.carry, plain, plen);
			rc = ha_buf_failed(&r.carry) ? ha_err_set(e, HA_EIO, "out of memory")
			                             : feed_events(&r, e);
		}
	}
	if (rc == 0 && r.carry.len != 0)
		rc = ha_err_set(e, HA_EPROTO, "slice %s: ends inside an event", s->name);
	if (rc == 0 && r.split.in_tx) {
		/* slices end between transactions: the last one ended with the slice (an end this
		 * reader does not know by its event) */
		r.split.in_tx = false;
		r.split.closed = true;
		r.split.closed_gtid = r.split.gtid;
		r.split.closed_ts = r.split.ts;
		rc = fn(arg, NULL, HA_BL_OUTSIDE, &r.split, NULL);
	}
	if (rc == 1)
		rc = 0; /* the callback stopped early */
	ha_buf_free(&r.carry);
	free(in);
	free(plain);
	ha_wipe(key, sizeof(key));
	return rc;
}

/* ---- retention ---- */

static uint64_t name_seq(const char *name)
{
	char *end;
	unsigned long long v = strtoull(name, &end, 10);
	return end - name == 12 && *end == '-' ? v : 0;
}

/* Whether slice name begins at or before keep (-1: unreadable). */
static int starts_within(struct ha_store *store, const uint8_t *key, const char *name,
                         const struct ha_gtid_pos *keep, struct ha_err *e)
{
	struct ha_slice s;
	if (ha_archive_slice(store, key, name, &s, e) != 0)
		return -1;
	struct ha_gtid_pos start;
	int in = ha_gtid_parse(s.start, &start, NULL) == 0 && ha_gtid_contains(keep, &start);
	ha_slice_free(&s);
	return in;
}

int ha_archive_prune(struct ha_store *store, const uint8_t *master_key, const char *head,
                     const char *keep_from, unsigned *removed, struct ha_err *e)
{
	*removed = 0;
	struct ha_gtid_pos keep;
	if (!head[0] || !keep_from[0] || ha_gtid_parse(keep_from, &keep, NULL) != 0)
		return 0; /* no backup kept (or no position known): nothing is surely unneeded */
	uint64_t head_seq = name_seq(head);
	char **names = NULL;
	size_t n = 0, m = 0;
	int rc = store->ops->list(store, &names, &n, e);
	if (rc != 0)
		return rc;
	/* the slices up to the head, in order (names sort by number) */
	for (size_t i = 0; i < n; i++) {
		uint64_t seq = name_seq(names[i]);
		if (seq != 0 && seq <= head_seq) {
			char *t = names[m];
			names[m++] = names[i];
			names[i] = t;
		}
	}
	/* Along the chain the start positions only grow: "begins at or before keep" holds for a
	 * prefix. The last slice of that prefix holds the first transaction after keep: the
	 * oldest one a restore reads. Found by halving (a few manifests, not the whole chain). */
	/* the low end may hold what no longer reads (a slice whose removal was cut short) or an
	 * orphan from elsewhere: the first readable slice that starts within keep is the floor */
	size_t lo = 0, hi = m; /* the answer is in [lo, hi): the last index that starts within */
	int first = 0;
	for (; lo < m && lo < PRUNE_FLOOR_TRIES && first != 1; lo++) {
		struct ha_err ignored = {0};
		first = starts_within(store, master_key, names[lo], &keep, &ignored);
		if (first == 1)
			break;
	}
	while (rc == 0 && first == 1 && hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		int in = starts_within(store, master_key, names[mid], &keep, e);
		if (in < 0)
			rc = HA_EIO;
		else if (in)
			lo = mid;
		else
			hi = mid;
	}
	uint64_t oldest = rc == 0 && first == 1 ? name_seq(names[lo]) : 0;
	for (size_t i = 0; rc == 0 && i < m && name_seq(names[i]) < oldest; i++) {
		if (store->ops->remove(store, names[i], e) != 0) {
			rc = HA_EIO;
			break;
		}
		(*removed)++;
	}
	ha_store_names_free(names, n);
	return rc;
}

/* ---- the slice being written ---- */

struct slicer {
	struct ha_archive_spec *sp;
	struct ha_chunk_ctx *zc;
	uint8_t key[HA_KEY_LEN];
	struct ha_slice s; /* in progress: open when staged */
	bool open;
	size_t cap_chunks;
	uint8_t *plain, *sealed;
	size_t plain_len;
	size_t tx_mark;     /* plain_len where the last complete transaction ended */
	bool flushed_in_tx; /* a chunk was written while a transaction was open */
	uint64_t first_done_ms;
	struct ha_gtid_pos start, end;
	uint8_t *fd;
	size_t fd_len;
	/* the newest committed slice */
	char head[HA_SLICE_NAME_MAX];
	uint64_t head_seq;
	char gap[HA_SLICE_NOTE_MAX], errant[HA_SLICE_NOTE_MAX]; /* for the next slice */
	char fork[HA_GTID_TEXT_MAX];                            /* likewise */
	char source[FILE_NAME_MAX];
};

static int flush_chunk(struct slicer *sl, size_t n, struct ha_err *e)
{
	struct ha_slice *s = &sl->s;
	if (s->n_chunks == sl->cap_chunks) {
		size_t ncap = sl->cap_chunks ? sl->cap_chunks * 2 : 4;
		if (ncap > HA_SLICE_MAX_CHUNKS)
			return ha_err_set(e, HA_EIO, "slice %s: more than %u chunks", s->name,
			                  HA_SLICE_MAX_CHUNKS);
		struct ha_chunk_ref *grown = realloc(s->chunks, ncap * sizeof(*grown));
		if (grown == NULL)
			return ha_err_set(e, HA_EIO, "out of memory");
		s->chunks = grown;
		sl->cap_chunks = ncap;
	}
	size_t out = 0;
	int rc = ha_chunk_seal(sl->zc, sl->key, s->name, s->n_chunks, sl->sp->level, sl->plain, n,
	                       sl->sealed, &out, e);
	if (rc == 0)
		rc = sl->sp->store->ops->put_chunk(sl->sp->store, sl->sp->node, s->name,
		                                   s->n_chunks, sl->sealed, out, e);
	if (rc != 0)
		return rc;
	struct ha_chunk_ref *c = &s->chunks[s->n_chunks++];
	c->stored = (uint32_t)out;
	c->plain = (uint32_t)n;
	ha_sha256_hex(sl->sealed, out, c->sha);
	s->bytes_in += n;
	s->bytes_stored += out;
	memmove(sl->plain, sl->plain + n, sl->plain_len - n);
	sl->plain_len -= n;
	return 0;
}

static int slice_begin(struct slicer *sl, struct ha_err *e);
static int slice_seal(struct slicer *sl, struct ha_err *e);
static int append(struct slicer *sl, const uint8_t *p, size_t n, struct ha_err *e);

/* The buffer is full inside a transaction while complete ones precede it: those are sealed
 * first and the open one moves to a new slice, so that a slice which has to write part of an
 * open transaction to a chunk holds nothing else (a cut then loses only that transaction). */
static int split_off(struct slicer *sl, struct ha_err *e)
{
	size_t pend = sl->plain_len - sl->tx_mark;
	uint8_t *tmp = malloc(pend ? pend : 1);
	if (tmp == NULL)
		return ha_err_set(e, HA_EIO, "out of memory");
	memcpy(tmp, sl->plain + sl->tx_mark, pend);
	uint32_t server = sl->s.server_id;
	sl->plain_len = sl->tx_mark;
	int rc = slice_seal(sl, e);
	if (rc == 0) {
		sl->s.server_id = server;
		rc = slice_begin(sl, e);
	}
	if (rc == 0)
		rc = append(sl, tmp, pend, e);
	free(tmp);
	return rc;
}

static int append(struct slicer *sl, const uint8_t *p, size_t n, struct ha_err *e)
{
	while (n > 0) {
		if (sl->plain_len == HA_CHUNK_MAX && sl->tx_mark < sl->plain_len &&
		    sl->s.txns > 0) {
			int rc = split_off(sl, e);
			if (rc != 0)
				return rc;
		}
		size_t room = HA_CHUNK_MAX - sl->plain_len, k = n < room ? n : room;
		memcpy(sl->plain + sl->plain_len, p, k);
		sl->plain_len += k;
		p += k;
		n -= k;
		if (sl->plain_len == HA_CHUNK_MAX &&
		    !(sl->tx_mark < sl->plain_len && sl->s.txns > 0)) {
			bool mid = sl->tx_mark < sl->plain_len;
			int rc = flush_chunk(sl, sl->plain_len, e);
			if (rc != 0)
				return rc;
			sl->flushed_in_tx = sl->flushed_in_tx || mid;
			sl->tx_mark = 0;
		}
	}
	return 0;
}

static void slice_drop(struct slicer *sl)
{
	if (sl->open)
		sl->sp->store->ops->abort(sl->sp->store, sl->sp->node, sl->s.name);
	ha_slice_free(&sl->s);
	memset(&sl->s, 0, sizeof(sl->s));
	sl->open = false;
	sl->cap_chunks = 0;
	sl->plain_len = sl->tx_mark = 0;
	sl->flushed_in_tx = false;
	sl->first_done_ms = 0;
	sl->end = sl->start;
}

static int slice_begin(struct slicer *sl, struct ha_err *e)
{
	struct ha_slice *s = &sl->s;
	uint32_t tag = 0;
	if (getrandom(&tag, sizeof(tag), 0) != (ssize_t)sizeof(tag))
		tag = (uint32_t)ha_now_ms();
	s->seq = sl->head_seq + 1;
	ha_slice_name(s->seq, s->server_id, tag, s->name);
	snprintf(s->prev, sizeof(s->prev), "%s", sl->head);
	snprintf(s->node, sizeof(s->node), "%s", sl->sp->node);
	snprintf(s->source, sizeof(s->source), "%s", sl->source);
	if (ha_key_random(sl->key) || ha_key_wrap(sl->sp->master_key, sl->key, s->wrapped_key))
		return ha_err_set(e, HA_EIO, "cannot make a data key");
	int rc = sl->sp->store->ops->begin(sl->sp->store, sl->sp->node, s->name, e);
	if (rc != 0)
		return rc;
	sl->open = true;
	sl->end = sl->start;
	rc = append(sl, ha_bl_magic, HA_BL_MAGIC_LEN, e);
	if (rc == 0)
		rc = append(sl, sl->fd, sl->fd_len, e);
	sl->tx_mark = sl->plain_len;
	return rc;
}

/* The end of one transaction: the slice's position moves on. */
static int tx_done(struct slicer *sl, const struct ha_bl_split *tx, struct ha_err *e)
{
	struct ha_slice *s = &sl->s;
	struct ha_gtid_pos one = {.n = 1, .g = {tx->gtid}};
	struct ha_gtid_pos merged;
	/* strict mode: each sequence number follows the last one of its domain; anything else is
	 * a hole in the history (said with the slice, an event) */
	for (size_t i = 0; i < sl->end.n; i++) {
		if (sl->end.g[i].domain != tx->gtid.domain)
			continue;
		if (tx->gtid.seq != sl->end.g[i].seq + 1 && !sl->gap[0])
			snprintf(sl->gap, sizeof(sl->gap),
			         "gap: domain %u goes from %llu to %llu in the source's binary log",
			         tx->gtid.domain, (unsigned long long)sl->end.g[i].seq,
			         (unsigned long long)tx->gtid.seq);
		sl->end.g[i].seq = 0; /* replaced below */
	}
	if (ha_gtid_merge(&one, &sl->end, &merged) != 0)
		return ha_err_set(e, HA_EINVAL, "more than %d replication domains",
		                  HA_GTID_MAX_DOMAINS);
	sl->end = merged;
	char g[48];
	snprintf(g, sizeof(g), "%u-%u-%llu", tx->gtid.domain, tx->gtid.server,
	         (unsigned long long)tx->gtid.seq);
	if (s->txns == 0) {
		snprintf(s->first_gtid, sizeof(s->first_gtid), "%s", g);
		s->first_ts = tx->ts;
		sl->first_done_ms = ha_now_ms();
	}
	snprintf(s->last_gtid, sizeof(s->last_gtid), "%s", g);
	s->last_ts = tx->ts;
	s->txns++;
	sl->tx_mark = sl->plain_len;
	sl->flushed_in_tx = false;
	return 0;
}

/* Commits the slice's complete transactions; a partial one after them is dropped (the next
 * run streams it again from the new head). */
static int slice_seal(struct slicer *sl, struct ha_err *e)
{
	struct ha_slice *s = &sl->s;
	if (!sl->open || s->txns == 0 || sl->flushed_in_tx) {
		slice_drop(sl);
		return 0;
	}
	sl->plain_len = sl->tx_mark;
	int rc = sl->plain_len ? flush_chunk(sl, sl->plain_len, e) : 0;
	if (rc != 0)
		return rc;
	ha_gtid_format(&sl->start, s->start, sizeof(s->start));
	ha_gtid_format(&sl->end, s->end, sizeof(s->end));
	snprintf(s->gap, sizeof(s->gap), "%s", sl->gap);
	snprintf(s->errant, sizeof(s->errant), "%s", sl->errant);
	snprintf(s->fork, sizeof(s->fork), "%s", sl->fork);
	s->sealed_ms = ha_unix_ms();
	struct ha_buf m = HA_BUF_INIT;
	ha_slice_write(s, sl->sp->master_key, &m);
	rc = ha_buf_failed(&m) ? ha_err_set(e, HA_EIO, "out of memory")
	                       : sl->sp->store->ops->commit(sl->sp->store, sl->sp->node, s->name,
	                                                    m.data, m.len, e);
	ha_buf_free(&m);
	if (rc != 0)
		return rc;
	sl->open = false; /* committed: nothing to abort */
	ha_sha256_hex(NULL, 0, s->file_sha);
	if (sl->sp->sealed)
		sl->sp->sealed(sl->sp->arg, s);
	snprintf(sl->head, sizeof(sl->head), "%s", s->name);
	sl->head_seq = s->seq;
	sl->start = sl->end;
	sl->gap[0] = sl->errant[0] = sl->fork[0] = '\0';
	slice_drop(sl);
	return 0;
}

/* ---- where to start ---- */

/* A note of per-domain parts (separated by sep) into note: whole when it fits, else the parts
 * that fit and how many there are in all; never cut inside a part. */
static void put_note(char *note, size_t size, const char *prefix, const char *parts,
                     const char *sep, size_t n_parts)
{
	if (strlen(prefix) + strlen(parts) < size) {
		snprintf(note, size, "%s%s", prefix, parts);
		return;
	}
	char tail[96];
	snprintf(tail, sizeof(tail),
	         "%s... (%zu domains in all; the slice's start and end are whole)", sep, n_parts);
	size_t room = size - strlen(prefix) - strlen(tail) - 1, keep = 0;
	for (const char *p = parts; (p = strstr(p, sep)) != NULL; p += strlen(sep))
		if ((size_t)(p - parts) <= room)
			keep = (size_t)(p - parts);
	snprintf(note, size, "%s%.*s%s", prefix, (int)keep, parts, tail);
}

struct fork_scan {
	struct ha_gtid_pos *found; /* per domain: the newest transaction the source has */
	const char *state;
	bool want[HA_GTID_MAX_DOMAINS];
	const struct ha_gtid_pos *domains;
};

static int fork_event(void *arg, const struct ha_bl_event *ev, enum ha_bl_role role,
                      const struct ha_bl_split *tx, const uint8_t *raw)
{
	(void)ev;
	(void)raw;
	struct fork_scan *f = arg;
	const struct ha_gtid *g = role == HA_BL_TX_END ? &tx->gtid
	                          : tx->closed         ? &tx->closed_gtid
	                                               : NULL;
	if (g == NULL)
		return 0;
	for (size_t i = 0; i < f->domains->n; i++)
		if (f->want[i] && f->domains->g[i].domain == g->domain &&
		    ha_gtid_state_has(f->state, g) == 1)
			f->found->g[i] = *g; /* in order: the last one wins */
	return 0;
}

/* Where the archive (ending at end) and a source with binary log state `state` agree: per
 * domain of end, the newest archived transaction the source has. Walks back from the head
 * slice. Writes what lies beyond into note. */
static int find_fork(struct ha_archive_spec *sp, const struct ha_slice *head,
                     const struct ha_gtid_pos *end, const char *state, struct ha_gtid_pos *at,
                     char *note, size_t size, struct ha_err *e)
{
	struct ha_gtid_pos found = *end;
	bool want[HA_GTID_MAX_DOMAINS] = {0}, absent[HA_GTID_MAX_DOMAINS] = {0};
	size_t open = 0;
	for (size_t i = 0; i < end->n; i++) {
		want[i] = ha_gtid_state_has(state, &end->g[i]) != 1;
		open += want[i];
		if (want[i])
			found.g[i].seq = 0;
	}
	struct ha_slice s;
	int rc = 0;
	char prev[HA_SLICE_NAME_MAX];
	snprintf(prev, sizeof(prev), "%s", head->name);
	for (unsigned walked = 0; open > 0 && rc == 0; walked++) {
		if (walked == FORK_WALK_MAX || !prev[0]) {
			rc = ha_err_set(e, HA_EPROTO,
			                "the new primary has none of the last %u archived slices' "
			                "transactions: cannot tell where they part",
			                walked);
			break;
		}
		if ((rc = ha_archive_slice(sp->store, sp->master_key, prev, &s, e)) != 0)
			break;
		struct fork_scan f = {.found = &found, .state = state, .domains = end};
		memcpy(f.want, want, sizeof(want));
		rc = ha_archive_scan(sp->store, sp->master_key, &s, fork_event, &f, e);
		struct ha_gtid_pos start;
		if (rc == 0 && ha_gtid_parse(s.start, &start, NULL) != 0)
			rc = ha_err_set(e, HA_EPROTO, "slice %s: bad start", s.name);
		for (size_t i = 0; rc == 0 && i < end->n; i++) {
			if (!want[i])
				continue;
			if (found.g[i].seq != 0) {
				want[i] = false;
				open--;
				continue;
			}
			const struct ha_gtid *sg = NULL;
			for (size_t j = 0; j < start.n; j++)
				if (start.g[j].domain == end->g[i].domain)
					sg = &start.g[j];
			if (sg == NULL || ha_gtid_state_has(state, sg) == 1) {
				if (sg)
					found.g[i] = *sg;
				else
					absent[i] = true;
				want[i] = false;
				open--;
			}
		}
		snprintf(prev, sizeof(prev), "%s", s.prev);
		ha_slice_free(&s);
	}
	if (rc != 0)
		return rc;
	memset(at, 0, sizeof(*at));
	struct ha_buf b = HA_BUF_INIT;
	size_t parts = 0;
	for (size_t i = 0; i < end->n; i++) {
		if (!absent[i])
			at->g[at->n++] = found.g[i];
		if (absent[i] || found.g[i].seq != end->g[i].seq)
			ha_buf_printf(&b,
			              "%sdomain %u: archived through %u-%u-%llu, the new primary "
			              "has only up to seq %llu",
			              parts++ ? "; " : "", end->g[i].domain, end->g[i].domain,
			              end->g[i].server, (unsigned long long)end->g[i].seq,
			              (unsigned long long)(absent[i] ? 0 : found.g[i].seq));
	}
	bool failed = ha_buf_failed(&b);
	put_note(note, size, "errant (never replayed): ", ha_buf_cstr(&b), "; ", parts);
	ha_buf_free(&b);
	return failed ? ha_err_set(e, HA_EIO, "out of memory") : 0;
}

/* ---- streaming ---- */

struct run {
	struct ha_archive_spec *sp;
	struct slicer sl;
	char dir[PATH_MAX];
	char cnf[PATH_MAX + 16], log[PATH_MAX + 16];
	bool by_file; /* streaming from a file's beginning (no GTID start) */
	struct ha_gtid_pos head_end;
	struct ha_gtid_pos from; /* where this run continues the archive (plan_start) */
	bool have_head;
	bool start_known;
	pid_t pid;
	struct ha_bl_split split;
	unsigned checksum;
	bool have_fd;
	uint64_t prune_at;
	bool skipping;      /* the open transaction is archived already */
	uint32_t server_id; /* the source's */
	bool cnf_there;     /* the child's option file (the password) is on disk */
};

/* A file name's order: shorter first (".000999" before ".1000000"), then by name. */
static int file_cmp(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	return la != lb ? (la < lb ? -1 : 1) : strcmp(a, b);
}

/* The first binary log file mariadb-binlog wrote in dir ("" none yet). */
static void first_file(const char *dir, char *out, size_t size)
{
	out[0] = '\0';
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strlen(de->d_name) < size &&
		    (!out[0] || file_cmp(de->d_name, out) < 0))
			snprintf(out, size, "%s", de->d_name);
	closedir(d);
}

/* The password in a private option file, never in argv; on disk only from the child's start
 * until it has read it (drop_cnf). */
static int write_cnf(struct run *r, struct ha_err *e)
{
	if (ha_write_password_cnf(r->cnf, "client", r->sp->password) != 0)
		return ha_err_set(e, HA_EIO, "write %s: %s", r->cnf, strerror(errno));
	r->cnf_there = true;
	return 0;
}

/* mariadb-binlog reads its option files once, as it starts, before it connects: once it wrote
 * its first file (or ended) the password file has served. */
static void drop_cnf(struct run *r)
{
	if (r->cnf_there)
		unlink(r->cnf);
	r->cnf_there = false;
}

static int start_child(struct run *r, const char *file, const struct ha_gtid_pos *from,
                       struct ha_err *e)
{
	struct ha_archive_spec *sp = r->sp;
	char a_cnf[PATH_MAX + 40], a_host[96], a_port[32], a_user[128], a_id[64],
	    a_res[PATH_MAX + 32];
	char *a_pos = NULL;
	snprintf(a_cnf, sizeof(a_cnf), "--defaults-extra-file=%s", r->cnf);
	snprintf(a_host, sizeof(a_host), "--host=%s", sp->host);
	snprintf(a_port, sizeof(a_port), "--port=%u", sp->port);
	snprintf(a_user, sizeof(a_user), "--user=%s", sp->user);
	snprintf(a_id, sizeof(a_id), "--stop-never-slave-server-id=%u", sp->dump_server_id);
	snprintf(a_res, sizeof(a_res), "--result-file=%s/", r->dir);
	char *argv[16] = {(char *)sp->tool,
	                  a_cnf,
	                  "--read-from-remote-server",
	                  a_host,
	                  a_port,
	                  a_user,
	                  "--raw",
	                  "--stop-never",
	                  a_id,
	                  a_res};
	int argc = 10;
	if (from) {
		char text[HA_GTID_TEXT_MAX];
		ha_gtid_format(from, text, sizeof(text));
		if (asprintf(&a_pos, "--start-position=%s", text) < 0)
			return ha_err_set(e, HA_EIO, "out of memory");
		argv[argc++] = a_pos;
	}
	argv[argc++] = (char *)file;
	argv[argc] = NULL;
	struct ha_proc_spec ps = {.argv = argv,
	                          .io = {HA_PROC_NULL, HA_PROC_NULL, {.fd = -1, .path = r->log}},
	                          .own_group = true};
	int rc = write_cnf(r, e);
	if (rc != 0) {
		free(a_pos);
		return rc;
	}
	rc = ha_proc_start(&ps, &r->pid);
	free(a_pos);
	if (rc != 0) {
		drop_cnf(r);
		return ha_err_set(e, HA_EIO, "cannot run %s: %s", sp->tool, strerror(rc));
	}
	if (sp->child_pid)
		atomic_store(sp->child_pid, r->pid);
	return 0;
}

static void stop_child(struct run *r)
{
	drop_cnf(r);
	if (r->pid <= 0)
		return;
	kill(-r->pid, SIGTERM);
	int status;
	ha_proc_wait(r->pid, STOP_MS, true, &status);
	r->pid = 0;
	if (r->sp->child_pid)
		atomic_store(r->sp->child_pid, 0);
}

/* The last lines mariadb-binlog wrote to its log, for a message. */
static void child_error(const struct run *r, char *out, size_t size)
{
	out[0] = '\0';
	int fd = open(r->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[1024];
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	ssize_t k = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (k <= 0)
		return;
	buf[k] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	snprintf(out, size, "%s", buf);
}

/* A gap: what the source's oldest file begins after (its Gtid_list) against what the archive
 * has (end). Writes the note; 0 when nothing is missing. */
static int gap_note(const struct ha_gtid_pos *file_start, const struct ha_gtid_pos *end, char *note,
                    size_t size)
{
	struct ha_gtid_pos missing;
	uint64_t from[HA_GTID_MAX_DOMAINS];
	if (ha_gtid_missing_from(file_start, end, &missing, from) == 0)
		return 0;
	struct ha_buf b = HA_BUF_INIT;
	for (size_t i = 0; i < missing.n; i++)
		ha_buf_printf(&b, "%sdomain %u seq %llu..%llu", i ? ", " : "", missing.g[i].domain,
		              (unsigned long long)from[i], (unsigned long long)missing.g[i].seq);
	put_note(note, size, "gap: purged from the source's binary log before it was archived: ",
	         ha_buf_cstr(&b), ", ", missing.n);
	ha_buf_free(&b);
	return 1;
}

static int on_outside(struct run *r, const struct ha_bl_event *ev, const uint8_t *raw, char *next,
                      size_t next_size, struct ha_err *e)
{
	struct slicer *sl = &r->sl;
	if (ev->type == HA_BL_FD) {
		int c = ha_bl_fd_checksum(ev);
		if (c < 0)
			return ha_err_set(e, HA_EPROTO, "unsupported binlog checksum algorithm");
		/* a new file: the slice carries one Format_description */
		if (sl->open && slice_seal(sl, e) != 0)
			return HA_EIO;
		uint8_t *copy = malloc(ev->size);
		if (copy == NULL)
			return ha_err_set(e, HA_EIO, "out of memory");
		memcpy(copy, raw, ev->size);
		free(sl->fd);
		sl->fd = copy;
		sl->fd_len = ev->size;
		r->checksum = (unsigned)c;
		r->have_fd = true;
	} else if (ev->type == HA_BL_GTID_LIST && r->by_file && !r->start_known) {
		struct ha_gtid_pos gl;
		if (ha_bl_gtid_list(ev, &gl) != 0)
			return ha_err_set(e, HA_EPROTO, "malformed Gtid_list event");
		if (r->have_head) {
			/* against where the archive continues: the head's end, or where it and
			 * this source agree when the head's last transactions are errant */
			gap_note(&gl, &r->from, sl->gap, sizeof(sl->gap));
			/* the file may begin before that: those transactions are archived */
			struct ha_gtid_pos both;
			if (ha_gtid_merge(&r->from, &gl, &both) != 0)
				return ha_err_set(e, HA_EINVAL, "too many domains");
			sl->start = both;
		} else {
			sl->start = gl;
		}
		sl->end = sl->start;
		r->start_known = true;
	} else if (ev->type == HA_BL_ROTATE && ev->ts != 0) {
		if (ha_bl_rotate_name(ev, next, next_size) != 0)
			return ha_err_set(e, HA_EPROTO, "malformed Rotate event");
	}
	return 0;
}

/* Whether transaction g is archived already (at or below the slice's start position). */
static bool archived(const struct slicer *sl, const struct ha_gtid *g)
{
	for (size_t i = 0; i < sl->start.n; i++)
		if (sl->start.g[i].domain == g->domain)
			return g->seq <= sl->start.g[i].seq;
	return false;
}

static int on_event(struct run *r, const struct ha_bl_event *ev, const uint8_t *raw, char *next,
                    size_t next_size, struct ha_err *e)
{
	struct slicer *sl = &r->sl;
	enum ha_bl_role role;
	if (ha_bl_split_feed(&r->split, ev, &role) != 0)
		return ha_err_set(e, HA_EPROTO, "malformed GTID event");
	if (r->split.closed && sl->open && !r->skipping) {
		/* a new transaction: the open one ended with the event before */
		struct ha_bl_split prev = {.gtid = r->split.closed_gtid, .ts = r->split.closed_ts};
		int rc = tx_done(sl, &prev, e);
		if (rc != 0)
			return rc;
	}
	if (r->split.cut && sl->open) {
		/* a file boundary inside a transaction: it was never written whole (its server
		 * died); what was appended of it goes. A slice that had to write part of it to a
		 * chunk holds nothing else (append seals before that). */
		if (sl->flushed_in_tx)
			slice_drop(sl);
		else
			sl->plain_len = sl->tx_mark;
	}
	if (role == HA_BL_OUTSIDE)
		return on_outside(r, ev, raw, next, next_size, e);
	if (!r->have_fd || !r->start_known)
		return ha_err_set(e, HA_EPROTO, "a transaction before the file's header events");
	if (role == HA_BL_TX_START) {
		r->skipping = archived(sl, &r->split.gtid);
		if (r->skipping)
			return 0;
		if (sl->open && sl->s.txns > 0 &&
		    ha_now_ms() - sl->first_done_ms >= r->sp->seal_ms && slice_seal(sl, e) != 0)
			return HA_EIO;
		if (!sl->open) {
			sl->s.server_id = r->server_id;
			int rc = slice_begin(sl, e);
			if (rc != 0)
				return rc;
		}
	}
	if (r->skipping)
		return 0;
	if (!sl->open)
		return 0; /* the rest of a transaction whose start came before this stream */
	int rc = append(sl, raw, ev->size, e);
	if (rc == 0 && role == HA_BL_TX_END)
		rc = tx_done(sl, &r->split, e);
	return rc;
}

/* One event of the stream; FD events are read without a checksum length (they carry the
 * algorithm themselves). */
static int next_event(struct run *r, const uint8_t *p, size_t n, struct ha_bl_event *ev)
{
	int k = ha_bl_event(p, n, r->have_fd ? r->checksum : 0, ev);
	if (k == 1 && ev->type == HA_BL_FD && r->have_fd && r->checksum)
		k = ha_bl_event(p, n, 0, ev);
	return k;
}

static bool cancelled(const struct run *r)
{
	return r->sp->cancel && atomic_load(r->sp->cancel);
}

/* Moves to the next file once mariadb-binlog has created it: 1 moved, 0 not yet. */
static int next_file(struct run *r, char *file, char *next, int *fd, struct ha_buf *buf,
                     bool *magic, struct ha_err *e)
{
	char path[PATH_MAX + FILE_NAME_MAX + 2];
	snprintf(path, sizeof(path), "%s/%s", r->dir, next);
	if (access(path, F_OK) != 0)
		return 0;
	if (buf->len != 0)
		return ha_err_set(e, HA_EPROTO, "%s ends inside an event", file);
	close(*fd);
	*fd = -1;
	snprintf(path, sizeof(path), "%s/%s", r->dir, file);
	unlink(path); /* read whole: its transactions are in slices or in the open one */
	snprintf(file, FILE_NAME_MAX, "%s", next);
	next[0] = '\0';
	*magic = false;
	return 1;
}

/* The events in buf: each handled, the rest kept for more bytes. */
static int parse(struct run *r, struct ha_buf *buf, bool *magic, char *next, struct ha_err *e)
{
	size_t at = 0;
	const uint8_t *d = (const uint8_t *)buf->data;
	if (!*magic) {
		if (buf->len < HA_BL_MAGIC_LEN)
			return 0;
		if (memcmp(d, ha_bl_magic, HA_BL_MAGIC_LEN) != 0)
			return ha_err_set(e, HA_EPROTO,
			                  "mariadb-binlog wrote something else than a "
			                  "binary log");
		*magic = true;
		at = HA_BL_MAGIC_LEN;
	}
	int rc = 0;
	while (rc == 0) {
		struct ha_bl_event ev;
		int k = next_event(r, d + at, buf->len - at, &ev);
		if (k == 0)
			break;
		if (k < 0)
			return ha_err_set(e, HA_EPROTO, "a malformed event in the stream");
		rc = on_event(r, &ev, d + at, next, FILE_NAME_MAX, e);
		at += ev.size;
	}
	ha_buf_consume(buf, at);
	return rc;
}

static bool prune_due(const struct run *r)
{
	return r->sp->keep_from && r->sp->prune_ms && ha_now_ms() >= r->prune_at;
}

/* Retention, between slices (mariadb-binlog keeps writing its files meanwhile). */
static void prune(struct run *r)
{
	r->prune_at = ha_now_ms() + r->sp->prune_ms;
	char keep[HA_GTID_TEXT_MAX];
	r->sp->keep_from(r->sp->arg, keep, sizeof(keep));
	unsigned removed = 0;
	struct ha_err e = {0};
	uint64_t t0 = ha_now_ms();
	if (ha_archive_prune(r->sp->store, r->sp->master_key, r->sl.head, keep, &removed, &e) != 0)
		ha_warn("archive-prune-failed", "error=\"%s\"", e.msg);
	else if (removed)
		ha_info("archive-pruned", "slices=%u ms=%llu", removed,
		        (unsigned long long)(ha_now_ms() - t0));
}

/* Reads mariadb-binlog's files as they grow, until it ends (then every byte it wrote is read)
 * or the run is cancelled. */
static int tail(struct run *r, const char *start_file, struct ha_err *e)
{
	char file[FILE_NAME_MAX] = "", next[FILE_NAME_MAX] = "";
	snprintf(file, sizeof(file), "%s", start_file ? start_file : "");
	int fd = -1;
	struct ha_buf buf = HA_BUF_INIT;
	uint8_t *chunk = malloc(READ_MAX);
	bool magic = false, exited = false;
	int rc = chunk ? 0 : ha_err_set(e, HA_EIO, "out of memory");
	while (rc == 0 && !cancelled(r)) {
		if (fd < 0) {
			if (!file[0])
				first_file(r->dir, file, sizeof(file));
			char path[PATH_MAX + FILE_NAME_MAX + 2];
			snprintf(path, sizeof(path), "%s/%s", r->dir, file);
			if (file[0])
				fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				snprintf(r->sl.source, sizeof(r->sl.source), "%s", file);
				drop_cnf(r); /* it connected: it has read it */
			}
		}
		ssize_t k = fd >= 0 ? read(fd, chunk, READ_MAX) : 0;
		if (k > 0) {
			if (r->sp->read_ms)
				atomic_store(r->sp->read_ms, ha_now_ms());
			ha_buf_append(&buf, chunk, (size_t)k);
			rc = ha_buf_failed(&buf) ? ha_err_set(e, HA_EIO, "out of memory")
			                         : parse(r, &buf, &magic, next, e);
			continue;
		}
		if (k < 0) {
			rc = ha_err_set(e, HA_EIO, "read %s: %s", file, strerror(errno));
			break;
		}
		if (next[0] && fd >= 0) {
			int m = next_file(r, file, next, &fd, &buf, &magic, e);
			if (m < 0)
				rc = m;
			if (m != 0)
				continue;
		}
		if (exited)
			break;
		int status;
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			drop_cnf(r);
			r->pid = 0;
			if (r->sp->child_pid) /* never signalled again: its pid may be reused */
				atomic_store(r->sp->child_pid, 0);
			exited = true;
			continue; /* one more pass: what it wrote before it ended */
		}
		struct slicer *sl = &r->sl;
		if (!r->split.in_tx && sl->open && sl->s.txns > 0 &&
		    ha_now_ms() - sl->first_done_ms >= r->sp->seal_ms)
			rc = slice_seal(sl, e);
		else if (!r->split.in_tx && prune_due(r))
			prune(r);
		else
			usleep(POLL_MS * 1000);
	}
	if (fd >= 0)
		close(fd);
	ha_buf_free(&buf);
	free(chunk);
	return rc;
}

/* Where the run starts: after the head when the source has it, after where the two agree when
 * it lacks the head's last transactions (errant), or at the source's oldest file. */
static int plan_start(struct run *r, const struct ha_slice *head,
                      const struct ha_binlog_source *src, struct ha_gtid_pos *from,
                      struct ha_err *e)
{
	struct slicer *sl = &r->sl;
	if (!r->have_head) {
		r->by_file = true;
		return 0;
	}
	*from = r->head_end;
	bool all = true;
	for (size_t i = 0; i < r->head_end.n; i++)
		if (ha_gtid_state_has(src->binlog_state, &r->head_end.g[i]) != 1)
			all = false;
	if (!all) {
		int rc = find_fork(r->sp, head, &r->head_end, src->binlog_state, from, sl->errant,
		                   sizeof(sl->errant), e);
		if (rc != 0)
			return rc;
		ha_gtid_format(from, sl->fork, sizeof(sl->fork));
		ha_warn("archive-errant", "source=%s:%u %s", r->sp->host, r->sp->port, sl->errant);
	}
	sl->start = *from;
	sl->end = *from;
	r->from = *from;
	r->start_known = true;
	return 0;
}

static int stream(struct run *r, const struct ha_binlog_source *src, const struct ha_slice *head,
                  struct ha_err *e)
{
	struct ha_gtid_pos from;
	int rc = plan_start(r, head, src, &from, e);
	if (rc != 0)
		return rc;
	if (from.n == 0 && !r->by_file)
		r->by_file = true; /* nothing to start after: the oldest file */
	rc = start_child(r, src->first_file, r->by_file ? NULL : &from, e);
	if (rc == 0)
		rc = tail(r, r->by_file ? src->first_file : NULL, e);
	if (rc != 0 || cancelled(r))
		return rc;
	char why[1024];
	child_error(r, why, sizeof(why));
	if (!r->by_file && !r->have_fd &&
	    (strstr(why, "1236") || strstr(why, "Could not find GTID state") ||
	     strstr(why, "purged"))) {
		/* the position is not in the source's binary log any more (purged before it was
		 * archived): from its oldest file, with the gap said */
		ha_warn("archive-gap", "source=%s:%u error=\"%s\"", r->sp->host, r->sp->port, why);
		r->by_file = true;
		r->start_known = false;
		ha_rm_rf(r->dir);
		ha_mkdir_p(r->dir, 0700);
		rc = start_child(r, src->first_file, NULL, e);
		if (rc == 0)
			rc = tail(r, src->first_file, e);
		if (rc != 0 || cancelled(r))
			return rc;
		child_error(r, why, sizeof(why));
	}
	/* the source went away: what is complete is sealed, the rest streams again next time */
	rc = slice_seal(&r->sl, e);
	if (rc != 0)
		return rc;
	return ha_err_set(e, HA_EDB, "the binlog stream from %s:%u ended: %s", r->sp->host,
	                  r->sp->port, why[0] ? why : "mariadb-binlog exited");
}

static int prepare(struct run *r, struct ha_slice *head, struct ha_err *e)
{
	struct ha_archive_spec *sp = r->sp;
	struct slicer *sl = &r->sl;
	sl->sp = sp;
	if ((size_t)snprintf(r->dir, sizeof(r->dir), "%s/binlog", sp->work_dir) >= sizeof(r->dir))
		return ha_err_set(e, HA_EINVAL, "%s: path too long", sp->work_dir);
	snprintf(r->cnf, sizeof(r->cnf), "%s/client.cnf", sp->work_dir);
	snprintf(r->log, sizeof(r->log), "%s/mariadb-binlog.log", sp->work_dir);
	ha_rm_rf(sp->work_dir);
	if (ha_mkdir_p(r->dir, 0700) != 0)
		return ha_err_set(e, HA_EIO, "create %s: %s", r->dir, strerror(errno));
	sl->zc = ha_chunk_ctx_new();
	sl->plain = malloc(HA_CHUNK_MAX);
	sl->sealed = malloc(ha_chunk_bound(HA_CHUNK_MAX));
	if (!sl->plain || !sl->sealed)
		return ha_err_set(e, HA_EIO, "out of memory");
	snprintf(sl->head, sizeof(sl->head), "%s", sp->head ? sp->head : "");
	sl->head_seq = sp->head_seq;
	r->have_head = sl->head[0] != '\0';
	if (!r->have_head)
		return 0;
	int rc = ha_archive_slice(sp->store, sp->master_key, sl->head, head, e);
	if (rc != 0)
		return rc;
	if (head->seq != sp->head_seq)
		return ha_err_set(
		    e, HA_EPROTO, "slice %s: number %llu, the replicated head says %llu",
		    head->name, (unsigned long long)head->seq, (unsigned long long)sp->head_seq);
	if (ha_gtid_parse(head->end, &r->head_end, e) != 0)
		return HA_EPROTO;
	return 0;
}

int ha_archive_run(struct ha_archive_spec *sp, struct ha_err *e)
{
	struct run r = {.sp = sp};
	struct ha_slice head = {0};
	struct ha_binlog_source src = {0};
	int rc = prepare(&r, &head, e);
	if (rc == 0) {
		struct ha_db_where w = {.host = sp->host,
		                        .port = sp->port,
		                        .user = sp->user,
		                        .password = sp->password,
		                        .timeout_ms = 5000,
		                        .statement_ms = 10000};
		char why[512];
		rc = ha_db_binlog_source(&w, &src, why, sizeof(why));
		if (rc != 0)
			rc = ha_err_set(e, HA_EDB, "the archive's source %s:%u: %s", sp->host,
			                sp->port, why);
	}
	r.server_id = src.server_id;
	if (rc == 0)
		rc = stream(&r, &src, &head, e);
	stop_child(&r);
	slice_drop(&r.sl);
	ha_slice_free(&head);
	ha_db_binlog_source_free(&src);
	ha_chunk_ctx_free(r.sl.zc);
	free(r.sl.plain);
	free(r.sl.sealed);
	free(r.sl.fd);
	ha_wipe(r.sl.key, sizeof(r.sl.key));
	ha_rm_rf(sp->work_dir);
	return rc;
}
