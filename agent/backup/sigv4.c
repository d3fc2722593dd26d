#include "sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/secret.h"

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 as AWS applies it: uppercase hex, space as %20 (never '+'). */
static void uri_encode(struct ha_buf *out, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (unreserved(*p) || (keep_slash && *p == '/')) {
			ha_buf_append(out, p, 1);
		} else {
			char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			ha_buf_append(out, esc, 3);
		}
	}
}

void ha_sigv4_canonical_uri(struct ha_buf *out, const char *path)
{
	if (path == NULL || path[0] == '\0')
		path = "/";
	uri_encode(out, path, true);
}

struct enc_pair {
	char *k, *v;
};

static int by_key_then_value(const void *a, const void *b)
{
	const struct enc_pair *x = a, *y = b;
	int c = strcmp(x->k, y->k);
	return c ? c : strcmp(x->v, y->v);
}

static char *encoded(const char *s)
{
	struct ha_buf b = HA_BUF_INIT;
	uri_encode(&b, s ? s : "", false);
	ha_buf_append(&b, "", 0); /* an empty string still gets its NUL */
	if (ha_buf_failed(&b)) {
		ha_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* Sorted on the encoded forms: that is the order AWS specifies (by code point of the encoded
 * key), which differs from the order of the raw keys when one holds a character below '%'. */
void ha_sigv4_canonical_query(struct ha_buf *out, const struct ha_sigv4_pair *q, size_t n)
{
	if (n == 0)
		return;
	struct enc_pair *p = calloc(n, sizeof(*p));
	bool ok = p != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		p[i].k = encoded(q[i].name);
		p[i].v = encoded(q[i].value);
		ok = p[i].k && p[i].v;
	}
	if (ok) {
		qsort(p, n, sizeof(*p), by_key_then_value);
		for (size_t i = 0; i < n; i++)
			ha_buf_printf(out, "%s%s=%s", i ? "&" : "", p[i].k, p[i].v);
	} else {
		out->failed = true;
	}
	for (size_t i = 0; p && i < n; i++) {
		free(p[i].k);
		free(p[i].v);
	}
	free(p);
}

struct canon_header {
	char *name;        /* lowercased */
	const char *value; /* as given */
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct canon_header *)a)->name,
	              ((const struct canon_header *)b)->name);
}

/* RFC 7230 token characters: what a header name may hold. */
static bool token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The value trimmed, inner runs of spaces as one (AWS's "Trimall"). */
static void trimmed_value(struct ha_buf *out, const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	bool space = false;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = true;
			continue;
		}
		if (space)
			ha_buf_append(out, " ", 1);
		space = false;
		ha_buf_append(out, v, 1);
	}
}

static int canon_headers(const struct ha_sigv4_request *r, struct canon_header *h, struct ha_err *e)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		const char *n = r->headers[i].name;
		if (n == NULL || n[0] == '\0' || r->headers[i].value == NULL)
			return ha_err_set(e, HA_EINVAL,
			                  "sigv4: a header without a name or a value");
		if ((h[i].name = strdup(n)) == NULL)
			return ha_err_set(e, HA_ENOMEM, "out of memory");
		for (char *c = h[i].name; *c; c++) {
			if (!token_char((unsigned char)*c))
				return ha_err_set(e, HA_EINVAL,
				                  "sigv4: header name '%.64s' is not a token", n);
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		}
		h[i].value = r->headers[i].value;
	}
	qsort(h, r->n_headers, sizeof(*h), by_name);
	for (size_t i = 1; i < r->n_headers; i++)
		if (strcmp(h[i - 1].name, h[i].name) == 0)
			return ha_err_set(e, HA_EINVAL, "sigv4: header %s given twice", h[i].name);
	return 0;
}

int ha_sigv4_canonical_request(const struct ha_sigv4_request *r, struct ha_buf *out,
                               struct ha_buf *signed_headers, struct ha_err *e)
{
	struct canon_header *h = calloc(r->n_headers ? r->n_headers : 1, sizeof(*h));
	if (h == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	int rc = canon_headers(r, h, e);
	if (rc == 0) {
		ha_buf_printf(out, "%s\n", r->method);
		ha_sigv4_canonical_uri(out, r->path);
		ha_buf_puts(out, "\n");
		ha_sigv4_canonical_query(out, r->query, r->n_query);
		ha_buf_puts(out, "\n");
		for (size_t i = 0; i < r->n_headers; i++) {
			ha_buf_printf(out, "%s:", h[i].name);
			trimmed_value(out, h[i].value);
			ha_buf_puts(out, "\n");
			ha_buf_printf(signed_headers, "%s%s", i ? ";" : "", h[i].name);
		}
		ha_buf_printf(out, "\n%s\n%s", ha_buf_cstr(signed_headers), r->payload_sha256);
		if (ha_buf_failed(out) || ha_buf_failed(signed_headers))
			rc = ha_err_set(e, HA_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < r->n_headers; i++)
		free(h[i].name);
	free(h);
	return rc;
}

static void hex(const uint8_t *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void ha_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t d[SHA256_DIGEST_LENGTH];
	SHA256(data, len, d);
	hex(d, sizeof(d), out);
}

void ha_sigv4_string_to_sign(struct ha_buf *out, const char *amz_date, const char *region,
                             const char *service, const char *canonical, size_t len)
{
	char h[65];
	ha_sigv4_sha256_hex(canonical, len, h);
	ha_buf_printf(out, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", amz_date, amz_date,
	              region, service, h);
}

static void hmac(const uint8_t *key, size_t klen, const char *msg, size_t mlen, uint8_t out[32])
{
	unsigned int n = 32;
	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &n);
}

int ha_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                         const char *service, uint8_t key[32])
{
	size_t slen = strlen(secret);
	uint8_t *k0 = malloc(slen + 4);
	uint8_t a[32], b[32];
	if (k0 == NULL)
		return HA_ENOMEM;
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, secret, slen);
	hmac(k0, slen + 4, date8, 8, a);
	hmac(a, 32, region, strlen(region), b);
	hmac(b, 32, service, strlen(service), a);
	hmac(a, 32, "aws4_request", 12, key);
	ha_wipe(k0, slen + 4);
	ha_wipe(a, sizeof(a));
	ha_wipe(b, sizeof(b));
	free(k0);
	return 0;
}

int ha_sigv4_authorization(const struct ha_sigv4_request *r, const struct ha_sigv4_creds *c,
                           const char *amz_date, struct ha_buf *out, struct ha_err *e)
{
	if (strlen(amz_date) != 16)
		return ha_err_set(e, HA_EINVAL, "sigv4: '%.32s' is not an x-amz-date", amz_date);
	struct ha_buf canon = HA_BUF_INIT, sh = HA_BUF_INIT, sts = HA_BUF_INIT;
	int rc = ha_sigv4_canonical_request(r, &canon, &sh, e);
	if (rc == 0) {
		ha_sigv4_string_to_sign(&sts, amz_date, c->region, c->service, canon.data,
		                        canon.len);
		uint8_t key[32], sig[32];
		char sig_hex[65];
		if (ha_sigv4_signing_key(c->secret_key, amz_date, c->region, c->service, key))
			rc = ha_err_set(e, HA_ENOMEM, "out of memory");
		hmac(key, sizeof(key), ha_buf_cstr(&sts), sts.len, sig);
		hex(sig, sizeof(sig), sig_hex);
		ha_wipe(key, sizeof(key));
		ha_buf_printf(out,
		              "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request,"
		              "SignedHeaders=%s,Signature=%s",
		              c->access_key, amz_date, c->region, c->service, ha_buf_cstr(&sh),
		              sig_hex);
		if (rc == 0 && (ha_buf_failed(&sts) || ha_buf_failed(out)))
			rc = ha_err_set(e, HA_ENOMEM, "out of memory");
	}
	ha_buf_free(&canon);
	ha_buf_free(&sh);
	ha_buf_free(&sts);
	return rc;
}

void ha_sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		out[0] = '\0'; /* past year 9999: refused by ha_sigv4_authorization */
}
