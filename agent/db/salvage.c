#include "salvage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../backup/fsutil.h"
#include "../common/proc.h"
#include "binlog.h"
#include "conn.h"

extern char **environ;

#define INDEX_MAX_BYTES (16u << 20) /* an index of ~300,000 files: far beyond any real one */
#define POLL_MS         50

void ha_salvage_free_files(char **files)
{
	if (files == NULL)
		return;
	for (char **f = files; *f; f++)
		free(*f);
	free(files);
}

char **ha_salvage_index_files(const char *index_path, const char *datadir, unsigned *count,
                              char *why, size_t why_size)
{
	*count = 0;
	FILE *f = fopen(index_path, "r");
	if (f == NULL) {
		snprintf(why, why_size, "open %s: %s", index_path, strerror(errno));
		return NULL;
	}
	size_t cap = 16, n = 0, total = 0;
	char **out = calloc(cap, sizeof(*out));
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	bool bad = out == NULL;
	while (!bad && (len = getline(&line, &lcap, f)) >= 0) {
		total += (size_t)len;
		if (total > INDEX_MAX_BYTES) {
			snprintf(why, why_size, "%s: larger than %u bytes", index_path,
			         INDEX_MAX_BYTES);
			bad = true;
			break;
		}
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		char *name;
		int w = line[0] == '/' ? asprintf(&name, "%s", line)
		                       : asprintf(&name, "%s/%s", datadir, line);
		if (w < 0) {
			snprintf(why, why_size, "out of memory");
			bad = true;
			break;
		}
		if (n + 1 >= cap) {
			char **grown = realloc(out, cap * 2 * sizeof(*out));
			if (grown == NULL) {
				free(name);
				snprintf(why, why_size, "out of memory");
				bad = true;
				break;
			}
			out = grown;
			cap *= 2;
		}
		out[n++] = name;
		out[n] = NULL;
	}
	if (!bad && ferror(f)) {
		snprintf(why, why_size, "read %s: %s", index_path, strerror(errno));
		bad = true;
	}
	free(line);
	fclose(f);
	if (!bad && n == 0) {
		snprintf(why, why_size, "%s lists no binlog file", index_path);
		bad = true;
	}
	if (bad) {
		ha_salvage_free_files(out);
		return NULL;
	}
	*count = (unsigned)n;
	return out;
}

/* One SHOW SLAVE STATUS: whether everything relayed is applied (or nothing is configured),
 * and the SQL thread's error when it stopped on one. -1 when the server did not answer. */
static int relay_applied(MYSQL *m, bool *applied, char *sql_error, size_t size)
{
	*applied = false;
	sql_error[0] = '\0';
	char cur[HA_GTID_TEXT_MAX], err[256];
	struct ha_slave_status ss;
	if (ha_db_query_one(m, "SELECT @@global.gtid_current_pos", cur, sizeof(cur), err,
	                    sizeof(err)) != 0 ||
	    ha_db_slave_status(m, &ss) != 0)
		return -1;
	if (!ss.configured) {
		*applied = true; /* no replication configured: nothing relayed */
		return 0;
	}
	struct ha_gtid_pos c, io;
	if (ha_gtid_parse(cur, &c, NULL) || ha_gtid_parse(ss.gtid_io_pos, &io, NULL))
		return 0; /* never "applied" on a position that does not parse */
	*applied = ha_gtid_contains(&c, &io) != 0;
	if (!ss.sql_running)
		snprintf(sql_error, size, "%s", ss.sql_error);
	return 0;
}

/* The client's private option file: every value quoted (fsutil.h), never in argv. */
static int write_defaults(const char *path, const struct ha_db_where *t, char *why, size_t why_size)
{
	char port[16], timeout[16];
	snprintf(port, sizeof(port), "%u", t->port);
	snprintf(timeout, sizeof(timeout), "%u", (t->timeout_ms + 999) / 1000);
	const struct ha_option o[] = {{"user", t->user},
	                              {"password", t->password ? t->password : ""},
	                              {"host", t->host},
	                              {"port", port},
	                              {"connect-timeout", timeout}};
	if (ha_write_option_file(path, "client", o, sizeof(o) / sizeof(o[0])) != 0) {
		snprintf(why, why_size, "write %s: %s", path,
		         errno == EINVAL ? "the agent's user or password is too long for an option "
		                           "file"
		                         : strerror(errno));
		return -1;
	}
	return 0;
}

/* One child of the salvage pipe: SIGPIPE at its default (a dead reader ends the writer), in
 * the process group pgid (0: a new one), its output and errors into the log. */
static int spawn(pid_t *pid, char *const argv[], int in_fd, int out_fd, const char *log, pid_t pgid)
{
	struct ha_proc_stream to_log = {.fd = -1, .path = log, .append = true};
	struct ha_proc_spec sp = {
	    .argv = argv,
	    .io = {in_fd >= 0 ? (struct ha_proc_stream){.fd = in_fd} : HA_PROC_NULL,
	           out_fd >= 0 ? (struct ha_proc_stream){.fd = out_fd} : to_log, to_log},
	    .own_group = pgid == 0,
	    .join_group = pgid,
	    .default_sigpipe = true};
	return ha_proc_start(&sp, pid);
}

static bool cancelled(const struct ha_salvage_req *q)
{
	return q->cancel && atomic_load(q->cancel);
}

/* Waits for both children until the deadline or a cancel, then kills their group; once the
 * client (the reader) has ended, the writer has nothing left to do and is killed too. Statuses
 * in st[]; returns why it killed them ("" when it did not). */
static const char *reap(const struct ha_salvage_req *q, pid_t pids[2], int st[2], uint64_t deadline)
{
	bool done[2] = {pids[0] <= 0, pids[1] <= 0};
	const char *why = "";
	while (!done[0] || !done[1]) {
		for (int i = 0; i < 2; i++) {
			if (done[i])
				continue;
			pid_t w = waitpid(pids[i], &st[i], WNOHANG);
			if (w == pids[i] || (w < 0 && errno != EINTR))
				done[i] = true;
		}
		if (done[0] && done[1])
			break;
		if (!why[0]) {
			why = cancelled(q) ? "; cancelled (the local server came back, "
			                     "or the agent stops): "
			      : ha_now_ms() >= deadline ? "; stopped at the salvage timeout: "
			      : done[1]                 ? "; the client ended first: "
			                                : "";
			if (why[0])
				kill(-pids[0], SIGKILL);
		}
		usleep(POLL_MS * 1000);
	}
	return why;
}

#define HEAD_BYTES (64u << 10) /* a Gtid_list of ~4,000 (domain, server) entries */

/* The newest binlog file that starts within `have` (its Gtid_list holds nothing beyond it):
 * reading begins there rather than at the first file of a history kept for weeks. 0 when no
 * file can be told (an unreadable head: then everything is read, as mariadb-binlog skips what
 * `have` holds anyway). */
static unsigned first_file(char **files, unsigned n, const struct ha_gtid_pos *have)
{
	uint8_t *head = malloc(HEAD_BYTES);
	unsigned first = 0;
	for (unsigned i = n; head && i-- > 0;) {
		int fd = open(files[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		ssize_t got = read(fd, head, HEAD_BYTES);
		close(fd);
		struct ha_gtid_pos p;
		if (got < 0 || ha_binlog_head_position(head, (size_t)got, &p) != 0)
			break;
		if (ha_binlog_starts_within(&p, have)) {
			first = i;
			break;
		}
	}
	free(head);
	return first;
}

/* Everything the server holds: gtid_current_pos merged with gtid_binlog_pos. Transactions a
 * client replays keep their original server id, and gtid_current_pos ignores binlogged GTIDs of
 * other servers (it takes gtid_slave_pos there): after a salvage only the binlog shows them. */
static int position(MYSQL *m, struct ha_gtid_pos *out, struct ha_salvage_result *r)
{
	char cur[HA_GTID_TEXT_MAX], bin[HA_GTID_TEXT_MAX], err[256];
	struct ha_gtid_pos c, b;
	struct ha_err ge = {0};
	if (ha_db_query_one(m, "SELECT @@global.gtid_current_pos", cur, sizeof(cur), err,
	                    sizeof(err)) ||
	    ha_db_query_one(m, "SELECT @@global.gtid_binlog_pos", bin, sizeof(bin), err,
	                    sizeof(err))) {
		snprintf(r->msg, sizeof(r->msg), "the new primary's position: %s", err);
		return HA_EDB;
	}
	if (ha_gtid_parse(cur, &c, &ge) || ha_gtid_parse(bin, &b, &ge) ||
	    ha_gtid_merge(&c, &b, out)) {
		snprintf(r->msg, sizeof(r->msg), "the new primary's position: %s",
		         ge.msg[0] ? ge.msg : "more domains than supported");
		return HA_EDB;
	}
	return 0;
}

/* After a salvage: gtid_slave_pos gains what was salvaged, so that gtid_current_pos (what the
 * agent reports, what replicas and the failover record count on) includes it. The replica
 * threads are stopped for that (MariaDB requires it); the candidate needs them no more. */
static void record_salvaged(MYSQL *m, const struct ha_gtid_pos *salvaged,
                            struct ha_salvage_result *r, char *note, size_t note_size)
{
	char slave[HA_GTID_TEXT_MAX], err[256];
	struct ha_gtid_pos sp, merged;
	note[0] = '\0';
	if (ha_db_query_one(m, "SELECT @@global.gtid_slave_pos", slave, sizeof(slave), err,
	                    sizeof(err)) ||
	    ha_gtid_parse(slave, &sp, NULL) || ha_gtid_merge(&sp, salvaged, &merged)) {
		snprintf(note, note_size, "; gtid_slave_pos not updated: cannot read it");
		return;
	}
	char text[HA_GTID_TEXT_MAX];
	if (ha_gtid_format(&merged, text, sizeof(text)) >= sizeof(text)) {
		snprintf(note, note_size, "; gtid_slave_pos not updated: too many domains");
		return;
	}
	struct ha_buf sql = HA_BUF_INIT;
	ha_buf_puts(&sql, "SET GLOBAL gtid_slave_pos = ");
	ha_db_quote(m, &sql, text);
	if (ha_buf_failed(&sql))
		snprintf(note, note_size, "; gtid_slave_pos not updated: out of memory");
	else if (ha_db_exec(m, "STOP SLAVE", err, sizeof(err)) ||
	         ha_db_exec(m, ha_buf_cstr(&sql), err, sizeof(err)))
		snprintf(note, note_size, "; gtid_slave_pos not updated: %s", err);
	ha_buf_free(&sql);
	(void)r;
}

/* 1. The candidate is still read-only: HA_EREFUSED when it takes writes already. */
static int still_read_only(MYSQL *m, struct ha_salvage_result *r)
{
	char err[400], v[32];
	if (ha_db_query_one(m, "SELECT @@global.read_only", v, sizeof(v), err, sizeof(err))) {
		snprintf(r->msg, sizeof(r->msg), "the new primary: %s", err);
		return HA_EDB;
	}
	if (strcmp(v, "1") != 0) {
		snprintf(r->msg, sizeof(r->msg), "the new primary is writable already: too late");
		return HA_EREFUSED;
	}
	return 0;
}

/* 1. Nothing more from anywhere else, then what was relayed is applied first: STOP SLAVE
 * IO_THREAD, then until the SQL thread applied everything relayed, the deadline or a cancel. */
static int apply_relayed(MYSQL *m, const struct ha_salvage_req *q, struct ha_salvage_result *r,
                         uint64_t deadline)
{
	char err[400];
	ha_db_exec(m, "STOP SLAVE IO_THREAD", err, sizeof(err));
	for (;;) {
		bool applied;
		char sql_error[512];
		if (relay_applied(m, &applied, sql_error, sizeof(sql_error)) != 0) {
			snprintf(r->msg, sizeof(r->msg), "the new primary: %s", mysql_error(m));
			return HA_EDB;
		}
		if (applied)
			return 0;
		if (sql_error[0]) {
			snprintf(r->msg, sizeof(r->msg),
			         "the new primary cannot apply its relay log (%.400s): nothing "
			         "salvaged",
			         sql_error);
			return HA_EDB;
		}
		if (ha_now_ms() >= deadline || cancelled(q)) {
			snprintf(r->msg, sizeof(r->msg), "%s within %u ms: nothing salvaged",
			         cancelled(q)
			             ? "cancelled (the local server came back, or the agent "
			               "stops) while the new primary applied its relay log"
			             : "the new primary did not apply its relay log",
			         q->timeout_ms);
			return HA_ETIMEOUT;
		}
		usleep(100 * 1000);
	}
}

/* What the replay of the binlog files leaves for the measurement. */
struct replay {
	unsigned nfiles;    /* binlog files the index lists */
	int st[2];          /* mariadb-binlog's and the client's wait statuses */
	const char *killed; /* why reap killed them ("" when it did not) */
	char log[PATH_MAX]; /* their output and errors */
};

/* The work directory, the client's private defaults file cnf in it, and an empty log. */
static int prepare_work_dir(const struct ha_salvage_req *q, struct ha_salvage_result *r,
                            const char *cnf, const char *log)
{
	char err[400];
	if (mkdir(q->work_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(r->msg, sizeof(r->msg), "create %s: %s", q->work_dir, strerror(errno));
		return HA_EIO;
	}
	if (write_defaults(cnf, &q->target, err, sizeof(err)) != 0) {
		snprintf(r->msg, sizeof(r->msg), "%s", err);
		return HA_EIO;
	}
	unlink(log);
	return 0;
}

/* 2. mariadb-binlog's argv: the files from the newest one that starts within `before` (r->files
 * says how many), from r->before. NULL when out of memory; *a_start is the caller's to free. */
static char **binlog_argv(const struct ha_salvage_req *q, struct ha_salvage_result *r, char **files,
                          unsigned nfiles, const struct ha_gtid_pos *before, char **a_start)
{
	char **bargv = calloc(nfiles + 4, sizeof(*bargv));
	if (bargv == NULL ||
	    (r->before[0] && asprintf(a_start, "--start-position=%s", r->before) < 0)) {
		free(bargv);
		return NULL;
	}
	unsigned k = 0, from = first_file(files, nfiles, before);
	bargv[k++] = (char *)q->binlog_tool;
	bargv[k++] = "--no-defaults";
	if (*a_start)
		bargv[k++] = *a_start;
	for (unsigned i = from; i < nfiles; i++)
		bargv[k++] = files[i];
	r->files = nfiles - from;
	bargv[k] = NULL;
	return bargv;
}

/* 3. bargv piped into the client connected with the defaults file cnf, both in one process
 * group, until they end or reap kills them; statuses and why they were killed in out. */
static int run_pipe(const struct ha_salvage_req *q, struct ha_salvage_result *r, char **bargv,
                    const char *cnf, uint64_t deadline, struct replay *out)
{
	char a_cnf[PATH_MAX + 32];
	snprintf(a_cnf, sizeof(a_cnf), "--defaults-file=%s", cnf);
	/* --init-command: a session that reaches the new primary once it is writable (a salvage
	 * that outlived the coordinator's bound) fails at connect instead of writing beside its
	 * clients. --max-allowed-packet: a large row event is a BINLOG statement of 4/3 its size.
	 */
	char *cargv[] = {(char *)q->client_tool,
	                 a_cnf,
	                 "--batch",
	                 "--binary-mode",
	                 "--skip-reconnect",
	                 "--max-allowed-packet=1G",
	                 "--init-command=SELECT IF(@@global.read_only, 1, "
	                 "(SELECT 1 UNION SELECT 2))",
	                 NULL};
	pid_t pids[2] = {0, 0};
	int pfd[2];
	int s1 = -1, s2 = -1;
	out->st[0] = out->st[1] = 0;
	if (pipe2(pfd, O_CLOEXEC) == 0) {
		s1 = spawn(&pids[0], bargv, -1, pfd[1], out->log, 0);
		if (s1 == 0)
			s2 = spawn(&pids[1], cargv, pfd[0], -1, out->log, pids[0]);
		close(pfd[0]);
		close(pfd[1]);
	}
	if (s1 == 0 && s2 != 0)
		kill(pids[0], SIGKILL); /* the pipe's reader never started */
	out->killed = s1 == 0 && s2 == 0 ? reap(q, pids, out->st, deadline) : "";
	if (s1 == 0 && s2 != 0)
		ha_proc_wait(pids[0], 0, false, &out->st[0]);
	if (s1 != 0 || s2 != 0) {
		snprintf(r->msg, sizeof(r->msg), "cannot run %s: %s",
		         s1 != 0 ? q->binlog_tool : q->client_tool, strerror(s1 != 0 ? s1 : s2));
		return HA_EIO;
	}
	return 0;
}

/* 2-3. The local binlog files after `before`, replayed into the candidate; the defaults file is
 * removed after. */
static int replay(const struct ha_salvage_req *q, struct ha_salvage_result *r,
                  const struct ha_gtid_pos *before, uint64_t deadline, struct replay *out)
{
	char err[400];
	char **files =
	    ha_salvage_index_files(q->binlog_index, q->datadir, &out->nfiles, err, sizeof(err));
	if (files == NULL) {
		snprintf(r->msg, sizeof(r->msg), "the binlog index: %s", err);
		return HA_EIO;
	}
	r->files = out->nfiles;
	char cnf[PATH_MAX], *a_start = NULL;
	snprintf(cnf, sizeof(cnf), "%s/salvage.cnf", q->work_dir);
	snprintf(out->log, sizeof(out->log), "%s/salvage.log", q->work_dir);
	int rc = prepare_work_dir(q, r, cnf, out->log);
	if (rc != 0) {
		ha_salvage_free_files(files);
		return rc;
	}
	char **bargv = binlog_argv(q, r, files, out->nfiles, before, &a_start);
	if (bargv == NULL) {
		snprintf(r->msg, sizeof(r->msg), "out of memory");
		ha_salvage_free_files(files);
		unlink(cnf);
		return HA_EINTERNAL;
	}
	rc = run_pipe(q, r, bargv, cnf, deadline, out);
	free(a_start);
	free(bargv);
	ha_salvage_free_files(files);
	unlink(cnf);
	return rc;
}

/* 4. What the candidate gained since `before`, recorded in its gtid_slave_pos, and the
 * result's message. */
static int measure(MYSQL *m, const struct ha_salvage_req *q, struct ha_salvage_result *r,
                   const struct ha_gtid_pos *before, const struct replay *rp)
{
	struct ha_gtid_pos pa, miss;
	int rc = position(m, &pa, r);
	if (rc != 0)
		return rc;
	ha_gtid_missing_from(&pa, before, &miss, NULL);
	ha_gtid_format(&miss, r->salvaged, sizeof(r->salvaged));
	r->count = ha_gtid_count_missing(&pa, before);
	char note[300] = "";
	if (r->count)
		record_salvaged(m, &miss, r, note, sizeof(note));
	r->complete = !rp->killed[0] && WIFEXITED(rp->st[1]) && WEXITSTATUS(rp->st[1]) == 0;
	char tail[300] = "";
	if (!r->complete)
		ha_proc_last_line(rp->log, tail, sizeof(tail));
	snprintf(r->msg, sizeof(r->msg),
	         "%llu transactions from %u of %u binlog files applied to %s:%u%s%s%s",
	         (unsigned long long)r->count, r->files, rp->nfiles, q->target.host, q->target.port,
	         note,
	         rp->killed[0]  ? rp->killed
	         : !r->complete ? "; the client failed: "
	                        : "",
	         tail);
	return 0;
}

/* The steps of the header's comment, in order; each failure stops with r->msg. */
int ha_db_salvage(const struct ha_salvage_req *q, struct ha_salvage_result *r)
{
	memset(r, 0, sizeof(*r));
	uint64_t deadline = ha_now_ms() + q->timeout_ms;
	char err[400];
	if (q->binlog_index == NULL || !q->binlog_index[0]) {
		snprintf(r->msg, sizeof(r->msg),
		         "this server's binlog location is unknown (its agent never saw it up)");
		return HA_EINVAL;
	}
	MYSQL *m = ha_db_open(&q->target, err, sizeof(err), NULL);
	if (m == NULL) {
		snprintf(r->msg, sizeof(r->msg), "connect to the new primary %s:%u: %s",
		         q->target.host, q->target.port, err);
		return HA_EDB;
	}
	struct ha_gtid_pos pb;
	struct replay rp;
	int rc = still_read_only(m, r);
	if (rc == 0)
		rc = apply_relayed(m, q, r, deadline);
	if (rc == 0 && (rc = position(m, &pb, r)) == 0)
		ha_gtid_format(&pb, r->before, sizeof(r->before));
	if (rc == 0)
		rc = replay(q, r, &pb, deadline, &rp);
	if (rc == 0) {
		/* what it gained, measured (also after a partial run: that is on the new primary
		 * now) */
		mysql_close(m);
		m = ha_db_open(&q->target, err, sizeof(err), NULL);
		if (m == NULL) {
			snprintf(r->msg, sizeof(r->msg), "the new primary after the salvage: %s",
			         err);
			rc = HA_EDB;
		}
	}
	if (rc == 0)
		rc = measure(m, q, r, &pb, &rp);
	if (m)
		mysql_close(m);
	return rc;
}
