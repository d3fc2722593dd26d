/* A minimal HTTP/1.x request parser for the agent's read-only endpoints. Pure, any thread; the
 * input is hostile: only the request line is interpreted, everything is bounded, and anything
 * unexpected is an error rather than a guess. */
#ifndef HA_HTTP_PARSE_H
#define HA_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define HA_HTTP_MAX_REQUEST 4096 /* request line and headers, all of them */
#define HA_HTTP_MAX_PATH    256

struct ha_http_req {
	char method[8];               /* GET or HEAD */
	char path[HA_HTTP_MAX_PATH];  /* without the query */
	char query[HA_HTTP_MAX_PATH]; /* after '?', possibly empty */
};

enum {
	HA_HTTP_COMPLETE = 0, /* *req is filled */
	HA_HTTP_MORE = 1,     /* no end of headers yet, and still under the size limit */
	HA_HTTP_BAD = -1,     /* malformed, or the headers exceed HA_HTTP_MAX_REQUEST: 400 */
	HA_HTTP_METHOD = -2,  /* a method other than GET or HEAD: 405 */
};

/* Parses the len bytes received so far. Only the first HA_HTTP_MAX_REQUEST bytes are looked at:
 * without an end of headers among them the request is bad, whatever follows.
 *
 * scanned, when not NULL, makes repeated calls on a growing buffer linear rather than quadratic
 * (a client trickling its request byte by byte): start it at 0 and pass it again with the same
 * buffer, to which bytes were only appended; the search for the end of headers resumes where the
 * last call stopped. NULL searches from the start. The result is the same either way. */
int ha_http_parse(const char *buf, size_t len, size_t *scanned, struct ha_http_req *req);

/* The value of key in a query string ("a=1&max_lag=5") as a non-negative integer; false when
 * absent. *bad is set when present but not a number (0..10^9). */
bool ha_http_query_uint(const char *query, const char *key, unsigned *out, bool *bad);

#endif
