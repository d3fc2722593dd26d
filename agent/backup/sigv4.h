/* AWS Signature Version 4 for S3 requests: pure functions, no I/O, any thread.
 *
 * Signed by hand rather than with libcurl's CURLOPT_AWS_SIGV4, which (curl 7.88.1, measured)
 * neither adds nor signs x-amz-content-sha256, signs "?uploads" wrongly and encodes
 * "prefix=dir/" otherwise than S3 does. Here the canonical path and query are built once and
 * are also what the client puts on the wire (ha_sigv4_canonical_uri, ha_sigv4_canonical_query),
 * so what is signed is what is sent.
 *
 * Steps (docs.aws.amazon.com, AmazonS3/latest/API/sig-v4-header-based-auth.html):
 *   1. canonical request: METHOD \n URI \n QUERY \n HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
 *   2. string to sign: AWS4-HMAC-SHA256 \n DATE \n SCOPE \n hex(sha256(canonical request))
 *   3. signing key: HMAC chain of "AWS4"+secret over date, region, service, "aws4_request"
 *   4. Authorization: AWS4-HMAC-SHA256 Credential=AK/SCOPE,SignedHeaders=...,Signature=...
 * Strings are byte strings (UTF-8 is encoded byte by byte). */
#ifndef HA_BACKUP_SIGV4_H
#define HA_BACKUP_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/err.h"

/* The hash of an empty payload, sent with every request that has no body. */
#define HA_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct ha_sigv4_pair {
	const char *name;  /* a query key, or a header name (any case) */
	const char *value; /* unencoded; "" for "?uploads" style keys (signed as "uploads=") */
};

struct ha_sigv4_request {
	const char *method; /* "GET", "PUT", ... */
	const char *path;   /* unencoded, starts with '/': "/bucket/dir/key" */
	const struct ha_sigv4_pair *query;
	size_t n_query;
	/* every header to sign, as sent: host and x-amz-date at least; x-amz-content-sha256 is
	 * S3's rule (the client always sends it) */
	const struct ha_sigv4_pair *headers;
	size_t n_headers;
	const char *payload_sha256; /* 64 lowercase hex characters */
};

struct ha_sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *region;  /* "us-east-1" */
	const char *service; /* "s3" */
};

/* S3's URI encoding of a path: every byte but A-Z a-z 0-9 - . _ ~ and '/' as %XX (uppercase
 * hex); each segment is encoded once (S3 does not double-encode). Appended to out. */
void ha_sigv4_canonical_uri(struct ha_buf *out, const char *path);

/* The canonical query string: each key and value URI-encoded ('/' too, as %2F), sorted by
 * key then value, joined as k=v&k=v ("uploads="). Appended to out; also valid on the wire. */
void ha_sigv4_canonical_query(struct ha_buf *out, const struct ha_sigv4_pair *q, size_t n);

/* Step 1. *signed_headers gets "host;x-amz-date;..." (both appended). HA_EINVAL for a header
 * named twice or a name that is not a token; HA_ENOMEM. */
int ha_sigv4_canonical_request(const struct ha_sigv4_request *r, struct ha_buf *out,
                               struct ha_buf *signed_headers, struct ha_err *e);

/* Step 2, from the canonical request's text. amz_date: "20130524T000000Z". */
void ha_sigv4_string_to_sign(struct ha_buf *out, const char *amz_date, const char *region,
                             const char *service, const char *canonical, size_t len);

/* Step 3. date8: "20130524". The caller wipes key when done (ha_wipe). 0 or HA_ENOMEM. */
int ha_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                         const char *service, uint8_t key[32]);

/* Steps 1 to 4: the Authorization header's value, appended to out. amz_date must be the value
 * of the x-amz-date header among r->headers. 0, HA_EINVAL or HA_ENOMEM. The secret is copied
 * only into wiped locals. */
int ha_sigv4_authorization(const struct ha_sigv4_request *r, const struct ha_sigv4_creds *c,
                           const char *amz_date, struct ha_buf *out, struct ha_err *e);

/* "YYYYMMDDTHHMMSSZ" (UTC) of t. */
void ha_sigv4_amz_date(time_t t, char out[17]);

/* Lowercase hex SHA-256 of data. */
void ha_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif
