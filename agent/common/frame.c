#include "frame.h"

void ha_frame_header(uint8_t hdr[HA_FRAME_HEADER], enum ha_msg_type type, uint32_t len)
{
	hdr[0] = 'H';
	hdr[1] = 'A';
	hdr[2] = HA_FRAME_VERSION;
	hdr[3] = (uint8_t)type;
	hdr[4] = (uint8_t)(len >> 24);
	hdr[5] = (uint8_t)(len >> 16);
	hdr[6] = (uint8_t)(len >> 8);
	hdr[7] = (uint8_t)len;
}

int ha_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload, int *type,
                    const uint8_t **payload, size_t *payload_len, size_t *frame_len,
                    struct ha_err *e)
{
	/* Check the magic as soon as its bytes arrive, so garbage is refused early. */
	if (len >= 1 && buf[0] != 'H')
		return ha_err_set(e, HA_EPROTO, "bad frame magic");
	if (len >= 2 && buf[1] != 'A')
		return ha_err_set(e, HA_EPROTO, "bad frame magic");
	if (len >= 3 && buf[2] != HA_FRAME_VERSION)
		return ha_err_set(e, HA_EPROTO, "unsupported protocol version %u", buf[2]);
	if (len < HA_FRAME_HEADER)
		return 0;
	if (buf[3] == 0 || buf[3] > HA_MSG_MAX_)
		return ha_err_set(e, HA_EPROTO, "unknown message type %u", buf[3]);
	uint32_t n = ((uint32_t)buf[4] << 24) | ((uint32_t)buf[5] << 16) | ((uint32_t)buf[6] << 8) |
	             (uint32_t)buf[7];
	if (n > max_payload)
		return ha_err_set(e, HA_ETOOBIG, "frame of %u bytes exceeds limit of %u", n,
		                  max_payload);
	if (len - HA_FRAME_HEADER < n)
		return 0;
	*type = buf[3];
	*payload = buf + HA_FRAME_HEADER;
	*payload_len = n;
	*frame_len = HA_FRAME_HEADER + (size_t)n;
	return 1;
}
