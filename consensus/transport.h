/* A raft_uv_transport over TLS 1.3 with both ends authenticated (docs/security.md).
 *
 * libraft reads and writes a plain uv_stream_t. Each connection is therefore a bridge: raft gets
 * one end of a socketpair (a uv_pipe_t it owns and frees), and the bridge pumps the other end
 * through OpenSSL memory BIOs to the TCP socket, on the same loop, without threads. Both
 * directions are bounded (reading stops while too much is queued on the other side).
 *
 * Who the peer is comes from its certificate: an incoming connection is handed to raft with the
 * raft id its node certificate names, which must be a configured node; an outgoing one is handed
 * over only when the server's certificate names the raft id raft asked for. A handshake has
 * HA_TRANSPORT_HANDSHAKE_MS to finish, and at most HA_TRANSPORT_MAX_PENDING run at once (a
 * new one closes the oldest): a flood of connections that never speak TLS costs a fixed amount.
 * Refusals are logged at most once a second, with a count. Loop thread only. */
#ifndef HA_TRANSPORT_H
#define HA_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include <openssl/ssl.h>

#include "../agent/common/err.h"
#include "../agent/config.h"

#define HA_TRANSPORT_HANDSHAKE_MS 3000
#define HA_TRANSPORT_HIGH_WATER   (4u << 20)
#define HA_TRANSPORT_MAX_PENDING  16 /* incoming handshakes at once; the oldest gives way */

/* Fills t (version 1, its methods) for raft_uv_init. server and client are referenced. */
int ha_transport_init(struct raft_uv_transport *t, uv_loop_t *loop, const struct ha_config *c,
                      SSL_CTX *server, SSL_CTX *client, struct ha_err *e);
/* New connections use these from now on (certificate rotation). */
/* The nodes whose certificates are accepted: c's node table (it follows the members); with
 * any, every node certificate the CA signed (a joining node that does not know them yet). */
void ha_transport_set_peers(struct raft_uv_transport *t, const struct ha_config *c, bool any);
void ha_transport_set_tls(struct raft_uv_transport *t, SSL_CTX *server, SSL_CTX *client);
/* Releases what init allocated; after raft's close of the transport has completed. */
void ha_transport_close(struct raft_uv_transport *t);

#endif
