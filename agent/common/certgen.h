/* Certificates for a haagent cluster, made in memory: the cluster CA, a node's and an
 * operator's certificate in the format tls.h reads (docs/security.md#certificates), their PEM
 * text, and what `haadm cert show` prints about a certificate. `haadm cert` writes the files;
 * the unit tests use the same code. No file I/O; any thread. */
#ifndef HA_CERTGEN_H
#define HA_CERTGEN_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "tls.h"

/* The most certificates a PEM file may hold (a CA file during a rotation holds two). */
#define HA_CERT_FILE_MAX 16

enum ha_cert_kind {
	HA_CERT_CA,   /* self-signed; CN "haagent CA NAME", NAME the cluster's */
	HA_CERT_NODE, /* URI urn:haagent:node:NAME:ID, DNS:NAME, IP:ADDRESS; server and client */
	HA_CERT_OPERATOR, /* URI urn:haagent:role:ROLE, CN=NAME; client only */
};

struct ha_cert_spec {
	enum ha_cert_kind kind;
	const char *name;    /* CA: the cluster's name (printable ASCII, 1 to 63 characters);
	                        otherwise the node's or the operator's (ha_name_valid) */
	uint32_t node_id;    /* node: its raft id, not 0 */
	const char *address; /* node: its IPv4 address */
	enum ha_role role;   /* operator: HA_ROLE_ADMIN or HA_ROLE_READONLY */
	int64_t not_before;  /* unix seconds */
	int64_t not_after;   /* after not_before */
};

/* Sets s's validity: from now - backdate_s, for days days (so that a backdate longer than days
 * makes a certificate that has already expired, for tests). */
void ha_certgen_validity(struct ha_cert_spec *s, int64_t now, unsigned days, int64_t backdate_s);

/* A new EC P-256 key. On success the caller owns *key (EVP_PKEY_free). */
int ha_certgen_key(EVP_PKEY **key, struct ha_err *e);

/* Issues a certificate for key's public half, as s describes, with a random 128-bit serial:
 * for HA_CERT_CA self-signed with key (ca and ca_key NULL); otherwise signed with ca_key, which
 * must match ca, a CA certificate (basicConstraints CA:TRUE). A node's or operator's
 * certificate is read back with ha_tls_identity before it is returned. On success the caller
 * owns *out (X509_free). Invalid input fails with HA_EINVAL and what is wrong. */
int ha_certgen_issue(const struct ha_cert_spec *s, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
                     X509 **out, struct ha_err *e);

/* PEM text appended to out: a certificate; a private key (PKCS#8, unencrypted). */
int ha_certgen_cert_pem(X509 *c, struct ha_buf *out, struct ha_err *e);
int ha_certgen_key_pem(EVP_PKEY *k, struct ha_buf *out, struct ha_err *e);

/* Every certificate in PEM text, in order (1 to HA_CERT_FILE_MAX). The caller owns *out
 * (sk_X509_pop_free(*out, X509_free)). */
int ha_certgen_parse_certs(const void *pem, size_t n, STACK_OF(X509) * *out, struct ha_err *e);
/* The private key in PEM text (unencrypted). The caller owns *out. */
int ha_certgen_parse_key(const void *pem, size_t n, EVP_PKEY **out, struct ha_err *e);

/* What a certificate says, made fit to print (a certificate read from a file is hostile input:
 * control characters escaped; what does not fit ends in "..."). */
struct ha_cert_info {
	char subject[256]; /* RFC 2253 form */
	char issuer[256];
	char serial[68];    /* hex */
	char sha256[96];    /* of the DER encoding, "AB:CD:..." */
	char names[512];    /* subjectAltName: "URI:..., DNS:..., IP:..." */
	int64_t not_before; /* unix seconds; 0 when unreadable */
	int64_t not_after;
	bool is_ca; /* basicConstraints CA:TRUE */
};
void ha_certgen_info(X509 *c, struct ha_cert_info *i);

#endif
