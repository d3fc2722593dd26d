/* Internal to agent/rpc: a framed connection. */
#ifndef HA_RPC_CONN_H
#define HA_RPC_CONN_H

#include "../common/tls.h"
#include "rpc.h"

struct ha_rpc_conn {
	uv_tcp_t tcp; /* first: the handle's memory is the connection's */
	uv_timer_t idle;
	struct ha_buf in;
	char rbuf[16384];
	size_t outstanding;
	bool closing;
	int pending_closes;
	char peer[64];
	/* TLS: tls.ssl != NULL once started (ctx given before ha_conn_begin); frames flow only
	 * once established. Without ctx the connection is plain (insecure = yes). */
	SSL_CTX *ctx;
	bool server;
	struct ha_tls tls;
	struct ha_identity who; /* the verified peer; role HA_ROLE_NONE on a plain connection */
	void (*on_ready)(struct ha_rpc_conn *c); /* TLS established (or plain and connected) */
	/* A whole frame arrived: return nonzero to close. */
	int (*on_msg)(struct ha_rpc_conn *c, int type, const uint8_t *p, size_t n);
	uv_close_cb on_closed; /* frees the owner; NULL: free(c) */
	void *owner;
};

/* Initialises both handles (after this, ha_conn_close is the only way to release c). */
int ha_conn_init(struct ha_rpc_conn *c, uv_loop_t *loop);
/* Starts reading once c->tcp is connected or accepted; with c->ctx set, the TLS handshake first
 * (bounded by HA_RPC_HANDSHAKE_MS). */
int ha_conn_begin(struct ha_rpc_conn *c, unsigned idle_ms);
/* (Re)starts the idle timer: no input for ms closes the connection. */
void ha_conn_arm_idle(struct ha_rpc_conn *c, unsigned ms);
int ha_conn_send(struct ha_rpc_conn *c, int type, const void *pb_message);
void ha_conn_close(struct ha_rpc_conn *c);

#endif
