#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../config.h"
#include "fsutil.h"
#include "store.h"

/* Names become paths here: a node's name (its staging area) and an object's name (a backup's,
 * an archive slice's), which come from the replicated state, a repository's listing or a
 * manifest. Only a name ha_name_valid accepts is ever joined to a path (never "..", "/", ...). */
static int check_name(const char *what, const char *name, struct ha_err *e)
{
	if (ha_name_valid(name))
		return 0;
	return ha_err_set(e, HA_EINVAL, "%s '%.80s' is not a name (%s): refused as a path", what,
	                  name ? name : "(null)", HA_NAME_RULE);
}

static int check_names(const char *node, const char *name, struct ha_err *e)
{
	return (node && check_name("node", node, e)) || (name && check_name("object", name, e))
	           ? HA_EINVAL
	           : 0;
}

/* out = the joined path; HA_EINVAL when it does not fit (never cut). */
static int join(char *out, size_t size, struct ha_err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int join(char *out, size_t size, struct ha_err *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return ha_err_set(e, HA_EINVAL, "path too long: %.200s...", out);
	return 0;
}

static int staging(const struct ha_store *s, const char *node, const char *name, char *out,
                   size_t size, struct ha_err *e)
{
	if (check_names(node, name, e))
		return HA_EINVAL;
	return join(out, size, e, "%s/%s/%s/%s", s->root, s->staging, node, name);
}

/* ROOT/KIND/NAME[SUFFIX] */
static int final_path(const struct ha_store *s, const char *name, const char *suffix, char *out,
                      size_t size, struct ha_err *e)
{
	if (check_names(NULL, name, e))
		return HA_EINVAL;
	return join(out, size, e, "%s/%s/%s%s", s->root, s->kind, name, suffix);
}

static int dir_begin(struct ha_store *s, const char *node, const char *name, struct ha_err *e)
{
	char path[PATH_MAX], final[PATH_MAX];
	if (staging(s, node, name, path, sizeof(path), e) ||
	    final_path(s, name, "", final, sizeof(final), e))
		return HA_EINVAL;
	struct stat sb;
	if (stat(final, &sb) == 0)
		return ha_err_set(e, HA_EIO, "%s exists already", final);
	ha_rm_rf(path);
	char chunks[PATH_MAX + 8], backups[PATH_MAX];
	snprintf(chunks, sizeof(chunks), "%s/chunks", path);
	if (join(backups, sizeof(backups), e, "%s/%s", s->root, s->kind))
		return HA_EINVAL;
	if (ha_mkdir_p(chunks, 0750) != 0 || ha_mkdir_p(backups, 0750) != 0)
		return ha_err_set(e, HA_EIO, "create %s: %s", chunks, strerror(errno));
	return 0;
}

static int dir_put_chunk(struct ha_store *s, const char *node, const char *name, uint64_t index,
                         const uint8_t *data, size_t len, struct ha_err *e)
{
	char path[PATH_MAX], file[PATH_MAX + 32];
	if (staging(s, node, name, path, sizeof(path), e))
		return HA_EINVAL;
	snprintf(file, sizeof(file), "%s/chunks/%08llu", path, (unsigned long long)index);
	/* synced here, on the writer thread (the sealing workers go on meanwhile): a write-back
	 * error is reported to this file's descriptor, where a later syncfs would miss it (before
	 * Linux 5.8 always, after it when another caller saw the error first) */
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	int rc = fd < 0 || ha_write_all(fd, data, len) || fdatasync(fd);
	int err = errno;
	if (fd >= 0 && close(fd) != 0 && rc == 0) {
		rc = 1;
		err = errno;
	}
	return rc ? ha_err_set(e, HA_EIO, "write %s: %s", file, strerror(err)) : 0;
}

static int dir_commit(struct ha_store *s, const char *node, const char *name, const char *manifest,
                      size_t len, struct ha_err *e)
{
	char path[PATH_MAX], file[PATH_MAX + 32], final[PATH_MAX], backups[PATH_MAX];
	if (staging(s, node, name, path, sizeof(path), e) ||
	    final_path(s, name, "", final, sizeof(final), e) ||
	    join(backups, sizeof(backups), e, "%s/%s", s->root, s->kind))
		return HA_EINVAL;
	snprintf(file, sizeof(file), "%s/chunks", path);
	/* every chunk was synced when written; the file system once more before the manifest
	 * says they are there */
	int dfd = open(file, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || syncfs(dfd) != 0) {
		int err = errno;
		if (dfd >= 0)
			close(dfd);
		return ha_err_set(e, HA_EIO, "sync %s: %s", file, strerror(err));
	}
	close(dfd);
	if (ha_fsync_dir(file) != 0)
		return ha_err_set(e, HA_EIO, "sync %s: %s", file, strerror(errno));
	snprintf(file, sizeof(file), "%s/manifest", path);
	if (ha_write_file(file, manifest, len, 0640) != 0)
		return ha_err_set(e, HA_EIO, "write %s: %s", file, strerror(errno));
	if (ha_fsync_dir(path) != 0)
		return ha_err_set(e, HA_EIO, "sync %s: %s", path, strerror(errno));
	if (rename(path, final) != 0)
		return ha_err_set(e, HA_EIO, "rename %s to %s: %s", path, final, strerror(errno));
	/* renamed: the backup exists whole; only its durability is in doubt now */
	if (ha_fsync_dir(backups) != 0) {
		int err = errno;
		rename(final, path); /* not committed: the caller's abort removes it */
		return ha_err_set(e, HA_EIO, "sync %s: %s", backups, strerror(err));
	}
	return 0;
}

static void dir_abort(struct ha_store *s, const char *node, const char *name)
{
	char path[PATH_MAX];
	struct ha_err e = {0};
	if (staging(s, node, name, path, sizeof(path), &e) == 0)
		ha_rm_rf(path);
}

static int read_file(const char *path, size_t max, uint8_t *buf, size_t cap, char **alloc,
                     size_t *len, struct ha_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ha_err_set(e, HA_EIO, "%s: %s", path, strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) != 0 || (size_t)sb.st_size > max) {
		close(fd);
		return ha_err_set(e, HA_EPROTO, "%s: larger than expected", path);
	}
	if (alloc) {
		*alloc = malloc((size_t)sb.st_size + 1);
		buf = (uint8_t *)*alloc;
		cap = (size_t)sb.st_size;
	}
	ssize_t k = buf ? ha_read_full(fd, buf, cap) : -1;
	close(fd);
	if (k != sb.st_size) {
		if (alloc) {
			free(*alloc);
			*alloc = NULL;
		}
		return ha_err_set(e, HA_EIO, "%s: cannot read it whole", path);
	}
	*len = (size_t)k;
	return 0;
}

static int dir_get_manifest(struct ha_store *s, const char *name, char **text, size_t *len,
                            struct ha_err *e)
{
	char path[PATH_MAX];
	*text = NULL;
	if (final_path(s, name, "/manifest", path, sizeof(path), e))
		return HA_EINVAL;
	return read_file(path, 64u << 20, NULL, 0, text, len, e);
}

static int dir_get_chunk(struct ha_store *s, const char *name, uint64_t index, uint8_t *buf,
                         size_t cap, size_t *len, struct ha_err *e)
{
	char path[PATH_MAX], chunk[32];
	snprintf(chunk, sizeof(chunk), "/chunks/%08llu", (unsigned long long)index);
	if (final_path(s, name, chunk, path, sizeof(path), e))
		return HA_EINVAL;
	return read_file(path, cap, buf, cap, NULL, len, e);
}

/* Renamed out of sight first (atomic), then deleted: a removal cut short (a crash, a file held
 * open on NFS) never leaves a half object under its name; list() sweeps what is left. */
static int dir_remove(struct ha_store *s, const char *name, struct ha_err *e)
{
	char path[PATH_MAX], gone[PATH_MAX + 16];
	if (final_path(s, name, "", path, sizeof(path), e) ||
	    join(gone, sizeof(gone), e, "%s/%s/.removing-%s", s->root, s->kind, name))
		return HA_EINVAL;
	if (rename(path, gone) != 0 && errno != ENOENT)
		return ha_err_set(e, HA_EIO, "delete %s: %s", path, strerror(errno));
	if (ha_rm_rf(gone) != 0 && errno != ENOENT)
		return ha_err_set(e, HA_EIO, "delete %s: %s", gone, strerror(errno));
	return 0;
}

static void dir_clean(struct ha_store *s, const char *node)
{
	char path[PATH_MAX];
	struct ha_err e = {0};
	if (check_names(node, NULL, &e) == 0 &&
	    join(path, sizeof(path), &e, "%s/%s/%s", s->root, s->staging, node) == 0)
		ha_rm_rf(path);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dir_list(struct ha_store *s, char ***names, size_t *n, struct ha_err *e)
{
	char path[PATH_MAX];
	*names = NULL;
	*n = 0;
	if (join(path, sizeof(path), e, "%s/%s", s->root, s->kind))
		return HA_EINVAL;
	DIR *d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : ha_err_set(e, HA_EIO, "%s: %s", path, strerror(errno));
	size_t cap = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			if (!strncmp(de->d_name, ".removing-", 10)) { /* a removal cut short */
				char gone[PATH_MAX + 300];
				snprintf(gone, sizeof(gone), "%s/%s", path, de->d_name);
				ha_rm_rf(gone);
			}
			continue;
		}
		if (!ha_name_valid(de->d_name))
			continue; /* not one of ours: never named, so never opened or removed */
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **grown = realloc(*names, ncap * sizeof(**names));
			if (grown == NULL) {
				rc = ha_err_set(e, HA_EIO, "out of memory");
				break;
			}
			*names = grown;
			cap = ncap;
		}
		if (((*names)[*n] = strdup(de->d_name)) == NULL) {
			rc = ha_err_set(e, HA_EIO, "out of memory");
			break;
		}
		(*n)++;
	}
	closedir(d);
	if (rc != 0) {
		ha_store_names_free(*names, *n);
		*names = NULL;
		*n = 0;
		return rc;
	}
	if (*n)
		qsort(*names, *n, sizeof(**names), by_name);
	return 0;
}

static const struct ha_store_ops dir_ops = {
    .begin = dir_begin,
    .put_chunk = dir_put_chunk,
    .commit = dir_commit,
    .abort = dir_abort,
    .get_manifest = dir_get_manifest,
    .get_chunk = dir_get_chunk,
    .remove = dir_remove,
    .clean = dir_clean,
    .list = dir_list,
};

void ha_store_dir_init(struct ha_store *s, const char *root)
{
	ha_store_dir_init_kind(s, root, "backups");
}

void ha_store_dir_init_kind(struct ha_store *s, const char *root, const char *kind)
{
	s->ops = &dir_ops;
	s->impl = NULL;
	snprintf(s->root, sizeof(s->root), "%s", root);
	snprintf(s->kind, sizeof(s->kind), "%s", kind);
	/* backups keep the staging folder they always had */
	if (strcmp(kind, "backups") == 0)
		snprintf(s->staging, sizeof(s->staging), ".partial");
	else
		snprintf(s->staging, sizeof(s->staging), ".partial-%s", kind);
}
