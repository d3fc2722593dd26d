#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "conn.h"
#include "rpc.h"

struct ha_rpc_server {
	uv_tcp_t listener;
	uv_loop_t *loop;
	SSL_CTX *ctx; /* NULL: plain */
	ha_rpc_msg_cb cb;
	void *data;
	unsigned n_conns;
	uint64_t next_order;
	struct ha_log_limit full_log;
	bool closing;
	struct ha_rpc_conn *conns[HA_RPC_MAX_CONNS];
};

struct server_conn {
	struct ha_rpc_conn c; /* first */
	struct ha_rpc_server *srv;
	unsigned slot;
	uint64_t order; /* accept order */
};

static int on_conn_msg(struct ha_rpc_conn *c, int type, const uint8_t *p, size_t n)
{
	struct server_conn *sc = (struct server_conn *)c;
	return sc->srv->cb(sc->srv->data, c, type, p, n);
}

static void maybe_free_server(struct ha_rpc_server *s);

static void on_conn_closed(uv_handle_t *h)
{
	struct server_conn *sc = h->data;
	struct ha_rpc_server *s = sc->srv;
	if (sc->slot < HA_RPC_MAX_CONNS) { /* else its slot went to a newer connection */
		s->conns[sc->slot] = NULL;
		s->n_conns--;
	}
	free(sc);
	maybe_free_server(s);
}

static void on_connection(uv_stream_t *l, int status)
{
	struct ha_rpc_server *s = l->data;
	if (status < 0) {
		ha_warn("rpc-accept-error", "error=%s", uv_strerror(status));
		return;
	}
	struct server_conn *sc = calloc(1, sizeof(*sc));
	if (sc == NULL) {
		/* a listener whose connection is not accepted stops for good (libuv): take it off
		 * the backlog into a bare handle and close it */
		uv_tcp_t *t = malloc(sizeof(*t));
		if (t && uv_tcp_init(s->loop, t) == 0) {
			uv_accept(l, (uv_stream_t *)t);
			uv_close((uv_handle_t *)t, (uv_close_cb)free);
		} else {
			free(t);
		}
		return;
	}
	if (ha_conn_init(&sc->c, s->loop) != 0) {
		free(sc);
		return;
	}
	sc->srv = s;
	sc->c.server = true;
	sc->c.on_msg = on_conn_msg;
	sc->c.on_closed = on_conn_closed;
	if (uv_accept(l, (uv_stream_t *)&sc->c.tcp) != 0) {
		sc->c.on_closed = NULL; /* holds no slot: freed directly */
		ha_conn_close(&sc->c);
		return;
	}
	unsigned slot = HA_RPC_MAX_CONNS;
	for (unsigned i = 0; i < HA_RPC_MAX_CONNS; i++)
		if (!s->conns[i]) {
			slot = i;
			break;
		}
	if (slot == HA_RPC_MAX_CONNS) {
		/* At the limit, the oldest connection that has not proven who it is (still in its
		 * TLS handshake) gives way: strangers holding every slot cannot lock operators and
		 * agents out. Without one, the oldest operator's: a readonly certificate (the
		 * monitoring's, haproxy's) holding every slot would otherwise keep the agents'
		 * health reports from a new leader, and with them the primary's write lease. An
		 * agent's connection never gives way; without another, the new one is closed. */
		struct server_conn *old = NULL, *op = NULL;
		for (unsigned i = 0; i < HA_RPC_MAX_CONNS; i++) {
			struct server_conn *o = (struct server_conn *)s->conns[i];
			if (o == NULL || o->c.ctx == NULL || o->c.closing)
				continue;
			struct server_conn **pick = !o->c.tls.established           ? &old
			                            : o->c.who.role != HA_ROLE_NODE ? &op
			                                                            : NULL;
			if (pick && (*pick == NULL || o->order < (*pick)->order))
				*pick = o;
		}
		const char *action = old  ? "\"close the oldest handshake\""
		                     : op ? "\"close the oldest operator connection\""
		                          : "close";
		if (old == NULL)
			old = op;
		unsigned long long k;
		if (ha_log_due(&s->full_log, &k))
			ha_warn("rpc-too-many-connections", "limit=%d action=%s count=%llu",
			        HA_RPC_MAX_CONNS, action, k);
		if (old == NULL) {
			/* accepted to take it off the backlog; it holds no slot */
			sc->c.on_closed = NULL;
			ha_conn_close(&sc->c);
			return;
		}
		slot = old->slot;
		s->conns[slot] = NULL; /* its close callback finds its slot given away */
		old->slot = HA_RPC_MAX_CONNS;
		s->n_conns--;
		ha_conn_close(&old->c);
	}
	sc->slot = slot;
	sc->order = ++s->next_order;
	s->conns[slot] = &sc->c;
	s->n_conns++;
	if (s->ctx) {
		SSL_CTX_up_ref(s->ctx); /* cannot fail: a reference count */
		sc->c.ctx = s->ctx;
	}
	if (ha_conn_begin(&sc->c, HA_RPC_IDLE_MS) != 0)
		ha_conn_close(&sc->c);
}

int ha_rpc_server_start(uv_loop_t *loop, const char *ip, unsigned port, SSL_CTX *ctx,
                        ha_rpc_msg_cb cb, void *data, struct ha_rpc_server **out, struct ha_err *e)
{
	struct sockaddr_in addr;
	if (uv_ip4_addr(ip, (int)port, &addr) != 0)
		return ha_err_set(e, HA_EINVAL, "bad address %s", ip);
	struct ha_rpc_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	s->loop = loop;
	ha_rpc_server_set_tls(s, ctx);
	s->cb = cb;
	s->data = data;
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
	if (rc != 0) {
		s->closing = true;
		uv_close((uv_handle_t *)&s->listener, (uv_close_cb)free);
		return ha_err_set(e, HA_EIO, "listen on %s:%u: %s", ip, port, uv_strerror(rc));
	}
	*out = s;
	return 0;
}

static void maybe_free_server(struct ha_rpc_server *s)
{
	if (s->closing && s->n_conns == 0 && s->listener.data == NULL) {
		SSL_CTX_free(s->ctx);
		free(s);
	}
}

void ha_rpc_server_set_tls(struct ha_rpc_server *s, SSL_CTX *ctx)
{
	if (ctx)
		SSL_CTX_up_ref(ctx);
	SSL_CTX_free(s->ctx);
	s->ctx = ctx;
}

const struct ha_identity *ha_rpc_peer(const struct ha_rpc_conn *c)
{
	return c->ctx ? &c->who : NULL;
}

const char *ha_rpc_peer_addr(const struct ha_rpc_conn *c)
{
	return c->peer;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct ha_rpc_server *s = h->data;
	s->listener.data = NULL;
	maybe_free_server(s);
}

void ha_rpc_server_close(struct ha_rpc_server *s)
{
	s->closing = true;
	for (unsigned i = 0; i < HA_RPC_MAX_CONNS; i++)
		if (s->conns[i])
			ha_conn_close(s->conns[i]);
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

int ha_rpc_send(struct ha_rpc_conn *c, int type, const void *pb_message)
{
	return ha_conn_send(c, type, pb_message);
}
