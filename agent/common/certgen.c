/* Certificates made in memory (certgen.h): the CA, nodes, operators; their PEM text; and a
 * printable summary of any certificate. */
#include "certgen.h"

#include <arpa/inet.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "../config.h"

/* X509 version numbers count from 0: 2 is v3, the version that carries extensions. */
#define X509_V3 2

/* 9999-12-31 23:59:59 UTC, the last time a certificate can carry (RFC 5280 GeneralizedTime has
 * four digits of year). */
#define LAST_TIME 253402300799LL

/* The largest PEM text we parse (a few certificates are a few KiB). */
#define PEM_MAX (1 << 20)

/* OpenSSL's error queue as text after what, emptying it. */
static int ossl_fail(struct ha_err *e, int code, const char *what)
{
	char buf[256] = "";
	unsigned long err = ERR_get_error();
	if (err != 0)
		ERR_error_string_n(err, buf, sizeof(buf));
	ERR_clear_error();
	return ha_err_set(e, code, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

void ha_certgen_validity(struct ha_cert_spec *s, int64_t now, unsigned days, int64_t backdate_s)
{
	s->not_before = now - backdate_s;
	s->not_after = s->not_before + (int64_t)days * 86400;
}

int ha_certgen_key(EVP_PKEY **key, struct ha_err *e)
{
	*key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	return *key ? 0 : ossl_fail(e, HA_EINTERNAL, "generate an EC P-256 key");
}

/* ---- issuing ---- */

static bool printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	if (n == 0 || n == max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* What is wrong with s, or 0. */
static int check_spec(const struct ha_cert_spec *s, struct in_addr *ip, struct ha_err *e)
{
	if (s->name == NULL)
		return ha_err_set(e, HA_EINVAL, "no name");
	if (s->kind == HA_CERT_CA) {
		if (!printable(s->name, HA_NAME_MAX))
			return ha_err_set(e, HA_EINVAL,
			                  "cluster name: 1 to 63 printable ASCII characters");
	} else if (!ha_name_valid(s->name)) {
		return ha_err_set(e, HA_EINVAL, "bad name (" HA_NAME_RULE ")");
	}
	if (s->kind == HA_CERT_NODE) {
		if (s->node_id == 0)
			return ha_err_set(e, HA_EINVAL, "node %s: raft id 0 (ids start at 1)",
			                  s->name);
		if (s->address == NULL || inet_pton(AF_INET, s->address, ip) != 1)
			return ha_err_set(e, HA_EINVAL, "node %s: address '%s' is not IPv4",
			                  s->name, s->address ? s->address : "");
	}
	if (s->kind == HA_CERT_OPERATOR && s->role != HA_ROLE_ADMIN && s->role != HA_ROLE_READONLY)
		return ha_err_set(e, HA_EINVAL, "operator %s: the role is admin or readonly",
		                  s->name);
	if (s->not_after <= s->not_before)
		return ha_err_set(e, HA_EINVAL, "the validity ends before it starts");
	if (s->not_before < 0 || s->not_after > LAST_TIME)
		return ha_err_set(e, HA_EINVAL, "the validity is not within 1970 to 9999");
	return 0;
}

/* A random positive serial of 128 bits (RFC 5280: at most 20 octets; CA/B: 64 random bits at
 * least). */
static int set_serial(X509 *x, struct ha_err *e)
{
	unsigned char r[16];
	int rc = 0;
	BIGNUM *bn = NULL;
	do {
		if (RAND_bytes(r, sizeof(r)) != 1)
			return ossl_fail(e, HA_EINTERNAL, "random serial");
		BN_free(bn);
		bn = BN_bin2bn(r, sizeof(r), NULL);
	} while (bn != NULL && BN_is_zero(bn));
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		rc = ossl_fail(e, HA_ENOMEM, "serial");
	BN_free(bn);
	return rc;
}

/* Subject CN=cn (with O=haagent for the CA), issuer, validity, public key. */
static int set_names(X509 *x, const struct ha_cert_spec *s, EVP_PKEY *key, X509 *ca,
                     struct ha_err *e)
{
	char cn[HA_NAME_MAX + 16];
	snprintf(cn, sizeof(cn), s->kind == HA_CERT_CA ? "haagent CA %s" : "%s", s->name);
	X509_NAME *n = X509_NAME_new();
	bool ok = n != NULL;
	if (ok && s->kind == HA_CERT_CA)
		ok = X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
		                                (const unsigned char *)"haagent", -1, -1, 0) == 1;
	ok = ok && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                      -1, 0) == 1;
	ok = ok && X509_set_version(x, X509_V3) == 1 && X509_set_subject_name(x, n) == 1;
	ok = ok && X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : n) == 1;
	ok = ok && X509_set_pubkey(x, key) == 1;
	X509_NAME_free(n);
	if (!ok)
		return ossl_fail(e, HA_EINTERNAL, "certificate names");
	if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)s->not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)s->not_after) == NULL)
		return ossl_fail(e, HA_EINVAL, "validity out of range");
	return 0;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, struct ha_err *e)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	if (!ok) {
		char what[128];
		snprintf(what, sizeof(what), "extension %s = %s", OBJ_nid2sn(nid), value);
		return ossl_fail(e, HA_EINTERNAL, what);
	}
	return 0;
}

static bool push_name(GENERAL_NAMES *gens, int type, const void *p, int n)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_STRING *v =
	    ASN1_STRING_type_new(type == GEN_IPADD ? V_ASN1_OCTET_STRING : V_ASN1_IA5STRING);
	if (g == NULL || v == NULL || ASN1_STRING_set(v, p, n) != 1) {
		GENERAL_NAME_free(g);
		ASN1_STRING_free(v);
		return false;
	}
	GENERAL_NAME_set0_value(g, type, v);
	if (sk_GENERAL_NAME_push(gens, g) == 0) {
		GENERAL_NAME_free(g);
		return false;
	}
	return true;
}

/* subjectAltName: the identity URI (tls.h), and for a node DNS:NAME and IP:ADDRESS. Built
 * from parts, not from a configuration string, so a name can never add an entry. */
static int add_san(X509 *x, const struct ha_cert_spec *s, const struct in_addr *ip,
                   struct ha_err *e)
{
	char uri[HA_NAME_MAX + 48];
	if (s->kind == HA_CERT_NODE)
		snprintf(uri, sizeof(uri), "%s%s:%u", HA_TLS_URI_NODE, s->name, s->node_id);
	else
		snprintf(uri, sizeof(uri), "%s%s", HA_TLS_URI_ROLE, ha_role_name(s->role));
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	bool ok = gens != NULL && push_name(gens, GEN_URI, uri, (int)strlen(uri));
	if (ok && s->kind == HA_CERT_NODE)
		ok = push_name(gens, GEN_DNS, s->name, (int)strlen(s->name)) &&
		     push_name(gens, GEN_IPADD, ip, 4);
	ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
	GENERAL_NAMES_free(gens);
	return ok ? 0 : ossl_fail(e, HA_EINTERNAL, "subjectAltName");
}

static int add_extensions(X509 *x, const struct ha_cert_spec *s, const struct in_addr *ip, X509 *ca,
                          struct ha_err *e)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, ca ? ca : x, x, NULL, NULL, 0);
	int rc;
	if (s->kind == HA_CERT_CA) {
		/* pathlen:0: the cluster CA signs nodes and operators, never another CA */
		if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0",
		                  e)) ||
		    (rc = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", e)) ||
		    (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", e)))
			return rc;
		return 0;
	}
	const char *eku = s->kind == HA_CERT_NODE ? "serverAuth,clientAuth" : "clientAuth";
	if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", e)) ||
	    (rc = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature", e)) ||
	    (rc = add_ext(x, &ctx, NID_ext_key_usage, eku, e)) ||
	    (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", e)) ||
	    (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid,issuer", e)))
		return rc;
	return add_san(x, s, ip, e);
}

/* The identity read back from what was just issued is the one asked for (tls.h's reader and
 * this writer agree, or nothing is written). */
static int check_identity(X509 *x, const struct ha_cert_spec *s, struct ha_err *e)
{
	struct ha_identity id;
	int rc = ha_tls_identity(x, &id, e);
	if (rc != 0)
		return ha_err_wrap(e, "issued certificate read back");
	enum ha_role want = s->kind == HA_CERT_NODE ? HA_ROLE_NODE : s->role;
	if (id.role != want || strcmp(id.name, s->name) != 0 ||
	    (want == HA_ROLE_NODE && id.node_id != s->node_id))
		return ha_err_set(e, HA_EINTERNAL,
		                  "issued certificate reads back as another "
		                  "identity");
	return 0;
}

int ha_certgen_issue(const struct ha_cert_spec *s, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
                     X509 **out, struct ha_err *e)
{
	*out = NULL;
	struct in_addr ip = {0};
	int rc = check_spec(s, &ip, e);
	if (rc != 0)
		return rc;
	if (key == NULL)
		return ha_err_set(e, HA_EINVAL, "no key");
	if (s->kind == HA_CERT_CA && (ca || ca_key))
		return ha_err_set(e, HA_EINVAL, "a CA certificate is self-signed");
	if (s->kind != HA_CERT_CA) {
		if (ca == NULL || ca_key == NULL)
			return ha_err_set(e, HA_EINVAL, "no CA certificate and key to sign with");
		if (X509_check_ca(ca) != 1 || !(X509_get_extension_flags(ca) & EXFLAG_CA))
			return ha_err_set(e, HA_EINVAL,
			                  "the CA certificate is not a CA (no basicConstraints "
			                  "CA:TRUE)");
		if (X509_check_private_key(ca, ca_key) != 1) {
			ERR_clear_error();
			return ha_err_set(e, HA_EINVAL,
			                  "the CA key does not match the CA certificate");
		}
	}
	X509 *x = X509_new();
	if (x == NULL)
		return ossl_fail(e, HA_ENOMEM, "new certificate");
	if ((rc = set_serial(x, e)) == 0 && (rc = set_names(x, s, key, ca, e)) == 0 &&
	    (rc = add_extensions(x, s, &ip, ca, e)) == 0) {
		if (X509_sign(x, ca_key ? ca_key : key, EVP_sha256()) <= 0)
			rc = ossl_fail(e, HA_EINTERNAL, "sign");
		else if (s->kind != HA_CERT_CA)
			rc = check_identity(x, s, e);
	}
	if (rc != 0) {
		X509_free(x);
		return rc;
	}
	*out = x;
	return 0;
}

/* ---- PEM ---- */

/* What the memory BIO b holds, appended to out. */
static int take_bio(BIO *b, struct ha_buf *out, struct ha_err *e)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	if (n > 0)
		ha_buf_append(out, p, (size_t)n);
	BIO_free(b);
	return ha_buf_failed(out) ? ha_err_set(e, HA_ENOMEM, "PEM text") : 0;
}

int ha_certgen_cert_pem(X509 *c, struct ha_buf *out, struct ha_err *e)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (b == NULL || PEM_write_bio_X509(b, c) != 1) {
		BIO_free(b);
		return ossl_fail(e, HA_EINTERNAL, "certificate as PEM");
	}
	return take_bio(b, out, e);
}

int ha_certgen_key_pem(EVP_PKEY *k, struct ha_buf *out, struct ha_err *e)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (b == NULL || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1) {
		BIO_free(b);
		return ossl_fail(e, HA_EINTERNAL, "key as PEM");
	}
	return take_bio(b, out, e);
}

/* A passphrase callback that has none: an encrypted key fails instead of prompting. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

int ha_certgen_parse_certs(const void *pem, size_t n, STACK_OF(X509) * *out, struct ha_err *e)
{
	*out = NULL;
	if (n == 0 || n > PEM_MAX)
		return ha_err_set(e, HA_EINVAL, "%s", n ? "larger than 1 MiB" : "empty");
	BIO *b = BIO_new_mem_buf(pem, (int)n);
	STACK_OF(X509) *sk = sk_X509_new_null();
	if (b == NULL || sk == NULL) {
		BIO_free(b);
		sk_X509_free(sk);
		return ha_err_set(e, HA_ENOMEM, "parse certificates");
	}
	ERR_clear_error();
	X509 *x;
	int rc = 0;
	while (rc == 0 && (x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
		if (sk_X509_num(sk) == HA_CERT_FILE_MAX || sk_X509_push(sk, x) == 0) {
			X509_free(x);
			rc =
			    ha_err_set(e, HA_EINVAL, "more than %d certificates", HA_CERT_FILE_MAX);
		}
	}
	/* the loop ends on "no start line" after the last certificate; anything else is damage */
	unsigned long err = ERR_peek_last_error();
	if (rc == 0 && (sk_X509_num(sk) == 0 || ERR_GET_REASON(err) != PEM_R_NO_START_LINE))
		rc =
		    ossl_fail(e, HA_EINVAL,
		              sk_X509_num(sk) ? "damaged PEM certificate"
		                              : "no PEM certificate (-----BEGIN CERTIFICATE-----)");
	ERR_clear_error();
	BIO_free(b);
	if (rc != 0) {
		sk_X509_pop_free(sk, X509_free);
		return rc;
	}
	*out = sk;
	return 0;
}

int ha_certgen_parse_key(const void *pem, size_t n, EVP_PKEY **out, struct ha_err *e)
{
	*out = NULL;
	if (n == 0 || n > PEM_MAX)
		return ha_err_set(e, HA_EINVAL, "%s", n ? "larger than 1 MiB" : "empty");
	BIO *b = BIO_new_mem_buf(pem, (int)n);
	if (b == NULL)
		return ha_err_set(e, HA_ENOMEM, "parse key");
	*out = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (*out == NULL)
		return ossl_fail(e, HA_EINVAL,
		                 "no unencrypted PEM private key (haadm cert writes them "
		                 "unencrypted, mode 0600)");
	return 0;
}

/* ---- what a certificate says ---- */

/* Appends p[0..n) to out[size] at *o, escaped: printable ASCII kept, other bytes \xHH; the end
 * marked "..." when it does not fit. */
static void put_escaped(char *out, size_t size, size_t *o, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool plain = p[i] >= 0x20 && p[i] < 0x7f;
		size_t need = plain ? 1 : 4;
		if (*o + need + 4 > size) {
			if (*o + 4 <= size) {
				memcpy(out + *o, "...", 3);
				*o += 3;
			}
			break;
		}
		if (plain)
			out[(*o)++] = (char)p[i];
		else
			*o += (size_t)snprintf(out + *o, size - *o, "\\x%02x", p[i]);
	}
	out[*o] = '\0';
}

static void name_text(const X509_NAME *n, char *out, size_t size)
{
	size_t o = 0;
	out[0] = '\0';
	BIO *b = BIO_new(BIO_s_mem());
	if (b == NULL || n == NULL || X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) < 0) {
		BIO_free(b);
		return;
	}
	char *p;
	long len = BIO_get_mem_data(b, &p);
	if (len > 0)
		put_escaped(out, size, &o, (const unsigned char *)p, (size_t)len);
	BIO_free(b);
}

static int64_t unix_time(const ASN1_TIME *t)
{
	struct tm tm;
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

static void san_text(X509 *c, char *out, size_t size)
{
	size_t o = 0;
	out[0] = '\0';
	GENERAL_NAMES *gens = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *tag = g->type == GEN_URI     ? "URI:"
		                  : g->type == GEN_DNS   ? "DNS:"
		                  : g->type == GEN_IPADD ? "IP:"
		                  : g->type == GEN_EMAIL ? "email:"
		                                         : "other";
		char ipbuf[INET6_ADDRSTRLEN] = "";
		const unsigned char *p = (const unsigned char *)"";
		size_t n = 0;
		if (g->type == GEN_IPADD) {
			int len = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
			if (len == 4 || len == 16)
				inet_ntop(len == 4 ? AF_INET : AF_INET6, a, ipbuf, sizeof(ipbuf));
			p = (const unsigned char *)ipbuf;
			n = strlen(ipbuf);
		} else if (g->type == GEN_URI || g->type == GEN_DNS || g->type == GEN_EMAIL) {
			p = ASN1_STRING_get0_data(g->d.ia5);
			n = (size_t)ASN1_STRING_length(g->d.ia5);
		}
		if (i > 0)
			put_escaped(out, size, &o, (const unsigned char *)", ", 2);
		put_escaped(out, size, &o, (const unsigned char *)tag, strlen(tag));
		put_escaped(out, size, &o, p, n);
	}
	GENERAL_NAMES_free(gens);
}

void ha_certgen_info(X509 *c, struct ha_cert_info *i)
{
	memset(i, 0, sizeof(*i));
	name_text(X509_get_subject_name(c), i->subject, sizeof(i->subject));
	name_text(X509_get_issuer_name(c), i->issuer, sizeof(i->issuer));
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	size_t o = 0;
	if (hex)
		put_escaped(i->serial, sizeof(i->serial), &o, (unsigned char *)hex, strlen(hex));
	OPENSSL_free(hex);
	BN_free(bn);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (X509_digest(c, EVP_sha256(), md, &n) == 1 && n == 32)
		for (unsigned k = 0; k < n; k++)
			snprintf(i->sha256 + 3 * k, sizeof(i->sha256) - 3 * k, "%02X%s", md[k],
			         k + 1 < n ? ":" : "");
	san_text(c, i->names, sizeof(i->names));
	i->not_before = unix_time(X509_get0_notBefore(c));
	i->not_after = unix_time(X509_get0_notAfter(c));
	i->is_ca = (X509_get_extension_flags(c) & EXFLAG_CA) != 0;
	ERR_clear_error();
}
