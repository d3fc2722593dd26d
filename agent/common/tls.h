/* TLS for the agent's three ports (raft, RPC, HTTP) and for haadm: one cluster CA, TLS 1.3 only,
 * both ends authenticated (docs/security.md).
 *
 * Who a peer is comes from its certificate, never from what it says: the identity is in the
 * certificate's subjectAltName URIs, written by `haadm cert`:
 *
 *     node      URI "urn:haagent:node:NAME:RAFTID"   (and DNS:NAME, IP:ADDRESS for other tools)
 *     operator  URI "urn:haagent:role:admin" or "urn:haagent:role:readonly"; subject CN = NAME
 *
 * A certificate with no such URI, with two of them, or with a malformed one has no identity and
 * is refused. NAME follows ha_name_valid (config.h).
 *
 * The connection engine (struct ha_tls) runs OpenSSL over memory BIOs, so the caller owns the
 * socket: bytes read from the network go in with ha_tls_feed, bytes to send come out with
 * ha_tls_take. No I/O, no blocking: fit for the loop thread. */
#ifndef HA_TLS_H
#define HA_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "buf.h"
#include "err.h"

#define HA_TLS_URI_NODE "urn:haagent:node:"
#define HA_TLS_URI_ROLE "urn:haagent:role:"
#define HA_TLS_NAME_MAX 64

enum ha_role {
	HA_ROLE_NONE = 0,
	HA_ROLE_NODE,     /* an agent: its own health reports, and what readonly may do */
	HA_ROLE_READONLY, /* status, events, backup list */
	HA_ROLE_ADMIN,    /* everything an operator does */
};

struct ha_identity {
	enum ha_role role;
	char name[HA_TLS_NAME_MAX]; /* node name, or the operator's CN */
	uint32_t node_id;           /* HA_ROLE_NODE only: its raft id */
};

const char *ha_role_name(enum ha_role r);

/* The identity a certificate carries. Pure: any thread. */
int ha_tls_identity(X509 *cert, struct ha_identity *id, struct ha_err *e);

/* "NAME (role)" for logs: who a peer is. */
void ha_identity_str(const struct ha_identity *id, char *out, size_t size);

/* An SSL_CTX for one side: TLS 1.3 only, the peer's certificate required and checked against
 * the CA file (which may hold several CAs, for rotation), our certificate and key loaded and
 * matched. Any file missing, unreadable or not matching fails with its path in e. */
int ha_tls_ctx_new(const char *ca, const char *cert, const char *key, bool server, SSL_CTX **out,
                   struct ha_err *e);

/* The certificate ctx presents must be node `name` with raft id `id`: an agent started with
 * another node's certificate would be refused by every peer, so it is refused at start. */
int ha_tls_ctx_is_node(SSL_CTX *ctx, const char *name, uint32_t id, struct ha_err *e);

/* One connection's TLS state. */
struct ha_tls {
	SSL *ssl;
	BIO *in;  /* ciphertext from the network, read by OpenSSL */
	BIO *out; /* ciphertext OpenSSL produced, to be sent */
	bool established;
	struct ha_identity peer; /* set once established */
};

/* Starts a connection on ctx (which it references, so the caller may drop ctx). A client
 * begins the handshake at once: send what ha_tls_take gives. */
int ha_tls_start(struct ha_tls *t, SSL_CTX *ctx, bool server, struct ha_err *e);

/* Bytes from the network. Plaintext that results is appended to plain (may be NULL before the
 * handshake ends); *became_established is set when the handshake completed during this call,
 * after which t->peer holds the verified identity. Returns 0, or a negative code with e set
 * (a bad certificate, a protocol error, a peer without identity): close the connection. */
int ha_tls_feed(struct ha_tls *t, const void *p, size_t n, struct ha_buf *plain,
                bool *became_established, struct ha_err *e);

/* Encrypts n bytes (only once established). Returns 0 or a negative code. */
int ha_tls_write(struct ha_tls *t, const void *p, size_t n, struct ha_err *e);

/* Ciphertext waiting to be sent, and taking it: returns the bytes moved into dst. */
size_t ha_tls_pending(const struct ha_tls *t);
size_t ha_tls_take(struct ha_tls *t, void *dst, size_t n);

void ha_tls_free(struct ha_tls *t);

/* OpenSSL's error queue as one line (emptying it). */
void ha_tls_errstr(char *out, size_t size);

#endif
