/* Child processes for the blocking paths (a backup's tools, a drill's server, salvage, haadm's
 * configured commands): one way to start one with its standard streams set, and one way to wait
 * for it with a deadline. The loop's hooks use uv_spawn instead (hooks.c): the loop never waits.
 * Any thread but the loop's. */
#ifndef HA_PROC_H
#define HA_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One of the child's standard streams: one of our descriptors (dup2'ed onto it), a file
 * (opened in the child: stdin read-only; stdout and stderr created 0600, appended or
 * truncated), or, with neither, ours, inherited. */
struct ha_proc_stream {
	int fd; /* >= 0: this descriptor */
	const char *path;
	bool append;
};

struct ha_proc_spec {
	char *const *argv;           /* argv[0] is searched on PATH */
	struct ha_proc_stream io[3]; /* stdin, stdout, stderr */
	bool err_to_out;             /* stderr goes where stdout goes (io[2] ignored) */
	bool own_group;              /* a process group of its own (ha_proc_wait kills it all) */
	pid_t join_group;            /* > 0: that process group instead */
	bool default_sigpipe;        /* SIGPIPE at its default (the agent ignores it) */
};

/* The stream that is nothing: stdin from /dev/null, output to /dev/null. */
#define HA_PROC_NULL ((struct ha_proc_stream){.fd = -1, .path = "/dev/null"})
/* The stream inherited from this process. */
#define HA_PROC_INHERIT ((struct ha_proc_stream){.fd = -1})

/* Starts the child, with this process's environment less what ha_proc_env_secret names; 0 or
 * an errno. */
int ha_proc_start(const struct ha_proc_spec *s, pid_t *pid);

/* Whether an environment entry ("NAME=value") is a secret no child inherits: the S3 secret key
 * and session token, which the agent may take from its own environment (docs/backup.md). The
 * tools and hooks it runs have no use for them, and a hook that prints its environment would
 * show them. */
bool ha_proc_env_secret(const char *entry);

/* environ without the entries ha_proc_env_secret names, then the entries of extra (NULL-ended;
 * may be NULL): a malloc'd array of those pointers (free the array only), NULL when out of
 * memory. */
char **ha_proc_child_env(const char *const *extra);

/* Waits for pid (EINTR retried); timeout_ms 0: for ever. At the deadline it is killed
 * (SIGKILL, its whole group when group) and reaped. Returns 0 when it ended by itself, 1 when
 * it was killed; *status as waitpid's. */
int ha_proc_wait(pid_t pid, uint64_t timeout_ms, bool group, int *status);

/* Whether status is a clean exit 0, and "exit 3" / "signal 9" for a message. */
bool ha_proc_ok(int status);
const char *ha_proc_status(int status, char *buf, size_t size);
/* The last non-empty line of a file (a child's log), for a message; "" when none. */
void ha_proc_last_line(const char *path, char *out, size_t size);
/* An exclusive lock on path (created 0600) with this process's pid written in it: 0 with *fd
 * open (the lock lasts until it is closed or the process ends); HA_EBUSY with the holder's pid
 * ("?" when unknown) in holder when another process has it; HA_EIO otherwise (errno set). */
int ha_proc_lock_pidfile(const char *path, int *fd, char *holder, size_t size);

#endif
