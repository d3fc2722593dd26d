/* The XML S3 answers with: ListObjectsV2 pages and error bodies. Pure, any thread.
 *
 * A body comes from the network and is treated as hostile: its size is bounded by the caller,
 * every text by HA_S3_XML_TEXT_MAX, nesting by HA_S3_XML_DEPTH_MAX and a page by
 * HA_S3_LIST_PAGE_MAX entries; entities are the five of XML plus character references (no
 * DOCTYPE, so none can be declared); a body that is cut, mis-nested, or not what was asked
 * for is an error (HA_EPROTO), never a crash or a guess. Element names are matched without a
 * namespace prefix. */
#ifndef HA_BACKUP_S3_XML_H
#define HA_BACKUP_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

#define HA_S3_XML_TEXT_MAX  8192 /* bytes of one element's text, decoded */
#define HA_S3_XML_DEPTH_MAX 16
#define HA_S3_LIST_PAGE_MAX 10000 /* S3 sends 1,000 at most */
#define HA_S3_KEY_MAX       1024  /* S3's limit on a key, in bytes */

struct ha_s3_object {
	char *key;
	uint64_t size;
};

/* One page of ListObjectsV2. Everything is malloc'd: ha_s3_list_page_free. */
struct ha_s3_list_page {
	struct ha_s3_object *objs;
	size_t n_objs;
	char **prefixes; /* CommonPrefixes (with a delimiter) */
	size_t n_prefixes;
	bool truncated;
	char *next_token; /* NextContinuationToken; NULL when none */
};

/* Parses a ListBucketResult. 0, HA_EPROTO (e says what is wrong) or HA_ENOMEM; on error page
 * is left empty. A truncated page without a continuation token is an error (the listing
 * could not go on), as is a key longer than HA_S3_KEY_MAX or one holding a NUL. */
int ha_s3_xml_list(const char *xml, size_t len, struct ha_s3_list_page *page, struct ha_err *e);
void ha_s3_list_page_free(struct ha_s3_list_page *page);

/* A listing must go forward: S3 lists keys (and common prefixes) in UTF-8 byte order, each
 * page after the one before. A server that repeats or cycles its continuation tokens would
 * make a listing (or a deletion page after page) go on forever: refused. Start with
 * HA_S3_LIST_CURSOR_INIT, give it each page in turn, free it at the end. */
struct ha_s3_list_cursor {
	char *last;       /* the greatest name listed so far (NULL: none yet) */
	unsigned n_empty; /* truncated pages in a row without an entry */
};
#define HA_S3_LIST_CURSOR_INIT                                                                     \
	{                                                                                          \
		NULL, 0                                                                            \
	}
#define HA_S3_LIST_EMPTY_MAX 16 /* empty truncated pages in a row taken as no progress */
/* 0, or HA_EPROTO ("the listing goes back" / "no progress") or HA_ENOMEM, e set. */
int ha_s3_list_forward(struct ha_s3_list_cursor *cur, const struct ha_s3_list_page *page,
                       struct ha_err *e);
void ha_s3_list_cursor_free(struct ha_s3_list_cursor *cur);

/* What an S3 error body says. Codes longer than the field are not S3's and left empty; the
 * message is cut with "..." (shown, never acted on). */
struct ha_s3_error {
	char code[64];
	char message[512];
	char request_id[128];
	char region[64];       /* AuthorizationHeaderMalformed: the region the server wants */
	char request_time[40]; /* RequestTimeTooSkewed: ISO 8601, as the server saw them */
	char server_time[40];
	char endpoint[256];          /* PermanentRedirect: where the bucket lives */
	char key[HA_S3_KEY_MAX + 1]; /* the object concerned, when the server names it */
};

/* Parses <Error><Code>...</Code>...</Error>. 0 when it is one and has a code, else HA_EPROTO
 * (the caller falls back on the HTTP status). */
int ha_s3_xml_error(const char *xml, size_t len, struct ha_s3_error *out);

/* How many keys a DeleteObjects answer (<DeleteResult>) refused, and the first refusal (its
 * key, code and message). 0 (n_failed may be 0) or HA_EPROTO. */
int ha_s3_xml_delete_result(const char *xml, size_t len, size_t *n_failed,
                            struct ha_s3_error *first);

#endif
