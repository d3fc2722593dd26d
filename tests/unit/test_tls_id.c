/* The identity a certificate carries (common/tls_id.c) and the certificates haadm cert makes
 * (common/certgen.c): the round trip for node, admin and readonly; certificates built by hand
 * the way an attacker would, each refused; chains checked with X509_verify_cert. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/certgen.h"
#include "common/tls.h"
#include "config.h"

#define DAY 86400

static EVP_PKEY *hand_key; /* signs the hand-built certificates */
static int64_t now;

static int setup(void **state)
{
	(void)state;
	struct ha_err e = {0};
	now = (int64_t)time(NULL);
	return ha_certgen_key(&hand_key, &e);
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(hand_key);
	return 0;
}

/* ---- issuing with certgen ---- */

static X509 *make_ca(const char *cluster, EVP_PKEY **key)
{
	struct ha_err e = {0};
	struct ha_cert_spec s = {.kind = HA_CERT_CA, .name = cluster};
	ha_certgen_validity(&s, now, 3650, 3600);
	assert_int_equal(ha_certgen_key(key, &e), 0);
	X509 *ca;
	int rc = ha_certgen_issue(&s, *key, NULL, NULL, &ca, &e);
	if (rc != 0)
		fail_msg("CA: %s", e.msg);
	return ca;
}

/* A certificate as spec s says, signed by ca; NULL with e set when refused. */
static X509 *issue(struct ha_cert_spec *s, X509 *ca, EVP_PKEY *ca_key, struct ha_err *e)
{
	EVP_PKEY *k;
	assert_int_equal(ha_certgen_key(&k, e), 0);
	X509 *x = NULL;
	ha_certgen_issue(s, k, ca, ca_key, &x, e);
	EVP_PKEY_free(k);
	return x;
}

static X509 *node_cert(const char *name, uint32_t id, X509 *ca, EVP_PKEY *ca_key)
{
	struct ha_err e = {0};
	struct ha_cert_spec s = {
	    .kind = HA_CERT_NODE, .name = name, .node_id = id, .address = "10.0.0.11"};
	ha_certgen_validity(&s, now, 825, 3600);
	X509 *x = issue(&s, ca, ca_key, &e);
	if (x == NULL)
		fail_msg("node %s: %s", name, e.msg);
	return x;
}

static X509 *operator_cert(const char *name, enum ha_role r, X509 *ca, EVP_PKEY *ca_key)
{
	struct ha_err e = {0};
	struct ha_cert_spec s = {.kind = HA_CERT_OPERATOR, .name = name, .role = r};
	ha_certgen_validity(&s, now, 825, 3600);
	X509 *x = issue(&s, ca, ca_key, &e);
	if (x == NULL)
		fail_msg("operator %s: %s", name, e.msg);
	return x;
}

/* The certificate as a peer would send it: DER out, DER in. */
static X509 *wire(X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	assert_true(n > 0);
	const unsigned char *p = der;
	X509 *y = d2i_X509(NULL, &p, n);
	OPENSSL_free(der);
	assert_non_null(y);
	return y;
}

static void test_name_valid(void **state)
{
	(void)state;
	const char *good[] = {"node1", "a", "A.b-c_d", "1", "db-01.example", "x.."};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(ha_name_valid(good[i]));
	const char *bad[] = {"", ".", "..", ".x", "-x", "_x", "a/b", "a b", "a:b", "../etc", "é"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(ha_name_valid(bad[i]));
	char n[80];
	memset(n, 'a', sizeof(n));
	n[63] = '\0';
	assert_true(ha_name_valid(n));
	n[63] = 'a';
	n[64] = '\0';
	assert_false(ha_name_valid(n));
}

static void test_role_names(void **state)
{
	(void)state;
	assert_string_equal(ha_role_name(HA_ROLE_NONE), "none");
	assert_string_equal(ha_role_name(HA_ROLE_NODE), "node");
	assert_string_equal(ha_role_name(HA_ROLE_READONLY), "readonly");
	assert_string_equal(ha_role_name(HA_ROLE_ADMIN), "admin");
	assert_string_equal(ha_role_name((enum ha_role)42), "unknown");
	struct ha_identity id = {.role = HA_ROLE_NODE, .name = "node2", .node_id = 2};
	char s[64];
	ha_identity_str(&id, s, sizeof(s));
	assert_string_equal(s, "node2 (node 2)");
	id.role = HA_ROLE_ADMIN;
	snprintf(id.name, sizeof(id.name), "alice");
	ha_identity_str(&id, s, sizeof(s));
	assert_string_equal(s, "alice (admin)");
	ha_identity_str(&id, s, 6);
	assert_string_equal(s, "alice");
	memset(&id, 0, sizeof(id));
	ha_identity_str(&id, s, sizeof(s));
	assert_string_equal(s, "nobody (none)");
	ha_identity_str(NULL, s, sizeof(s));
	assert_string_equal(s, "nobody (none)");
}

static void test_round_trip(void **state)
{
	(void)state;
	EVP_PKEY *cak;
	X509 *ca = make_ca("prod", &cak);
	struct ha_err e = {0};
	struct ha_identity id;

	X509 *n = node_cert("node1", 1, ca, cak);
	X509 *w = wire(n);
	assert_int_equal(ha_tls_identity(w, &id, &e), 0);
	assert_int_equal(id.role, HA_ROLE_NODE);
	assert_string_equal(id.name, "node1");
	assert_int_equal(id.node_id, 1);
	X509_free(w);

	X509 *big = node_cert("db-9.example", 4294967295u, ca, cak);
	assert_int_equal(ha_tls_identity(big, &id, &e), 0);
	assert_int_equal(id.node_id, 4294967295u);
	assert_string_equal(id.name, "db-9.example");

	X509 *a = operator_cert("admin", HA_ROLE_ADMIN, ca, cak);
	w = wire(a);
	assert_int_equal(ha_tls_identity(w, &id, &e), 0);
	assert_int_equal(id.role, HA_ROLE_ADMIN);
	assert_string_equal(id.name, "admin");
	assert_int_equal(id.node_id, 0);
	X509_free(w);

	X509 *r = operator_cert("monitor", HA_ROLE_READONLY, ca, cak);
	assert_int_equal(ha_tls_identity(r, &id, &e), 0);
	assert_int_equal(id.role, HA_ROLE_READONLY);
	assert_string_equal(id.name, "monitor");

	/* the CA itself is nobody */
	assert_int_equal(ha_tls_identity(ca, &id, &e), HA_EREFUSED);
	assert_int_equal(id.role, HA_ROLE_NONE);

	/* through PEM, as the files are */
	struct ha_buf b = HA_BUF_INIT;
	assert_int_equal(ha_certgen_cert_pem(ca, &b, &e), 0);
	assert_int_equal(ha_certgen_cert_pem(n, &b, &e), 0);
	STACK_OF(X509) * sk;
	assert_int_equal(ha_certgen_parse_certs(b.data, b.len, &sk, &e), 0);
	assert_int_equal(sk_X509_num(sk), 2);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 1), n), 0);
	assert_int_equal(ha_tls_identity(sk_X509_value(sk, 1), &id, &e), 0);
	assert_string_equal(id.name, "node1");
	sk_X509_pop_free(sk, X509_free);
	ha_buf_reset(&b);
	assert_int_equal(ha_certgen_key_pem(cak, &b, &e), 0);
	assert_non_null(strstr(ha_buf_cstr(&b), "-----BEGIN PRIVATE KEY-----"));
	EVP_PKEY *k2;
	assert_int_equal(ha_certgen_parse_key(b.data, b.len, &k2, &e), 0);
	assert_int_equal(X509_check_private_key(ca, k2), 1);
	EVP_PKEY_free(k2);
	ha_buf_free(&b);

	X509_free(n);
	X509_free(big);
	X509_free(a);
	X509_free(r);
	X509_free(ca);
	EVP_PKEY_free(cak);
}

/* What the certificates carry besides the identity (the brief of docs/security.md). */
static void test_contents(void **state)
{
	(void)state;
	EVP_PKEY *cak;
	X509 *ca = make_ca("prod", &cak);
	X509 *n = node_cert("node1", 7, ca, cak);
	X509 *a = operator_cert("alice", HA_ROLE_ADMIN, ca, cak);
	struct ha_cert_info i;

	ha_certgen_info(ca, &i);
	assert_true(i.is_ca);
	assert_string_equal(i.subject, "CN=haagent CA prod,O=haagent");
	assert_string_equal(i.subject, i.issuer);
	assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_non_null(X509_get0_subject_key_id(ca));
	assert_int_equal(i.not_before, now - 3600);
	assert_int_equal(i.not_after, now - 3600 + 3650LL * DAY);

	ha_certgen_info(n, &i);
	assert_false(i.is_ca);
	assert_string_equal(i.subject, "CN=node1");
	assert_string_equal(i.issuer, "CN=haagent CA prod,O=haagent");
	assert_string_equal(i.names, "URI:urn:haagent:node:node1:7, DNS:node1, IP:10.0.0.11");
	assert_int_equal(strlen(i.sha256), 95);
	assert_true(strlen(i.serial) >= 16 && strlen(i.serial) <= 32);
	assert_int_equal(X509_get_extended_key_usage(n), XKU_SSL_SERVER | XKU_SSL_CLIENT);
	assert_int_equal(X509_get_key_usage(n), KU_DIGITAL_SIGNATURE);
	assert_non_null(X509_get0_authority_key_id(n));
	assert_int_equal(
	    ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(n), X509_get0_subject_key_id(ca)), 0);
	int crit;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(n, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(n, NID_key_usage, &crit, NULL);
	assert_int_equal(crit, 1);
	ASN1_BIT_STRING_free(ku);

	ha_certgen_info(a, &i);
	assert_string_equal(i.names, "URI:urn:haagent:role:admin");
	assert_int_equal(X509_get_extended_key_usage(a), XKU_SSL_CLIENT);

	/* two serials are not the same */
	X509 *n2 = node_cert("node1", 7, ca, cak);
	assert_int_not_equal(
	    ASN1_INTEGER_cmp(X509_get0_serialNumber(n), X509_get0_serialNumber(n2)), 0);
	X509_free(n2);
	X509_free(n);
	X509_free(a);
	X509_free(ca);
	EVP_PKEY_free(cak);
}

static void test_issue_refuses(void **state)
{
	(void)state;
	EVP_PKEY *cak, *other;
	X509 *ca = make_ca("prod", &cak);
	X509 *ca2 = make_ca("other", &other);
	X509 *leaf = node_cert("node1", 1, ca, cak);
	struct {
		struct ha_cert_spec s;
		const char *why;
	} bad[] = {
	    {{.kind = HA_CERT_NODE, .name = "..", .node_id = 1, .address = "10.0.0.1"}, "bad name"},
	    {{.kind = HA_CERT_NODE, .name = "a/b", .node_id = 1, .address = "10.0.0.1"},
	     "bad name"},
	    {{.kind = HA_CERT_NODE, .name = "n", .node_id = 0, .address = "10.0.0.1"}, "raft id 0"},
	    {{.kind = HA_CERT_NODE, .name = "n", .node_id = 1, .address = "10.0.0"}, "not IPv4"},
	    {{.kind = HA_CERT_NODE, .name = "n", .node_id = 1, .address = "::1"}, "not IPv4"},
	    {{.kind = HA_CERT_NODE, .name = "n", .node_id = 1}, "not IPv4"},
	    {{.kind = HA_CERT_OPERATOR, .name = "bob", .role = HA_ROLE_NODE}, "admin or readonly"},
	    {{.kind = HA_CERT_OPERATOR, .name = "bob", .role = HA_ROLE_NONE}, "admin or readonly"},
	    {{.kind = HA_CERT_OPERATOR, .role = HA_ROLE_ADMIN}, "no name"},
	};
	struct ha_err e = {0};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ha_certgen_validity(&bad[i].s, now, 10, 0);
		ha_err_clear(&e);
		assert_null(issue(&bad[i].s, ca, cak, &e));
		assert_int_equal(e.code, HA_EINVAL);
		if (strstr(e.msg, bad[i].why) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, bad[i].why);
	}
	struct ha_cert_spec s = {.kind = HA_CERT_OPERATOR, .name = "bob", .role = HA_ROLE_ADMIN};
	ha_certgen_validity(&s, now, 0, 0);
	assert_null(issue(&s, ca, cak, &e));
	assert_non_null(strstr(e.msg, "ends before it starts"));
	ha_certgen_validity(&s, now, 10, 0);
	assert_null(issue(&s, ca, other, &e));
	assert_non_null(strstr(e.msg, "does not match"));
	assert_null(issue(&s, leaf, cak, &e));
	assert_non_null(strstr(e.msg, "not a CA"));
	assert_null(issue(&s, NULL, NULL, &e));
	struct ha_cert_spec cs = {.kind = HA_CERT_CA, .name = "bad\ncluster"};
	ha_certgen_validity(&cs, now, 10, 0);
	assert_null(issue(&cs, NULL, NULL, &e));
	assert_non_null(strstr(e.msg, "printable"));
	/* year 10000 cannot be written */
	ha_certgen_validity(&s, now, 3000000, 0);
	assert_null(issue(&s, ca, cak, &e));
	assert_non_null(strstr(e.msg, "1970 to 9999"));
	X509_free(leaf);
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(other);
}

/* ---- certificates built by hand ---- */

struct gname {
	int type; /* GEN_URI, GEN_DNS */
	const char *p;
	int n; /* -1: strlen */
};

struct hostile {
	const char *what;
	const char *cn; /* NULL: no CN */
	int cn_type;    /* 0: MBSTRING_UTF8 of cn; else V_ASN1_... with cn_len raw bytes */
	int cn_len;
	int n_cn;  /* 0 means 1 when cn is set */
	int n_san; /* subjectAltName extensions: 0 none, 1, 2 (the same names twice) */
	struct gname names[3];
	const char *why; /* in the message */
};

static void add_names(X509 *x, const struct hostile *h)
{
	for (int k = 0; k < h->n_san; k++) {
		GENERAL_NAMES *gens = GENERAL_NAMES_new();
		for (int i = 0; i < 3 && h->names[i].p; i++) {
			GENERAL_NAME *g = GENERAL_NAME_new();
			ASN1_IA5STRING *v = ASN1_IA5STRING_new();
			int n = h->names[i].n >= 0 ? h->names[i].n : (int)strlen(h->names[i].p);
			assert_int_equal(ASN1_STRING_set(v, h->names[i].p, n), 1);
			GENERAL_NAME_set0_value(g, h->names[i].type, v);
			sk_GENERAL_NAME_push(gens, g);
		}
		assert_int_equal(
		    X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND), 1);
		GENERAL_NAMES_free(gens);
	}
}

/* A self-signed certificate as h says, through DER as a peer would send it. */
static X509 *hand_made(const struct hostile *h)
{
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME *n = X509_NAME_new();
	for (int k = 0; h->cn && k < (h->n_cn ? h->n_cn : 1); k++) {
		if (h->cn_type)
			assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_commonName, h->cn_type,
			                                            (const unsigned char *)h->cn,
			                                            h->cn_len, -1, 0),
			                 1);
		else
			assert_int_equal(
			    X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
			                               (const unsigned char *)h->cn, -1, -1, 0),
			    1);
	}
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_NAME_free(n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), DAY);
	X509_set_pubkey(x, hand_key);
	add_names(x, h);
	assert_true(X509_sign(x, hand_key, EVP_sha256()) > 0);
	X509 *y = wire(x);
	X509_free(x);
	return y;
}

#define URI(s)                                                                                     \
	{                                                                                          \
		GEN_URI, s, -1                                                                     \
	}
#define URI_N(s, n)                                                                                \
	{                                                                                          \
		GEN_URI, s, n                                                                      \
	}
#define DNS(s)                                                                                     \
	{                                                                                          \
		GEN_DNS, s, -1                                                                     \
	}
#define NODE_URI(tail) URI("urn:haagent:node:" tail)

static const struct hostile hostile[] = {
    {"no subjectAltName", "node1", 0, 0, 0, 0, {{0}}, "no subjectAltName"},
    {"no URI", "node1", 0, 0, 0, 1, {DNS("node1")}, "no URI"},
    {"node and role",
     "node1",
     0,
     0,
     0,
     1,
     {NODE_URI("node1:1"), URI("urn:haagent:role:admin")},
     "2 URIs"},
    {"two nodes", "node1", 0, 0, 0, 1, {NODE_URI("node1:1"), NODE_URI("node2:2")}, "2 URIs"},
    {"two roles",
     "bob",
     0,
     0,
     0,
     1,
     {URI("urn:haagent:role:readonly"), URI("urn:haagent:role:admin")},
     "2 URIs"},
    {"another URI too",
     "node1",
     0,
     0,
     0,
     1,
     {NODE_URI("node1:1"), URI("spiffe://example.org/x")},
     "2 URIs"},
    {"upper-case twin",
     "bob",
     0,
     0,
     0,
     1,
     {URI("urn:haagent:role:readonly"), URI("URN:HAAGENT:ROLE:ADMIN")},
     "2 URIs"},
    {"two extensions", "node1", 0, 0, 0, 2, {NODE_URI("node1:1")}, "two subjectAltName"},
    {"dot dot", "node1", 0, 0, 0, 1, {NODE_URI("..:1")}, "bad name"},
    {"dot", "node1", 0, 0, 0, 1, {NODE_URI(".:1")}, "bad name"},
    {"path", "node1", 0, 0, 0, 1, {NODE_URI("../etc:1")}, "bad name"},
    {"slash", "node1", 0, 0, 0, 1, {NODE_URI("a/b:1")}, "bad name"},
    {"empty name", "node1", 0, 0, 0, 1, {NODE_URI(":1")}, "bad name"},
    {"long name",
     "node1",
     0,
     0,
     0,
     1,
     {NODE_URI("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1")},
     "longer than 63"},
    {"no id", "node1", 0, 0, 0, 1, {NODE_URI("node1")}, "no ':RAFTID'"},
    {"empty id", "node1", 0, 0, 0, 1, {NODE_URI("node1:")}, "raft id"},
    {"id 0", "node1", 0, 0, 0, 1, {NODE_URI("node1:0")}, "raft id"},
    {"id 2^32", "node1", 0, 0, 0, 1, {NODE_URI("node1:4294967296")}, "raft id"},
    {"id overflow", "node1", 0, 0, 0, 1, {NODE_URI("node1:18446744073709551617")}, "raft id"},
    {"leading zero", "node1", 0, 0, 0, 1, {NODE_URI("node1:01")}, "raft id"},
    {"sign", "node1", 0, 0, 0, 1, {NODE_URI("node1:+1")}, "raft id"},
    {"negative", "node1", 0, 0, 0, 1, {NODE_URI("node1:-1")}, "raft id"},
    {"space", "node1", 0, 0, 0, 1, {NODE_URI("node1: 1")}, "raft id"},
    {"trailing garbage", "node1", 0, 0, 0, 1, {NODE_URI("node1:1x")}, "raft id"},
    {"third field", "node1", 0, 0, 0, 1, {NODE_URI("node1:1:2")}, "raft id"},
    {"trailing newline", "node1", 0, 0, 0, 1, {NODE_URI("node1:1\n")}, "raft id"},
    {"NUL in node URI", "node1", 0, 0, 0, 1, {URI_N("urn:haagent:node:node1:1\0", 26)}, "NUL"},
    {"NUL in name", "node1", 0, 0, 0, 1, {URI_N("urn:haagent:node:no\0de1:1", 26)}, "NUL"},
    {"NUL after role", "bob", 0, 0, 0, 1, {URI_N("urn:haagent:role:admin\0x", 24)}, "NUL"},
    {"role root", "bob", 0, 0, 0, 1, {URI("urn:haagent:role:root")}, "unknown role"},
    {"role Admin", "bob", 0, 0, 0, 1, {URI("urn:haagent:role:Admin")}, "unknown role"},
    {"role with space", "bob", 0, 0, 0, 1, {URI("urn:haagent:role:admin ")}, "unknown role"},
    {"role with more", "bob", 0, 0, 0, 1, {URI("urn:haagent:role:admin:x")}, "unknown role"},
    {"role empty", "bob", 0, 0, 0, 1, {URI("urn:haagent:role:")}, "unknown role"},
    {"role node", "bob", 0, 0, 0, 1, {URI("urn:haagent:role:node")}, "unknown role"},
    {"upper case", "bob", 0, 0, 0, 1, {URI("URN:HAAGENT:ROLE:ADMIN")}, "not a haagent identity"},
    {"nodes", "node1", 0, 0, 0, 1, {URI("urn:haagent:nodes:node1:1")}, "not a haagent identity"},
    {"web", "node1", 0, 0, 0, 1, {URI("https://node1/\x01\xff")}, "https://node1/\\x01\\xff"},
    {"too long",
     "node1",
     0,
     0,
     0,
     1,
     {URI("urn:haagent:role:admin-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")},
     "too long"},
    {"operator without CN",
     NULL,
     0,
     0,
     0,
     1,
     {URI("urn:haagent:role:admin")},
     "without a subject CN"},
    {"operator with two CNs",
     "bob",
     0,
     0,
     2,
     1,
     {URI("urn:haagent:role:admin")},
     "two subject CNs"},
    {"operator CN with space",
     "bob smith",
     0,
     0,
     0,
     1,
     {URI("urn:haagent:role:admin")},
     "is not a name"},
    {"operator CN ..", "..", 0, 0, 0, 1, {URI("urn:haagent:role:admin")}, "is not a name"},
    {"operator CN with NUL",
     "adm\0in",
     V_ASN1_UTF8STRING,
     6,
     0,
     1,
     {URI("urn:haagent:role:admin")},
     "adm\\x00in"},
    {"operator BMP CN with NUL",
     "\0a\0\0\0b",
     V_ASN1_BMPSTRING,
     6,
     0,
     1,
     {URI("urn:haagent:role:readonly")},
     "is not a name"},
};

static void test_hostile(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const struct hostile *h = &hostile[i];
		X509 *x = hand_made(h);
		struct ha_identity id;
		memset(&id, 0x5a, sizeof(id));
		struct ha_err e = {0};
		int rc = ha_tls_identity(x, &id, &e);
		if (rc != HA_EREFUSED)
			fail_msg("%s: accepted as %s (rc %d)", h->what, id.name, rc);
		if (strstr(e.msg, h->why) == NULL)
			fail_msg("%s: message '%s' lacks '%s'", h->what, e.msg, h->why);
		assert_int_equal(id.role, HA_ROLE_NONE);
		assert_string_equal(id.name, "");
		assert_int_equal(id.node_id, 0);
		X509_free(x);
	}
	struct ha_identity id;
	struct ha_err e = {0};
	assert_int_equal(ha_tls_identity(NULL, &id, &e), HA_EREFUSED);
}

/* What may come along with a valid identity. */
static void test_hand_made_accepted(void **state)
{
	(void)state;
	static const struct hostile ok[] = {
	    {"max id", "whatever", 0, 0, 0, 1, {NODE_URI("n1:4294967295")}, "n1"},
	    {"with DNS names",
	     NULL,
	     0,
	     0,
	     0,
	     1,
	     {DNS("a"), NODE_URI("node-2.x:2"), DNS("b")},
	     "node-2.x"},
	    {"readonly", "mon_1", 0, 0, 0, 1, {URI("urn:haagent:role:readonly")}, "mon_1"},
	    {"printable CN",
	     "ops",
	     V_ASN1_PRINTABLESTRING,
	     3,
	     0,
	     1,
	     {URI("urn:haagent:role:admin")},
	     "ops"},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		X509 *x = hand_made(&ok[i]);
		struct ha_identity id;
		struct ha_err e = {0};
		if (ha_tls_identity(x, &id, &e) != 0)
			fail_msg("%s: %s", ok[i].what, e.msg);
		assert_string_equal(id.name, ok[i].why);
		X509_free(x);
	}
}

/* ---- chains ---- */

static int verify(X509 *leaf, X509 *ca1, X509 *ca2, int purpose, int64_t at)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, ca1);
	if (ca2)
		X509_STORE_add_cert(st, ca2);
	X509_STORE_CTX *c = X509_STORE_CTX_new();
	assert_int_equal(X509_STORE_CTX_init(c, st, leaf, NULL), 1);
	if (purpose)
		X509_STORE_CTX_set_purpose(c, purpose);
	if (at)
		X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(c), (time_t)at);
	int ok = X509_verify_cert(c);
	int err = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(c);
	X509_STORE_CTX_free(c);
	X509_STORE_free(st);
	ERR_clear_error();
	return err;
}

static void test_verify(void **state)
{
	(void)state;
	EVP_PKEY *k1, *k2;
	X509 *ca1 = make_ca("one", &k1);
	X509 *ca2 = make_ca("two", &k2);
	X509 *n = node_cert("node1", 1, ca1, k1);
	X509 *op = operator_cert("monitor", HA_ROLE_READONLY, ca1, k1);

	assert_int_equal(verify(n, ca1, NULL, 0, 0), X509_V_OK);
	assert_int_equal(verify(n, ca2, NULL, 0, 0), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	/* a rotation: the CA file holds the old and the new CA */
	assert_int_equal(verify(n, ca2, ca1, 0, 0), X509_V_OK);
	/* a node is a server and a client; an operator only a client */
	assert_int_equal(verify(n, ca1, NULL, X509_PURPOSE_SSL_SERVER, 0), X509_V_OK);
	assert_int_equal(verify(n, ca1, NULL, X509_PURPOSE_SSL_CLIENT, 0), X509_V_OK);
	assert_int_equal(verify(op, ca1, NULL, X509_PURPOSE_SSL_CLIENT, 0), X509_V_OK);
	assert_int_equal(verify(op, ca1, NULL, X509_PURPOSE_SSL_SERVER, 0),
	                 X509_V_ERR_INVALID_PURPOSE);
	/* not yet valid a day before it was made; expired after its days */
	assert_int_equal(verify(n, ca1, NULL, 0, now - DAY), X509_V_ERR_CERT_NOT_YET_VALID);
	assert_int_equal(verify(n, ca1, NULL, 0, now + 826LL * DAY), X509_V_ERR_CERT_HAS_EXPIRED);

	/* --backdate 10 --days 5: expired when made */
	struct ha_err e = {0};
	struct ha_cert_spec s = {
	    .kind = HA_CERT_NODE, .name = "old", .node_id = 9, .address = "127.0.0.9"};
	ha_certgen_validity(&s, now, 5, 10LL * DAY);
	X509 *old = issue(&s, ca1, k1, &e);
	assert_non_null(old);
	assert_int_equal(verify(old, ca1, NULL, 0, 0), X509_V_ERR_CERT_HAS_EXPIRED);
	struct ha_identity id;
	assert_int_equal(ha_tls_identity(old, &id, &e), 0); /* the identity is still readable */

	X509_free(old);
	X509_free(n);
	X509_free(op);
	X509_free(ca1);
	X509_free(ca2);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

static void test_parse(void **state)
{
	(void)state;
	STACK_OF(X509) * sk;
	EVP_PKEY *k;
	struct ha_err e = {0};
	const char *junk = "hello\n";
	assert_int_equal(ha_certgen_parse_certs(junk, strlen(junk), &sk, &e), HA_EINVAL);
	assert_non_null(strstr(e.msg, "no PEM certificate"));
	assert_int_equal(ha_certgen_parse_certs("", 0, &sk, &e), HA_EINVAL);
	const char *broken = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	assert_int_equal(ha_certgen_parse_certs(broken, strlen(broken), &sk, &e), HA_EINVAL);
	assert_int_equal(ha_certgen_parse_key(junk, strlen(junk), &k, &e), HA_EINVAL);
	assert_null(k);

	/* more than HA_CERT_FILE_MAX */
	EVP_PKEY *cak;
	X509 *ca = make_ca("x", &cak);
	struct ha_buf b = HA_BUF_INIT;
	for (int i = 0; i <= HA_CERT_FILE_MAX; i++)
		assert_int_equal(ha_certgen_cert_pem(ca, &b, &e), 0);
	assert_int_equal(ha_certgen_parse_certs(b.data, b.len, &sk, &e), HA_EINVAL);
	assert_non_null(strstr(e.msg, "more than"));
	ha_buf_free(&b);
	X509_free(ca);
	EVP_PKEY_free(cak);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_valid),
	    cmocka_unit_test(test_role_names),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_contents),
	    cmocka_unit_test(test_issue_refuses),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_hand_made_accepted),
	    cmocka_unit_test(test_verify),
	    cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
