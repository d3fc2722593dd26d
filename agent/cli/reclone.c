/* haadm node reclone NODE [--backup ID] [--timeout SEC] [--json]: replaces a node's datadir with
 * a restored backup and brings the node back as a replica — for a diverged old primary or a
 * lost disk. It runs on that node's host (the datadir is local), as root, with that node's
 * configuration, and changes nothing until the restored datadir is ready:
 *
 *   1. checks: this configuration is NODE's; NODE is not the primary; no failover is running;
 *      the backup (the newest finished one by default) has a whole chain and holds every
 *      transaction NODE's server id wrote in the primary's binary log (a MariaDB replica skips
 *      events of its own server id, so it could never receive them again);
 *   2. maintenance on (unless it already was): its agent leaves its replication alone;
 *   3. the chain is restored and prepared beside the datadir while the server still runs;
 *   4. db_stop_command; the datadir is moved aside (kept, never deleted) and the restored one
 *      put in its place with the old one's owner;
 *   5. db_start_command; replication and the binary log are reset, gtid_slave_pos set to the
 *      backup's position when the restored one is behind it;
 *   6. maintenance off (if this command turned it on): the agent repoints the node to the
 *      primary; the command waits until it replicates.
 *
 * A failure stops at its step and says what state the node is in and what to do. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../consensus/fsm.h"
#include "../backup/fsutil.h"
#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/gtid.h"
#include "../common/proc.h"
#include "../common/secret.h"
#include "../db/db.h"
#include "../db/reclone.h"
#include "backup.h"
#include "pitr.h"
#include "call.h"
#include "haadm.h"

extern char **environ;

#define STOP_MS       300000 /* db_stop_command, and the server gone */
#define START_MS      600000 /* db_start_command, and the server answering */
#define FLAG_MAINT    1u
#define FLAG_DIVERGED 4u
#define MAX_STEPS     12

struct run {
	struct globals *g;
	struct ha_config *c;
	const char *node;
	char steps[MAX_STEPS][512];
	unsigned n_steps;
	char message[1024];
	char old_datadir[PATH_MAX + 64];
	uint64_t backup_id;
};

static void step(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step(struct run *r, const char *fmt, ...)
{
	if (r->n_steps >= MAX_STEPS)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->steps[r->n_steps], sizeof(r->steps[0]), fmt, ap);
	va_end(ap);
	if (!r->g->json) {
		printf("%s\n", r->steps[r->n_steps]);
		fflush(stdout);
	}
	r->n_steps++;
}

static int fail(struct run *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct run *r, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	return code;
}

static void print_result(const struct run *r, int rc)
{
	if (!r->g->json) {
		if (rc == 0)
			printf("%s\n", r->message);
		else
			fprintf(stderr, "haadm: node reclone: %s\n", r->message);
		return;
	}
	struct ha_buf b = HA_BUF_INIT;
	struct ha_json j;
	ha_json_init(&j, &b, true);
	ha_json_obj_begin(&j, NULL);
	ha_json_uint(&j, "format", 1);
	ha_json_str(&j, "result", rc == 0 ? "done" : rc == HA_EREFUSED ? "refused" : "failed");
	ha_json_str(&j, "node", r->node);
	if (r->backup_id)
		ha_json_uint(&j, "backup", r->backup_id);
	else
		ha_json_null(&j, "backup");
	ha_json_str_or_null(&j, "old_datadir", r->old_datadir[0] ? r->old_datadir : NULL);
	ha_json_str(&j, "message", r->message);
	ha_json_arr_begin(&j, "steps");
	for (unsigned i = 0; i < r->n_steps; i++)
		ha_json_str(&j, NULL, r->steps[i]);
	ha_json_arr_end(&j);
	ha_json_obj_end(&j);
	printf("%s\n", ha_buf_failed(&b) ? "{}" : ha_buf_cstr(&b));
	ha_buf_free(&b);
}

/* Runs a configured shell command (its output on stderr), killed with its process group after
 * timeout_ms. 0 when it exited 0. */
static int run_command(const char *cmd, uint64_t timeout_ms, char *why, size_t size)
{
	char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
	struct ha_proc_spec sp = {
	    .argv = argv, .io = {HA_PROC_NULL, {.fd = 2}, HA_PROC_INHERIT}, .own_group = true};
	pid_t pid;
	int status, rc = ha_proc_start(&sp, &pid);
	if (rc != 0) {
		snprintf(why, size, "cannot run /bin/sh: %s", strerror(rc));
		return -1;
	}
	if (ha_proc_wait(pid, timeout_ms, true, &status)) {
		snprintf(why, size, "'%s' did not finish within %llu s", cmd,
		         (unsigned long long)(timeout_ms / 1000));
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(why, size, "'%s' failed (%s %d)", cmd,
		         WIFEXITED(status) ? "exit" : "signal",
		         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return -1;
	}
	return 0;
}

static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return lchown(path, chown_uid, chown_gid) == 0 ? 0 : -1;
}

static const Haagent__NodeStatus *status_node(const Haagent__StatusResponse *s, const char *name)
{
	for (size_t i = 0; i < s->n_nodes; i++)
		if (!strcmp(s->nodes[i]->name, name))
			return s->nodes[i];
	return NULL;
}

/* The newest finished backup whose chain is whole (want 0), or want; 0 when none. */
static uint64_t pick_backup(const Haagent__BackupsResponse *cat, uint64_t want, char *why,
                            size_t size)
{
	for (size_t i = cat->n_backups; i-- > 0;) {
		const Haagent__BackupRecord *b = cat->backups[i];
		if (want && b->id != want)
			continue;
		if (b->state != HA_BK_DONE) {
			if (!want)
				continue;
			snprintf(why, size, "backup %llu is not a finished backup",
			         (unsigned long long)b->id);
			return 0;
		}
		uint64_t chain[HA_CLI_MAX_CHAIN];
		struct ha_err e = {0};
		if (ha_cli_backup_chain(cat, b->id, chain, &e) > 0)
			return b->id;
		if (want) {
			snprintf(why, size, "%s", e.msg);
			return 0;
		}
	}
	if (want)
		snprintf(why, size, "no backup %llu in the catalog", (unsigned long long)want);
	else
		snprintf(why, size,
		         "no finished backup with a whole chain in the catalog: run "
		         "'haadm backup run --wait' first");
	return 0;
}

/* What the checks learn about the cluster, the backup and the datadir, for the later steps. */
struct plan {
	bool was_maint;                     /* NODE was in maintenance before this command */
	uint32_t server_id;                 /* NODE's, 0 when unknown */
	uint32_t primary_server;            /* the primary's server id, 0 when unknown */
	char primary_db[96];                /* the primary's database HOST:PORT */
	char primary_name[64];              /* for the messages */
	uint64_t id;                        /* the backup restored */
	char backup_gtid[HA_GTID_TEXT_MAX]; /* its position */
	char backup_name[96];               /* and name */
	char datadir[PATH_MAX];             /* without a trailing slash */
	struct stat old_sb;        /* the datadir's, for the restored one's owner and mode */
	struct ha_db_where lw;     /* the local server */
	char fresh[PATH_MAX + 32]; /* where the chain is restored */
};

/* 1. NODE is this configuration's, not the primary, and no failover is running; notes its
 * maintenance flag, both server ids and the primary. */
static int check_node(struct run *r, struct plan *p)
{
	struct ha_config *c = r->c;
	struct ha_err e = {0};
	if (strcmp(c->node, r->node) != 0)
		return fail(r, HA_EREFUSED,
		            "run this on %s's host: this configuration (%s) is %s's (the "
		            "datadir and the database service are local)",
		            r->node, c->path, c->node);
	Haagent__StatusResponse *s = NULL;
	if (ha_cli_status(r->g, false, &s, &e) != 0)
		return fail(r, HA_ECONNECT, "%s", e.msg);
	const Haagent__NodeStatus *me = status_node(s, r->node);
	const Haagent__NodeStatus *pn =
	    s->primary && s->primary[0] ? status_node(s, s->primary) : NULL;
	int rc = 0;
	if (!s->authoritative)
		rc = fail(r, HA_ENOLEADER,
		          "no raft leader answers: the cluster cannot record "
		          "maintenance now; retry");
	else if (me == NULL)
		rc = fail(r, HA_EINVAL, "no node named %s", r->node);
	else if (!strcmp(s->primary, r->node))
		rc = fail(
		    r, HA_EREFUSED,
		    "%s is the primary: move the role first ('haadm failover'), then re-clone it",
		    r->node);
	else if (pn == NULL)
		rc = fail(r, HA_EREFUSED,
		          "the cluster has no established primary to replicate from");
	else if (s->failover && s->failover->phase >= 1 && s->failover->phase <= 3)
		rc = fail(r, HA_EREFUSED, "a failover is in progress; retry when it is done");
	if (rc != 0) {
		haagent__status_response__free_unpacked(s, NULL);
		return rc;
	}
	p->was_maint = (me->flags & FLAG_MAINT) != 0;
	p->server_id = me->has_health && me->health ? me->health->server_id : 0;
	p->primary_server = pn->has_health && pn->health ? pn->health->server_id : 0;
	snprintf(p->primary_db, sizeof(p->primary_db), "%s", pn->db_address);
	snprintf(p->primary_name, sizeof(p->primary_name), "%s", s->primary);
	haagent__status_response__free_unpacked(s, NULL);
	return 0;
}

/* The primary's @@gtid_binlog_state into state. */
static int read_primary_state(struct run *r, const struct plan *p, char *state, size_t size)
{
	struct ha_config *c = r->c;
	char why[1024] = "";
	char phost[64];
	unsigned pport = 0;
	struct ha_db_where pw = {.user = c->db_user,
	                         .password = c->db_password,
	                         .timeout_ms = 5000,
	                         .statement_ms = 10000};
	if (ha_split_hostport(p->primary_db, phost, sizeof(phost), &pport) != 0)
		return fail(r, HA_EPROTO, "the primary's database address '%s' is not HOST:PORT",
		            p->primary_db);
	pw.host = phost;
	pw.port = pport;
	if (ha_db_read(&pw, "@@gtid_binlog_state", state, size, why, sizeof(why)) != 0)
		return fail(r, HA_EDB, "cannot read the primary's binary log state (%s): %s",
		            p->primary_db, why);
	return 0;
}

/* 1. The backup (want, or the newest finished one) has a whole chain and holds every
 * transaction NODE's server id wrote in the primary's binary log. */
static int check_backup(struct run *r, struct plan *p, const Haagent__BackupsResponse *cat,
                        uint64_t want)
{
	char why[1024] = "";
	uint64_t id = pick_backup(cat, want, why, sizeof(why));
	const Haagent__BackupRecord *b = id ? ha_cli_backup_find(cat, id) : NULL;
	if (b == NULL)
		return fail(r, HA_EREFUSED, "%s", why);
	r->backup_id = id;
	p->id = id;
	/* the backup must hold what this server id wrote, by the primary's binary log */
	char state[4096];
	int rc = read_primary_state(r, p, state, sizeof(state));
	if (rc != 0)
		return rc;
	struct ha_gtid_pos bpos;
	char missing[96];
	int held = ha_gtid_parse(b->gtid, &bpos, NULL) == 0
	               ? ha_gtid_state_held(state, p->server_id, p->primary_server, &bpos, missing,
	                                    sizeof(missing))
	               : HA_EINVAL;
	snprintf(p->backup_gtid, sizeof(p->backup_gtid), "%s", b->gtid);
	snprintf(p->backup_name, sizeof(p->backup_name), "%s", b->name);
	if (held < 0)
		return fail(r, HA_EPROTO,
		            "cannot compare backup %llu's position '%s' with the primary's "
		            "binary log state '%s'",
		            (unsigned long long)id, p->backup_gtid, state);
	if (held != 1)
		return fail(r, HA_EREFUSED,
		            "backup %llu (at %s) predates %s, written by %s in the primary's "
		            "binary log: a replica never receives its own server id's transactions "
		            "again. Take a newer backup first ('haadm backup run --wait') or name "
		            "one with --backup",
		            (unsigned long long)id, p->backup_gtid, missing,
		            p->server_id ? "this node's server id" : "a former primary");
	step(r, "[1/6] checks: %s is a replica; backup %llu (%s, at %s) holds its own transactions",
	     r->node, (unsigned long long)id, p->backup_name, p->backup_gtid);
	return 0;
}

/* Where the datadir is ([agent] db_datadir, else the local server's @@datadir), and that it is
 * a directory. */
static int find_datadir(struct run *r, struct plan *p)
{
	struct ha_config *c = r->c;
	char why[1024] = "";
	p->lw = (struct ha_db_where){.host = c->nodes[c->self].address,
	                             .port = c->nodes[c->self].db_port,
	                             .user = c->db_user,
	                             .password = c->db_password,
	                             .timeout_ms = 5000,
	                             .statement_ms = 30000};
	if (c->db_datadir[0])
		snprintf(p->datadir, sizeof(p->datadir), "%s", c->db_datadir);
	else if (ha_db_read(&p->lw, "@@datadir", p->datadir, sizeof(p->datadir), why,
	                    sizeof(why)) != 0 ||
	         !p->datadir[0])
		return fail(r, HA_ECONFIG,
		            "where is the datadir? the local server does not answer (%s); set "
		            "[agent] db_datadir in %s",
		            why, c->path);
	for (size_t n = strlen(p->datadir); n > 1 && p->datadir[n - 1] == '/'; n--)
		p->datadir[n - 1] = '\0';
	if (stat(p->datadir, &p->old_sb) != 0 || !S_ISDIR(p->old_sb.st_mode))
		return fail(r, HA_ECONFIG, "the datadir %s is not a directory (%s)", p->datadir,
		            strerror(errno));
	return 0;
}

/* 2. Maintenance on, unless it already was. */
static int maintenance_on(struct run *r, const struct plan *p)
{
	char why[1024] = "";
	if (!p->was_maint) {
		int rc = ha_cli_maintenance(r->g, r->node, true, why, sizeof(why));
		if (rc != 0)
			return fail(r, rc, "maintenance on: %s", why);
	}
	step(r, "[2/6] %s in maintenance%s: never promoted, replication left alone", r->node,
	     p->was_maint ? " (already)" : "");
	return 0;
}

/* 3. The chain restored and prepared into p->fresh, beside the datadir. */
/* 3b. The binlog archive replayed onto the restored chain, up to its head: the node then
 * starts replicating from there (less to catch up). When the archive cannot (none, a gap, the
 * replay failing), the chain is restored again and replication catches up from the backup. */
static int roll_forward(struct run *r, struct plan *p, const Haagent__BackupsResponse *cat,
                        struct repo *rp, struct ha_err *e)
{
	if (cat->archive == NULL || !cat->archive->head[0])
		return 0;
	uint64_t t0 = ha_now_ms(), replayed = 0;
	char position[HA_GTID_TEXT_MAX];
	struct ha_err fe = {0};
	if (ha_pitr_roll_forward(rp, cat, p->id, p->fresh, position, sizeof(position), &replayed,
	                         &fe) == 0) {
		snprintf(p->backup_gtid, sizeof(p->backup_gtid), "%s", position);
		char brief[HA_GTID_BRIEF_MAX];
		step(r,
		     "[3/6] rolled forward with the binlog archive: %llu transactions replayed, "
		     "now at %s (%.1f s)",
		     (unsigned long long)replayed, ha_gtid_brief(position, brief),
		     (ha_now_ms() - t0) / 1000.0);
		return 0;
	}
	step(r, "[3/6] the binlog archive was not used (%s); restoring the chain again", fe.msg);
	unsigned links = 0;
	ha_rm_rf(p->fresh);
	return ha_cli_restore_chain(rp, cat, p->id, p->fresh, &links, e);
}

static int restore_beside(struct run *r, struct plan *p, const Haagent__BackupsResponse *cat)
{
	struct ha_err e = {0};
	snprintf(p->fresh, sizeof(p->fresh), "%s.haagent-reclone", p->datadir);
	ha_rm_rf(p->fresh); /* left by an interrupted re-clone */
	struct repo rp;
	unsigned links = 0;
	uint64_t t0 = ha_now_ms();
	int rc = ha_cli_open_repo(r->g, &rp, &e);
	if (rc == 0)
		rc = ha_cli_restore_chain(&rp, cat, p->id, p->fresh, &links, &e);
	if (rc == 0) {
		step(r, "[3/6] restored and prepared a chain of %u backup%s into %s (%.1f s)",
		     links, links == 1 ? "" : "s", p->fresh, (ha_now_ms() - t0) / 1000.0);
		rc = roll_forward(r, p, cat, &rp, &e);
	}
	ha_wipe(rp.key, sizeof(rp.key));
	if (rc != 0)
		return fail(r, rc,
		            "restore: %s. Nothing changed on %s (still in maintenance: 'haadm node "
		            "maintenance %s off' when done)",
		            e.msg, r->node, r->node);
	return 0;
}

/* 4a. db_stop_command, then until the server no longer answers. */
static int stop_database(struct run *r, const struct plan *p)
{
	struct ha_config *c = r->c;
	char why[1024] = "";
	if (run_command(c->db_stop_command, STOP_MS, why, sizeof(why)) != 0)
		return fail(r, HA_EIO,
		            "stop the database: %s. The restored datadir is in %s; %s stays in "
		            "maintenance",
		            why, p->fresh, r->node);
	for (uint64_t deadline = ha_now_ms() + 60000; ha_db_ping(&p->lw) == 0;) {
		if (ha_now_ms() > deadline)
			return fail(
			    r, HA_ETIMEOUT,
			    "'%s' returned but the server still answers; nothing was swapped "
			    "(the restored datadir is in %s)",
			    c->db_stop_command, p->fresh);
		usleep(200 * 1000);
	}
	return 0;
}

/* 4b. The datadir moved aside to r->old_datadir and the restored one put in its place, with the
 * old one's owner and mode. */
static int swap_datadir(struct run *r, const struct plan *p)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(r->old_datadir, sizeof(r->old_datadir), "%s.haagent-old-%s", p->datadir, stamp);
	if (rename(p->datadir, r->old_datadir) != 0) {
		int err = errno;
		r->old_datadir[0] = '\0';
		return fail(r, HA_EIO, "move %s aside: %s; start the database again ('%s')",
		            p->datadir, strerror(err), r->c->db_start_command);
	}
	if (rename(p->fresh, p->datadir) != 0) {
		int err = errno;
		rename(r->old_datadir, p->datadir);
		r->old_datadir[0] = '\0';
		return fail(r, HA_EIO, "put the restored datadir in place: %s; the old one is back",
		            strerror(err));
	}
	chown_uid = p->old_sb.st_uid;
	chown_gid = p->old_sb.st_gid;
	chmod(p->datadir, p->old_sb.st_mode & 07777);
	if (nftw(p->datadir, chown_one, 32, FTW_PHYS) != 0)
		return fail(r, HA_EIO, "chown %s to %u:%u: %s", p->datadir, (unsigned)chown_uid,
		            (unsigned)chown_gid, strerror(errno));
	step(r, "[4/6] database stopped; old datadir kept in %s (remove it when no longer needed)",
	     r->old_datadir);
	return 0;
}

/* 5. db_start_command, until the server answers; replication and the binary log reset to the
 * backup's position. */
static int start_and_reset(struct run *r, const struct plan *p)
{
	struct ha_config *c = r->c;
	char why[1024] = "";
	if (run_command(c->db_start_command, START_MS, why, sizeof(why)) != 0)
		return fail(r, HA_EIO,
		            "start the database on the restored datadir: %s. See its error log; "
		            "the old datadir is in %s; %s stays in maintenance",
		            why, r->old_datadir, r->node);
	for (uint64_t deadline = ha_now_ms() + START_MS; ha_db_ping(&p->lw) != 0;) {
		if (ha_now_ms() > deadline)
			return fail(r, HA_ETIMEOUT,
			            "the database does not answer on %s:%u after '%s'; %s stays in "
			            "maintenance",
			            p->lw.host, p->lw.port, c->db_start_command, r->node);
		usleep(200 * 1000);
	}
	char detail[600];
	if (ha_db_reset_as_replica(&p->lw, p->backup_gtid, detail, sizeof(detail)) != 0)
		return fail(r, HA_EDB, "on the restored server: %s; %s stays in maintenance",
		            detail, r->node);
	step(r, "[5/6] database started on the restored datadir: %s", detail);
	return 0;
}

/* 6b. Until the cluster's status shows NODE a replica whose both threads run, not diverged;
 * its last seen replication state in last. */
static int wait_replicating(struct run *r, unsigned wait_s, char *last, size_t size)
{
	struct ha_err e = {0};
	uint64_t deadline = ha_now_ms() + (uint64_t)wait_s * 1000;
	for (;;) {
		Haagent__StatusResponse *st = NULL;
		if (ha_cli_status(r->g, false, &st, &e) == 0) {
			const Haagent__NodeStatus *n = status_node(st, r->node);
			const Haagent__Health *h = n && n->has_health ? n->health : NULL;
			bool ok = n && h && h->replicating && h->io_running && h->sql_running &&
			          !(n->flags & FLAG_DIVERGED) && !h->diverged &&
			          !strcmp(n->role, "replica");
			if (n && h)
				snprintf(last, size, "role %s, IO %s, SQL %s, lag %lld s%s%s",
				         n->role, h->io_running ? "yes" : "no",
				         h->sql_running ? "yes" : "no", (long long)h->lag_seconds,
				         h->last_error[0] ? ", " : "", h->last_error);
			haagent__status_response__free_unpacked(st, NULL);
			if (ok)
				return 0;
		}
		if (ha_now_ms() > deadline)
			return fail(
			    r, HA_ETIMEOUT,
			    "%s is back in the cluster but not replicating after %u s (%s); see "
			    "'haadm status'",
			    r->node, wait_s, last);
		usleep(250 * 1000);
	}
}

/* 6. Maintenance off if this command turned it on, and until NODE replicates; the final
 * message. */
static int rejoin(struct run *r, const struct plan *p, unsigned wait_s)
{
	char why[1024] = "";
	if (p->was_maint) {
		snprintf(
		    r->message, sizeof(r->message),
		    "%s re-cloned from backup %llu; it was in maintenance before and stays so: "
		    "'haadm node maintenance %s off' lets its agent repoint it to %s",
		    r->node, (unsigned long long)p->id, r->node, p->primary_name);
		step(r, "[6/6] left in maintenance, as it was");
		return 0;
	}
	int rc = ha_cli_maintenance(r->g, r->node, false, why, sizeof(why));
	if (rc != 0)
		return fail(r, rc, "maintenance off: %s; retry 'haadm node maintenance %s off'",
		            why, r->node);
	char last[256] = "no status";
	rc = wait_replicating(r, wait_s, last, sizeof(last));
	if (rc != 0)
		return rc;
	step(r, "[6/6] out of maintenance: replicating from %s (%s)", p->primary_name, last);
	snprintf(r->message, sizeof(r->message),
	         "%s re-cloned from backup %llu and replicating from %s; the old datadir is in %s",
	         r->node, (unsigned long long)p->id, p->primary_name, r->old_datadir);
	return 0;
}

/* The six steps of the file's comment, each stopping the command when it fails. */
/* One re-clone of a node at a time: an operator's and the agent's own (a diverged node's
 * automatic rejoin, a joining node's build) must never swap the same datadir together. An
 * exclusive lock on DATA_DIR/reclone.lock, held until this process ends. */
static int lock_node(struct run *r)
{
	char path[PATH_MAX + 32], pid[32];
	int fd; /* stays open (and locked) until this process ends */
	snprintf(path, sizeof(path), "%s/reclone.lock", r->c->data_dir);
	int rc = ha_proc_lock_pidfile(path, &fd, pid, sizeof(pid));
	if (rc == HA_EBUSY)
		return fail(
		    r, HA_EBUSY,
		    "another re-clone of %s is running (pid %s: the agent's automatic rejoin "
		    "or build, or an operator's); wait for it to end",
		    r->node, pid);
	if (rc != 0)
		return fail(r, HA_EIO, "lock %s: %s", path, strerror(errno));
	return 0;
}

static int reclone(struct run *r, uint64_t want_backup, unsigned wait_s)
{
	struct plan p = {0};
	int rc = lock_node(r);
	if (rc == 0)
		rc = check_node(r, &p);
	Haagent__BackupsResponse *cat = NULL;
	struct ha_err e = {0};
	if (rc == 0 && ha_cli_catalog(r->g, &cat, &e) != 0)
		rc = fail(r, HA_ECONNECT, "%s", e.msg);
	if (rc == 0)
		rc = check_backup(r, &p, cat, want_backup);
	if (rc == 0 && ha_cli_hold(r->g, p.id, &cat, &e) != 0) /* against retention */
		rc = fail(r, HA_ECONNECT, "%s", e.msg);
	if (rc == 0)
		rc = find_datadir(r, &p);
	if (rc == 0)
		rc = maintenance_on(r, &p);
	if (rc == 0)
		rc = restore_beside(r, &p, cat);
	if (cat != NULL)
		haagent__backups_response__free_unpacked(cat, NULL);
	if (rc == 0)
		rc = stop_database(r, &p);
	if (rc == 0)
		rc = swap_datadir(r, &p);
	if (rc == 0)
		rc = start_and_reset(r, &p);
	if (rc == 0)
		rc = rejoin(r, &p, wait_s);
	return rc;
}

int ha_cmd_reclone(struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"backup", required_argument, NULL, 'b'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t backup = 0;
	unsigned wait_s = 300;
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (o) {
		case 'b':
			backup = strtoull(optarg, &end, 10);
			if (*end || backup == 0)
				goto bad;
			break;
		case 'T': {
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v == 0 || v > 86400)
				goto bad;
			wait_s = (unsigned)v;
			break;
		}
		case 'j':
			g->json = true;
			break;
		case 'h':
			ha_cli_help("node");
			return 0;
		default:
			goto bad;
		}
	}
	/* positional: reclone NODE */
	if (argc - optind != 2 || strcmp(argv[optind], "reclone") != 0)
		goto bad;
	if (ha_cli_check_name("node reclone", argv[optind + 1]) != 0)
		return HA_EUSAGE;
	struct ha_config *c = calloc(1, sizeof(*c));
	struct ha_err e = {0};
	struct run *r = calloc(1, sizeof(*r));
	if (c == NULL || r == NULL) {
		free(c);
		free(r);
		fprintf(stderr, "haadm: out of memory\n");
		return HA_ENOMEM;
	}
	r->g = g;
	r->c = c;
	r->node = argv[optind + 1];
	int rc = ha_config_load(ha_cli_conf_path(g), HA_CONFIG_AGENT, c, &e);
	if (rc != 0)
		rc = fail(r, rc, "%s (node reclone needs the node's own configuration)", e.msg);
	else
		rc = reclone(r, backup, wait_s);
	print_result(r, rc);
	ha_config_wipe(c);
	free(c);
	free(r);
	return rc;
bad:
	fprintf(stderr, "haadm node: bad arguments; see 'haadm help node'\n");
	return HA_EUSAGE;
}
