#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

struct http_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wr;
	struct ha_http_server *srv;
	int slot; /* -1: holds no slot */
	int open; /* handles not yet closed */
	bool closing;
	bool answered;
	size_t len;
	char in[HA_HTTP_MAX_REQUEST];
	struct ha_buf out;
};

struct ha_http_server {
	uv_tcp_t listener;
	uv_loop_t *loop;
	ha_http_handler handler;
	void *data;
	bool closing;
	bool listener_open;
	unsigned n_conns;
	struct http_conn *conns[HA_HTTP_MAX_CONNS];
};

static void maybe_free_server(struct ha_http_server *s)
{
	if (s->closing && !s->listener_open && s->n_conns == 0)
		free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct http_conn *c = h->data;
	if (--c->open > 0)
		return;
	struct ha_http_server *s = c->srv;
	if (c->slot >= 0) {
		s->conns[c->slot] = NULL;
		s->n_conns--;
	}
	ha_buf_free(&c->out);
	free(c);
	maybe_free_server(s);
}

static void conn_close(struct http_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	conn_close(w->data);
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

static void respond(struct http_conn *c, int status, const char *type, struct ha_buf *body,
                    bool head)
{
	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	const char *b = body ? ha_buf_cstr(body) : "";
	size_t blen = body && !ha_buf_failed(body) ? body->len : 0;
	ha_buf_printf(&c->out,
	              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	              "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
	              status, reason(status), type ? type : "text/plain; charset=utf-8", blen);
	if (!head && blen)
		ha_buf_append(&c->out, b, blen);
	if (ha_buf_failed(&c->out)) {
		conn_close(c);
		return;
	}
	uv_buf_t ub = uv_buf_init(c->out.data, (unsigned)c->out.len);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &ub, 1, on_written) != 0)
		conn_close(c);
}

static void respond_text(struct http_conn *c, int status, const char *text)
{
	struct ha_buf b = HA_BUF_INIT;
	ha_buf_puts(&b, text);
	respond(c, status, NULL, &b, false);
	ha_buf_free(&b);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct http_conn *c = h->data;
	size_t room = sizeof(c->in) - c->len;
	*buf = uv_buf_init(c->in + c->len, (unsigned)room);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	(void)buf;
	struct http_conn *c = st->data;
	if (c->closing || c->answered)
		return;
	if (n < 0) {
		conn_close(c); /* EOF before a whole request, or an error */
		return;
	}
	c->len += (size_t)n;
	struct ha_http_req req;
	int rc = ha_http_parse(c->in, c->len, &req);
	if (rc == HA_HTTP_MORE && c->len < sizeof(c->in))
		return;
	if (rc == HA_HTTP_MORE || rc == HA_HTTP_BAD) {
		ha_warn("http-bad-request", "bytes=%zu action=close", c->len);
		respond_text(c, 400, "bad request\n");
		return;
	}
	if (rc == HA_HTTP_METHOD) {
		respond_text(c, 405, "only GET and HEAD\n");
		return;
	}
	struct ha_http_resp resp = {.status = 404, .body = HA_BUF_INIT};
	c->srv->handler(c->srv->data, &req, &resp);
	respond(c, resp.status, resp.content_type, &resp.body, !strcmp(req.method, "HEAD"));
	ha_buf_free(&resp.body);
}

static void on_deadline(uv_timer_t *t)
{
	struct http_conn *c = t->data;
	if (!c->answered)
		ha_warn("http-slow-client", "bytes=%zu deadline_ms=%d action=close", c->len,
		        HA_HTTP_DEADLINE_MS);
	conn_close(c);
}

static void on_connection(uv_stream_t *l, int status)
{
	struct ha_http_server *s = l->data;
	if (status < 0)
		return;
	struct http_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->srv = s;
	c->slot = -1;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open = 2;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	for (int i = 0; i < HA_HTTP_MAX_CONNS; i++)
		if (s->conns[i] == NULL) {
			c->slot = i;
			break;
		}
	if (c->slot < 0) {
		ha_warn("http-too-many-connections", "limit=%d action=close", HA_HTTP_MAX_CONNS);
		conn_close(c);
		return;
	}
	s->conns[c->slot] = c;
	s->n_conns++;
	uv_timer_start(&c->timer, on_deadline, HA_HTTP_DEADLINE_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
		conn_close(c);
}

int ha_http_server_start(uv_loop_t *loop, const char *ip, unsigned port, ha_http_handler h,
                         void *data, struct ha_http_server **out, struct ha_err *e)
{
	struct sockaddr_in addr;
	if (uv_ip4_addr(ip, (int)port, &addr) != 0)
		return ha_err_set(e, HA_EINVAL, "bad address %s", ip);
	struct ha_http_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	s->loop = loop;
	s->handler = h;
	s->data = data;
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	s->listener_open = true;
	int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, 64, on_connection);
	if (rc != 0) {
		uv_close((uv_handle_t *)&s->listener, (uv_close_cb)free);
		return ha_err_set(e, HA_EIO, "http: listen on %s:%u: %s", ip, port,
		                  uv_strerror(rc));
	}
	*out = s;
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct ha_http_server *s = h->data;
	s->listener_open = false;
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
}
