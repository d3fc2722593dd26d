/* s3tool: the S3 client and store (agent/backup/s3.h, store.h) from the command line, for
 * tests/integration/test_s3store.py and for measuring. Not installed.
 *
 *   s3tool --endpoint URL --bucket B [--prefix P] [--region R] [--credentials-file F]
 *          [--url-style path|virtual] [--timeout-ms N] [--connect-timeout-ms N]
 *          [--retries N] [--ca-file F] [--kind backups|archive] [--json] COMMAND ...
 *
 *   probe                          ha_s3_probe (what `haadm config check` will run)
 *   mkbucket                       PUT on the bucket (haagent never creates one)
 *   put KEY FILE | get KEY [--out FILE] | head KEY | delete KEY | list PREFIX [--page-size N]
 *                                  raw objects: KEY is the whole key in the bucket
 *   store-roundtrip N [--chunk-size BYTES] [--name NAME] [--node NODE] [--keep] [--threads T]
 *                                  begin, N random chunks, commit, list, read back (T threads
 *                                  at once) and compare, remove (not with --keep); times PUTs
 *                                  and GETs
 *   store-begin NODE NAME | store-put NODE NAME INDEX FILE | store-commit NODE NAME FILE |
 *   store-abort NODE NAME | store-clean NODE | store-list | store-get-chunk NAME INDEX |
 *   store-get-manifest NAME | store-remove NAME
 *
 * Environment (test hooks of struct ha_s3_conf): HA_S3_CLOCK_SKEW_S, seconds added to the clock
 * requests are signed with, to show the skewed-clock error; HA_S3_CONNECT_TO, curl's
 * CONNECT_TO ("::127.0.0.232:7482"), to try virtual-host URLs without DNS. Exit status: 0, or
 * the error's code (err.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "backup/s3.h"
#include "backup/store.h"
#include "common/buf.h"
#include "common/clock.h"

#define CHUNK_CAP ((8u << 20) + 24) /* a sealed chunk's largest size (HA_CHUNK_MAX + 24) */

struct tool {
	struct ha_s3_conf conf;
	char kind[16];
	bool json;
	const char *out;
	size_t chunk_size;
	const char *name, *node;
	bool keep;
	unsigned threads;   /* store-roundtrip's GETs at once */
	unsigned page_size; /* list: ListObjectsV2 pages of this many keys (0: 1000) */
	unsigned pages;
	struct ha_buf answer; /* the JSON answer (--json), one object */
	struct ha_json j;
};

static int read_file(const char *path, char **data, size_t *len, struct ha_err *e)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0)
		return ha_err_set(e, HA_EIO, "%s: %s", path, strerror(errno));
	struct ha_buf b = HA_BUF_INIT;
	char tmp[65536];
	ssize_t k;
	while ((k = read(fd, tmp, sizeof(tmp))) > 0 && b.len < (64u << 20))
		ha_buf_append(&b, tmp, (size_t)k);
	if (fd)
		close(fd);
	ha_buf_append(&b, "", 0);
	if (k < 0 || ha_buf_failed(&b) || b.len >= (64u << 20)) {
		ha_buf_free(&b);
		return ha_err_set(e, HA_EIO, "%s: cannot read it (64 MiB at most)", path);
	}
	*data = b.data;
	*len = b.len;
	return 0;
}

static int write_out(const char *path, const void *data, size_t len, struct ha_err *e)
{
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : 1;
	if (fd < 0)
		return ha_err_set(e, HA_EIO, "%s: %s", path, strerror(errno));
	const char *p = data;
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k <= 0)
			break;
		p += k;
		len -= (size_t)k;
	}
	if (path)
		close(fd);
	return len ? ha_err_set(e, HA_EIO, "write: %s", strerror(errno)) : 0;
}

/* ---- raw objects ---- */

static int on_key(void *arg, const char *key, uint64_t size, bool is_prefix)
{
	struct tool *t = arg;
	(void)is_prefix;
	if (!t->json) {
		printf("%s %llu\n", key, (unsigned long long)size);
		return 0;
	}
	ha_json_obj_begin(&t->j, NULL);
	ha_json_str(&t->j, "key", key);
	ha_json_uint(&t->j, "size", size);
	ha_json_obj_end(&t->j);
	return 0;
}

/* ListObjectsV2 page by page of t->page_size keys, the server's continuation tokens sent back
 * as they came (they hold '/', '+' and '=': encoded as signed); t->pages counts them. */
static int list_by_pages(struct tool *t, struct ha_s3 *s, const char *prefix, struct ha_err *e)
{
	char *token = NULL;
	int rc = 0;
	for (;;) {
		struct ha_s3_list_page p;
		if ((rc = ha_s3_list_page(s, prefix, NULL, token, t->page_size, &p, e)) != 0)
			break;
		t->pages++;
		for (size_t i = 0; i < p.n_objs; i++)
			on_key(t, p.objs[i].key, p.objs[i].size, false);
		free(token);
		token = p.truncated ? p.next_token : NULL;
		if (token)
			p.next_token = NULL;
		ha_s3_list_page_free(&p);
		if (token == NULL)
			break;
	}
	free(token);
	return rc;
}

static int raw(struct tool *t, struct ha_s3 *s, int argc, char **argv, struct ha_err *e)
{
	const char *cmd = argv[0];
	if (!strcmp(cmd, "mkbucket") && argc == 1)
		return ha_s3_create_bucket(s, e);
	if (!strcmp(cmd, "put") && argc == 3) {
		char *data;
		size_t len;
		int rc = read_file(argv[2], &data, &len, e);
		rc = rc ? rc : ha_s3_put(s, argv[1], data, len, e);
		free(data);
		return rc;
	}
	if (!strcmp(cmd, "get") && argc == 2) {
		char *data;
		size_t len;
		int rc = ha_s3_get_alloc(s, argv[1], 64u << 20, &data, &len, e);
		if (rc == 0 && (t->out || !t->json))
			rc = write_out(t->out, data, len, e);
		if (rc == 0)
			ha_json_uint(&t->j, "size", len);
		free(data);
		return rc;
	}
	if (!strcmp(cmd, "head") && argc == 2) {
		bool exists;
		uint64_t size;
		int rc = ha_s3_head(s, argv[1], &exists, &size, e);
		ha_json_bool(&t->j, "exists", exists);
		ha_json_uint(&t->j, "size", size);
		return rc;
	}
	if (!strcmp(cmd, "delete") && argc == 2)
		return ha_s3_delete(s, argv[1], e);
	if (!strcmp(cmd, "list") && argc == 2) {
		ha_json_arr_begin(&t->j, "objects");
		int rc = t->page_size ? list_by_pages(t, s, argv[1], e)
		                      : ha_s3_list(s, argv[1], NULL, on_key, t, e);
		ha_json_arr_end(&t->j);
		return rc;
	}
	return ha_err_set(e, HA_EUSAGE, "%s: unknown command or wrong arguments (see the source)",
	                  cmd);
}

/* ---- the store ---- */

static void names_field(struct tool *t, char **names, size_t n)
{
	ha_json_arr_begin(&t->j, "names");
	for (size_t i = 0; i < n; i++) {
		ha_json_str(&t->j, NULL, names[i]);
		if (!t->json)
			printf("%s\n", names[i]);
	}
	ha_json_arr_end(&t->j);
}

static bool listed(struct ha_store *st, const char *name, struct ha_err *e, int *rc)
{
	char **names = NULL;
	size_t n = 0;
	bool found = false;
	*rc = st->ops->list(st, &names, &n, e);
	for (size_t i = 0; *rc == 0 && i < n; i++)
		found |= strcmp(names[i], name) == 0;
	ha_store_names_free(names, n);
	return found;
}

/* The GET phase, by t->threads threads at once as the pipeline's restore workers do: chunks
 * taken in turn, each compared with what was written; the first error is kept. */
struct getters {
	struct ha_store *st;
	const char *name;
	const uint8_t *data;
	size_t cs;
	unsigned n;
	atomic_uint next;
	pthread_mutex_t mu;
	int rc;
	struct ha_err e;
};

static void *getter(void *arg)
{
	struct getters *g = arg;
	uint8_t *back = malloc(CHUNK_CAP);
	for (unsigned i; back && (i = atomic_fetch_add(&g->next, 1)) < g->n;) {
		size_t len = 0;
		struct ha_err e = {0};
		int rc = g->st->ops->get_chunk(g->st, g->name, i, back, CHUNK_CAP, &len, &e);
		if (rc == 0 && (len != g->cs || memcmp(back, g->data + (size_t)i * g->cs, g->cs)))
			rc = ha_err_set(&e, HA_EIO, "chunk %u: not what was written", i);
		pthread_mutex_lock(&g->mu);
		if (rc && g->rc == 0) {
			g->rc = rc;
			g->e = e;
		}
		pthread_mutex_unlock(&g->mu);
		if (rc)
			break;
	}
	if (back == NULL) {
		pthread_mutex_lock(&g->mu);
		g->rc = ha_err_set(&g->e, HA_ENOMEM, "out of memory");
		pthread_mutex_unlock(&g->mu);
	}
	free(back);
	return NULL;
}

static int get_all(struct tool *t, struct ha_store *st, const char *name, const uint8_t *data,
                   unsigned n, struct ha_err *e)
{
	struct getters g = {.st = st, .name = name, .data = data, .cs = t->chunk_size, .n = n};
	pthread_mutex_init(&g.mu, NULL);
	pthread_t th[64];
	unsigned k = t->threads < 1 ? 1 : t->threads > 64 ? 64 : t->threads;
	for (unsigned i = 0; i < k; i++)
		pthread_create(&th[i], NULL, getter, &g);
	for (unsigned i = 0; i < k; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&g.mu);
	if (g.rc)
		*e = g.e;
	return g.rc;
}

/* The round trip's steps in order, each timed or checked where it is. */
static int roundtrip(struct tool *t, struct ha_store *st, unsigned n, struct ha_err *e)
{
	const char *node = t->node ? t->node : "node1", *name = t->name ? t->name : "rt-000001";
	size_t cs = t->chunk_size;
	uint8_t *data = malloc((size_t)n * cs + 1);
	if (data == NULL || cs > CHUNK_CAP) {
		free(data);
		return ha_err_set(e, HA_EINVAL, "chunk size: %zu (at most %u)", cs, CHUNK_CAP);
	}
	for (size_t off = 0; off < cs * n;) {
		ssize_t k = getrandom(data + off, cs * n - off > 65536 ? 65536 : cs * n - off, 0);
		off += k > 0 ? (size_t)k : 0;
	}
	int rc = st->ops->begin(st, node, name, e);
	uint64_t t0 = ha_now_ms();
	for (unsigned i = 0; rc == 0 && i < n; i++)
		rc = st->ops->put_chunk(st, node, name, i, data + (size_t)i * cs, cs, e);
	uint64_t t1 = ha_now_ms();
	char manifest[64];
	snprintf(manifest, sizeof(manifest), "roundtrip %u x %zu\n", n, cs);
	if (rc == 0)
		rc = st->ops->commit(st, node, name, manifest, strlen(manifest), e);
	if (rc == 0 && !listed(st, name, e, &rc) && rc == 0)
		rc = ha_err_set(e, HA_EIO, "%s committed but not listed", name);
	uint64_t t2 = ha_now_ms();
	if (rc == 0)
		rc = get_all(t, st, name, data, n, e);
	uint64_t t3 = ha_now_ms();
	char *text = NULL;
	size_t tlen = 0;
	if (rc == 0 && (rc = st->ops->get_manifest(st, name, &text, &tlen, e)) == 0 &&
	    (tlen != strlen(manifest) || memcmp(text, manifest, tlen) != 0))
		rc = ha_err_set(e, HA_EIO, "the manifest is not what was written");
	free(text);
	if (rc == 0 && !t->keep && (rc = st->ops->remove(st, name, e)) == 0 &&
	    listed(st, name, e, &rc) && rc == 0)
		rc = ha_err_set(e, HA_EIO, "%s removed but still listed", name);
	if (rc != 0)
		st->ops->abort(st, node, name);
	double mib = (double)cs * n / (1 << 20);
	ha_json_str(&t->j, "name", name);
	ha_json_uint(&t->j, "chunks", n);
	ha_json_uint(&t->j, "threads", t->threads);
	ha_json_uint(&t->j, "bytes", (uint64_t)cs * n);
	ha_json_double(&t->j, "put_s", (double)(t1 - t0) / 1000);
	ha_json_double(&t->j, "get_s", (double)(t3 - t2) / 1000);
	ha_json_double(&t->j, "put_mib_s", t1 > t0 ? mib * 1000 / (double)(t1 - t0) : 0);
	ha_json_double(&t->j, "get_mib_s", t3 > t2 ? mib * 1000 / (double)(t3 - t2) : 0);
	if (!t->json)
		printf("%u chunks of %zu bytes: PUT %.1f MiB/s, GET %.1f MiB/s\n", n, cs,
		       t1 > t0 ? mib * 1000 / (double)(t1 - t0) : 0,
		       t3 > t2 ? mib * 1000 / (double)(t3 - t2) : 0);
	free(data);
	return rc;
}

static unsigned long num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	return *s && !*end ? v : (unsigned long)-1;
}

static int store_cmd(struct tool *t, struct ha_store *st, int argc, char **argv, struct ha_err *e)
{
	const char *cmd = argv[0];
	if (!strcmp(cmd, "store-roundtrip") && argc == 2 && num(argv[1]) <= 100000)
		return roundtrip(t, st, (unsigned)num(argv[1]), e);
	if (!strcmp(cmd, "store-begin") && argc == 3)
		return st->ops->begin(st, argv[1], argv[2], e);
	if ((!strcmp(cmd, "store-put") && argc == 5) ||
	    (!strcmp(cmd, "store-commit") && argc == 4)) {
		char *data;
		size_t len;
		int rc = read_file(argv[argc - 1], &data, &len, e);
		if (rc == 0)
			rc = argc == 5 ? st->ops->put_chunk(st, argv[1], argv[2], num(argv[3]),
			                                    (uint8_t *)data, len, e)
			               : st->ops->commit(st, argv[1], argv[2], data, len, e);
		free(data);
		return rc;
	}
	if (!strcmp(cmd, "store-abort") && argc == 3) {
		st->ops->abort(st, argv[1], argv[2]);
		return 0;
	}
	if (!strcmp(cmd, "store-clean") && argc == 2) {
		st->ops->clean(st, argv[1]);
		return 0;
	}
	if (!strcmp(cmd, "store-list") && argc == 1) {
		char **names = NULL;
		size_t n = 0;
		int rc = st->ops->list(st, &names, &n, e);
		if (rc == 0)
			names_field(t, names, n);
		ha_store_names_free(names, n);
		return rc;
	}
	if (!strcmp(cmd, "store-get-chunk") && argc == 3) {
		uint8_t *buf = malloc(CHUNK_CAP);
		size_t len = 0;
		int rc =
		    buf ? st->ops->get_chunk(st, argv[1], num(argv[2]), buf, CHUNK_CAP, &len, e)
		        : ha_err_set(e, HA_ENOMEM, "out of memory");
		if (rc == 0 && (t->out || !t->json))
			rc = write_out(t->out, buf, len, e);
		if (rc == 0)
			ha_json_uint(&t->j, "size", len);
		free(buf);
		return rc;
	}
	if (!strcmp(cmd, "store-get-manifest") && argc == 2) {
		char *text = NULL;
		size_t len = 0;
		int rc = st->ops->get_manifest(st, argv[1], &text, &len, e);
		if (rc == 0 && (t->out || !t->json))
			rc = write_out(t->out, text, len, e);
		if (rc == 0)
			ha_json_str(&t->j, "manifest", text);
		free(text);
		return rc;
	}
	if (!strcmp(cmd, "store-remove") && argc == 2)
		return st->ops->remove(st, argv[1], e);
	return ha_err_set(e, HA_EUSAGE, "%s: unknown command or wrong arguments (see the source)",
	                  cmd);
}

static void stats(struct tool *t, struct ha_s3 *s)
{
	struct ha_s3_stats st;
	ha_s3_get_stats(s, &st);
	ha_json_uint(&t->j, "requests", st.requests);
	ha_json_uint(&t->j, "retries", st.retries);
}

static int run(struct tool *t, int argc, char **argv, struct ha_err *e)
{
	int rc = ha_s3_conf_check(&t->conf, e);
	if (rc)
		return rc;
	if (!strcmp(argv[0], "probe"))
		return ha_s3_probe(&t->conf, e);
	if (!strncmp(argv[0], "store-", 6)) {
		struct ha_store st;
		if ((rc = ha_store_s3_init(&st, &t->conf, t->kind, e)) != 0)
			return rc;
		rc = store_cmd(t, &st, argc, argv, e);
		stats(t, ha_store_s3_client(&st));
		ha_store_free(&st);
		return rc;
	}
	struct ha_s3 *s;
	if ((rc = ha_s3_open(&t->conf, &s, e)) != 0)
		return rc;
	rc = raw(t, s, argc, argv, e);
	if (t->pages)
		ha_json_uint(&t->j, "pages", t->pages);
	stats(t, s);
	ha_s3_close(s);
	return rc;
}

static int options(struct tool *t, int argc, char **argv, struct ha_err *e)
{
	static const struct option opts[] = {{"endpoint", 1, 0, 'E'},
	                                     {"bucket", 1, 0, 'b'},
	                                     {"prefix", 1, 0, 'p'},
	                                     {"region", 1, 0, 'r'},
	                                     {"credentials-file", 1, 0, 'c'},
	                                     {"url-style", 1, 0, 'u'},
	                                     {"timeout-ms", 1, 0, 't'},
	                                     {"connect-timeout-ms", 1, 0, 'T'},
	                                     {"retries", 1, 0, 'R'},
	                                     {"ca-file", 1, 0, 'a'},
	                                     {"kind", 1, 0, 'k'},
	                                     {"json", 0, 0, 'j'},
	                                     {"out", 1, 0, 'o'},
	                                     {"chunk-size", 1, 0, 's'},
	                                     {"name", 1, 0, 'n'},
	                                     {"node", 1, 0, 'N'},
	                                     {"keep", 0, 0, 'K'},
	                                     {"threads", 1, 0, 'P'},
	                                     {"page-size", 1, 0, 'S'},
	                                     {0, 0, 0, 0}};
	static const struct {
		int opt;
		const char *key;
	} keys[] = {{'E', "endpoint"},         {'b', "bucket"},
	            {'p', "prefix"},           {'r', "region"},
	            {'c', "credentials_file"}, {'u', "url_style"},
	            {'t', "timeout_ms"},       {'T', "connect_timeout_ms"},
	            {'R', "retries"},          {'a', "ca_file"}};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		bool done = false;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !done; i++)
			if (keys[i].opt == c) {
				if (ha_s3_conf_set(&t->conf, keys[i].key, optarg, e))
					return HA_EUSAGE;
				done = true;
			}
		if (done)
			continue;
		switch (c) {
		case 'k':
			snprintf(t->kind, sizeof(t->kind), "%s", optarg);
			break;
		case 'j':
			t->json = true;
			break;
		case 'o':
			t->out = optarg;
			break;
		case 's':
			t->chunk_size = num(optarg);
			break;
		case 'n':
			t->name = optarg;
			break;
		case 'N':
			t->node = optarg;
			break;
		case 'K':
			t->keep = true;
			break;
		case 'P':
			t->threads = (unsigned)num(optarg);
			break;
		case 'S':
			t->page_size = (unsigned)num(optarg);
			break;
		default:
			return ha_err_set(e, HA_EUSAGE, "unknown option (see the source)");
		}
	}
	return optind < argc ? 0 : ha_err_set(e, HA_EUSAGE, "no command (see the source)");
}

int main(int argc, char **argv)
{
	struct tool t = {.chunk_size = 1u << 20, .threads = 1, .answer = HA_BUF_INIT};
	struct ha_err e = {0};
	ha_json_init(&t.j, &t.answer, false);
	ha_json_obj_begin(&t.j, NULL);
	ha_s3_conf_init(&t.conf);
	snprintf(t.kind, sizeof(t.kind), "backups");
	const char *skew = getenv("HA_S3_CLOCK_SKEW_S");
	if (skew)
		t.conf.clock_skew_s = strtol(skew, NULL, 10);
	const char *to = getenv("HA_S3_CONNECT_TO");
	if (to)
		snprintf(t.conf.connect_to, sizeof(t.conf.connect_to), "%s", to);
	int rc = options(&t, argc, argv, &e);
	if (rc == 0)
		rc = run(&t, argc - optind, argv + optind, &e);
	ha_json_bool(&t.j, "ok", rc == 0);
	ha_json_int(&t.j, "code", ha_exit_code(rc));
	if (rc)
		ha_json_str(&t.j, "error", e.msg);
	ha_json_obj_end(&t.j);
	if (t.json)
		printf("%s\n", ha_buf_cstr(&t.answer));
	else if (rc)
		fprintf(stderr, "s3tool: %s\n", e.msg);
	ha_buf_free(&t.answer);
	return ha_exit_code(rc);
}
