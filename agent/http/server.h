/* The agent's read-only HTTP endpoint on the libuv loop (used by load balancers' health checks
 * and by Prometheus). One request per connection, answered and closed. Handlers only read
 * in-memory state.
 *
 * One slow or hostile client cannot starve the others (docs/security.md, "HTTP server"):
 *   - the whole request (line and headers, at most HA_HTTP_MAX_REQUEST bytes) must arrive within
 *     HA_HTTP_HEADER_MS of the accept; bytes trickling in do not extend it;
 *   - at most HA_HTTP_MAX_CONNS connections hold a slot; when all are held, a new connection
 *     takes the slot of another (http/slots.h says which): the one that has waited longest for
 *     its request, or the oldest of a peer holding more than its share, never one accepted so
 *     recently that it was not read yet (only then is the new one refused);
 *   - an answer is at most HA_HTTP_MAX_ANSWER bytes and must be taken within HA_HTTP_WRITE_MS;
 *     after it the connection lingers at most HA_HTTP_LINGER_MS for the client's close;
 *   - what is cut off is counted (ha_http_server_stats) and logged at most once per
 *     HA_HTTP_LOG_EVERY_MS per kind, with the count since the previous line.
 * Memory: HA_HTTP_MAX_CONNS connections of about HA_HTTP_MAX_REQUEST + the answer each, plus
 * those closing, which are freed in the same loop iteration.
 *
 * Loop thread only. */
#ifndef HA_HTTP_SERVER_H
#define HA_HTTP_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/tls.h"
#include "parse.h"

#define HA_HTTP_MAX_CONNS    32
#define HA_HTTP_HEADER_MS    2000
#define HA_HTTP_WRITE_MS     2000
#define HA_HTTP_LINGER_MS    500
#define HA_HTTP_MAX_ANSWER   (256u << 10)
#define HA_HTTP_LOG_EVERY_MS 10000

struct ha_http_resp {
	int status;               /* 200, 503, 404, ... */
	const char *content_type; /* default text/plain */
	struct ha_buf body;       /* freed by the server */
};

typedef void (*ha_http_handler)(void *data, const struct ha_http_req *req,
                                struct ha_http_resp *resp);

struct ha_http_server;

/* Listens on ip:port (0: a port of the kernel's choice, see ha_http_server_port). */
int ha_http_server_start(uv_loop_t *loop, const char *ip, unsigned port, ha_http_handler h,
                         void *data, struct ha_http_server **out, struct ha_err *e);
/* TLS (docs/security.md): with ctx, a connection whose first byte opens a TLS handshake must
 * show a certificate of the cluster's CA, and a plain one is answered 403, except /primary and
 * /replica when plain_checks. NULL: plain HTTP for everything (insecure = yes). New connections
 * use it from now on (certificate rotation). */
void ha_http_server_set_tls(struct ha_http_server *s, SSL_CTX *ctx, bool plain_checks);
/* Closes every connection and the listener; the server is freed once all have closed. */
void ha_http_server_close(struct ha_http_server *s);
unsigned ha_http_server_port(const struct ha_http_server *s);

/* Connections closed without an answer, by reason. */
enum ha_http_drop {
	HA_HTTP_DROP_SLOW,    /* the request did not arrive whole within the header deadline */
	HA_HTTP_DROP_EVICTED, /* its slot went to a newer connection */
	HA_HTTP_DROP_UNREAD,  /* answered, but the client did not take the answer in time */
	HA_HTTP_DROP_REFUSED, /* every slot held by connections not read yet (a burst): closed */
	HA_HTTP_DROP_ERROR,   /* accept, memory or socket error */
	HA_HTTP_DROP_N_,
};
const char *ha_http_drop_name(enum ha_http_drop d); /* "slow", "evicted", ... */

/* Answers are counted by status; the last entry (0) stands for any other. */
#define HA_HTTP_N_CODES 8
extern const int ha_http_codes[HA_HTTP_N_CODES];

struct ha_http_stats {
	uint64_t accepted;
	uint64_t answered[HA_HTTP_N_CODES]; /* by ha_http_codes */
	uint64_t dropped[HA_HTTP_DROP_N_];
	unsigned open; /* connections holding a slot now */
};
void ha_http_server_stats(const struct ha_http_server *s, struct ha_http_stats *out);

/* For tests: deadlines shorter than the HA_HTTP_* defaults, and a small kernel send buffer for
 * each connection (0: the system's) so that a write has to wait for the client. */
struct ha_http_limits {
	unsigned header_ms, write_ms, linger_ms;
	int sndbuf;
};
void ha_http_server_set_limits(struct ha_http_server *s, const struct ha_http_limits *l);

#endif
