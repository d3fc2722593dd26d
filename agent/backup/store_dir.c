#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "store.h"

static void staging(const struct ha_store *s, const char *node, const char *name, char *out,
                    size_t size)
{
	snprintf(out, size, "%s/%s/%s/%s", s->root, s->staging, node, name);
}

static int dir_begin(struct ha_store *s, const char *node, const char *name, struct ha_err *e)
{
	char path[PATH_MAX], final[PATH_MAX];
	staging(s, node, name, path, sizeof(path));
	snprintf(final, sizeof(final), "%s/%s/%s", s->root, s->kind, name);
	struct stat sb;
	if (stat(final, &sb) == 0)
		return ha_err_set(e, HA_EIO, "%s exists already", final);
	ha_rm_rf(path);
	char chunks[PATH_MAX + 8], backups[PATH_MAX];
	snprintf(chunks, sizeof(chunks), "%s/chunks", path);
	snprintf(backups, sizeof(backups), "%s/%s", s->root, s->kind);
	if (ha_mkdir_p(chunks, 0750) != 0 || ha_mkdir_p(backups, 0750) != 0)
		return ha_err_set(e, HA_EIO, "create %s: %s", chunks, strerror(errno));
	return 0;
}

static int dir_put_chunk(struct ha_store *s, const char *node, const char *name, uint64_t index,
                         const uint8_t *data, size_t len, struct ha_err *e)
{
	char path[PATH_MAX], file[PATH_MAX + 32];
	staging(s, node, name, path, sizeof(path));
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
	staging(s, node, name, path, sizeof(path));
	snprintf(final, sizeof(final), "%s/%s/%s", s->root, s->kind, name);
	snprintf(backups, sizeof(backups), "%s/%s", s->root, s->kind);
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
	staging(s, node, name, path, sizeof(path));
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
	snprintf(path, sizeof(path), "%s/%s/%s/manifest", s->root, s->kind, name);
	return read_file(path, 64u << 20, NULL, 0, text, len, e);
}

static int dir_get_chunk(struct ha_store *s, const char *name, uint64_t index, uint8_t *buf,
                         size_t cap, size_t *len, struct ha_err *e)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s/%s/chunks/%08llu", s->root, s->kind, name,
	         (unsigned long long)index);
	return read_file(path, cap, buf, cap, NULL, len, e);
}

/* Renamed out of sight first (atomic), then deleted: a removal cut short (a crash, a file held
 * open on NFS) never leaves a half object under its name; list() sweeps what is left. */
static int dir_remove(struct ha_store *s, const char *name, struct ha_err *e)
{
	char path[PATH_MAX], gone[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/%s/%s", s->root, s->kind, name);
	snprintf(gone, sizeof(gone), "%s/%s/.removing-%s", s->root, s->kind, name);
	if (rename(path, gone) != 0 && errno != ENOENT)
		return ha_err_set(e, HA_EIO, "delete %s: %s", path, strerror(errno));
	if (ha_rm_rf(gone) != 0 && errno != ENOENT)
		return ha_err_set(e, HA_EIO, "delete %s: %s", gone, strerror(errno));
	return 0;
}

static void dir_clean(struct ha_store *s, const char *node)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s/%s", s->root, s->staging, node);
	ha_rm_rf(path);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dir_list(struct ha_store *s, char ***names, size_t *n, struct ha_err *e)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", s->root, s->kind);
	*names = NULL;
	*n = 0;
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

void ha_store_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
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
	snprintf(s->root, sizeof(s->root), "%s", root);
	snprintf(s->kind, sizeof(s->kind), "%s", kind);
	/* backups keep the staging folder they always had */
	if (strcmp(kind, "backups") == 0)
		snprintf(s->staging, sizeof(s->staging), ".partial");
	else
		snprintf(s->staging, sizeof(s->staging), ".partial-%s", kind);
}
