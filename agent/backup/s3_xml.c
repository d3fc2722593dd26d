#include "s3_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"

/* ---- a small XML walker: elements and their text, nothing else ----
 *
 * Enough for what S3 sends (elements, text, the five entities, character references, an XML
 * declaration, comments, CDATA) and strict about the rest: one root, tags that match, a
 * bounded depth and text. Attributes are skipped (S3 puts only xmlns there). */

struct walker {
	const char *p;
	size_t len, i;
	struct {
		const char *name;
		size_t n;
	} stack[HA_S3_XML_DEPTH_MAX];
	int depth;
	struct ha_buf text; /* the innermost open element's text, decoded */
	bool root_done;
	/* depth: 1 for the root. A nonzero return stops the walk (the callback set err). */
	int (*open)(void *arg, int depth, const char *name, size_t n);
	int (*close)(void *arg, int depth, const char *name, size_t n, const char *text,
	             size_t tlen);
	void *arg;
	char err[200];
};

static int fail(struct walker *w, const char *what)
{
	snprintf(w->err, sizeof(w->err), "%s (at byte %zu)", what, w->i);
	return HA_EPROTO;
}

static bool space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool name_char(unsigned char c, bool first)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80)
		return true;
	return !first && ((c >= '0' && c <= '9') || c == '-' || c == '.');
}

/* The name at w->i; 0 when there is none. */
static size_t scan_name(struct walker *w)
{
	size_t n = 0;
	while (w->i + n < w->len && name_char((unsigned char)w->p[w->i + n], n == 0))
		n++;
	return n;
}

static void utf8(struct ha_buf *b, unsigned long cp)
{
	unsigned char o[4];
	size_t n;
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		o[0] = (unsigned char)(0xf0 | (cp >> 18));
		o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	ha_buf_append(b, o, n);
}

/* "&...;" at w->i, decoded into the text. A NUL (&#0;), a surrogate or an unknown entity is
 * refused: a key holding one would not be the key S3 keeps. */
static int entity(struct walker *w)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
	const char *s = w->p + w->i + 1;
	const char *end = memchr(s, ';', w->len - w->i - 1 < 12 ? w->len - w->i - 1 : 12);
	if (end == NULL)
		return fail(w, "an '&' that starts no entity");
	size_t n = (size_t)(end - s);
	w->i += n + 2;
	for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++)
		if (strlen(named[k].name) == n && memcmp(s, named[k].name, n) == 0) {
			ha_buf_append(&w->text, &named[k].c, 1);
			return 0;
		}
	if (n < 2 || s[0] != '#')
		return fail(w, "an unknown entity");
	bool hexa = s[1] == 'x';
	unsigned long cp = 0;
	size_t k = hexa ? 2 : 1;
	if (k == n)
		return fail(w, "an empty character reference");
	for (; k < n; k++) {
		char c = s[k];
		int d = c >= '0' && c <= '9'           ? c - '0'
		        : hexa && c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : hexa && c >= 'A' && c <= 'F' ? c - 'A' + 10
		                                       : -1;
		if (d < 0)
			return fail(w, "a malformed character reference");
		cp = cp * (hexa ? 16 : 10) + (unsigned long)d; /* 10 digits at most: no overflow */
	}
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return fail(w, "a character reference to no character (or NUL)");
	utf8(&w->text, cp);
	return 0;
}

static int text_run(struct walker *w)
{
	while (w->i < w->len && w->p[w->i] != '<') {
		char c = w->p[w->i];
		if (w->depth == 0) {
			if (!space(c))
				return fail(w, "text outside the root element");
			w->i++;
			continue;
		}
		if (c == '&') {
			int rc = entity(w);
			if (rc)
				return rc;
		} else {
			ha_buf_append(&w->text, &c, 1);
			w->i++;
		}
		if (w->text.len > HA_S3_XML_TEXT_MAX)
			return fail(w, "an element's text is too long");
	}
	return ha_buf_failed(&w->text) ? HA_ENOMEM : 0;
}

/* "<?...?>", "<!--...-->", "<![CDATA[...]]>" at w->i: skipped (CDATA kept as text). */
static int special(struct walker *w)
{
	const char *s = w->p + w->i;
	size_t left = w->len - w->i;
	const char *open = s[1] == '?' ? "<?" : "<!--";
	const char *close = s[1] == '?' ? "?>" : "-->";
	bool cdata = left >= 9 && memcmp(s, "<![CDATA[", 9) == 0;
	if (cdata) {
		open = "<![CDATA[";
		close = "]]>";
	} else if (s[1] == '!' && (left < 4 || memcmp(s, "<!--", 4) != 0))
		return fail(w, "a DOCTYPE or declaration (refused)");
	size_t ol = strlen(open);
	const char *end = memmem(s + ol, left - ol, close, strlen(close));
	if (end == NULL)
		return fail(w, "cut short inside a comment, declaration or CDATA");
	if (cdata) {
		if (w->depth == 0)
			return fail(w, "CDATA outside the root element");
		ha_buf_append(&w->text, s + ol, (size_t)(end - s - ol));
		if (w->text.len > HA_S3_XML_TEXT_MAX)
			return fail(w, "an element's text is too long");
	}
	w->i = (size_t)(end - w->p) + strlen(close);
	return 0;
}

static int end_tag(struct walker *w)
{
	w->i += 2;
	size_t n = scan_name(w);
	const char *name = w->p + w->i;
	w->i += n;
	while (w->i < w->len && space(w->p[w->i]))
		w->i++;
	if (w->i >= w->len || w->p[w->i] != '>')
		return fail(w, "a malformed end tag");
	w->i++;
	if (w->depth == 0 || w->stack[w->depth - 1].n != n ||
	    memcmp(w->stack[w->depth - 1].name, name, n) != 0)
		return fail(w, "an end tag that closes no open element");
	int rc = w->close(w->arg, w->depth, name, n, ha_buf_cstr(&w->text), w->text.len);
	w->depth--;
	if (w->depth == 0)
		w->root_done = true;
	ha_buf_reset(&w->text);
	return rc ? HA_EPROTO : 0;
}

/* Attributes up to '>' or "/>"; *empty for the latter. Values are skipped, quotes honoured. */
static int attributes(struct walker *w, bool *empty)
{
	for (;;) {
		while (w->i < w->len && space(w->p[w->i]))
			w->i++;
		if (w->i >= w->len)
			return fail(w, "cut short inside a tag");
		char c = w->p[w->i];
		if (c == '>' || (c == '/' && w->i + 1 < w->len && w->p[w->i + 1] == '>')) {
			*empty = c == '/';
			w->i += *empty ? 2 : 1;
			return 0;
		}
		size_t n = scan_name(w);
		w->i += n;
		while (w->i < w->len && space(w->p[w->i]))
			w->i++;
		if (n == 0 || w->i + 1 >= w->len || w->p[w->i] != '=')
			return fail(w, "a malformed attribute");
		w->i++;
		while (w->i < w->len && space(w->p[w->i]))
			w->i++;
		char q = w->i < w->len ? w->p[w->i] : 0;
		const char *end =
		    q == '"' || q == '\'' ? memchr(w->p + w->i + 1, q, w->len - w->i - 1) : NULL;
		if (end == NULL || memchr(w->p + w->i, '<', (size_t)(end - w->p) - w->i) != NULL)
			return fail(w, "a malformed attribute value");
		w->i = (size_t)(end - w->p) + 1;
	}
}

static int start_tag(struct walker *w)
{
	w->i++;
	size_t n = scan_name(w);
	if (n == 0)
		return fail(w, "a '<' that starts no tag");
	if (w->root_done)
		return fail(w, "a second root element");
	if (w->depth == HA_S3_XML_DEPTH_MAX)
		return fail(w, "nested too deep");
	const char *name = w->p + w->i;
	w->i += n;
	bool empty = false;
	int rc = attributes(w, &empty);
	if (rc)
		return rc;
	w->stack[w->depth].name = name;
	w->stack[w->depth].n = n;
	w->depth++;
	ha_buf_reset(&w->text);
	if (w->open(w->arg, w->depth, name, n))
		return HA_EPROTO;
	if (!empty)
		return 0;
	rc = w->close(w->arg, w->depth, name, n, "", 0);
	if (--w->depth == 0)
		w->root_done = true;
	return rc ? HA_EPROTO : 0;
}

static int walk_all(struct walker *w)
{
	if (memchr(w->p, '\0', w->len) != NULL)
		return fail(w, "a NUL byte");
	if (w->len >= 3 && memcmp(w->p, "\xef\xbb\xbf", 3) == 0)
		w->i = 3; /* a byte order mark */
	while (w->i < w->len) {
		int rc = text_run(w);
		if (rc || w->i >= w->len)
			return rc;
		const char *s = w->p + w->i;
		size_t left = w->len - w->i;
		if (left >= 2 && (s[1] == '?' || s[1] == '!'))
			rc = special(w);
		else if (left >= 2 && s[1] == '/')
			rc = end_tag(w);
		else
			rc = start_tag(w);
		if (rc)
			return rc;
	}
	return 0;
}

/* 0, or HA_EPROTO/HA_ENOMEM with e set ("what: why"). */
static int walk(struct walker *w, const char *what, struct ha_err *e)
{
	int rc = walk_all(w);
	if (rc == 0 && (w->depth > 0 || !w->root_done))
		rc = fail(w, w->depth > 0 ? "cut short" : "no element");
	if (rc == 0 && ha_buf_failed(&w->text))
		rc = HA_ENOMEM;
	ha_buf_free(&w->text);
	if (rc == HA_ENOMEM)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	return rc ? ha_err_set(e, HA_EPROTO, "%s: %s", what, w->err) : 0;
}

/* The name without its namespace prefix is want. */
static bool is(const char *name, size_t n, const char *want)
{
	const char *colon = memrchr(name, ':', n);
	if (colon) {
		n -= (size_t)(colon + 1 - name);
		name = colon + 1;
	}
	return strlen(want) == n && memcmp(name, want, n) == 0;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* ---- ListObjectsV2 ---- */

struct list_st {
	struct walker *w;
	struct ha_s3_list_page *page;
	size_t cap_objs, cap_prefixes;
	int section; /* 1: in <Contents>, 2: in <CommonPrefixes> */
	char *key;
	uint64_t size;
};

static int list_fail(struct list_st *st, const char *what)
{
	fail(st->w, what);
	return -1;
}

static int list_open(void *arg, int depth, const char *name, size_t n)
{
	struct list_st *st = arg;
	if (depth == 1 && !is(name, n, "ListBucketResult"))
		return list_fail(st, "not a ListBucketResult");
	if (depth == 2) {
		st->section = is(name, n, "Contents") ? 1 : is(name, n, "CommonPrefixes") ? 2 : 0;
		free(st->key);
		st->key = NULL;
		st->size = 0;
	}
	return 0;
}

/* A key or prefix as S3 allows it: 1 to HA_S3_KEY_MAX bytes (the walker let no NUL through). */
static int take_key(struct list_st *st, const char *text, size_t tlen)
{
	if (tlen == 0 || tlen > HA_S3_KEY_MAX)
		return list_fail(st, "a key that is empty or longer than 1024 bytes");
	if (st->key)
		return list_fail(st, "an entry with two keys");
	st->key = strndup(text, tlen);
	return st->key ? 0 : list_fail(st, "out of memory");
}

static int push_entry(struct list_st *st)
{
	struct ha_s3_list_page *p = st->page;
	if (st->key == NULL)
		return list_fail(st, st->section == 1 ? "<Contents> without a <Key>"
		                                      : "<CommonPrefixes> without a <Prefix>");
	if (p->n_objs + p->n_prefixes >= HA_S3_LIST_PAGE_MAX)
		return list_fail(st, "more entries than a page holds");
	bool obj = st->section == 1;
	size_t *cap = obj ? &st->cap_objs : &st->cap_prefixes;
	size_t n = obj ? p->n_objs : p->n_prefixes;
	if (n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		void *grown = obj ? realloc(p->objs, ncap * sizeof(*p->objs))
		                  : realloc(p->prefixes, ncap * sizeof(*p->prefixes));
		if (grown == NULL)
			return list_fail(st, "out of memory");
		if (obj)
			p->objs = grown;
		else
			p->prefixes = grown;
		*cap = ncap;
	}
	if (obj)
		p->objs[p->n_objs++] = (struct ha_s3_object){st->key, st->size};
	else
		p->prefixes[p->n_prefixes++] = st->key;
	st->key = NULL;
	return 0;
}

static int list_close(void *arg, int depth, const char *name, size_t n, const char *text,
                      size_t tlen)
{
	struct list_st *st = arg;
	struct ha_s3_list_page *p = st->page;
	if (depth == 3 && st->section == 1 && is(name, n, "Key"))
		return take_key(st, text, tlen);
	if (depth == 3 && st->section == 1 && is(name, n, "Size"))
		return parse_u64(text, tlen, &st->size) ? list_fail(st, "a malformed <Size>") : 0;
	if (depth == 3 && st->section == 2 && is(name, n, "Prefix"))
		return take_key(st, text, tlen);
	if (depth == 2 && st->section) {
		int rc = push_entry(st);
		st->section = 0;
		return rc;
	}
	if (depth == 2 && is(name, n, "IsTruncated")) {
		if (strcmp(text, "true") && strcmp(text, "false"))
			return list_fail(st, "<IsTruncated> neither true nor false");
		p->truncated = text[0] == 't';
	}
	if (depth == 2 && is(name, n, "NextContinuationToken")) {
		if (p->next_token || tlen == 0)
			return list_fail(st, "an empty or second <NextContinuationToken>");
		if ((p->next_token = strndup(text, tlen)) == NULL)
			return list_fail(st, "out of memory");
	}
	return 0;
}

void ha_s3_list_page_free(struct ha_s3_list_page *page)
{
	for (size_t i = 0; i < page->n_objs; i++)
		free(page->objs[i].key);
	for (size_t i = 0; i < page->n_prefixes; i++)
		free(page->prefixes[i]);
	free(page->objs);
	free(page->prefixes);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

int ha_s3_list_forward(struct ha_s3_list_cursor *cur, const struct ha_s3_list_page *page,
                       struct ha_err *e)
{
	const char *lo = NULL, *hi = NULL;
	for (size_t i = 0; i < page->n_objs + page->n_prefixes; i++) {
		const char *k =
		    i < page->n_objs ? page->objs[i].key : page->prefixes[i - page->n_objs];
		if (lo == NULL || strcmp(k, lo) < 0)
			lo = k;
		if (hi == NULL || strcmp(k, hi) > 0)
			hi = k;
	}
	if (lo == NULL) {
		if (page->truncated && ++cur->n_empty > HA_S3_LIST_EMPTY_MAX)
			return ha_err_set(e, HA_EPROTO,
			                  "the listing makes no progress (%u truncated pages in a "
			                  "row without a key)",
			                  cur->n_empty);
		return 0;
	}
	cur->n_empty = 0;
	if (cur->last && strcmp(lo, cur->last) <= 0)
		return ha_err_set(e, HA_EPROTO,
		                  "the listing goes back ('%.200s' after '%.200s'): the server "
		                  "repeats its pages",
		                  lo, cur->last);
	char *copy = strdup(hi);
	if (copy == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	free(cur->last);
	cur->last = copy;
	return 0;
}

void ha_s3_list_cursor_free(struct ha_s3_list_cursor *cur)
{
	free(cur->last);
	cur->last = NULL;
	cur->n_empty = 0;
}

int ha_s3_xml_list(const char *xml, size_t len, struct ha_s3_list_page *page, struct ha_err *e)
{
	memset(page, 0, sizeof(*page));
	struct walker w = {.p = xml, .len = len, .open = list_open, .close = list_close};
	struct list_st st = {.w = &w, .page = page};
	w.arg = &st;
	int rc = walk(&w, "the bucket listing", e);
	free(st.key);
	if (rc == 0 && page->truncated && page->next_token == NULL)
		rc = ha_err_set(e, HA_EPROTO,
		                "the bucket listing: truncated without a continuation token");
	if (rc)
		ha_s3_list_page_free(page);
	return rc;
}

/* ---- error bodies ---- */

/* text into a field of size bytes; longer: cut with "..." when cut_ok, else left empty */
static void field(char *dst, size_t size, const char *text, size_t tlen, bool cut_ok)
{
	if (tlen < size) {
		memcpy(dst, text, tlen);
		dst[tlen] = '\0';
	} else if (cut_ok && size > 4) {
		snprintf(dst, size, "%.*s...", (int)(size - 4), text);
	} else {
		dst[0] = '\0';
	}
}

struct error_st {
	struct walker *w;
	struct ha_s3_error *out;
	const char *root; /* "Error" or "DeleteResult" */
	size_t failed;    /* DeleteResult: <Error> elements */
	struct ha_s3_error cur;
};

static int error_open(void *arg, int depth, const char *name, size_t n)
{
	struct error_st *st = arg;
	if (depth == 1 && !is(name, n, st->root)) {
		fail(st->w, "not the element expected");
		return -1;
	}
	return 0;
}

static void error_field(struct ha_s3_error *o, const char *name, size_t n, const char *text,
                        size_t tlen)
{
	if (is(name, n, "Code"))
		field(o->code, sizeof(o->code), text, tlen, false);
	else if (is(name, n, "Message"))
		field(o->message, sizeof(o->message), text, tlen, true);
	else if (is(name, n, "RequestId"))
		field(o->request_id, sizeof(o->request_id), text, tlen, false);
	else if (is(name, n, "Region"))
		field(o->region, sizeof(o->region), text, tlen, false);
	else if (is(name, n, "RequestTime"))
		field(o->request_time, sizeof(o->request_time), text, tlen, false);
	else if (is(name, n, "ServerTime"))
		field(o->server_time, sizeof(o->server_time), text, tlen, false);
	else if (is(name, n, "Endpoint"))
		field(o->endpoint, sizeof(o->endpoint), text, tlen, false);
	else if (is(name, n, "Key"))
		field(o->key, sizeof(o->key), text, tlen, false);
}

static int error_close(void *arg, int depth, const char *name, size_t n, const char *text,
                       size_t tlen)
{
	struct error_st *st = arg;
	if (depth == 2 && strcmp(st->root, "Error") == 0)
		error_field(st->out, name, n, text, tlen);
	if (depth == 3 && strcmp(st->root, "DeleteResult") == 0)
		error_field(&st->cur, name, n, text, tlen);
	if (depth == 2 && strcmp(st->root, "DeleteResult") == 0 && is(name, n, "Error")) {
		if (st->failed++ == 0)
			*st->out = st->cur;
		memset(&st->cur, 0, sizeof(st->cur));
	}
	return 0;
}

int ha_s3_xml_error(const char *xml, size_t len, struct ha_s3_error *out)
{
	memset(out, 0, sizeof(*out));
	struct walker w = {.p = xml, .len = len, .open = error_open, .close = error_close};
	struct error_st *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return HA_ENOMEM;
	st->w = &w;
	st->out = out;
	st->root = "Error";
	w.arg = st;
	int rc = walk(&w, "error body", NULL);
	free(st);
	if (rc == 0 && out->code[0] == '\0')
		rc = HA_EPROTO;
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

int ha_s3_xml_delete_result(const char *xml, size_t len, size_t *n_failed,
                            struct ha_s3_error *first)
{
	memset(first, 0, sizeof(*first));
	*n_failed = 0;
	struct walker w = {.p = xml, .len = len, .open = error_open, .close = error_close};
	struct error_st *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return HA_ENOMEM;
	st->w = &w;
	st->out = first;
	st->root = "DeleteResult";
	w.arg = st;
	int rc = walk(&w, "delete result", NULL);
	*n_failed = st->failed;
	free(st);
	return rc;
}
