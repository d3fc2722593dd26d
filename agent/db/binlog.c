#include "binlog.h"

#include <stdbool.h>
#include <string.h>

#define EVENT_HEADER             19
#define TYPE_AT                  4
#define SIZE_AT                  9
#define FORMAT_DESCRIPTION_EVENT 15
#define GTID_LIST_EVENT          163
#define MAX_HEAD_EVENTS          4 /* Format_description, [Start_encryption], Gtid_list, ... */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Adds (domain, server, seq) to a position kept sorted by domain, the highest seq per domain. */
static int add(struct ha_gtid_pos *p, uint32_t domain, uint32_t server, uint64_t seq)
{
	size_t i = 0;
	while (i < p->n && p->g[i].domain < domain)
		i++;
	if (i < p->n && p->g[i].domain == domain) {
		if (seq > p->g[i].seq) {
			p->g[i].seq = seq;
			p->g[i].server = server;
		}
		return 0;
	}
	if (p->n >= HA_GTID_MAX_DOMAINS)
		return -1;
	memmove(&p->g[i + 1], &p->g[i], (p->n - i) * sizeof(p->g[0]));
	p->g[i] = (struct ha_gtid){.domain = domain, .server = server, .seq = seq};
	p->n++;
	return 0;
}

int ha_binlog_head_position(const uint8_t *head, size_t len, struct ha_gtid_pos *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 4 || memcmp(head,
	                      "\xfe"
	                      "bin",
	                      4) != 0)
		return -1;
	size_t at = 4;
	for (int k = 0; k < MAX_HEAD_EVENTS; k++) {
		if (len - at < EVENT_HEADER)
			return -1;
		uint8_t type = head[at + TYPE_AT];
		uint32_t size = le32(head + at + SIZE_AT);
		if (size < EVENT_HEADER || size > len - at)
			return -1;
		if (k == 0 && type != FORMAT_DESCRIPTION_EVENT)
			return -1;
		if (type == GTID_LIST_EVENT) {
			const uint8_t *body = head + at + EVENT_HEADER;
			size_t body_len = size - EVENT_HEADER;
			if (body_len < 4)
				return -1;
			uint32_t count = le32(body) & 0x0fffffffu;
			if ((size_t)count > (body_len - 4) / 16)
				return -1;
			for (uint32_t i = 0; i < count; i++) {
				const uint8_t *e = body + 4 + (size_t)i * 16;
				if (add(out, le32(e), le32(e + 4), le64(e + 8)) != 0)
					return -1;
			}
			return 0;
		}
		at += size;
	}
	return -1;
}

int ha_binlog_starts_within(const struct ha_gtid_pos *file_start, const struct ha_gtid_pos *have)
{
	for (size_t i = 0; i < file_start->n; i++) {
		const struct ha_gtid *g = &file_start->g[i];
		bool found = false;
		for (size_t j = 0; j < have->n && !found; j++)
			if (have->g[j].domain == g->domain) {
				if (have->g[j].seq < g->seq)
					return 0;
				found = true;
			}
		if (!found)
			return 0;
	}
	return 1;
}
