/* The S3 store (store.h): one object per chunk, the manifest written last, staging marked by
 * an empty object per node and name. Why one object per chunk and not multipart: a chunk is
 * at most 8 MiB + 24 bytes, far under S3's 5 GiB for one PUT, so a backup of any size needs
 * no upload id, no 10,000-part cap, no incomplete upload that can leak (and be billed) when
 * a node dies, and a retry re-sends one chunk. Every object is written once (versioned and
 * Object-Lock buckets keep no second version). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../config.h"
#include "s3.h"
#include "store.h"

#define MANIFEST_MAX (64u << 20) /* as the directory store reads them */

struct s3_store {
	struct ha_s3 *cli;
	char prefix[HA_S3_PREFIX_MAX + 1]; /* "" or "PREFIX/" */
	char kind[16];
	char bucket[64];
};

static struct s3_store *impl(struct ha_store *s)
{
	return s->impl;
}

/* Names become keys: only what ha_name_valid accepts (the directory store's rule, so that a
 * name from a listing or a manifest never makes a key outside its place). */
static int check_name(const char *what, const char *name, struct ha_err *e)
{
	if (ha_name_valid(name))
		return 0;
	return ha_err_set(e, HA_EINVAL, "%s '%.80s' is not a name (%s): refused as a key", what,
	                  name ? name : "(null)", HA_NAME_RULE);
}

static int check_names(const char *node, const char *name, struct ha_err *e)
{
	return (node && check_name("node", node, e)) || (name && check_name("object", name, e))
	           ? HA_EINVAL
	           : 0;
}

/* PREFIX/ + the rest; HA_EINVAL when it would pass S3's 1024 bytes (never cut) */
static int key(const struct s3_store *st, char out[HA_S3_KEY_MAX + 1], struct ha_err *e,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int key(const struct s3_store *st, char out[HA_S3_KEY_MAX + 1], struct ha_err *e,
               const char *fmt, ...)
{
	size_t p = strlen(st->prefix);
	memcpy(out, st->prefix, p + 1);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + p, HA_S3_KEY_MAX + 1 - p, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= HA_S3_KEY_MAX + 1 - p)
		return ha_err_set(e, HA_EINVAL, "key too long: %.200s...", out);
	return 0;
}

static int manifest_key(const struct s3_store *st, const char *name, char *out, struct ha_err *e)
{
	if (check_names(NULL, name, e))
		return HA_EINVAL;
	return key(st, out, e, "%s/%s.manifest", st->kind, name);
}

static int marker_key(const struct s3_store *st, const char *node, const char *name, char *out,
                      struct ha_err *e)
{
	if (check_names(node, name, e))
		return HA_EINVAL;
	return key(st, out, e, "%s-partial/%s/%s", st->kind, node, name);
}

/* ---- deleting what is under a prefix, a page (up to 1,000 keys) per request ---- */

struct batch {
	char *keys[1000];
	size_t n;
};

/* Every object under dir. Objects the server refuses to delete (Object Lock) are counted in
 * *refused and skipped; any other failure stops and is returned. */
static int delete_under(struct ha_s3 *cli, const char *dir, size_t *refused, struct ha_err *e)
{
	char *token = NULL;
	struct ha_s3_list_cursor cur = HA_S3_LIST_CURSOR_INIT;
	int rc = 0;
	*refused = 0;
	for (;;) {
		struct ha_s3_list_page p;
		if ((rc = ha_s3_list_page(cli, dir, NULL, token, 1000, &p, e)) != 0)
			break;
		if ((rc = ha_s3_list_forward(&cur, &p, e)) != 0) {
			ha_s3_list_page_free(&p);
			break;
		}
		/* only what is under dir: a server that ignores the prefix (and lists the whole
		 * bucket) must not make a begin or an abort delete every backup */
		size_t dl = strlen(dir);
		for (size_t i = 0; rc == 0 && i < p.n_objs; i++)
			if (strncmp(p.objs[i].key, dir, dl) != 0)
				rc = ha_err_set(
				    e, HA_EPROTO,
				    "the listing of %s holds '%.200s', which is "
				    "not under it: nothing deleted (the server ignores the "
				    "prefix?)",
				    dir, p.objs[i].key);
		if (rc) {
			ha_s3_list_page_free(&p);
			break;
		}
		struct batch b = {.n = 0};
		for (size_t i = 0; i < p.n_objs && b.n < 1000; i++)
			b.keys[b.n++] = p.objs[i].key;
		size_t failed = 0;
		struct ha_err de = {0};
		rc = ha_s3_delete_many(cli, b.keys, b.n, &failed, &de);
		if (failed)
			ha_warn("store-s3-delete-refused", "objects=%zu error=\"%s\"", failed,
			        de.msg);
		*refused += failed;
		if (rc)
			*e = de;
		free(token);
		token = rc == 0 && p.truncated ? p.next_token : NULL;
		if (token)
			p.next_token = NULL;
		ha_s3_list_page_free(&p);
		if (token == NULL)
			break;
	}
	free(token);
	ha_s3_list_cursor_free(&cur);
	return rc;
}

static int data_dir(const struct s3_store *st, const char *name, char *out, struct ha_err *e)
{
	if (check_names(NULL, name, e))
		return HA_EINVAL;
	return key(st, out, e, "%s-data/%s/", st->kind, name);
}

static int staged_elsewhere(struct ha_store *s, const char *node, const char *name, char *other,
                            struct ha_err *e);

/* ---- the operations ---- */

static int s3_begin(struct ha_store *s, const char *node, const char *name, struct ha_err *e)
{
	struct s3_store *st = impl(s);
	char mk[HA_S3_KEY_MAX + 1], man[HA_S3_KEY_MAX + 1], dir[HA_S3_KEY_MAX + 1];
	if (marker_key(st, node, name, mk, e) || manifest_key(st, name, man, e) ||
	    data_dir(st, name, dir, e))
		return HA_EINVAL;
	bool exists = false;
	int rc = ha_s3_head(st->cli, man, &exists, NULL, e);
	if (rc == 0 && exists)
		return ha_err_set(e, HA_EIO, "s3://%s/%s exists already", st->bucket, man);
	/* chunks have one place per name, not one per node: a name another node stages is
	 * refused (names are unique: backup ids, slices' random tags; this is a safeguard) */
	char other[64] = "";
	if (rc == 0)
		rc = staged_elsewhere(s, node, name, other, e);
	if (rc == 0 && other[0]) {
		char omk[HA_S3_KEY_MAX + 1];
		if (marker_key(st, other, name, omk, e))
			return HA_EINVAL;
		return ha_err_set(e, HA_EIO,
		                  "%s: %s is being staged by %s already (an agent that died "
		                  "midway drops its staging when it runs again); HINT: if %s is "
		                  "gone for good, delete s3://%s/%s",
		                  s->root, name, other, other, st->bucket, omk);
	}
	/* what an earlier attempt at this name left: chunks are written once, never over */
	size_t refused = 0;
	if (rc == 0)
		rc = delete_under(st->cli, dir, &refused, e);
	if (rc == 0 && refused)
		rc = ha_err_set(e, HA_EIO,
		                "%zu objects under %s are left from an earlier attempt "
		                "and cannot be deleted (Object Lock?): use another name",
		                refused, dir);
	return rc ? rc : ha_s3_put(st->cli, mk, "", 0, e);
}

static int s3_put_chunk(struct ha_store *s, const char *node, const char *name, uint64_t index,
                        const uint8_t *data, size_t len, struct ha_err *e)
{
	struct s3_store *st = impl(s);
	char k[HA_S3_KEY_MAX + 1];
	if (check_names(node, name, e) ||
	    key(st, k, e, "%s-data/%s/chunks/%08llu", st->kind, name, (unsigned long long)index))
		return HA_EINVAL;
	return ha_s3_put(st->cli, k, data, len, e);
}

/* Committed = the manifest exists and the marker does not; the marker goes last, so a commit
 * cut short anywhere leaves a name that list() does not show and abort or clean removes. */
static int s3_commit(struct ha_store *s, const char *node, const char *name, const char *manifest,
                     size_t len, struct ha_err *e)
{
	struct s3_store *st = impl(s);
	char mk[HA_S3_KEY_MAX + 1], man[HA_S3_KEY_MAX + 1];
	if (marker_key(st, node, name, mk, e) || manifest_key(st, name, man, e))
		return HA_EINVAL;
	bool staged = false, exists = false;
	int rc = ha_s3_head(st->cli, mk, &staged, NULL, e);
	if (rc == 0 && !staged)
		return ha_err_set(e, HA_EIO,
		                  "%s: %s's staging of %s is gone (aborted by another node?): not "
		                  "committed",
		                  s->root, node, name);
	if (rc == 0)
		rc = ha_s3_head(st->cli, man, &exists, NULL, e);
	if (rc == 0 && exists)
		return ha_err_set(e, HA_EIO, "s3://%s/%s exists already: never overwritten",
		                  st->bucket, man);
	if (rc == 0)
		rc = ha_s3_put(st->cli, man, manifest, len, e);
	if (rc == 0)
		rc = ha_s3_delete(st->cli, mk, e);
	return rc;
}

static void s3_abort(struct ha_store *s, const char *node, const char *name)
{
	struct s3_store *st = impl(s);
	char mk[HA_S3_KEY_MAX + 1], man[HA_S3_KEY_MAX + 1], dir[HA_S3_KEY_MAX + 1];
	struct ha_err e = {0};
	if (marker_key(st, node, name, mk, &e) || manifest_key(st, name, man, &e) ||
	    data_dir(st, name, dir, &e))
		return;
	/* only what node staged and did not commit: its marker says so */
	bool staged = false;
	if (ha_s3_head(st->cli, mk, &staged, NULL, &e) != 0) {
		ha_warn("store-s3-abort-failed", "name=%s node=%s error=\"%s\"", name, node, e.msg);
		return;
	}
	if (!staged)
		return;
	/* a failed commit's manifest first (so the name cannot be read as whole), then the
	 * chunks, the marker last (so that a cut-short abort is found again by clean) */
	size_t refused = 0;
	int rc = ha_s3_delete(st->cli, man, &e);
	if (rc == 0)
		rc = delete_under(st->cli, dir, &refused, &e);
	if (rc == 0 && refused == 0)
		rc = ha_s3_delete(st->cli, mk, &e);
	if (rc)
		ha_warn("store-s3-abort-failed", "name=%s node=%s error=\"%s\"", name, node, e.msg);
	else if (refused)
		ha_warn("store-s3-abort-incomplete",
		        "name=%s node=%s refused=%zu why=\"the bucket refuses deletion (Object "
		        "Lock?): the objects stay until their retention ends\"",
		        name, node, refused);
}

static int s3_get_manifest(struct ha_store *s, const char *name, char **text, size_t *len,
                           struct ha_err *e)
{
	struct s3_store *st = impl(s);
	char man[HA_S3_KEY_MAX + 1];
	*text = NULL;
	if (manifest_key(st, name, man, e))
		return HA_EINVAL;
	return ha_s3_get_alloc(st->cli, man, MANIFEST_MAX, text, len, e);
}

static int s3_get_chunk(struct ha_store *s, const char *name, uint64_t index, uint8_t *buf,
                        size_t cap, size_t *len, struct ha_err *e)
{
	struct s3_store *st = impl(s);
	char k[HA_S3_KEY_MAX + 1];
	if (check_names(NULL, name, e) ||
	    key(st, k, e, "%s-data/%s/chunks/%08llu", st->kind, name, (unsigned long long)index))
		return HA_EINVAL;
	return ha_s3_get(st->cli, k, buf, cap, len, e);
}

/* The manifest first: the name stops being listed at once; then its chunks. A removal cut
 * short leaves chunks no manifest names (removed again by the next remove of the name). */
static int s3_remove(struct ha_store *s, const char *name, struct ha_err *e)
{
	struct s3_store *st = impl(s);
	char man[HA_S3_KEY_MAX + 1], dir[HA_S3_KEY_MAX + 1];
	if (manifest_key(st, name, man, e) || data_dir(st, name, dir, e))
		return HA_EINVAL;
	size_t refused = 0;
	int rc = ha_s3_delete(st->cli, man, e);
	if (rc == 0)
		rc = delete_under(st->cli, dir, &refused, e);
	if (rc == 0 && refused)
		rc = ha_err_set(e, HA_EIO, "%s: %zu objects of %s cannot be deleted (Object Lock?)",
		                s->root, refused, name);
	return rc;
}

/* ---- listings ---- */

struct names {
	char **v;
	size_t n, cap;
	const char *dir; /* the listed prefix */
	const char *suffix;
	bool nested;      /* KIND-partial/NODE/NAME: take NAME */
	const char *want; /* nested: take NODE instead, of the keys whose NAME is this */
};

static int add_name(struct names *ns, const char *name, size_t len)
{
	if (ns->n == ns->cap) {
		size_t ncap = ns->cap ? ns->cap * 2 : 64;
		char **grown = realloc(ns->v, ncap * sizeof(*grown));
		if (grown == NULL)
			return HA_ENOMEM;
		ns->v = grown;
		ns->cap = ncap;
	}
	if ((ns->v[ns->n] = strndup(name, len)) == NULL)
		return HA_ENOMEM;
	ns->n++;
	return 0;
}

/* keys DIR NAME SUFFIX (or DIR NODE/NAME): what is not one of ours is left out, never named */
static int on_key(void *arg, const char *k, uint64_t size, bool is_prefix)
{
	struct names *ns = arg;
	(void)size;
	size_t dl = strlen(ns->dir), sl = strlen(ns->suffix);
	if (is_prefix || strncmp(k, ns->dir, dl) != 0)
		return 0;
	const char *rest = k + dl;
	if (ns->nested) {
		const char *slash = strchr(rest, '/');
		if (slash == NULL)
			return 0;
		if (ns->want) { /* NODE of NODE/WANT */
			size_t nl = (size_t)(slash - rest);
			char node[64];
			if (strcmp(slash + 1, ns->want) != 0 || nl >= sizeof(node))
				return 0;
			memcpy(node, rest, nl);
			node[nl] = '\0';
			return ha_name_valid(node) ? add_name(ns, node, nl) : 0;
		}
		rest = slash + 1;
	}
	size_t len = strlen(rest);
	if (len <= sl || strcmp(rest + len - sl, ns->suffix) != 0)
		return 0;
	char name[64];
	if (len - sl >= sizeof(name))
		return 0;
	memcpy(name, rest, len - sl);
	name[len - sl] = '\0';
	return ha_name_valid(name) ? add_name(ns, name, len - sl) : 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool staged(const struct names *partial, const char *name)
{
	return partial->n &&
	       bsearch(&name, partial->v, partial->n, sizeof(*partial->v), by_name) != NULL;
}

/* Manifests, less the names some node still stages (a commit under way or cut short). */
static int s3_list(struct ha_store *s, char ***out, size_t *n, struct ha_err *e)
{
	struct s3_store *st = impl(s);
	char dir[HA_S3_KEY_MAX + 1], pdir[HA_S3_KEY_MAX + 1];
	*out = NULL;
	*n = 0;
	if (key(st, dir, e, "%s/", st->kind) || key(st, pdir, e, "%s-partial/", st->kind))
		return HA_EINVAL;
	struct names all = {.dir = dir, .suffix = ".manifest"};
	struct names partial = {.dir = pdir, .suffix = "", .nested = true};
	int rc = ha_s3_list(st->cli, dir, "/", on_key, &all, e);
	if (rc == 0)
		rc = ha_s3_list(st->cli, pdir, NULL, on_key, &partial, e);
	if (rc == HA_ENOMEM)
		ha_err_set(e, HA_ENOMEM, "out of memory");
	if (partial.n)
		qsort(partial.v, partial.n, sizeof(*partial.v), by_name);
	size_t kept = 0;
	for (size_t i = 0; rc == 0 && i < all.n; i++) {
		if (staged(&partial, all.v[i]))
			free(all.v[i]);
		else
			all.v[kept++] = all.v[i];
	}
	ha_store_names_free(partial.v, partial.n);
	if (rc) {
		ha_store_names_free(all.v, all.n);
		return rc;
	}
	if (kept)
		qsort(all.v, kept, sizeof(*all.v), by_name);
	*out = all.v;
	*n = kept;
	return 0;
}

/* other = a node other than node with a marker for name ("" when none) */
static int staged_elsewhere(struct ha_store *s, const char *node, const char *name, char *other,
                            struct ha_err *e)
{
	struct s3_store *st = impl(s);
	char pdir[HA_S3_KEY_MAX + 1];
	if (key(st, pdir, e, "%s-partial/", st->kind))
		return HA_EINVAL;
	struct names nodes = {.dir = pdir, .suffix = "", .nested = true, .want = name};
	int rc = ha_s3_list(st->cli, pdir, NULL, on_key, &nodes, e);
	if (rc == HA_ENOMEM)
		rc = ha_err_set(e, HA_ENOMEM, "out of memory");
	other[0] = '\0';
	for (size_t i = 0; rc == 0 && i < nodes.n; i++)
		if (strcmp(nodes.v[i], node) != 0)
			snprintf(other, 64, "%s", nodes.v[i]);
	ha_store_names_free(nodes.v, nodes.n);
	return rc;
}

static void s3_clean(struct ha_store *s, const char *node)
{
	struct s3_store *st = impl(s);
	char pdir[HA_S3_KEY_MAX + 1];
	struct ha_err e = {0};
	if (check_names(node, NULL, &e) || key(st, pdir, &e, "%s-partial/%s/", st->kind, node))
		return;
	struct names staged_names = {.dir = pdir, .suffix = ""};
	int rc = ha_s3_list(st->cli, pdir, NULL, on_key, &staged_names, &e);
	if (rc == HA_ENOMEM)
		ha_err_set(&e, HA_ENOMEM, "out of memory");
	if (rc)
		ha_warn("store-s3-clean-failed", "node=%s error=\"%s\"", node, e.msg);
	for (size_t i = 0; i < staged_names.n; i++)
		s3_abort(s, node, staged_names.v[i]);
	ha_store_names_free(staged_names.v, staged_names.n);
}

static void s3_destroy(struct ha_store *s)
{
	struct s3_store *st = impl(s);
	if (st == NULL)
		return;
	ha_s3_close(st->cli);
	free(st);
	s->impl = NULL;
}

static const struct ha_store_ops s3_ops = {
    .begin = s3_begin,
    .put_chunk = s3_put_chunk,
    .commit = s3_commit,
    .abort = s3_abort,
    .get_manifest = s3_get_manifest,
    .get_chunk = s3_get_chunk,
    .remove = s3_remove,
    .clean = s3_clean,
    .list = s3_list,
    .destroy = s3_destroy,
};

struct ha_s3 *ha_store_s3_client(struct ha_store *s)
{
	return s->ops == &s3_ops ? impl(s)->cli : NULL;
}

int ha_store_s3_init(struct ha_store *s, const struct ha_s3_conf *c, const char *kind,
                     struct ha_err *e)
{
	size_t kl = strlen(kind);
	if (kl == 0 || kl >= sizeof(s->kind) || strspn(kind, "abcdefghijklmnopqrstuvwxyz") != kl)
		return ha_err_set(e, HA_EINVAL, "store kind '%.40s': lowercase letters only", kind);
	struct s3_store *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	snprintf(st->prefix, sizeof(st->prefix), "%s%s", c->prefix, c->prefix[0] ? "/" : "");
	snprintf(st->kind, sizeof(st->kind), "%s", kind);
	snprintf(st->bucket, sizeof(st->bucket), "%s", c->bucket);
	int rc = ha_s3_open(c, &st->cli, e);
	if (rc) {
		free(st);
		return rc;
	}
	memset(s, 0, sizeof(*s));
	s->ops = &s3_ops;
	s->impl = st;
	snprintf(s->root, sizeof(s->root), "s3://%s/%s", c->bucket, c->prefix);
	snprintf(s->kind, sizeof(s->kind), "%s", kind);
	snprintf(s->staging, sizeof(s->staging), "%s-partial", kind);
	return 0;
}
