/* Internal to the coordinator core's files: core.c (the tick, detection, bootstrap, the
 * views, the plan), fence.c (the fencing proofs, a switchover's rollback) and promote.c
 * (choosing the candidate and following its promotion). */
#ifndef HA_COORD_CORE_INT_H
#define HA_COORD_CORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/log.h"
#include "core.h"
#include "failover.h"

/* Bootstrap waits this long for every node before deciding from a majority. */
#define BOOTSTRAP_WAIT_ALL_MS 10000
/* A tick this late means the loop was stalled: every timeout looks expired. Decide nothing. */
#define TILT_LATE_MS    1000
#define TILT_HOLD_MS    3000
#define LEASE_MARGIN_MS 250
/* the fence hook waits for the old primary's own agent this much beyond its escalation */
#define FENCE_HOOK_AFTER_MS 3000
#define FENCE_HOOK_RETRY_MS 5000
/* a failover step the FSM refused is not proposed again for this long */
#define REFUSED_HOLD_MS 5000

/* A candidate that has applied all it received, and received nothing more for this long,
 * will not get the rest of what it claimed when chosen (PROMOTING). */
#define RELAY_DRAINED_MS 5000

/* One tick's context. */
struct ha_core {
	const struct ha_core_in *in;
	const struct ha_config *cfg;
	struct ha_core_mem *m;
	struct ha_core_out *out;
	uint64_t now;     /* monotonic */
	uint64_t unix_ms; /* wall clock */
};

#define LOGI(k, ev, ...)    ha_core_logf((k)->in->log, (k)->in->log_ctx, HA_LOG_INFO, ev, __VA_ARGS__)
#define LOGW(k, ev, ...)    ha_core_logf((k)->in->log, (k)->in->log_ctx, HA_LOG_WARN, ev, __VA_ARGS__)
#define INLOGW(in, ev, ...) ha_core_logf((in)->log, (in)->log_ctx, HA_LOG_WARN, ev, __VA_ARGS__)
#define health_of           ha_core_health

int co_propose(struct ha_core *k, uint8_t *buf, size_t len, const char *what);
int co_node_index(const struct ha_config *cfg, uint32_t id);
void co_run_hook(struct ha_core *k, enum ha_core_hook hook, const char *a0, const char *a1,
                 const char *a2);
void co_advance(struct ha_core *k, const struct ha_fo_advance *adv);
void co_set_wait(struct ha_core *k, const struct ha_failover *f, const char *why);
void co_roll_back(struct ha_core *k, const struct ha_failover *f, const char *why);
bool co_old_primary_back(struct ha_core *k, const struct ha_fsm_state *st,
                         const struct ha_failover *f);
void co_switchover_fenced(struct ha_core *k, const struct ha_fsm_state *st,
                          const struct ha_failover *f, bool late);
void co_phase_begin(struct ha_core *k, const struct ha_fsm_state *st, const struct ha_failover *f,
                    bool late);
void co_phase_fenced(struct ha_core *k, const struct ha_fsm_state *st, const struct ha_failover *f);
void co_backups(struct ha_core *k, const struct ha_fsm_state *st);
/* errant.c: a diverged node's rejoin, said in the history */
bool co_rejoin_events(struct ha_core *k, const struct ha_fsm_state *st);
void co_phase_promoting(struct ha_core *k, const struct ha_fsm_state *st,
                        const struct ha_failover *f);

#endif
