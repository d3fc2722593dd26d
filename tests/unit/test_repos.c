/* Several repositories (backup/repos.h, copy.h) over two directory repositories: reads fall
 * back to the next repository's copy when one is damaged, the manifest included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup/chunk.h"
#include "backup/copy.h"
#include "backup/fsutil.h"
#include "backup/manifest.h"
#include "backup/pipeline.h"
#include "backup/repos.h"
#include "config.h"

#define NAME "000007-full-t"

struct fixture {
	char dir[64];
	struct ha_config *cfg;
	struct ha_repos rs;
	uint8_t key[HA_KEY_LEN];
	struct ha_buf manifest;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/ha-test-repos-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->cfg = calloc(1, sizeof(*f->cfg));
	assert_non_null(f->cfg);
	const char *names[2] = {"local", "offsite"};
	for (int i = 0; i < 2; i++) {
		struct ha_repo_conf *r = &f->cfg->repos[i];
		snprintf(r->name, sizeof(r->name), "%s", names[i]);
		snprintf(r->type, sizeof(r->type), "dir");
		snprintf(r->path, sizeof(r->path), "%s/%s", f->dir, names[i]);
		assert_int_equal(mkdir(r->path, 0700), 0);
	}
	f->cfg->n_repos = 2;
	struct ha_err e = {0};
	assert_int_equal(ha_repos_open(&f->rs, f->cfg, &e), 0);
	memset(f->key, 5, sizeof(f->key));
	/* a backup's manifest (its chunks are not read here), written to both */
	struct ha_manifest m;
	memset(&m, 0, sizeof(m));
	m.id = 7;
	snprintf(m.name, sizeof(m.name), NAME);
	snprintf(m.type, sizeof(m.type), "full");
	snprintf(m.wrapped_key, sizeof(m.wrapped_key), "%0120d", 0);
	m.server_id = 1;
	memset(m.instance, 'c', 32);
	uint8_t chunk[20];
	memset(chunk, 1, sizeof(chunk));
	struct ha_chunk_ref c[1] = {{20, 10, ""}};
	ha_sha256_hex(chunk, sizeof(chunk), c[0].sha);
	m.chunks = c;
	m.n_chunks = 1;
	m.bytes_stored = 20;
	f->manifest = (struct ha_buf)HA_BUF_INIT;
	ha_manifest_write(&m, &f->manifest);
	ha_manifest_seal(&f->manifest, f->key);
	for (size_t i = 0; i < 2; i++) {
		struct ha_store *s = &f->rs.r[i].backups;
		assert_int_equal(s->ops->begin(s, "n1", NAME, &e), 0);
		assert_int_equal(s->ops->put_chunk(s, "n1", NAME, 0, chunk, sizeof(chunk), &e), 0);
		assert_int_equal(
		    s->ops->commit(s, "n1", NAME, f->manifest.data, f->manifest.len, &e), 0);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ha_repos_close(&f->rs);
	ha_rm_rf(f->dir);
	ha_buf_free(&f->manifest);
	free(f->cfg);
	free(f);
	return 0;
}

static void damage(const char *path, long at)
{
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, at, SEEK_SET), 0);
	int c = fgetc(fp);
	assert_int_equal(fseek(fp, at, SEEK_SET), 0);
	fputc(c ^ 0x01, fp);
	fclose(fp);
}

/* The first repository's manifest altered: verify and restore read the second's. */
static void manifest_falls_back(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/local/backups/%s/manifest", f->dir, NAME);
	damage(path, (long)f->manifest.len / 2);
	struct ha_manifest m;
	struct ha_err e = {0};
	assert_int_equal(ha_backup_manifest(&f->rs.all_backups, f->key, NAME, &m, &e), 0);
	assert_string_equal(m.name, NAME);
	ha_manifest_free(&m);
	/* missing in the first: the same */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ha_backup_manifest(&f->rs.all_backups, f->key, NAME, &m, &e), 0);
	ha_manifest_free(&m);
	/* damaged in both: an error naming both */
	snprintf(path, sizeof(path), "%s/offsite/backups/%s/manifest", f->dir, NAME);
	damage(path, (long)f->manifest.len / 2);
	assert_true(ha_backup_manifest(&f->rs.all_backups, f->key, NAME, &m, &e) < 0);
	assert_non_null(strstr(e.msg, "repository local"));
	assert_non_null(strstr(e.msg, "repository offsite"));
}

/* A copy stops at the next chunk once cancelled (the agent stops): aborted, nothing left
 * staged or listed; not cancelled, it completes. */
static void copy_cancelled(void **state)
{
	struct fixture *f = *state;
	struct ha_store *dst = &f->rs.r[1].backups;
	struct ha_err e = {0};
	assert_int_equal(dst->ops->remove(dst, NAME, &e), 0);
	atomic_int cancel = 1;
	struct ha_repo_copied got;
	assert_true(ha_repo_copy(&f->rs, false, 1, NAME, "n1", f->key, NULL, &cancel, &got, &e) <
	            0);
	assert_non_null(strstr(e.msg, "cancelled"));
	char **names;
	size_t n;
	assert_int_equal(dst->ops->list(dst, &names, &n, &e), 0);
	assert_int_equal(n, 0);
	ha_store_names_free(names, n);
	char staged[PATH_MAX];
	snprintf(staged, sizeof(staged), "%s/offsite/.partial/n1.copy/%s", f->dir, NAME);
	assert_int_not_equal(access(staged, F_OK), 0);
	atomic_store(&cancel, 0);
	int rc = ha_repo_copy(&f->rs, false, 1, NAME, "n1", f->key, NULL, &cancel, &got, &e);
	if (rc != 0)
		fail_msg("%s", e.msg);
	assert_int_equal(got.chunks, 1);
	assert_int_equal(ha_repo_has(&f->rs, false, 1, NAME, NULL, &e), 1);
}

/* The destination's operations, but a put_chunk that first cleans node n1's staging area:
 * what a backup job starting on n1 does while n1's copier (the leader's) copies. */
static struct ha_store_ops real_ops, cleaning_ops;
static int put_after_clean(struct ha_store *s, const char *node, const char *name, uint64_t index,
                           const uint8_t *data, size_t len, struct ha_err *e)
{
	real_ops.clean(s, "n1");
	return real_ops.put_chunk(s, node, name, index, data, len, e);
}

/* A backup job starting on the copier's node cleans that node's staging area: the copy under
 * way is not in it (its own identity), so it completes, whole. */
static void copy_survives_the_nodes_clean(void **state)
{
	struct fixture *f = *state;
	struct ha_store *dst = &f->rs.r[1].backups;
	struct ha_err e = {0};
	assert_int_equal(dst->ops->remove(dst, NAME, &e), 0);
	real_ops = *dst->ops;
	cleaning_ops = real_ops;
	cleaning_ops.put_chunk = put_after_clean;
	dst->ops = &cleaning_ops;
	struct ha_repo_copied got;
	int rc = ha_repo_copy(&f->rs, false, 1, NAME, "n1", f->key, NULL, NULL, &got, &e);
	dst->ops = &real_ops;
	if (rc != 0)
		fail_msg("%s", e.msg);
	assert_int_equal(got.chunks, 1);
	assert_int_equal(ha_repo_has(&f->rs, false, 1, NAME, NULL, &e), 1);
	char name[HA_NAME_MAX];
	ha_repo_copy_stager("n1", name);
	assert_string_not_equal(name, "n1");
	assert_true(ha_name_valid(name));
	char longest[HA_NAME_MAX];
	memset(longest, 'a', HA_NAME_MAX - 1);
	longest[HA_NAME_MAX - 1] = '\0';
	ha_repo_copy_stager(longest, name);
	assert_true(ha_name_valid(name));
}

/* The first repository down (every read of it fails, counted): read once, then asked last. */
static unsigned down_reads;
static int down_get_manifest(struct ha_store *s, const char *name, char **text, size_t *len,
                             struct ha_err *e)
{
	(void)s;
	(void)name;
	(void)len;
	*text = NULL;
	down_reads++;
	return ha_err_set(e, HA_ETIMEOUT, "no whole answer within timeout_ms (down)");
}

/* A repository that failed a read is asked last by the later reads through the same store:
 * a chain's manifests (one per backup) cost a repository that is down its timeouts once, not
 * once per backup. */
static void a_failed_copy_is_asked_last(void **state)
{
	struct fixture *f = *state;
	struct ha_store *first = &f->rs.r[0].backups;
	real_ops = *first->ops;
	cleaning_ops = real_ops;
	cleaning_ops.get_manifest = down_get_manifest;
	first->ops = &cleaning_ops;
	down_reads = 0;
	struct ha_err e = {0};
	for (int i = 0; i < 3; i++) {
		struct ha_manifest m;
		int rc = ha_backup_manifest(&f->rs.all_backups, f->key, NAME, &m, &e);
		if (rc != 0)
			fail_msg("%s", e.msg);
		ha_manifest_free(&m);
	}
	first->ops = &real_ops;
	assert_int_equal(down_reads, 1);
}

/* A backup job's clean of its node: deferred to its next begin, one repository at a time, so a
 * repository is cleaned only when it is asked to take the write (one down and passed over,
 * after the one that takes it, costs the job nothing). */
static struct ha_store_ops refusing_ops;
static int refuse_begin(struct ha_store *s, const char *node, const char *name, struct ha_err *e)
{
	(void)s;
	(void)node;
	return ha_err_set(e, HA_EIO, "down (test) for %s", name);
}

static bool staged_in(struct fixture *f, const char *repo, const char *name)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s/.partial/n1/%s", f->dir, repo, name);
	return access(p, F_OK) == 0;
}

static void union_clean_is_deferred(void **state)
{
	struct fixture *f = *state;
	struct ha_err e = {0};
	struct ha_store *u = &f->rs.all_backups;
	for (int round = 0; round < 2; round++) {
		/* what n1 left staged in both repositories */
		for (size_t i = 0; i < 2; i++) {
			struct ha_store *s = &f->rs.r[i].backups;
			assert_int_equal(s->ops->begin(s, "n1", "000008-full-x", &e), 0);
		}
		u->ops->clean(u, "n1");
		assert_true(staged_in(f, "local", "000008-full-x")); /* nothing done yet */
		assert_true(staged_in(f, "offsite", "000008-full-x"));
		const struct ha_store_ops *saved = f->rs.r[0].backups.ops;
		if (round == 1) { /* the first repository refuses: the second is cleaned too */
			refusing_ops = *saved;
			refusing_ops.begin = refuse_begin;
			f->rs.r[0].backups.ops = &refusing_ops;
		}
		int rc = u->ops->begin(u, "n1", "000009-full-y", &e);
		if (rc != 0)
			fail_msg("%s", e.msg);
		f->rs.r[0].backups.ops = saved;
		assert_false(staged_in(f, "local", "000008-full-x"));
		if (round == 0) {
			assert_string_equal(ha_repos_written(u), "local");
			assert_true(staged_in(f, "offsite", "000008-full-x")); /* not asked: left */
			f->rs.r[1].backups.ops->clean(&f->rs.r[1].backups, "n1");
		} else {
			assert_string_equal(ha_repos_written(u), "offsite");
			assert_false(staged_in(f, "offsite", "000008-full-x"));
		}
		u->ops->abort(u, "n1", "000009-full-y");
		/* the pending clean is used once: a begin after it cleans nothing */
		struct ha_store *s = &f->rs.r[0].backups;
		assert_int_equal(s->ops->begin(s, "n1", "000008-full-x", &e), 0);
		assert_int_equal(u->ops->begin(u, "n1", "000010-full-z", &e), 0);
		assert_true(staged_in(f, "local", "000008-full-x"));
		u->ops->abort(u, "n1", "000010-full-z");
		s->ops->clean(s, "n1");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(manifest_falls_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(copy_cancelled, setup, teardown),
	    cmocka_unit_test_setup_teardown(copy_survives_the_nodes_clean, setup, teardown),
	    cmocka_unit_test_setup_teardown(a_failed_copy_is_asked_last, setup, teardown),
	    cmocka_unit_test_setup_teardown(union_clean_is_deferred, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
