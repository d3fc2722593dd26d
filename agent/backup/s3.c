/* The S3 client's core: the curl handles, one request signed and sent, retried with backoff,
 * and the error an operator reads when it fails (s3.h). The operations are in s3_ops.c. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/secret.h"
#include "s3_int.h"

#define BACKOFF_FIRST_MS 200  /* the first wait; doubled each retry */
#define BACKOFF_MAX_MS   5000 /* no wait longer */

/* ---- the library, once per process ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

/* curl_global_init is not thread-safe itself (before 7.84) and must run before any handle:
 * once, whichever thread opens the first client. Never cleaned up (the process's lifetime). */
static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- opening ---- */

/* The Host header and the URL's base: path style keeps the endpoint's host and puts the
 * bucket first in the path; virtual style puts the bucket before the host. */
static int make_base(struct ha_s3 *s, struct ha_err *e)
{
	const struct ha_s3_conf *c = &s->conf;
	const char *sep = strstr(c->endpoint, "://");
	size_t scheme = (size_t)(sep - c->endpoint) + 3;
	int n1, n2, n3;
	if (c->virtual_host) {
		n1 = snprintf(s->host, sizeof(s->host), "%s.%s", c->bucket, c->endpoint + scheme);
		n2 =
		    snprintf(s->base, sizeof(s->base), "%.*s%s", (int)scheme, c->endpoint, s->host);
		n3 = snprintf(s->bucket_path, sizeof(s->bucket_path), "%s", "");
	} else {
		n1 = snprintf(s->host, sizeof(s->host), "%s", c->endpoint + scheme);
		n2 = snprintf(s->base, sizeof(s->base), "%s", c->endpoint);
		n3 = snprintf(s->bucket_path, sizeof(s->bucket_path), "/%s", c->bucket);
	}
	if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n1 >= sizeof(s->host) ||
	    (size_t)n2 >= sizeof(s->base) || (size_t)n3 >= sizeof(s->bucket_path))
		return ha_err_set(e, HA_ECONFIG, "endpoint and bucket: too long together");
	return 0;
}

/* What tells a credentials file's new contents from its old: where it is, its size and times. */
static struct ha_s3_file_id file_id(const struct stat *sb)
{
	return (struct ha_s3_file_id){true,        sb->st_dev,  sb->st_ino,
	                              sb->st_size, sb->st_mtim, sb->st_ctim};
}

static bool same_file(const struct ha_s3_file_id *f, const struct stat *sb)
{
	struct ha_s3_file_id now = file_id(sb);
	return f->known && f->dev == now.dev && f->ino == now.ino && f->size == now.size &&
	       f->mtime.tv_sec == now.mtime.tv_sec && f->mtime.tv_nsec == now.mtime.tv_nsec &&
	       f->ctime.tv_sec == now.ctime.tv_sec && f->ctime.tv_nsec == now.ctime.tv_nsec;
}

int ha_s3_open(const struct ha_s3_conf *c, struct ha_s3 **out, struct ha_err *e)
{
	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return ha_err_set(e, HA_EINTERNAL, "libcurl: %s", curl_easy_strerror(global_rc));
	if (!c->endpoint[0] || !c->bucket[0] || !strstr(c->endpoint, "://"))
		return ha_err_set(e, HA_ECONFIG, "S3: endpoint and bucket are required");
	struct ha_s3 *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	s->conf = *c;
	struct stat sb;
	bool known = c->credentials_file[0] && stat(c->credentials_file, &sb) == 0;
	int rc = make_base(s, e);
	if (rc == 0)
		rc = ha_s3_creds_load(c, &s->creds, e);
	if (rc == 0 && known)
		s->creds_file = file_id(&sb);
	if (rc != 0) {
		ha_s3_creds_wipe(&s->creds);
		free(s);
		return rc;
	}
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return 0;
}

void ha_s3_close(struct ha_s3 *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_idle; i++)
		curl_easy_cleanup(s->idle[i]);
	pthread_mutex_destroy(&s->mu);
	ha_s3_creds_wipe(&s->creds);
	ha_wipe(s, sizeof(*s));
	free(s);
}

/* The credentials a request is signed with, into out: the credentials file read again when it
 * changed since it was last read (a rotated key, a renewed session token take effect without a
 * restart). A file that no longer loads leaves the last good credentials in use (logged). */
static void creds_now(struct ha_s3 *s, struct ha_s3_creds *out)
{
	const char *path = s->conf.credentials_file;
	struct stat sb;
	if (path[0] && stat(path, &sb) == 0) {
		pthread_mutex_lock(&s->mu);
		bool changed = !same_file(&s->creds_file, &sb);
		if (changed) /* recorded first: one reader per change, even a failed one */
			s->creds_file = file_id(&sb);
		pthread_mutex_unlock(&s->mu);
		struct ha_err e = {0};
		if (changed && ha_s3_creds_load(&s->conf, out, &e) == 0) {
			pthread_mutex_lock(&s->mu);
			s->creds = *out;
			pthread_mutex_unlock(&s->mu);
			ha_info("s3-credentials-read", "file=%s access_key=%s", path,
			        out->access_key);
		} else if (changed) {
			ha_warn("s3-credentials-read-failed",
			        "file=%s error=\"%s\" using=\"the credentials read before\"", path,
			        e.msg);
		}
	}
	pthread_mutex_lock(&s->mu);
	*out = s->creds;
	pthread_mutex_unlock(&s->mu);
}

void ha_s3_get_stats(struct ha_s3 *s, struct ha_s3_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	pthread_mutex_unlock(&s->mu);
}

void ha_s3_where(const struct ha_s3 *s, const char *key, char *out, size_t size)
{
	snprintf(out, size, "s3://%s/%.300s", s->conf.bucket, key ? key : "");
}

/* A handle from the pool, or a new one: a handle is used by one request at a time. */
static CURL *take(struct ha_s3 *s)
{
	CURL *h = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->n_idle)
		h = s->idle[--s->n_idle];
	pthread_mutex_unlock(&s->mu);
	return h ? h : curl_easy_init();
}

static void give_back(struct ha_s3 *s, CURL *h)
{
	pthread_mutex_lock(&s->mu);
	if (s->n_idle < HA_S3_POOL_MAX) {
		s->idle[s->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- one attempt ---- */

struct attempt {
	struct ha_s3_req *r;
	const struct ha_s3_creds *cr; /* what this attempt is signed with */
	CURL *h;
	size_t sent;           /* of the body */
	bool too_big;          /* the answer outgrew where it goes */
	struct ha_buf errbody; /* a non-2xx answer's body, HA_S3_ERR_BODY_MAX at most */
	char date[64];         /* the answer's Date header */
	char amz_date[17];     /* when the request was signed */
	CURLcode cc;
	long os_errno;
	bool connected;
	char curl_err[CURL_ERROR_SIZE];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct attempt *a = arg;
	struct ha_s3_req *r = a->r;
	size_t len = size * n;
	long status = 0;
	curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		size_t room = HA_S3_ERR_BODY_MAX - a->errbody.len;
		ha_buf_append(&a->errbody, p, len < room ? len : room);
		return len;
	}
	if (r->buf) {
		if (len > r->cap - r->got) {
			a->too_big = true;
			return 0; /* stops the transfer: CURLE_WRITE_ERROR */
		}
		memcpy(r->buf + r->got, p, len);
	} else if (r->grow) {
		if (len > r->max - r->grow->len) {
			a->too_big = true;
			return 0;
		}
		ha_buf_append(r->grow, p, len);
		if (ha_buf_failed(r->grow))
			return 0;
	}
	r->got += len;
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct attempt *a = arg;
	size_t len = size * n;
	if (len > 5 && len < sizeof(a->date) + 5 && strncasecmp(p, "date:", 5) == 0) {
		size_t k = len - 5;
		while (k && (p[5 + k - 1] == '\r' || p[5 + k - 1] == '\n'))
			k--;
		size_t skip = strspn(p + 5, " \t");
		if (skip > k)
			skip = k;
		memcpy(a->date, p + 5 + skip, k - skip);
		a->date[k - skip] = '\0';
	}
	return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
	struct attempt *a = arg;
	size_t left = a->r->body_len - a->sent, len = size * n;
	if (len > left)
		len = left;
	memcpy(p, (const char *)a->r->body + a->sent, len);
	a->sent += len;
	return len;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct attempt *a = arg;
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > a->r->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	a->sent = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* The headers sent, all of them signed but Authorization and Expect (an empty Expect keeps
 * curl from waiting for "100 Continue" before a body). */
static int headers(struct ha_s3 *s, struct attempt *a, const char *payload_hash,
                   struct curl_slist **list, struct ha_err *e)
{
	const struct ha_s3_req *r = a->r;
	const struct ha_s3_conf *c = &s->conf;
	struct ha_sigv4_pair h[9];
	size_t n = 0;
	h[n++] = (struct ha_sigv4_pair){"Host", s->host};
	h[n++] = (struct ha_sigv4_pair){"x-amz-date", a->amz_date};
	h[n++] = (struct ha_sigv4_pair){"x-amz-content-sha256", payload_hash};
	if (a->cr->session_token[0])
		h[n++] = (struct ha_sigv4_pair){"x-amz-security-token", a->cr->session_token};
	if (r->object_headers && c->sse[0])
		h[n++] = (struct ha_sigv4_pair){"x-amz-server-side-encryption", c->sse};
	if (r->object_headers && c->sse_kms_key_id[0])
		h[n++] = (struct ha_sigv4_pair){"x-amz-server-side-encryption-aws-kms-key-id",
		                                c->sse_kms_key_id};
	if (r->object_headers && c->storage_class[0])
		h[n++] = (struct ha_sigv4_pair){"x-amz-storage-class", c->storage_class};
	if (r->content_md5) {
		h[n++] = (struct ha_sigv4_pair){"Content-MD5", r->content_md5};
		h[n++] = (struct ha_sigv4_pair){"Content-Type", "application/xml"};
	}
	char path[HA_S3_KEY_MAX + 80];
	snprintf(path, sizeof(path), "%s/%s", s->bucket_path, r->key ? r->key : "");
	struct ha_sigv4_request sr = {r->method, path, r->query, r->n_query, h, n, payload_hash};
	struct ha_sigv4_creds cr = {a->cr->access_key, a->cr->secret_key, c->region, "s3"};
	struct ha_buf auth = HA_BUF_INIT, line = HA_BUF_INIT;
	ha_buf_puts(&auth, "Authorization: ");
	int rc = ha_sigv4_authorization(&sr, &cr, a->amz_date, &auth, e);
	struct curl_slist *l = rc ? NULL : curl_slist_append(NULL, ha_buf_cstr(&auth));
	for (size_t i = 0; l && i < n; i++) {
		ha_buf_reset(&line);
		ha_buf_printf(&line, "%s: %s", h[i].name, h[i].value);
		struct curl_slist *more =
		    ha_buf_failed(&line) ? NULL : curl_slist_append(l, line.data);
		if (more == NULL)
			curl_slist_free_all(l); /* curl_slist_append leaves the list as it was */
		l = more;
	}
	struct curl_slist *more = l ? curl_slist_append(l, "Expect:") : NULL;
	if (more == NULL && l)
		curl_slist_free_all(l);
	ha_buf_free(&auth);
	ha_buf_free(&line);
	if (rc == 0 && more == NULL)
		rc = ha_err_set(e, HA_ENOMEM, "out of memory");
	*list = more;
	return rc;
}

/* scheme://host/bucket/KEY?QUERY, encoded as it was signed */
static int url(struct ha_s3 *s, const struct ha_s3_req *r, struct ha_buf *out)
{
	char path[HA_S3_KEY_MAX + 80];
	snprintf(path, sizeof(path), "%s/%s", s->bucket_path, r->key ? r->key : "");
	ha_buf_puts(out, s->base);
	ha_sigv4_canonical_uri(out, path);
	if (r->n_query) {
		ha_buf_puts(out, "?");
		ha_sigv4_canonical_query(out, r->query, r->n_query);
	}
	return ha_buf_failed(out) ? HA_ENOMEM : 0;
}

static void set_method(CURL *h, struct attempt *a)
{
	const struct ha_s3_req *r = a->r;
	if (!strcmp(r->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(r->method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, a);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, a);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
	} else if (!strcmp(r->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	}
}

/* One request on the wire. Fills a (curl's verdict, status, bodies); 0 unless it could not be
 * prepared (no memory, a signature that cannot be made). */
static int attempt_once(struct ha_s3 *s, struct attempt *a, const char *payload_hash,
                        struct ha_err *e)
{
	struct ha_s3_req *r = a->r;
	ha_sigv4_amz_date(time(NULL) + s->conf.clock_skew_s, a->amz_date);
	struct curl_slist *hl = NULL;
	struct ha_buf u = HA_BUF_INIT;
	int rc = url(s, r, &u) ? ha_err_set(e, HA_ENOMEM, "out of memory")
	                       : headers(s, a, payload_hash, &hl, e);
	struct curl_slist *to = NULL;
	if (rc == 0 && s->conf.connect_to[0] &&
	    (to = curl_slist_append(NULL, s->conf.connect_to)) == NULL)
		rc = ha_err_set(e, HA_ENOMEM, "out of memory");
	CURL *h = rc ? NULL : take(s);
	if (rc == 0 && h == NULL)
		rc = ha_err_set(e, HA_ENOMEM, "out of memory (curl handle)");
	if (rc == 0) {
		a->h = h;
		curl_easy_reset(h); /* keeps the connection, DNS and TLS session caches */
		curl_easy_setopt(h, CURLOPT_URL, u.data);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
		/* threads: no SIGALRM for DNS timeouts */
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L); /* send keys as signed, "." or not */
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s->conf.timeout_ms);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->conf.connect_timeout_ms);
		curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
		if (to)
			curl_easy_setopt(h, CURLOPT_CONNECT_TO, to);
#if LIBCURL_VERSION_NUM >= 0x075500
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
		if (s->conf.ca_file[0])
			curl_easy_setopt(h, CURLOPT_CAINFO, s->conf.ca_file);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, a->curl_err);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
		set_method(h, a);
		a->cc = curl_easy_perform(h);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &a->os_errno);
		curl_off_t cl = -1, pre = 0;
		curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		/* set once a connection (new or reused) was ready for the request */
		curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pre);
		r->content_length = cl > 0 ? (uint64_t)cl : 0;
		a->connected = pre > 0 || r->status > 0;
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
		give_back(s, h);
		a->h = NULL;
	}
	for (struct curl_slist *l = hl; l; l = l->next) /* a session token is a credential */
		ha_wipe(l->data, strlen(l->data));
	curl_slist_free_all(hl);
	curl_slist_free_all(to);
	ha_buf_free(&u);
	return rc;
}

/* ---- what passes, and what an operator is told ---- */

static bool transient_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT: /* a gateway restarting; a wrong endpoint costs the retries */
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool transient(const struct attempt *a, const struct ha_s3_error *er)
{
	if (a->cc != CURLE_OK)
		return !a->too_big && transient_curl(a->cc);
	long st = a->r->status;
	return st >= 500 || st == 429 || !strcmp(er->code, "SlowDown") ||
	       !strcmp(er->code, "RequestTimeout") || !strcmp(er->code, "BadDigest") ||
	       !strcmp(er->code, "XAmzContentSHA256Mismatch");
}

static time_t parse_time(const char *s)
{
	static const char *formats[] = {"%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%S",
	                                "%a, %d %b %Y %H:%M:%S GMT"};
	for (size_t i = 0; s && s[0] && i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		if (strptime(s, formats[i], &tm) != NULL)
			return timegm(&tm);
	}
	return (time_t)-1;
}

/* "this host's clock is 3600 s behind the server's": from the server's time in the error
 * body, else its Date header, against the time the request was signed with. */
static void skew_text(const struct attempt *a, const struct ha_s3_error *er, char *out, size_t size)
{
	time_t mine = parse_time(a->amz_date);
	time_t theirs = parse_time(er->server_time[0] ? er->server_time : a->date);
	if (mine == (time_t)-1 || theirs == (time_t)-1) {
		snprintf(out, size, "this host's clock is off from the server's");
		return;
	}
	long long d = (long long)mine - (long long)theirs;
	snprintf(out, size,
	         "this host's clock is %lld s %s the server's (it signed %s, the "
	         "server's time was %s)",
	         d < 0 ? -d : d, d < 0 ? "behind" : "ahead of", a->amz_date,
	         er->server_time[0] ? er->server_time : a->date);
}

/* An S3 error code the operator can act on: the message says what to do. */
static int explain_code(struct ha_s3 *s, const struct attempt *a, const struct ha_s3_error *er,
                        struct ha_err *e)
{
	const char *code = er->code, *cred = a->cr->source;
	char text[600];
	if (!strcmp(code, "InvalidAccessKeyId"))
		return ha_err_set(e, HA_ECONFIG,
		                  "the server knows no access key %s (InvalidAccessKeyId): wrong "
		                  "credentials; HINT: check access_key in %s",
		                  a->cr->access_key, cred);
	if (!strcmp(code, "SignatureDoesNotMatch"))
		return ha_err_set(e, HA_ECONFIG,
		                  "the signature does not match (SignatureDoesNotMatch): wrong "
		                  "credentials, the secret key is not access key %s's; HINT: check "
		                  "secret_key in %s (a proxy that rewrites requests does this too)",
		                  a->cr->access_key, cred);
	if (!strcmp(code, "InvalidToken") || !strcmp(code, "ExpiredToken"))
		return ha_err_set(
		    e, HA_ECONFIG,
		    "the session token is refused (%s): expired or wrong credentials; "
		    "HINT: renew session_token in %s",
		    code, cred);
	if (!strcmp(code, "NoSuchBucket"))
		return ha_err_set(
		    e, HA_ECONFIG,
		    "bucket '%s' does not exist at %s (NoSuchBucket); HINT: create the "
		    "bucket (haagent never creates one) or fix bucket = in the "
		    "repository's section",
		    s->conf.bucket, s->conf.endpoint);
	if (!strcmp(code, "RequestTimeTooSkewed")) {
		skew_text(a, er, text, sizeof(text));
		return ha_err_set(
		    e, HA_ECONFIG,
		    "the clock is off (RequestTimeTooSkewed): %s; S3 refuses requests "
		    "more than 15 minutes off; HINT: synchronise the clock with NTP "
		    "(chrony or systemd-timesyncd; timedatectl status)",
		    text);
	}
	if (!strcmp(code, "AccessDenied") || !strcmp(code, "AllAccessDisabled"))
		return ha_err_set(
		    e, HA_EPERM,
		    "access denied (%s%s%s); HINT: the credentials in %s need "
		    "s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on "
		    "the bucket and prefix (a bucket policy, Object Lock or a KMS key "
		    "policy can refuse too)",
		    code, er->message[0] ? ": " : "", er->message, cred);
	if (!strcmp(code, "AuthorizationHeaderMalformed") && er->region[0])
		return ha_err_set(e, HA_ECONFIG,
		                  "the bucket is in region %s, not %s (%s); HINT: region = %s",
		                  er->region, s->conf.region, code, er->region);
	if (!strcmp(code, "PermanentRedirect") ||
	    !strcmp(code, "IllegalLocationConstraintException"))
		return ha_err_set(
		    e, HA_ECONFIG,
		    "the bucket is not served at %s (%s%s%s); HINT: set endpoint = and "
		    "region = to the bucket's",
		    s->conf.endpoint, code, er->endpoint[0] ? ": it is at " : "", er->endpoint);
	if (!strncmp(code, "KMS.", 4) || !strcmp(code, "KMS"))
		return ha_err_set(e, HA_ECONFIG,
		                  "the KMS key is refused (%s: %s); HINT: check "
		                  "sse_kms_key_id and the key's policy",
		                  code, er->message);
	if (!strcmp(code, "InvalidStorageClass"))
		return ha_err_set(e, HA_ECONFIG, "storage_class %s is refused (%s)",
		                  s->conf.storage_class, code);
	if (!strcmp(code, "NoSuchKey"))
		return ha_err_set(e, HA_EIO, "no such object (NoSuchKey)");
	return ha_err_set(e, HA_EIO, "HTTP %ld, %s%s%s", a->r->status, code,
	                  er->message[0] ? ": " : "", er->message);
}

static int explain_curl(struct ha_s3 *s, const struct attempt *a, struct ha_err *e)
{
	const char *why = a->curl_err[0] ? a->curl_err : curl_easy_strerror(a->cc);
	switch (a->cc) {
	case CURLE_COULDNT_CONNECT:
		return ha_err_set(
		    e, HA_EIO,
		    "cannot connect to %s (%s): the endpoint is unreachable; HINT: "
		    "check endpoint =, that the S3 server runs and that this host may "
		    "reach it",
		    s->conf.endpoint, a->os_errno ? strerror((int)a->os_errno) : why);
	case CURLE_COULDNT_RESOLVE_HOST:
		return ha_err_set(e, HA_ECONFIG,
		                  "cannot resolve the endpoint's host (%s); HINT: check "
		                  "endpoint =%s",
		                  why,
		                  s->conf.virtual_host ? " (url_style = virtual puts the bucket "
		                                         "before the host: try url_style = path)"
		                                       : "");
	case CURLE_OPERATION_TIMEDOUT:
		return a->connected
		           ? ha_err_set(e, HA_ETIMEOUT,
		                        "no whole answer from %s within timeout_ms = %u (%s)",
		                        s->conf.endpoint, s->conf.timeout_ms, why)
		           : ha_err_set(e, HA_ETIMEOUT,
		                        "cannot connect to %s within connect_timeout_ms = %u: the "
		                        "endpoint is unreachable (%s)",
		                        s->conf.endpoint, s->conf.connect_timeout_ms, why);
	case CURLE_PEER_FAILED_VERIFICATION:
		return ha_err_set(
		    e, HA_ECONFIG,
		    "the server's certificate does not verify (%s); HINT: ca_file = the "
		    "CA that signed it",
		    why);
	case CURLE_SSL_CONNECT_ERROR:
		return ha_err_set(e, HA_EIO,
		                  "TLS with %s failed (%s); HINT: does the endpoint speak "
		                  "https on that port?",
		                  s->conf.endpoint, why);
	default:
		return ha_err_set(e, HA_EIO, "%s: %s", curl_easy_strerror(a->cc), why);
	}
}

static int explain(struct ha_s3 *s, const struct attempt *a, const struct ha_s3_error *er,
                   struct ha_err *e)
{
	if (a->too_big)
		return ha_err_set(e, HA_EPROTO, "larger than expected (more than %zu bytes)",
		                  a->r->buf ? a->r->cap : a->r->max);
	if (a->cc == CURLE_WRITE_ERROR)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	if (a->cc != CURLE_OK)
		return explain_curl(s, a, e);
	if (er->code[0])
		return explain_code(s, a, er, e);
	long st = a->r->status;
	if (st == 403)
		return ha_err_set(e, HA_EPERM,
		                  "refused (HTTP 403, without an explanation%s); HINT: check the "
		                  "credentials in %s and their permissions on the bucket",
		                  strcmp(a->r->method, "HEAD") ? "" : ": a HEAD answer has no body",
		                  a->cr->source);
	if (st == 404)
		return ha_err_set(e, HA_EIO, "no such object (HTTP 404)");
	if (st == 301 || st == 307)
		return ha_err_set(e, HA_ECONFIG,
		                  "redirected (HTTP %ld): the bucket is elsewhere; HINT: check "
		                  "endpoint, region and url_style",
		                  st);
	return ha_err_set(e, HA_EIO, "HTTP %ld without an S3 error%s", st,
	                  a->errbody.len ? " (the body is not S3's: a proxy?)" : "");
}

/* ---- retries ---- */

/* Exponential backoff with jitter: half the doubled wait, plus up to as much at random (so
 * that clients refused together do not come back together). */
static unsigned backoff_ms(unsigned retry)
{
	unsigned d = BACKOFF_FIRST_MS;
	for (unsigned i = 1; i < retry && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	unsigned r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (unsigned)time(NULL) * 2654435761u;
	return d / 2 + r % (d / 2 + 1);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void count(struct ha_s3 *s, const struct attempt *a, bool retry)
{
	pthread_mutex_lock(&s->mu);
	s->stats.requests++;
	s->stats.retries += retry;
	s->stats.bytes_up += a->sent;
	s->stats.bytes_down += a->r->got;
	pthread_mutex_unlock(&s->mu);
}

/* Attempt, judge (transient or not), log, wait, again: at most conf.retries more times. */
int ha_s3_perform(struct ha_s3 *s, struct ha_s3_req *r, struct ha_err *e)
{
	char where[400], payload_hash[65];
	ha_s3_where(s, r->shown ? r->shown : r->key, where, sizeof(where));
	if (r->key && (!r->key[0] || strlen(r->key) > HA_S3_KEY_MAX))
		return ha_err_set(e, HA_EINVAL, "%s %s: a key of 1 to %d bytes is needed",
		                  r->method, where, HA_S3_KEY_MAX);
	ha_sigv4_sha256_hex(r->body ? r->body : "", r->body ? r->body_len : 0, payload_hash);
	struct attempt a;
	struct ha_s3_error er;
	struct ha_s3_creds *cr = malloc(sizeof(*cr));
	if (cr == NULL)
		return ha_err_set(e, HA_ENOMEM, "%s %s: out of memory", r->method, where);
	int rc = 0;
	unsigned tries = 0;
	for (;;) {
		memset(&a, 0, sizeof(a));
		memset(&er, 0, sizeof(er));
		creds_now(s, cr);
		a.r = r;
		a.cr = cr;
		r->status = 0;
		r->got = 0;
		if (r->grow)
			ha_buf_reset(r->grow);
		rc = attempt_once(s, &a, payload_hash, e);
		tries++;
		if (rc == 0 && a.errbody.len)
			ha_s3_xml_error(a.errbody.data, a.errbody.len, &er);
		bool ok =
		    rc == 0 && a.cc == CURLE_OK &&
		    ((r->status >= 200 && r->status <= 299) || (r->ok_404 && r->status == 404));
		bool again = rc == 0 && !ok && transient(&a, &er) && tries <= s->conf.retries;
		count(s, &a, again);
		if (ok || rc != 0 || !again)
			break;
		unsigned wait = backoff_ms(tries);
		ha_warn("s3-retry",
		        "op=%s key=\"%s\" attempt=%u/%u wait_ms=%u status=%ld why=\"%s\"",
		        r->method, where, tries, s->conf.retries + 1, wait, r->status,
		        a.cc != CURLE_OK ? curl_easy_strerror(a.cc)
		        : er.code[0]     ? er.code
		                         : "HTTP");
		ha_buf_free(&a.errbody);
		sleep_ms(wait);
	}
	if (rc == 0 && !(a.cc == CURLE_OK && ((r->status >= 200 && r->status <= 299) ||
	                                      (r->ok_404 && r->status == 404)))) {
		rc = explain(s, &a, &er, e);
		if (tries > 1)
			ha_err_wrap(e, "after %u attempts", tries);
	}
	ha_s3_creds_wipe(cr);
	free(cr);
	ha_buf_free(&a.errbody);
	return rc ? ha_err_wrap(e, "%s %s", r->method, where) : 0;
}
