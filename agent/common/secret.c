#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

void ha_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

int ha_secret_no_core(void)
{
	struct rlimit none = {0, 0};
	int rc = 0, err = 0;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		rc = -1;
		err = errno;
	}
	if (setrlimit(RLIMIT_CORE, &none) != 0) {
		rc = -1;
		err = errno;
	}
	errno = err;
	return rc;
}

/* "haagent (uid 998)" or "uid 998" when the user has no name. */
static void user_text(uid_t uid, char *out, size_t size)
{
	struct passwd pw, *found = NULL;
	char buf[1024];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != NULL)
		snprintf(out, size, "%s (uid %u)", found->pw_name, (unsigned)uid);
	else
		snprintf(out, size, "uid %u", (unsigned)uid);
}

/* The user's name for chown, or its number. */
static void user_name(uid_t uid, char *out, size_t size)
{
	struct passwd pw, *found = NULL;
	char buf[1024];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != NULL)
		snprintf(out, size, "%s", found->pw_name);
	else
		snprintf(out, size, "%u", (unsigned)uid);
}

int ha_secret_fd_check(int fd, const char *path, struct ha_err *e)
{
	struct stat sb;
	if (fstat(fd, &sb) != 0)
		return ha_err_set(e, HA_ECONFIG, "%s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return ha_err_set(e, HA_ECONFIG, "%s is not a regular file", path);
	unsigned mode = (unsigned)(sb.st_mode & 07777);
	if (mode & S_IROTH)
		return ha_err_set(e, HA_ECONFIG,
		                  "%s is world-readable (mode %04o): a secret file must grant "
		                  "nothing to other users; HINT: chmod 600 %s",
		                  path, mode, path);
	if (mode & (S_IWOTH | S_IXOTH))
		return ha_err_set(e, HA_ECONFIG,
		                  "%s is open to other users (mode %04o): a secret file must grant "
		                  "nothing to other users; HINT: chmod 600 %s",
		                  path, mode, path);
	if (mode & (S_IWGRP | S_IXGRP))
		return ha_err_set(
		    e, HA_ECONFIG,
		    "%s grants its group more than reading (mode %04o); HINT: chmod 600 "
		    "%s (or chmod 640 to let its group read it)",
		    path, mode, path);
	/* An access ACL (setfacl) grants named users and groups what the group bits show, which
	 * are then its mask: 0640 with "user:bob:r" passes the rule above, and bob reads the file.
	 * Only an extended ACL is stored (a minimal one is the mode itself): any refuses. */
	if (fgetxattr(fd, "system.posix_acl_access", NULL, 0) >= 0)
		return ha_err_set(e, HA_ECONFIG,
		                  "%s has an access ACL, which may grant other users what its mode "
		                  "(%04o) does not show (getfacl %s); HINT: setfacl -b %s",
		                  path, mode, path, path);
	uid_t me = geteuid();
	if (sb.st_uid != me && sb.st_uid != 0) {
		char owner[128], self[128], name[64];
		user_text(sb.st_uid, owner, sizeof(owner));
		user_text(me, self, sizeof(self));
		user_name(me, name, sizeof(name));
		return ha_err_set(e, HA_ECONFIG,
		                  "%s is owned by %s: a secret file must be owned by the user that "
		                  "reads it, %s, or by root; HINT: chown %s %s",
		                  path, owner, self, name, path);
	}
	return 0;
}

int ha_trust_file_check(const char *path, struct ha_err *e)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return ha_err_set(e, HA_ECONFIG, "cannot read %s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return ha_err_set(e, HA_ECONFIG, "%s is not a regular file", path);
	unsigned mode = (unsigned)(sb.st_mode & 07777);
	if (mode & (S_IWGRP | S_IWOTH))
		return ha_err_set(
		    e, HA_ECONFIG,
		    "%s is writable by %s (mode %04o): whoever can write the CA file "
		    "can add a CA and make themselves an admin or a node; HINT: chmod "
		    "644 %s",
		    path, (mode & S_IWOTH) ? "every user" : "its group", mode, path);
	uid_t me = geteuid();
	if (sb.st_uid != me && sb.st_uid != 0) {
		char owner[128], self[128];
		user_text(sb.st_uid, owner, sizeof(owner));
		user_text(me, self, sizeof(self));
		return ha_err_set(e, HA_ECONFIG,
		                  "%s is owned by %s, who can rewrite it and add a CA: the CA file "
		                  "must be owned by root or by %s; HINT: chown root %s",
		                  path, owner, self, path);
	}
	return 0;
}

int ha_secret_file_check(const char *path, struct ha_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return ha_err_set(e, HA_ECONFIG, "cannot read %s: %s", path, strerror(errno));
	int rc = ha_secret_fd_check(fd, path, e);
	close(fd);
	return rc;
}

int ha_secret_read_line(const char *path, char *out, size_t size, struct ha_err *e)
{
	if (size == 0)
		return ha_err_set(e, HA_EINTERNAL, "%s: no room for the secret", path);
	out[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return ha_err_set(e, HA_ECONFIG, "cannot read %s: %s", path, strerror(errno));
	int rc = ha_secret_fd_check(fd, path, e);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	/* the first line, read byte by byte up to the newline: nothing after it is read */
	char line[HA_SECRET_LINE_MAX + 1];
	size_t n = 0;
	bool too_long = false, read_error = false;
	for (;;) {
		char ch;
		ssize_t k = read(fd, &ch, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			read_error = true;
			break;
		}
		if (k == 0 || ch == '\n')
			break;
		if (n == HA_SECRET_LINE_MAX) {
			too_long = true;
			break;
		}
		line[n++] = ch;
	}
	int err = errno;
	close(fd);
	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (read_error)
		rc = ha_err_set(e, HA_ECONFIG, "cannot read %s: %s", path, strerror(err));
	else if (too_long || n >= size)
		rc = ha_err_set(e, HA_ECONFIG, "%s: the first line is longer than %zu bytes", path,
		                size - 1 < HA_SECRET_LINE_MAX ? size - 1
		                                              : (size_t)HA_SECRET_LINE_MAX);
	else if (memchr(line, '\0', n) != NULL)
		rc = ha_err_set(e, HA_ECONFIG, "%s: the first line holds a NUL byte", path);
	else {
		memcpy(out, line, n);
		out[n] = '\0';
	}
	ha_wipe(line, sizeof(line));
	return rc;
}
