/* A small blocking S3 client over libcurl, for the S3 store (store_s3.c), `haadm config check`
 * (ha_s3_probe) and tests/s3tool.
 *
 * What it does: PUT (one request per object: no multipart), GET into a bounded buffer, HEAD,
 * DELETE, DeleteObjects, ListObjectsV2; path-style or virtual-host-style URLs; http:// and
 * https:// (ca_file); requests signed with SigV4 (sigv4.h), the payload hash always sent.
 * What it does not: create buckets (the bucket must exist; ha_s3_create_bucket is s3tool's).
 *
 * Every request is bounded (connect_timeout_ms, timeout_ms) and retried, with exponential
 * backoff and jitter, on what passes: HTTP 5xx, 429, SlowDown, RequestTimeout, a timeout, a
 * refused or reset connection; at most `retries` times more. Nothing else is retried. So an
 * operation takes at most (retries + 1) x timeout_ms plus the backoff (at most 5 s a wait,
 * see s3.c) before it fails. Errors (struct ha_err) say what to do: wrong credentials
 * (naming the credentials file), a missing bucket, a skewed clock (by how much), a refusal,
 * an unreachable endpoint; see docs/backup.md#s3-repositories.
 *
 * Threads: a client (struct ha_s3) may be used by any number of threads at once: each request
 * takes a curl handle from the client's pool (under a mutex) and gives it back, so
 * connections are reused and never shared by two requests. The secret key lives in the
 * client, wiped when it is closed, and is never logged. */
#ifndef HA_BACKUP_S3_H
#define HA_BACKUP_S3_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "s3_xml.h"

#define HA_S3_ENDPOINT_MAX 256
#define HA_S3_PREFIX_MAX   256
#define HA_S3_KMS_KEY_MAX  2048

/* A [repository NAME] section with type = s3. Every string is bounded and checked where it
 * enters (ha_s3_conf_set): a value that does not fit is refused, never cut. */
struct ha_s3_conf {
	char endpoint[HA_S3_ENDPOINT_MAX]; /* "http(s)://host[:port]", no path, no final '/' */
	char region[64];                   /* "us-east-1" */
	char bucket[64];
	char prefix[HA_S3_PREFIX_MAX];   /* "" or "a/b": no '/' at either end, no empty segment */
	bool virtual_host;               /* url_style = virtual: https://BUCKET.host/KEY */
	char credentials_file[PATH_MAX]; /* "": AWS_ACCESS_KEY_ID, ... from the environment */
	char sse[16];                    /* "" (none), "AES256" or "aws:kms" */
	char sse_kms_key_id[HA_S3_KMS_KEY_MAX];
	char storage_class[64];      /* "": the bucket's default */
	char ca_file[PATH_MAX];      /* "": the system's CAs */
	unsigned timeout_ms;         /* 30000: a whole request */
	unsigned connect_timeout_ms; /* 5000 */
	unsigned retries;            /* 5 */
	/* Test hook: seconds added to the clock requests are signed with (tests/s3tool sets it
	 * from HA_S3_CLOCK_SKEW_S to show the skewed-clock error). No configuration key sets it. */
	long clock_skew_s;
	/* Test hook: "HOST:PORT:ADDR:PORT" (curl's CURLOPT_CONNECT_TO: connections go to ADDR:PORT
	 * whatever the URL's host; "::127.0.0.1:7480" for every host), so that virtual-host URLs
	 * can be tried on loopback without DNS (s3tool: HA_S3_CONNECT_TO). "" otherwise. */
	char connect_to[HA_S3_ENDPOINT_MAX];
};

/* The defaults above, every string empty. */
void ha_s3_conf_init(struct ha_s3_conf *c);

/* One key of the section (endpoint, region, bucket, prefix, url_style, credentials_file, sse,
 * sse_kms_key_id, storage_class, ca_file, timeout_ms, connect_timeout_ms, retries). An unknown
 * key, a malformed or too long value: HA_ECONFIG, e naming the key and the rule. */
int ha_s3_conf_set(struct ha_s3_conf *c, const char *key, const char *value, struct ha_err *e);

/* Offline: required keys present (endpoint, bucket), the combination makes sense (aws:kms for
 * sse_kms_key_id, a virtual-host style bucket name without dots over https), the credentials
 * load (file mode and owner by the secret-file rule, secret.h). 0 or HA_ECONFIG. */
int ha_s3_conf_check(const struct ha_s3_conf *c, struct ha_err *e);

/* Credentials, from credentials_file (lines "access_key = ...", "secret_key = ...", optional
 * "session_token = ...", '#' comments) or the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). Wipe them with ha_s3_creds_wipe. */
struct ha_s3_creds {
	char access_key[129];
	char secret_key[129];
	char session_token[4097];
	char source[PATH_MAX + 32]; /* where they came from, for messages: the file's path */
};
int ha_s3_creds_load(const struct ha_s3_conf *c, struct ha_s3_creds *out, struct ha_err *e);
void ha_s3_creds_wipe(struct ha_s3_creds *c);

struct ha_s3;

/* A client for c's endpoint and bucket (c is copied). The credentials are loaded now; no
 * request is made. 0, HA_ECONFIG or HA_ENOMEM. */
int ha_s3_open(const struct ha_s3_conf *c, struct ha_s3 **out, struct ha_err *e);
/* Closes the pooled connections and wipes the secret. No request may be under way. */
void ha_s3_close(struct ha_s3 *s);

/* Keys below are the object's whole key in the bucket (the configured prefix is the caller's
 * to add), 1 to HA_S3_KEY_MAX bytes. */

/* One PUT of len bytes, with the configured sse and storage_class. */
int ha_s3_put(struct ha_s3 *s, const char *key, const void *data, size_t len, struct ha_err *e);

/* The object into buf. One larger than cap is HA_EPROTO ("larger than expected": damage);
 * one that does not exist HA_EIO ("no such object"). */
int ha_s3_get(struct ha_s3 *s, const char *key, void *buf, size_t cap, size_t *len,
              struct ha_err *e);
/* The same into *data, malloc'd (NUL-terminated, free it), at most max bytes. */
int ha_s3_get_alloc(struct ha_s3 *s, const char *key, size_t max, char **data, size_t *len,
                    struct ha_err *e);

/* *exists, and *size when it does (size may be NULL). A HEAD answer has no body: a 403 says
 * only "refused". */
int ha_s3_head(struct ha_s3 *s, const char *key, bool *exists, uint64_t *size, struct ha_err *e);

/* Deleting what does not exist succeeds (S3's rule). */
int ha_s3_delete(struct ha_s3 *s, const char *key, struct ha_err *e);

/* DeleteObjects: up to 1000 keys in one request. *n_failed: how many the server refused
 * (e says why for the first, e.g. Object Lock); 0 when the request itself succeeded. */
int ha_s3_delete_many(struct ha_s3 *s, char *const *keys, size_t n, size_t *n_failed,
                      struct ha_err *e);

/* Every key under prefix (and, with a delimiter, every common prefix: is_prefix), page after
 * page of ListObjectsV2, in the server's order (UTF-8 byte order). fn returning nonzero stops
 * the listing and is returned. delimiter may be NULL. */
typedef int (*ha_s3_list_fn)(void *arg, const char *key, uint64_t size, bool is_prefix);
int ha_s3_list(struct ha_s3 *s, const char *prefix, const char *delimiter, ha_s3_list_fn fn,
               void *arg, struct ha_err *e);
/* One page: max_keys 1 to 1000, token NULL for the first. */
int ha_s3_list_page(struct ha_s3 *s, const char *prefix, const char *delimiter, const char *token,
                    unsigned max_keys, struct ha_s3_list_page *page, struct ha_err *e);

/* PUT on the bucket: for tests/s3tool (haagent itself never creates a bucket). */
int ha_s3_create_bucket(struct ha_s3 *s, struct ha_err *e);

/* Live check for `haadm config check`: a signed ListObjectsV2 (max-keys=1) on the bucket and
 * prefix, then PUT, GET (compared) and DELETE of a small object PREFIX/.probe/HOST-PID-TIME.
 * At most one retry per request, so a wrong endpoint is said quickly. 0, or the error a
 * backup would meet, saying what to do. */
int ha_s3_probe(const struct ha_s3_conf *c, struct ha_err *e);

struct ha_s3_stats {
	uint64_t requests; /* attempts sent, retries included */
	uint64_t retries;
	uint64_t bytes_up, bytes_down; /* bodies */
};
void ha_s3_get_stats(struct ha_s3 *s, struct ha_s3_stats *out);

#endif
