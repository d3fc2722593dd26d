#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"

extern char **environ;

static void stream(posix_spawn_file_actions_t *fa, int target, const struct ha_proc_stream *s)
{
	if (s->fd >= 0)
		posix_spawn_file_actions_adddup2(fa, s->fd, target);
	else if (s->path && target == 0)
		posix_spawn_file_actions_addopen(fa, 0, s->path, O_RDONLY, 0);
	else if (s->path)
		posix_spawn_file_actions_addopen(
		    fa, target, s->path, O_WRONLY | O_CREAT | (s->append ? O_APPEND : O_TRUNC),
		    0600);
}

bool ha_proc_env_secret(const char *entry)
{
	static const char *const names[] = {"AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN="};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(entry, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

char **ha_proc_child_env(const char *const *extra)
{
	size_t n = 0, n_extra = 0;
	while (environ[n])
		n++;
	while (extra && extra[n_extra])
		n_extra++;
	char **out = calloc(n + n_extra + 1, sizeof(*out));
	if (out == NULL)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!ha_proc_env_secret(environ[i]))
			out[k++] = environ[i];
	for (size_t i = 0; i < n_extra; i++)
		out[k++] = (char *)extra[i];
	return out;
}

int ha_proc_start(const struct ha_proc_spec *s, pid_t *pid)
{
	char **env = ha_proc_child_env(NULL);
	if (env == NULL)
		return ENOMEM;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	short flags = 0;
	if (s->own_group || s->join_group > 0) {
		flags |= POSIX_SPAWN_SETPGROUP;
		posix_spawnattr_setpgroup(&at, s->join_group > 0 ? s->join_group : 0);
	}
	if (s->default_sigpipe) {
		sigset_t def;
		sigemptyset(&def);
		sigaddset(&def, SIGPIPE);
		posix_spawnattr_setsigdefault(&at, &def);
		flags |= POSIX_SPAWN_SETSIGDEF;
	}
	posix_spawnattr_setflags(&at, flags);
	stream(&fa, 0, &s->io[0]);
	stream(&fa, 1, &s->io[1]);
	if (s->err_to_out)
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	else
		stream(&fa, 2, &s->io[2]);
	int rc = posix_spawnp(pid, s->argv[0], &fa, &at, s->argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(env);
	return rc;
}

int ha_proc_wait(pid_t pid, uint64_t timeout_ms, bool group, int *status)
{
	*status = 0;
	uint64_t deadline = timeout_ms ? ha_now_ms() + timeout_ms : 0;
	for (;;) {
		pid_t w = waitpid(pid, status, deadline ? WNOHANG : 0);
		if (w == pid)
			return 0;
		if (w < 0 && errno != EINTR)
			return 0; /* not ours, or gone already */
		if (deadline && ha_now_ms() >= deadline) {
			kill(group ? -pid : pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return 1;
		}
		if (deadline) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
}

bool ha_proc_ok(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

const char *ha_proc_status(int status, char *buf, size_t size)
{
	if (WIFEXITED(status))
		snprintf(buf, size, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "signal %d", WTERMSIG(status));
	else
		snprintf(buf, size, "status %d", status);
	return buf;
}

void ha_proc_last_line(const char *path, char *out, size_t size)
{
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(out, size, "%s", line);
	}
	fclose(f);
}

int ha_proc_lock_pidfile(const char *path, int *fd, char *holder, size_t size)
{
	int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f < 0)
		return HA_EIO;
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		char pid[32] = "";
		ssize_t r = pread(f, pid, sizeof(pid) - 1, 0);
		pid[r > 0 ? r : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(f);
		snprintf(holder, size, "%s", pid[0] ? pid : "?");
		return HA_EBUSY;
	}
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(f, 0) != 0 || pwrite(f, buf, (size_t)len, 0) != len) {
		int saved = errno;
		close(f);
		errno = saved;
		return HA_EIO;
	}
	*fd = f;
	return 0;
}
