/* The agent's read-only HTTP endpoint on the libuv loop (used by load balancers' health checks
 * and by Prometheus). One request per connection, answered and closed. A slow or malicious client
 * cannot hold the loop or memory: a request must arrive whole within HA_HTTP_DEADLINE_MS and
 * HA_HTTP_MAX_REQUEST bytes, at most HA_HTTP_MAX_CONNS connections are open at once, and handlers
 * only read in-memory state. Loop thread only. */
#ifndef HA_HTTP_SERVER_H
#define HA_HTTP_SERVER_H

#include <uv.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "parse.h"

#define HA_HTTP_MAX_CONNS   32
#define HA_HTTP_DEADLINE_MS 5000

struct ha_http_resp {
	int status;               /* 200, 503, 404, ... */
	const char *content_type; /* default text/plain */
	struct ha_buf body;       /* freed by the server */
};

typedef void (*ha_http_handler)(void *data, const struct ha_http_req *req,
                                struct ha_http_resp *resp);

struct ha_http_server;

int ha_http_server_start(uv_loop_t *loop, const char *ip, unsigned port, ha_http_handler h,
                         void *data, struct ha_http_server **out, struct ha_err *e);
void ha_http_server_close(struct ha_http_server *s);

#endif
