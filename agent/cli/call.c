#include "call.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../common/clock.h"
#include "../common/frame.h"
#include "../common/secret.h"
#include "../common/tls.h"
#include "../config.h"

static struct {
	const char *conf, *ca, *cert, *key;
	bool insecure;
	bool resolved;
	int rc;
	char err[HA_ERR_MSG_MAX];
	SSL_CTX *ctx; /* NULL and rc 0: plain */
} tls;

void ha_call_tls_options(const char *conf_path, const char *ca, const char *cert, const char *key,
                         bool insecure)
{
	tls.conf = conf_path;
	tls.ca = ca;
	tls.cert = cert;
	tls.key = key;
	tls.insecure = insecure;
}

static const char *pick(const char *given, const char *env, const char *from_conf)
{
	if (given && *given)
		return given;
	const char *v = getenv(env);
	if (v && *v)
		return v;
	return from_conf && *from_conf ? from_conf : NULL;
}

/* Long on purpose: three sources for three files and a flag, in their order, and an error that
 * names every way to give them. */
static int resolve_tls(struct ha_err *e)
{
	if (tls.resolved) {
		if (tls.rc != 0)
			return ha_err_set(e, tls.rc, "%s", tls.err);
		return 0;
	}
	tls.resolved = true;
	struct ha_config *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	struct ha_err ce = {0};
	bool have_conf = tls.conf && ha_config_load(tls.conf, 0, c, &ce) == 0;
	const char *env_insecure = getenv("HAADM_INSECURE");
	bool insecure = tls.insecure || (env_insecure && !strcmp(env_insecure, "1")) ||
	                (have_conf && c->tls_insecure);
	const char *ca = pick(tls.ca, "HAADM_CA", have_conf ? c->tls_ca : NULL);
	const char *cert = pick(tls.cert, "HAADM_CERT", have_conf ? c->tls_haadm_cert : NULL);
	const char *key = pick(tls.key, "HAADM_KEY", have_conf ? c->tls_haadm_key : NULL);
	int rc = 0;
	if (insecure) {
		/* plain: the cluster speaks no TLS */
	} else if (!ca || !cert || !key) {
		rc = ha_err_set(
		    e, HA_ECONFIG,
		    "no operator certificate (%s%s%s missing): give --ca, --cert and --key, "
		    "or set $HAADM_CA, $HAADM_CERT and $HAADM_KEY, or [tls] ca, haadm_cert "
		    "and haadm_key in %s%s (create one with `haadm cert operator NAME "
		    "--role admin --dir DIR`; docs/security.md)",
		    ca ? "" : "CA ", cert ? "" : "certificate ", key ? "" : "key",
		    tls.conf ? tls.conf : "the configuration",
		    have_conf || !tls.conf ? "" : " (not readable)");
	} else {
		struct ha_err se = {0};
		if (ha_secret_file_check(key, &se) != 0) /* the same rule as the agents' keys */
			rc = ha_err_set(e, HA_ECONFIG, "operator key: %s", se.msg);
		else if (ha_trust_file_check(ca, &se) != 0) /* it decides whom haadm believes */
			rc = ha_err_set(e, HA_ECONFIG, "CA file: %s", se.msg);
		else if (ha_tls_ctx_new(ca, cert, key, false, &tls.ctx, e) != 0)
			rc = HA_ECONFIG; /* our files: asking another agent cannot help */
	}
	free(c);
	tls.rc = rc;
	if (rc != 0)
		snprintf(tls.err, sizeof(tls.err), "%s", e->msg);
	return rc;
}

/* The connection: a socket, and TLS over it unless the cluster is insecure. */
struct link {
	int fd;
	SSL *ssl;
	uint64_t deadline;
	char why[512]; /* what OpenSSL said when the session failed */
};

int ha_split_hostport(const char *s, char *host, size_t host_size, unsigned *port)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s || (size_t)(colon - s) >= host_size)
		return HA_EINVAL;
	char *end;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (*end || p == 0 || p > 65535)
		return HA_EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (unsigned)p;
	return 0;
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		uint64_t now = ha_now_ms();
		if (now >= deadline)
			return HA_ETIMEOUT;
		struct pollfd p = {.fd = fd, .events = ev};
		int r = poll(&p, 1, (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r == 0)
			return HA_ETIMEOUT;
		if (errno != EINTR)
			return HA_EIO;
	}
}

static int wait_fd(int fd, short ev, uint64_t deadline);

/* Waits for what OpenSSL asked for. 0, or a negative code. */
static int tls_wait(struct link *l, int r)
{
	int err = SSL_get_error(l->ssl, r);
	if (err == SSL_ERROR_WANT_READ)
		return wait_fd(l->fd, POLLIN, l->deadline);
	if (err == SSL_ERROR_WANT_WRITE)
		return wait_fd(l->fd, POLLOUT, l->deadline);
	return err == SSL_ERROR_ZERO_RETURN ? HA_EIO : HA_EPROTO;
}

static int link_handshake(struct link *l, const char *host, unsigned port, struct ha_err *e)
{
	l->ssl = SSL_new(tls.ctx);
	if (l->ssl == NULL || SSL_set_fd(l->ssl, l->fd) != 1)
		return ha_err_set(e, HA_ENOMEM, "out of memory for TLS");
	for (;;) {
		int r = SSL_connect(l->ssl);
		if (r == 1)
			break;
		int w = tls_wait(l, r);
		if (w == 0)
			continue;
		char why[512];
		long v = SSL_get_verify_result(l->ssl);
		if (v != X509_V_OK)
			snprintf(why, sizeof(why), "the agent's certificate: %s",
			         X509_verify_cert_error_string(v));
		else
			ha_tls_errstr(why, sizeof(why));
		if (w == HA_ETIMEOUT)
			return ha_err_set(e, HA_ETIMEOUT, "TLS with %s:%u: timed out", host, port);
		return ha_err_set(
		    e, HA_ECONNECT,
		    "TLS with %s:%u: %s (is the agent's CA the one given, and is this "
		    "certificate signed by it and not expired?)",
		    host, port, why);
	}
	X509 *peer = SSL_get1_peer_certificate(l->ssl);
	struct ha_identity id;
	struct ha_err ie = {0};
	int rc = peer ? ha_tls_identity(peer, &id, &ie) : HA_EPROTO;
	X509_free(peer);
	if (rc != 0 || id.role != HA_ROLE_NODE)
		return ha_err_set(e, HA_ECONNECT, "%s:%u does not show a node certificate%s%s",
		                  host, port, rc ? ": " : "", rc ? ie.msg : "");
	return 0;
}

/* Writes all of p. 0, or a negative code. */
static int link_send(struct link *l, const uint8_t *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		if (l->ssl) {
			int w = SSL_write(l->ssl, p + off, (int)(n - off));
			if (w > 0) {
				off += (size_t)w;
				continue;
			}
			int rc = tls_wait(l, w);
			if (rc != 0)
				return rc;
			continue;
		}
		ssize_t w = send(l->fd, p + off, n - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR) &&
		    wait_fd(l->fd, POLLOUT, l->deadline) == 0)
			continue;
		return HA_EIO;
	}
	return 0;
}

/* Reads some bytes: >0 read, 0 closed, negative code (HA_ETIMEOUT at the deadline). */
static ssize_t link_recv(struct link *l, uint8_t *p, size_t n)
{
	for (;;) {
		if (l->ssl) {
			int r = SSL_read(l->ssl, p, (int)n);
			if (r > 0)
				return r;
			int err = SSL_get_error(l->ssl, r);
			if (err == SSL_ERROR_ZERO_RETURN)
				return 0;
			if (err == SSL_ERROR_SSL) {
				/* with TLS 1.3 the agent judges our certificate after the
				 * handshake: its alert arrives here */
				ha_tls_errstr(l->why, sizeof(l->why));
				return HA_EPERM;
			}
			int rc = tls_wait(l, r);
			if (rc != 0)
				return rc == HA_EIO ? 0 : rc;
			continue;
		}
		ssize_t r = recv(l->fd, p, n, 0);
		if (r >= 0)
			return r;
		if (errno != EAGAIN && errno != EINTR)
			return HA_EIO;
		int rc = wait_fd(l->fd, POLLIN, l->deadline);
		if (rc != 0)
			return rc;
	}
}

static int call_blocked(const char *host, unsigned port, int type, const void *pb_message,
                        unsigned timeout_ms, int *resp_type, uint8_t **resp, size_t *resp_len,
                        struct ha_err *e);

int ha_call(const char *host, unsigned port, int type, const void *pb_message, unsigned timeout_ms,
            int *resp_type, uint8_t **resp, size_t *resp_len, struct ha_err *e)
{
	int trc = resolve_tls(e);
	if (trc != 0)
		return trc;
	/* An agent that closes the connection (a refusal, every slot taken) while OpenSSL writes to
	 * it (write(2), not send with MSG_NOSIGNAL) would end haadm by SIGPIPE, saying nothing:
	 * blocked in this thread for the exchange, and one raised by it discarded at the end, so
	 * that the failed write is reported as an error. */
	sigset_t pipe_set, old_mask;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigset_t pending;
	sigpending(&pending);
	bool pipe_was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
	int rc =
	    call_blocked(host, port, type, pb_message, timeout_ms, resp_type, resp, resp_len, e);
	if (!pipe_was_pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	return rc;
}

/* Long on purpose: one request-answer exchange (connect, send, read the frame) under one
 * deadline, each step's error said in its own words. SIGPIPE blocked (ha_call). */
static int call_blocked(const char *host, unsigned port, int type, const void *pb_message,
                        unsigned timeout_ms, int *resp_type, uint8_t **resp, size_t *resp_len,
                        struct ha_err *e)
{
	uint64_t deadline = ha_now_ms() + timeout_ms;
	struct link l = {.fd = -1, .deadline = deadline};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return ha_err_set(e, HA_EINVAL, "%s is not an IPv4 address", host);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ha_err_set(e, HA_EIO, "socket: %s", strerror(errno));
	/* TLS 1.3: the request follows the client's Finished at once, and the agent answers
	 * nothing in between; with Nagle it would wait for the agent's delayed ACK (40 ms) */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc;
	uint8_t *in = NULL;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
		rc = ha_err_set(e, HA_ECONNECT, "connect %s:%u: %s", host, port, strerror(errno));
		goto out;
	}
	if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0) {
		rc = ha_err_set(e, HA_ECONNECT, "connect %s:%u: timed out", host, port);
		goto out;
	}
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr) {
		rc = ha_err_set(e, HA_ECONNECT, "connect %s:%u: %s", host, port, strerror(soerr));
		goto out;
	}
	l.fd = fd;
	if (tls.ctx && (rc = link_handshake(&l, host, port, e)) != 0)
		goto out;

	size_t n = protobuf_c_message_get_packed_size(pb_message);
	uint8_t *out = malloc(HA_FRAME_HEADER + n);
	if (out == NULL) {
		rc = ha_err_set(e, HA_ENOMEM, "out of memory");
		goto out;
	}
	ha_frame_header(out, (enum ha_msg_type)type, (uint32_t)n);
	protobuf_c_message_pack(pb_message, out + HA_FRAME_HEADER);
	int src = link_send(&l, out, HA_FRAME_HEADER + n);
	free(out);
	if (src != 0) {
		rc = ha_err_set(e, src == HA_ETIMEOUT ? HA_ETIMEOUT : HA_EIO, "send to %s:%u: %s",
		                host, port, src == HA_ETIMEOUT ? "timed out" : "connection lost");
		goto out;
	}

	size_t cap = 65536, have = 0;
	in = malloc(cap);
	if (in == NULL) {
		rc = ha_err_set(e, HA_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		int t;
		const uint8_t *payload;
		size_t plen, flen;
		struct ha_err fe = {0};
		int d = ha_frame_decode(in, have, HA_FRAME_MAX_PAYLOAD, &t, &payload, &plen, &flen,
		                        &fe);
		if (d < 0) {
			rc = ha_err_set(e, HA_EPROTO, "reply from %s:%u: %s", host, port, fe.msg);
			goto out;
		}
		if (d == 1) {
			uint8_t *p = malloc(plen ? plen : 1);
			if (p == NULL) {
				rc = ha_err_set(e, HA_ENOMEM, "out of memory");
				goto out;
			}
			memcpy(p, payload, plen);
			*resp = p;
			*resp_len = plen;
			*resp_type = t;
			rc = 0;
			goto out;
		}
		if (have == cap) {
			if (cap >= HA_FRAME_HEADER + HA_FRAME_MAX_PAYLOAD) {
				rc = ha_err_set(e, HA_ETOOBIG, "reply too large");
				goto out;
			}
			uint8_t *bigger = realloc(in, cap * 2);
			if (bigger == NULL) {
				rc = ha_err_set(e, HA_ENOMEM, "out of memory");
				goto out;
			}
			in = bigger;
			cap *= 2;
		}
		ssize_t r = link_recv(&l, in + have, cap - have);
		if (r > 0) {
			have += (size_t)r;
			continue;
		}
		if (r == 0) {
			rc = ha_err_set(e, HA_EIO, "%s:%u closed the connection", host, port);
			goto out;
		}
		if (r == HA_ETIMEOUT) {
			rc = ha_err_set(e, HA_ETIMEOUT, "no reply from %s:%u within %u ms", host,
			                port, timeout_ms);
			goto out;
		}
		if (r == HA_EPERM) {
			rc = ha_err_set(e, HA_EPERM,
			                "%s:%u refused this certificate (%s): is it signed by the "
			                "cluster's CA and not expired? (haadm cert show FILE)",
			                host, port, l.why);
			goto out;
		}
		rc = ha_err_set(e, HA_EIO, "recv from %s:%u: connection lost", host, port);
		goto out;
	}
out:
	free(in);
	SSL_free(l.ssl);
	close(fd);
	return rc;
}
