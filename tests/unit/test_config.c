#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/proc.h"
#include "common/secret.h"
#include "config.h"

static char dir[64];
static char pwfile[128];
static char conf[128];

static const char *good_fmt = "[cluster]\n"               /* 1 */
                              "name = prod\n"             /* 2 */
                              "\n"                        /* 3 */
                              "[agent]\n"                 /* 4 */
                              "node = db2\n"              /* 5 */
                              "data_dir = %s/data\n"      /* 6 */
                              "db_password_file = %s\n"   /* 7 */
                              "probe_interval_ms = 200\n" /* 8 */
                              "%s"                        /* 9: extra agent line */
                              "\n"
                              "[raft]\n"
                              "election_timeout_ms = 400\n"
                              "\n"
                              "[node db1]\n"
                              "id = 1\n"
                              "address = 10.0.0.1\n"
                              "raft_port = 7100\n"
                              "rpc_port = 7200\n"
                              "db_port = 3306\n"
                              "\n"
                              "[node db2]\n"
                              "id = 2\n"
                              "address = 10.0.0.2\n"
                              "raft_port = 7100\n"
                              "rpc_port = 7200\n"
                              "db_port = 3306\n"
                              "%s"
                              "\n[tls]\n"
                              "insecure = yes\n";

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ha-config-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(pwfile, sizeof(pwfile), "%s/pw", dir);
	snprintf(conf, sizeof(conf), "%s/haagent.conf", dir);
	FILE *f = fopen(pwfile, "w");
	fputs("s3cret\n", f);
	fclose(f);
	chmod(pwfile, 0600);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(pwfile);
	unlink(conf);
	rmdir(dir);
	return 0;
}

static void write_conf(const char *extra_agent, const char *tail)
{
	FILE *f = fopen(conf, "w");
	fprintf(f, good_fmt, dir, pwfile, extra_agent, tail);
	fclose(f);
}

static int load(const char *extra_agent, const char *tail, struct ha_config *c, struct ha_err *e)
{
	write_conf(extra_agent, tail);
	return ha_config_load(conf, HA_CONFIG_AGENT, c, e);
}

static struct ha_config cfg;

static void good_file(void **state)
{
	(void)state;
	struct ha_err e = {0};
	assert_int_equal(load("", "", &cfg, &e), 0);
	assert_string_equal(cfg.cluster, "prod");
	assert_string_equal(cfg.node, "db2");
	assert_int_equal(cfg.n_nodes, 2);
	assert_int_equal(cfg.self, 1);
	assert_string_equal(cfg.nodes[0].address, "10.0.0.1");
	assert_int_equal(cfg.nodes[1].id, 2);
	assert_int_equal(cfg.probe_interval_ms, 200);
	assert_int_equal(cfg.election_timeout_ms, 400);
	assert_int_equal(cfg.heartbeat_timeout_ms, 50); /* default */
	assert_string_equal(cfg.db_user, "haagent");    /* default */
	assert_string_equal(cfg.db_password, "s3cret"); /* newline stripped */
	assert_ptr_equal(ha_config_node_by_name(&cfg, "db1"), &cfg.nodes[0]);
	assert_ptr_equal(ha_config_node_by_id(&cfg, 2), &cfg.nodes[1]);
	assert_null(ha_config_node_by_id(&cfg, 3));
}

/* Each bad input: the message names the file, the line and the key. */
static void expect_error(const char *extra_agent, const char *tail, const char *needle)
{
	struct ha_err e = {0};
	int rc = load(extra_agent, tail, &cfg, &e);
	if (rc != HA_ECONFIG || strstr(e.msg, needle) == NULL || strstr(e.msg, conf) == NULL)
		fail_msg("expected error containing '%s', got rc=%d msg='%s'", needle, rc, e.msg);
}

static void bad_files(void **state)
{
	(void)state;
	expect_error("colour = blue\n", "", ":9: [agent] colour: unknown key");
	expect_error("probe_interval_ms =\n", "", ":9: [agent] probe_interval_ms: missing value");
	expect_error("probe_interval_ms = fast\n", "",
	             ":9: [agent] probe_interval_ms: 'fast' is not a whole number");
	expect_error("probe_interval_ms = 10\n", "", "from 50 to 60000");
	expect_error("log_level = loud\n", "", ":9: [agent] log_level: 'loud' is not a level");
	expect_error("", "[node db3]\nid = 3\naddress = 10.0.0.300\n",
	             "[node db3] address: '10.0.0.300' is not an IPv4 address");
	expect_error("", "[node db3]\nid = 3\naddress = db3.example\n", "is not an IPv4 address");
	expect_error("", "[nodes]\nid = 3\n", "[nodes] id: unknown section");
	expect_error(
	    "",
	    "[node db3]\nid = 1\naddress = 10.0.0.3\nraft_port = 1\nrpc_port = 2\ndb_port = 3\n",
	    "id: 1 is also node db1's id");
	expect_error("", "[node db3]\nid = 3\naddress = 10.0.0.3\n",
	             "[node db3] raft_port: missing");
	expect_error("", "[node db1]\nid = 5\n", "node 'db1' defined twice");
	expect_error("this is not ini\n", "", ":9: syntax error");
	expect_error("", "[raft]\nheartbeat_timeout_ms = 300\n",
	             "at most half of election_timeout_ms");
}

/* An agent's configuration with the [tls] section given (none: ""), loaded as the agent does. */
static int load_with_tls(const char *tls, struct ha_err *e)
{
	FILE *f = fopen(conf, "w");
	fprintf(f,
	        "[agent]\nnode = db1\ndata_dir = /x\ndb_password_file = %s\n"
	        "[node db1]\nid = 1\naddress = 10.0.0.1\nraft_port = 1\nrpc_port = 2\n"
	        "db_port = 3\n%s",
	        pwfile, tls);
	fclose(f);
	return ha_config_load(conf, HA_CONFIG_AGENT, &cfg, e);
}

/* An agent speaks mutual TLS unless told otherwise: no [tls] files is an error that says how
 * to make them; with them it loads, and a client configuration needs none. */
static void tls_required(void **state)
{
	(void)state;
	struct ha_err e = {0};
	assert_int_equal(load_with_tls("", &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "[tls] ca, cert and key are required"));
	assert_non_null(strstr(e.msg, "haadm cert cluster"));
	assert_int_equal(ha_config_load(conf, 0, &cfg, &e), 0);
	assert_int_equal(load_with_tls("[tls]\nca = /c\ncert = /n.crt\n", &e), HA_ECONFIG);
	/* the key is a secret file: the (0600) password file stands in for one; the CA file is
	 * written only by its owner */
	char ca[160];
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	FILE *f = fopen(ca, "w");
	fclose(f);
	chmod(ca, 0664);
	char tls[512];
	snprintf(tls, sizeof(tls), "[tls]\nca = %s\ncert = /n.crt\nkey = %s\n", ca, pwfile);
	assert_int_equal(load_with_tls(tls, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "[tls] ca:"));
	assert_non_null(strstr(e.msg, "writable by its group"));
	chmod(ca, 0644);
	assert_int_equal(load_with_tls(tls, &e), 0);
	assert_string_equal(cfg.tls_key, pwfile);
	assert_int_equal(cfg.tls_insecure, 0);
	/* a key others may read is refused, naming [tls] key */
	char key[160];
	snprintf(key, sizeof(key), "%s/tls.key", dir);
	f = fopen(key, "w");
	fputs("not really a key\n", f);
	fclose(f);
	chmod(key, 0644);
	snprintf(tls, sizeof(tls), "[tls]\nca = %s\ncert = /n.crt\nkey = %s\n", ca, key);
	assert_int_equal(load_with_tls(tls, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "[tls] key:"));
	unlink(key);
	unlink(ca);
}

static void agent_section_checks(void **state)
{
	(void)state;
	struct ha_err e = {0};
	/* node that is not defined */
	FILE *f = fopen(conf, "w");
	fprintf(
	    f,
	    "[agent]\nnode = ghost\ndata_dir = /x\ndb_password_file = %s\n"
	    "[node db1]\nid = 1\naddress = 10.0.0.1\nraft_port = 1\nrpc_port = 2\ndb_port = 3\n",
	    pwfile);
	fclose(f);
	assert_int_equal(ha_config_load(conf, HA_CONFIG_AGENT, &cfg, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, ":2: [agent] node: no [node ghost] section"));
	/* a client (haadm) does not need the agent section */
	assert_int_equal(ha_config_load(conf, 0, &cfg, &e), 0);
	assert_int_equal(cfg.self, -1);
	/* missing file */
	assert_int_equal(ha_config_load("/nonexistent/haagent.conf", 0, &cfg, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "/nonexistent/haagent.conf: cannot open"));
}

static void credentials_file(void **state)
{
	(void)state;
	struct ha_err e = {0};
	chmod(pwfile, 0644);
	assert_int_equal(load("", "", &cfg, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, ":7: [agent] db_password_file:"));
	assert_non_null(strstr(e.msg, "world-readable"));
	assert_non_null(strstr(e.msg, "chmod 600"));
	chmod(pwfile, 0600);
	/* unreadable: missing file */
	unlink(pwfile);
	assert_int_equal(load("", "", &cfg, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, ":7: [agent] db_password_file: cannot read"));
	FILE *f = fopen(pwfile, "w");
	fputs("s3cret\n", f);
	fclose(f);
	chmod(pwfile, 0600);
	assert_int_equal(load("", "", &cfg, &e), 0);
}

/* The secret file rule (common/secret.h), on a file of each mode. */
static void expect_secret(mode_t mode, const char *needle)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/secret", dir);
	FILE *f = fopen(p, "w");
	fputs("k3y\r\nsecond line\n", f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
	struct ha_err e = {0};
	char out[64] = "x";
	int rc = ha_secret_read_line(p, out, sizeof(out), &e);
	int rc2 = ha_secret_file_check(p, &e);
	if (needle == NULL) {
		if (rc != 0 || rc2 != 0)
			fail_msg("mode %04o refused: %s", (unsigned)mode, e.msg);
		assert_string_equal(out, "k3y"); /* CRLF stripped, the first line only */
	} else {
		if (rc != HA_ECONFIG || rc2 != HA_ECONFIG || strstr(e.msg, needle) == NULL ||
		    strstr(e.msg, p) == NULL)
			fail_msg("mode %04o: expected '%s' naming %s, got rc=%d/%d '%s'",
			         (unsigned)mode, needle, p, rc, rc2, e.msg);
		assert_string_equal(out, ""); /* nothing read from a refused file */
	}
	unlink(p);
}

static void secret_files(void **state)
{
	(void)state;
	expect_secret(0600, NULL);
	expect_secret(0400, NULL);
	expect_secret(0640, NULL); /* root:haagent 0640, as the runbook installs them */
	expect_secret(0440, NULL);
	expect_secret(0700, NULL);
	expect_secret(0644, "world-readable (mode 0644)");
	expect_secret(0644, "HINT: chmod 600");
	expect_secret(0604, "world-readable");
	expect_secret(0602, "open to other users");
	expect_secret(0601, "open to other users");
	expect_secret(0660, "grants its group more than reading (mode 0660)");
	expect_secret(0660, "chmod 640 to let its group read it");
	expect_secret(0650, "grants its group more than reading");

	struct ha_err e = {0};
	char out[64];
	/* an access ACL: "user:nobody:r" behind mode 0640, which the mode rule alone takes */
	{
		char p[160];
		snprintf(p, sizeof(p), "%s/acl", dir);
		FILE *f = fopen(p, "w");
		fputs("k3y\n", f);
		fclose(f);
		assert_int_equal(chmod(p, 0600), 0);
		/* posix_acl_xattr: version 2, then (tag, perm, id) little-endian entries */
		const uint16_t ent[][2] = {{0x01, 6}, {0x02, 4}, {0x04, 0}, {0x10, 4}, {0x20, 0}};
		const uint32_t ids[] = {UINT32_MAX, 65534, UINT32_MAX, UINT32_MAX, UINT32_MAX};
		uint8_t acl[4 + 5 * 8];
		uint32_t v = 2;
		memcpy(acl, &v, 4);
		for (int i = 0; i < 5; i++) {
			memcpy(acl + 4 + i * 8, ent[i], 4);
			memcpy(acl + 8 + i * 8, &ids[i], 4);
		}
		if (setxattr(p, "system.posix_acl_access", acl, sizeof(acl), 0) == 0) {
			struct stat st;
			assert_int_equal(stat(p, &st), 0);
			assert_int_equal(st.st_mode & 0777, 0640); /* the mask shows as the group */
			char out2[64] = "x";
			assert_int_equal(ha_secret_read_line(p, out2, sizeof(out2), &e),
			                 HA_ECONFIG);
			assert_non_null(strstr(e.msg, "has an access ACL"));
			assert_non_null(strstr(e.msg, "setfacl -b"));
			assert_string_equal(out2, "");
			assert_int_equal(ha_secret_file_check(p, &e), HA_ECONFIG);
		} else {
			print_message("no ACLs on %s (%s): the ACL case is not checked\n", dir,
			              strerror(errno));
		}
		unlink(p);
	}

	/* not a regular file, missing */
	assert_int_equal(ha_secret_file_check(dir, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "is not a regular file"));
	assert_int_equal(ha_secret_read_line("/nonexistent/pw", out, sizeof(out), &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "cannot read /nonexistent/pw"));

	/* a line that does not fit is refused, never cut */
	char p[160];
	snprintf(p, sizeof(p), "%s/long", dir);
	FILE *f = fopen(p, "w");
	fputs("0123456789abcdef\n", f);
	fclose(f);
	chmod(p, 0600);
	assert_int_equal(ha_secret_read_line(p, out, 16, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "longer than 15 bytes"));
	assert_int_equal(ha_secret_read_line(p, out, 17, &e), 0);
	assert_string_equal(out, "0123456789abcdef");
	/* a symbolic link is followed: its target is checked */
	char l[160];
	snprintf(l, sizeof(l), "%s/link", dir);
	assert_int_equal(symlink(p, l), 0);
	assert_int_equal(ha_secret_file_check(l, &e), 0);
	chmod(p, 0644);
	assert_int_equal(ha_secret_file_check(l, &e), HA_ECONFIG);
	chmod(p, 0600);

	/* owned by another user (nobody) than the one that reads it (only root can make one) */
	if (geteuid() == 0) {
		assert_int_equal(chown(p, 65534, 65534), 0);
		assert_int_equal(ha_secret_file_check(p, &e), HA_ECONFIG);
		assert_non_null(strstr(e.msg, "is owned by"));
		assert_non_null(strstr(e.msg, "uid 65534"));
		assert_non_null(strstr(e.msg, "or by root; HINT: chown root "));
		/* 0660 and another owner: the mode is named first */
		chmod(p, 0660);
		assert_int_equal(ha_secret_file_check(p, &e), HA_ECONFIG);
		assert_non_null(strstr(e.msg, "mode 0660"));
	}
	unlink(l);
	unlink(p);
}

/* The CA file: anyone may read it, only its owner (root or us) may write it. */
static void trust_files(void **state)
{
	(void)state;
	char p[160];
	snprintf(p, sizeof(p), "%s/ca.crt", dir);
	FILE *f = fopen(p, "w");
	fputs("-----BEGIN CERTIFICATE-----\n", f);
	fclose(f);
	struct ha_err e = {0};
	const mode_t good[] = {0644, 0444, 0600, 0640, 0755};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(chmod(p, good[i]), 0);
		if (ha_trust_file_check(p, &e) != 0)
			fail_msg("mode %04o refused: %s", (unsigned)good[i], e.msg);
	}
	assert_int_equal(chmod(p, 0664), 0);
	assert_int_equal(ha_trust_file_check(p, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "writable by its group (mode 0664)"));
	assert_non_null(strstr(e.msg, "HINT: chmod 644"));
	assert_int_equal(chmod(p, 0646), 0);
	assert_int_equal(ha_trust_file_check(p, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "writable by every user"));
	assert_int_equal(chmod(p, 0644), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(p, 65534, 65534), 0);
		assert_int_equal(ha_trust_file_check(p, &e), HA_ECONFIG);
		assert_non_null(strstr(e.msg, "uid 65534"));
		assert_non_null(strstr(e.msg, "HINT: chown root"));
		assert_int_equal(chown(p, 0, 0), 0);
		assert_int_equal(ha_trust_file_check(p, &e), 0);
	}
	assert_int_equal(ha_trust_file_check(dir, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "is not a regular file"));
	assert_int_equal(ha_trust_file_check("/nonexistent/ca.crt", &e), HA_ECONFIG);
	unlink(p);
}

/* A key file with the repository: --check refuses it as it refuses a password file. */
/* The S3 secret the agent may take from its environment is not passed on to the tools and hooks
 * it runs (common/proc.h): a child started by ha_proc_start sees the rest only. */
static void secrets_not_inherited(void **state)
{
	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIDNOTSECRET", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-key-value", 1);
	setenv("AWS_SESSION_TOKEN", "s3cr3t-token-value", 1);
	char out[160];
	snprintf(out, sizeof(out), "%s/child.env", dir);
	char *argv[] = {"env", NULL};
	struct ha_proc_spec sp = {
	    .argv = argv,
	    .io = {HA_PROC_NULL, {.fd = -1, .path = out}, HA_PROC_NULL},
	};
	pid_t pid;
	assert_int_equal(ha_proc_start(&sp, &pid), 0);
	int status;
	ha_proc_wait(pid, 10000, false, &status);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	FILE *f = fopen(out, "r");
	assert_non_null(f);
	char text[65536];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_non_null(strstr(text, "AWS_ACCESS_KEY_ID=AKIDNOTSECRET"));
	assert_null(strstr(text, "s3cr3t"));
	assert_true(ha_proc_env_secret("AWS_SECRET_ACCESS_KEY=x"));
	assert_false(ha_proc_env_secret("AWS_SECRET_ACCESS_KEYS=x")); /* the whole name */
	assert_false(ha_proc_env_secret("AWS_ACCESS_KEY_ID=x"));
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unlink(out);
}

static void key_file_checked_at_load(void **state)
{
	(void)state;
	char key[160], extra[512];
	snprintf(key, sizeof(key), "%s/backup.key", dir);
	FILE *f = fopen(key, "w");
	fputs("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", f);
	fclose(f);
	chmod(key, 0644);
	snprintf(extra, sizeof(extra), "\n[backup]\nrepository = %s/repo\nkey_file = %s\n", dir,
	         key);
	struct ha_err e = {0};
	assert_int_equal(load("", extra, &cfg, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "[backup] key_file: "));
	assert_non_null(strstr(e.msg, key));
	assert_non_null(strstr(e.msg, "chmod 600"));
	assert_string_equal(cfg.db_password, ""); /* wiped on the way out */
	chmod(key, 0600);
	assert_int_equal(load("", extra, &cfg, &e), 0);
	unlink(key);
}

/* [repository NAME] sections: in order, the short form, and every refusal naming its line. */
static void repositories(void **state)
{
	(void)state;
	struct ha_err e = {0};
	assert_int_equal(load("",
	                      "\n[repository local]\ntype = dir\npath = /srv/b\n"
	                      "[repository off]\ntype = s3\nbucket = b1\nendpoint = http://x\n",
	                      &cfg, &e),
	                 0);
	assert_int_equal(cfg.n_repos, 2);
	assert_string_equal(cfg.repos[0].name, "local");
	assert_string_equal(cfg.repos[0].path, "/srv/b");
	assert_string_equal(cfg.repos[1].type, "s3");
	assert_int_equal(cfg.repos[1].n_kv, 2);
	assert_string_equal(cfg.repos[1].kv[0].key, "bucket");
	/* path alone means a directory; [backup] repository is one named default */
	assert_int_equal(load("", "\n[repository a]\npath = /srv/a\n", &cfg, &e), 0);
	assert_string_equal(cfg.repos[0].type, "dir");
	assert_int_equal(load("", "\n[backup]\nrepository = /srv/x\n", &cfg, &e), 0);
	assert_int_equal(cfg.n_repos, 1);
	assert_string_equal(cfg.repos[0].name, "default");
	assert_string_equal(cfg.repos[0].path, "/srv/x");
	static const struct {
		const char *tail, *needle;
	} bad[] = {
	    {"\n[repository a]\npath = /a\n[repository b]\npath = /b\n[repository a]\npath = /c\n",
	     "defined twice"},
	    {"\n[repository a]\ntype = dir\ntype = dir\npath = /a\n", "type: given twice"},
	    {"\n[repository a]\npath = /a\npath = /b\n", "path: given twice"},
	    {"\n[repository a]\ntype = nfs\n", "is not dir or s3"},
	    {"\n[repository a]\npath = relative\n", "not an absolute path"},
	    {"\n[repository a]\ntype = dir\n", "path: missing"},
	    {"\n[repository a]\ntype = dir\npath = /a\nbucket = b\n",
	     "unknown key for a directory"},
	    {"\n[repository a]\ntype = s3\npath = /a\n", "not a path"},
	    {"\n[repository a]\nbucket = b\n", "type: missing"},
	    {"\n[repository ..]\npath = /a\n", "bad repository name"},
	    {"\n[backup]\nrepository = /x\n[repository a]\npath = /a\n", "both given"},
	    {"\n[repository a]\npath=/a\n[repository b]\npath=/b\n[repository c]\npath=/c\n"
	     "[repository d]\npath=/d\n[repository e]\npath=/e\n",
	     "too many repositories"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ha_err be = {0};
		assert_int_equal(load("", bad[i].tail, &cfg, &be), HA_ECONFIG);
		if (strstr(be.msg, bad[i].needle) == NULL)
			fail_msg("%zu: '%s' not in '%s'", i, bad[i].needle, be.msg);
		assert_non_null(strstr(be.msg, conf)); /* the file named */
	}
	/* a value too long is refused, never cut */
	char tail[1024];
	char v[600];
	memset(v, 'x', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	snprintf(tail, sizeof(tail), "\n[repository a]\ntype = s3\nbucket = %s\n", v);
	assert_int_equal(load("", tail, &cfg, &e), HA_ECONFIG);
	/* (inih refuses a line this long before the key is seen: a syntax error on its line) */
	if (strstr(e.msg, "value longer than 511") == NULL && strstr(e.msg, ":30: syntax") == NULL)
		fail_msg("%s", e.msg);
}

static void names(void **state)
{
	(void)state;
	const char *good[] = {"db1",
	                      "node-2",
	                      "a",
	                      "A.b_c-d",
	                      "0",
	                      "123456789012345678901234567890123456789012345678901234567890123",
	                      "000042-full-20260101T000000Z",
	                      "000000000001-s2-0000abcd"};
	const char *bad[] = {"",
	                     ".",
	                     "..",
	                     "../x",
	                     "a/b",
	                     "-a",
	                     "_a",
	                     ".hidden",
	                     "a b",
	                     "a'b",
	                     "a\"b",
	                     "a\\b",
	                     "a\nb",
	                     "p\xc3\xa4",
	                     "a;b",
	                     "a$b",
	                     "1234567890123456789012345678901234567890123456789012345678901234"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ha_name_valid(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ha_name_valid(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
	assert_false(ha_name_valid(NULL));
	/* in the configuration */
	expect_error("", "[node ..]\nid = 3\n",
	             "bad node name '..' in the section header: 1 to 63 letters");
	expect_error("", "[node a/b]\nid = 3\n", "bad node name 'a/b'");
	expect_error("", "[node -x]\nid = 3\n", "bad node name '-x'");
	struct ha_err e = {0};
	FILE *f = fopen(conf, "w");
	fprintf(f, "[cluster]\nname = my cluster\n[node db1]\nid = 1\naddress = 10.0.0.1\n"
	           "raft_port = 1\nrpc_port = 2\ndb_port = 3\n");
	fclose(f);
	assert_int_equal(ha_config_load(conf, 0, &cfg, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, ":2: [cluster] name: 'my cluster' is not a name"));
	f = fopen(conf, "w");
	fprintf(f, "[agent]\nnode = ..\n[node db1]\nid = 1\naddress = 10.0.0.1\n"
	           "raft_port = 1\nrpc_port = 2\ndb_port = 3\n");
	fclose(f);
	assert_int_equal(ha_config_load(conf, 0, &cfg, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, ":2: [agent] node: '..' is not a name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(good_file),
	    cmocka_unit_test(bad_files),
	    cmocka_unit_test(agent_section_checks),
	    cmocka_unit_test(tls_required),
	    cmocka_unit_test(credentials_file),
	    cmocka_unit_test(secret_files),
	    cmocka_unit_test(trust_files),
	    cmocka_unit_test(secrets_not_inherited),
	    cmocka_unit_test(key_file_checked_at_load),
	    cmocka_unit_test(names),
	    cmocka_unit_test(repositories),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
