/* haadm config check: validates a configuration file without starting anything, then checks
 * what the agent will need from the databases (agent/db/check.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
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
