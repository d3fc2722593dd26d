#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "conn.h"
#include "rpc.h"

#define CONNECT_TIMEOUT_MS 1000
#define CLIENT_IDLE_MS     10000

struct client_conn {
	struct ha_rpc_conn c; /* first */
	struct ha_rpc_client *cl;
	uv_connect_t req;
	bool connected;
};

struct ha_rpc_client {
	uv_loop_t *loop;
	char bind_ip[64];
	ha_rpc_client_msg_cb cb;
	void *data;
	SSL_CTX *ctx;            /* NULL: plain */
	struct client_conn *cur; /* NULL when none */
	char ip[64];
	unsigned port;
	uint32_t want; /* the raft id the server's certificate must name; 0: any node */
	bool closing;
	unsigned live; /* connections not yet freed */
};

static void maybe_free_client(struct ha_rpc_client *cl)
{
	if (cl->closing && cl->live == 0) {
		SSL_CTX_free(cl->ctx);
		free(cl);
	}
}

void ha_rpc_client_set_tls(struct ha_rpc_client *cl, SSL_CTX *ctx)
{
	if (ctx)
		SSL_CTX_up_ref(ctx);
	SSL_CTX_free(cl->ctx);
	cl->ctx = ctx;
}

static void on_conn_closed(uv_handle_t *h)
{
	struct client_conn *cc = h->data;
	struct ha_rpc_client *cl = cc->cl;
	if (cl->cur == cc)
		cl->cur = NULL;
	free(cc);
	cl->live--;
	maybe_free_client(cl);
}

static void drop(struct client_conn *cc)
{
	if (cc->cl->cur == cc)
		cc->cl->cur = NULL;
	ha_conn_close(&cc->c);
}

/* Connected, and with TLS the server proved it is one of the cluster's nodes. */
static void on_ready(struct ha_rpc_conn *c)
{
	struct client_conn *cc = (struct client_conn *)c;
	if (c->ctx &&
	    (c->who.role != HA_ROLE_NODE || (cc->cl->want && c->who.node_id != cc->cl->want))) {
		char who[128];
		ha_identity_str(&c->who, who, sizeof(who));
		ha_warn("rpc-tls-refused",
		        "peer=%s who=\"%s\" error=\"not the node certificate wanted\" "
		        "action=close",
		        c->peer, who);
		drop(cc);
		return;
	}
	cc->connected = true;
}

static int on_msg(struct ha_rpc_conn *c, int type, const uint8_t *p, size_t n)
{
	struct client_conn *cc = (struct client_conn *)c;
	if (cc->cl->cb && !cc->cl->closing)
		cc->cl->cb(cc->cl->data, type, p, n);
	return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
	struct client_conn *cc = req->data;
	if (cc->c.closing)
		return;
	if (status < 0) {
		ha_debug("rpc-connect-failed", "target=%s:%u error=%s", cc->cl->ip, cc->cl->port,
		         uv_strerror(status));
		drop(cc);
		return;
	}
	if (ha_conn_begin(&cc->c, CLIENT_IDLE_MS) != 0)
		drop(cc);
}

int ha_rpc_client_new(uv_loop_t *loop, const char *bind_ip, SSL_CTX *ctx, ha_rpc_client_msg_cb cb,
                      void *data, struct ha_rpc_client **out)
{
	struct ha_rpc_client *cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return HA_ENOMEM;
	cl->loop = loop;
	snprintf(cl->bind_ip, sizeof(cl->bind_ip), "%s", bind_ip ? bind_ip : "");
	cl->cb = cb;
	cl->data = data;
	ha_rpc_client_set_tls(cl, ctx);
	*out = cl;
	return 0;
}

static void start_connect(struct ha_rpc_client *cl)
{
	struct sockaddr_in dst, src;
	if (uv_ip4_addr(cl->ip, (int)cl->port, &dst) != 0)
		return;
	struct client_conn *cc = calloc(1, sizeof(*cc));
	if (cc == NULL)
		return;
	if (ha_conn_init(&cc->c, cl->loop) != 0) {
		free(cc);
		return;
	}
	cc->cl = cl;
	if (cl->ctx) {
		SSL_CTX_up_ref(cl->ctx); /* cannot fail: a reference count */
		cc->c.ctx = cl->ctx;
	}
	cc->c.on_ready = on_ready;
	cc->c.on_msg = on_msg;
	cc->c.on_closed = on_conn_closed;
	cc->c.owner = cc;
	cc->req.data = cc;
	cl->cur = cc;
	cl->live++;
	if (cl->bind_ip[0] && uv_ip4_addr(cl->bind_ip, 0, &src) == 0) {
		int rc = uv_tcp_bind(&cc->c.tcp, (struct sockaddr *)&src, 0);
		if (rc != 0)
			ha_debug("rpc-bind-failed", "ip=%s error=%s", cl->bind_ip, uv_strerror(rc));
	}
	int rc = uv_tcp_connect(&cc->req, &cc->c.tcp, (struct sockaddr *)&dst, on_connect);
	if (rc != 0) {
		drop(cc);
		return;
	}
	/* The connection's idle timer bounds the connect; ha_conn_begin re-arms it. */
	ha_conn_arm_idle(&cc->c, CONNECT_TIMEOUT_MS);
}

void ha_rpc_client_target(struct ha_rpc_client *cl, const char *ip, unsigned port, uint32_t want)
{
	if (cl->closing)
		return;
	if (cl->cur && cl->port == port && !strcmp(cl->ip, ip) && cl->want == want)
		return; /* connected or connecting there */
	cl->want = want;
	if (cl->cur)
		drop(cl->cur);
	snprintf(cl->ip, sizeof(cl->ip), "%s", ip);
	cl->port = port;
	start_connect(cl);
}

int ha_rpc_client_send(struct ha_rpc_client *cl, int type, const void *pb_message)
{
	if (cl->cur == NULL || !cl->cur->connected || cl->cur->c.closing)
		return HA_ECONNECT;
	return ha_conn_send(&cl->cur->c, type, pb_message);
}

bool ha_rpc_client_connected(struct ha_rpc_client *cl)
{
	return cl->cur && cl->cur->connected && !cl->cur->c.closing;
}

void ha_rpc_client_close(struct ha_rpc_client *cl)
{
	cl->closing = true;
	if (cl->cur)
		drop(cl->cur);
	maybe_free_client(cl);
}
