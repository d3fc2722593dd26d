/* haadm's blocking RPC client: one request, one response, every step bounded by a deadline.
 * (haadm is a short-lived CLI, so blocking sockets are right here; the daemon never uses this.) */
#ifndef HA_CLI_CALL_H
#define HA_CLI_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

/* Sends one frame to host:port and reads one frame back within timeout_ms.
 * On success *resp is malloc'd (free it) and *resp_type set. */
int ha_call(const char *host, unsigned port, int type, const void *pb_message, unsigned timeout_ms,
            int *resp_type, uint8_t **resp, size_t *resp_len, struct ha_err *e);

/* Splits "host:port". */
int ha_split_hostport(const char *s, char *host, size_t host_size, unsigned *port);

#endif
