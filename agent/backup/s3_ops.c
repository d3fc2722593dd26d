/* The S3 operations (s3.h), each one request (or a page of them) through ha_s3_perform. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3_int.h"

int ha_s3_put(struct ha_s3 *s, const char *key, const void *data, size_t len, struct ha_err *e)
{
	struct ha_s3_req r = {
	    .method = "PUT", .key = key, .body = data, .body_len = len, .object_headers = true};
	return ha_s3_perform(s, &r, e);
}

int ha_s3_get(struct ha_s3 *s, const char *key, void *buf, size_t cap, size_t *len,
              struct ha_err *e)
{
	struct ha_s3_req r = {.method = "GET", .key = key, .buf = buf, .cap = cap};
	*len = 0;
	int rc = ha_s3_perform(s, &r, e);
	if (rc == 0)
		*len = r.got;
	return rc;
}

int ha_s3_get_alloc(struct ha_s3 *s, const char *key, size_t max, char **data, size_t *len,
                    struct ha_err *e)
{
	struct ha_buf b = HA_BUF_INIT;
	struct ha_s3_req r = {.method = "GET", .key = key, .grow = &b, .max = max};
	*data = NULL;
	*len = 0;
	int rc = ha_s3_perform(s, &r, e);
	if (rc == 0) {
		ha_buf_append(&b, "", 0); /* an empty object still gets its NUL */
		if (ha_buf_failed(&b))
			rc = ha_err_set(e, HA_ENOMEM, "out of memory");
	}
	if (rc != 0) {
		ha_buf_free(&b);
		return rc;
	}
	*data = b.data;
	*len = b.len;
	return 0;
}

int ha_s3_head(struct ha_s3 *s, const char *key, bool *exists, uint64_t *size, struct ha_err *e)
{
	struct ha_s3_req r = {.method = "HEAD", .key = key, .ok_404 = true};
	*exists = false;
	int rc = ha_s3_perform(s, &r, e);
	if (rc == 0) {
		*exists = r.status != 404;
		if (size)
			*size = *exists ? r.content_length : 0;
	}
	return rc;
}

int ha_s3_delete(struct ha_s3 *s, const char *key, struct ha_err *e)
{
	struct ha_s3_req r = {.method = "DELETE", .key = key};
	return ha_s3_perform(s, &r, e);
}

static void xml_escaped(struct ha_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			ha_buf_puts(b, "&amp;");
			break;
		case '<':
			ha_buf_puts(b, "&lt;");
			break;
		case '>':
			ha_buf_puts(b, "&gt;");
			break;
		case '"':
			ha_buf_puts(b, "&quot;");
			break;
		case '\'':
			ha_buf_puts(b, "&apos;");
			break;
		default:
			ha_buf_append(b, s, 1);
		}
	}
}

/* Content-MD5 (base64): DeleteObjects requires it. */
static int md5_b64(const void *data, size_t len, char out[32])
{
	unsigned char d[16];
	unsigned n = 0;
	if (EVP_Digest(data, len, d, &n, EVP_md5(), NULL) != 1 || n != 16)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, d, 16);
	return 0;
}

int ha_s3_delete_many(struct ha_s3 *s, char *const *keys, size_t n, size_t *n_failed,
                      struct ha_err *e)
{
	*n_failed = 0;
	if (n == 0)
		return 0;
	if (n > 1000)
		return ha_err_set(e, HA_EINVAL, "DeleteObjects: %zu keys (1000 at most)", n);
	struct ha_buf body = HA_BUF_INIT, answer = HA_BUF_INIT;
	ha_buf_puts(&body,
	            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Delete><Quiet>true</Quiet>");
	for (size_t i = 0; i < n; i++) {
		ha_buf_puts(&body, "<Object><Key>");
		xml_escaped(&body, keys[i]);
		ha_buf_puts(&body, "</Key></Object>");
	}
	ha_buf_puts(&body, "</Delete>");
	char md5[32];
	if (ha_buf_failed(&body) || md5_b64(body.data, body.len, md5)) {
		ha_buf_free(&body);
		return ha_err_set(e, HA_ENOMEM, "DeleteObjects: cannot make the request body");
	}
	struct ha_sigv4_pair q[] = {{"delete", ""}};
	struct ha_s3_req r = {.method = "POST",
	                      .shown = "?delete",
	                      .query = q,
	                      .n_query = 1,
	                      .body = body.data,
	                      .body_len = body.len,
	                      .content_md5 = md5,
	                      .grow = &answer,
	                      .max = HA_S3_LIST_MAX};
	int rc = ha_s3_perform(s, &r, e);
	ha_buf_free(&body);
	struct ha_s3_error first;
	if (rc == 0 && ha_s3_xml_delete_result(answer.data ? answer.data : "", answer.len, n_failed,
	                                       &first) != 0)
		rc = ha_err_set(e, HA_EPROTO, "DeleteObjects: the answer is not a DeleteResult");
	else if (rc == 0 && *n_failed)
		ha_err_set(e, HA_EIO, "%zu of %zu objects not deleted; the first, %s: %s%s%s",
		           *n_failed, n, first.key, first.code, first.message[0] ? ": " : "",
		           first.message);
	ha_buf_free(&answer);
	return rc;
}

int ha_s3_list_page(struct ha_s3 *s, const char *prefix, const char *delimiter, const char *token,
                    unsigned max_keys, struct ha_s3_list_page *page, struct ha_err *e)
{
	char mk[16];
	snprintf(mk, sizeof(mk), "%u", max_keys < 1 ? 1 : max_keys > 1000 ? 1000 : max_keys);
	struct ha_sigv4_pair q[5] = {{"list-type", "2"}, {"max-keys", mk}, {"prefix", prefix}};
	size_t n = 3;
	if (delimiter && delimiter[0])
		q[n++] = (struct ha_sigv4_pair){"delimiter", delimiter};
	if (token)
		q[n++] = (struct ha_sigv4_pair){"continuation-token", token};
	struct ha_buf body = HA_BUF_INIT;
	char shown[HA_S3_KEY_MAX + 2];
	snprintf(shown, sizeof(shown), "%s*", prefix);
	struct ha_s3_req r = {.method = "GET",
	                      .shown = shown,
	                      .query = q,
	                      .n_query = n,
	                      .grow = &body,
	                      .max = HA_S3_LIST_MAX};
	memset(page, 0, sizeof(*page));
	int rc = ha_s3_perform(s, &r, e);
	if (rc == 0) {
		rc = ha_s3_xml_list(body.data ? body.data : "", body.len, page, e);
		if (rc)
			ha_err_wrap(e, "GET s3://%s/%s*", s->conf.bucket, prefix);
	}
	ha_buf_free(&body);
	return rc;
}

/* Page after page; a server that repeats its token would list forever: stopped. */
int ha_s3_list(struct ha_s3 *s, const char *prefix, const char *delimiter, ha_s3_list_fn fn,
               void *arg, struct ha_err *e)
{
	char *token = NULL;
	struct ha_s3_list_cursor cur = HA_S3_LIST_CURSOR_INIT;
	int rc = 0;
	for (unsigned pages = 0; rc == 0; pages++) {
		struct ha_s3_list_page p;
		rc = ha_s3_list_page(s, prefix, delimiter, token, 1000, &p, e);
		if (rc)
			break;
		if ((rc = ha_s3_list_forward(&cur, &p, e)) != 0) {
			ha_err_wrap(e, "list s3://%s/%s", s->conf.bucket, prefix);
			ha_s3_list_page_free(&p);
			break;
		}
		for (size_t i = 0; rc == 0 && i < p.n_objs; i++)
			rc = fn(arg, p.objs[i].key, p.objs[i].size, false);
		for (size_t i = 0; rc == 0 && i < p.n_prefixes; i++)
			rc = fn(arg, p.prefixes[i], 0, true);
		bool more = rc == 0 && p.truncated;
		if (more && token && strcmp(token, p.next_token) == 0)
			rc = ha_err_set(e, HA_EPROTO,
			                "list s3://%s/%s: the server repeats its "
			                "continuation token",
			                s->conf.bucket, prefix);
		free(token);
		token = more ? p.next_token : NULL;
		p.next_token = more ? NULL : p.next_token;
		ha_s3_list_page_free(&p);
		if (!more)
			break;
	}
	free(token);
	ha_s3_list_cursor_free(&cur);
	return rc;
}

int ha_s3_create_bucket(struct ha_s3 *s, struct ha_err *e)
{
	char body[256] = "";
	if (strcmp(s->conf.region, "us-east-1") != 0)
		snprintf(body, sizeof(body),
		         "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
		         "</CreateBucketConfiguration>",
		         s->conf.region);
	struct ha_s3_req r = {.method = "PUT", .body = body, .body_len = strlen(body)};
	return ha_s3_perform(s, &r, e);
}

/* ---- the live check ---- */

static int probe_steps(struct ha_s3 *s, const char *key, struct ha_err *e)
{
	const struct ha_s3_conf *c = &s->conf;
	char dir[HA_S3_PREFIX_MAX + 2];
	snprintf(dir, sizeof(dir), "%s%s", c->prefix, c->prefix[0] ? "/" : "");
	struct ha_s3_list_page p;
	int rc = ha_s3_list_page(s, dir, "/", NULL, 1, &p, e);
	if (rc)
		return ha_err_wrap(e, "list the bucket");
	ha_s3_list_page_free(&p);
	char body[160], back[160];
	int n = snprintf(body, sizeof(body), "haagent probe %s %ld\n", key, (long)time(NULL));
	size_t got = 0;
	if ((rc = ha_s3_put(s, key, body, (size_t)n, e)) != 0)
		return ha_err_wrap(e, "write a probe object");
	rc = ha_s3_get(s, key, back, sizeof(back), &got, e);
	if (rc == 0 && (got != (size_t)n || memcmp(body, back, got) != 0))
		rc = ha_err_set(e, HA_EIO, "GET s3://%s/%s: not what was written", c->bucket, key);
	int drc = ha_s3_delete(s, key, rc ? NULL : e);
	if (rc)
		return ha_err_wrap(e, "read the probe object back");
	return drc ? ha_err_wrap(e, "delete the probe object") : 0;
}

int ha_s3_probe(const struct ha_s3_conf *c, struct ha_err *e)
{
	struct ha_s3_conf *pc = malloc(sizeof(*pc));
	if (pc == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	*pc = *c;
	if (pc->retries > 1)
		pc->retries = 1; /* say a wrong endpoint quickly */
	struct ha_s3 *s = NULL;
	int rc = ha_s3_open(pc, &s, e);
	free(pc);
	if (rc)
		return rc;
	char host[64] = "host", key[HA_S3_PREFIX_MAX + 160];
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, "./ ")] = '\0';
	snprintf(key, sizeof(key), "%s%s.probe/%s-%ld-%ld", c->prefix, c->prefix[0] ? "/" : "",
	         host[0] ? host : "host", (long)getpid(), (long)time(NULL));
	rc = probe_steps(s, key, e);
	ha_s3_close(s);
	return rc;
}
