/* Length-prefixed frames of the agent RPC.
 *
 *     offset 0  'H' 'A'          magic
 *     offset 2  version (1)      protocol version; a later TLS/auth layer wraps whole frames
 *     offset 3  type             HA_MSG_...
 *     offset 4  length           big-endian u32, payload bytes, at most HA_FRAME_MAX_PAYLOAD
 *     offset 8  payload          protobuf (proto/haagent.proto)
 *
 * The decoder is incremental and treats input as hostile: a wrong magic, an unknown version or
 * type, or an oversized length is an error, after which the connection must be closed. Pure
 * functions, any thread. */
#ifndef HA_FRAME_H
#define HA_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "err.h"

#define HA_FRAME_HEADER      8
#define HA_FRAME_VERSION     1
#define HA_FRAME_MAX_PAYLOAD (1u << 20)

enum ha_msg_type {
	HA_MSG_HEALTH_REPORT = 1,
	HA_MSG_HEALTH_ACK = 2,
	HA_MSG_STATUS_REQUEST = 3,
	HA_MSG_STATUS_RESPONSE = 4,
	HA_MSG_ERROR = 5,
	HA_MSG_EVENTS_REQUEST = 6,
	HA_MSG_EVENTS_RESPONSE = 7,
	HA_MSG_ADMIN_REQUEST = 8,
	HA_MSG_ADMIN_RESPONSE = 9,
	HA_MSG_BACKUPS_REQUEST = 10,
	HA_MSG_BACKUPS_RESPONSE = 11,
	HA_MSG_MAX_ = 11,
};

/* Writes a header for a payload of `len` bytes into hdr. */
void ha_frame_header(uint8_t hdr[HA_FRAME_HEADER], enum ha_msg_type type, uint32_t len);

/* Looks at the start of buf.
 * Returns 1 and sets *type, *payload, *payload_len, *frame_len when a whole frame is there;
 * 0 when more bytes are needed; a negative HA_E... code (with e set) when the input is invalid.
 * A header is rejected as soon as its 8 bytes have arrived, before the payload. */
int ha_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload, int *type,
                    const uint8_t **payload, size_t *payload_len, size_t *frame_len,
                    struct ha_err *e);

/* Whether a message unpacked from a payload can be packed again into bytes that unpack: false
 * when it holds, at any depth, an unknown field numbered 0. protobuf-c (1.4.1 to 1.5.2 at least)
 * refuses field 0 only when its tag is one byte: written in two ("80 00"), it is kept as an
 * unknown field and packed back as a lone 00, which no decoder takes. A message that is stored
 * and forwarded as received (a health report in a status answer) must be checked, or one bad
 * report makes every status answer undecodable. */
bool ha_frame_message_sound(const ProtobufCMessage *m);

#endif
