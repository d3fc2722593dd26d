#include "parse.h"

#include <stdlib.h>
#include <string.h>

#define END_OF_HEADERS "\r\n\r\n"

int ha_http_parse(const char *buf, size_t len, size_t *scanned, struct ha_http_req *req)
{
	memset(req, 0, sizeof(*req));
	size_t n = len < HA_HTTP_MAX_REQUEST ? len : HA_HTTP_MAX_REQUEST;
	/* an end of headers can straddle the previous search's last 3 bytes */
	size_t from = scanned && *scanned > 3 ? *scanned - 3 : 0;
	if (from > n)
		from = 0; /* not the buffer of the last call: search all of it */
	if (memmem(buf + from, n - from, END_OF_HEADERS, 4) == NULL) {
		if (scanned)
			*scanned = n;
		return len >= HA_HTTP_MAX_REQUEST ? HA_HTTP_BAD : HA_HTTP_MORE;
	}
	/* request line: METHOD SP TARGET SP HTTP/1.x CRLF, printable ASCII only (the end of
	 * headers is within n, so there is a CR before it, followed by a byte) */
	const char *eol = memchr(buf, '\r', n);
	if (eol[1] != '\n')
		return HA_HTTP_BAD;
	const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
	if (sp1 == NULL || sp1 == buf)
		return HA_HTTP_BAD;
	const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (sp2 == NULL || sp2 == sp1 + 1)
		return HA_HTTP_BAD;
	for (const char *p = buf; p < eol; p++)
		if ((unsigned char)*p <= 0x20 && *p != ' ')
			return HA_HTTP_BAD;
		else if ((unsigned char)*p >= 0x7f)
			return HA_HTTP_BAD;
	size_t vlen = (size_t)(eol - sp2 - 1);
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
		return HA_HTTP_BAD;
	size_t mlen = (size_t)(sp1 - buf);
	if (mlen >= sizeof(req->method))
		return HA_HTTP_METHOD;
	memcpy(req->method, buf, mlen);
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
		return HA_HTTP_METHOD;
	const char *target = sp1 + 1;
	size_t tlen = (size_t)(sp2 - target);
	if (target[0] != '/')
		return HA_HTTP_BAD;
	const char *q = memchr(target, '?', tlen);
	size_t plen = q ? (size_t)(q - target) : tlen;
	size_t qlen = q ? tlen - plen - 1 : 0;
	if (plen >= sizeof(req->path) || qlen >= sizeof(req->query))
		return HA_HTTP_BAD;
	memcpy(req->path, target, plen);
	if (q)
		memcpy(req->query, q + 1, qlen);
	return HA_HTTP_COMPLETE;
}

bool ha_http_query_uint(const char *query, const char *key, unsigned *out, bool *bad)
{
	size_t klen = strlen(key);
	*bad = false;
	for (const char *p = query; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			const char *v = p + klen + 1;
			size_t vlen = len - klen - 1;
			unsigned long x = 0;
			if (vlen == 0 || vlen > 10) {
				*bad = true;
				return true;
			}
			for (size_t i = 0; i < vlen; i++) {
				if (v[i] < '0' || v[i] > '9') {
					*bad = true;
					return true;
				}
				x = x * 10 + (unsigned long)(v[i] - '0');
			}
			if (x > 1000000000UL) {
				*bad = true;
				return true;
			}
			*out = (unsigned)x;
			return true;
		}
		p = amp ? amp + 1 : NULL;
	}
	return false;
}
