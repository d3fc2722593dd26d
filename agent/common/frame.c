#include "frame.h"

#include <string.h>

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

/* The nested messages of field f of m, at most one unless repeated: *n of them at *out. */
static void nested(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                   ProtobufCMessage *const **out, size_t *n)
{
	const char *base = (const char *)m;
	*n = 0;
	if (f->type != PROTOBUF_C_TYPE_MESSAGE)
		return;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		memcpy(n, base + f->quantifier_offset, sizeof(*n));
		memcpy(out, base + f->offset, sizeof(*out));
		return;
	}
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t kase; /* the union holds this member only when the case says so */
		memcpy(&kase, base + f->quantifier_offset, sizeof(kase));
		if (kase != f->id)
			return;
	}
	*out = (ProtobufCMessage *const *)(base + f->offset);
	*n = **out != NULL;
}

bool ha_frame_message_sound(const ProtobufCMessage *m)
{
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return false;
	for (unsigned i = 0; i < m->descriptor->n_fields; i++) {
		ProtobufCMessage *const *sub = NULL;
		size_t n;
		nested(m, &m->descriptor->fields[i], &sub, &n);
		for (size_t k = 0; k < n; k++)
			if (sub[k] && !ha_frame_message_sound(sub[k]))
				return false;
	}
	return true;
}
