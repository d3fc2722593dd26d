#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "repos.h"
#include "s3.h"

/* ---- opening ---- */

/* An S3 repository's keys as written, each error with its file and line; then the offline
 * check (required keys, credentials loadable). */
static int s3_conf_of(const struct ha_repo_conf *rc, const char *path, struct ha_s3_conf *c,
                      struct ha_err *e)
{
	ha_s3_conf_init(c);
	for (unsigned i = 0; i < rc->n_kv; i++) {
		struct ha_err ke = {0};
		if (ha_s3_conf_set(c, rc->kv[i].key, rc->kv[i].value, &ke) != 0)
			return ha_err_set(e, HA_ECONFIG, "%s:%d: [repository %s] %s: %s", path,
			                  rc->kv[i].line, rc->name, rc->kv[i].key, ke.msg);
	}
	struct ha_err ce = {0};
	if (ha_s3_conf_check(c, &ce) != 0)
		return ha_err_set(e, HA_ECONFIG, "%s:%d: [repository %s]: %s", path, rc->line,
		                  rc->name, ce.msg);
	return 0;
}

int ha_repo_probe(const struct ha_config *cfg, size_t i, struct ha_err *e)
{
	const struct ha_repo_conf *rc = &cfg->repos[i];
	if (!strcmp(rc->type, "dir")) {
		struct stat sb;
		if (stat(rc->path, &sb) != 0)
			return ha_err_set(e, HA_EIO,
			                  "%s: %s (create it, or mount the share, on every node)",
			                  rc->path, strerror(errno));
		if (!S_ISDIR(sb.st_mode))
			return ha_err_set(e, HA_EIO, "%s is not a directory", rc->path);
		if (access(rc->path, W_OK | X_OK) != 0)
			return ha_err_set(e, HA_EIO, "%s: not writable by this user (%s)", rc->path,
			                  strerror(errno));
		return 0;
	}
	struct ha_s3_conf *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	int rc2 = s3_conf_of(rc, cfg->path, c, e);
	if (rc2 == 0)
		rc2 = ha_s3_probe(c, e);
	free(c);
	return rc2;
}

static int open_one(struct ha_repo *r, const struct ha_repo_conf *rc, const char *path,
                    struct ha_err *e)
{
	snprintf(r->name, sizeof(r->name), "%s", rc->name);
	snprintf(r->type, sizeof(r->type), "%s", rc->type);
	if (!strcmp(rc->type, "dir")) {
		snprintf(r->where, sizeof(r->where), "%s", rc->path);
		ha_store_dir_init_kind(&r->backups, rc->path, "backups");
		ha_store_dir_init_kind(&r->archive, rc->path, "archive");
		return 0;
	}
	struct ha_s3_conf *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	struct ha_err ce = {0};
	int rc2 = s3_conf_of(rc, path, c, e);
	if (rc2 == 0 && (ha_store_s3_init(&r->backups, c, "backups", &ce) != 0 ||
	                 ha_store_s3_init(&r->archive, c, "archive", &ce) != 0)) {
		ha_store_free(&r->backups);
		rc2 = ha_err_set(e, HA_ECONFIG, "%s:%d: [repository %s]: %s", path, rc->line,
		                 rc->name, ce.msg);
	}
	if (rc2 == 0)
		snprintf(r->where, sizeof(r->where), "%s", r->backups.root);
	free(c);
	return rc2;
}

static const struct ha_store_ops union_ops;

int ha_repos_open(struct ha_repos *rs, const struct ha_config *c, struct ha_err *e)
{
	memset(rs, 0, sizeof(*rs));
	for (unsigned i = 0; i < c->n_repos; i++) {
		if (open_one(&rs->r[i], &c->repos[i], c->path, e) != 0) {
			ha_repos_close(rs);
			return HA_ECONFIG;
		}
		rs->n++;
	}
	rs->u_backups = (struct ha_union){.rs = rs, .archive = false, .wrote = -1};
	rs->u_archive = (struct ha_union){.rs = rs, .archive = true, .wrote = -1};
	rs->all_backups = (struct ha_store){.ops = &union_ops, .impl = &rs->u_backups};
	rs->all_archive = (struct ha_store){.ops = &union_ops, .impl = &rs->u_archive};
	snprintf(rs->all_backups.kind, sizeof(rs->all_backups.kind), "backups");
	snprintf(rs->all_archive.kind, sizeof(rs->all_archive.kind), "archive");
	/* root: the first repository's, for the messages that name it */
	if (rs->n)
		snprintf(rs->all_backups.root, sizeof(rs->all_backups.root), "%s", rs->r[0].where);
	memcpy(rs->all_archive.root, rs->all_backups.root, sizeof(rs->all_archive.root));
	return 0;
}

void ha_repos_close(struct ha_repos *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		ha_store_free(&rs->r[i].backups);
		ha_store_free(&rs->r[i].archive);
	}
	rs->n = 0;
}

int ha_repos_index(const struct ha_repos *rs, const char *name)
{
	for (size_t i = 0; i < rs->n; i++)
		if (!strcmp(rs->r[i].name, name))
			return (int)i;
	return -1;
}

const char *ha_repos_written(const struct ha_store *s)
{
	const struct ha_union *u = s->impl;
	if (s->ops != &union_ops || u->wrote < 0)
		return NULL;
	return u->rs->r[u->wrote].name;
}

/* ---- the union store ---- */

const char *ha_repos_passed(const struct ha_store *s)
{
	const struct ha_union *u = s->impl;
	return s->ops == &union_ops ? u->passed : "";
}

static struct ha_union *un(struct ha_store *s)
{
	return s->impl;
}

static struct ha_store *part(struct ha_union *u, size_t i)
{
	return u->archive ? &u->rs->r[i].archive : &u->rs->r[i].backups;
}

/* The first repository whose staging area takes the object; each refusal is logged, and the
 * error says them all when none does. */
static int u_begin(struct ha_store *s, const char *node, const char *name, struct ha_err *e)
{
	struct ha_union *u = un(s);
	u->wrote = -1;
	u->passed[0] = '\0';
	struct ha_buf why = HA_BUF_INIT;
	for (size_t i = 0; i < u->rs->n; i++) {
		struct ha_err pe = {0};
		struct ha_store *p = part(u, i);
		if (u->clean_node[0] && strcmp(u->clean_node, node) == 0)
			p->ops->clean(p, node); /* the job's clean, deferred to here */
		if (p->ops->begin(p, node, name, &pe) == 0) {
			u->wrote = (int)i;
			u->clean_node[0] = '\0';
			snprintf(u->passed, sizeof(u->passed), "%s",
			         why.len ? ha_buf_cstr(&why) : "");
			ha_buf_free(&why);
			return 0;
		}
		ha_warn("repository-passed-over", "repository=%s object=%s error=\"%s\"",
		        u->rs->r[i].name, name, pe.msg);
		ha_buf_printf(&why, "%s%s: %s", why.len ? "; " : "", u->rs->r[i].name, pe.msg);
	}
	u->clean_node[0] = '\0';
	int rc = ha_err_set(e, HA_EIO, "no repository takes %s: %s", name,
	                    u->rs->n ? ha_buf_cstr(&why) : "none configured");
	ha_buf_free(&why);
	return rc;
}

static struct ha_store *writing(struct ha_store *s, struct ha_err *e)
{
	struct ha_union *u = un(s);
	if (u->wrote < 0) {
		ha_err_set(e, HA_EINTERNAL, "write without a begin");
		return NULL;
	}
	return part(u, (size_t)u->wrote);
}

static int u_put_chunk(struct ha_store *s, const char *node, const char *name, uint64_t index,
                       const uint8_t *data, size_t len, struct ha_err *e)
{
	struct ha_store *p = writing(s, e);
	return p ? p->ops->put_chunk(p, node, name, index, data, len, e) : HA_EINTERNAL;
}

static int u_commit(struct ha_store *s, const char *node, const char *name, const char *manifest,
                    size_t len, struct ha_err *e)
{
	struct ha_store *p = writing(s, e);
	return p ? p->ops->commit(p, node, name, manifest, len, e) : HA_EINTERNAL;
}

static void u_abort(struct ha_store *s, const char *node, const char *name)
{
	struct ha_union *u = un(s);
	for (size_t i = 0; i < u->rs->n; i++)
		part(u, i)->ops->abort(part(u, i), node, name);
}

static int u_get_manifest(struct ha_store *s, const char *name, char **text, size_t *len,
                          struct ha_err *e)
{
	struct ha_union *u = un(s);
	int rc = HA_EIO;
	for (size_t i = 0; i < u->rs->n; i++) {
		struct ha_store *p = part(u, i);
		if ((rc = p->ops->get_manifest(p, name, text, len, e)) == 0)
			return 0;
	}
	return u->rs->n ? rc : ha_err_set(e, HA_EIO, "no repository configured");
}

static int u_get_chunk(struct ha_store *s, const char *name, uint64_t index, uint8_t *buf,
                       size_t cap, size_t *len, struct ha_err *e)
{
	struct ha_union *u = un(s);
	int rc = HA_EIO;
	for (size_t i = 0; i < u->rs->n; i++) {
		struct ha_store *p = part(u, i);
		if ((rc = p->ops->get_chunk(p, name, index, buf, cap, len, e)) == 0)
			return 0;
	}
	return u->rs->n ? rc : ha_err_set(e, HA_EIO, "no repository configured");
}

static size_t u_copies(struct ha_store *s)
{
	return un(s)->rs->n;
}

static int u_get_chunk_copy(struct ha_store *s, size_t copy, const char *name, uint64_t index,
                            uint8_t *buf, size_t cap, size_t *len, const char **from,
                            struct ha_err *e)
{
	struct ha_union *u = un(s);
	if (copy >= u->rs->n)
		return ha_err_set(e, HA_EINVAL, "no repository %zu", copy);
	*from = u->rs->r[copy].name;
	struct ha_store *p = part(u, copy);
	return p->ops->get_chunk(p, name, index, buf, cap, len, e);
}

static int u_get_manifest_copy(struct ha_store *s, size_t copy, const char *name, char **text,
                               size_t *len, const char **from, struct ha_err *e)
{
	struct ha_union *u = un(s);
	*text = NULL;
	if (copy >= u->rs->n)
		return ha_err_set(e, HA_EINVAL, "no repository %zu", copy);
	*from = u->rs->r[copy].name;
	struct ha_store *p = part(u, copy);
	return p->ops->get_manifest(p, name, text, len, e);
}

/* Removed from every repository; the first failure is the error, the others are logged. */
static int u_remove(struct ha_store *s, const char *name, struct ha_err *e)
{
	struct ha_union *u = un(s);
	int rc = 0;
	for (size_t i = 0; i < u->rs->n; i++) {
		struct ha_err pe = {0};
		struct ha_store *p = part(u, i);
		if (p->ops->remove(p, name, &pe) == 0)
			continue;
		if (rc == 0)
			rc = ha_err_set(e, pe.code ? pe.code : HA_EIO, "repository %s: %s",
			                u->rs->r[i].name, pe.msg);
		else
			ha_warn("repository-remove-failed", "repository=%s object=%s error=\"%s\"",
			        u->rs->r[i].name, name, pe.msg);
	}
	return rc;
}

/* Deferred: u_begin cleans each repository it asks to take node's next write, just before.
 * What node left in a repository after the one that takes it stays until a write of node goes
 * there (staged names are never listed; the coordinator's sweep aborts a failed job's name
 * everywhere). */
static void u_clean(struct ha_store *s, const char *node)
{
	struct ha_union *u = un(s);
	snprintf(u->clean_node, sizeof(u->clean_node), "%s", node);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of every repository that answers, once each, sorted. One that does not answer is
 * logged and left out (its copies are elsewhere, or the copier brings them back); the list
 * fails only when none answers. */
static int u_list(struct ha_store *s, char ***names, size_t *n, struct ha_err *e)
{
	struct ha_union *u = un(s);
	char **all = NULL;
	size_t k = 0, answered = 0;
	int rc = 0;
	*names = NULL;
	*n = 0;
	for (size_t i = 0; i < u->rs->n && rc == 0; i++) {
		char **l = NULL;
		size_t m = 0;
		struct ha_err pe = {0};
		struct ha_store *p = part(u, i);
		if (p->ops->list(p, &l, &m, &pe) != 0) {
			ha_warn("repository-list-failed", "repository=%s error=\"%s\"",
			        u->rs->r[i].name, pe.msg);
			if (answered == 0 && i + 1 == u->rs->n)
				rc = ha_err_set(e, pe.code ? pe.code : HA_EIO, "%s", pe.msg);
			continue;
		}
		answered++;
		char **grown = m ? realloc(all, (k + m) * sizeof(*all)) : all;
		if (m && grown == NULL) {
			ha_store_names_free(l, m);
			rc = ha_err_set(e, HA_ENOMEM, "out of memory");
			break;
		}
		all = grown;
		memcpy(all + k, l, m * sizeof(*l));
		k += m;
		free(l); /* the names moved into all */
	}
	if (rc != 0) {
		ha_store_names_free(all, k);
		return rc;
	}
	if (k)
		qsort(all, k, sizeof(*all), by_name);
	size_t w = 0;
	for (size_t i = 0; i < k; i++) {
		if (w && !strcmp(all[w - 1], all[i]))
			free(all[i]);
		else
			all[w++] = all[i];
	}
	*names = all;
	*n = w;
	return 0;
}

static const struct ha_store_ops union_ops = {
    .begin = u_begin,
    .put_chunk = u_put_chunk,
    .commit = u_commit,
    .abort = u_abort,
    .get_manifest = u_get_manifest,
    .get_chunk = u_get_chunk,
    .remove = u_remove,
    .clean = u_clean,
    .list = u_list,
    .copies = u_copies,
    .get_chunk_copy = u_get_chunk_copy,
    .get_manifest_copy = u_get_manifest_copy,
};
