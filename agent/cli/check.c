/* haadm config check: validates a configuration file without starting anything, then checks
 * what the agent will need from the databases (agent/db/check.c). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "../backup/repos.h"
#include "../common/buf.h"
#include "../common/tls.h"
#include "../db/check.h"
#include "haadm.h"

static const char *level_name(enum ha_check_level l)
{
	return l == HA_CHECK_OK ? "ok" : l == HA_CHECK_WARN ? "warn" : "FAIL";
}

static void print(const char *path, const struct ha_check_list *l, bool json, bool ok)
{
	if (!json) {
		for (unsigned i = 0; i < l->n; i++)
			printf("%-4s  %s: %s\n", level_name(l->c[i].level), l->c[i].what,
			       l->c[i].detail);
		printf("%s\n", ok ? "configuration ok" : "configuration has problems (FAIL above)");
		return;
	}
	struct ha_buf b = HA_BUF_INIT;
	struct ha_json j;
	ha_json_init(&j, &b, true);
	ha_json_obj_begin(&j, NULL);
	ha_json_uint(&j, "format", 1);
	ha_json_str(&j, "config", path);
	ha_json_bool(&j, "ok", ok);
	ha_json_arr_begin(&j, "checks");
	for (unsigned i = 0; i < l->n; i++) {
		ha_json_obj_begin(&j, NULL);
		ha_json_str(&j, "level",
		            l->c[i].level == HA_CHECK_OK     ? "ok"
		            : l->c[i].level == HA_CHECK_WARN ? "warn"
		                                             : "fail");
		ha_json_str(&j, "check", l->c[i].what);
		ha_json_str(&j, "detail", l->c[i].detail);
		ha_json_obj_end(&j);
	}
	ha_json_arr_end(&j);
	ha_json_obj_end(&j);
	printf("%s\n", ha_buf_failed(&b) ? "{}" : ha_buf_cstr(&b));
	ha_buf_free(&b);
}

/* A certificate file: its identity and how long it stays valid. */
static int read_cert(const char *path, struct ha_identity *id, int *days_left, struct ha_err *e)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return ha_err_set(e, HA_ECONFIG, "%s: %s", path, strerror(errno));
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return ha_err_set(e, HA_ECONFIG, "%s: not a PEM certificate", path);
	int rc = ha_tls_identity(x, id, e);
	int days = 0, secs = 0;
	if (rc == 0 && ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1)
		rc = ha_err_set(e, HA_ECONFIG, "%s: unreadable expiry date", path);
	*days_left = days;
	X509_free(x);
	return rc;
}

static void check_expiry(struct ha_check_list *l, const char *what, const char *path, int days)
{
	if (days < 0)
		ha_check_add(l, HA_CHECK_FAIL, what,
		             "%s expired %d days ago: issue a new one "
		             "(haadm cert) and send SIGHUP",
		             path, -days);
	else if (days < 30)
		ha_check_add(l, HA_CHECK_WARN, what,
		             "%s expires in %d days: issue a new one "
		             "(haadm cert) and send SIGHUP",
		             path, days);
}

/* Long on purpose: every TLS setting in turn, each with the fix in its message. */
static void tls_checks(const struct ha_config *c, struct ha_check_list *l)
{
	if (c->tls_insecure) {
		ha_check_add(
		    l, HA_CHECK_WARN, "tls",
		    "insecure = yes: raft, RPC and HTTP are plain TCP and nobody is "
		    "authenticated; anyone who reaches a port can pause failover or switch "
		    "the primary (docs/security.md)");
		return;
	}
	if (c->tls_http_plain_checks)
		ha_check_add(l, HA_CHECK_WARN, "tls",
		             "http_plain_checks = yes: /primary and /replica answer plain HTTP, so "
		             "anyone who reaches http_port learns the roles (/health and /metrics "
		             "still need a certificate)");
	struct ha_err e = {0};
	if (c->self >= 0) {
		SSL_CTX *ctx = NULL;
		if (ha_tls_ctx_new(c->tls_ca, c->tls_cert, c->tls_key, true, &ctx, &e) != 0) {
			ha_check_add(l, HA_CHECK_FAIL, "tls", "%s", e.msg);
			return;
		}
		SSL_CTX_free(ctx);
		struct ha_identity id;
		int days;
		const struct ha_node_conf *self = &c->nodes[c->self];
		if (read_cert(c->tls_cert, &id, &days, &e) != 0) {
			ha_check_add(l, HA_CHECK_FAIL, "tls", "%s", e.msg);
			return;
		}
		if (id.role != HA_ROLE_NODE || strcmp(id.name, self->name) ||
		    id.node_id != self->id) {
			char who[128];
			ha_identity_str(&id, who, sizeof(who));
			ha_check_add(
			    l, HA_CHECK_FAIL, "tls",
			    "%s is %s, not node %s with id %u: issue this node's with haadm "
			    "cert node %s --id %u --address %s",
			    c->tls_cert, who, self->name, self->id, self->name, self->id,
			    self->address);
			return;
		}
		check_expiry(l, "tls", c->tls_cert, days);
		ha_check_add(l, HA_CHECK_OK, "tls",
		             "%s names node %s (id %u), chains to %s, key matches; %d days left",
		             c->tls_cert, self->name, self->id, c->tls_ca, days);
	}
	if (c->tls_haadm_cert[0]) {
		struct ha_identity id;
		int days;
		if (read_cert(c->tls_haadm_cert, &id, &days, &e) != 0) {
			ha_check_add(l, HA_CHECK_FAIL, "tls haadm", "%s", e.msg);
			return;
		}
		if (id.role != HA_ROLE_ADMIN && id.role != HA_ROLE_READONLY)
			ha_check_add(
			    l, HA_CHECK_WARN, "tls haadm",
			    "%s is not an operator certificate: haadm may only read with it",
			    c->tls_haadm_cert);
		check_expiry(l, "tls haadm", c->tls_haadm_cert, days);
	}
}

/* Every repository, opened (its keys) and probed live: one line each. */
static void repo_checks(const struct ha_config *c, struct ha_check_list *l)
{
	if (!c->n_repos)
		return;
	struct ha_repos *rs = calloc(1, sizeof(*rs));
	struct ha_err e = {0};
	if (rs == NULL || ha_repos_open(rs, c, &e) != 0) {
		ha_check_add(l, HA_CHECK_FAIL, "repositories", "%s", rs ? e.msg : "out of memory");
		free(rs);
		return;
	}
	for (size_t i = 0; i < rs->n; i++) {
		char what[HA_NAME_MAX + 16];
		snprintf(what, sizeof(what), "repository %s", rs->r[i].name);
		struct ha_err pe = {0};
		if (ha_repo_probe(c, i, &pe) != 0)
			ha_check_add(l, HA_CHECK_FAIL, what, "%s: %s", rs->r[i].where, pe.msg);
		else
			ha_check_add(l, HA_CHECK_OK, what, "%s: %s", rs->r[i].where,
			             !strcmp(rs->r[i].type, "dir")
			                 ? "a writable directory"
			                 : "listed, written, read, deleted");
	}
	ha_repos_close(rs);
	free(rs);
}

int ha_cmd_config(struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = g->conf;
	int o;
	optind = 0; /* 0, not 1: glibc then re-reads the ordering from optstring */
	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			path = optarg;
			break;
		case 'j':
			g->json = true;
			break;
		case 'h':
			ha_cli_help("config");
			return 0;
		default:
			goto bad;
		}
	}
	if (argc - optind != 1 || strcmp(argv[optind], "check") != 0)
		goto bad;
	if (path == NULL)
		path = ha_cli_conf_path(g);
	struct ha_config *c = calloc(1, sizeof(*c));
	struct ha_check_list *l = calloc(1, sizeof(*l));
	if (c == NULL || l == NULL) {
		free(c);
		free(l);
		return HA_ENOMEM;
	}
	struct ha_err e = {0};
	int rc = ha_config_load(path, 0, c, &e);
	if (rc == 0 && c->node[0]) { /* an [agent] section: check it whole */
		memset(c, 0, sizeof(*c));
		rc = ha_config_load(path, HA_CONFIG_AGENT, c, &e);
	}
	if (rc != 0) {
		ha_check_add(l, HA_CHECK_FAIL, "configuration", "%s", e.msg);
		print(path, l, g->json, false);
		free(c);
		free(l);
		return HA_ECONFIG;
	}
	ha_check_add(l, HA_CHECK_OK, "configuration",
	             "%s: syntax, keys, addresses, ports%s; %u nodes", path,
	             c->self >= 0 ? ", credentials files" : "", c->n_nodes);
	tls_checks(c, l);
	repo_checks(c, l);
	if (c->self < 0) {
		ha_check_add(l, HA_CHECK_WARN, "database checks",
		             "skipped: no [agent] section (a client configuration)");
	} else {
		ha_db_check(c, g->timeout_ms, l);
		ha_config_wipe(c);
	}
	bool ok = true;
	for (unsigned i = 0; i < l->n; i++)
		if (l->c[i].level == HA_CHECK_FAIL)
			ok = false;
	print(path, l, g->json, ok);
	free(c);
	free(l);
	return ok ? 0 : HA_EDB;
bad:
	fprintf(stderr, "haadm config: bad arguments; see 'haadm help config'\n");
	return HA_EUSAGE;
}
