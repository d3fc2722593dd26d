/* raft over TLS: see transport.h. */
#include "transport.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../agent/common/buf.h"
#include "../agent/common/log.h"
#include "../agent/common/tls.h"

struct bridge;

struct tx {
	struct raft_uv_transport *t;
	uv_loop_t *loop;
	SSL_CTX *server, *client;
	uint32_t self_id;
	char bind_ip[HA_ADDR_MAX];
	unsigned port;
	struct {
		uint32_t id;
		char addr[HA_ADDR_MAX + 8];
	} nodes[HA_MAX_NODES];
	unsigned n_nodes;
	/* a node joining (join = yes) before it knows the members: any node certificate of the
	 * cluster's CA, whichever member leads (its seeds may not include the leader) */
	bool any_node;
	uv_tcp_t listener;
	bool listener_open;
	raft_uv_accept_cb accept_cb;
	struct bridge *bridges;
	unsigned pending; /* incoming bridges still in their handshake */
	struct ha_log_limit refused_log, full_log;
	/* one read buffer for every bridge: libuv calls the read callback right after the
	 * allocation, and the bytes are used before it returns */
	char rbuf[65536];
	bool closing;
	raft_uv_transport_close_cb close_cb;
};

/* One connection: the TCP socket, TLS, and our end of the socketpair whose other end raft has. */
struct bridge {
	struct tx *tx;
	struct bridge *prev, *next;
	bool server;
	uv_tcp_t tcp;
	uv_timer_t timer; /* the handshake's bound */
	uv_pipe_t mine;
	bool mine_open;
	uv_connect_t creq;
	/* an outgoing connection until raft has been answered */
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	raft_id want;
	struct ha_tls tls;
	size_t tcp_out, mine_out; /* bytes queued to each side, not yet written */
	bool tcp_paused, mine_paused;
	bool closing;
	int open;     /* our handles not yet closed */
	bool counted; /* in tx->pending */
	char peer[64];
};

struct bwrite {
	uv_write_t req;
	struct bridge *b;
	bool to_tcp;
	size_t len;
	char data[];
};

static void maybe_closed(struct tx *x)
{
	if (x->closing && x->bridges == NULL && !x->listener_open && x->close_cb) {
		raft_uv_transport_close_cb cb = x->close_cb;
		x->close_cb = NULL;
		cb(x->t);
	}
}

static void on_bridge_handle_closed(uv_handle_t *h)
{
	struct bridge *b = h->data;
	if (--b->open > 0)
		return;
	struct tx *x = b->tx;
	if (b->counted)
		x->pending--;
	if (b->prev)
		b->prev->next = b->next;
	else
		x->bridges = b->next;
	if (b->next)
		b->next->prev = b->prev;
	if (b->tls.ssl)
		ha_tls_free(&b->tls);
	free(b);
	maybe_closed(x);
}

/* Ends the connection. An outgoing one raft still waits for is answered with status. */
static void bridge_close(struct bridge *b, int status)
{
	if (b->closing)
		return;
	b->closing = true;
	if (b->req) {
		struct raft_uv_connect *req = b->req;
		b->req = NULL;
		b->cb(req, NULL, status);
	}
	uv_close((uv_handle_t *)&b->timer, on_bridge_handle_closed);
	uv_close((uv_handle_t *)&b->tcp, on_bridge_handle_closed);
	if (b->mine_open)
		uv_close((uv_handle_t *)&b->mine, on_bridge_handle_closed);
}

static struct bridge *bridge_new(struct tx *x, bool server)
{
	struct bridge *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->tx = x;
	b->server = server;
	uv_tcp_init(x->loop, &b->tcp);
	uv_timer_init(x->loop, &b->timer);
	b->tcp.data = b->timer.data = b->mine.data = b;
	b->open = 2;
	b->next = x->bridges;
	if (x->bridges)
		x->bridges->prev = b;
	x->bridges = b;
	return b;
}

static void on_handshake_timeout(uv_timer_t *t)
{
	struct bridge *b = t->data;
	unsigned long long k;
	if (ha_log_due(&b->tx->refused_log, &k))
		ha_warn(
		    "raft-tls-refused",
		    "peer=%s side=%s error=\"no handshake within %d ms\" action=close count=%llu",
		    b->peer, b->server ? "server" : "client", HA_TRANSPORT_HANDSHAKE_MS, k);
	bridge_close(b, RAFT_NOCONNECTION);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct bridge *b = h->data;
	*buf = uv_buf_init(b->tx->rbuf, sizeof(b->tx->rbuf));
}

static void on_mine_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_bwritten(uv_write_t *req, int status)
{
	struct bwrite *w = (struct bwrite *)req;
	struct bridge *b = w->b;
	size_t len = w->len;
	bool to_tcp = w->to_tcp;
	free(w);
	if (to_tcp)
		b->tcp_out -= len;
	else
		b->mine_out -= len;
	if (b->closing)
		return;
	if (status < 0) {
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	/* below half the mark again: read again from the side that was paused */
	if (to_tcp && b->mine_paused && b->tcp_out < HA_TRANSPORT_HIGH_WATER / 2) {
		b->mine_paused = false;
		uv_read_start((uv_stream_t *)&b->mine, on_alloc, on_mine_read);
	}
	if (!to_tcp && b->tcp_paused && b->mine_out < HA_TRANSPORT_HIGH_WATER / 2) {
		b->tcp_paused = false;
		uv_read_start((uv_stream_t *)&b->tcp, on_alloc, on_tcp_read);
	}
}

/* Queues the n bytes of w->data (w from malloc, to be freed by the write callback). */
static int bwrite_submit(struct bridge *b, bool to_tcp, struct bwrite *w, size_t n)
{
	w->b = b;
	w->to_tcp = to_tcp;
	w->len = n;
	uv_buf_t ub = uv_buf_init(w->data, (unsigned)n);
	uv_stream_t *s = to_tcp ? (uv_stream_t *)&b->tcp : (uv_stream_t *)&b->mine;
	if (uv_write(&w->req, s, &ub, 1, on_bwritten) != 0) {
		free(w);
		return -1;
	}
	if (to_tcp)
		b->tcp_out += n;
	else
		b->mine_out += n;
	return 0;
}

static int bwrite(struct bridge *b, bool to_tcp, const void *p, size_t n)
{
	struct bwrite *w = malloc(sizeof(*w) + n);
	if (w == NULL)
		return -1;
	memcpy(w->data, p, n);
	return bwrite_submit(b, to_tcp, w, n);
}

/* The ciphertext TLS produced goes to the peer, taken straight into the write request. */
static int flush_tls(struct bridge *b)
{
	size_t n = ha_tls_pending(&b->tls);
	if (n == 0)
		return 0;
	struct bwrite *w = malloc(sizeof(*w) + n);
	if (w == NULL)
		return -1;
	int rc = bwrite_submit(b, true, w, ha_tls_take(&b->tls, w->data, n));
	if (rc == 0 && b->tcp_out > HA_TRANSPORT_HIGH_WATER && b->mine_open && !b->mine_paused) {
		b->mine_paused = true;
		uv_read_stop((uv_stream_t *)&b->mine);
	}
	return rc;
}

static const char *addr_of(struct tx *x, uint32_t id)
{
	for (unsigned i = 0; i < x->n_nodes; i++)
		if (x->nodes[i].id == id)
			return x->nodes[i].addr;
	return NULL;
}

/* The handshake ended: check who the peer is, then give raft its end of a socketpair. */
static void on_established(struct bridge *b)
{
	struct tx *x = b->tx;
	const struct ha_identity *who = &b->tls.peer;
	char desc[128];
	ha_identity_str(who, desc, sizeof(desc));
	const char *why = NULL;
	if (who->role != HA_ROLE_NODE)
		why = "not a node certificate";
	else if (!x->any_node && addr_of(x, who->node_id) == NULL)
		why = "its raft id is not a node of this cluster";
	else if (who->node_id == x->self_id)
		why = "it claims this node's own raft id";
	else if (!b->server && who->node_id != b->want)
		why = "it is not the node this connection was meant for";
	unsigned long long k;
	if (why) {
		if (ha_log_due(&x->refused_log, &k))
			ha_warn("raft-tls-refused",
			        "peer=%s side=%s who=\"%s\" error=\"%s\" action=close count=%llu",
			        b->peer, b->server ? "server" : "client", desc, why, k);
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	uv_pipe_t *theirs = raft_malloc(sizeof(*theirs));
	if (theirs == NULL) {
		close(fds[0]);
		close(fds[1]);
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	uv_pipe_init(x->loop, theirs, 0);
	uv_pipe_init(x->loop, &b->mine, 0);
	b->mine.data = b;
	b->mine_open = true;
	b->open++;
	/* once a pipe is open it owns its fd: only uv_close closes it then */
	bool theirs_open = uv_pipe_open(theirs, fds[0]) == 0;
	bool mine_open = theirs_open && uv_pipe_open(&b->mine, fds[1]) == 0;
	if (!mine_open || uv_read_start((uv_stream_t *)&b->mine, on_alloc, on_mine_read) != 0) {
		if (!theirs_open)
			close(fds[0]);
		if (!mine_open)
			close(fds[1]);
		uv_close((uv_handle_t *)theirs, (uv_close_cb)raft_free);
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	uv_timer_stop(&b->timer);
	if (b->counted) {
		b->counted = false;
		x->pending--;
	}
	ha_debug("raft-tls-ready", "peer=%s side=%s who=\"%s\"", b->peer,
	         b->server ? "server" : "client", desc);
	if (b->server) {
		if (x->closing || x->accept_cb == NULL) {
			uv_close((uv_handle_t *)theirs, (uv_close_cb)raft_free);
			bridge_close(b, RAFT_CANCELED);
			return;
		}
		{
			const char *addr =
			    addr_of(x, who->node_id); /* NULL: any_node, not known yet */
			x->accept_cb(x->t, who->node_id, addr ? addr : b->peer,
			             (uv_stream_t *)theirs);
		}
		return;
	}
	struct raft_uv_connect *req = b->req;
	b->req = NULL;
	b->cb(req, (uv_stream_t *)theirs, 0);
}

static void on_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct bridge *b = s->data;
	if (b->closing || n == 0)
		return;
	if (n < 0) {
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	struct ha_buf plain = HA_BUF_INIT;
	struct ha_err e = {0};
	bool now = false;
	int rc = ha_tls_feed(&b->tls, buf->base, (size_t)n, &plain, &now, &e);
	if (flush_tls(b) != 0 && rc == 0)
		rc = HA_EIO;
	if (rc != 0) {
		unsigned long long k;
		if (!b->tls.established && ha_log_due(&b->tx->refused_log, &k))
			ha_warn("raft-tls-refused",
			        "peer=%s side=%s error=\"%s\" action=close count=%llu", b->peer,
			        b->server ? "server" : "client", e.msg, k);
		ha_buf_free(&plain);
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	if (now) {
		on_established(b);
		if (b->closing) {
			ha_buf_free(&plain);
			return;
		}
	}
	if (plain.len > 0 && bwrite(b, false, plain.data, plain.len) != 0) {
		ha_buf_free(&plain);
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	ha_buf_free(&plain);
	if (b->mine_out > HA_TRANSPORT_HIGH_WATER && !b->tcp_paused) {
		b->tcp_paused = true;
		uv_read_stop((uv_stream_t *)&b->tcp);
	}
}

static void on_mine_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct bridge *b = s->data;
	if (b->closing || n == 0)
		return;
	if (n < 0) { /* raft closed its end */
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	struct ha_err e = {0};
	if (ha_tls_write(&b->tls, buf->base, (size_t)n, &e) != 0 || flush_tls(b) != 0)
		bridge_close(b, RAFT_NOCONNECTION);
}

static int bridge_begin(struct bridge *b, SSL_CTX *ctx)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	if (uv_tcp_getpeername(&b->tcp, (struct sockaddr *)&ss, &len) == 0 &&
	    ss.ss_family == AF_INET) {
		char ip[64];
		uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
		snprintf(b->peer, sizeof(b->peer), "%s:%u", ip,
		         ntohs(((struct sockaddr_in *)&ss)->sin_port));
	}
	uv_tcp_nodelay(&b->tcp, 1);
	struct ha_err e = {0};
	if (ha_tls_start(&b->tls, ctx, b->server, &e) != 0) {
		ha_warn("raft-tls-start-failed", "peer=%s error=\"%s\"", b->peer, e.msg);
		return -1;
	}
	if (uv_read_start((uv_stream_t *)&b->tcp, on_alloc, on_tcp_read) != 0)
		return -1;
	return flush_tls(b);
}

static void on_connection(uv_stream_t *l, int status)
{
	struct tx *x = l->data;
	if (status < 0 || x->closing)
		return;
	struct bridge *b = bridge_new(x, true);
	if (b == NULL) {
		/* a listener whose connection is not accepted stops for good (libuv): accept it
		 * into a bare handle and close it */
		uv_tcp_t *t = malloc(sizeof(*t));
		if (t && uv_tcp_init(x->loop, t) == 0) {
			uv_accept(l, (uv_stream_t *)t);
			uv_close((uv_handle_t *)t, (uv_close_cb)free);
		} else {
			free(t);
		}
		return;
	}
	if (uv_accept(l, (uv_stream_t *)&b->tcp) != 0) {
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	/* Handshakes are bounded in number: past HA_TRANSPORT_MAX_PENDING the oldest one still
	 * going gives way (the list is newest first), so a flood of connections that never
	 * speak TLS costs a fixed amount and leaves room for the real peers' next attempt. */
	if (x->pending >= HA_TRANSPORT_MAX_PENDING) {
		struct bridge *old = NULL;
		for (struct bridge *o = b->next; o; o = o->next)
			if (o->counted && !o->closing)
				old = o;
		unsigned long long k;
		if (ha_log_due(&x->full_log, &k))
			ha_warn("raft-handshakes-full",
			        "limit=%d peer=%s action=\"close the oldest handshake\" count=%llu",
			        HA_TRANSPORT_MAX_PENDING, old ? old->peer : "-", k);
		if (old)
			bridge_close(old, RAFT_NOCONNECTION);
	}
	b->counted = true;
	x->pending++;
	uv_timer_start(&b->timer, on_handshake_timeout, HA_TRANSPORT_HANDSHAKE_MS, 0);
	if (bridge_begin(b, x->server) != 0)
		bridge_close(b, RAFT_NOCONNECTION);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct bridge *b = req->data;
	if (b->closing)
		return;
	if (status < 0) {
		ha_debug("raft-connect-failed", "want=%llu error=%s", (unsigned long long)b->want,
		         uv_strerror(status));
		bridge_close(b, RAFT_NOCONNECTION);
		return;
	}
	if (bridge_begin(b, b->tx->client) != 0)
		bridge_close(b, RAFT_NOCONNECTION);
}

static int tx_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	(void)address;
	struct tx *x = t->impl;
	x->self_id = (uint32_t)id;
	return 0;
}

static int tx_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct tx *x = t->impl;
	struct sockaddr_in a;
	if (uv_ip4_addr(x->bind_ip, (int)x->port, &a) != 0)
		return RAFT_INVALID;
	x->accept_cb = cb;
	uv_tcp_init(x->loop, &x->listener);
	x->listener.data = x;
	x->listener_open = true;
	int rc = uv_tcp_bind(&x->listener, (struct sockaddr *)&a, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&x->listener, 128, on_connection);
	if (rc != 0) {
		snprintf(t->errmsg, sizeof(t->errmsg), "listen on %s:%u: %s", x->bind_ip, x->port,
		         uv_strerror(rc));
		return RAFT_IOERR;
	}
	return 0;
}

static int tx_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                      const char *address, raft_uv_connect_cb cb)
{
	struct tx *x = t->impl;
	if (x->closing)
		return RAFT_CANCELED;
	char ip[HA_ADDR_MAX];
	const char *colon = strrchr(address, ':');
	if (colon == NULL || (size_t)(colon - address) >= sizeof(ip))
		return RAFT_NOCONNECTION;
	memcpy(ip, address, (size_t)(colon - address));
	ip[colon - address] = '\0';
	struct sockaddr_in dst, src;
	if (uv_ip4_addr(ip, atoi(colon + 1), &dst) != 0)
		return RAFT_NOCONNECTION;
	struct bridge *b = bridge_new(x, false);
	if (b == NULL)
		return RAFT_NOMEM;
	snprintf(b->peer, sizeof(b->peer), "%s", address);
	b->want = id;
	b->creq.data = b;
	/* leave from the node's own address, as the RPC client does */
	if (uv_ip4_addr(x->bind_ip, 0, &src) == 0)
		uv_tcp_bind(&b->tcp, (struct sockaddr *)&src, 0);
	if (uv_tcp_connect(&b->creq, &b->tcp, (struct sockaddr *)&dst, on_connect) != 0) {
		bridge_close(b, RAFT_NOCONNECTION); /* not yet raft's: no callback */
		return RAFT_NOCONNECTION;
	}
	b->req = req;
	b->cb = cb;
	uv_timer_start(&b->timer, on_handshake_timeout, HA_TRANSPORT_HANDSHAKE_MS, 0);
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct tx *x = h->data;
	x->listener_open = false;
	maybe_closed(x);
}

static void tx_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct tx *x = t->impl;
	x->closing = true;
	x->close_cb = cb;
	if (x->listener_open)
		uv_close((uv_handle_t *)&x->listener, on_listener_closed);
	for (struct bridge *b = x->bridges; b; b = b->next)
		bridge_close(b, RAFT_CANCELED);
	maybe_closed(x);
}

int ha_transport_init(struct raft_uv_transport *t, uv_loop_t *loop, const struct ha_config *c,
                      SSL_CTX *server, SSL_CTX *client, struct ha_err *e)
{
	struct tx *x = calloc(1, sizeof(*x));
	if (x == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	x->t = t;
	x->loop = loop;
	const struct ha_node_conf *self = &c->nodes[c->self];
	snprintf(x->bind_ip, sizeof(x->bind_ip), "%s", self->address);
	x->port = self->raft_port;
	memset(t, 0, sizeof(*t));
	t->impl = x;
	ha_transport_set_peers(t, c, c->join);
	t->version = 1;
	t->init = tx_init;
	t->listen = tx_listen;
	t->connect = tx_connect;
	t->close = tx_close;
	ha_transport_set_tls(t, server, client);
	return 0;
}

void ha_transport_set_peers(struct raft_uv_transport *t, const struct ha_config *c, bool any)
{
	struct tx *x = t->impl;
	x->any_node = any;
	for (unsigned i = 0; i < c->n_nodes; i++) {
		x->nodes[i].id = c->nodes[i].id;
		snprintf(x->nodes[i].addr, sizeof(x->nodes[i].addr), "%s:%u", c->nodes[i].address,
		         c->nodes[i].raft_port);
	}
	x->n_nodes = c->n_nodes;
}

void ha_transport_set_tls(struct raft_uv_transport *t, SSL_CTX *server, SSL_CTX *client)
{
	struct tx *x = t->impl;
	SSL_CTX_up_ref(server);
	SSL_CTX_up_ref(client);
	SSL_CTX_free(x->server);
	SSL_CTX_free(x->client);
	x->server = server;
	x->client = client;
}

void ha_transport_close(struct raft_uv_transport *t)
{
	struct tx *x = t->impl;
	if (x == NULL)
		return;
	SSL_CTX_free(x->server);
	SSL_CTX_free(x->client);
	free(x);
	t->impl = NULL;
}
