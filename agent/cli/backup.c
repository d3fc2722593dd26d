/* haadm backup run|list|show|verify and haadm restore. The catalog is read from any agent (it
 * is replicated); verify and restore read the repository directly (the same path on every
 * node) with the master key from [backup] key_file, and run here, in haadm. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <getopt.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../consensus/fsm.h"
#include "../backup/fsutil.h"
#include "../backup/policy.h"
#include "../backup/pipeline.h"
#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/frame.h"
#include "../common/proc.h"
#include "../db/tables.h"
#include "backup.h"
#include "call.h"
#include "haadm.h"

extern char **environ;

#define RECORD_WAIT_MS 15000 /* an accepted job must appear in the catalog within this */

static const char *const state_names[] = {"?", "running", "done", "failed", "abandoned", "deleted"};

static const char *st_name(uint32_t s)
{
	return s <= 5 ? state_names[s] : "?";
}

static int bad(const char *cmd)
{
	fprintf(stderr, "haadm %s: bad arguments; see 'haadm help %s'\n", cmd, cmd);
	return HA_EUSAGE;
}

/* The catalog, from the first agent that answers. */
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
	return ha_err_wrap(e, "no agent answered");
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
	if (ha_cli_admin(g, &req, &r, &he) != 0 || r->code != 0) {
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

static void record_json(struct ha_json *j, const Haagent__BackupRecord *b, const char *node)
{
	ha_json_obj_begin(j, NULL);
	ha_json_uint(j, "id", b->id);
	ha_json_str(j, "name", b->name);
	ha_json_str(j, "type", b->type);
	if (b->parent)
		ha_json_uint(j, "parent", b->parent);
	else
		ha_json_null(j, "parent");
	ha_json_str(j, "node", node);
	ha_json_str(j, "state", st_name(b->state));
	ha_json_uint(j, "requested_unix_ms", b->requested_unix_ms);
	ha_json_uint(j, "started_unix_ms", b->started_unix_ms);
	ha_json_uint(j, "finished_unix_ms", b->finished_unix_ms);
	ha_json_uint(j, "from_lsn", b->from_lsn);
	ha_json_uint(j, "to_lsn", b->to_lsn);
	ha_json_str_or_null(j, "gtid", b->gtid);
	ha_json_uint(j, "bytes_in", b->bytes_in);
	ha_json_uint(j, "bytes_stored", b->bytes_stored);
	ha_json_uint(j, "chunks", b->chunks);
	ha_json_str_or_null(j, "detail", b->detail);
	ha_json_uint(j, "server_id", b->server_id);
	ha_json_str_or_null(j, "datadir_instance", b->instance);
	ha_json_str_or_null(j, "manifest_sha256", b->manifest_sha);
	if (b->held_until_unix_ms)
		ha_json_uint(j, "held_until_unix_ms", b->held_until_unix_ms);
	else
		ha_json_null(j, "held_until_unix_ms");
	ha_json_str(j, "verified",
	            b->verified > 0   ? "passed"
	            : b->verified < 0 ? "failed"
	                              : "never");
	ha_json_bool(j, "drilled", b->drilled);
	ha_json_uint(j, "drill_ms", b->drill_ms);
	ha_json_str_or_null(j, "verify_detail", b->verify_detail);
	ha_json_obj_end(j);
}

/* Node names by id, from the config (the catalog stores ids). */
static void node_name(const struct globals *g, uint32_t id, char *out, size_t size)
{
	snprintf(out, size, "%u", id);
	struct ha_config *c = calloc(1, sizeof(*c));
	struct ha_err e = {0};
	if (c && ha_config_load(ha_cli_conf_path(g), 0, c, &e) == 0) {
		const struct ha_node_conf *n = ha_config_node_by_id(c, id);
		if (n)
			snprintf(out, size, "%s", n->name);
	}
	free(c);
}

static int list(struct globals *g, const char *show_id)
{
	Haagent__BackupsResponse *r;
	struct ha_err e = {0};
	if (ha_cli_catalog(g, &r, &e) != 0) {
		fprintf(stderr, "haadm: backup: %s\n", e.msg);
		return HA_ECONNECT;
	}
	uint64_t want = show_id ? strtoull(show_id, NULL, 10) : 0;
	if (show_id && ha_cli_backup_find(r, want) == NULL) {
		fprintf(stderr, "haadm: backup show: no backup %s in the catalog\n", show_id);
		haagent__backups_response__free_unpacked(r, NULL);
		return HA_EINVAL;
	}
	char nn[64];
	if (g->json) {
		struct ha_buf b = HA_BUF_INIT;
		struct ha_json j;
		ha_json_init(&j, &b, true);
		if (!show_id) {
			ha_json_obj_begin(&j, NULL);
			ha_json_uint(&j, "format", 1);
			ha_json_arr_begin(&j, "backups");
		}
		for (size_t i = 0; i < r->n_backups; i++) {
			if (show_id && r->backups[i]->id != want)
				continue;
			node_name(g, r->backups[i]->node, nn, sizeof(nn));
			record_json(&j, r->backups[i], nn);
		}
		if (!show_id) {
			ha_json_arr_end(&j);
			ha_json_obj_end(&j);
		}
		printf("%s\n", ha_buf_cstr(&b));
		ha_buf_free(&b);
	} else if (!show_id) {
		printf("%-4s %-40s %-12s %-6s %-9s %-10s %10s %10s %-8s\n", "ID", "NAME", "TYPE",
		       "PARENT", "STATE", "NODE", "READ MB", "STORED MB", "VERIFIED");
		for (size_t i = 0; i < r->n_backups; i++) {
			const Haagent__BackupRecord *b = r->backups[i];
			char parent[24] = "-";
			if (b->parent)
				snprintf(parent, sizeof(parent), "%llu",
				         (unsigned long long)b->parent);
			node_name(g, b->node, nn, sizeof(nn));
			printf("%-4llu %-40s %-12s %-6s %-9s %-10s %10.1f %10.1f %-8s\n",
			       (unsigned long long)b->id, b->name, b->type, parent,
			       st_name(b->state), nn, b->bytes_in / 1048576.0,
			       b->bytes_stored / 1048576.0,
			       b->verified > 0   ? (b->drilled ? "drilled" : "ok")
			       : b->verified < 0 ? "FAILED"
			                         : "-");
		}
	} else {
		const Haagent__BackupRecord *b = ha_cli_backup_find(r, want);
		node_name(g, b->node, nn, sizeof(nn));
		printf("backup %llu: %s\n  type %s, parent %llu, node %s, state %s\n  %s\n",
		       (unsigned long long)b->id, b->name, b->type, (unsigned long long)b->parent,
		       nn, st_name(b->state), b->detail);
		printf("  LSN %llu..%llu, GTID %s\n  %llu bytes read, %llu stored in %u chunks, "
		       "%.1f s\n",
		       (unsigned long long)b->from_lsn, (unsigned long long)b->to_lsn,
		       b->gtid[0] ? b->gtid : "-", (unsigned long long)b->bytes_in,
		       (unsigned long long)b->bytes_stored, b->chunks,
		       b->finished_unix_ms > b->started_unix_ms
		           ? (b->finished_unix_ms - b->started_unix_ms) / 1000.0
		           : 0.0);
		printf("  verified: %s%s%s\n",
		       b->verified > 0   ? "passed"
		       : b->verified < 0 ? "FAILED"
		                         : "never",
		       b->verify_detail[0] ? ": " : "", b->verify_detail);
	}
	haagent__backups_response__free_unpacked(r, NULL);
	return 0;
}

/* ---- the repository, from the config ---- */

int ha_cli_open_repo(const struct globals *g, struct repo *rp, struct ha_err *e)
{
	struct ha_config *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	int rc = ha_config_load(ha_cli_conf_path(g), 0, c, e);
	if (rc == 0 && !c->backup_repository[0])
		rc = ha_err_set(e, HA_ECONFIG, "no [backup] repository in %s", c->path);
	if (rc == 0) {
		snprintf(rp->path, sizeof(rp->path), "%s", c->backup_repository);
		ha_store_dir_init(&rp->store, rp->path);
		snprintf(rp->mbstream, sizeof(rp->mbstream), "%s", c->backup_mbstream);
		snprintf(rp->tool, sizeof(rp->tool), "%s", c->backup_tool);
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
	if (rc == 0 && rename(stage, dir) != 0)
		rc = ha_err_set(e, HA_EIO, "rename %s to %s: %s", stage, dir, strerror(errno));
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

/* logs: where mariadbd's error log goes (drill.err), kept when the drill fails. */
static int drill(const char *dir, const char *logs, const struct ha_manifest *m, char *detail,
                 size_t size, struct ha_err *e)
{
	char a_dir[PATH_MAX + 16], a_sock[PATH_MAX + 16], a_pid[PATH_MAX + 16],
	    a_err[PATH_MAX + 16], sock[PATH_MAX];
	snprintf(sock, sizeof(sock), "%s/drill.sock", dir);
	snprintf(a_dir, sizeof(a_dir), "--datadir=%s", dir);
	snprintf(a_sock, sizeof(a_sock), "--socket=%s", sock);
	snprintf(a_pid, sizeof(a_pid), "--pid-file=%s/drill.pid", dir);
	snprintf(a_err, sizeof(a_err), "--log-error=%s/drill.err", logs);
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
	pid_t pid;
	struct ha_proc_spec sp = {.argv = argv,
	                          .io = {HA_PROC_INHERIT, HA_PROC_NULL, HA_PROC_NULL}};
	int rc = ha_proc_start(&sp, &pid);
	if (rc != 0)
		return ha_err_set(e, HA_EIO, "cannot start mariadbd: %s", strerror(rc));
	struct ha_db_where w = {
	    .socket = sock, .user = "root", .timeout_ms = 2000, .statement_ms = 3600 * 1000};
	bool up = false;
	for (uint64_t deadline = ha_now_ms() + DRILL_START_MS; ha_now_ms() < deadline;) {
		if (ha_db_ping(&w) == 0) {
			up = true;
			break;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			pid = 0;
			break;
		}
		usleep(100 * 1000);
	}
	if (up)
		rc = ha_db_drill_tables(&w, m->sums, m->n_sums, m->sums_note, detail, size);
	else
		rc = ha_err_set(e, HA_EDB, "the restored datadir does not start (see %s/drill.err)",
		                logs);
	/* SIGTERM is a clean shutdown */
	if (pid) {
		kill(pid, SIGTERM);
		int status;
		ha_proc_wait(pid, DRILL_STOP_MS, false, &status); /* then SIGKILL */
	}
	if (up && rc != 0)
		return ha_err_set(e, HA_EDB, "%s", detail);
	return rc;
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

static void result_json(const char *result, uint64_t id, const char *detail, uint64_t ms,
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

/* verify without --drill: every chunk's hash and authenticated decryption. */
static int check_chunks(struct repo *rp, const Haagent__BackupRecord *b, char *detail, size_t size,
                        struct ha_err *e)
{
	struct ha_manifest m;
	int rc = manifest_of(rp, b, &m, e);
	if (rc != 0)
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
		snprintf(detail, size, "drill: chain of %u restored, %s", links, d2);
		ha_rm_rf(base);
		return 0;
	}
	/* the logs the message names stay; the (large) datadir goes */
	char partial[PATH_MAX + 32];
	snprintf(partial, sizeof(partial), "%s.haagent-partial", dir);
	ha_rm_rf(dir);
	ha_rm_rf(partial);
	return ha_err_wrap(e, "drill (its logs are kept in %s)", base);
}

static int verify(struct globals *g, uint64_t id, bool drilling)
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
		                (unsigned long long)id, st_name(b->state));
	if (rc != 0) {
		fprintf(stderr, "haadm: backup verify: %s\n", e.msg);
		if (cat)
			haagent__backups_response__free_unpacked(cat, NULL);
		return rc;
	}
	char detail[1024] = "";
	bool recordable = true;
	rc = drilling ? drill_chain(&rp, cat, b, detail, sizeof(detail), &recordable, &e)
	              : check_chunks(&rp, b, detail, sizeof(detail), &e);
	uint64_t ms = ha_now_ms() - t0;
	if (rc != 0)
		snprintf(detail, sizeof(detail), "%s", e.msg);
	if (recordable)
		report_verified(g, id, rc == 0, drilling, detail, ms);
	if (g->json)
		result_json(rc == 0 ? "passed" : "failed", id, detail, ms, NULL);
	else
		fprintf(rc == 0 ? stdout : stderr, "%sbackup %llu: %s (%.1f s)\n",
		        rc == 0 ? "" : "haadm: verify FAILED: ", (unsigned long long)id, detail,
		        ms / 1000.0);
	haagent__backups_response__free_unpacked(cat, NULL);
	return rc == 0 ? 0 : HA_EPROTO;
}

static int run(struct globals *g, const char *type, const char *node, bool wait)
{
	Haagent__BackupRunRequest br = HAAGENT__BACKUP_RUN_REQUEST__INIT;
	br.type = (char *)(type ? type : "full");
	br.node = (char *)(node ? node : "");
	Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
	req.op_case = HAAGENT__ADMIN_REQUEST__OP_BACKUP_RUN;
	req.backup_run = &br;
	Haagent__AdminResponse *r;
	struct ha_err e = {0};
	if (ha_cli_admin(g, &req, &r, &e) != 0) {
		fprintf(stderr, "haadm: backup run: %s\n", e.msg);
		return HA_ECONNECT;
	}
	int rc = r->code;
	uint64_t id = r->backup_id;
	if (rc != 0 || !wait) {
		if (g->json)
			result_json(rc ? "refused" : "started", id, r->message, 0, NULL);
		else
			fprintf(rc ? stderr : stdout, "%s%s\n", rc ? "haadm: refused: " : "",
			        r->message);
		haagent__admin_response__free_unpacked(r, NULL);
		return rc;
	}
	if (!g->json)
		printf("%s\n", r->message);
	haagent__admin_response__free_unpacked(r, NULL);
	/* follow it in the catalog; a job that never shows up there was not committed (a change
	 * of leader between the answer and the commit) */
	uint64_t t0 = ha_now_ms();
	for (;;) {
		Haagent__BackupsResponse *cat;
		if (ha_cli_catalog(g, &cat, &e) == 0) {
			const Haagent__BackupRecord *b = ha_cli_backup_find(cat, id);
			if (b == NULL && ha_now_ms() - t0 > RECORD_WAIT_MS) {
				haagent__backups_response__free_unpacked(cat, NULL);
				char msg[160];
				snprintf(
				    msg, sizeof(msg),
				    "backup %llu was accepted but never recorded in the catalog "
				    "(leader changed?); see 'haadm backup list' and retry",
				    (unsigned long long)id);
				if (g->json)
					result_json("unrecorded", id, msg, ha_now_ms() - t0, NULL);
				else
					fprintf(stderr, "haadm: backup run: %s\n", msg);
				return HA_ETIMEOUT;
			}
			if (b && b->state != HA_BK_RUNNING) {
				rc = b->state == HA_BK_DONE ? 0 : HA_EDB;
				char detail[600];
				snprintf(detail, sizeof(detail), "%s: %s%s%s", st_name(b->state),
				         b->name, b->state == HA_BK_DONE ? "" : ": ",
				         b->state == HA_BK_DONE ? "" : b->detail);
				if (g->json)
					result_json(st_name(b->state), id, detail, ha_now_ms() - t0,
					            NULL);
				else
					fprintf(rc ? stderr : stdout, "backup %llu %s\n",
					        (unsigned long long)id, detail);
				haagent__backups_response__free_unpacked(cat, NULL);
				return rc;
			}
			haagent__backups_response__free_unpacked(cat, NULL);
		}
		usleep(200 * 1000);
	}
}

struct policy_args {
	const char *full, *differential, *incremental;
	long keep_full, keep_days;
};

static int policy(struct globals *g, const struct policy_args *pa)
{
	Haagent__BackupsResponse *cat;
	struct ha_err e = {0};
	if (ha_cli_catalog(g, &cat, &e) != 0) {
		fprintf(stderr, "haadm: backup policy: %s\n", e.msg);
		return HA_ECONNECT;
	}
	const Haagent__CmdSetBackupPolicy *cur = cat->policy;
	bool change = pa->full || pa->differential || pa->incremental || pa->keep_full >= 0 ||
	              pa->keep_days >= 0;
	int rc = 0;
	if (change && cur) {
		Haagent__CmdSetBackupPolicy p = HAAGENT__CMD_SET_BACKUP_POLICY__INIT;
		p.full = (char *)(pa->full ? pa->full : cur->full);
		p.differential = (char *)(pa->differential ? pa->differential : cur->differential);
		p.incremental = (char *)(pa->incremental ? pa->incremental : cur->incremental);
		p.keep_full = pa->keep_full >= 0 ? (uint32_t)pa->keep_full : cur->keep_full;
		p.keep_days = pa->keep_days >= 0 ? (uint32_t)pa->keep_days : cur->keep_days;
		Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
		req.op_case = HAAGENT__ADMIN_REQUEST__OP_BACKUP_POLICY;
		req.backup_policy = &p;
		Haagent__AdminResponse *r = NULL;
		if (ha_cli_admin(g, &req, &r, &e) != 0) {
			rc = HA_ECONNECT;
			fprintf(stderr, "haadm: backup policy: %s\n", e.msg);
		} else {
			rc = r->code;
			if (rc)
				fprintf(stderr, "haadm: refused: %s\n", r->message);
			haagent__admin_response__free_unpacked(r, NULL);
		}
		haagent__backups_response__free_unpacked(cat, NULL);
		if (rc)
			return rc;
		usleep(300 * 1000); /* committed by now, normally: show it */
		if (ha_cli_catalog(g, &cat, &e) != 0)
			return 0;
		cur = cat->policy;
	}
	if (cur && g->json) {
		printf(
		    "{\"format\": 1, \"full\": \"%s\", \"differential\": \"%s\", \"incremental\": "
		    "\"%s\", \"keep_full\": %u, \"keep_days\": %u, \"from_config\": %s}\n",
		    cur->full, cur->differential, cur->incremental, cur->keep_full, cur->keep_days,
		    cat->policy_from_config ? "true" : "false");
	} else if (cur) {
		printf(
		    "full:         %s\ndifferential: %s\nincremental:  %s\nretention:    keep %u "
		    "full backups%s, %u days%s\n%s",
		    cur->full[0] ? cur->full : "never",
		    cur->differential[0] ? cur->differential : "never",
		    cur->incremental[0] ? cur->incremental : "never", cur->keep_full,
		    cur->keep_full ? "" : " (no limit)", cur->keep_days,
		    cur->keep_days ? "" : " (no limit)",
		    cat->policy_from_config
		        ? "(from the configuration; 'haadm backup policy --...' "
		          "sets it cluster-wide)\n"
		        : "");
	}
	haagent__backups_response__free_unpacked(cat, NULL);
	return 0;
}

int ha_cmd_backup(struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"type", required_argument, NULL, 't'},
	    {"node", required_argument, NULL, 'n'},
	    {"wait", no_argument, NULL, 'w'},
	    {"drill", no_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {"full", required_argument, NULL, 'F'},
	    {"differential", required_argument, NULL, 'D'},
	    {"incremental", required_argument, NULL, 'I'},
	    {"keep-full", required_argument, NULL, 'K'},
	    {"keep-days", required_argument, NULL, 'Y'},
	    {NULL, 0, NULL, 0},
	};
	struct policy_args pa = {.keep_full = -1, .keep_days = -1};
	const char *type = NULL, *node = NULL;
	bool wait = false, drilling = false;
	int o;
	optind = 0; /* 0, not 1: glibc then re-reads the ordering from optstring */
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			type = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 'w':
			wait = true;
			break;
		case 'd':
			drilling = true;
			break;
		case 'j':
			g->json = true;
			break;
		case 'F':
			pa.full = optarg;
			break;
		case 'D':
			pa.differential = optarg;
			break;
		case 'I':
			pa.incremental = optarg;
			break;
		case 'K':
		case 'Y': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 36500)
				return bad("backup");
			*(o == 'K' ? &pa.keep_full : &pa.keep_days) = v;
			break;
		}
		case 'h':
			ha_cli_help("backup");
			return 0;
		default:
			return bad("backup");
		}
	}
	int np = argc - optind;
	const char *sub = np > 0 ? argv[optind] : "";
	if (!strcmp(sub, "run") && np == 1)
		return run(g, type, node, wait);
	if (!strcmp(sub, "policy") && np == 1)
		return policy(g, &pa);
	if (!strcmp(sub, "list") && np == 1)
		return list(g, NULL);
	if (!strcmp(sub, "show") && np == 2)
		return list(g, argv[optind + 1]);
	if (!strcmp(sub, "verify") && np == 2)
		return verify(g, strtoull(argv[optind + 1], NULL, 10), drilling);
	return bad("backup");
}

int ha_cmd_restore(struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"target-dir", required_argument, NULL, 'T'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'T':
			dir = optarg;
			break;
		case 'j':
			g->json = true;
			break;
		case 'h':
			ha_cli_help("restore");
			return 0;
		default:
			return bad("restore");
		}
	}
	if (argc - optind != 1 || dir == NULL)
		return bad("restore");
	uint64_t id = strtoull(argv[optind], NULL, 10);
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
		result_json(rc == 0 ? "restored" : "failed", id, detail, ms, dir);
	else
		fprintf(rc ? stderr : stdout, "%s%s (%.1f s)\n", rc ? "haadm: restore: " : "",
		        detail, ms / 1000.0);
	if (cat)
		haagent__backups_response__free_unpacked(cat, NULL);
	return rc == 0 ? 0 : (rc == HA_EPROTO ? HA_EPROTO : rc);
}
