/* The agent's shell for the automatic rejoin of its diverged node (node/rejoin.h decides, in
 * node/decide.c). On a thread of its own, one run at a time, never on the loop:
 *
 *   1. saves the errant transactions as readable text: mariadb-binlog of this server's own
 *      binlog files, from the primary's last transaction of this server to this server's last
 *      (--start-position is exclusive, --stop-position inclusive), rows decoded, into
 *      data_dir/errant/<unix time>-<last gtid>.sql (created 0600, never overwritten), checked:
 *      it must hold them, all of this server's id;
 *   2. re-clones the node: its sibling haadm, as a child in its own process group, `haadm -c
 *      <this config> node reclone <this node> --json`, killed at rejoin_timeout_ms. When no
 *      backup can serve (none yet, or the newest predates what this node wrote in the
 *      primary's binlog), `haadm backup run --wait` first, then the re-clone once more;
 *   3. the re-clone rejoins the node as a replica (maintenance off: this agent repoints it).
 *
 * The outcome goes back to the loop (uv_async_send) and into node/decide.c's memory, which
 * retries a failed run after a pause that grows (ha_rejoin_backoff_ms). A run that the agent's
 * stop interrupts has its child killed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/proc.h"
#include "db/salvage.h"

#define SAVE_TIMEOUT_MS 120000
#define OUT_MAX         (64 * 1024) /* haadm's JSON answer read back */

struct ha_rejoiner {
	uv_async_t async;
	pthread_t thread;
	bool busy; /* loop side: a thread runs */
	atomic_int child;
	atomic_bool cancel;
	pthread_mutex_t mu;
	bool finished;  /* under mu */
	bool saved_new; /* under mu: saved is new, not reported yet */
	/* the run's input, copied when it starts */
	struct ha_rejoin_req q;
	char dir[PATH_MAX];   /* data_dir/errant */
	char conf[PATH_MAX];  /* this agent's configuration file */
	char haadm[PATH_MAX]; /* the haadm it runs */
	unsigned timeout_ms;
	/* its output, read by the loop once finished */
	bool ok;
	char msg[640];
	char saved[512];
};

void ha_find_haadm(const char *configured, char *out, size_t size)
{
	if (configured[0]) {
		snprintf(out, size, "%s", configured);
		return;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, size, "%s/haadm", self);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, size, "haadm");
}

/* Runs argv with stdout to out_path (or /dev/null) and stderr to err_path, in its own process
 * group, killed at the deadline. 0 when it exited 0; else why. */
static int run_child(struct ha_rejoiner *r, char *const argv[], int out_fd, const char *err_path,
                     unsigned timeout_ms, int *status, char *why, size_t size)
{
	struct ha_proc_spec spec = {.argv = argv, .own_group = true};
	spec.io[0] = HA_PROC_NULL;
	spec.io[1] = out_fd >= 0 ? (struct ha_proc_stream){.fd = out_fd} : HA_PROC_NULL;
	spec.io[2] = (struct ha_proc_stream){.fd = -1, .path = err_path};
	pid_t pid;
	int rc = ha_proc_start(&spec, &pid);
	if (rc != 0) {
		snprintf(why, size, "%s: %s", argv[0], strerror(rc));
		return -1;
	}
	atomic_store(&r->child, (int)pid);
	if (atomic_load(&r->cancel))
		kill(-pid, SIGKILL);
	int killed = ha_proc_wait(pid, timeout_ms, true, status);
	atomic_store(&r->child, 0);
	char st[32];
	if (killed) {
		snprintf(why, size, "%s: killed after %u s", argv[0], timeout_ms / 1000);
		return -1;
	}
	if (!ha_proc_ok(*status)) {
		snprintf(why, size, "%s: %s", argv[0], ha_proc_status(*status, st, sizeof(st)));
		return -1;
	}
	return 0;
}

/* Counts the transactions in mariadb-binlog's output ("... GTID d-s-n trans" lines): how many,
 * how many of another server id. */
static void count_gtids(const char *path, uint32_t server, uint64_t *mine, uint64_t *others)
{
	*mine = *others = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		if (line[0] != '#')
			continue;
		char *g = strstr(line, "\tGTID ");
		unsigned d, s;
		unsigned long long n;
		if (g && sscanf(g + 6, "%u-%u-%llu", &d, &s, &n) == 3)
			(s == server ? (*mine)++ : (*others)++);
	}
	fclose(f);
}

/* mariadb-binlog of this server's binlog files, from q->start (exclusive) to q->stop
 * (inclusive), rows decoded, onto fd. 0 when it ran (its output is checked by the caller). */
static int binlog_to(struct ha_rejoiner *r, int fd, const char *err_path, char *why, size_t size)
{
	const struct ha_rejoin_req *q = &r->q;
	unsigned nfiles = 0;
	char **files = ha_salvage_index_files(q->binlog_index, q->datadir, &nfiles, why, size);
	if (files == NULL)
		return -1;
	char a_start[HA_GTID_TEXT_MAX + 32], a_stop[HA_GTID_TEXT_MAX + 32];
	snprintf(a_start, sizeof(a_start), "--start-position=%s", q->start);
	snprintf(a_stop, sizeof(a_stop), "--stop-position=%s", q->stop);
	char **argv = calloc(nfiles + 8, sizeof(*argv));
	int rc = -1;
	if (argv == NULL) {
		snprintf(why, size, "out of memory");
	} else {
		unsigned k = 0;
		argv[k++] = "mariadb-binlog";
		argv[k++] = "--no-defaults";
		argv[k++] = "--base64-output=decode-rows";
		argv[k++] = "-vv";
		argv[k++] = a_start;
		argv[k++] = a_stop;
		for (unsigned i = 0; i < nfiles; i++)
			argv[k++] = files[i];
		argv[k] = NULL;
		int status;
		char ignored[256];
		/* mariadb-binlog's exit status says little (salvage.h): the output is checked */
		run_child(r, argv, fd, err_path, SAVE_TIMEOUT_MS, &status, ignored,
		          sizeof(ignored));
		rc = 0;
	}
	free(argv);
	ha_salvage_free_files(files);
	return rc;
}

/* 1. The errant transactions as text; r->saved says what and where. */
static int save(struct ha_rejoiner *r, char *why, size_t size)
{
	const struct ha_rejoin_req *q = &r->q;
	if (mkdir(r->dir, 0700) != 0 && errno != EEXIST) {
		snprintf(why, size, "mkdir %s: %s", r->dir, strerror(errno));
		return -1;
	}
	char last[64];
	snprintf(last, sizeof(last), "%.*s", (int)strcspn(q->stop, ","), q->stop);
	char path[PATH_MAX + 128], err_path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%lld-%s.sql", r->dir, (long long)time(NULL), last);
	snprintf(err_path, sizeof(err_path), "%s/mariadb-binlog.err", r->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, size, "%s: %s", path, strerror(errno));
		return -1;
	}
	int rc = binlog_to(r, fd, err_path, why, size);
	if (fsync(fd) != 0 && rc == 0) {
		snprintf(why, size, "fsync %s: %s", path, strerror(errno));
		rc = -1;
	}
	close(fd);
	if (rc != 0) {
		unlink(path);
		return -1;
	}
	uint64_t mine, others;
	count_gtids(path, q->server_id, &mine, &others);
	if (mine == 0 || others != 0 || mine > q->count) {
		char err[256];
		ha_proc_last_line(err_path, err, sizeof(err));
		snprintf(why, size,
		         "mariadb-binlog printed %llu of this server's transactions and %llu of "
		         "others between %s and %s, not the %llu errant ones%s%s",
		         (unsigned long long)mine, (unsigned long long)others, q->start, q->stop,
		         (unsigned long long)q->count, err[0] ? ": " : "", err);
		unlink(path);
		return -1;
	}
	pthread_mutex_lock(&r->mu);
	snprintf(r->saved, sizeof(r->saved), "%llu errant transaction%s (%s) saved to %s",
	         (unsigned long long)mine, mine == 1 ? "" : "s", q->ranges, path);
	r->saved_new = true; /* reported at once, not at the run's end */
	pthread_mutex_unlock(&r->mu);
	uv_async_send(&r->async);
	ha_warn("errant-saved", "count=%llu errant=%s file=%s", (unsigned long long)mine, q->ranges,
	        path);
	return 0;
}

/* The "message" of haadm's JSON answer (its escapes kept as they are: for a message). */
static void json_message(const char *text, char *out, size_t size)
{
	out[0] = '\0';
	const char *p = strstr(text, "\"message\"");
	if (p == NULL)
		return;
	p = strchr(p + 9, '"');
	if (p == NULL)
		return;
	p++;
	size_t n = 0;
	while (*p && *p != '"' && n + 1 < size) {
		if (*p == '\\' && p[1])
			out[n++] = *p++;
		out[n++] = *p++;
	}
	out[n] = '\0';
}

/* Runs haadm with args, its answer into out (NUL-terminated); 0 on exit 0. */
static int haadm(struct ha_rejoiner *r, const char *const *args, char *out, size_t out_size,
                 char *why, size_t size)
{
	char *argv[16];
	unsigned k = 0;
	argv[k++] = r->haadm;
	argv[k++] = "-c";
	argv[k++] = r->conf;
	for (unsigned i = 0; args[i] && k < 15; i++)
		argv[k++] = (char *)args[i];
	argv[k] = NULL;
	char out_path[PATH_MAX + 32], err_path[PATH_MAX + 32];
	snprintf(out_path, sizeof(out_path), "%s/haadm.out", r->dir);
	snprintf(err_path, sizeof(err_path), "%s/haadm.err", r->dir);
	int fd = open(out_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, size, "%s: %s", out_path, strerror(errno));
		return -1;
	}
	int status = 0;
	int rc = run_child(r, argv, fd, err_path, r->timeout_ms, &status, why, size);
	ssize_t n = pread(fd, out, out_size - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	if (rc != 0) {
		char msg[512];
		json_message(out, msg, sizeof(msg));
		if (!msg[0])
			ha_proc_last_line(err_path, msg, sizeof(msg));
		size_t len = strlen(why);
		snprintf(why + len, size - len, "%s%s", msg[0] ? ": " : "", msg);
	}
	return rc;
}

/* 2. The re-clone, with a backup first when none can serve. */
static int reclone(struct ha_rejoiner *r, char *why, size_t size)
{
	char *out = malloc(OUT_MAX);
	if (out == NULL) {
		snprintf(why, size, "out of memory");
		return -1;
	}
	const char *args[] = {"node", "reclone", r->q.node, "--json", NULL};
	int rc = haadm(r, args, out, OUT_MAX, why, size);
	if (rc != 0 && !atomic_load(&r->cancel) &&
	    (strstr(why, "predates") || strstr(why, "no finished backup"))) {
		ha_warn("rejoin-backup", "why=\"%s\"", why);
		const char *bargs[] = {"backup", "run", "--wait", NULL};
		char bwhy[512] = "";
		if (haadm(r, bargs, out, OUT_MAX, bwhy, sizeof(bwhy)) != 0) {
			snprintf(why, size, "no backup can serve, and one taken for it failed: %s",
			         bwhy);
		} else {
			ha_info("rejoin-backup-done", "node=%s", r->q.node);
			rc = haadm(r, args, out, OUT_MAX, why, size);
		}
	}
	if (rc == 0) {
		json_message(out, r->msg, sizeof(r->msg));
		if (!r->msg[0])
			snprintf(r->msg, sizeof(r->msg), "re-cloned");
	}
	free(out);
	return rc;
}

static void *run(void *arg)
{
	struct ha_rejoiner *r = arg;
	char why[600] = "";
	r->ok = false;
	pthread_mutex_lock(&r->mu);
	r->saved[0] = '\0';
	pthread_mutex_unlock(&r->mu);
	if (save(r, why, sizeof(why)) != 0)
		snprintf(r->msg, sizeof(r->msg), "saving the errant transactions: %s", why);
	else if (reclone(r, why, sizeof(why)) != 0)
		snprintf(r->msg, sizeof(r->msg), "re-clone: %s", why);
	else
		r->ok = true;
	pthread_mutex_lock(&r->mu);
	r->finished = true;
	pthread_mutex_unlock(&r->mu);
	uv_async_send(&r->async);
	return NULL;
}

static void on_done(uv_async_t *h)
{
	struct ha_agent *a = h->data;
	struct ha_rejoiner *r = a->rj;
	pthread_mutex_lock(&r->mu);
	bool finished = r->finished;
	r->finished = false;
	if (r->saved_new && !finished) {
		snprintf(a->rc.errant_saved, sizeof(a->rc.errant_saved), "%s", r->saved);
		if (!a->stopping)
			ha_agent_report_now(a);
	}
	r->saved_new = false;
	pthread_mutex_unlock(&r->mu);
	if (!finished || !r->busy)
		return;
	pthread_join(r->thread, NULL);
	r->busy = false;
	ha_log(r->ok ? HA_LOG_INFO : HA_LOG_WARN, r->ok ? "rejoin-done" : "rejoin-failed",
	       "node=%s result=\"%s\"", r->q.node, r->msg);
	ha_node_rejoin_done(&a->rc, r->ok, r->msg, r->saved, ha_now_ms());
	if (!a->stopping) {
		ha_probe_now(a->probe);
		ha_agent_report_now(a);
	}
}

int ha_rejoiner_start(struct ha_agent *a, struct ha_err *e)
{
	struct ha_rejoiner *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	pthread_mutex_init(&r->mu, NULL);
	snprintf(r->dir, sizeof(r->dir), "%s/errant", a->cfg.data_dir);
	if (realpath(a->cfg.path, r->conf) == NULL)
		snprintf(r->conf, sizeof(r->conf), "%s", a->cfg.path);
	ha_find_haadm(a->cfg.haadm_path, r->haadm, sizeof(r->haadm));
	r->timeout_ms = a->cfg.rejoin_timeout_ms;
	uv_async_init(a->loop, &r->async, on_done);
	r->async.data = a;
	a->rj = r;
	return 0;
}

void ha_rejoiner_run(struct ha_agent *a, const struct ha_rejoin_req *q)
{
	struct ha_rejoiner *r = a->rj;
	if (r == NULL || r->busy || a->stopping) {
		ha_node_rejoin_done(&a->rc, false, "a rejoin runs already", "", ha_now_ms());
		return;
	}
	r->q = *q;
	r->busy = true;
	if (pthread_create(&r->thread, NULL, run, r) != 0) {
		r->busy = false;
		ha_node_rejoin_done(&a->rc, false, "cannot start its thread", "", ha_now_ms());
		return;
	}
	ha_warn("rejoin-started", "node=%s errant=%s count=%llu haadm=%s", q->node, q->ranges,
	        (unsigned long long)q->count, r->haadm);
}

void ha_rejoiner_stop(struct ha_agent *a)
{
	struct ha_rejoiner *r = a->rj;
	if (r == NULL)
		return;
	atomic_store(&r->cancel, true);
	int pid = atomic_load(&r->child);
	if (pid > 0)
		kill(-pid, SIGKILL);
	uv_close((uv_handle_t *)&r->async, NULL);
}

void ha_rejoiner_free(struct ha_agent *a)
{
	struct ha_rejoiner *r = a->rj;
	if (r == NULL)
		return;
	if (r->busy) {
		int pid = atomic_load(&r->child);
		if (pid > 0)
			kill(-pid, SIGKILL);
		pthread_join(r->thread, NULL);
	}
	pthread_mutex_destroy(&r->mu);
	free(r);
	a->rj = NULL;
}
