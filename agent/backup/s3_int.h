/* Inside the S3 client: one request as s3.c performs it (sign, send, retry, explain) for the
 * operations of s3_ops.c. */
#ifndef HA_BACKUP_S3_INT_H
#define HA_BACKUP_S3_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "../common/buf.h"
#include "s3.h"
#include "sigv4.h"

#define HA_S3_POOL_MAX     16          /* idle curl handles kept (each keeps its connection) */
#define HA_S3_ERR_BODY_MAX 65536       /* of an error body kept for its message */
#define HA_S3_LIST_MAX     (16u << 20) /* a listing page's body (1,000 keys are ~1.5 MB) */

struct ha_s3 {
	struct ha_s3_conf conf;
	struct ha_s3_creds creds; /* under mu: read again when credentials_file changes */
	struct ha_s3_file_id {
		bool known;
		dev_t dev;
		ino_t ino;
		off_t size;
		struct timespec mtime, ctime;
	} creds_file; /* under mu: the file the credentials were last read from */
	char host[HA_S3_ENDPOINT_MAX + 80]; /* the Host header: [bucket.]host[:port] */
	char base[HA_S3_ENDPOINT_MAX + 80]; /* scheme://[bucket.]host[:port] */
	char bucket_path[72];               /* "/bucket" (path style) or "" (virtual) */
	pthread_mutex_t mu;                 /* the pool and the counters */
	void *idle[HA_S3_POOL_MAX];         /* CURL * */
	size_t n_idle;
	struct ha_s3_stats stats;
};

struct ha_s3_req {
	const char *method; /* GET, PUT, HEAD, DELETE, POST */
	const char *key;    /* NULL: the bucket itself */
	const char *shown;  /* what messages name instead of the key ("PREFIX*" for a list) */
	const struct ha_sigv4_pair *query;
	size_t n_query;
	const void *body; /* PUT, POST */
	size_t body_len;
	bool object_headers;     /* a PUT of an object: sse, kms key, storage class */
	const char *content_md5; /* DeleteObjects */
	bool ok_404;             /* HEAD: a 404 is an answer (it does not exist) */
	/* where a 2xx body goes: buf (at most cap bytes), grow (at most max), or nowhere */
	uint8_t *buf;
	size_t cap;
	struct ha_buf *grow;
	size_t max;
	/* results */
	long status;
	size_t got;              /* bytes of the body received */
	uint64_t content_length; /* HEAD */
};

/* Sends r (signed anew for each attempt), retrying what passes; 0 for a 2xx answer (or a 404
 * with ok_404), else an error saying what to do, e prefixed with "METHOD s3://bucket/key". */
int ha_s3_perform(struct ha_s3 *s, struct ha_s3_req *r, struct ha_err *e);

/* "s3://bucket/key" (key may be NULL), for messages: cut at size, never used as a key. */
void ha_s3_where(const struct ha_s3 *s, const char *key, char *out, size_t size);

#endif
