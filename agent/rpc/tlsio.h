/* Moving a TLS connection's ciphertext onto a libuv stream. Loop thread only. */
#ifndef HA_TLSIO_H
#define HA_TLSIO_H

#include <stddef.h>
#include <uv.h>

#include "../common/tls.h"

/* Queues everything t has to send on s. *outstanding grows by the bytes queued and shrinks as
 * they are written; it must stay valid until the stream's close callback (libuv calls every
 * write callback before it). Returns 0 or a libuv error (the caller closes the stream). */
int ha_tls_send_pending(struct ha_tls *t, uv_stream_t *s, size_t *outstanding);

#endif
