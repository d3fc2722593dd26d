#include "pipeline.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/log.h"
#include "../common/proc.h"
#include "../common/secret.h"
#include "../config.h"
#include "fsutil.h"

extern char **environ;

/* The last lines of a log file, for error messages. */
static void tail_of(const char *path, char *out, size_t size)
{
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	char line[512], keep[3][512] = {"", "", ""};
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		memmove(keep[0], keep[1], sizeof(keep[0]) * 2);
		snprintf(keep[2], sizeof(keep[2]), "%s", line);
	}
	fclose(f);
	snprintf(out, size, "%s | %s | %s", keep[0], keep[1], keep[2]);
}

/* "key = value" from a mariadb-backup info file. */
static int info_value(const char *path, const char *key, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char line[1024];
	int rc = -1;
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ' && line[kl + 1] == '=') {
			char *v = line + kl + 2;
			while (*v == ' ')
				v++;
			v[strcspn(v, "\n")] = '\0';
			snprintf(out, size, "%s", v);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* ---- the parallel sealing pipeline ---- */

enum slot_state { SLOT_EMPTY, SLOT_FILLED, SLOT_SEALING, SLOT_SEALED };

struct slot {
	enum slot_state state;
	uint64_t index;
	uint8_t *plain;
	size_t plain_len;
	uint8_t *sealed;
	size_t sealed_len;
	char sha[65]; /* of sealed, computed by the worker */
	int rc;
	char err[256];
};

struct seal_ctx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot *slots;
	unsigned n_slots;
	bool eof;        /* the reader is done; total chunks = n_read */
	uint64_t n_read; /* chunks handed to the workers */
	uint64_t n_written;
	bool failed;
	char err[512];
	const uint8_t *key;
	const char *name;
	int level;
	struct ha_store *store;
	const char *node;
	struct ha_manifest *m;
	size_t chunks_cap;
	uint64_t bytes_stored;
};

static void fail_locked(struct seal_ctx *c, const char *msg)
{
	if (!c->failed) {
		c->failed = true;
		snprintf(c->err, sizeof(c->err), "%s", msg);
	}
	pthread_cond_broadcast(&c->cv);
}

static void *seal_worker(void *arg)
{
	struct seal_ctx *c = arg;
	struct ha_chunk_ctx *zc = ha_chunk_ctx_new(); /* NULL: one per chunk, slower */
	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct slot *s = NULL;
		while (!c->failed) {
			uint64_t low = UINT64_MAX;
			for (unsigned i = 0; i < c->n_slots; i++)
				if (c->slots[i].state == SLOT_FILLED && c->slots[i].index < low) {
					low = c->slots[i].index;
					s = &c->slots[i];
				}
			if (s || c->eof)
				break;
			pthread_cond_wait(&c->cv, &c->mu);
		}
		if (s == NULL)
			break;
		s->state = SLOT_SEALING;
		pthread_mutex_unlock(&c->mu);
		struct ha_err e = {0};
		s->rc = ha_chunk_seal(zc, c->key, c->name, s->index, c->level, s->plain,
		                      s->plain_len, s->sealed, &s->sealed_len, &e);
		if (s->rc == 0)
			ha_sha256_hex(s->sealed, s->sealed_len, s->sha);
		if (s->rc)
			snprintf(s->err, sizeof(s->err), "%s", e.msg);
		pthread_mutex_lock(&c->mu);
		s->state = SLOT_SEALED;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	ha_chunk_ctx_free(zc);
	return NULL;
}

static void *seal_writer(void *arg)
{
	struct seal_ctx *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct slot *s = NULL;
		while (!c->failed) {
			if (c->eof && c->n_written == c->n_read)
				break;
			struct slot *x = &c->slots[c->n_written % c->n_slots];
			if (x->state == SLOT_SEALED && x->index == c->n_written) {
				s = x;
				break;
			}
			pthread_cond_wait(&c->cv, &c->mu);
		}
		if (s == NULL)
			break;
		pthread_mutex_unlock(&c->mu);
		char sha[65], msg[512] = "";
		if (s->rc) {
			snprintf(msg, sizeof(msg), "%s", s->err);
		} else {
			struct ha_err we = {0};
			memcpy(sha, s->sha, sizeof(sha));
			if (c->store->ops->put_chunk(c->store, c->node, c->name, s->index,
			                             s->sealed, s->sealed_len, &we) != 0)
				snprintf(msg, sizeof(msg), "%s", we.msg);
		}
		pthread_mutex_lock(&c->mu);
		if (msg[0]) {
			fail_locked(c, msg);
			break;
		}
		if (c->m->n_chunks == c->chunks_cap) {
			size_t cap = c->chunks_cap ? c->chunks_cap * 2 : 256;
			struct ha_chunk_ref *n = realloc(c->m->chunks, cap * sizeof(*n));
			if (n == NULL) {
				fail_locked(c, "out of memory");
				break;
			}
			c->m->chunks = n;
			c->chunks_cap = cap;
		}
		struct ha_chunk_ref *r = &c->m->chunks[c->m->n_chunks++];
		r->stored = (uint32_t)s->sealed_len;
		r->plain = (uint32_t)s->plain_len;
		memcpy(r->sha, sha, 65);
		c->bytes_stored += s->sealed_len;
		s->state = SLOT_EMPTY;
		c->n_written++;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* The context and its slots (workers * 2 + 1, each with room for one chunk, plain and sealed);
 * the lock and condition are set up even when the slots cannot be had, for seal_ctx_free. */
static int seal_ctx_init(struct seal_ctx *c, struct ha_backup_spec *sp,
                         const uint8_t key[HA_KEY_LEN], unsigned workers, size_t chunk,
                         struct ha_err *e)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->n_slots = workers * 2 + 1;
	c->slots = calloc(c->n_slots, sizeof(*c->slots));
	c->key = key;
	c->name = sp->m->name;
	c->level = sp->level ? sp->level : 1;
	c->m = sp->m;
	c->store = sp->store;
	c->node = sp->m->node;
	int rc = 0;
	for (unsigned i = 0; c->slots && i < c->n_slots; i++) {
		c->slots[i].plain = malloc(chunk);
		c->slots[i].sealed = malloc(ha_chunk_bound(chunk));
		if (!c->slots[i].plain || !c->slots[i].sealed)
			rc = HA_ENOMEM;
	}
	if (!c->slots || rc)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	return 0;
}

static void seal_ctx_free(struct seal_ctx *c)
{
	for (unsigned i = 0; c->slots && i < c->n_slots; i++) {
		free(c->slots[i].plain);
		free(c->slots[i].sealed);
	}
	free(c->slots);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
}

/* the source replica lags: stop reading, so mariadb-backup waits on the pipe and its I/O
 * leaves the replica to catch up; bounded, since its redo copy waits too */
static void hold_while_lagging(struct ha_backup_spec *sp)
{
	while (sp->hold && atomic_load(sp->hold) && sp->held_ms < sp->hold_max_ms &&
	       !(sp->cancel && atomic_load(sp->cancel))) {
		usleep(50 * 1000);
		sp->held_ms += 50;
	}
}

/* Reads fd in chunks into the slots, in order, each as one comes free, until the end of the
 * stream, a failure or a cancel; returns the bytes read. */
static uint64_t feed_chunks(int fd, struct seal_ctx *c, struct ha_backup_spec *sp, size_t chunk)
{
	uint64_t total = 0;
	for (uint64_t idx = 0;; idx++) {
		struct slot *s = &c->slots[idx % c->n_slots];
		pthread_mutex_lock(&c->mu);
		while (!c->failed && s->state != SLOT_EMPTY)
			pthread_cond_wait(&c->cv, &c->mu);
		bool stop = c->failed;
		pthread_mutex_unlock(&c->mu);
		if (stop || (sp->cancel && atomic_load(sp->cancel)))
			break;
		hold_while_lagging(sp);
		ssize_t k = ha_read_full(fd, s->plain, chunk);
		pthread_mutex_lock(&c->mu);
		if (k < 0)
			fail_locked(c, "reading the backup stream failed");
		if (k <= 0) {
			c->eof = true;
			pthread_cond_broadcast(&c->cv);
			pthread_mutex_unlock(&c->mu);
			break;
		}
		total += (uint64_t)k;
		s->plain_len = (size_t)k;
		s->index = idx;
		s->state = SLOT_FILLED;
		c->n_read = idx + 1;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	return total;
}

/* The sealing threads and the writer over an initialised context, fed from fd, then joined. */
static int run_pipeline(int fd, struct seal_ctx *c, struct ha_backup_spec *sp, unsigned workers,
                        size_t chunk, uint64_t *bytes_in, struct ha_err *e)
{
	pthread_t th[17], wr;
	if (workers > 16)
		workers = 16;
	for (unsigned i = 0; i < workers; i++)
		pthread_create(&th[i], NULL, seal_worker, c);
	pthread_create(&wr, NULL, seal_writer, c);
	uint64_t total = feed_chunks(fd, c, sp, chunk);
	pthread_mutex_lock(&c->mu);
	if (sp->cancel && atomic_load(sp->cancel))
		fail_locked(c, "cancelled");
	c->eof = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	for (unsigned i = 0; i < workers; i++)
		pthread_join(th[i], NULL);
	pthread_join(wr, NULL);
	int rc = 0;
	if (c->failed)
		rc = ha_err_set(e, HA_EIO, "%s", c->err);
	*bytes_in = total;
	sp->m->bytes_stored = c->bytes_stored;
	return rc;
}

/* Reads fd to its end through the sealing pipeline into dir/chunks. */
static int seal_stream(int fd, struct ha_backup_spec *sp, const uint8_t key[HA_KEY_LEN],
                       uint64_t *bytes_in, struct ha_err *e)
{
	unsigned workers = sp->workers ? sp->workers : 2;
	size_t chunk = sp->chunk_bytes ? sp->chunk_bytes : (4u << 20);
	if (chunk > HA_CHUNK_MAX)
		chunk = HA_CHUNK_MAX;
	struct seal_ctx c;
	int rc = seal_ctx_init(&c, sp, key, workers, chunk, e);
	if (rc == 0)
		rc = run_pipeline(fd, &c, sp, workers, chunk, bytes_in, e);
	seal_ctx_free(&c);
	return rc;
}

/* ---- backup ---- */

static void fail_cleanup(struct ha_backup_spec *sp, const char *work)
{
	sp->store->ops->abort(sp->store, sp->m->node, sp->m->name);
	ha_rm_rf(work);
}

/* A backup's local scratch (never the store): the password file, mariadb-backup's log and its
 * LSN files. */
struct scratch {
	char work[PATH_MAX], cnf[PATH_MAX + 16], log[PATH_MAX + 32];
	char lsndir[PATH_MAX + 8], tmpdir[PATH_MAX + 8];
};

static int scratch_make(struct ha_backup_spec *sp, struct scratch *w, struct ha_err *e)
{
	if (!ha_name_valid(sp->m->name)) /* it names a directory: never "..", never a '/' */
		return ha_err_set(e, HA_EINVAL, "backup name '%.80s' is not a name (%s)",
		                  sp->m->name, HA_NAME_RULE);
	if ((size_t)snprintf(w->work, sizeof(w->work), "%s/%s", sp->work_dir, sp->m->name) >=
	    sizeof(w->work))
		return ha_err_set(e, HA_EINVAL, "%s/%s: path too long", sp->work_dir, sp->m->name);
	snprintf(w->cnf, sizeof(w->cnf), "%s/client.cnf", w->work);
	snprintf(w->log, sizeof(w->log), "%s/mariadb-backup.log", w->work);
	snprintf(w->lsndir, sizeof(w->lsndir), "%s/lsn", w->work);
	snprintf(w->tmpdir, sizeof(w->tmpdir), "%s/tmp", w->work);
	ha_rm_rf(w->work);
	if (ha_mkdir_p(w->lsndir, 0700) != 0 || ha_mkdir_p(w->tmpdir, 0700) != 0)
		return ha_err_set(e, HA_EIO, "create %s: %s", w->work, strerror(errno));
	/* the password goes in a private defaults file, never in argv */
	if (ha_write_password_cnf(w->cnf, "mariadb-backup", sp->password) != 0)
		return ha_err_set(e, HA_EIO, "write %s: %s", w->cnf, strerror(errno));
	return 0;
}

/* Runs mariadb-backup with its stream sealed into the store under key. *status: its exit. */
static int stream_backup(struct ha_backup_spec *sp, const struct scratch *w,
                         const uint8_t key[HA_KEY_LEN], int *status, struct ha_err *e)
{
	char a_cnf[PATH_MAX + 32], a_target[PATH_MAX + 24], a_lsn[PATH_MAX + 24], a_host[96],
	    a_port[32], a_user[128], a_inc[64], a_thr[48];
	snprintf(a_cnf, sizeof(a_cnf), "--defaults-extra-file=%s", w->cnf);
	snprintf(a_target, sizeof(a_target), "--target-dir=%s", w->tmpdir);
	snprintf(a_lsn, sizeof(a_lsn), "--extra-lsndir=%s", w->lsndir);
	snprintf(a_host, sizeof(a_host), "--host=%s", sp->host);
	snprintf(a_port, sizeof(a_port), "--port=%u", sp->port);
	snprintf(a_user, sizeof(a_user), "--user=%s", sp->user);
	snprintf(a_inc, sizeof(a_inc), "--incremental-lsn=%llu",
	         (unsigned long long)sp->incremental_lsn);
	snprintf(a_thr, sizeof(a_thr), "--throttle=%u", sp->throttle);
	char *argv[12] = {
	    (char *)sp->tool, a_cnf,  "--backup", "--stream=mbstream", a_target, a_lsn,
	    a_host,           a_port, a_user};
	int argc = 9;
	if (sp->incremental_lsn)
		argv[argc++] = a_inc;
	if (sp->throttle)
		argv[argc++] = a_thr;
	argv[argc] = NULL;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return ha_err_set(e, HA_EIO, "pipe: %s", strerror(errno));
	/* a larger pipe: fewer wake-ups of mariadb-backup and of the reader (best effort) */
	fcntl(pfd[0], F_SETPIPE_SZ, 1 << 20);
	struct ha_proc_spec ps = {.argv = argv,
	                          .io = {HA_PROC_NULL, {.fd = pfd[1]}, {.fd = -1, .path = w->log}}};
	pid_t pid;
	sp->m->started_ms = ha_unix_ms();
	int rc = ha_proc_start(&ps, &pid);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		return ha_err_set(e, HA_EIO, "cannot run %s: %s", sp->tool, strerror(rc));
	}
	if (sp->child_pid)
		atomic_store(sp->child_pid, pid);
	uint64_t bytes_in = 0;
	int src = seal_stream(pfd[0], sp, key, &bytes_in, e);
	if (src != 0)
		kill(pid, SIGKILL); /* do not leave it writing into a closed pipe */
	close(pfd[0]);
	ha_proc_wait(pid, 0, false, status);
	if (sp->child_pid)
		atomic_store(sp->child_pid, 0);
	sp->m->bytes_in = bytes_in;
	return src ? ha_err_wrap(e, "backup") : 0;
}

/* What the backup covers, from mariadb-backup's files: its LSN range, the server's version and
 * its binlog position with the GTID of the last change (whole or refused). */
static int read_coverage(struct ha_backup_spec *sp, const struct scratch *w, struct ha_err *e)
{
	struct ha_manifest *m = sp->m;
	char ck[PATH_MAX + 32], info[PATH_MAX + 32], v[HA_GTID_TEXT_MAX + 256];
	snprintf(ck, sizeof(ck), "%s/xtrabackup_checkpoints", w->lsndir);
	snprintf(info, sizeof(info), "%s/xtrabackup_info", w->lsndir);
	if (info_value(ck, "from_lsn", v, sizeof(v)) == 0)
		m->from_lsn = strtoull(v, NULL, 10);
	if (info_value(ck, "to_lsn", v, sizeof(v)) == 0)
		m->to_lsn = strtoull(v, NULL, 10);
	if (info_value(info, "server_version", v, sizeof(v)) == 0)
		snprintf(m->server_version, sizeof(m->server_version), "%s", v);
	if (info_value(info, "binlog_pos", v, sizeof(v)) == 0) {
		/* filename 'F', position 'P', GTID of the last change 'G' */
		char f[128] = "", p[32] = "", g[HA_GTID_TEXT_MAX] = "";
		char *a = strstr(v, "filename '"), *b = strstr(v, "position '"),
		     *c = strstr(v, "GTID of the last change '");
		if (a)
			sscanf(a + 10, "%127[^']", f);
		if (b)
			sscanf(b + 10, "%31[^']", p);
		if (c) {
			size_t len = strcspn(c + 25, "'");
			if (len >= sizeof(g))
				return ha_err_set(
				    e, HA_EDB,
				    "mariadb-backup reported a GTID position of %zu bytes, "
				    "more than %d domains",
				    len, HA_GTID_MAX_DOMAINS);
			memcpy(g, c + 25, len);
			g[len] = '\0';
		}
		snprintf(m->binlog, sizeof(m->binlog), "%s:%s", f, p);
		for (char *x = g; *x; x++)
			if (*x == ' ')
				*x = '\0';
		snprintf(m->gtid, sizeof(m->gtid), "%s", g);
	}
	if (m->to_lsn == 0)
		return ha_err_set(e, HA_EDB, "mariadb-backup reported no LSN range");
	/* an LSN below the parent's end: not the InnoDB instance the chain began on (a datadir
	 * restored from an older copy keeps its label, not its LSN) */
	if (sp->incremental_lsn && m->to_lsn < sp->incremental_lsn)
		return ha_err_set(
		    e, HA_EDB,
		    "the server's LSN (%llu) is below its parent backup's end (%llu): "
		    "its datadir is not the one the chain began on; take a full backup",
		    (unsigned long long)m->to_lsn, (unsigned long long)sp->incremental_lsn);
	return 0;
}

/* The manifest last (authenticated, manifest.h), then the rename: the backup appears whole or
 * not at all. */
static int commit(struct ha_backup_spec *sp, struct ha_err *e)
{
	struct ha_manifest *m = sp->m;
	struct ha_buf b = HA_BUF_INIT;
	ha_manifest_write(m, &b);
	ha_manifest_seal(&b, sp->master_key);
	if (!ha_buf_failed(&b))
		ha_sha256_hex((const uint8_t *)b.data, b.len, m->file_sha);
	int rc = ha_buf_failed(&b)
	             ? ha_err_set(e, HA_ENOMEM, "out of memory")
	             : sp->store->ops->commit(sp->store, m->node, m->name, b.data, b.len, e);
	ha_buf_free(&b);
	return rc;
}

int ha_backup_create(struct ha_backup_spec *sp, struct ha_err *e)
{
	struct ha_manifest *m = sp->m;
	struct scratch w;
	int rc = scratch_make(sp, &w, e);
	if (rc == 0)
		rc = sp->store->ops->begin(sp->store, m->node, m->name, e);
	if (rc != 0) {
		ha_rm_rf(w.work);
		return rc;
	}
	uint8_t key[HA_KEY_LEN];
	int status = 0;
	if (ha_key_random(key) || ha_key_wrap(sp->master_key, key, m->wrapped_key))
		rc = ha_err_set(e, HA_EINTERNAL, "cannot create the data key");
	else
		rc = stream_backup(sp, &w, key, &status, e);
	ha_wipe(key, sizeof(key));
	unlink(w.cnf);
	if (rc == 0 && !ha_proc_ok(status)) {
		char tail[1600];
		tail_of(w.log, tail, sizeof(tail));
		rc = ha_err_set(e, HA_EDB, "mariadb-backup failed (%s %d): %s",
		                WIFEXITED(status) ? "exit" : "signal",
		                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tail);
	}
	if (rc == 0)
		rc = read_coverage(sp, &w, e);
	if (rc == 0) {
		m->finished_ms = ha_unix_ms();
		if (sp->before_commit)
			sp->before_commit(sp);
		if (sp->cancel && atomic_load(sp->cancel))
			rc = ha_err_set(e, HA_EIO, "backup: cancelled");
	}
	if (rc == 0)
		rc = commit(sp, e);
	if (rc != 0)
		fail_cleanup(sp, w.work);
	else
		ha_rm_rf(w.work);
	return rc;
}

/* ---- reading ---- */

/* One manifest text: authenticated, and naming the backup asked for. */
static int manifest_open_named(const char *text, size_t len, const uint8_t *master_key,
                               const char *name, struct ha_manifest *m, struct ha_err *e)
{
	int rc = ha_manifest_open(text, len, master_key, m, e);
	if (rc == 0 && strcmp(m->name, name) != 0) {
		ha_manifest_free(m);
		return ha_err_set(e, HA_EPROTO, "the manifest of %s names another backup (%s)",
		                  name, m->name);
	}
	return rc;
}

/* With several repositories, the first copy of the manifest that authenticates: one damaged,
 * missing or unreadable in a repository is taken from the next, as chunks are (open_chunk);
 * the error names every repository when none has it intact. */
int ha_backup_manifest(struct ha_store *store, const uint8_t *master_key, const char *name,
                       struct ha_manifest *m, struct ha_err *e)
{
	size_t n = store->ops->get_manifest_copy ? store->ops->copies(store) : 0;
	if (n == 0) {
		char *text = NULL;
		size_t len = 0;
		if (store->ops->get_manifest(store, name, &text, &len, e) != 0)
			return ha_err_wrap(e, "backup %s", name);
		int rc = manifest_open_named(text, len, master_key, name, m, e);
		free(text);
		return rc ? ha_err_wrap(e, "backup %s", name) : 0;
	}
	struct ha_buf why = HA_BUF_INIT;
	int rc = HA_EIO;
	unsigned order[32];
	size_t n_order = ha_store_copy_order(store, n, order);
	for (size_t j = 0; j < n_order; j++) {
		size_t k = order[j];
		char *text = NULL;
		size_t len = 0;
		const char *from = "?";
		struct ha_err pe = {0};
		rc = store->ops->get_manifest_copy(store, k, name, &text, &len, &from, &pe);
		if (rc == 0)
			rc = manifest_open_named(text, len, master_key, name, m, &pe);
		free(text);
		if (rc != 0)
			ha_store_copy_failed(store, k);
		if (rc == 0) {
			if (j > 0 || k > 0)
				ha_warn("backup-manifest-fallback",
				        "backup=%s repository=%s why=\"%s\"", name, from,
				        ha_buf_cstr(&why));
			ha_buf_free(&why);
			return 0;
		}
		ha_buf_printf(&why, "%s%s%s%s", why.len ? "; " : "", n > 1 ? "repository " : "",
		              n > 1 ? from : "", n > 1 ? ": " : "");
		ha_buf_puts(&why, pe.msg);
		rc = pe.code ? pe.code : rc;
	}
	ha_err_set(e, rc, "backup %s: %s", name, ha_buf_cstr(&why));
	ha_buf_free(&why);
	return rc;
}

struct open_ctx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ha_store *store;
	const struct ha_manifest *m;
	const uint8_t *key;
	size_t next;     /* next chunk to take */
	size_t next_out; /* next chunk to write */
	int out_fd;
	bool failed;
	char err[512];
	atomic_uint fallbacks; /* chunks taken from another repository than the first */
	uint8_t **done;        /* plain buffers ready, by index % window */
	size_t *done_len;
	size_t window;
};

/* Chunk i of copy `copy` (the store's only one when it has no copies): fetched, its hash
 * checked, decrypted into plain. "" or what is wrong with it in msg. */
static void open_copy(struct open_ctx *c, size_t copy, size_t i, uint8_t *in, uint8_t *plain,
                      size_t *plen, char *msg, size_t size)
{
	const struct ha_chunk_ref *r = &c->m->chunks[i];
	struct ha_err e = {0};
	size_t got = 0;
	const char *from = NULL;
	char sha[65];
	int rc = c->store->ops->copies
	             ? c->store->ops->get_chunk_copy(c->store, copy, c->m->name, i, in,
	                                             ha_chunk_bound(HA_CHUNK_MAX), &got, &from, &e)
	             : c->store->ops->get_chunk(c->store, c->m->name, i, in,
	                                        ha_chunk_bound(HA_CHUNK_MAX), &got, &e);
	char where[HA_NAME_MAX + 32] = "";
	if (from && c->store->ops->copies(c->store) > 1) /* with one, the repository goes unsaid */
		snprintf(where, sizeof(where), " in repository %s", from);
	msg[0] = '\0';
	if (rc != 0 || got != r->stored)
		snprintf(msg, size, "chunk %zu%s: missing or of the wrong size", i, where);
	else if (ha_sha256_hex(in, got, sha), strcmp(sha, r->sha) != 0)
		snprintf(msg, size, "chunk %zu%s: SHA-256 mismatch (the file was altered)", i,
		         where);
	else if (ha_chunk_open(c->key, c->m->name, i, in, got, plain, plen, &e) != 0)
		snprintf(msg, size, "%s%s", e.msg, where);
	else if (*plen != r->plain)
		snprintf(msg, size, "chunk %zu%s: unexpected length", i, where);
}

/* Chunk i from the first copy that is intact: a damaged or missing one in a repository is
 * taken from the next (repos.h), and counted. msg says what was wrong with every copy when
 * none is. */
static void open_chunk(struct open_ctx *c, size_t i, uint8_t *in, uint8_t *plain, size_t *plen,
                       char *msg, size_t size)
{
	size_t n = c->store->ops->copies ? c->store->ops->copies(c->store) : 1;
	struct ha_buf all = HA_BUF_INIT;
	/* the copies that have not failed first, in order, then those that have: a repository
	 * that is down costs its timeouts once, not once per chunk or backup (store.h) */
	unsigned order[32];
	size_t m = ha_store_copy_order(c->store, n, order);
	for (size_t j = 0; j < m; j++) {
		size_t k = order[j];
		open_copy(c, k, i, in, plain, plen, msg, size);
		if (msg[0])
			ha_store_copy_failed(c->store, k);
		if (!msg[0]) {
			if (j > 0 || k > 0) {
				ha_warn("backup-chunk-fallback", "backup=%s chunk=%zu why=\"%s\"",
				        c->m->name, i, ha_buf_cstr(&all));
				atomic_fetch_add(&c->fallbacks, 1);
			}
			ha_buf_free(&all);
			return;
		}
		ha_buf_printf(&all, "%s%s", all.len ? "; " : "", msg);
	}
	if (n > 1)
		snprintf(msg, size, "%s", ha_buf_cstr(&all));
	ha_buf_free(&all);
}

static void *open_worker(void *arg)
{
	struct open_ctx *c = arg;
	uint8_t *in = malloc(ha_chunk_bound(HA_CHUNK_MAX));
	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (!c->failed && c->next < c->m->n_chunks && c->next >= c->next_out + c->window)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->failed || c->next >= c->m->n_chunks || in == NULL) {
			if (in == NULL && !c->failed) {
				c->failed = true;
				snprintf(c->err, sizeof(c->err), "out of memory");
			}
			pthread_cond_broadcast(&c->cv);
			pthread_mutex_unlock(&c->mu);
			break;
		}
		size_t i = c->next++;
		pthread_mutex_unlock(&c->mu);
		char msg[512] = "";
		uint8_t *plain = malloc(HA_CHUNK_MAX);
		size_t plen = 0;
		if (plain == NULL)
			snprintf(msg, sizeof(msg), "out of memory");
		else
			open_chunk(c, i, in, plain, &plen, msg, sizeof(msg));
		pthread_mutex_lock(&c->mu);
		if (msg[0]) {
			if (!c->failed) {
				c->failed = true;
				snprintf(c->err, sizeof(c->err), "%s", msg);
			}
			free(plain);
			pthread_cond_broadcast(&c->cv);
			pthread_mutex_unlock(&c->mu);
			break;
		}
		/* write in order: wait for our turn */
		while (!c->failed && c->next_out != i)
			pthread_cond_wait(&c->cv, &c->mu);
		bool failed = c->failed;
		pthread_mutex_unlock(&c->mu);
		int wrc = failed || c->out_fd < 0 ? 0 : ha_write_all(c->out_fd, plain, plen);
		free(plain);
		pthread_mutex_lock(&c->mu);
		if (wrc && !c->failed) {
			c->failed = true;
			snprintf(c->err, sizeof(c->err), "writing to mbstream failed");
		}
		c->next_out++;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	free(in);
	return NULL;
}

int ha_backup_extract(struct ha_store *store, const uint8_t *master_key,
                      const struct ha_manifest *m, const char *mbstream, const char *dir,
                      unsigned workers, struct ha_err *e)
{
	uint8_t key[HA_KEY_LEN];
	int rc = ha_key_unwrap(master_key, m->wrapped_key, key, e);
	if (rc != 0)
		return ha_err_wrap(e, "backup %s", m->name);
	pid_t pid = 0;
	int out_fd = -1;
	char log[PATH_MAX + 32] = "";
	if (mbstream && dir) {
		int pfd[2];
		if (pipe2(pfd, O_CLOEXEC) != 0)
			return ha_err_set(e, HA_EIO, "pipe: %s", strerror(errno));
		snprintf(log, sizeof(log), "%s/.mbstream.log", dir);
		char *argv[] = {(char *)mbstream, "-x", "-C", (char *)dir, NULL};
		struct ha_proc_spec ps = {
		    .argv = argv, .io = {{.fd = pfd[0]}, HA_PROC_NULL, {.fd = -1, .path = log}}};
		rc = ha_proc_start(&ps, &pid);
		close(pfd[0]);
		if (rc != 0) {
			close(pfd[1]);
			return ha_err_set(e, HA_EIO, "cannot run %s: %s", mbstream, strerror(rc));
		}
		out_fd = pfd[1];
		fcntl(out_fd, F_SETPIPE_SZ, 1 << 20); /* best effort, as for backups */
	}
	struct open_ctx c;
	memset(&c, 0, sizeof(c));
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	c.store = store;
	c.m = m;
	c.key = key;
	c.out_fd = out_fd;
	if (workers == 0)
		workers = 2;
	if (workers > 16)
		workers = 16;
	c.window = workers * 2;
	pthread_t th[16];
	for (unsigned i = 0; i < workers; i++)
		pthread_create(&th[i], NULL, open_worker, &c);
	for (unsigned i = 0; i < workers; i++)
		pthread_join(th[i], NULL);
	ha_wipe(key, sizeof(key));
	if (out_fd >= 0)
		close(out_fd);
	int status = 0;
	if (pid)
		ha_proc_wait(pid, 0, false, &status);
	pthread_mutex_destroy(&c.mu);
	pthread_cond_destroy(&c.cv);
	if (c.failed)
		return ha_err_set(e, HA_EPROTO, "backup %s: %s", m->name, c.err);
	if (pid && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		char tail[1600];
		tail_of(log, tail, sizeof(tail));
		return ha_err_set(e, HA_EIO, "backup %s: mbstream failed: %s", m->name, tail);
	}
	if (log[0])
		unlink(log);
	return 0;
}
