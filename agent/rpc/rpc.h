/* Agent RPC over TCP on the libuv loop: frames of common/frame.h carrying protobuf messages.
 *
 * Server: accepts at most HA_RPC_MAX_CONNS connections; each has a bounded input buffer, an idle
 * timeout, and is closed (with a logged error) on any malformed frame. Client: one outgoing
 * connection bound to the node's own address (so traffic leaves from the node's address, which
 * address-based fault injection relies on), reconnecting on demand.
 *
 * Loop thread only. Callbacks are never called after the object's close has begun. */
#ifndef HA_RPC_H
#define HA_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/frame.h"
#include "../common/tls.h"

#define HA_RPC_MAX_CONNS    64
#define HA_RPC_IDLE_MS      30000
#define HA_RPC_MAX_OUTBUF   (4u << 20)
#define HA_RPC_HANDSHAKE_MS 5000

struct ha_rpc_conn;
struct ha_rpc_server;

/* A whole frame arrived. Return 0 to keep the connection, nonzero to close it. */
typedef int (*ha_rpc_msg_cb)(void *data, struct ha_rpc_conn *c, int type, const uint8_t *payload,
                             size_t len);

/* ctx: TLS (mutual) for every connection; NULL: plain TCP, nobody authenticated (insecure). */
int ha_rpc_server_start(uv_loop_t *loop, const char *ip, unsigned port, SSL_CTX *ctx,
                        ha_rpc_msg_cb cb, void *data, struct ha_rpc_server **out, struct ha_err *e);
/* New connections use ctx from now on (certificate rotation); open ones keep theirs. */
void ha_rpc_server_set_tls(struct ha_rpc_server *s, SSL_CTX *ctx);
/* Who sent the message being handled: the identity of its certificate; NULL on a plain
 * (insecure) connection. */
const struct ha_identity *ha_rpc_peer(const struct ha_rpc_conn *c);
/* The peer's address, "IP:PORT", for logs. */
const char *ha_rpc_peer_addr(const struct ha_rpc_conn *c);
void ha_rpc_server_close(struct ha_rpc_server *s);

/* Queues a frame carrying the packed protobuf message m. Returns 0 or a negative code (the
 * connection is then closed). */
int ha_rpc_send(struct ha_rpc_conn *c, int type, const void *pb_message);

/* Outgoing connection. */
struct ha_rpc_client;
typedef void (*ha_rpc_client_msg_cb)(void *data, int type, const uint8_t *payload, size_t len);

/* ctx: TLS client context (the server must show a node certificate); NULL: plain. */
int ha_rpc_client_new(uv_loop_t *loop, const char *bind_ip, SSL_CTX *ctx, ha_rpc_client_msg_cb cb,
                      void *data, struct ha_rpc_client **out);
void ha_rpc_client_set_tls(struct ha_rpc_client *cl, SSL_CTX *ctx);
/* Connects to ip:port unless already connected or connecting there. With TLS the server must
 * show the node certificate of raft id want (0: any node's). */
void ha_rpc_client_target(struct ha_rpc_client *cl, const char *ip, unsigned port, uint32_t want);
/* Sends if connected; drops the message otherwise (health reports are soft state). */
int ha_rpc_client_send(struct ha_rpc_client *cl, int type, const void *pb_message);
bool ha_rpc_client_connected(struct ha_rpc_client *cl);
void ha_rpc_client_close(struct ha_rpc_client *cl);

#endif
