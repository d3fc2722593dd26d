/* Internal to agent/rpc: a framed connection. */
#ifndef HA_RPC_CONN_H
#define HA_RPC_CONN_H

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
	/* A whole frame arrived: return nonzero to close. */
	int (*on_msg)(struct ha_rpc_conn *c, int type, const uint8_t *p, size_t n);
	uv_close_cb on_closed; /* frees the owner; NULL: free(c) */
	void *owner;
};

/* Initialises both handles (after this, ha_conn_close is the only way to release c). */
int ha_conn_init(struct ha_rpc_conn *c, uv_loop_t *loop);
/* Starts reading once c->tcp is connected or accepted. */
int ha_conn_begin(struct ha_rpc_conn *c, unsigned idle_ms);
/* (Re)starts the idle timer: no input for ms closes the connection. */
void ha_conn_arm_idle(struct ha_rpc_conn *c, unsigned ms);
int ha_conn_send(struct ha_rpc_conn *c, int type, const void *pb_message);
void ha_conn_close(struct ha_rpc_conn *c);

#endif
