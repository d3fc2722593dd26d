/* haadm's access to the backups (backup.h): the catalog from any agent, a hold against
 * retention, the repository with its key, and restoring a chain into a datadir; and the
 * commands that read the repository directly (the same path on every node) with the master key
 * from [backup] key_file, run here, in haadm: haadm restore and haadm backup verify [--drill]. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../consensus/fsm.h"
#include "../backup/archive.h"
#include "../backup/fsutil.h"
#include "../backup/policy.h"
#include "../backup/pipeline.h"
#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/frame.h"
#include "../common/proc.h"
#include "../common/secret.h"
#include "../db/tables.h"
#include "backup.h"
#include "pitr.h"
#include "call.h"
#include "haadm.h"

static const char *const state_names[] = {"?", "running", "done", "failed", "abandoned", "deleted"};

const char *ha_cli_state_name(uint32_t s)
{
	return s <= 5 ? state_names[s] : "?";
}

static int bad(const char *cmd)
{
	fprintf(stderr, "haadm %s: bad arguments; see 'haadm help %s'\n", cmd, cmd);
	return HA_EUSAGE;
}

void ha_cli_result_json(const char *result, uint64_t id, const char *detail, uint64_t ms,
                        const char *dir)
{
	struct ha_buf b = HA_BUF_INIT;
	struct ha_json j;
	ha_json_init(&j, &b, true);
	ha_json_obj_begin(&j, NULL);
	ha_json_uint(&j, "format", 1);
	ha_json_str(&j, "result", result);
	ha_json_uint(&j, "id", id);
	ha_json_str(&j, "detail", detail);
	ha_json_uint(&j, "ms", ms);
	ha_json_str_or_null(&j, "target_dir", dir);
	ha_json_obj_end(&j);
	printf("%s\n", ha_buf_cstr(&b));
	ha_buf_free(&b);
}

/* The catalog, from the first agent that answers. */
/* ---- the catalog from the repository alone (every node lost) ---- */

static char *own_str(const char *v)
{
	char *d = strdup(v ? v : "");
	if (d == NULL)
		abort(); /* haadm: out of memory at this size is not recoverable */
	return d;
}

/* A catalog record from an authenticated manifest: every string its own (freed with the
 * response). */
static Haagent__BackupRecord *record_of(const struct ha_manifest *m)
{
	Haagent__BackupRecord *b = malloc(sizeof(*b));
	if (b == NULL)
		abort();
	haagent__backup_record__init(b);
	b->id = m->id;
	b->name = own_str(m->name);
	b->type = own_str(m->type);
	b->parent = m->parent;
	b->state = HA_BK_DONE;
	b->started_unix_ms = m->started_ms;
	b->finished_unix_ms = m->finished_ms;
	b->from_lsn = m->from_lsn;
	b->to_lsn = m->to_lsn;
	b->gtid = own_str(m->gtid);
	b->bytes_in = m->bytes_in;
	b->bytes_stored = m->bytes_stored;
	b->chunks = (uint32_t)m->n_chunks;
	b->detail = own_str("read from the repository (no agent answered)");
	b->verify_detail = own_str("");
	b->server_id = m->server_id;
	b->instance = own_str(m->instance);
	b->manifest_sha = own_str(m->file_sha);
	return b;
}

static int by_id(const void *a, const void *b)
{
	const Haagent__BackupRecord *x = *(Haagent__BackupRecord *const *)a,
	                            *y = *(Haagent__BackupRecord *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The archive's head: the newest slice whose manifest authenticates. */
static Haagent__ArchiveState *archive_of(struct repo *rp)
{
	char **names = NULL;
	size_t n = 0;
	struct ha_err e = {0};
	if (rp->archive.ops->list(&rp->archive, &names, &n, &e) != 0 || n == 0) {
		ha_store_names_free(names, n);
		return NULL;
	}
	Haagent__ArchiveState *a = NULL;
	for (size_t i = n; i-- > 0 && a == NULL;) {
		struct ha_slice sl;
		if (ha_archive_slice(&rp->archive, rp->key, names[i], &sl, &e) != 0)
			continue;
		a = malloc(sizeof(*a));
		if (a == NULL)
			abort();
		haagent__archive_state__init(a);
		a->head = own_str(sl.name);
		a->seq = sl.seq;
		a->server_id = sl.server_id;
		a->end_gtid = own_str(sl.end);
		a->last_ts = sl.last_ts;
		a->sealed_unix_ms = sl.sealed_ms;
		a->last_gap = own_str("");
		a->last_errant = own_str("");
		a->run_start_gtid = own_str("");
		a->node = own_str(sl.node);
		a->state = own_str("read from the repository (no agent answered)");
		ha_slice_free(&sl);
	}
	ha_store_names_free(names, n);
	return a;
}

/* Every backup whose manifest authenticates, and the archive's head: what a restore needs when
 * no agent is left to answer (the cluster is lost; the repository is off-site). */
static int catalog_from_repo(const struct globals *g, Haagent__BackupsResponse **out,
                             struct ha_err *e)
{
	struct repo rp;
	int rc = ha_cli_open_repo(g, &rp, e);
	if (rc != 0)
		return rc;
	char **names = NULL;
	size_t n = 0;
	if ((rc = rp.store.ops->list(&rp.store, &names, &n, e)) != 0)
		return rc;
	Haagent__BackupsResponse *r = malloc(sizeof(*r));
	if (r == NULL)
		abort();
	haagent__backups_response__init(r);
	r->backups = calloc(n ? n : 1, sizeof(*r->backups));
	if (r->backups == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct ha_manifest m;
		struct ha_err me = {0};
		if (ha_backup_manifest(&rp.store, rp.key, names[i], &m, &me) != 0) {
			fprintf(stderr, "haadm: %s: skipped: %s\n", names[i], me.msg);
			continue;
		}
		r->backups[r->n_backups++] = record_of(&m);
		ha_manifest_free(&m);
	}
	qsort(r->backups, r->n_backups, sizeof(*r->backups), by_id);
	r->archive = archive_of(&rp);
	ha_store_names_free(names, n);
	ha_wipe(rp.key, sizeof(rp.key));
	fprintf(stderr,
	        "haadm: no agent answered: the catalog is read from the repository %s (%zu "
	        "backups%s)\n",
	        rp.path, r->n_backups, r->archive ? ", the binlog archive" : "");
	*out = r;
	return 0;
}

int ha_cli_catalog(const struct globals *g, Haagent__BackupsResponse **out, struct ha_err *e)
{
	struct target t[HA_CLI_MAX_TARGETS];
	unsigned n;
	int rc = ha_cli_targets(g, t, &n, e);
	if (rc != 0)
		return rc;
	Haagent__BackupsRequest req = HAAGENT__BACKUPS_REQUEST__INIT;
	for (unsigned i = 0; i < n; i++) {
		int type;
		uint8_t *buf;
		size_t len;
		if (ha_call(t[i].host, t[i].port, HA_MSG_BACKUPS_REQUEST, &req, g->timeout_ms,
		            &type, &buf, &len, e) != 0)
			continue;
		Haagent__BackupsResponse *r =
		    type == HA_MSG_BACKUPS_RESPONSE
		        ? haagent__backups_response__unpack(NULL, len, buf)
		        : NULL;
		free(buf);
		if (r) {
			*out = r;
			return 0;
		}
	}
	/* every agent gone: the repository holds the manifests and the archive */
	struct ha_err re = {0};
	if (catalog_from_repo(g, out, &re) == 0)
		return 0;
	return ha_err_set(e, rc ? rc : HA_ECONNECT,
	                  "no agent answered, and the repository cannot stand in: %s", re.msg);
}

int ha_cli_hold(const struct globals *g, uint64_t id, Haagent__BackupsResponse **cat,
                struct ha_err *e)
{
	Haagent__BackupHoldRequest h = HAAGENT__BACKUP_HOLD_REQUEST__INIT;
	h.id = id;
	h.hold_ms = HA_CLI_HOLD_MS;
	Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
	req.op_case = HAAGENT__ADMIN_REQUEST__OP_BACKUP_HOLD;
	req.backup_hold = &h;
	Haagent__AdminResponse *r = NULL;
	struct ha_err he = {0};
	uint64_t asked = ha_unix_ms();
	if (ha_cli_admin(g, &req, &r, &he) != 0 && r) {
		haagent__admin_response__free_unpacked(r, NULL);
		r = NULL;
	}
	if (r && r->code != 0 && r->code != HA_ENOLEADER && r->code != HA_EBUSY &&
	    r->code != HA_ERAFT) {
		/* the leader refuses (not a finished backup there): nothing to read */
		int code = ha_err_set(e, HA_EREFUSED, "backup %llu cannot be held: %s",
		                      (unsigned long long)id, r->message);
		haagent__admin_response__free_unpacked(r, NULL);
		return code;
	}
	if (r == NULL || r->code != 0) {
		/* no leader now: a restore is needed most when the cluster is broken */
		fprintf(stderr,
		        "haadm: warning: backup %llu could not be held against retention (%s); "
		        "reading it anyway\n",
		        (unsigned long long)id, r ? r->message : he.msg);
		if (r)
			haagent__admin_response__free_unpacked(r, NULL);
		return 0;
	}
	haagent__admin_response__free_unpacked(r, NULL);
	/* accepted by the leader: committed a moment later */
	for (uint64_t t0 = ha_now_ms(); ha_now_ms() - t0 < 10000; usleep(100 * 1000)) {
		Haagent__BackupsResponse *fresh = NULL;
		if (ha_cli_catalog(g, &fresh, e) != 0)
			return e->code;
		haagent__backups_response__free_unpacked(*cat, NULL);
		*cat = fresh;
		const Haagent__BackupRecord *b = ha_cli_backup_find(fresh, id);
		if (b == NULL || b->state != HA_BK_DONE ||
		    b->held_until_unix_ms >= asked + HA_CLI_HOLD_MS / 2)
			return 0; /* held, or gone: the chain check says which */
	}
	fprintf(stderr,
	        "haadm: warning: the hold of backup %llu did not show in the catalog within 10 s; "
	        "reading it anyway\n",
	        (unsigned long long)id);
	return 0;
}

const Haagent__BackupRecord *ha_cli_backup_find(const Haagent__BackupsResponse *r, uint64_t id)
{
	for (size_t i = 0; i < r->n_backups; i++)
		if (r->backups[i]->id == id)
			return r->backups[i];
	return NULL;
}

/* ---- the repository, from the config ---- */

/* "PATH" for one repository, "NAME (WHERE), ..." for several. */
static void repos_text(const struct ha_repos *rs, char *out, size_t size)
{
	if (rs->n == 1) {
		snprintf(out, size, "%s", rs->r[0].where);
		return;
	}
	struct ha_buf b = HA_BUF_INIT;
	for (size_t i = 0; i < rs->n; i++)
		ha_buf_printf(&b, "%s%s (%s)", i ? ", " : "", rs->r[i].name, rs->r[i].where);
	snprintf(out, size, "%s", ha_buf_cstr(&b));
	ha_buf_free(&b);
}

int ha_cli_open_repo(const struct globals *g, struct repo *rp, struct ha_err *e)
{
	struct ha_config *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	int rc = ha_config_load(ha_cli_conf_path(g), 0, c, e);
	if (rc == 0 && !c->n_repos)
		rc = ha_err_set(e, HA_ECONFIG, "no repository in %s ([repository NAME] sections)",
		                c->path);
	if (rc == 0)
		rc = ha_repos_open(&rp->repos, c, e);
	if (rc == 0 && g->repository) {
		/* --repository: that one alone, its copies checked without falling back */
		int i = ha_repos_index(&rp->repos, g->repository);
		if (i < 0) {
			struct ha_buf known = HA_BUF_INIT;
			for (size_t k = 0; k < rp->repos.n; k++)
				ha_buf_printf(&known, "%s%s", k ? ", " : "", rp->repos.r[k].name);
			rc = ha_err_set(e, HA_EINVAL, "--repository %s: not in %s (it has: %s)",
			                g->repository, c->path, ha_buf_cstr(&known));
			ha_buf_free(&known);
		} else {
			rp->repos.r[0] = rp->repos.r[i];
			rp->repos.n = 1;
		}
	}
	if (rc == 0) {
		repos_text(&rp->repos, rp->path, sizeof(rp->path));
		rp->store = rp->repos.all_backups;
		snprintf(rp->mbstream, sizeof(rp->mbstream), "%s", c->backup_mbstream);
		snprintf(rp->tool, sizeof(rp->tool), "%s", c->backup_tool);
		snprintf(rp->binlog_tool, sizeof(rp->binlog_tool), "%s", c->backup_binlog_tool);
		snprintf(rp->client_tool, sizeof(rp->client_tool), "%s", c->backup_client_tool);
		rp->archive = rp->repos.all_archive;
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		rp->workers =
		    c->backup_workers ? c->backup_workers : (unsigned)(cores > 0 ? cores : 2);
		rc = ha_key_load(c->backup_key_file, rp->key, e);
	}
	free(c);
	return rc;
}

static int run_tool(char *const argv[], const char *log, struct ha_err *e)
{
	struct ha_proc_spec sp = {
	    .argv = argv,
	    .io = {HA_PROC_INHERIT, {.fd = -1, .path = log, .append = true}, HA_PROC_INHERIT},
	    .err_to_out = true};
	pid_t pid;
	int status, rc = ha_proc_start(&sp, &pid);
	if (rc != 0)
		return ha_err_set(e, HA_EIO, "cannot run %s: %s", argv[0], strerror(rc));
	ha_proc_wait(pid, 0, false, &status);
	if (!ha_proc_ok(status))
		return ha_err_set(e, HA_EIO, "%s %s failed; see %s", argv[0], argv[1], log);
	return 0;
}

/* Restores backup id (with its chain) into dir, ready to start. The datadir is built in a
 * staging directory beside dir (DIR.haagent-partial, the same file system) and renamed into
 * place at the end: dir appears whole or not at all, and a damaged chunk, a failed prepare or
 * an interruption leaves no half-restored datadir where a server could be started on it. The
 * tools' log goes to DIR.haagent-restore.log, kept when something fails. */
static void pb_lookup(const void *catalog, uint64_t id, struct ha_bk_link *out)
{
	const Haagent__BackupRecord *b = ha_cli_backup_find(catalog, id);
	out->state = b ? (enum ha_backup_state)b->state : 0;
	out->full = b && !strcmp(b->type, "full");
	out->parent = b ? b->parent : 0;
	out->node = b ? b->node : 0;
	out->server_id = b ? b->server_id : 0;
	out->instance = b && b->instance ? b->instance : "";
}

/* The manifest of catalog record b: read, authenticated, and compared with the record. */
static int manifest_of(struct repo *rp, const Haagent__BackupRecord *b, struct ha_manifest *m,
                       struct ha_err *e)
{
	int rc = ha_backup_manifest(&rp->store, rp->key, b->name, m, e);
	if (rc != 0)
		return rc;
	struct ha_manifest_expect x = {.id = b->id,
	                               .name = b->name,
	                               .type = b->type,
	                               .parent = b->parent,
	                               .chunks = b->chunks,
	                               .bytes_stored = b->bytes_stored,
	                               .server_id = b->server_id,
	                               .instance = b->instance ? b->instance : "",
	                               .manifest_sha = b->manifest_sha ? b->manifest_sha : ""};
	if ((rc = ha_manifest_check(m, &x, e)) != 0)
		ha_manifest_free(m);
	return rc;
}

int ha_cli_backup_chain(const Haagent__BackupsResponse *cat, uint64_t id,
                        uint64_t chain[HA_CLI_MAX_CHAIN], struct ha_err *e)
{
	uint64_t up[HA_CLI_MAX_CHAIN];
	char why[256];
	int n = ha_bk_chain_of(pb_lookup, cat, id, up, HA_CLI_MAX_CHAIN, why, sizeof(why));
	if (n < 0)
		return ha_err_set(e, HA_EINVAL, "%s", why);
	for (int k = 0; k < n; k++) /* from id down to its full backup */
		chain[k] = up[n - 1 - k];
	return n;
}

/* The restored datadir durable before it appears under its name: a power loss right after a
 * restore or a reclone must not leave empty table files behind a name that says "restored". */
static int sync_tree(const char *stage, struct ha_err *e)
{
	int fd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) != 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return ha_err_set(e, HA_EIO, "sync %s: %s", stage, strerror(err));
	}
	close(fd);
	return 0;
}

static int sync_parent(const char *dir)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(parent, sizeof(parent), ".");
	return ha_fsync_dir(parent);
}

int ha_cli_restore_chain(struct repo *rp, const Haagent__BackupsResponse *cat, uint64_t id,
                         const char *dir, unsigned *n_out, struct ha_err *e)
{
	uint64_t chain[HA_CLI_MAX_CHAIN];
	int n = ha_cli_backup_chain(cat, id, chain, e);
	if (n < 0)
		return n;
	struct stat sb;
	if (stat(dir, &sb) == 0 && (!S_ISDIR(sb.st_mode) || rmdir(dir) != 0))
		return ha_err_set(e, HA_EINVAL, "%s exists and is not an empty directory", dir);
	char stage[PATH_MAX], log[PATH_MAX];
	if ((size_t)snprintf(stage, sizeof(stage), "%s.haagent-partial", dir) >= sizeof(stage) ||
	    (size_t)snprintf(log, sizeof(log), "%s.haagent-restore.log", dir) >= sizeof(log))
		return ha_err_set(e, HA_EINVAL, "%s: path too long", dir);
	ha_rm_rf(stage); /* what an interrupted restore left */
	if (mkdir(stage, 0750) != 0)
		return ha_err_set(e, HA_EIO, "mkdir %s: %s", stage, strerror(errno));
	unlink(log);
	int rc = 0;
	for (int k = n - 1; k >= 0 && rc == 0; k--) {
		const Haagent__BackupRecord *b = ha_cli_backup_find(cat, chain[k]);
		struct ha_manifest m;
		if ((rc = manifest_of(rp, b, &m, e)) != 0)
			break;
		char inc[PATH_MAX + 32];
		snprintf(inc, sizeof(inc), "%s/.haagent-inc-%llu", stage,
		         (unsigned long long)b->id);
		const char *into = k == n - 1 ? stage : inc;
		if (k != n - 1 && mkdir(inc, 0750) != 0) {
			ha_manifest_free(&m);
			rc = ha_err_set(e, HA_EIO, "mkdir %s: %s", inc, strerror(errno));
			break;
		}
		rc = ha_backup_extract(&rp->store, rp->key, &m, rp->mbstream, into, rp->workers, e);
		ha_manifest_free(&m);
		if (rc != 0)
			break;
		char a_target[PATH_MAX + 16], a_inc[PATH_MAX + 64];
		snprintf(a_target, sizeof(a_target), "--target-dir=%s", stage);
		snprintf(a_inc, sizeof(a_inc), "--incremental-dir=%s", inc);
		char *argv[] = {(char *)rp->tool, "--prepare", a_target, k == n - 1 ? NULL : a_inc,
		                NULL};
		rc = run_tool(argv, log, e);
		if (k != n - 1)
			ha_rm_rf(inc);
	}
	if (rc == 0)
		rc = sync_tree(stage, e);
	if (rc == 0 && rename(stage, dir) != 0)
		rc = ha_err_set(e, HA_EIO, "rename %s to %s: %s", stage, dir, strerror(errno));
	if (rc == 0 && sync_parent(dir) != 0)
		rc = ha_err_set(e, HA_EIO, "sync the directory of %s: %s", dir, strerror(errno));
	if (rc != 0) {
		ha_rm_rf(stage);
		return rc;
	}
	unlink(log);
	*n_out = (unsigned)n;
	return 0;
}

/* ---- drill: start a throwaway mariadbd on the restored datadir, check every table ---- */

#define DRILL_START_MS 120000 /* crash recovery of a large datadir may take a while */
#define DRILL_STOP_MS  60000

int ha_cli_server_start(const char *dir, const char *logs, const char *name,
                        struct ha_cli_server *srv, struct ha_err *e)
{
	char a_dir[PATH_MAX + 16], a_sock[PATH_MAX + 16], a_pid[PATH_MAX + 48],
	    a_err[PATH_MAX + 48];
	snprintf(srv->sock, sizeof(srv->sock), "%s/%s.sock", dir, name);
	snprintf(a_dir, sizeof(a_dir), "--datadir=%s", dir);
	snprintf(a_sock, sizeof(a_sock), "--socket=%s", srv->sock);
	snprintf(a_pid, sizeof(a_pid), "--pid-file=%s/%s.pid", dir, name);
	snprintf(a_err, sizeof(a_err), "--log-error=%s/%s.err", logs, name);
	char *argv[] = {"mariadbd",
	                "--no-defaults",
	                a_dir,
	                a_sock,
	                a_pid,
	                a_err,
	                "--skip-networking",
	                "--skip-grant-tables",
	                "--skip-slave-start",
	                "--user=root",
	                "--innodb-buffer-pool-size=64M",
	                NULL};
	struct ha_proc_spec sp = {.argv = argv,
	                          .io = {HA_PROC_INHERIT, HA_PROC_NULL, HA_PROC_NULL}};
	int rc = ha_proc_start(&sp, &srv->pid);
	if (rc != 0)
		return ha_err_set(e, HA_EIO, "cannot start mariadbd: %s", strerror(rc));
	srv->where = (struct ha_db_where){
	    .socket = srv->sock, .user = "root", .timeout_ms = 2000, .statement_ms = 3600 * 1000};
	for (uint64_t deadline = ha_now_ms() + DRILL_START_MS; ha_now_ms() < deadline;) {
		if (ha_db_ping(&srv->where) == 0)
			return 0;
		if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid) {
			srv->pid = 0;
			break;
		}
		usleep(100 * 1000);
	}
	ha_cli_server_stop(srv);
	return ha_err_set(e, HA_EDB, "the restored datadir does not start (see %s/%s.err)", logs,
	                  name);
}

int ha_cli_server_stop(struct ha_cli_server *srv)
{
	if (srv->pid <= 0)
		return 0;
	/* SIGTERM is a clean shutdown */
	kill(srv->pid, SIGTERM);
	int status;
	int killed = ha_proc_wait(srv->pid, DRILL_STOP_MS, false, &status); /* then SIGKILL */
	srv->pid = 0;
	return killed == 0 && ha_proc_ok(status) ? 0 : -1;
}

/* logs: where mariadbd's error log goes (drill.err), kept when the drill fails. */
static int drill(const char *dir, const char *logs, const struct ha_manifest *m, char *detail,
                 size_t size, struct ha_err *e)
{
	struct ha_cli_server srv = {0};
	int rc = ha_cli_server_start(dir, logs, "drill", &srv, e);
	if (rc != 0)
		return rc;
	rc = ha_db_drill_tables(&srv.where, m->sums, m->n_sums, m->sums_note, detail, size);
	ha_cli_server_stop(&srv);
	if (rc != 0)
		return ha_err_set(e, HA_EDB, "%s", detail);
	return 0;
}

static void report_verified(struct globals *g, uint64_t id, bool ok, bool drilled,
                            const char *detail, uint64_t ms)
{
	Haagent__BackupVerifiedRequest v = HAAGENT__BACKUP_VERIFIED_REQUEST__INIT;
	v.id = id;
	v.ok = ok;
	v.drill = drilled;
	v.detail = (char *)detail;
	v.drill_ms = ms;
	Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
	req.op_case = HAAGENT__ADMIN_REQUEST__OP_BACKUP_VERIFIED;
	req.backup_verified = &v;
	Haagent__AdminResponse *r = NULL;
	struct ha_err e = {0};
	if (ha_cli_admin(g, &req, &r, &e) != 0 || r->code != 0)
		fprintf(stderr, "haadm: the result could not be recorded in the catalog: %s\n",
		        r ? r->message : e.msg);
	if (r)
		haagent__admin_response__free_unpacked(r, NULL);
}

/* verify without --drill: every chunk's hash and authenticated decryption. */
static int check_chunks(struct repo *rp, const Haagent__BackupsResponse *cat,
                        const Haagent__BackupRecord *b, char *detail, size_t size, struct ha_err *e)
{
	uint64_t chain[HA_CLI_MAX_CHAIN]; /* whole, on one datadir: what a restore would need */
	int rc = ha_cli_backup_chain(cat, b->id, chain, e);
	if (rc < 0)
		return rc;
	struct ha_manifest m;
	if ((rc = manifest_of(rp, b, &m, e)) != 0)
		return rc;
	rc = ha_backup_extract(&rp->store, rp->key, &m, NULL, NULL, rp->workers, e);
	if (rc == 0)
		snprintf(detail, size, "%zu chunks: hashes and decryption ok (%llu bytes)",
		         m.n_chunks, (unsigned long long)m.bytes_in);
	ha_manifest_free(&m);
	return rc;
}

/* verify --drill: the chain restored into a scratch directory and started (drill()). A failed
 * drill keeps its logs there, where its message says; *recordable: whether the result says
 * anything about the backup (false when the scratch directory could not even be made). */
/* After a drill that passed: the binlog archive replayed onto the drilled datadir up to its
 * head, and CHECK TABLE again: the archive applies onto this backup. Its outcome is told in
 * detail (and on stderr when it fails); the backup's own result does not depend on it. */
static void drill_archive(struct repo *rp, const Haagent__BackupsResponse *cat,
                          const Haagent__BackupRecord *b, const char *dir, const char *logs,
                          char *detail, size_t size)
{
	if (cat->archive == NULL || !cat->archive->head[0])
		return;
	char position[HA_GTID_TEXT_MAX], d[400] = "";
	uint64_t replayed = 0;
	struct ha_err e = {0};
	int rc =
	    ha_pitr_roll_forward(rp, cat, b->id, dir, position, sizeof(position), &replayed, &e);
	struct ha_manifest none = {0}; /* CHECK TABLE only: the data moved past the checksums */
	if (rc == 0)
		rc = drill(dir, logs, &none, d, sizeof(d), &e);
	if (rc == 0) {
		char brief[HA_GTID_BRIEF_MAX];
		snprintf(detail, size,
		         "; the binlog archive replayed onto it (%llu transactions, to %s), CHECK "
		         "TABLE passed again",
		         (unsigned long long)replayed, ha_gtid_brief(position, brief));
		return;
	}
	snprintf(detail, size, "; the binlog archive could NOT be replayed onto it: %s", e.msg);
	fprintf(stderr,
	        "haadm: backup verify: the binlog archive could not be replayed onto backup "
	        "%llu: %s\n",
	        (unsigned long long)b->id, e.msg);
}

static int drill_chain(struct repo *rp, const Haagent__BackupsResponse *cat,
                       const Haagent__BackupRecord *b, char *detail, size_t size, bool *recordable,
                       struct ha_err *e)
{
	char tmpl[] = "/tmp/haagent-drill-XXXXXX";
	char *base = mkdtemp(tmpl);
	if (base == NULL) {
		*recordable = false;
		return ha_err_set(e, HA_EIO, "mkdtemp: %s", strerror(errno));
	}
	char dir[PATH_MAX], d2[700] = "";
	snprintf(dir, sizeof(dir), "%s/datadir", base);
	unsigned links = 0;
	int rc = ha_cli_restore_chain(rp, cat, b->id, dir, &links, e);
	struct ha_manifest m;
	if (rc == 0 && (rc = manifest_of(rp, b, &m, e)) == 0) {
		rc = drill(dir, base, &m, d2, sizeof(d2), e);
		ha_manifest_free(&m);
	}
	if (rc == 0) {
		char d3[600] = "";
		drill_archive(rp, cat, b, dir, base, d3, sizeof(d3));
		snprintf(detail, size, "drill: chain of %u restored, %s%s", links, d2, d3);
		ha_rm_rf(base);
		return 0;
	}
	if (rc == HA_EPROTO || rc == HA_EINVAL) {
		/* refused before any tool failed (a damaged chunk or manifest, a broken chain): the
		 * message says all, no log to keep */
		ha_rm_rf(base);
		return rc;
	}
	/* a tool failed: the logs the message names stay; the (large) datadir goes */
	char partial[PATH_MAX + 32];
	snprintf(partial, sizeof(partial), "%s.haagent-partial", dir);
	ha_rm_rf(dir);
	ha_rm_rf(partial);
	return ha_err_wrap(e, "drill (its logs are kept in %s)", base);
}

int ha_cli_backup_verify(struct globals *g, uint64_t id, bool drilling)
{
	struct repo rp;
	struct ha_err e = {0};
	Haagent__BackupsResponse *cat = NULL;
	uint64_t t0 = ha_now_ms();
	int rc = ha_cli_open_repo(g, &rp, &e);
	if (rc == 0 && (rc = ha_cli_catalog(g, &cat, &e)) == 0 &&
	    ha_cli_backup_find(cat, id) == NULL)
		rc = ha_err_set(&e, HA_EINVAL, "no backup %llu in the catalog",
		                (unsigned long long)id);
	if (rc == 0)
		rc = ha_cli_hold(g, id, &cat, &e);
	const Haagent__BackupRecord *b = rc == 0 ? ha_cli_backup_find(cat, id) : NULL;
	if (rc == 0 && b == NULL)
		rc = ha_err_set(&e, HA_EINVAL, "backup %llu left the catalog",
		                (unsigned long long)id);
	if (rc == 0 && b->state != HA_BK_DONE)
		rc = ha_err_set(&e, HA_EINVAL, "backup %llu is %s, not a finished backup",
		                (unsigned long long)id, ha_cli_state_name(b->state));
	if (rc != 0) {
		fprintf(stderr, "haadm: backup verify: %s\n", e.msg);
		if (cat)
			haagent__backups_response__free_unpacked(cat, NULL);
		return rc;
	}
	char detail[1024] = "";
	bool recordable = true;
	rc = drilling ? drill_chain(&rp, cat, b, detail, sizeof(detail), &recordable, &e)
	              : check_chunks(&rp, cat, b, detail, sizeof(detail), &e);
	uint64_t ms = ha_now_ms() - t0;
	if (rc != 0)
		snprintf(detail, sizeof(detail), "%s", e.msg);
	if (recordable)
		report_verified(g, id, rc == 0, drilling, detail, ms);
	if (g->json)
		ha_cli_result_json(rc == 0 ? "passed" : "failed", id, detail, ms, NULL);
	else
		fprintf(rc == 0 ? stdout : stderr, "%sbackup %llu: %s (%.1f s)\n",
		        rc == 0 ? "" : "haadm: verify FAILED: ", (unsigned long long)id, detail,
		        ms / 1000.0);
	haagent__backups_response__free_unpacked(cat, NULL);
	return rc == 0 ? 0 : HA_EPROTO;
}

/* --to-time, --to-gtid, --before-gtid: one point, parsed (a message when it is bad). */
static int point_option(int kind, const char *text, struct ha_pitr_point *pt, int *points)
{
	char why[256];
	(*points)++;
	if (ha_pitr_point_from(kind, text, pt, why, sizeof(why)) == 0)
		return 0;
	fprintf(stderr, "haadm restore: %s\n", why);
	return -1;
}

static int restore_one(struct globals *g, uint64_t id, const char *dir);

int ha_cmd_restore(struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"target-dir", required_argument, NULL, 'T'},
	    {"to-time", required_argument, NULL, HA_PITR_TIME},
	    {"to-gtid", required_argument, NULL, HA_PITR_TO_GTID},
	    {"before-gtid", required_argument, NULL, HA_PITR_BEFORE_GTID},
	    {"repository", required_argument, NULL, 'R'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	struct ha_pitr_point pt = {0};
	int points = 0;
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'T':
			dir = optarg;
			break;
		case 'R':
			g->repository = optarg;
			break;
		case 'j':
			g->json = true;
			break;
		case 'h':
			ha_cli_help("restore");
			return 0;
		case HA_PITR_TIME:
		case HA_PITR_TO_GTID:
		case HA_PITR_BEFORE_GTID:
			if (point_option(o, optarg, &pt, &points) != 0)
				return HA_EUSAGE;
			break;
		default:
			return bad("restore");
		}
	}
	if (points > 1) {
		fprintf(stderr, "haadm restore: give one of --to-time, --to-gtid, --before-gtid\n");
		return HA_EUSAGE;
	}
	uint64_t id = 0;
	if (argc - optind == 1 && ha_cli_parse_id("restore", argv[optind], &id) != 0)
		return HA_EUSAGE;
	if (points == 1 && dir && argc - optind <= 1)
		return ha_pitr_restore(g, id, &pt, dir);
	if (argc - optind != 1 || dir == NULL)
		return bad("restore");
	return restore_one(g, id, dir);
}

/* haadm restore ID --target-dir DIR: the chain of ID, held against retention while read. */
static int restore_one(struct globals *g, uint64_t id, const char *dir)
{
	struct repo rp;
	struct ha_err e = {0};
	Haagent__BackupsResponse *cat = NULL;
	uint64_t t0 = ha_now_ms();
	unsigned links = 0;
	int rc = ha_cli_open_repo(g, &rp, &e);
	if (rc == 0)
		rc = ha_cli_catalog(g, &cat, &e);
	if (rc == 0)
		rc = ha_cli_hold(g, id, &cat, &e);
	if (rc == 0)
		rc = ha_cli_restore_chain(&rp, cat, id, dir, &links, &e);
	uint64_t ms = ha_now_ms() - t0;
	char detail[1100];
	if (rc == 0)
		snprintf(detail, sizeof(detail),
		         "restored a chain of %u backup%s, prepared: start mariadbd with "
		         "--datadir=%s",
		         links, links == 1 ? "" : "s", dir);
	else
		snprintf(detail, sizeof(detail), "%s", e.msg);
	if (g->json)
		ha_cli_result_json(rc == 0 ? "restored" : "failed", id, detail, ms, dir);
	else
		fprintf(rc ? stderr : stdout, "%s%s (%.1f s)\n", rc ? "haadm: restore: " : "",
		        detail, ms / 1000.0);
	if (cat)
		haagent__backups_response__free_unpacked(cat, NULL);
	return rc == 0 ? 0 : (rc == HA_EPROTO ? HA_EPROTO : rc);
}
