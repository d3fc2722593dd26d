#include "probe.h"

#include <errmsg.h>
#include <errno.h>
#include <fcntl.h>
#include <mysql.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "../common/secret.h"
#include "classify.h"
#include "conn.h"

struct ha_probe {
	uv_async_t async;
	ha_probe_cb cb;
	void *cb_data;
	pthread_t thread;
	bool thread_started;

	char host[256];
	char user[128];
	char password[256];
	unsigned port, interval_ms, timeout_ms;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool now;                      /* under mu: probe again without waiting for the interval */
	struct ha_probe_sample latest; /* under mu */
	_Atomic uint64_t inflight_since_ms; /* 0 when idle */
	uint64_t seq;

	/* worker only: what the IO thread had received at the last probe */
	uint64_t rx_heartbeats;
	uint64_t rx_pos;
	char rx_file[256];
	uint64_t rx_last_ms;
};

/* ---- worker thread ---- */

static void read_loadavg(struct ha_probe_sample *s)
{
	FILE *f = fopen("/proc/loadavg", "r");
	if (f == NULL)
		return;
	if (fscanf(f, "%lf", &s->loadavg1) != 1)
		s->loadavg1 = 0;
	fclose(f);
}

static void copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* A GTID position is copied whole or not at all: one longer than any position of
 * HA_GTID_MAX_DOMAINS domains is replaced by a text that does not parse, so every layer above
 * says "unreadable GTID position" instead of acting on a position with domains cut off. */
static void copy_gtid(char *dst, size_t size, const char *src)
{
	if (ha_gtid_copy_text(dst, size, src) != 0)
		snprintf(dst, size, "(over %d domains: not handled)", HA_GTID_MAX_DOMAINS);
}

static int query(MYSQL *m, const char *sql, MYSQL_RES **res)
{
	if (mysql_real_query(m, sql, (unsigned long)strlen(sql)) != 0)
		return -1;
	*res = mysql_store_result(m);
	if (*res == NULL && mysql_field_count(m) != 0)
		return -1;
	return 0;
}

/* A path whole, or "" when it does not fit (never cut). */
static void copy_whole(char *dst, size_t size, const char *src)
{
	if (src == NULL || strlen(src) >= size)
		dst[0] = '\0';
	else
		memcpy(dst, src, strlen(src) + 1);
}

static int probe_vars(MYSQL *m, struct ha_probe_sample *s, uint64_t *heartbeats)
{
	MYSQL_RES *r;
	if (query(m,
	          "SELECT @@global.read_only, @@global.gtid_current_pos, @@global.gtid_slave_pos, "
	          "@@global.gtid_binlog_pos, @@version, @@server_id, "
	          "@@global.rpl_semi_sync_master_enabled, @@global.log_bin_index, @@global.datadir",
	          &r))
		return -1;
	MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
	if (row == NULL) {
		if (r)
			mysql_free_result(r);
		return -1;
	}
	s->read_only = row[0] && atoi(row[0]) != 0;
	copy_gtid(s->gtid_current, sizeof(s->gtid_current), row[1]);
	copy_gtid(s->gtid_slave, sizeof(s->gtid_slave), row[2]);
	copy_gtid(s->gtid_binlog, sizeof(s->gtid_binlog), row[3]);
	copy_field(s->version, sizeof(s->version), row[4]);
	s->server_id = row[5] ? (unsigned)strtoul(row[5], NULL, 10) : 0;
	s->semisync_master_enabled = row[6] && atoi(row[6]) != 0;
	copy_whole(s->binlog_index, sizeof(s->binlog_index), row[7]);
	copy_whole(s->datadir, sizeof(s->datadir), row[8]);
	mysql_free_result(r);

	if (query(m,
	          "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
	          "WHERE VARIABLE_NAME IN ('THREADS_RUNNING', 'RPL_SEMI_SYNC_MASTER_STATUS', "
	          "'RPL_SEMI_SYNC_SLAVE_STATUS', 'SLAVE_RECEIVED_HEARTBEATS', "
	          "'RPL_SEMI_SYNC_MASTER_NO_TIMES', 'UPTIME') "
	          /* read after the count: a fence's disabling (which counts too) is never seen
	           * as a fallback of an enabled semi-sync (node/rejoin.h) */
	          "UNION ALL SELECT 'SEMI_SYNC_MASTER_ENABLED', "
	          "@@global.rpl_semi_sync_master_enabled",
	          &r))
		return -1;
	while (r && (row = mysql_fetch_row(r)) != NULL) {
		if (row[0] == NULL || row[1] == NULL)
			continue;
		if (!strcmp(row[0], "THREADS_RUNNING"))
			s->threads_running = (unsigned)strtoul(row[1], NULL, 10);
		else if (!strcmp(row[0], "RPL_SEMI_SYNC_MASTER_STATUS"))
			s->semisync_master_active = !strcmp(row[1], "ON");
		else if (!strcmp(row[0], "RPL_SEMI_SYNC_SLAVE_STATUS"))
			s->semisync_slave_active = !strcmp(row[1], "ON");
		else if (!strcmp(row[0], "SLAVE_RECEIVED_HEARTBEATS"))
			*heartbeats = strtoull(row[1], NULL, 10);
		else if (!strcmp(row[0], "UPTIME")) {
			s->uptime_s = strtoull(row[1], NULL, 10);
			s->uptime_known = true;
		} else if (!strcmp(row[0], "RPL_SEMI_SYNC_MASTER_NO_TIMES"))
			s->semisync_off_times = strtoull(row[1], NULL, 10);
		else if (!strcmp(row[0], "SEMI_SYNC_MASTER_ENABLED"))
			s->semisync_master_enabled = atoi(row[1]) != 0;
	}
	if (r)
		mysql_free_result(r);
	return 0;
}

/* The IO thread's last contact with the master: a new event (read position) or heartbeat
 * since the previous probe. 10.11 has no "last heartbeat" field, so it is tracked here. */
static void track_rx(struct ha_probe *p, struct ha_probe_sample *s, uint64_t heartbeats,
                     const char *file, uint64_t pos)
{
	uint64_t now = ha_now_ms();
	if (p->rx_last_ms == 0 || heartbeats != p->rx_heartbeats || pos != p->rx_pos ||
	    strcmp(file, p->rx_file) != 0) {
		p->rx_heartbeats = heartbeats;
		p->rx_pos = pos;
		snprintf(p->rx_file, sizeof(p->rx_file), "%s", file);
		if (s->io_running || p->rx_last_ms == 0)
			p->rx_last_ms = now;
	}
	s->master_rx_age_ms = now - p->rx_last_ms;
}

static int probe_replication(MYSQL *m, struct ha_probe_sample *s, struct ha_probe *p,
                             uint64_t heartbeats)
{
	struct ha_slave_status ss;
	if (ha_db_slave_status(m, &ss) != 0)
		return -1;
	s->lag_seconds = ss.lag_seconds;
	if (!ss.configured) {
		p->rx_last_ms = 0;
		return 0;
	}
	copy_field(s->master_host, sizeof(s->master_host), ss.master_host);
	s->master_port = ss.master_port;
	copy_field(s->io_state, sizeof(s->io_state), ss.io_state);
	s->io_running = ss.io_running;
	s->sql_running = ss.sql_running;
	s->sql_delay = ss.sql_delay;
	copy_gtid(s->gtid_io_pos, sizeof(s->gtid_io_pos), ss.gtid_io_pos);
	s->replicating = s->master_host[0] != '\0';
	copy_field(s->sql_error, sizeof(s->sql_error), ss.sql_error);
	s->relay_exhausted =
	    s->sql_running && !s->io_running && strstr(ss.sql_state, "read all relay log") != NULL;
	if (ss.sql_error[0])
		copy_field(s->last_error, sizeof(s->last_error), ss.sql_error);
	else if (ss.io_error[0])
		copy_field(s->last_error, sizeof(s->last_error), ss.io_error);
	track_rx(p, s, heartbeats, ss.master_log_file, ss.read_master_log_pos);
	return 0;
}

static MYSQL *connect_db(struct ha_probe *p, struct ha_probe_sample *s)
{
	struct ha_db_where w = {.host = p->host,
	                        .port = p->port,
	                        .user = p->user,
	                        .password = p->password,
	                        .timeout_ms = p->timeout_ms};
	char err[sizeof(s->db_error) - 16];
	MYSQL *m = ha_db_open(&w, err, sizeof(err), &s->db_errno);
	if (m == NULL)
		snprintf(s->db_error, sizeof(s->db_error), "connect: %s", err);
	return m;
}

/* Is anything listening on the server's port? A plain TCP connect, bounded by timeout_ms:
 * refused is the proof that the server is gone (no process holds the port). */
static enum ha_port_state port_check(const char *host, unsigned port, unsigned timeout_ms)
{
	char service[16];
	snprintf(service, sizeof(service), "%u", port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, service, &hints, &ai) != 0 || ai == NULL)
		return HA_PORT_UNKNOWN;
	enum ha_port_state st = HA_PORT_UNKNOWN;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (rc == 0) {
			st = HA_PORT_OPEN;
		} else if (errno == ECONNREFUSED) {
			st = HA_PORT_REFUSED;
		} else if (errno == EINPROGRESS) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int n = poll(&pfd, 1, (int)timeout_ms);
			int err = 0;
			socklen_t len = sizeof(err);
			if (n == 0)
				st = HA_PORT_SILENT;
			else if (n > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0)
				st = err == 0              ? HA_PORT_OPEN
				     : err == ECONNREFUSED ? HA_PORT_REFUSED
				                           : HA_PORT_UNKNOWN;
		}
		close(fd);
	}
	freeaddrinfo(ai);
	return st;
}

static bool run_queries(struct ha_probe *p, MYSQL *m, struct ha_probe_sample *s)
{
	uint64_t hb = 0;
	if (probe_vars(m, s, &hb) == 0 && probe_replication(m, s, p, hb) == 0)
		return true;
	s->db_errno = mysql_errno(m);
	snprintf(s->db_error, sizeof(s->db_error), "query: %s (%u)", mysql_error(m), s->db_errno);
	return false;
}

/* One probe. Returns the connection to keep (NULL after an error).
 *
 * A kept connection that fails at once (killed by a DBA, the server restarted) is retried once
 * with a fresh connection in the same probe, so that one lost session is never reported as a
 * state of the server. A failure is then classified (classify.h): only a refused port is DOWN. */
static MYSQL *probe_once(struct ha_probe *p, MYSQL *m, struct ha_probe_sample *s)
{
	uint64_t t0 = ha_now_ms();
	bool kept = m != NULL;
	if (m == NULL)
		m = connect_db(p, s);
	if (m != NULL && !run_queries(p, m, s)) {
		mysql_close(m);
		m = NULL;
		if (kept && ha_now_ms() - t0 + 100 < p->timeout_ms) {
			m = connect_db(p, s);
			if (m != NULL && !run_queries(p, m, s)) {
				mysql_close(m);
				m = NULL;
			}
		}
	}
	uint64_t took = ha_now_ms() - t0;
	if (m != NULL) {
		s->db = HA_DB_UP;
		s->db_error[0] = '\0';
		s->db_errno = 0;
		ha_db_instance(s->datadir, s->instance);
	} else {
		bool timed_out = took + 100 >= p->timeout_ms;
		enum ha_port_state port =
		    timed_out ? HA_PORT_UNKNOWN : port_check(p->host, p->port, p->timeout_ms / 2);
		s->db = ha_db_classify(s->db_errno, timed_out, port);
		if (port == HA_PORT_REFUSED) {
			size_t len = strlen(s->db_error);
			snprintf(s->db_error + len, sizeof(s->db_error) - len,
			         "; nothing listens on port %u", p->port);
		}
	}
	s->probe_ms = (unsigned)took;
	read_loadavg(s);
	s->sampled_unix_ms = ha_unix_ms();
	return m;
}

static void *worker(void *arg)
{
	struct ha_probe *p = arg;
	MYSQL *m = NULL;
	mysql_thread_init();
	for (;;) {
		pthread_mutex_lock(&p->mu);
		bool stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;

		pthread_mutex_lock(&p->mu);
		p->now = false;
		pthread_mutex_unlock(&p->mu);
		uint64_t start = ha_now_ms();
		struct ha_probe_sample *s = calloc(1, sizeof(*s));
		if (s == NULL)
			break;
		s->started_ms = start;
		atomic_store(&p->inflight_since_ms, start);
		m = probe_once(p, m, s);
		atomic_store(&p->inflight_since_ms, 0);

		pthread_mutex_lock(&p->mu);
		s->seq = ++p->seq;
		p->latest = *s;
		stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		free(s);
		if (stop)
			break;
		uv_async_send(&p->async);

		/* wait for the next tick, or stop */
		uint64_t due = start + p->interval_ms;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = ha_now_ms();
		uint64_t wait = due > now ? due - now : 0;
		ts.tv_sec += (time_t)(wait / 1000);
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&p->mu);
		while (!p->stop && !p->now && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0)
			;
		pthread_mutex_unlock(&p->mu);
	}
	if (m)
		mysql_close(m);
	mysql_thread_end();
	return NULL;
}

/* ---- loop side ---- */

static void on_async(uv_async_t *a)
{
	struct ha_probe *p = a->data;
	if (p->cb)
		p->cb(p->cb_data);
}

int ha_probe_start(uv_loop_t *loop, const struct ha_probe_conf *conf, ha_probe_cb cb, void *data,
                   struct ha_probe **out, struct ha_err *e)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, (void (*)(void))mysql_library_init);

	struct ha_probe *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	snprintf(p->host, sizeof(p->host), "%s", conf->host);
	snprintf(p->user, sizeof(p->user), "%s", conf->user);
	snprintf(p->password, sizeof(p->password), "%s", conf->password);
	p->port = conf->port;
	p->interval_ms = conf->interval_ms;
	p->timeout_ms = conf->timeout_ms;
	p->cb = cb;
	p->cb_data = data;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->latest.db = HA_DB_UNKNOWN;
	p->latest.lag_seconds = -1;
	if (uv_async_init(loop, &p->async, on_async) != 0) {
		free(p);
		return ha_err_set(e, HA_EINTERNAL, "uv_async_init failed");
	}
	p->async.data = p;
	int rc = pthread_create(&p->thread, NULL, worker, p);
	if (rc != 0) {
		uv_close((uv_handle_t *)&p->async, NULL);
		/* p is leaked on this path: the agent exits */
		return ha_err_set(e, HA_EINTERNAL, "cannot start probe thread: %s", strerror(rc));
	}
	p->thread_started = true;
	*out = p;
	return 0;
}

/* How long the probe in flight has overrun its timeout's start, or 0 when none overran. */
static uint64_t overrun_ms(struct ha_probe *p)
{
	uint64_t since = atomic_load(&p->inflight_since_ms);
	uint64_t now = ha_now_ms();
	return since && now - since > p->timeout_ms ? now - since : 0;
}

void ha_probe_latest(struct ha_probe *p, struct ha_probe_sample *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->latest;
	pthread_mutex_unlock(&p->mu);
	uint64_t over = overrun_ms(p);
	if (over) {
		out->db = HA_DB_HUNG;
		snprintf(out->db_error, sizeof(out->db_error), "no answer for %llu ms",
		         (unsigned long long)over);
	}
}

uint64_t ha_probe_latest_started(struct ha_probe *p)
{
	pthread_mutex_lock(&p->mu);
	uint64_t t = p->latest.started_ms;
	pthread_mutex_unlock(&p->mu);
	return t;
}

enum ha_db_state ha_probe_db_state(struct ha_probe *p)
{
	if (overrun_ms(p))
		return HA_DB_HUNG;
	pthread_mutex_lock(&p->mu);
	enum ha_db_state db = p->latest.db;
	pthread_mutex_unlock(&p->mu);
	return db;
}

void ha_probe_now(struct ha_probe *p)
{
	pthread_mutex_lock(&p->mu);
	p->now = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void ha_probe_stop(struct ha_probe *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	uv_close((uv_handle_t *)&p->async, NULL);
}

void ha_probe_join(struct ha_probe *p)
{
	if (p->thread_started)
		pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	ha_wipe(p->password, sizeof(p->password));
	free(p);
}
