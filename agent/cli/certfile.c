/* haadm cert's files (cert.h): read bounded, written atomically with their mode from the first
 * byte. Blocking; haadm only. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "../backup/fsutil.h"
#include "../common/certgen.h"
#include "cert.h"

int ha_cli_cert_path(char *out, size_t size, const char *dir, const char *base, struct ha_err *e)
{
	if ((size_t)snprintf(out, size, "%s/%s", dir, base) >= size)
		return ha_err_set(e, HA_EUSAGE, "%s/%s: path too long", dir, base);
	return 0;
}

bool ha_cli_cert_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int ha_cli_cert_refuse_existing(const char *path, struct ha_err *e)
{
	return ha_err_set(e, HA_EREFUSED,
	                  "%s exists; remove it, or pass --force to replace it (a replaced "
	                  "certificate must be deployed again)",
	                  path);
}

/* The directory, created 0700 when it does not exist (its parent must). */
int ha_cli_cert_ensure_dir(const char *dir, struct ha_err *e)
{
	struct stat st;
	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0
		                           : ha_err_set(e, HA_EUSAGE, "%s is not a directory", dir);
	if (errno != ENOENT || mkdir(dir, 0700) != 0)
		return ha_err_set(e, HA_EIO, "create directory %s: %s", dir, strerror(errno));
	return 0;
}

/* data into dir/base with mode, atomically: a temporary file (mkostemp creates it 0600), set to
 * mode, written, fsynced, then linked to its name (which fails when the name exists) or, with
 * force, renamed over it; then the directory is fsynced. */
int ha_cli_cert_write(const char *dir, const char *base, const void *data, size_t n, mode_t mode,
                      bool force, struct ha_err *e)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int rc = ha_cli_cert_path(path, sizeof(path), dir, base, e);
	if (rc == 0 &&
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base) >= sizeof(tmp))
		rc = ha_err_set(e, HA_EUSAGE, "%s: path too long", path);
	if (rc != 0)
		return rc;
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return ha_err_set(e, HA_EIO, "create a file in %s: %s", dir, strerror(errno));
	if (fchmod(fd, mode) != 0 || ha_write_all(fd, data, n) != 0 || fsync(fd) != 0) {
		rc = ha_err_set(e, HA_EIO, "write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return rc;
	}
	if (close(fd) != 0) {
		rc = ha_err_set(e, HA_EIO, "write %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return rc;
	}
	int moved = force ? rename(tmp, path) : link(tmp, path);
	if (moved != 0 && !force && (errno == EPERM || errno == ENOTSUP || errno == ENOSYS)) {
		/* a file system without hard links: check, then rename */
		moved = ha_cli_cert_exists(path) ? (errno = EEXIST, -1) : rename(tmp, path);
	}
	int err = errno;
	if (moved != 0 || !force)
		unlink(tmp);
	if (moved != 0)
		return err == EEXIST ? ha_cli_cert_refuse_existing(path, e)
		                     : ha_err_set(e, HA_EIO, "write %s: %s", path, strerror(err));
	if (ha_fsync_dir(dir) != 0)
		return ha_err_set(e, HA_EIO, "fsync %s: %s", dir, strerror(errno));
	return 0;
}

/* A file of at most 1 MiB into b. */
static int read_file(const char *path, struct ha_buf *b, struct stat *st, struct ha_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ha_err_set(e, errno == ENOENT ? HA_EUSAGE : HA_EIO, "%s: %s", path,
		                  strerror(errno));
	int rc = 0;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > (1 << 20)) {
		rc = ha_err_set(e, HA_EIO, "%s: not a regular file of at most 1 MiB", path);
	} else {
		uint8_t buf[8192];
		ssize_t got;
		while ((got = ha_read_full(fd, buf, sizeof(buf))) > 0)
			ha_buf_append(b, buf, (size_t)got);
		if (got < 0 || ha_buf_failed(b))
			rc = ha_err_set(e, HA_EIO, "read %s: %s", path, strerror(errno));
	}
	close(fd);
	return rc;
}

int ha_cli_cert_load_certs(const char *path, STACK_OF(X509) * *out, struct ha_err *e)
{
	struct ha_buf b = HA_BUF_INIT;
	struct stat st;
	int rc = read_file(path, &b, &st, e);
	if (rc == 0 && (rc = ha_certgen_parse_certs(b.data, b.len, out, e)) != 0)
		ha_err_wrap(e, "%s", path);
	ha_buf_free(&b);
	return rc;
}

int ha_cli_cert_load_key(const char *path, EVP_PKEY **out, struct ha_err *e)
{
	struct ha_buf b = HA_BUF_INIT;
	struct stat st;
	int rc = read_file(path, &b, &st, e);
	if (rc == 0 && (rc = ha_certgen_parse_key(b.data, b.len, out, e)) != 0)
		ha_err_wrap(e, "%s", path);
	if (rc == 0 && (st.st_mode & 077))
		fprintf(stderr,
		        "haadm cert: warning: %s can be read by users other than its owner: "
		        "chmod 600 it\n",
		        path);
	if (b.data)
		OPENSSL_cleanse(b.data, b.cap);
	ha_buf_free(&b);
	return rc;
}

const char *ha_cli_cert_iso(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		return "";
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

void ha_cli_cert_identity_json(struct ha_json *j, int idrc, const struct ha_identity *id)
{
	if (idrc != 0) {
		ha_json_null(j, "identity");
		return;
	}
	ha_json_obj_begin(j, "identity");
	ha_json_str(j, "role", ha_role_name(id->role));
	ha_json_str(j, "name", id->name);
	if (id->role == HA_ROLE_NODE)
		ha_json_uint(j, "node_id", id->node_id);
	else
		ha_json_null(j, "node_id");
	ha_json_obj_end(j);
}
