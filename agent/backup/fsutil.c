#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/quote.h"
#include "../common/secret.h"

int ha_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, mode) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(tmp, mode) != 0 && errno != EEXIST ? -1 : 0;
}

int ha_rm_rf(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) != 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISDIR(sb.st_mode)) {
		DIR *d = opendir(path);
		if (d == NULL)
			return -1;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char sub[PATH_MAX];
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			ha_rm_rf(sub);
		}
		closedir(d);
		return rmdir(path);
	}
	return unlink(path);
}

int ha_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t k = write(fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

ssize_t ha_read_full(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = read(fd, p + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

int ha_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int err = errno;
	if (close(fd) != 0 && rc == 0)
		return -1;
	errno = err;
	return rc;
}

int ha_write_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	int rc = ha_write_all(fd, data, n) || fsync(fd);
	int err = errno;
	if (close(fd) != 0) /* a delayed write error (NFS, a full disk) shows here */
		return -1;
	errno = err;
	return rc ? -1 : 0;
}

int ha_write_option_file(const char *path, const char *group, const struct ha_option *opts,
                         size_t n)
{
	size_t size = strlen(group) + 4;
	for (size_t i = 0; i < n; i++) {
		long q = ha_quote_option_value(NULL, 0, opts[i].value);
		if (q < 0 || strchr(opts[i].key, '\n') || strchr(opts[i].key, '=')) {
			errno = EINVAL;
			return -1;
		}
		size += strlen(opts[i].key) + (size_t)q + 2;
	}
	/* one allocation of the exact size: no copy of a value is left behind by a realloc */
	char *text = malloc(size);
	if (text == NULL)
		return -1;
	size_t k = (size_t)snprintf(text, size, "[%s]\n", group);
	for (size_t i = 0; i < n && k < size; i++) {
		k += (size_t)snprintf(text + k, size - k, "%s=", opts[i].key);
		long q = ha_quote_option_value(text + k, size - k, opts[i].value);
		if (q < 0 || k + (size_t)q + 1 >= size) {
			ha_wipe(text, size);
			free(text);
			errno = EINVAL;
			return -1;
		}
		k += (size_t)q;
		text[k++] = '\n';
	}
	/* created anew: an old file (another mode, a link planted there) is not written through */
	int rc = -1, fd = -1;
	if (unlink(path) == 0 || errno == ENOENT)
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		rc = ha_write_all(fd, text, k) || fsync(fd) ? -1 : 0;
		int err = errno;
		if (close(fd) != 0)
			rc = -1;
		else
			errno = err;
		if (rc != 0)
			unlink(path);
	}
	int err = errno;
	ha_wipe(text, size);
	free(text);
	errno = err;
	return rc;
}

int ha_write_password_cnf(const char *path, const char *group, const char *password)
{
	struct ha_option o = {"password", password};
	return ha_write_option_file(path, group, &o, 1);
}
