#include "copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "chunk.h"
#include "manifest.h"
#include "slice.h"

static struct ha_store *kind_of(struct ha_repos *rs, size_t i, bool archive)
{
	return archive ? &rs->r[i].archive : &rs->r[i].backups;
}

/* The chunk list of an authenticated manifest (a backup's or a slice's). */
struct chunks {
	size_t n;
	struct ha_chunk_ref *c; /* owned by m or s */
	struct ha_manifest m;
	struct ha_slice s;
	bool archive;
};

static int open_manifest(struct chunks *k, bool archive, const char *text, size_t len,
                         const uint8_t *master, struct ha_err *e)
{
	memset(k, 0, sizeof(*k));
	k->archive = archive;
	int rc = archive ? ha_slice_open(text, len, master, &k->s, e)
	                 : ha_manifest_open(text, len, master, &k->m, e);
	if (rc != 0)
		return rc;
	k->n = archive ? k->s.n_chunks : k->m.n_chunks;
	k->c = archive ? k->s.chunks : k->m.chunks;
	return 0;
}

static void close_manifest(struct chunks *k)
{
	if (k->archive)
		ha_slice_free(&k->s);
	else
		ha_manifest_free(&k->m);
}

/* The manifest of name from the first repository (other than dst) whose copy authenticates and,
 * when want_sha is given, is the one the catalog recorded. */
static int find_manifest(struct ha_repos *rs, bool archive, size_t dst, const char *name,
                         const uint8_t *master, const char *want_sha, char **text, size_t *len,
                         struct chunks *k, struct ha_err *e)
{
	struct ha_buf why = HA_BUF_INIT;
	for (size_t i = 0; i < rs->n; i++) {
		if (i == dst || rs->r[i].down)
			continue;
		struct ha_store *src = kind_of(rs, i, archive);
		struct ha_err pe = {0};
		char sha[65];
		if (src->ops->get_manifest(src, name, text, len, &pe) != 0) {
			ha_buf_printf(&why, "%s%s: %s", why.len ? "; " : "", rs->r[i].name, pe.msg);
			continue;
		}
		ha_sha256_hex((const uint8_t *)*text, *len, sha);
		if ((want_sha && want_sha[0] && strcmp(sha, want_sha) != 0) ||
		    open_manifest(k, archive, *text, *len, master, &pe) != 0) {
			ha_buf_printf(&why, "%s%s: its manifest %s", why.len ? "; " : "",
			              rs->r[i].name,
			              pe.msg[0] ? pe.msg : "is not the one the catalog recorded");
			free(*text);
			*text = NULL;
			continue;
		}
		ha_buf_free(&why);
		return 0;
	}
	int rc = ha_err_set(e, HA_EIO, "no intact copy of %s to copy from (%s)", name,
	                    why.len ? ha_buf_cstr(&why) : "no other repository");
	ha_buf_free(&why);
	return rc;
}

/* Chunk i, checked against its hash, from the first repository other than dst that has it
 * intact. */
static int fetch_chunk(struct ha_repos *rs, bool archive, size_t dst, const char *name, size_t i,
                       const struct ha_chunk_ref *ref, uint8_t *buf, size_t cap, size_t *got,
                       struct ha_err *e)
{
	for (size_t r = 0; r < rs->n; r++) {
		if (r == dst || rs->r[r].down)
			continue;
		struct ha_store *src = kind_of(rs, r, archive);
		struct ha_err pe = {0};
		char sha[65];
		if (src->ops->get_chunk(src, name, i, buf, cap, got, &pe) != 0 ||
		    *got != ref->stored)
			continue;
		ha_sha256_hex(buf, *got, sha);
		if (strcmp(sha, ref->sha) == 0)
			return 0;
		ha_warn("repository-chunk-damaged", "repository=%s object=%s chunk=%zu",
		        rs->r[r].name, name, i);
	}
	return ha_err_set(e, HA_EIO, "%s: chunk %zu: no intact copy in any other repository", name,
	                  i);
}

int ha_repo_has(struct ha_repos *rs, bool archive, size_t r, const char *name, const char *want_sha,
                struct ha_err *e)
{
	struct ha_store *st = kind_of(rs, r, archive);
	char *text = NULL;
	size_t len = 0;
	if (st->ops->get_manifest(st, name, &text, &len, e) != 0)
		return 0;
	char sha[65];
	ha_sha256_hex((const uint8_t *)text, len, sha);
	free(text);
	if (want_sha && want_sha[0] && strcmp(sha, want_sha) != 0)
		return ha_err_set(e, HA_EPROTO,
		                  "repository %s holds a %s whose manifest is not the one the "
		                  "catalog recorded: left alone (inspect it)",
		                  rs->r[r].name, name);
	return 1;
}

void ha_repo_copy_stager(const char *node, char out[HA_NAME_MAX])
{
	snprintf(out, HA_NAME_MAX, "%.*s.copy", HA_NAME_MAX - 6, node);
}

int ha_repo_copy(struct ha_repos *rs, bool archive, size_t dst, const char *name,
                 const char *of_node, const uint8_t *master, const char *want_sha,
                 atomic_int *cancel, struct ha_repo_copied *out, struct ha_err *e)
{
	memset(out, 0, sizeof(*out));
	char node[HA_NAME_MAX];
	ha_repo_copy_stager(of_node, node);
	char *text = NULL;
	size_t len = 0;
	struct chunks k;
	int rc = find_manifest(rs, archive, dst, name, master, want_sha, &text, &len, &k, e);
	if (rc != 0)
		return rc;
	struct ha_store *d = kind_of(rs, dst, archive);
	size_t cap = ha_chunk_bound(HA_CHUNK_MAX);
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		rc = ha_err_set(e, HA_ENOMEM, "out of memory");
	else
		rc = d->ops->begin(d, node, name, e);
	bool begun = rc == 0;
	for (size_t i = 0; rc == 0 && i < k.n; i++) {
		size_t got = 0;
		if (cancel && atomic_load(cancel)) {
			rc = ha_err_set(e, HA_EIO,
			                "cancelled (the agent stops or is no longer the leader)");
			break;
		}
		rc = fetch_chunk(rs, archive, dst, name, i, &k.c[i], buf, cap, &got, e);
		if (rc == 0)
			rc = d->ops->put_chunk(d, node, name, i, buf, got, e);
		if (rc == 0) {
			out->chunks++;
			out->bytes += got;
		}
	}
	if (rc == 0)
		rc = d->ops->commit(d, node, name, text, len, e);
	if (rc != 0 && begun)
		d->ops->abort(d, node, name);
	free(buf);
	free(text);
	close_manifest(&k);
	return rc ? ha_err_wrap(e, "copy of %s to repository %s", name, rs->r[dst].name) : 0;
}
