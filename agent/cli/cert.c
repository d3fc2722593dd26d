/* haadm cert: the cluster's certificates (docs/security.md#certificates). certgen.c makes them
 * in memory; this file reads the command line, decides what to issue or keep and reports it;
 * certfile.c writes the files (a private key 0600 from the moment it exists, a certificate
 * 0644, never over an existing file without --force); certshow.c is haadm cert show.
 * Blocking; haadm only. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "../common/buf.h"
#include "../common/certgen.h"
#include "../common/tls.h"
#include "cert.h"
#include "haadm.h"

#define CA_DAYS       3650
#define LEAF_DAYS     825
#define DAYS_MAX      36500 /* a hundred years */
#define BACKDATE_S    3600  /* clock skew between the host that issues and the hosts that check */
#define EXPIRY_WARN_S (30 * 86400)

/* The options, one bit each, so that every subcommand says which it takes. */
enum {
	O_DIR = 1 << 0,
	O_DAYS = 1 << 1,
	O_BACKDATE = 1 << 2,
	O_CLUSTER = 1 << 3,
	O_ID = 1 << 4,
	O_ADDRESS = 1 << 5,
	O_ROLE = 1 << 6,
	O_CA = 1 << 7, /* --ca-cert and --ca-key */
	O_FORCE = 1 << 8,
	O_CONFIG = 1 << 9,
	O_JSON = 1 << 10,
};

struct opts {
	unsigned seen;
	const char *dir, *cluster, *address, *role, *ca_cert, *ca_key, *config;
	const char *arg; /* NAME or FILE */
	unsigned days;
	int64_t backdate_s;
	uint32_t id;
	bool force;
};

/* What was written or kept, printed at the end (--json) or as it happens. */
struct report {
	bool json;
	struct ha_buf b;
	struct ha_json j;
};

/* The CA that signs: the key, and the certificate of the CA file that matches it (during a
 * rotation the file holds the old and the new CA). */
struct ca {
	char path[PATH_MAX]; /* of the certificates */
	STACK_OF(X509) * certs;
	X509 *cert; /* in certs */
	EVP_PKEY *key;
};

static void ca_free(struct ca *c)
{
	sk_X509_pop_free(c->certs, X509_free);
	EVP_PKEY_free(c->key);
	c->certs = NULL;
	c->key = NULL;
	c->cert = NULL;
}

static int ca_paths(const struct opts *o, char *crt, char *key, struct ha_err *e)
{
	int rc = 0;
	if (o->ca_cert)
		snprintf(crt, PATH_MAX, "%s", o->ca_cert);
	else
		rc = ha_cli_cert_path(crt, PATH_MAX, o->dir, "ca.crt", e);
	if (rc == 0 && o->ca_key)
		snprintf(key, PATH_MAX, "%s", o->ca_key);
	else if (rc == 0)
		rc = ha_cli_cert_path(key, PATH_MAX, o->dir, "ca.key", e);
	return rc;
}

static int ca_load_key(struct ca *c, const char *key_path, struct ha_err *e)
{
	int rc = ha_cli_cert_load_key(key_path, &c->key, e);
	if (rc != 0)
		return rc;
	for (int i = 0; i < sk_X509_num(c->certs); i++)
		if (X509_check_private_key(sk_X509_value(c->certs, i), c->key) == 1)
			c->cert = sk_X509_value(c->certs, i);
	ERR_clear_error();
	if (c->cert == NULL)
		return ha_err_set(e, HA_EINVAL,
		                  "%s matches no certificate of %s: name the CA's own key and "
		                  "certificate",
		                  key_path, c->path);
	return 0;
}

/* ---- the report ---- */

static const char *kind_name(enum ha_cert_kind k)
{
	return k == HA_CERT_CA ? "ca" : k == HA_CERT_NODE ? "node" : "operator";
}

/* One certificate: written (key set) or kept. */
static void report_cert(struct report *r, enum ha_cert_kind kind, const char *crt, const char *key,
                        X509 *x)
{
	struct ha_cert_info i;
	ha_certgen_info(x, &i);
	struct ha_identity id;
	char who[HA_TLS_NAME_MAX + 32] = "";
	if (kind != HA_CERT_CA && ha_tls_identity(x, &id, NULL) == 0)
		ha_identity_str(&id, who, sizeof(who));
	else
		memset(&id, 0, sizeof(id));
	char nb[32], na[32];
	ha_cli_cert_iso(i.not_before, nb, sizeof(nb));
	ha_cli_cert_iso(i.not_after, na, sizeof(na));
	if (!r->json) {
		printf("%s %s%s%s: %s", key ? "wrote" : "kept ", crt, key ? ", " : "",
		       key ? key : "", kind == HA_CERT_CA ? i.subject : who);
		if (id.role == HA_ROLE_NODE)
			printf(", raft id %u", id.node_id);
		printf("\n      valid %s to %s, serial %s\n      sha256 %s\n", nb, na, i.serial,
		       i.sha256);
		return;
	}
	struct ha_json *j = &r->j;
	ha_json_obj_begin(j, NULL);
	ha_json_str(j, "action", key ? "written" : "kept");
	ha_json_str(j, "kind", kind_name(kind));
	ha_json_str(j, "cert", crt);
	ha_json_str_or_null(j, "key", key);
	ha_json_str(j, "subject", i.subject);
	ha_json_str(j, "issuer", i.issuer);
	ha_cli_cert_identity_json(j, id.role == HA_ROLE_NONE ? HA_EREFUSED : 0, &id);
	ha_json_str(j, "names", i.names);
	ha_json_str(j, "serial", i.serial);
	ha_json_str(j, "not_before", nb);
	ha_json_str(j, "not_after", na);
	ha_json_int(j, "not_before_unix", i.not_before);
	ha_json_int(j, "not_after_unix", i.not_after);
	ha_json_str(j, "sha256", i.sha256);
	ha_json_obj_end(j);
}

static void report_begin(struct report *r, bool json, const char *dir)
{
	r->json = json;
	r->b = (struct ha_buf)HA_BUF_INIT;
	ha_json_init(&r->j, &r->b, true);
	if (json) {
		ha_json_obj_begin(&r->j, NULL);
		ha_json_uint(&r->j, "format", 1);
		ha_json_str(&r->j, "dir", dir);
		ha_json_arr_begin(&r->j, "certificates");
	}
}

/* Prints the JSON report, also after a failure (what was written before it is listed, and
 * the error). */
static int report_end(struct report *r, int rc, const struct ha_err *e)
{
	if (r->json) {
		ha_json_arr_end(&r->j);
		ha_json_str_or_null(&r->j, "error", rc ? e->msg : NULL);
		ha_json_obj_end(&r->j);
		printf("%s\n", ha_buf_failed(&r->b) ? "{}" : ha_buf_cstr(&r->b));
	}
	ha_buf_free(&r->b);
	return rc;
}

/* ---- issuing ---- */

/* A key and its certificate as s says, signed by ca (NULL: self-signed), written to
 * dir/base.crt and dir/base.key. Neither file may exist unless force. */
static int issue_pair(struct report *r, const struct ha_cert_spec *s, const char *dir,
                      const char *base, struct ca *ca, bool force, struct ha_err *e)
{
	char crt[PATH_MAX], key[PATH_MAX], crt_name[HA_NAME_MAX + 8], key_name[HA_NAME_MAX + 8];
	snprintf(crt_name, sizeof(crt_name), "%s.crt", base);
	snprintf(key_name, sizeof(key_name), "%s.key", base);
	int rc = ha_cli_cert_path(crt, sizeof(crt), dir, crt_name, e);
	if (rc == 0)
		rc = ha_cli_cert_path(key, sizeof(key), dir, key_name, e);
	if (rc == 0 && !force && ha_cli_cert_exists(key))
		rc = ha_cli_cert_refuse_existing(key, e);
	if (rc == 0 && !force && ha_cli_cert_exists(crt))
		rc = ha_cli_cert_refuse_existing(crt, e);
	if (rc != 0)
		return rc;
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	struct ha_buf kp = HA_BUF_INIT, cp = HA_BUF_INIT;
	if ((rc = ha_certgen_key(&k, e)) == 0 &&
	    (rc = ha_certgen_issue(s, k, ca ? ca->cert : NULL, ca ? ca->key : NULL, &x, e)) == 0 &&
	    (rc = ha_certgen_key_pem(k, &kp, e)) == 0 &&
	    (rc = ha_certgen_cert_pem(x, &cp, e)) == 0 &&
	    (rc = ha_cli_cert_write(dir, key_name, kp.data, kp.len, 0600, force, e)) == 0) {
		/* the key first: a certificate never lies beside no key */
		if ((rc = ha_cli_cert_write(dir, crt_name, cp.data, cp.len, 0644, force, e)) != 0)
			unlink(key);
	}
	if (rc == 0)
		report_cert(r, s->kind, crt, key, x);
	if (rc == 0 && ca &&
	    X509_cmp_time(X509_get0_notAfter(ca->cert), &(time_t){s->not_after}) < 0)
		fprintf(stderr,
		        "haadm cert: warning: %s outlives the CA that signed it (its chain stops "
		        "verifying when the CA expires)\n",
		        crt);
	if (kp.data)
		OPENSSL_cleanse(kp.data, kp.cap);
	ha_buf_free(&kp);
	ha_buf_free(&cp);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

static void validity(struct ha_cert_spec *s, const struct opts *o, unsigned days)
{
	ha_certgen_validity(s, (int64_t)time(NULL), (o->seen & O_DAYS) ? o->days : days,
	                    (o->seen & O_BACKDATE) ? o->backdate_s : BACKDATE_S);
}

static int cert_ca(struct report *r, const struct opts *o, struct ha_err *e)
{
	struct ha_cert_spec s = {.kind = HA_CERT_CA, .name = o->cluster ? o->cluster : "haagent"};
	validity(&s, o, CA_DAYS);
	int rc = ha_cli_cert_ensure_dir(o->dir, e);
	return rc ? rc : issue_pair(r, &s, o->dir, "ca", NULL, o->force, e);
}

/* A node's or an operator's certificate, signed by the CA of --ca-cert/--ca-key or DIR/ca.*. */
static int cert_leaf(struct report *r, const struct ha_cert_spec *s, const struct opts *o,
                     struct ha_err *e)
{
	char crt[PATH_MAX], key[PATH_MAX];
	struct ca ca = {0};
	int rc = ca_paths(o, crt, key, e);
	snprintf(ca.path, sizeof(ca.path), "%s", crt);
	if (rc == 0 && (rc = ha_cli_cert_load_certs(crt, &ca.certs, e)) != 0 &&
	    !ha_cli_cert_exists(crt))
		ha_err_set(e, rc,
		           "%s: no CA certificate: make the CA first (haadm cert ca --dir %s) "
		           "or name it with --ca-cert and --ca-key",
		           crt, o->dir);
	if (rc == 0)
		rc = ca_load_key(&ca, key, e);
	if (rc == 0)
		rc = ha_cli_cert_ensure_dir(o->dir, e);
	if (rc == 0)
		rc = issue_pair(r, s, o->dir, s->name, &ca, o->force, e);
	ca_free(&ca);
	return rc;
}

/* ---- haadm cert cluster ---- */

/* An existing certificate kept by `cert cluster`: it must be the one the configuration asks
 * for, issued by the CA of the CA file. */
static int keep(struct report *r, const struct ha_cert_spec *s, const char *crt, const char *key,
                const struct ca *ca, struct ha_err *e)
{
	if (!ha_cli_cert_exists(key))
		return ha_err_set(e, HA_EREFUSED,
		                  "%s exists but %s does not: remove %s, or pass --force to "
		                  "re-issue both",
		                  crt, key, crt);
	STACK_OF(X509) *sk = NULL;
	int rc = ha_cli_cert_load_certs(crt, &sk, e);
	if (rc != 0) {
		char why[HA_ERR_MSG_MAX];
		snprintf(why, sizeof(why), "%s", e->msg);
		return ha_err_set(e, rc, "%s (pass --force to re-issue it)", why);
	}
	X509 *x = sk_X509_value(sk, 0);
	struct ha_identity id;
	enum ha_role want = s->kind == HA_CERT_NODE ? HA_ROLE_NODE : s->role;
	if ((rc = ha_tls_identity(x, &id, e)) != 0) {
		ha_err_wrap(e, "%s (pass --force to re-issue it)", crt);
	} else if (id.role != want || strcmp(id.name, s->name) ||
	           (want == HA_ROLE_NODE && id.node_id != s->node_id)) {
		char who[HA_TLS_NAME_MAX + 32], has[16] = "", wants[16] = "";
		ha_identity_str(&id, who, sizeof(who));
		if (id.role == HA_ROLE_NODE)
			snprintf(has, sizeof(has), " id %u", id.node_id);
		if (want == HA_ROLE_NODE)
			snprintf(wants, sizeof(wants), " id %u", s->node_id);
		rc = ha_err_set(e, HA_EREFUSED,
		                "%s is %s%s, not %s (%s)%s as the configuration says: pass --force "
		                "to re-issue it",
		                crt, who, has, s->name, ha_role_name(want), wants);
	} else {
		bool signed_by_ca = false;
		for (int i = 0; i < sk_X509_num(ca->certs); i++)
			if (X509_verify(x, X509_get0_pubkey(sk_X509_value(ca->certs, i))) == 1)
				signed_by_ca = true;
		ERR_clear_error();
		if (!signed_by_ca)
			rc = ha_err_set(
			    e, HA_EREFUSED,
			    "%s was not issued by the CA of %s: pass --force to re-issue "
			    "it",
			    crt, ca->path);
	}
	if (rc == 0) {
		report_cert(r, s->kind, crt, NULL, x);
		if (X509_cmp_time(X509_get0_notAfter(x), &(time_t){time(NULL) + EXPIRY_WARN_S}) < 0)
			fprintf(stderr,
			        "haadm cert: warning: %s expires within 30 days (or has): pass "
			        "--force to re-issue\n",
			        crt);
	}
	sk_X509_pop_free(sk, X509_free);
	return rc;
}

/* Issues s into dir/NAME.* unless both files are there already and right (or force). */
static int issue_or_keep(struct report *r, const struct ha_cert_spec *s, const struct opts *o,
                         struct ca *ca, const char *ca_key, struct ha_err *e)
{
	char crt[PATH_MAX], key[PATH_MAX];
	char crt_name[HA_NAME_MAX + 8], key_name[HA_NAME_MAX + 8];
	snprintf(crt_name, sizeof(crt_name), "%s.crt", s->name);
	snprintf(key_name, sizeof(key_name), "%s.key", s->name);
	int rc = ha_cli_cert_path(crt, sizeof(crt), o->dir, crt_name, e);
	if (rc == 0)
		rc = ha_cli_cert_path(key, sizeof(key), o->dir, key_name, e);
	if (rc != 0)
		return rc;
	if (!o->force && ha_cli_cert_exists(crt))
		return keep(r, s, crt, key, ca, e);
	if (!o->force && ha_cli_cert_exists(key))
		return ha_err_set(e, HA_EREFUSED,
		                  "%s exists but %s does not: remove %s, or pass --force to "
		                  "re-issue both",
		                  key, crt, key);
	if (ca->key == NULL && (rc = ca_load_key(ca, ca_key, e)) != 0)
		return rc;
	return issue_pair(r, s, o->dir, s->name, ca, o->force, e);
}

static int cluster_names_free(const struct ha_config *c, struct ha_err *e)
{
	static const char *const taken[] = {"ca", "admin", "monitor"};
	for (unsigned i = 0; i < c->n_nodes; i++)
		for (size_t k = 0; k < sizeof(taken) / sizeof(taken[0]); k++)
			if (!strcmp(c->nodes[i].name, taken[k]))
				return ha_err_set(
				    e, HA_ECONFIG,
				    "%s: a node is named '%s', which names the %s certificate's "
				    "files; make them one by one (haadm cert node/operator) with "
				    "other names",
				    c->path, taken[k], k == 0 ? "CA" : "operator");
	return 0;
}

/* 1. the configuration's nodes; 2. the CA, made when DIR/ca.crt does not exist (never
 * replaced here, not even with --force: that is haadm cert ca --force); 3. every node's
 * certificate and the operators admin (admin) and monitor (readonly), each kept when there
 * and right, made when absent, replaced with --force. */
static int cert_cluster(struct globals *g, struct report *r, const struct opts *o, struct ha_err *e)
{
	const char *path = o->config ? o->config : ha_cli_conf_path(g);
	struct ha_config *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	int rc = ha_config_load(path, 0, c, e);
	if (rc == 0 && c->n_nodes == 0)
		rc = ha_err_set(e, HA_ECONFIG, "%s: no [node NAME] section", path);
	if (rc == 0)
		rc = cluster_names_free(c, e);
	char crt[PATH_MAX], key[PATH_MAX];
	struct ca ca = {0};
	bool made_ca = false;
	if (rc == 0)
		rc = ha_cli_cert_ensure_dir(o->dir, e);
	if (rc == 0)
		rc = ca_paths(o, crt, key, e);
	if (rc == 0 && !ha_cli_cert_exists(crt)) {
		if (ha_cli_cert_exists(key))
			rc =
			    ha_err_set(e, HA_EREFUSED,
			               "%s exists but %s does not: put the CA certificate back, or "
			               "remove the key to make a new CA",
			               key, crt);
		struct ha_cert_spec s = {.kind = HA_CERT_CA, .name = c->cluster};
		validity(&s, &(struct opts){0}, CA_DAYS);
		if (rc == 0 && (rc = issue_pair(r, &s, o->dir, "ca", NULL, false, e)) == 0)
			made_ca = true;
	}
	snprintf(ca.path, sizeof(ca.path), "%s", crt);
	if (rc == 0)
		rc = ha_cli_cert_load_certs(crt, &ca.certs, e);
	for (int i = 0; rc == 0 && !made_ca && i < sk_X509_num(ca.certs); i++)
		report_cert(r, HA_CERT_CA, crt, NULL, sk_X509_value(ca.certs, i));
	for (unsigned i = 0; rc == 0 && i < c->n_nodes; i++) {
		struct ha_cert_spec s = {.kind = HA_CERT_NODE,
		                         .name = c->nodes[i].name,
		                         .node_id = c->nodes[i].id,
		                         .address = c->nodes[i].address};
		validity(&s, &(struct opts){0}, LEAF_DAYS);
		rc = issue_or_keep(r, &s, o, &ca, key, e);
	}
	static const struct {
		const char *name;
		enum ha_role role;
	} ops[] = {{"admin", HA_ROLE_ADMIN}, {"monitor", HA_ROLE_READONLY}};
	for (size_t i = 0; rc == 0 && i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct ha_cert_spec s = {
		    .kind = HA_CERT_OPERATOR, .name = ops[i].name, .role = ops[i].role};
		validity(&s, &(struct opts){0}, LEAF_DAYS);
		rc = issue_or_keep(r, &s, o, &ca, key, e);
	}
	ca_free(&ca);
	free(c);
	return rc;
}

/* ---- the command line ---- */

static const struct sub {
	const char *name;
	unsigned allowed, required;
	bool positional; /* NAME or FILE */
} subs[] = {
    {"ca", O_DIR | O_DAYS | O_BACKDATE | O_CLUSTER | O_FORCE | O_JSON, O_DIR, false},
    {"node", O_DIR | O_DAYS | O_BACKDATE | O_ID | O_ADDRESS | O_CA | O_FORCE | O_JSON,
     O_DIR | O_ID | O_ADDRESS, true},
    {"operator", O_DIR | O_DAYS | O_BACKDATE | O_ROLE | O_CA | O_FORCE | O_JSON, O_DIR | O_ROLE,
     true},
    {"cluster", O_DIR | O_CONFIG | O_FORCE | O_JSON, O_DIR, false},
    {"show", O_JSON, 0, true},
};

static const struct option long_opts[] = {
    {"dir", required_argument, NULL, 'd'},      {"days", required_argument, NULL, 'D'},
    {"backdate", required_argument, NULL, 'b'}, {"cluster", required_argument, NULL, 'C'},
    {"id", required_argument, NULL, 'i'},       {"address", required_argument, NULL, 'A'},
    {"role", required_argument, NULL, 'r'},     {"ca-cert", required_argument, NULL, 'x'},
    {"ca-key", required_argument, NULL, 'k'},   {"force", no_argument, NULL, 'f'},
    {"config", required_argument, NULL, 'c'},   {"json", no_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
};

/* s as a whole decimal number from min to max (no sign, no space, no suffix, no leading
 * zero). */
static bool number(const char *s, unsigned long long min, unsigned long long max,
                   unsigned long long *out)
{
	if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != '\0'))
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int usage_err(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_err(const char *sub, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "haadm cert%s%s: ", sub ? " " : "", sub ? sub : "");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "; see 'haadm cert %s%s--help'\n", sub ? sub : "", sub ? " " : "");
	va_end(ap);
	return HA_EUSAGE;
}

/* One option into o. */
static int take(struct opts *o, const char *sub, int c, const char *arg)
{
	unsigned long long v;
	switch (c) {
	case 'd':
		o->dir = arg;
		return arg[0] ? O_DIR : usage_err(sub, "--dir: empty");
	case 'D':
		if (!number(arg, 1, DAYS_MAX, &v))
			return usage_err(sub, "--days %s: expected days, 1 to 36500", arg);
		o->days = (unsigned)v;
		return O_DAYS;
	case 'b':
		if (!number(arg, 0, DAYS_MAX, &v))
			return usage_err(sub, "--backdate %s: expected days, 0 to 36500", arg);
		o->backdate_s = (int64_t)v * 86400;
		return O_BACKDATE;
	case 'C':
		o->cluster = arg;
		return O_CLUSTER;
	case 'i':
		if (!number(arg, 1, UINT32_MAX, &v))
			return usage_err(
			    sub, "--id %s: expected the node's raft id, 1 to 4294967295", arg);
		o->id = (uint32_t)v;
		return O_ID;
	case 'A': {
		struct in_addr a;
		if (inet_pton(AF_INET, arg, &a) != 1)
			return usage_err(sub, "--address %s: expected an IPv4 address", arg);
		o->address = arg;
		return O_ADDRESS;
	}
	case 'r':
		if (strcmp(arg, "admin") && strcmp(arg, "readonly"))
			return usage_err(sub, "--role %s: expected admin or readonly", arg);
		o->role = arg;
		return O_ROLE;
	case 'x':
		o->ca_cert = arg;
		return O_CA;
	case 'k':
		o->ca_key = arg;
		return O_CA;
	case 'f':
		o->force = true;
		return O_FORCE;
	case 'c':
		o->config = arg;
		return O_CONFIG;
	case 'j':
		return O_JSON;
	}
	return usage_err(sub, "bad arguments");
}

static const char *option_name(int c)
{
	for (size_t i = 0; long_opts[i].name; i++)
		if (long_opts[i].val == c)
			return long_opts[i].name;
	return "?";
}

/* The options of sub into o, checked against what sub takes; 1 after --help. */
static int parse(const struct sub *sub, int argc, char **argv, struct opts *o)
{
	int c;
	optind = 0; /* 0, not 1: glibc then re-reads the ordering from optstring */
	while ((c = getopt_long(argc, argv, "hc:", long_opts, NULL)) != -1) {
		if (c == 'h') {
			char name[32];
			snprintf(name, sizeof(name), "cert %s", sub->name);
			ha_cli_help(name);
			return 1;
		}
		int bit = take(o, sub->name, c, optarg);
		if (bit < 0)
			return bit;
		if (!(sub->allowed & (unsigned)bit))
			return usage_err(sub->name, "it does not take --%s", option_name(c));
		o->seen |= (unsigned)bit;
	}
	int rest = argc - optind;
	if (sub->positional && rest == 1)
		o->arg = argv[optind];
	else if (rest != (sub->positional ? 1 : 0))
		return usage_err(sub->name, "%s",
		                 sub->positional ? "expected one NAME or FILE"
		                                 : "unexpected arguments");
	static const struct {
		unsigned bit;
		const char *what;
	} need[] = {
	    {O_DIR, "--dir DIR is required (where the files go)"},
	    {O_ID, "--id RAFTID is required (the node's id, as in its [node NAME] section)"},
	    {O_ADDRESS, "--address IPV4 is required (the node's address)"},
	    {O_ROLE, "--role admin|readonly is required"},
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if ((sub->required & need[i].bit) && !(o->seen & need[i].bit))
			return usage_err(sub->name, "%s", need[i].what);
	if ((o->ca_cert == NULL) != (o->ca_key == NULL))
		return usage_err(sub->name, "%s", "--ca-cert and --ca-key go together");
	return 0;
}

/* A NAME for a node or an operator: the name rule, and not the CA's file. */
static int leaf_name(const char *sub, const char *name)
{
	if (!ha_name_valid(name))
		return usage_err(sub, "bad name '%s' (" HA_NAME_RULE ")", name);
	if (!strcmp(name, "ca"))
		return usage_err(sub, "the name 'ca' is taken by the CA's files (ca.crt, ca.key)");
	return 0;
}

static int run(struct globals *g, const struct sub *sub, struct opts *o, struct ha_err *e)
{
	if (!strcmp(sub->name, "show"))
		return ha_cli_cert_show(o->arg, g->json, e);
	struct report r;
	report_begin(&r, g->json, o->dir);
	int rc;
	if (!strcmp(sub->name, "ca")) {
		rc = cert_ca(&r, o, e);
	} else if (!strcmp(sub->name, "cluster")) {
		rc = cert_cluster(g, &r, o, e);
	} else {
		bool node = !strcmp(sub->name, "node");
		struct ha_cert_spec s = {
		    .kind = node ? HA_CERT_NODE : HA_CERT_OPERATOR,
		    .name = o->arg,
		    .node_id = o->id,
		    .address = o->address,
		    .role = !node && !strcmp(o->role, "admin") ? HA_ROLE_ADMIN : HA_ROLE_READONLY,
		};
		validity(&s, o, LEAF_DAYS);
		rc = cert_leaf(&r, &s, o, e);
	}
	return report_end(&r, rc, e);
}

int ha_cmd_cert(struct globals *g, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		ha_cli_help("cert");
		return argc < 2 ? HA_EUSAGE : 0;
	}
	const struct sub *sub = NULL;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (!strcmp(argv[1], subs[i].name))
			sub = &subs[i];
	if (sub == NULL)
		return usage_err(
		    NULL, "unknown subcommand '%s' (ca, node, operator, cluster, show)", argv[1]);
	struct opts o = {0};
	int rc = parse(sub, argc - 1, argv + 1, &o);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	if (o.seen & O_JSON)
		g->json = true;
	if (o.cluster && strcmp(sub->name, "ca") == 0 && !ha_name_valid(o.cluster))
		return usage_err(sub->name, "--cluster %s: not a name (" HA_NAME_RULE ")",
		                 o.cluster);
	if ((!strcmp(sub->name, "node") || !strcmp(sub->name, "operator")) &&
	    (rc = leaf_name(sub->name, o.arg)) != 0)
		return rc;
	struct ha_err e = {0};
	if ((rc = run(g, sub, &o, &e)) != 0)
		fprintf(stderr, "haadm cert %s: %s\n", sub->name, e.msg);
	return rc;
}
