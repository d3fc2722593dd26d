#include "hooks.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"

struct hook {
	uv_process_t proc;
	uv_timer_t timer;
	ha_hook_cb cb;
	void *data;
	char name[32];
	int status;
	int closing;
};

static void hook_closed(uv_handle_t *h)
{
	struct hook *k = h->data;
	if (--k->closing == 0) {
		if (k->cb)
			k->cb(k->data, k->status);
		free(k);
	}
}

static void on_exit_(uv_process_t *p, int64_t status, int term_signal)
{
	struct hook *k = p->data;
	k->status = term_signal ? -1 : (int)status;
	ha_info("hook-exit", "hook=%s status=%lld signal=%d", k->name, (long long)status,
	        term_signal);
	k->closing = 2;
	uv_close((uv_handle_t *)&k->timer, hook_closed);
	uv_close((uv_handle_t *)&k->proc, hook_closed);
}

static void on_timeout(uv_timer_t *t)
{
	struct hook *k = t->data;
	ha_warn("hook-timeout", "hook=%s action=kill", k->name);
	uv_process_kill(&k->proc, SIGKILL);
}

int ha_hook_run(uv_loop_t *loop, const char *name, const char *path, const char *const *args,
                const char *const *env, ha_hook_cb cb, void *data)
{
	return ha_hook_run_for(loop, name, path, args, env, HA_HOOK_TIMEOUT_MS, cb, data);
}

int ha_hook_run_for(uv_loop_t *loop, const char *name, const char *path, const char *const *args,
                    const char *const *env, uint64_t timeout_ms, ha_hook_cb cb, void *data)
{
	if (path == NULL || path[0] == '\0')
		return 1;
	char *argv[16];
	size_t n = 0;
	argv[n++] = (char *)path;
	for (size_t i = 0; args && args[i] && n < 15; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	char **envp = ha_proc_child_env(env); /* ours less the secrets, then the hook's */
	struct hook *k = calloc(1, sizeof(*k));
	if (envp == NULL || k == NULL) {
		free(envp);
		free(k);
		return -1;
	}
	k->cb = cb;
	k->data = data;
	snprintf(k->name, sizeof(k->name), "%s", name);
	uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
	                                 {.flags = UV_INHERIT_FD, .data.fd = 2},
	                                 {.flags = UV_INHERIT_FD, .data.fd = 2}};
	uv_process_options_t o = {.exit_cb = on_exit_,
	                          .file = path,
	                          .args = argv,
	                          .env = envp,
	                          .stdio_count = 3,
	                          .stdio = stdio};
	k->proc.data = k;
	int rc = uv_spawn(loop, &k->proc, &o);
	free(envp);
	if (rc != 0) {
		ha_warn("hook-failed", "hook=%s path=%s error=%s", name, path, uv_strerror(rc));
		k->closing = 1;
		k->cb = NULL;
		k->proc.data = k;
		uv_close((uv_handle_t *)&k->proc, hook_closed);
		return -1;
	}
	ha_info("hook-start", "hook=%s path=%s pid=%d", name, path, k->proc.pid);
	uv_timer_init(loop, &k->timer);
	k->timer.data = k;
	uv_timer_start(&k->timer, on_timeout, timeout_ms, 0);
	return 0;
}
