/* The agent's Raft server: libraft 0.22 with the libuv I/O backend and TCP transport, running
 * the FSM of fsm.h.
 *
 * - The data directory is locked (flock) for the life of the process.
 * - A pristine data directory is bootstrapped with every configured node as a voter; a directory
 *   with state restarts from it.
 * - Pre-vote is on; election and heartbeat timeouts, snapshot threshold and trailing come from
 *   the config.
 * - After winning an election the node issues a barrier; ha_raft_ready() is true only once that
 *   barrier has applied in the current term, so a new leader never acts on a stale FSM (the
 *   "leader completeness before serving" step of Raft §8).
 *
 * Loop thread only. */
#ifndef HA_RAFT_NODE_H
#define HA_RAFT_NODE_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <uv.h>

#include <openssl/ssl.h>

#include "../agent/config.h"
#include "fsm.h"

struct ha_raft;

typedef void (*ha_raft_propose_cb)(void *data, int status, int fsm_result);
typedef void (*ha_raft_closed_cb)(void *data);

/* Creates and starts the server. On success *out is owned by the caller until ha_raft_close's
 * callback fires. */
/* tls_server, tls_client: raft over mutual TLS (transport.h); both NULL: libraft's plain TCP
 * transport (insecure = yes). */
int ha_raft_start(uv_loop_t *loop, const struct ha_config *c, SSL_CTX *tls_server,
                  SSL_CTX *tls_client, struct ha_raft **out, struct ha_err *e);
/* Certificate rotation: new raft connections use these. No-op on a plain transport. */
void ha_raft_set_tls(struct ha_raft *n, SSL_CTX *tls_server, SSL_CTX *tls_client);

/* Closes the server; cb (may be NULL) fires once, after which the memory is released. */
void ha_raft_close(struct ha_raft *n, ha_raft_closed_cb cb, void *data);

/* Proposes an encoded FsmCommand. buf must come from raft_malloc; on success raft owns it and
 * cb fires exactly once with the raft status (0 when committed and applied) and the FSM result.
 * On error cb is never called (buf may leak: see node.c). Precondition: ha_raft_ready(). */
int ha_raft_propose(struct ha_raft *n, uint8_t *buf, size_t len, ha_raft_propose_cb cb, void *data);

/* cb runs on the loop thread after every command that changed the FSM. */
typedef void (*ha_raft_applied_cb)(void *data);
void ha_raft_on_applied(struct ha_raft *n, ha_raft_applied_cb cb, void *data);

/* Wall-clock-free "time since this node became the ready leader" is kept by the caller; this is
 * the raft election timeout in force (for lease arithmetic). */
unsigned ha_raft_election_timeout(struct ha_raft *n);

/* Monotonic ms at which this node last became the ready leader (0 when not ready). Winning the
 * election that led there was contact with a majority at that time. */
uint64_t ha_raft_ready_since(struct ha_raft *n);
/* Monotonic ms at which this ready leader issued its barrier (0 when not ready): a majority
 * accepted its term after that instant, so its write lease may run from there; not from
 * ready_since, which a stalled process can put arbitrarily late. */
uint64_t ha_raft_lease_since(struct ha_raft *n);

/* True when this node is the leader and its post-election barrier has applied. */
bool ha_raft_ready(struct ha_raft *n);
bool ha_raft_is_leader(struct ha_raft *n);
uint32_t ha_raft_leader_id(struct ha_raft *n); /* 0 when unknown */
uint64_t ha_raft_term(struct ha_raft *n);
uint64_t ha_raft_commit_index(struct ha_raft *n);
uint64_t ha_raft_applied_index(struct ha_raft *n);
const struct ha_fsm_state *ha_raft_fsm(struct ha_raft *n);

/* ---- membership (docs/membership.md): the leader makes raft's configuration follow the
 * members of the replicated state ---- */
/* raft's current configuration (committed or not); returns the count (at most max). */
unsigned ha_raft_servers(struct ha_raft *n, struct ha_raft_server *out, unsigned max);
/* The agent's periodic tick (outside raft's own steps): puts right a configuration libraft
 * 0.22 left recorded as uncommitted once it is certainly committed (raftconf.h). */
void ha_raft_tick(struct ha_raft *n);
/* A change is in flight or not yet committed: one at a time. */
bool ha_raft_changing(struct ha_raft *n);
/* What holds the next change, for a log line ("" when nothing does): how long the change in
 * flight has waited, raft's uncommitted configuration entry, its commit and last index. */
void ha_raft_change_state(struct ha_raft *n, char *out, size_t size);
enum ha_raft_op { HA_RAFT_ADD, HA_RAFT_ASSIGN, HA_RAFT_REMOVE };
/* Leader only. Its end is logged; the applied callback runs then (a tick). */
int ha_raft_change(struct ha_raft *n, enum ha_raft_op op, uint32_t id, const char *address,
                   int role, struct ha_err *e);
/* Hands leadership to another voter (before this node is removed). */
int ha_raft_transfer(struct ha_raft *n, struct ha_err *e);
/* The TLS transport accepts the certificates of c's nodes (after the members changed). */
void ha_raft_set_peers(struct ha_raft *n, const struct ha_config *c);

#endif
