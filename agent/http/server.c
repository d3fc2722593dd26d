/* The HTTP server (server.h). A connection's life:
 *
 *   1. accepted into a free slot, or into the slot of the connection slots.h picks, which is
 *      closed; the header deadline starts and is never extended;
 *   2. its bytes go to conn_feed (from the read callback; a TLS layer would feed it what it
 *      deciphered), which keeps them up to the request limit and parses them;
 *   3. a whole request, or a bad one, is answered at once: the answer is built, the write
 *      deadline replaces the header deadline, and what the client still sends is discarded;
 *   4. once the answer is written, our side is shut down (FIN) and the connection lingers until
 *      the client closes or the linger deadline: closing with unread input would send a reset,
 *      which can destroy the answer before the client reads it;
 *   5. closed; the slot is free at once, the memory in the close callback. */
#include "server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../rpc/tlsio.h"
#include "slots.h"

#define READ_CHUNK 4096

const int ha_http_codes[HA_HTTP_N_CODES] = {200, 400, 403, 404, 405, 500, 503, 0};

/* How a connection speaks: decided by its first byte when the server has TLS (a TLS record of
 * type handshake is 0x16; no HTTP request starts with it). */
enum conn_mode { MODE_UNKNOWN, MODE_PLAIN, MODE_TLS };

struct http_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wr;
	uv_shutdown_t sh;
	struct ha_http_server *srv;
	enum ha_http_slot_state state;
	int slot; /* -1: holds none (closing, or never had one) */
	int open; /* handles not yet closed */
	bool closing;
	bool spare;     /* the server's reserve, not malloc'd (server.spare) */
	bool peer_done; /* the client shut its side down after its request */
	uint64_t order;
	uint64_t turn; /* the loop turn of its accept (server.turn) */
	uint32_t peer; /* IPv4, network byte order; 0 unknown */
	enum conn_mode mode;
	struct ha_tls tls; /* MODE_TLS */
	size_t tls_out;    /* handshake bytes queued, not yet written */
	size_t len;
	size_t scanned; /* ha_http_parse's resume point */
	char in[HA_HTTP_MAX_REQUEST];
	struct ha_buf out;
};

/* Rate-limited logging: one line per kind at most every HA_HTTP_LOG_EVERY_MS. */
enum note_kind {
	NOTE_SLOW,
	NOTE_EVICTED,
	NOTE_UNREAD,
	NOTE_REFUSED,
	NOTE_ERROR,
	NOTE_BAD,
	NOTE_BIG,
	NOTE_TLS,
	NOTE_N_
};
struct note {
	uint64_t last_ms;
	uint64_t held; /* occurrences since the last line */
	bool ever;
};

struct ha_http_server {
	uv_tcp_t listener;
	uv_loop_t *loop;
	ha_http_handler handler;
	void *data;
	uv_prepare_t turns; /* counts the loop's turns, just before each poll */
	uint64_t turn;
	bool closing;
	bool listener_open;
	bool turns_open;
	unsigned n_live; /* allocated connections, with or without a slot */
	uint64_t next_order;
	struct ha_http_limits lim;
	struct ha_http_stats st;
	struct note notes[NOTE_N_];
	SSL_CTX *ctx;      /* NULL: plain HTTP only (insecure = yes) */
	bool plain_checks; /* with ctx: /primary and /replica also answer plain HTTP */
	struct http_conn *conns[HA_HTTP_MAX_CONNS];
	/* Accepts a connection when memory runs out, only to close it: a listener whose
	 * connection is not accepted stops listening for good (libuv). */
	struct http_conn *spare;
	bool spare_busy;
	/* The read buffer of every connection: libuv calls a read callback right after its
	 * allocation, so one at a time uses it. */
	char rbuf[READ_CHUNK];
};

const char *ha_http_drop_name(enum ha_http_drop d)
{
	static const char *const names[HA_HTTP_DROP_N_] = {"slow", "evicted", "unread", "refused",
	                                                   "error"};
	return (unsigned)d < HA_HTTP_DROP_N_ ? names[d] : "?";
}

/* Counts one occurrence of kind; true when a line is due now, with *count the occurrences it
 * stands for (this one and those held back since the previous line). */
static bool note_due(struct ha_http_server *s, enum note_kind kind, unsigned long long *count)
{
	struct note *n = &s->notes[kind];
	uint64_t now = uv_now(s->loop);
	n->held++;
	if (n->ever && now - n->last_ms < HA_HTTP_LOG_EVERY_MS)
		return false;
	*count = n->held;
	n->held = 0;
	n->last_ms = now;
	n->ever = true;
	return true;
}

static const char *peer_str(const struct http_conn *c, char *buf, size_t size)
{
	struct in_addr a = {.s_addr = c->peer};
	if (c->peer == 0 || inet_ntop(AF_INET, &a, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "unknown");
	return buf;
}

static void maybe_free_server(struct ha_http_server *s)
{
	if (s->closing && !s->listener_open && !s->turns_open && s->n_live == 0) {
		SSL_CTX_free(s->ctx);
		free(s->spare);
		free(s);
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	struct http_conn *c = h->data;
	if (--c->open > 0)
		return;
	struct ha_http_server *s = c->srv;
	ha_buf_free(&c->out);
	if (c->tls.ssl)
		ha_tls_free(&c->tls);
	if (c->spare)
		s->spare_busy = false;
	else
		free(c);
	s->n_live--;
	maybe_free_server(s);
}

/* Gives the slot up at once (a new connection may take it in the same callback); the memory
 * goes in the close callback. */
static void conn_close(struct http_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->slot >= 0) {
		c->srv->conns[c->slot] = NULL;
		c->srv->st.open--;
		c->slot = -1;
	}
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void conn_drop(struct http_conn *c, enum ha_http_drop why)
{
	struct ha_http_server *s = c->srv;
	s->st.dropped[why]++;
	unsigned long long k;
	char ip[INET_ADDRSTRLEN];
	switch (why) {
	case HA_HTTP_DROP_SLOW:
		if (note_due(s, NOTE_SLOW, &k))
			ha_warn("http-slow-client",
			        "peer=%s bytes=%zu deadline_ms=%u action=close count=%llu",
			        peer_str(c, ip, sizeof(ip)), c->len, s->lim.header_ms, k);
		break;
	case HA_HTTP_DROP_EVICTED:
		if (note_due(s, NOTE_EVICTED, &k))
			ha_warn(
			    "http-evicted",
			    "peer=%s bytes=%zu limit=%d action=close reason=\"every slot taken: "
			    "the longest waiting gives way\" count=%llu",
			    peer_str(c, ip, sizeof(ip)), c->len, HA_HTTP_MAX_CONNS, k);
		break;
	case HA_HTTP_DROP_UNREAD:
		if (note_due(s, NOTE_UNREAD, &k))
			ha_warn("http-unread-answer",
			        "peer=%s bytes=%zu deadline_ms=%u action=close count=%llu",
			        peer_str(c, ip, sizeof(ip)), c->out.len, s->lim.write_ms, k);
		break;
	case HA_HTTP_DROP_REFUSED:
		if (note_due(s, NOTE_REFUSED, &k))
			ha_warn("http-refused",
			        "peer=%s limit=%d action=close reason=\"every slot held by a "
			        "connection not read yet\" count=%llu",
			        peer_str(c, ip, sizeof(ip)), HA_HTTP_MAX_CONNS, k);
		break;
	default:
		break;
	}
	conn_close(c);
}

/* Errors without a connection to name (accept, memory): counted and logged alike. */
static void note_error(struct ha_http_server *s, const char *what, int uv_err)
{
	s->st.dropped[HA_HTTP_DROP_ERROR]++;
	unsigned long long k;
	if (note_due(s, NOTE_ERROR, &k))
		ha_warn("http-error", "what=%s error=\"%s\" count=%llu", what,
		        uv_err ? uv_strerror(uv_err) : "out of memory", k);
}

static void on_deadline(uv_timer_t *t)
{
	struct http_conn *c = t->data;
	if (c->state == HA_HTTP_SLOT_WAITING)
		conn_drop(c, HA_HTTP_DROP_SLOW);
	else if (c->state == HA_HTTP_SLOT_WRITING)
		conn_drop(c, HA_HTTP_DROP_UNREAD);
	else
		conn_close(c); /* answered and written: the client is slow to close, no harm */
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct http_conn *c = req->data;
	if (status < 0)
		conn_close(c);
}

static void on_written(uv_write_t *w, int status)
{
	struct http_conn *c = w->data;
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c); /* the client went away: nothing more to say to it */
		return;
	}
	if (c->peer_done) {
		conn_close(c); /* nothing left to read: the close sends a plain FIN */
		return;
	}
	/* 4. linger: FIN, then wait (briefly) for the client's */
	c->state = HA_HTTP_SLOT_DONE;
	ha_buf_free(&c->out);
	uv_timer_start(&c->timer, on_deadline, c->srv->lim.linger_ms, 0);
	c->sh.data = c;
	if (uv_shutdown(&c->sh, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
		conn_close(c);
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

/* The bytes of c->out to the client, encrypted first on a TLS connection. */
static void conn_write(struct http_conn *c)
{
	if (c->mode == MODE_TLS) {
		struct ha_err e = {0};
		if (ha_tls_write(&c->tls, c->out.data, c->out.len, &e) != 0) {
			note_error(c->srv, "tls write", 0);
			conn_close(c);
			return;
		}
		size_t n = ha_tls_pending(&c->tls);
		char *ct = malloc(n ? n : 1);
		size_t got = ct ? ha_tls_take(&c->tls, ct, n) : 0;
		ha_buf_reset(&c->out);
		ha_buf_append(&c->out, ct, got);
		free(ct);
		if (ct == NULL || ha_buf_failed(&c->out)) {
			note_error(c->srv, "answer", 0);
			conn_close(c);
			return;
		}
	}
	uv_buf_t ub = uv_buf_init(c->out.data, (unsigned)c->out.len);
	c->wr.data = c;
	int rc = uv_write(&c->wr, (uv_stream_t *)&c->tcp, &ub, 1, on_written);
	if (rc != 0) {
		note_error(c->srv, "write", rc);
		conn_close(c);
	}
}

/* 3. The one answer of the connection: at most HA_HTTP_MAX_ANSWER bytes, else a 500. */
static void respond(struct http_conn *c, int status, const char *type, struct ha_buf *body,
                    bool head)
{
	struct ha_http_server *s = c->srv;
	c->state = HA_HTTP_SLOT_WRITING;
	uv_timer_start(&c->timer, on_deadline, s->lim.write_ms, 0);
	size_t blen = body && !ha_buf_failed(body) ? body->len : 0;
	const char *b = blen ? body->data : "";
	unsigned long long k;
	if (blen > HA_HTTP_MAX_ANSWER - 512 || (body && ha_buf_failed(body))) {
		if (note_due(s, NOTE_BIG, &k))
			ha_error("http-answer-too-large",
			         "status=%d bytes=%zu limit=%u action=answer-500 count=%llu",
			         status, blen, HA_HTTP_MAX_ANSWER, k);
		status = 500;
		type = NULL;
		b = "answer too large or out of memory\n";
		blen = strlen(b);
	}
	unsigned i = 0;
	while (i + 1 < HA_HTTP_N_CODES && ha_http_codes[i] != status)
		i++;
	s->st.answered[i]++;
	ha_buf_printf(&c->out,
	              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	              "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
	              status, reason(status), type ? type : "text/plain; charset=utf-8", blen);
	if (!head && blen)
		ha_buf_append(&c->out, b, blen);
	if (ha_buf_failed(&c->out)) {
		note_error(s, "answer", 0);
		conn_close(c);
		return;
	}
	conn_write(c);
}

static void respond_bad(struct http_conn *c, int status, const char *text)
{
	unsigned long long k;
	char ip[INET_ADDRSTRLEN];
	if (note_due(c->srv, NOTE_BAD, &k))
		ha_warn("http-bad-request", "peer=%s bytes=%zu status=%d action=answer count=%llu",
		        peer_str(c, ip, sizeof(ip)), c->len, status, k);
	struct ha_buf b = HA_BUF_INIT;
	ha_buf_puts(&b, text);
	respond(c, status, NULL, &b, false);
	ha_buf_free(&b);
}

/* 2. A connection's request bytes as they arrive, from its socket or from a TLS layer: kept up
 * to HA_HTTP_MAX_REQUEST, parsed, answered as soon as whole or wrong. Bytes after the answer
 * began are discarded. Arriving bytes never extend the deadline. */
static void conn_feed(struct http_conn *c, const char *p, size_t n)
{
	if (c->closing || c->state != HA_HTTP_SLOT_WAITING || n == 0)
		return;
	size_t room = sizeof(c->in) - c->len;
	size_t take = n < room ? n : room;
	memcpy(c->in + c->len, p, take);
	c->len += take;
	struct ha_http_req req;
	int rc = ha_http_parse(c->in, c->len, &c->scanned, &req);
	if (rc == HA_HTTP_MORE)
		return; /* under the limit: parse never says more once it is reached */
	if (rc == HA_HTTP_BAD) {
		respond_bad(c, 400, "bad request\n");
		return;
	}
	if (rc == HA_HTTP_METHOD) {
		respond_bad(c, 405, "only GET and HEAD\n");
		return;
	}
	if (c->mode == MODE_PLAIN && c->srv->ctx &&
	    !(c->srv->plain_checks &&
	      (!strcmp(req.path, "/primary") || !strcmp(req.path, "/replica")))) {
		respond_bad(
		    c, 403,
		    c->srv->plain_checks
		        ? "only /primary and /replica answer plain HTTP; use TLS with a client "
		          "certificate (docs/security.md)\n"
		        : "this port speaks TLS with a client certificate (docs/security.md)\n");
		return;
	}
	struct ha_http_resp resp = {.status = 404, .body = HA_BUF_INIT};
	c->srv->handler(c->srv->data, &req, &resp);
	respond(c, resp.status, resp.content_type, &resp.body, !strcmp(req.method, "HEAD"));
	ha_buf_free(&resp.body);
}

/* Ciphertext from a TLS client: the handshake goes on (its answers sent at once), and what it
 * deciphers is fed to the request like plain bytes. A refused certificate closes the
 * connection, logged (rate-limited) with why. */
static void tls_input(struct http_conn *c, const char *p, size_t n)
{
	struct ha_http_server *s = c->srv;
	struct ha_err e = {0};
	if (c->tls.ssl == NULL && ha_tls_start(&c->tls, s->ctx, true, &e) != 0) {
		note_error(s, "tls", 0);
		conn_close(c);
		return;
	}
	struct ha_buf plain = HA_BUF_INIT;
	bool now = false;
	int rc = ha_tls_feed(&c->tls, p, n, &plain, &now, &e);
	if (c->state == HA_HTTP_SLOT_WAITING &&
	    ha_tls_send_pending(&c->tls, (uv_stream_t *)&c->tcp, &c->tls_out) != 0 && rc == 0)
		rc = HA_EIO;
	if (rc != 0) {
		unsigned long long k;
		char ip[INET_ADDRSTRLEN];
		if (note_due(s, NOTE_TLS, &k))
			ha_warn("http-tls-refused", "peer=%s error=\"%s\" action=close count=%llu",
			        peer_str(c, ip, sizeof(ip)), e.msg, k);
		ha_buf_free(&plain);
		conn_close(c);
		return;
	}
	if (plain.len)
		conn_feed(c, plain.data, plain.len);
	ha_buf_free(&plain);
}

void ha_http_server_set_tls(struct ha_http_server *s, SSL_CTX *ctx, bool plain_checks)
{
	if (ctx)
		SSL_CTX_up_ref(ctx);
	SSL_CTX_free(s->ctx);
	s->ctx = ctx;
	s->plain_checks = plain_checks;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct http_conn *c = h->data;
	*buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct http_conn *c = st->data;
	if (c->closing || n == 0)
		return;
	if (n < 0) {
		/* The client closed its side, or failed. While its answer is written, a close of
		 * its side only (a client may shut down after its request) lets the write finish;
		 * otherwise (before a whole request, or after the answer: the normal end) the
		 * connection is done. */
		if (n == UV_EOF && c->state == HA_HTTP_SLOT_WRITING) {
			c->peer_done = true;
			uv_read_stop(st);
			return;
		}
		conn_close(c);
		return;
	}
	if (c->mode == MODE_UNKNOWN)
		c->mode =
		    c->srv->ctx && (unsigned char)buf->base[0] == 0x16 ? MODE_TLS : MODE_PLAIN;
	if (c->mode == MODE_TLS) {
		tls_input(c, buf->base, (size_t)n);
		return;
	}
	conn_feed(c, buf->base, (size_t)n);
}

/* What a waiting connection has shown (slots.h): plain bytes on a TLS server that serves no
 * plain checks can only earn a 403. */
static enum ha_http_slot_rank rank_of(const struct http_conn *c)
{
	if (c->mode == MODE_TLS)
		return c->tls.established ? HA_HTTP_RANK_VERIFIED : HA_HTTP_RANK_TRYING;
	if (c->mode == MODE_PLAIN && (c->srv->ctx == NULL || c->srv->plain_checks))
		return HA_HTTP_RANK_TRYING;
	return HA_HTTP_RANK_PLAIN;
}

/* 1. Where a new connection goes: a free slot, or the slot of the one slots.h picks; -1 when
 * none can be freed. A connection is fresh during the turn of its accept and the next: the
 * poll of that next turn may run the listener's accepts before its first read. */
static int take_slot(struct ha_http_server *s)
{
	struct ha_http_slot v[HA_HTTP_MAX_CONNS] = {0};
	for (int i = 0; i < HA_HTTP_MAX_CONNS; i++) {
		const struct http_conn *c = s->conns[i];
		if (c == NULL)
			return i;
		v[i] = (struct ha_http_slot){.state = c->state,
		                             .order = c->order,
		                             .peer = c->peer,
		                             .fresh = s->turn - c->turn < 2,
		                             .rank = rank_of(c)};
	}
	int victim = ha_http_slot_victim(v, HA_HTTP_MAX_CONNS);
	if (victim >= 0)
		conn_drop(s->conns[victim], HA_HTTP_DROP_EVICTED);
	return victim;
}

static void on_turn(uv_prepare_t *p)
{
	struct ha_http_server *s = p->data;
	s->turn++;
}

static struct http_conn *conn_new(struct ha_http_server *s)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		note_error(s, "accept", 0);
		if (s->spare_busy)
			return NULL;
		s->spare_busy = true;
		c = s->spare;
		memset(c, 0, sizeof(*c));
		c->spare = true;
	}
	c->srv = s;
	c->slot = -1;
	c->state = HA_HTTP_SLOT_WAITING;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open = 2;
	s->n_live++;
	return c;
}

static void on_connection(uv_stream_t *l, int status)
{
	struct ha_http_server *s = l->data;
	if (status < 0) {
		note_error(s, "accept", status);
		return;
	}
	struct http_conn *c = conn_new(s);
	if (c == NULL)
		return; /* out of memory twice over: the listener waits for the next accept */
	int rc = uv_accept(l, (uv_stream_t *)&c->tcp);
	if (rc != 0 || c->spare) {
		if (rc != 0)
			note_error(s, "accept", rc);
		conn_close(c);
		return;
	}
	s->st.accepted++;
	uv_tcp_nodelay(&c->tcp, 1); /* a TLS answer right after the handshake: no Nagle wait */
	if (s->lim.sndbuf > 0) {
		int v = s->lim.sndbuf;
		uv_send_buffer_size((uv_handle_t *)&c->tcp, &v);
	}
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0 &&
	    ss.ss_family == AF_INET)
		c->peer = ((struct sockaddr_in *)&ss)->sin_addr.s_addr;
	c->order = ++s->next_order;
	c->turn = s->turn;
	c->slot = take_slot(s);
	if (c->slot < 0) {
		conn_drop(c, HA_HTTP_DROP_REFUSED);
		return;
	}
	s->conns[c->slot] = c;
	s->st.open++;
	uv_timer_start(&c->timer, on_deadline, s->lim.header_ms, 0);
	rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (rc != 0) {
		note_error(s, "read", rc);
		conn_close(c);
	}
}

int ha_http_server_start(uv_loop_t *loop, const char *ip, unsigned port, ha_http_handler h,
                         void *data, struct ha_http_server **out, struct ha_err *e)
{
	struct sockaddr_in addr;
	if (uv_ip4_addr(ip, (int)port, &addr) != 0)
		return ha_err_set(e, HA_EINVAL, "bad address %s", ip);
	struct ha_http_server *s = calloc(1, sizeof(*s));
	struct http_conn *spare = malloc(sizeof(*spare));
	if (s == NULL || spare == NULL) {
		free(s);
		free(spare);
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	}
	s->spare = spare;
	s->loop = loop;
	s->handler = h;
	s->data = data;
	s->lim = (struct ha_http_limits){HA_HTTP_HEADER_MS, HA_HTTP_WRITE_MS, HA_HTTP_LINGER_MS, 0};
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	s->listener_open = true;
	int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, 64, on_connection);
	if (rc != 0) {
		free(spare);
		/* the listener is s's first member: freeing it frees s, once libuv let it go */
		uv_close((uv_handle_t *)&s->listener, (uv_close_cb)free);
		return ha_err_set(e, HA_EIO, "http: listen on %s:%u: %s", ip, port,
		                  uv_strerror(rc));
	}
	uv_prepare_init(loop, &s->turns);
	s->turns.data = s;
	s->turns_open = true;
	uv_prepare_start(&s->turns, on_turn);
	uv_unref((uv_handle_t *)&s->turns); /* counting turns keeps no loop alive */
	*out = s;
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct ha_http_server *s = h->data;
	s->listener_open = false;
	maybe_free_server(s);
}

static void on_turns_closed(uv_handle_t *h)
{
	struct ha_http_server *s = h->data;
	s->turns_open = false;
	maybe_free_server(s);
}

void ha_http_server_close(struct ha_http_server *s)
{
	if (s == NULL)
		return;
	s->closing = true;
	for (int i = 0; i < HA_HTTP_MAX_CONNS; i++)
		if (s->conns[i])
			conn_close(s->conns[i]);
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
	uv_close((uv_handle_t *)&s->turns, on_turns_closed);
}

unsigned ha_http_server_port(const struct ha_http_server *s)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) != 0 ||
	    ss.ss_family != AF_INET)
		return 0;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void ha_http_server_stats(const struct ha_http_server *s, struct ha_http_stats *out)
{
	*out = s->st;
}

void ha_http_server_set_limits(struct ha_http_server *s, const struct ha_http_limits *l)
{
	s->lim = *l;
}
