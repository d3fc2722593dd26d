/* `haadm config check`: what can be verified about a node's configuration before the agent
 * runs: its database is reachable with the configured credentials, the agent's user has every
 * privilege the agent uses, the replication user works, the server is set up for GTID failover,
 * and every other node's database answers with the agent's credentials (an agent repointing its
 * server reads the new primary's position). Blocking, with short timeouts: for the CLI only. */
#ifndef HA_DB_CHECK_H
#define HA_DB_CHECK_H

#include <stdbool.h>

#include "../config.h"

#define HA_CHECK_MAX 32

enum ha_check_level { HA_CHECK_OK = 0, HA_CHECK_WARN = 1, HA_CHECK_FAIL = 2 };

struct ha_check {
	enum ha_check_level level;
	char what[96];    /* what was checked */
	char detail[512]; /* what was found, and for a failure what to do */
};

struct ha_check_list {
	struct ha_check c[HA_CHECK_MAX];
	unsigned n;
};

/* Appends a check (dropped beyond HA_CHECK_MAX). */
void ha_check_add(struct ha_check_list *l, enum ha_check_level level, const char *what,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* What mariadb-backup needs that user lacks (RELOAD, PROCESS, BINLOG MONITOR; without the last
 * it fails only at the very end): 0 with missing = "" when nothing, 1 with the list, -1 when
 * the check itself failed (missing then says why). */
int ha_db_backup_privileges(const char *host, unsigned port, const char *user, const char *password,
                            unsigned timeout_ms, char *missing, size_t size);

/* Runs the database checks of an agent configuration (c->self >= 0, credentials loaded). */
void ha_db_check(const struct ha_config *c, unsigned timeout_ms, struct ha_check_list *out);

#endif
