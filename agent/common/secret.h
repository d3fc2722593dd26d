/* Secrets: the files that hold them (passwords, the repository key, TLS private keys), and
 * keeping them out of core dumps and out of memory once used.
 *
 * The rule for a file that holds a secret (docs/security.md#secrets, docs/config.md):
 *   - a regular file (a symbolic link is followed; its target is what is checked);
 *   - owned by the user the process runs as, or by root;
 *   - nothing for other users (no o+r, o+w, o+x) and at most read for the group (no g+w, g+x):
 *     0600 and 0400, or 0640 and 0440 to let a group (e.g. root:haagent) read it;
 *   - no access ACL (its entries for named users and groups hide behind the group bits).
 * Anything else is refused, with a message that names the file and says what to run.
 *
 * Any thread; blocking file I/O only. */
#ifndef HA_SECRET_H
#define HA_SECRET_H

#include <stddef.h>

#include "err.h"

/* The longest first line ha_secret_read_line takes (a password, a hex key, a path). */
#define HA_SECRET_LINE_MAX 1024

/* Checks the file at path against the rule above. 0, or HA_ECONFIG with e saying what is wrong
 * and what to do ("/etc/haagent/db.password is world-readable (mode 0644); HINT: chmod 600
 * /etc/haagent/db.password"). The message starts with the path: callers add which key named
 * it. */
int ha_secret_file_check(const char *path, struct ha_err *e);

/* The same on an open descriptor (fstat: no race between the check and the read); path is for
 * messages only. */
int ha_secret_fd_check(int fd, const char *path, struct ha_err *e);

/* A file that decides whom we trust (the CA file): readable by anyone, but written only by its
 * owner, who is root or the user the process runs as (no g+w, no o+w): whoever can write it can
 * add a CA and mint an admin or a node certificate. 0, or HA_ECONFIG with e saying what to run.
 * The message starts with the path. */
int ha_trust_file_check(const char *path, struct ha_err *e);

/* Opens path, checks it (ha_secret_fd_check) and copies its first line, without the line end
 * (LF or CRLF), into out. A line of size bytes or more is an error (never cut). Every copy of
 * the text but out is wiped. 0, or HA_ECONFIG with e set. */
int ha_secret_read_line(const char *path, char *out, size_t size, struct ha_err *e);

/* Overwrites n bytes at p with zeros in a way the compiler cannot drop (OPENSSL_cleanse). */
void ha_wipe(void *p, size_t n);

/* No core dump of this process: prctl(PR_SET_DUMPABLE, 0) (also keeps other processes of the
 * same user from attaching to it or reading its memory through /proc) and RLIMIT_CORE 0 (which
 * its children inherit). Call first thing in main, before any secret is read. 0, or -1 with
 * errno when either failed (the caller says so and goes on). */
int ha_secret_no_core(void);

#endif
