/* Inputs for the fuzzer (fuzz.h): valid ones from the schema and the HTTP grammar, and their
 * mutations. Single-threaded. */
#include <string.h>

#include "common/frame.h"
#include "fuzz.h"
#include "haagent.pb-c.h"
#include "http/parse.h"

/* ---- the generator: splitmix64 ---- */

void fz_seed(struct fz_rng *r, uint64_t seed)
{
	r->s = seed;
}

void fz_seed_input(struct fz_rng *r, uint64_t seed, int t, uint64_t i)
{
	r->s = seed ^ ((uint64_t)t << 56) ^ (i * 0x9e3779b97f4a7c15ull);
	(void)fz_u64(r);
}

uint64_t fz_u64(struct fz_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

size_t fz_below(struct fz_rng *r, size_t n)
{
	return (size_t)(fz_u64(r) % n);
}

const char *fz_target_name(enum fz_target t)
{
	static const char *const names[FZ_N_TARGETS] = {"frames", "http", "fsm"};
	return (unsigned)t < FZ_N_TARGETS ? names[t] : "?";
}

int fz_target_parse(const char *name)
{
	for (int t = 0; t < FZ_N_TARGETS; t++)
		if (!strcmp(name, fz_target_name((enum fz_target)t)))
			return t;
	return -1;
}

/* ---- the schema ---- */

const ProtobufCMessageDescriptor *const fz_messages[] = {
    &haagent__health__descriptor,
    &haagent__backup_report__descriptor,
    &haagent__health_report__descriptor,
    &haagent__health_ack__descriptor,
    &haagent__status_request__descriptor,
    &haagent__node_status__descriptor,
    &haagent__status_response__descriptor,
    &haagent__switchover_request__descriptor,
    &haagent__maintenance_request__descriptor,
    &haagent__pause_request__descriptor,
    &haagent__backup_run_request__descriptor,
    &haagent__backup_verified_request__descriptor,
    &haagent__backup_hold_request__descriptor,
    &haagent__member_add_request__descriptor,
    &haagent__member_remove_request__descriptor,
    &haagent__admin_request__descriptor,
    &haagent__backups_request__descriptor,
    &haagent__backups_response__descriptor,
    &haagent__admin_response__descriptor,
    &haagent__events_request__descriptor,
    &haagent__events_response__descriptor,
    &haagent__error_response__descriptor,
    &haagent__member__descriptor,
    &haagent__failover__descriptor,
    &haagent__event__descriptor,
    &haagent__backup_record__descriptor,
    &haagent__cmd_init_members__descriptor,
    &haagent__cmd_set_primary__descriptor,
    &haagent__cmd_failover_begin__descriptor,
    &haagent__cmd_failover_advance__descriptor,
    &haagent__cmd_node_diverged__descriptor,
    &haagent__cmd_event__descriptor,
    &haagent__cmd_set_maintenance__descriptor,
    &haagent__cmd_primary_writable__descriptor,
    &haagent__cmd_set_paused__descriptor,
    &haagent__cmd_member_add__descriptor,
    &haagent__cmd_member_remove__descriptor,
    &haagent__cmd_member_joined__descriptor,
    &haagent__cmd_backup_begin__descriptor,
    &haagent__cmd_backup_end__descriptor,
    &haagent__cmd_backup_hold__descriptor,
    &haagent__cmd_backup_copied__descriptor,
    &haagent__cmd_backup_verified__descriptor,
    &haagent__cmd_backup_deleted__descriptor,
    &haagent__cmd_set_backup_policy__descriptor,
    &haagent__fsm_command__descriptor,
    &haagent__cmd_archive_slice__descriptor,
    &haagent__archive_state__descriptor,
    &haagent__fsm_snapshot__descriptor,
};
const size_t fz_n_messages = sizeof(fz_messages) / sizeof(fz_messages[0]);

const ProtobufCMessageDescriptor *fz_rpc_message(int type)
{
	switch (type) {
	case HA_MSG_HEALTH_REPORT:
		return &haagent__health_report__descriptor;
	case HA_MSG_HEALTH_ACK:
		return &haagent__health_ack__descriptor;
	case HA_MSG_STATUS_REQUEST:
		return &haagent__status_request__descriptor;
	case HA_MSG_STATUS_RESPONSE:
		return &haagent__status_response__descriptor;
	case HA_MSG_ERROR:
		return &haagent__error_response__descriptor;
	case HA_MSG_EVENTS_REQUEST:
		return &haagent__events_request__descriptor;
	case HA_MSG_EVENTS_RESPONSE:
		return &haagent__events_response__descriptor;
	case HA_MSG_ADMIN_REQUEST:
		return &haagent__admin_request__descriptor;
	case HA_MSG_ADMIN_RESPONSE:
		return &haagent__admin_response__descriptor;
	case HA_MSG_BACKUPS_REQUEST:
		return &haagent__backups_request__descriptor;
	case HA_MSG_BACKUPS_RESPONSE:
		return &haagent__backups_response__descriptor;
	default:
		return NULL;
	}
}

/* ---- messages generated from their descriptors, in an arena freed at once ---- */

static struct {
	_Alignas(16) uint8_t mem[2u << 20];
	size_t used;
} arena;

static void *arena_alloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n > sizeof(arena.mem) - arena.used)
		return NULL;
	void *p = arena.mem + arena.used;
	arena.used += n;
	memset(p, 0, n);
	return p;
}

void fz_gen_reset(void)
{
	arena.used = 0;
}

/* Numbers that find edges: zero, small ids, ordinary values, the extremes, anything. */
static uint64_t gen_num(struct fz_rng *r)
{
	switch (fz_below(r, 10)) {
	case 0:
	case 1:
		return 0;
	case 2:
	case 3:
	case 4: /* ids, counts, formats, phases */
		return 1 + fz_below(r, 3);
	case 5:
		return fz_below(r, 2000);
	case 6:
		return UINT64_MAX - fz_below(r, 2);
	case 7:
		return (uint64_t)INT64_MAX + fz_below(r, 2) - 1;
	case 8:
		return (uint64_t)UINT32_MAX + fz_below(r, 3) - 1;
	default:
		return fz_u64(r) >> fz_below(r, 64);
	}
}

/* Strings the agent expects (names, GTID sets, addresses, schedules) and others. */
static char *gen_str(struct fz_rng *r)
{
	static const char *const dict[] = {"",
	                                   "node1",
	                                   "node2",
	                                   "node3",
	                                   "0-1-5",
	                                   "0-1-100,1-2-7",
	                                   "0-1-18446744073709551615",
	                                   "127.0.0.1",
	                                   "127.0.0.1:7200",
	                                   "full",
	                                   "incremental",
	                                   "differential",
	                                   "primary",
	                                   "replica",
	                                   "0 3 * * 0",
	                                   "*/5 * * * *",
	                                   "Yes",
	                                   "x.y",
	                                   "0-1-5,0-2-3"};
	size_t k = fz_below(r, 4);
	if (k > 0)
		return (char *)dict[fz_below(r, sizeof(dict) / sizeof(dict[0]))];
	size_t n = fz_below(r, 2) ? fz_below(r, 40) : fz_below(r, 700);
	char *s = arena_alloc(n + 1);
	if (s == NULL)
		return "";
	bool bytes = fz_below(r, 4) == 0;
	for (size_t i = 0; i < n; i++)
		s[i] = bytes ? (char)(1 + fz_below(r, 255)) : (char)(0x20 + fz_below(r, 95));
	return s;
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 4; /* 32-bit integers, float, enum, protobuf_c_boolean */
	}
}

/* Writes one value of f's type at p; false when it could not (a message too deep). */
static bool gen_value(struct fz_rng *r, const ProtobufCFieldDescriptor *f, void *p, int depth)
{
	uint64_t v = gen_num(r);
	/* hints from the schema's names, so that more messages pass validation and go deeper */
	size_t nl = strlen(f->name);
	if (!strcmp(f->name, "format") && fz_below(r, 8))
		v = 1;
	else if (nl > 5 && !strcmp(f->name + nl - 5, "_port") && fz_below(r, 8))
		v = 1024 + fz_below(r, 60000);
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		memcpy(p, &v, 8);
		return true;
	case PROTOBUF_C_TYPE_DOUBLE: {
		double d = fz_below(r, 2) ? (double)(int64_t)v : (double)v / 7.0;
		memcpy(p, &d, 8);
		return true;
	}
	case PROTOBUF_C_TYPE_FLOAT: {
		float x = (float)(int32_t)v;
		memcpy(p, &x, 4);
		return true;
	}
	case PROTOBUF_C_TYPE_BOOL: {
		protobuf_c_boolean b = (protobuf_c_boolean)(v & 1);
		memcpy(p, &b, sizeof(b));
		return true;
	}
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		int e = fz_below(r, 8) ? ed->values[fz_below(r, ed->n_values)].value : (int)v;
		memcpy(p, &e, sizeof(e));
		return true;
	}
	case PROTOBUF_C_TYPE_STRING: {
		char *s = gen_str(r);
		memcpy(p, &s, sizeof(s));
		return true;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData b = {.len = fz_below(r, 64)};
		b.data = arena_alloc(b.len ? b.len : 1);
		if (b.data == NULL)
			return false;
		for (size_t i = 0; i < b.len; i++)
			b.data[i] = (uint8_t)fz_u64(r);
		memcpy(p, &b, sizeof(b));
		return true;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		if (depth >= 4)
			return false;
		ProtobufCMessage *m = fz_gen_message(r, f->descriptor, depth + 1);
		memcpy(p, &m, sizeof(m));
		return m != NULL;
	}
	default: { /* 32-bit integers */
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, 4);
		return true;
	}
	}
}

static void gen_repeated(struct fz_rng *r, const ProtobufCFieldDescriptor *f, uint8_t *m, int depth)
{
	size_t n = fz_below(r, depth < 2 ? 5 : 3), es = elem_size(f);
	uint8_t *arr = arena_alloc(n * es + 1);
	if (arr == NULL)
		return;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += gen_value(r, f, arr + k * es, depth);
	memcpy(m + f->quantifier_offset, &k, sizeof(k));
	memcpy(m + f->offset, &arr, sizeof(arr));
}

/* A message of type d with about three fields in four set, nested messages down to depth 4,
 * each kind of field (oneof, repeated, optional, plain) written into the C structure the way
 * protobuf-c's generated code lays it out. In the arena: fz_gen_reset frees it. */
ProtobufCMessage *fz_gen_message(struct fz_rng *r, const ProtobufCMessageDescriptor *d, int depth)
{
	uint8_t *m = arena_alloc(d->sizeof_message);
	if (m == NULL)
		return NULL;
	protobuf_c_message_init(d, m);
	/* each oneof gets at most one member: the first chosen */
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (fz_below(r, 4) == 0)
			continue; /* left unset */
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t kase;
			memcpy(&kase, m + f->quantifier_offset, sizeof(kase));
			if (kase == 0 && gen_value(r, f, m + f->offset, depth))
				memcpy(m + f->quantifier_offset, &f->id, sizeof(f->id));
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			gen_repeated(r, f, m, depth);
			continue;
		}
		if (!gen_value(r, f, m + f->offset, depth))
			continue;
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
		    f->type != PROTOBUF_C_TYPE_STRING) {
			protobuf_c_boolean has = 1;
			memcpy(m + f->quantifier_offset, &has, sizeof(has));
		}
	}
	return (ProtobufCMessage *)m;
}

/* ---- valid inputs ---- */

/* 1 to 3 frames, each a message of its type generated from the schema. */
static size_t make_frames(struct fz_rng *r, uint8_t *buf)
{
	size_t len = 0;
	for (size_t k = 1 + fz_below(r, 3); k > 0; k--) {
		int type = 1 + (int)fz_below(r, HA_MSG_MAX_);
		ProtobufCMessage *m = fz_gen_message(r, fz_rpc_message(type), 0);
		if (m == NULL)
			break;
		size_t n = protobuf_c_message_get_packed_size(m);
		if (len + HA_FRAME_HEADER + n > FZ_MAX_INPUT)
			break;
		ha_frame_header(buf + len, (enum ha_msg_type)type, (uint32_t)n);
		protobuf_c_message_pack(m, buf + len + HA_FRAME_HEADER);
		len += HA_FRAME_HEADER + n;
	}
	fz_gen_reset();
	return len;
}

static size_t put(uint8_t *buf, size_t len, const char *s)
{
	size_t n = strlen(s);
	if (len + n > FZ_MAX_INPUT)
		return len;
	memcpy(buf + len, s, n);
	return len + n;
}

/* A request of the grammar http/parse.h reads, with the load balancers' and Prometheus' habits
 * and the edges: long methods and paths, other versions, padding to the size limit. */
static size_t make_http(struct fz_rng *r, uint8_t *buf)
{
	static const char *const methods[] = {"GET",     "HEAD",    "GET",      "HEAD", "POST",
	                                      "OPTIONS", "GETTING", "GETTINGS", "G"};
	static const char *const paths[] = {"/primary",
	                                    "/replica",
	                                    "/replica?max_lag=5",
	                                    "/health",
	                                    "/metrics",
	                                    "/",
	                                    "/replica?max_lag=",
	                                    "/replica?a=1&max_lag=99999999999&b",
	                                    "*",
	                                    "/?",
	                                    "/replica?max_lag=1000000000"};
	static const char *const versions[] = {"HTTP/1.1", "HTTP/1.0",  "HTTP/1.1",
	                                       "HTTP/2.0", "HTTP/1.12", "http/1.1"};
	static const char *const headers[] = {"Host: 127.0.0.1:7300", "User-Agent: HAProxy",
	                                      "Accept: */*", "Connection: close",
	                                      "Accept-Encoding: gzip"};
	size_t len = put(buf, 0, methods[fz_below(r, sizeof(methods) / sizeof(methods[0]))]);
	len = put(buf, len, " ");
	if (fz_below(r, 8) == 0) { /* a path around the limit of HA_HTTP_MAX_PATH */
		size_t n = HA_HTTP_MAX_PATH - 3 + fz_below(r, 6);
		len = put(buf, len, "/");
		for (size_t i = 1; i < n && len < FZ_MAX_INPUT; i++)
			buf[len++] = (uint8_t)('a' + fz_below(r, 26));
	} else {
		len = put(buf, len, paths[fz_below(r, sizeof(paths) / sizeof(paths[0]))]);
	}
	len = put(buf, len, " ");
	len = put(buf, len, versions[fz_below(r, sizeof(versions) / sizeof(versions[0]))]);
	len = put(buf, len, "\r\n");
	for (size_t k = fz_below(r, 5); k > 0; k--) {
		len = put(buf, len, headers[fz_below(r, sizeof(headers) / sizeof(headers[0]))]);
		len = put(buf, len, "\r\n");
	}
	if (fz_below(r, 6) == 0) { /* padded to end near HA_HTTP_MAX_REQUEST */
		size_t end = HA_HTTP_MAX_REQUEST - 8 + fz_below(r, 12);
		len = put(buf, len, "X-Pad: ");
		while (len + 4 < end)
			buf[len++] = 'p';
		len = put(buf, len, "\r\n");
	}
	return fz_below(r, 10) ? put(buf, len, "\r\n") : len;
}

/* An FSM entry (8-byte header, FsmCommand, padding to 8) or an FsmSnapshot. */
static size_t make_fsm(struct fz_rng *r, uint8_t *buf)
{
	bool snap = fz_below(r, 4) == 0;
	ProtobufCMessage *m = fz_gen_message(
	    r, snap ? &haagent__fsm_snapshot__descriptor : &haagent__fsm_command__descriptor, 0);
	size_t n = m ? protobuf_c_message_get_packed_size(m) : 0, len = 0;
	if (m != NULL && n + 16 <= FZ_MAX_INPUT) {
		if (snap) {
			len = protobuf_c_message_pack(m, buf);
		} else {
			memset(buf, 0, 8 + ((n + 7) & ~(size_t)7));
			memcpy(buf, "HC\1", 3);
			buf[4] = (uint8_t)n;
			buf[5] = (uint8_t)(n >> 8);
			buf[6] = (uint8_t)(n >> 16);
			buf[7] = (uint8_t)(n >> 24);
			protobuf_c_message_pack(m, buf + 8);
			len = 8 + ((n + 7) & ~(size_t)7);
		}
	}
	fz_gen_reset();
	return len;
}

static size_t make_valid(enum fz_target t, struct fz_rng *r, uint8_t *buf)
{
	switch (t) {
	case FZ_FRAMES:
		return make_frames(r, buf);
	case FZ_HTTP:
		return make_http(r, buf);
	default:
		return make_fsm(r, buf);
	}
}

size_t fz_make(enum fz_target t, struct fz_rng *r, uint8_t *buf)
{
	size_t len = make_valid(t, r, buf);
	return fz_mutate(r, t, buf, len);
}

/* ---- mutations ---- */

/* Where frame headers begin, following the declared lengths: up to 8 of them. */
static size_t frame_starts(const uint8_t *b, size_t len, size_t *at)
{
	size_t k = 0;
	for (size_t p = 0; p + HA_FRAME_HEADER <= len && k < 8;) {
		at[k++] = p;
		uint32_t n = (uint32_t)b[p + 4] << 24 | (uint32_t)b[p + 5] << 16 |
		             (uint32_t)b[p + 6] << 8 | b[p + 7];
		if (n > len - p - HA_FRAME_HEADER)
			break;
		p += HA_FRAME_HEADER + n;
	}
	return k;
}

/* A header field of one of the frames set to an extreme. */
static void mutate_frame_header(struct fz_rng *r, uint8_t *b, size_t len)
{
	size_t at[8], k = frame_starts(b, len, at);
	if (k == 0)
		return;
	uint8_t *h = b + at[fz_below(r, k)];
	uint32_t actual = (uint32_t)(len - (size_t)(h - b) - HA_FRAME_HEADER);
	static const uint32_t lens[] = {0,
	                                1,
	                                HA_FRAME_MAX_PAYLOAD - 1,
	                                HA_FRAME_MAX_PAYLOAD,
	                                HA_FRAME_MAX_PAYLOAD + 1,
	                                0x7fffffff,
	                                0xffffffff};
	uint32_t n;
	switch (fz_below(r, 5)) {
	case 0: /* the length */
		n = fz_below(r, 3) ? lens[fz_below(r, sizeof(lens) / sizeof(lens[0]))]
		                   : actual + (uint32_t)fz_below(r, 3) - 1;
		h[4] = (uint8_t)(n >> 24);
		h[5] = (uint8_t)(n >> 16);
		h[6] = (uint8_t)(n >> 8);
		h[7] = (uint8_t)n;
		break;
	case 1: { /* the type */
		static const uint8_t types[] = {0, 1, HA_MSG_MAX_, HA_MSG_MAX_ + 1, 0x7f, 0xff};
		h[3] = types[fz_below(r, sizeof(types))];
		break;
	}
	case 2: /* the version */
		h[2] = (uint8_t)(fz_below(r, 2) ? 0 : 2 + fz_below(r, 254));
		break;
	default: /* the magic */
		h[fz_below(r, 2)] = (uint8_t)fz_u64(r);
		break;
	}
}

/* A varint that never ends, or one of ten bytes (the largest), or a field of wire type 3-7. */
static size_t mutate_varint(struct fz_rng *r, uint8_t *b, size_t len)
{
	static const uint8_t bombs[][12] = {
	    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0},
	    {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0, 0}, /* field 1, bytes, 4 GiB */
	    {0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}};
	const uint8_t *bomb = bombs[fz_below(r, 4)];
	size_t n = 1 + fz_below(r, 12), at = fz_below(r, len + 1);
	if (len + n > FZ_MAX_INPUT)
		return len;
	memmove(b + at + n, b + at, len - at);
	memcpy(b + at, bomb, n);
	return len + n;
}

/* For HTTP: an end of headers, a bare CR or LF, a NUL, a space or a '?' somewhere. */
static void mutate_http(struct fz_rng *r, uint8_t *b, size_t len)
{
	static const char *const bits[] = {"\r\n\r\n", "\r", "\n", "\0", " ", "?", "\x7f", "\x80"};
	if (len == 0)
		return;
	size_t k = fz_below(r, sizeof(bits) / sizeof(bits[0]));
	size_t n = k == 3 ? 1 : strlen(bits[k]), at = fz_below(r, len);
	if (n > len - at)
		n = len - at;
	memcpy(b + at, bits[k], n);
}

/* Long on purpose: one case per mutation, each a few lines; a table of functions would only
 * spread them out. */
static size_t mutate_once(struct fz_rng *r, enum fz_target t, uint8_t *b, size_t len)
{
	static uint8_t other[FZ_MAX_INPUT];
	size_t at = len ? fz_below(r, len) : 0, n;
	switch (fz_below(r, 12)) {
	case 0: /* flip a bit */
		if (len)
			b[at] ^= (uint8_t)(1u << fz_below(r, 8));
		return len;
	case 1: { /* an interesting byte */
		static const uint8_t v[] = {0, 1, 0x7f, 0x80, 0xff, 'H', 'A', '\r', '\n', ' '};
		if (len)
			b[at] = fz_below(r, 2) ? v[fz_below(r, sizeof(v))] : (uint8_t)fz_u64(r);
		return len;
	}
	case 2: /* truncate */
		return len ? fz_below(r, len) : 0;
	case 3: /* append random bytes */
		n = fz_below(r, 64);
		for (size_t i = 0; i < n && len < FZ_MAX_INPUT; i++)
			b[len++] = (uint8_t)fz_u64(r);
		return len;
	case 4: /* delete a range */
		n = len ? fz_below(r, len - at + 1) : 0;
		memmove(b + at, b + at + n, len - at - n);
		return len - n;
	case 5: /* insert random bytes */
		n = 1 + fz_below(r, 16);
		if (len + n > FZ_MAX_INPUT)
			return len;
		memmove(b + at + n, b + at, len - at);
		for (size_t i = 0; i < n; i++)
			b[at + i] = (uint8_t)fz_u64(r);
		return len + n;
	case 6: { /* copy a range over another place */
		if (len < 2)
			return len;
		size_t from = fz_below(r, len);
		n = fz_below(r, len - (from > at ? from : at)) + 1;
		memmove(b + at, b + from, n);
		return len;
	}
	case 7: { /* splice: this input's head and another valid input's tail */
		size_t olen = make_valid(t, r, other);
		size_t cut = olen ? fz_below(r, olen) : 0;
		n = olen - cut;
		if (at + n > FZ_MAX_INPUT)
			n = FZ_MAX_INPUT - at;
		memcpy(b + at, other + cut, n);
		return at + n;
	}
	case 8: /* the target's own */
		if (t == FZ_FRAMES)
			mutate_frame_header(r, b, len);
		else if (t == FZ_HTTP)
			mutate_http(r, b, len);
		else if (len >= 8) /* the entry's length */
			b[4 + fz_below(r, 4)] = (uint8_t)fz_u64(r);
		return len;
	case 9:
		return t == FZ_HTTP ? len : mutate_varint(r, b, len);
	case 10: /* a run of one byte */
		n = fz_below(r, len - at + 1);
		memset(b + at, fz_below(r, 2) ? (int)(uint8_t)fz_u64(r) : 0, n);
		return len;
	default: /* random bytes only, now and then */
		if (fz_below(r, 4))
			return len;
		n = fz_below(r, 600);
		for (size_t i = 0; i < n; i++)
			b[i] = (uint8_t)fz_u64(r);
		return n;
	}
}

size_t fz_mutate(struct fz_rng *r, enum fz_target t, uint8_t *b, size_t len)
{
	for (size_t k = fz_below(r, 5); k > 0; k--)
		len = mutate_once(r, t, b, len);
	return len;
}
