/* The TLS engine over memory BIOs (tls.h). The identity functions live in tls_id.c. */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

void ha_tls_errstr(char *out, size_t size)
{
	size_t used = 0;
	out[0] = '\0';
	unsigned long code;
	while ((code = ERR_get_error()) != 0) {
		if (used + 2 >= size)
			continue; /* keep emptying the queue */
		char one[256];
		ERR_error_string_n(code, one, sizeof(one));
		int w = snprintf(out + used, size - used, "%s%s", used ? "; " : "", one);
		if (w > 0)
			used += (size_t)w < size - used ? (size_t)w : size - used - 1;
	}
	if (!out[0])
		snprintf(out, size, "no detail from OpenSSL");
}

static int ctx_fail(SSL_CTX *ctx, struct ha_err *e, int code, const char *what, const char *path)
{
	char why[512];
	ha_tls_errstr(why, sizeof(why));
	SSL_CTX_free(ctx);
	return ha_err_set(e, code, "%s %s: %s", what, path, why);
}

int ha_tls_ctx_new(const char *ca, const char *cert, const char *key, bool server, SSL_CTX **out,
                   struct ha_err *e)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL)
		return ha_err_set(e, HA_ENOMEM, "SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	/* no session tickets or resumption: every connection proves who it is afresh */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		return ctx_fail(ctx, e, HA_EINVAL, "CA file", ca);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return ctx_fail(ctx, e, HA_EINVAL, "certificate", cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return ctx_fail(ctx, e, HA_EINVAL, "private key", key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return ctx_fail(ctx, e, HA_EINVAL, "private key does not match the certificate",
		                key);
	/* our own certificate must be one the peers will take: signed by the CA file we trust
	 * them with, valid now, fit for its side (a reload with a wrong file keeps the old one) */
	X509_STORE_CTX *v = X509_STORE_CTX_new();
	X509 *own = SSL_CTX_get0_certificate(ctx);
	STACK_OF(X509) *chain = NULL;
	SSL_CTX_get0_chain_certs(ctx, &chain);
	int ok = v && own && X509_STORE_CTX_init(v, SSL_CTX_get_cert_store(ctx), own, chain) == 1 &&
	         X509_STORE_CTX_set_purpose(v, server ? X509_PURPOSE_SSL_SERVER
	                                              : X509_PURPOSE_SSL_CLIENT) == 1 &&
	         X509_verify_cert(v) == 1;
	int verr = v ? X509_STORE_CTX_get_error(v) : X509_V_ERR_OUT_OF_MEM;
	X509_STORE_CTX_free(v);
	if (!ok) {
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return ha_err_set(e, HA_EINVAL, "certificate %s does not verify against %s: %s",
		                  cert, ca, X509_verify_cert_error_string(verr));
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	*out = ctx;
	return 0;
}

int ha_tls_ctx_is_node(SSL_CTX *ctx, const char *name, uint32_t id, struct ha_err *e)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	struct ha_identity who;
	if (x == NULL)
		return ha_err_set(e, HA_ECONFIG, "no certificate loaded");
	int rc = ha_tls_identity(x, &who, e);
	if (rc != 0)
		return ha_err_set(e, HA_ECONFIG, "the certificate has no identity: %s", e->msg);
	if (who.role != HA_ROLE_NODE || strcmp(who.name, name) != 0 || who.node_id != id) {
		char got[128];
		ha_identity_str(&who, got, sizeof(got));
		return ha_err_set(e, HA_ECONFIG,
		                  "the certificate is %s, not node %s with raft id %u: issue this "
		                  "node's with `haadm cert node %s --id %u --address ADDRESS`",
		                  got, name, id, name, id);
	}
	return 0;
}

int ha_tls_start(struct ha_tls *t, SSL_CTX *ctx, bool server, struct ha_err *e)
{
	memset(t, 0, sizeof(*t));
	t->ssl = SSL_new(ctx);
	t->in = BIO_new(BIO_s_mem());
	t->out = BIO_new(BIO_s_mem());
	if (t->ssl == NULL || t->in == NULL || t->out == NULL) {
		BIO_free(t->in);
		BIO_free(t->out);
		SSL_free(t->ssl);
		memset(t, 0, sizeof(*t));
		return ha_err_set(e, HA_ENOMEM, "out of memory for a TLS connection");
	}
	/* an empty memory BIO means "no data yet", not end of file */
	BIO_set_mem_eof_return(t->in, -1);
	SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both BIOs now */
	if (server) {
		SSL_set_accept_state(t->ssl);
		return 0;
	}
	SSL_set_connect_state(t->ssl);
	int rc = SSL_do_handshake(t->ssl);
	if (rc <= 0 && SSL_get_error(t->ssl, rc) != SSL_ERROR_WANT_READ) {
		char why[512];
		ha_tls_errstr(why, sizeof(why));
		return ha_err_set(e, HA_EPROTO, "TLS handshake: %s", why);
	}
	return 0;
}

static int handshake_error(struct ha_tls *t, struct ha_err *e)
{
	long v = SSL_get_verify_result(t->ssl);
	char why[512];
	ha_tls_errstr(why, sizeof(why));
	if (v != X509_V_OK)
		return ha_err_set(e, HA_EPROTO, "peer certificate refused: %s",
		                  X509_verify_cert_error_string(v));
	return ha_err_set(e, HA_EPROTO, "TLS handshake: %s", why);
}

/* The handshake just ended: who is the peer? */
static int take_identity(struct ha_tls *t, struct ha_err *e)
{
	X509 *peer = SSL_get1_peer_certificate(t->ssl);
	if (peer == NULL)
		return ha_err_set(e, HA_EPROTO, "the peer sent no certificate");
	int rc = ha_tls_identity(peer, &t->peer, e);
	X509_free(peer);
	if (rc != 0)
		return rc;
	t->established = true;
	return 0;
}

int ha_tls_feed(struct ha_tls *t, const void *p, size_t n, struct ha_buf *plain,
                bool *became_established, struct ha_err *e)
{
	*became_established = false;
	if (n > 0 && BIO_write(t->in, p, (int)n) != (int)n)
		return ha_err_set(e, HA_ENOMEM, "out of memory for TLS input");
	if (!t->established) {
		int rc = SSL_do_handshake(t->ssl);
		if (rc <= 0) {
			int err = SSL_get_error(t->ssl, rc);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
				return 0;
			return handshake_error(t, e);
		}
		if ((rc = take_identity(t, e)) != 0)
			return rc;
		*became_established = true;
	}
	for (;;) {
		char chunk[16384];
		int r = SSL_read(t->ssl, chunk, sizeof(chunk));
		if (r > 0) {
			if (plain == NULL)
				return ha_err_set(e, HA_EPROTO,
				                  "data before the connection is ready");
			ha_buf_append(plain, chunk, (size_t)r);
			if (ha_buf_failed(plain))
				return ha_err_set(e, HA_ENOMEM, "out of memory for TLS data");
			continue;
		}
		int err = SSL_get_error(t->ssl, r);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			return 0;
		if (err == SSL_ERROR_ZERO_RETURN)
			return ha_err_set(e, HA_EIO, "the peer closed the TLS session");
		char why[512];
		ha_tls_errstr(why, sizeof(why));
		return ha_err_set(e, HA_EPROTO, "TLS: %s", why);
	}
}

int ha_tls_write(struct ha_tls *t, const void *p, size_t n, struct ha_err *e)
{
	if (!t->established)
		return ha_err_set(e, HA_EPROTO, "TLS write before the handshake ended");
	const char *c = p;
	while (n > 0) {
		int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
		int w = SSL_write(t->ssl, c, chunk);
		if (w <= 0) {
			char why[512];
			ha_tls_errstr(why, sizeof(why));
			return ha_err_set(e, HA_EIO, "TLS write: %s", why);
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

size_t ha_tls_pending(const struct ha_tls *t)
{
	return t->out ? BIO_ctrl_pending(t->out) : 0;
}

size_t ha_tls_take(struct ha_tls *t, void *dst, size_t n)
{
	if (t->out == NULL || n == 0)
		return 0;
	int r = BIO_read(t->out, dst, n > INT32_MAX ? INT32_MAX : (int)n);
	return r > 0 ? (size_t)r : 0;
}

void ha_tls_free(struct ha_tls *t)
{
	SSL_free(t->ssl); /* frees both BIOs */
	memset(t, 0, sizeof(*t));
}
