/* Operator scripts run at role changes and failovers (docs/failover.md: arguments and
 * environment). Run as child processes with uv_spawn: the loop never waits for them. Each is
 * killed after HA_HOOK_TIMEOUT_MS. Loop thread only. */
#ifndef HA_HOOKS_H
#define HA_HOOKS_H

#include <uv.h>

#define HA_HOOK_TIMEOUT_MS 30000

/* exit_status is the hook's exit status, or -1 when it could not run or was killed. */
typedef void (*ha_hook_cb)(void *data, int exit_status);

/* Runs path with args (NULL-terminated, without argv[0]) and extra environment entries
 * ("KEY=value", NULL-terminated) added to the agent's own. cb (may be NULL) fires exactly once
 * unless this returns an error. An empty path runs nothing and returns 1 (cb is not called). */
int ha_hook_run(uv_loop_t *loop, const char *name, const char *path, const char *const *args,
                const char *const *env, ha_hook_cb cb, void *data);
/* The same, killed after timeout_ms (a long task the agent runs: agent/rebuild.c). */
int ha_hook_run_for(uv_loop_t *loop, const char *name, const char *path, const char *const *args,
                    const char *const *env, uint64_t timeout_ms, ha_hook_cb cb, void *data);

#endif
