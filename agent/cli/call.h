/* haadm's blocking RPC client: one request, one response, every step bounded by a deadline.
 * (haadm is a short-lived CLI, so blocking sockets are right here; the daemon never uses this.) */
#ifndef HA_CLI_CALL_H
#define HA_CLI_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

/* Where haadm's TLS credentials come from (docs/security.md): the options given here (NULL:
 * not given), else $HAADM_CA, $HAADM_CERT, $HAADM_KEY ($HAADM_INSECURE=1), else the [tls]
 * section of the configuration at conf_path (ca, haadm_cert, haadm_key, insecure). Resolved at
 * the first call. */
void ha_call_tls_options(const char *conf_path, const char *ca, const char *cert, const char *key,
                         bool insecure);

/* Sends one frame to host:port and reads one frame back within timeout_ms.
 * On success *resp is malloc'd (free it) and *resp_type set. */
int ha_call(const char *host, unsigned port, int type, const void *pb_message, unsigned timeout_ms,
            int *resp_type, uint8_t **resp, size_t *resp_len, struct ha_err *e);

/* Splits "host:port". */
int ha_split_hostport(const char *s, char *host, size_t host_size, unsigned *port);

#endif
