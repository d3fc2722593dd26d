/* A framed connection on a uv_tcp_t: shared by the server's accepted connections and the client.
 */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "../common/log.h"
#include "tlsio.h"

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct ha_rpc_conn *c = h->data;
	buf->base = c->rbuf;
	buf->len = sizeof(c->rbuf);
}

/* Both handles live inside c: release c only when the second one has closed. */
static void on_closed(uv_handle_t *h)
{
	struct ha_rpc_conn *c = h->data;
	if (--c->pending_closes > 0)
		return;
	ha_buf_free(&c->in);
	if (c->tls.ssl)
		ha_tls_free(&c->tls);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	if (c->on_closed)
		c->on_closed((uv_handle_t *)&c->tcp);
	else
		free(c);
}

void ha_conn_close(struct ha_rpc_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->pending_closes = 2;
	uv_close((uv_handle_t *)&c->idle, on_closed);
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_idle(uv_timer_t *t)
{
	struct ha_rpc_conn *c = t->data;
	ha_debug("rpc-idle-close", "peer=%s", c->peer);
	ha_conn_close(c);
}

/* Whole frames in c->in go to on_msg. */
static void deliver_frames(struct ha_rpc_conn *c)
{
	while (!c->closing) {
		int type;
		const uint8_t *payload;
		size_t plen, flen;
		struct ha_err e = {0};
		int rc = ha_frame_decode((const uint8_t *)c->in.data, c->in.len,
		                         HA_FRAME_MAX_PAYLOAD, &type, &payload, &plen, &flen, &e);
		if (rc == 0)
			break;
		if (rc < 0) {
			ha_warn("rpc-bad-frame", "peer=%s error=\"%s\" action=close", c->peer,
			        e.msg);
			ha_conn_close(c);
			return;
		}
		if (c->on_msg(c, type, payload, plen) != 0) {
			ha_conn_close(c);
			return;
		}
		ha_buf_consume(&c->in, flen);
	}
}

/* Ciphertext arrived: the handshake goes on, or plaintext is appended to c->in. */
static int tls_input(struct ha_rpc_conn *c, size_t n)
{
	struct ha_err e = {0};
	bool now_ready = false;
	int rc = ha_tls_feed(&c->tls, c->rbuf, n, &c->in, &now_ready, &e);
	if (ha_tls_send_pending(&c->tls, (uv_stream_t *)&c->tcp, &c->outstanding) != 0)
		rc = rc ? rc : HA_EIO;
	if (rc != 0) {
		/* an outsider can cause these at will: one line a second at most, with a count */
		static struct ha_log_limit refused;
		unsigned long long k;
		if (!c->tls.established && ha_log_due(&refused, &k))
			ha_warn("rpc-tls-refused",
			        "peer=%s side=%s error=\"%s\" action=close count=%llu", c->peer,
			        c->server ? "server" : "client", e.msg, k);
		else if (c->tls.established)
			ha_debug("rpc-tls-error", "peer=%s error=\"%s\"", c->peer, e.msg);
		return -1;
	}
	if (now_ready) {
		c->who = c->tls.peer;
		char who[128];
		ha_identity_str(&c->who, who, sizeof(who));
		ha_debug("rpc-tls-ready", "peer=%s who=\"%s\"", c->peer, who);
		if (c->on_ready)
			c->on_ready(c);
	}
	return 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct ha_rpc_conn *c = s->data;
	(void)buf;
	if (c->closing)
		return;
	if (nread < 0) {
		if (nread != UV_EOF)
			ha_debug("rpc-read-error", "peer=%s error=%s", c->peer,
			         uv_strerror((int)nread));
		ha_conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	if (c->tls.ssl) {
		if (tls_input(c, (size_t)nread) != 0) {
			ha_conn_close(c);
			return;
		}
		/* the handshake stays under its own bound; then the idle one (the repeat value) */
		if (c->tls.established)
			uv_timer_again(&c->idle);
	} else {
		uv_timer_again(&c->idle);
		ha_buf_append(&c->in, c->rbuf, (size_t)nread);
	}
	if (ha_buf_failed(&c->in)) {
		ha_error("rpc-oom", "peer=%s", c->peer);
		ha_conn_close(c);
		return;
	}
	deliver_frames(c);
}

struct write_req {
	uv_write_t req;
	struct ha_rpc_conn *c;
	size_t len;
	uint8_t data[];
};

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	w->c->outstanding -= w->len;
	if (status < 0 && !w->c->closing) {
		ha_debug("rpc-write-error", "peer=%s error=%s", w->c->peer, uv_strerror(status));
		ha_conn_close(w->c);
	}
	free(w);
}

int ha_conn_send(struct ha_rpc_conn *c, int type, const void *pb_message)
{
	if (c->closing)
		return HA_EIO;
	const ProtobufCMessage *m = pb_message;
	size_t n = protobuf_c_message_get_packed_size(m);
	if (n > HA_FRAME_MAX_PAYLOAD)
		return HA_ETOOBIG;
	if (c->outstanding + n > HA_RPC_MAX_OUTBUF) {
		/* the peer does not read: do not buffer without bound */
		ha_warn("rpc-slow-peer", "peer=%s outstanding=%zu action=close", c->peer,
		        c->outstanding);
		ha_conn_close(c);
		return HA_EIO;
	}
	struct write_req *w = malloc(sizeof(*w) + HA_FRAME_HEADER + n);
	if (w == NULL)
		return HA_ENOMEM;
	ha_frame_header(w->data, (enum ha_msg_type)type, (uint32_t)n);
	protobuf_c_message_pack(m, w->data + HA_FRAME_HEADER);
	w->c = c;
	w->len = HA_FRAME_HEADER + n;
	if (c->tls.ssl) {
		struct ha_err e = {0};
		int rc = ha_tls_write(&c->tls, w->data, w->len, &e);
		free(w);
		if (rc == 0 &&
		    ha_tls_send_pending(&c->tls, (uv_stream_t *)&c->tcp, &c->outstanding) == 0)
			return 0;
		ha_debug("rpc-tls-write-failed", "peer=%s error=\"%s\"", c->peer, e.msg);
		ha_conn_close(c);
		return HA_EIO;
	}
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
	int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
	if (rc != 0) {
		free(w);
		ha_conn_close(c);
		return HA_EIO;
	}
	c->outstanding += w->len;
	return 0;
}

int ha_conn_init(struct ha_rpc_conn *c, uv_loop_t *loop)
{
	int rc = uv_tcp_init(loop, &c->tcp);
	if (rc != 0)
		return rc;
	uv_timer_init(loop, &c->idle);
	c->tcp.data = c;
	c->idle.data = c;
	return 0;
}

void ha_conn_arm_idle(struct ha_rpc_conn *c, unsigned ms)
{
	uv_timer_start(&c->idle, on_idle, ms, ms);
}

int ha_conn_begin(struct ha_rpc_conn *c, unsigned idle_ms)
{
	/* the handshake has its own, shorter bound; the first established read re-arms idle_ms */
	uv_timer_start(&c->idle, on_idle, c->ctx ? HA_RPC_HANDSHAKE_MS : idle_ms, idle_ms);
	uv_tcp_nodelay(&c->tcp, 1);
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 &&
	    ss.ss_family == AF_INET) {
		char ip[64];
		uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
		snprintf(c->peer, sizeof(c->peer), "%s:%u", ip,
		         ntohs(((struct sockaddr_in *)&ss)->sin_port));
	}
	int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (rc != 0)
		return rc;
	if (c->ctx == NULL) {
		if (c->on_ready)
			c->on_ready(c);
		return 0;
	}
	struct ha_err e = {0};
	if (ha_tls_start(&c->tls, c->ctx, c->server, &e) != 0) {
		ha_warn("rpc-tls-start-failed", "peer=%s error=\"%s\"", c->peer, e.msg);
		return -1;
	}
	return ha_tls_send_pending(&c->tls, (uv_stream_t *)&c->tcp, &c->outstanding);
}
