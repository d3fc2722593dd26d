#include "gtid.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct ha_gtid *find(const struct ha_gtid_pos *p, uint32_t domain)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->g[i].domain == domain)
			return &p->g[i];
	return NULL;
}

/* Parses a decimal number of at most `max` into *v; advances *s. */
static int parse_num(const char **s, uint64_t max, uint64_t *v)
{
	const char *p = *s;
	uint64_t x = 0;
	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p - '0');
		if (x > (max - d) / 10)
			return -1;
		x = x * 10 + d;
		p++;
	}
	*v = x;
	*s = p;
	return 0;
}

static void skip_ws(const char **s)
{
	while (**s == ' ' || **s == '\t' || **s == '\n' || **s == '\r')
		(*s)++;
}

int ha_gtid_parse(const char *s, struct ha_gtid_pos *out, struct ha_err *e)
{
	out->n = 0;
	if (s == NULL)
		return 0;
	const char *p = s;
	skip_ws(&p);
	if (*p == '\0')
		return 0;
	for (;;) {
		uint64_t d, srv, seq;
		const char *at = p;
		skip_ws(&p);
		if (parse_num(&p, UINT32_MAX, &d) || *p++ != '-' ||
		    parse_num(&p, UINT32_MAX, &srv) || *p++ != '-' ||
		    parse_num(&p, UINT64_MAX, &seq))
			return ha_err_set(e, HA_EINVAL,
			                  "bad gtid at offset %zu: expected domain-server-seq",
			                  (size_t)(at - s));
		if (find(out, (uint32_t)d))
			return ha_err_set(e, HA_EINVAL, "gtid domain %llu appears twice",
			                  (unsigned long long)d);
		if (out->n == HA_GTID_MAX_DOMAINS)
			return ha_err_set(e, HA_EINVAL, "more than %d gtid domains",
			                  HA_GTID_MAX_DOMAINS);
		/* insert sorted by domain */
		size_t i = out->n;
		while (i > 0 && out->g[i - 1].domain > d) {
			out->g[i] = out->g[i - 1];
			i--;
		}
		out->g[i] = (struct ha_gtid){(uint32_t)d, (uint32_t)srv, seq};
		out->n++;
		skip_ws(&p);
		if (*p == '\0')
			return 0;
		if (*p != ',')
			return ha_err_set(e, HA_EINVAL, "bad gtid at offset %zu: expected ','",
			                  (size_t)(p - s));
		p++;
	}
}

size_t ha_gtid_format(const struct ha_gtid_pos *p, char *buf, size_t size)
{
	size_t len = 0;
	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < p->n; i++) {
		char one[64];
		int n = snprintf(one, sizeof(one), "%s%u-%u-%llu", i ? "," : "", p->g[i].domain,
		                 p->g[i].server, (unsigned long long)p->g[i].seq);
		if (len + (size_t)n < size)
			memcpy(buf + len, one, (size_t)n + 1);
		else if (size)
			buf[len < size ? len : size - 1] = '\0';
		len += (size_t)n;
	}
	return len;
}

int ha_gtid_contains(const struct ha_gtid_pos *outer, const struct ha_gtid_pos *inner)
{
	for (size_t i = 0; i < inner->n; i++) {
		if (inner->g[i].seq == 0)
			continue;
		const struct ha_gtid *o = find(outer, inner->g[i].domain);
		if (o == NULL || o->seq < inner->g[i].seq ||
		    (o->seq == inner->g[i].seq && o->server != inner->g[i].server))
			return 0;
	}
	return 1;
}

int ha_gtid_merge(const struct ha_gtid_pos *a, const struct ha_gtid_pos *b, struct ha_gtid_pos *out)
{
	struct ha_gtid_pos r = {0};
	size_t i = 0, j = 0;
	/* both sorted by domain, unique domains: one merge pass */
	while (i < a->n || j < b->n) {
		if (r.n == HA_GTID_MAX_DOMAINS)
			return HA_EINVAL;
		if (j >= b->n || (i < a->n && a->g[i].domain < b->g[j].domain)) {
			r.g[r.n++] = a->g[i++];
		} else if (i >= a->n || b->g[j].domain < a->g[i].domain) {
			r.g[r.n++] = b->g[j++];
		} else {
			r.g[r.n++] = b->g[j].seq > a->g[i].seq ? b->g[j] : a->g[i];
			i++;
			j++;
		}
	}
	*out = r;
	return 0;
}

const char *ha_gtid_brief(const char *text, char buf[HA_GTID_BRIEF_MAX])
{
	if (text == NULL || strlen(text) < 64)
		return text ? text : "";
	size_t domains = 1, first = strcspn(text, ",");
	for (const char *c = text; *c; c++)
		domains += *c == ',';
	if (first > 43) /* the longest entry: 10 + 1 + 10 + 1 + 20 */
		first = 43;
	snprintf(buf, HA_GTID_BRIEF_MAX, "%.*s,... (%zu domains)", (int)first, text, domains);
	return buf;
}

int ha_gtid_copy_text(char *buf, size_t size, const char *text)
{
	if (text == NULL)
		text = "";
	size_t len = strlen(text);
	if (len >= size) {
		if (size)
			buf[0] = '\0';
		return -1;
	}
	memcpy(buf, text, len + 1);
	return 0;
}

enum ha_gtid_cmp ha_gtid_compare(const struct ha_gtid_pos *a, const struct ha_gtid_pos *b)
{
	int a_in_b = ha_gtid_contains(b, a);
	int b_in_a = ha_gtid_contains(a, b);
	if (a_in_b && b_in_a)
		return HA_GTID_EQUAL;
	if (b_in_a)
		return HA_GTID_AHEAD;
	if (a_in_b)
		return HA_GTID_BEHIND;
	return HA_GTID_DIVERGED;
}

const char *ha_gtid_cmp_name(enum ha_gtid_cmp c)
{
	switch (c) {
	case HA_GTID_EQUAL:
		return "equal";
	case HA_GTID_AHEAD:
		return "ahead";
	case HA_GTID_BEHIND:
		return "behind";
	case HA_GTID_DIVERGED:
		return "diverged";
	}
	return "?";
}

size_t ha_gtid_missing_from(const struct ha_gtid_pos *a, const struct ha_gtid_pos *b,
                            struct ha_gtid_pos *missing, uint64_t from[HA_GTID_MAX_DOMAINS])
{
	missing->n = 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct ha_gtid *o = find(b, a->g[i].domain);
		uint64_t have = o ? o->seq : 0;
		bool other = o && o->seq == a->g[i].seq && o->server != a->g[i].server;
		if (a->g[i].seq > have || other) {
			if (from)
				from[missing->n] = other ? have : have + 1;
			missing->g[missing->n++] = a->g[i];
		}
	}
	return missing->n;
}

uint64_t ha_gtid_count_missing(const struct ha_gtid_pos *a, const struct ha_gtid_pos *b)
{
	uint64_t total = 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct ha_gtid *o = find(b, a->g[i].domain);
		uint64_t have = o ? o->seq : 0;
		uint64_t d = a->g[i].seq > have ? a->g[i].seq - have
		             : o && o->seq == a->g[i].seq && o->server != a->g[i].server ? 1
		                                                                         : 0;
		total = (total > UINT64_MAX - d) ? UINT64_MAX : total + d;
	}
	return total;
}

int ha_gtid_state_held(const char *state, uint32_t server, uint32_t except,
                       const struct ha_gtid_pos *pos, char *missing, size_t size)
{
	if (missing && size)
		missing[0] = '\0';
	for (const char *p = state ? state : ""; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char one[80];
		if (len >= sizeof(one))
			return HA_EINVAL;
		memcpy(one, p, len);
		one[len] = '\0';
		struct ha_gtid_pos e;
		if (ha_gtid_parse(one, &e, NULL) != 0 || e.n > 1)
			return HA_EINVAL;
		p += len + (comma ? 1 : 0);
		if (e.n == 0)
			continue;
		const struct ha_gtid *g = &e.g[0];
		bool mine = server ? g->server == server : g->server != except;
		if (mine && !ha_gtid_contains(pos, &e)) {
			if (missing && size)
				snprintf(missing, size, "%u-%u-%llu", g->domain, g->server,
				         (unsigned long long)g->seq);
			return 0;
		}
	}
	return 1;
}

int ha_gtid_state_has(const char *state, const struct ha_gtid *g)
{
	const char *p = state;
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\n')
			p++;
		if (!*p)
			break;
		char *end;
		unsigned long long d = strtoull(p, &end, 10);
		if (end == p || *end != '-')
			return HA_EINVAL;
		p = end + 1;
		unsigned long long s = strtoull(p, &end, 10);
		if (end == p || *end != '-')
			return HA_EINVAL;
		p = end + 1;
		unsigned long long n = strtoull(p, &end, 10);
		if (end == p || (*end && *end != ',' && *end != ' ' && *end != '\n'))
			return HA_EINVAL;
		p = end;
		if (d == g->domain && s == g->server && n >= g->seq)
			return 1;
	}
	return 0;
}

void ha_gtid_min(const struct ha_gtid_pos *a, const struct ha_gtid_pos *b, struct ha_gtid_pos *out)
{
	struct ha_gtid_pos r = {0};
	for (size_t i = 0; i < a->n; i++)
		for (size_t j = 0; j < b->n; j++)
			if (a->g[i].domain == b->g[j].domain)
				r.g[r.n++] = a->g[i].seq <= b->g[j].seq ? a->g[i] : b->g[j];
	*out = r;
}
