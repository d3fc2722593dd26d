/* haadm's conversation with the cluster: which agents to ask, the leader's status (redirects
 * followed), one admin request (retried while the cluster is busy), and maintenance on or off,
 * waited for until the leader's status shows it. Below every command file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../consensus/fsm.h"
#include "../common/clock.h"
#include "../common/err.h"
#include "../common/frame.h"
#include "../config.h"
#include "call.h"
#include "haadm.h"
#include "haagent.pb-c.h"

#define MAX_TARGETS   HA_CLI_MAX_TARGETS
#define MAX_REDIRECTS HA_CLI_MAX_REDIRECTS
/* How long a request is retried while the cluster says "busy" or has no leader. */
#define RETRY_MS       5000
#define POLL_MS        20
#define COMMIT_WAIT_MS 5000 /* a change must show up in status within this */

const char *ha_cli_conf_path(const struct globals *g)
{
	const char *path = g->conf ? g->conf : getenv("HAAGENT_CONF");
	return path ? path : HA_CLI_DEFAULT_CONF;
}

int ha_cli_targets(const struct globals *g, struct target *t, unsigned *n, struct ha_err *e)
{
	*n = 0;
	if (g->addr) {
		if (ha_split_hostport(g->addr, t[0].host, sizeof(t[0].host), &t[0].port) != 0)
			return ha_err_set(e, HA_EUSAGE, "-a %s: expected HOST:PORT", g->addr);
		*n = 1;
		return 0;
	}
	const char *path = ha_cli_conf_path(g);
	struct ha_config *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	int rc = ha_config_load(path, 0, c, e);
	if (rc != 0) {
		free(c);
		if (!g->conf && !getenv("HAAGENT_CONF") && access(path, F_OK) != 0)
			return ha_err_set(e, HA_EUSAGE,
			                  "no agent to ask: give -a HOST:PORT or -c FILE "
			                  "(%s does not exist)",
			                  HA_CLI_DEFAULT_CONF);
		return rc;
	}
	/* Ask this node's own agent first when the config names one. */
	if (c->self >= 0) {
		snprintf(t[*n].host, sizeof(t[*n].host), "%s", c->nodes[c->self].address);
		t[(*n)++].port = c->nodes[c->self].rpc_port;
	}
	for (unsigned i = 0; i < c->n_nodes; i++) {
		if ((int)i == c->self)
			continue;
		snprintf(t[*n].host, sizeof(t[*n].host), "%s", c->nodes[i].address);
		t[(*n)++].port = c->nodes[i].rpc_port;
	}
	free(c);
	return 0;
}

/* Fetches the status from the leader: asks the targets in turn, follows redirects. Falls back
 * to the first local view it got when no leader answers. */
int ha_cli_status(const struct globals *g, bool local_only, Haagent__StatusResponse **out,
                  struct ha_err *e)
{
	struct target t[MAX_TARGETS];
	unsigned n;
	int rc = ha_cli_targets(g, t, &n, e);
	if (rc != 0)
		return rc;
	Haagent__StatusRequest req = HAAGENT__STATUS_REQUEST__INIT;
	req.local_only = local_only;
	Haagent__StatusResponse *fallback = NULL;
	struct ha_err last = {0};
	for (unsigned i = 0; i < n; i++) {
		char host[64];
		unsigned port = t[i].port;
		snprintf(host, sizeof(host), "%s", t[i].host);
		for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
			int type;
			uint8_t *buf;
			size_t len;
			rc = ha_call(host, port, HA_MSG_STATUS_REQUEST, &req, g->timeout_ms, &type,
			             &buf, &len, &last);
			if ((rc == HA_EPERM || rc == HA_ECONFIG) && fallback == NULL) {
				*e = last; /* our certificate: another agent would say the same */
				return rc;
			}
			if (rc != 0)
				break;
			if (type != HA_MSG_STATUS_RESPONSE) {
				free(buf);
				ha_err_set(&last, HA_EPROTO, "%s:%u answered with message type %d",
				           host, port, type);
				break;
			}
			Haagent__StatusResponse *s =
			    haagent__status_response__unpack(NULL, len, buf);
			free(buf);
			if (s == NULL) {
				ha_err_set(&last, HA_EPROTO,
				           "%s:%u sent a reply that does not decode", host, port);
				break;
			}
			if (s->redirect && s->redirect[0]) {
				if (ha_split_hostport(s->redirect, host, sizeof(host), &port) !=
				    0) {
					haagent__status_response__free_unpacked(s, NULL);
					break;
				}
				haagent__status_response__free_unpacked(s, NULL);
				continue;
			}
			if (s->authoritative || local_only) {
				if (fallback)
					haagent__status_response__free_unpacked(fallback, NULL);
				*out = s;
				return 0;
			}
			if (fallback == NULL)
				fallback = s;
			else
				haagent__status_response__free_unpacked(s, NULL);
			break;
		}
	}
	if (fallback) {
		*out = fallback;
		return 0;
	}
	*e = last;
	ha_err_wrap(e, "no agent answered (tried %u)", n);
	return HA_ECONNECT;
}

/* One request to the leader: tries every agent, follows redirects, retries while busy. */
int ha_cli_admin(const struct globals *g, const Haagent__AdminRequest *req,
                 Haagent__AdminResponse **out, struct ha_err *e)
{
	struct target t[HA_CLI_MAX_TARGETS];
	unsigned n;
	int rc = ha_cli_targets(g, t, &n, e);
	if (rc != 0)
		return rc;
	uint64_t deadline = ha_now_ms() + RETRY_MS;
	Haagent__AdminResponse *last = NULL;
	for (;;) {
		for (unsigned i = 0; i < n; i++) {
			char host[64];
			unsigned port = t[i].port;
			snprintf(host, sizeof(host), "%s", t[i].host);
			for (int hop = 0; hop <= HA_CLI_MAX_REDIRECTS; hop++) {
				int type;
				uint8_t *buf;
				size_t len;
				int crc = ha_call(host, port, HA_MSG_ADMIN_REQUEST, req,
				                  g->timeout_ms, &type, &buf, &len, e);
				if (crc == HA_EPERM || crc == HA_ECONFIG) {
					/* our certificate: asking again or elsewhere cannot help */
					if (last)
						haagent__admin_response__free_unpacked(last, NULL);
					return crc;
				}
				if (crc != 0)
					break;
				Haagent__AdminResponse *r =
				    type == HA_MSG_ADMIN_RESPONSE
				        ? haagent__admin_response__unpack(NULL, len, buf)
				        : NULL;
				free(buf);
				if (r == NULL) {
					ha_err_set(e, HA_EPROTO, "%s:%u sent an unexpected reply",
					           host, port);
					break;
				}
				if (r->redirect && r->redirect[0] &&
				    ha_split_hostport(r->redirect, host, sizeof(host), &port) ==
				        0) {
					haagent__admin_response__free_unpacked(r, NULL);
					continue;
				}
				if (r->code != HA_EBUSY && r->code != HA_ENOLEADER) {
					if (last)
						haagent__admin_response__free_unpacked(last, NULL);
					*out = r;
					return 0;
				}
				if (last)
					haagent__admin_response__free_unpacked(last, NULL);
				last = r; /* busy, or no leader yet: retry */
				break;
			}
		}
		if (ha_now_ms() >= deadline)
			break;
		usleep(100 * 1000);
	}
	if (last) {
		*out = last;
		return 0;
	}
	return ha_err_wrap(e, "no agent answered (tried %u)", n);
}

/* Whether the leader's status shows the change req asked for. */
static bool visible(const Haagent__AdminRequest *req, const Haagent__StatusResponse *s)
{
	if (req->op_case == HAAGENT__ADMIN_REQUEST__OP_PAUSE) {
		/* paused also covers auto_failover = no: the operator's flag is what changes */
		return s->paused_by_operator == req->pause->paused;
	}
	for (size_t i = 0; i < s->n_nodes; i++)
		if (!strcmp(s->nodes[i]->name, req->maintenance->node))
			return ((s->nodes[i]->flags & HA_MEMBER_MAINTENANCE) != 0) ==
			       req->maintenance->on;
	return false;
}

/* Waits until the change is committed and visible, so that the command's return means it holds.
 */
bool ha_cli_wait_visible(const struct globals *g, const Haagent__AdminRequest *req)
{
	uint64_t deadline = ha_now_ms() + COMMIT_WAIT_MS;
	while (ha_now_ms() < deadline) {
		Haagent__StatusResponse *s = NULL;
		struct ha_err e = {0};
		if (ha_cli_status(g, false, &s, &e) == 0) {
			bool ok = s->authoritative && visible(req, s);
			haagent__status_response__free_unpacked(s, NULL);
			if (ok)
				return true;
		}
		usleep(POLL_MS * 1000);
	}
	return false;
}

int ha_cli_maintenance(const struct globals *g, const char *node, bool on, char *msg, size_t size)
{
	Haagent__MaintenanceRequest m = HAAGENT__MAINTENANCE_REQUEST__INIT;
	m.node = (char *)node;
	m.on = on;
	Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
	req.op_case = HAAGENT__ADMIN_REQUEST__OP_MAINTENANCE;
	req.maintenance = &m;
	Haagent__AdminResponse *r;
	struct ha_err e = {0};
	int rc = ha_cli_admin(g, &req, &r, &e);
	if (rc != 0) {
		snprintf(msg, size, "%s", e.msg);
		return rc;
	}
	rc = r->code;
	snprintf(msg, size, "%s", r->message);
	haagent__admin_response__free_unpacked(r, NULL);
	if (rc == 0 && !ha_cli_wait_visible(g, &req)) {
		snprintf(msg, size, "maintenance %s accepted but not visible after %d ms",
		         on ? "on" : "off", COMMIT_WAIT_MS);
		rc = HA_ETIMEOUT;
	}
	return rc;
}
