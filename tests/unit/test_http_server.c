/* The HTTP server on a real loop, with clients on 127.0.0.1: answers, a client that shuts its
 * side down after its request, one that does not read its answer, the header deadline that
 * trickled bytes do not extend, eviction when every slot is held, bad and oversized requests,
 * the answer limit, and a close that leaves no handle behind. Deadlines are shortened with
 * ha_http_server_set_limits so the whole test takes about a second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "http/server.h"

static void handler(void *data, const struct ha_http_req *req, struct ha_http_resp *resp)
{
	(void)data;
	resp->status = 200;
	if (!strcmp(req->path, "/big")) { /* over HA_HTTP_MAX_ANSWER */
		char chunk[1024];
		memset(chunk, 'x', sizeof(chunk));
		for (int i = 0; i < 300; i++)
			ha_buf_append(&resp->body, chunk, sizeof(chunk));
		return;
	}
	if (!strcmp(req->path,
	            "/large")) { /* under the limit, larger than a socket takes at once */
		char chunk[1024];
		memset(chunk, 'y', sizeof(chunk));
		for (int i = 0; i < 200; i++)
			ha_buf_append(&resp->body, chunk, sizeof(chunk));
		return;
	}
	ha_buf_printf(&resp->body, "ok %s\n", req->path);
}

struct fixture {
	uv_loop_t loop;
	struct ha_http_server *srv;
	unsigned port;
};

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	if (uv_loop_init(&f.loop) != 0)
		return -1;
	struct ha_err e = {0};
	if (ha_http_server_start(&f.loop, "127.0.0.1", 0, handler, NULL, &f.srv, &e) != 0)
		return -1;
	f.port = ha_http_server_port(f.srv);
	struct ha_http_limits l = {.header_ms = 300, .write_ms = 300, .linger_ms = 200};
	ha_http_server_set_limits(f.srv, &l);
	*state = &f;
	return f.port ? 0 : -1;
}

/* Closing the server closes every connection; the loop then ends with no handle left. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	ha_http_server_close(f->srv);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	return uv_loop_close(&f->loop) == 0 ? 0 : -1;
}

/* Runs the loop for about ms. */
static void spin(struct fixture *f, unsigned ms)
{
	uint64_t end = ha_now_ms() + ms;
	do {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	} while (ha_now_ms() < end);
}

/* A client connected to the server; rcvbuf, when not 0, its receive buffer (set before the
 * connect, so that the window is small from the start). */
static int client_rcvbuf(struct fixture *f, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	if (rcvbuf)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static int client(struct fixture *f)
{
	return client_rcvbuf(f, 0);
}

static void say(int fd, const char *s, size_t n)
{
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* What the server sent so far, without waiting; *closed when it also closed. */
static size_t hear(int fd, char *buf, size_t size, bool *closed)
{
	size_t got = 0;
	*closed = false;
	while (got + 1 < size) {
		ssize_t n = recv(fd, buf + got, size - 1 - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		*closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
		break;
	}
	buf[got] = 0;
	return got;
}

/* What the server sends until it closes (or 3 s pass): the whole answer. */
static size_t await_end(struct fixture *f, int fd, char *buf, size_t size, bool *closed)
{
	size_t got = 0;
	uint64_t end = ha_now_ms() + 3000;
	*closed = false;
	while (!*closed && ha_now_ms() < end) {
		spin(f, 2);
		got += hear(fd, buf + got, size - got, closed);
	}
	return got;
}

/* Spins until n connections are open (or 3 s pass); the number open. */
static unsigned await_open(struct fixture *f, unsigned n)
{
	struct ha_http_stats st;
	uint64_t end = ha_now_ms() + 3000;
	do {
		spin(f, 2);
		ha_http_server_stats(f->srv, &st);
	} while (st.open != n && ha_now_ms() < end);
	return st.open;
}

static void answers_and_lingers(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	say(fd, "GET /primary HTTP/1.1\r\nHost: x\r\n\r\n", 35);
	char buf[512];
	bool closed;
	await_end(f, fd, buf, sizeof(buf), &closed);
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(buf, "\r\n\r\nok /primary\n"));
	assert_true(closed); /* our side shut down: the client sees the end */
	close(fd);
	assert_int_equal(await_open(f, 0), 0);
	struct ha_http_stats st;
	ha_http_server_stats(f->srv, &st);
	assert_int_equal(st.answered[0], 1);
}

/* A client that shuts its side down right after its request still gets the whole answer. */
static void half_close_after_the_request(void **state)
{
	struct fixture *f = *state;
	/* small buffers on both sides: the answer cannot all be sent at once */
	struct ha_http_limits l = {
	    .header_ms = 300, .write_ms = 2500, .linger_ms = 200, .sndbuf = 4096};
	ha_http_server_set_limits(f->srv, &l);
	int fd = client_rcvbuf(f, 4096);
	say(fd, "GET /large HTTP/1.1\r\n\r\n", 23);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	static char buf[256 << 10];
	bool closed;
	size_t got = await_end(f, fd, buf, sizeof(buf), &closed);
	assert_true(closed);
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(buf, "Content-Length: 204800\r\n"));
	char *body = strstr(buf, "\r\n\r\n");
	assert_non_null(body);
	assert_int_equal(got - (size_t)(body + 4 - buf), 200 * 1024);
	close(fd);
}

/* A client that does not take its answer loses the connection at the write deadline. */
static void unread_answer(void **state)
{
	struct fixture *f = *state;
	struct ha_http_limits l = {
	    .header_ms = 300, .write_ms = 500, .linger_ms = 200, .sndbuf = 4096};
	ha_http_server_set_limits(f->srv, &l);
	int fd = client_rcvbuf(f, 4096);
	say(fd, "GET /large HTTP/1.1\r\n\r\n", 23);
	assert_int_equal(await_open(f, 1), 1);
	uint64_t t0 = ha_now_ms();
	assert_int_equal(await_open(f, 0), 0);
	assert_true(ha_now_ms() - t0 >= 400); /* the write deadline, not before */
	struct ha_http_stats st;
	ha_http_server_stats(f->srv, &st);
	assert_int_equal(st.dropped[HA_HTTP_DROP_UNREAD], 1);
	close(fd);
}

static void trickle_does_not_extend_the_deadline(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	const char *req = "GET /primary HTTP/1.1\r\nHost: a-long-host-name.example\r\n\r\n";
	uint64_t t0 = ha_now_ms();
	bool closed = false;
	char buf[256];
	for (size_t i = 0; i + 1 < strlen(req) && !closed; i++) {
		(void)send(fd, req + i, 1, MSG_NOSIGNAL);
		spin(f, 25);
		hear(fd, buf, sizeof(buf), &closed);
		assert_int_equal(buf[0], 0); /* no answer: only a close */
	}
	uint64_t took = ha_now_ms() - t0;
	assert_true(closed);
	assert_in_range(took, 290, 1500);
	close(fd);
	struct ha_http_stats st;
	ha_http_server_stats(f->srv, &st);
	assert_int_equal(st.dropped[HA_HTTP_DROP_SLOW], 1);
}

/* Every slot held by a slow client: a new client still gets its answer, the oldest slow client
 * gives way, and a churn of new slow clients does not keep a check from being answered. */
static void eviction(void **state)
{
	struct fixture *f = *state;
	int slow[HA_HTTP_MAX_CONNS + 8];
	for (int i = 0; i < HA_HTTP_MAX_CONNS; i++) {
		slow[i] = client(f);
		say(slow[i], "GET /pri", 8);
		spin(f, 1);
	}
	assert_int_equal(await_open(f, HA_HTTP_MAX_CONNS), HA_HTTP_MAX_CONNS);
	struct ha_http_stats st;
	char buf[512];
	bool closed;
	for (int round = 0; round < 8; round++) {
		int fd = client(f);
		say(fd, "GET /replica HTTP/1.0\r\n\r\n", 25);
		await_end(f, fd, buf, sizeof(buf), &closed);
		assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
		close(fd);
		/* the oldest slow client is gone */
		await_end(f, slow[round], buf, sizeof(buf), &closed);
		assert_true(closed);
		assert_int_equal(buf[0], 0);
		/* and a new one takes its place */
		slow[HA_HTTP_MAX_CONNS + round] = client(f);
		say(slow[HA_HTTP_MAX_CONNS + round], "GET /", 5);
		spin(f, 2);
	}
	ha_http_server_stats(f->srv, &st);
	assert_true(st.dropped[HA_HTTP_DROP_EVICTED] >= 8);
	assert_int_equal(st.answered[0], 8);
	assert_true(st.open <= HA_HTTP_MAX_CONNS);
	for (int i = 0; i < HA_HTTP_MAX_CONNS + 8; i++)
		close(slow[i]);
	spin(f, 20);
}

/* A check that arrives in one burst with more slow clients than there are slots: all of them
 * wait in the listener's backlog and are accepted in one go, before any is read. The check
 * must not be evicted by those that come after it in the burst. */
static void burst_does_not_evict_the_unread(void **state)
{
	struct fixture *f = *state;
	int slow[HA_HTTP_MAX_CONNS + 40];
	for (int i = 0; i < HA_HTTP_MAX_CONNS; i++) {
		slow[i] = client(f);
		say(slow[i], "GET /pri", 8);
	}
	assert_int_equal(await_open(f, HA_HTTP_MAX_CONNS), HA_HTTP_MAX_CONNS);
	spin(f, 5);
	/* the burst: a check first, then 40 slow clients, none accepted yet */
	int fd = client(f);
	say(fd, "GET /primary HTTP/1.1\r\n\r\n", 25);
	for (int i = HA_HTTP_MAX_CONNS; i < HA_HTTP_MAX_CONNS + 40; i++) {
		slow[i] = client(f);
		say(slow[i], "GET /pri", 8);
	}
	char buf[512];
	bool closed;
	await_end(f, fd, buf, sizeof(buf), &closed);
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
	close(fd);
	for (int i = 0; i < HA_HTTP_MAX_CONNS + 40; i++)
		close(slow[i]);
	spin(f, 10);
}

static void bad_requests_get_an_answer(void **state)
{
	struct fixture *f = *state;
	char buf[512];
	bool closed;
	/* oversized: 400 after the limit, and the rest is drained, so no reset destroys it */
	static char big[10000];
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	int fd = client(f);
	say(fd, big, sizeof(big));
	await_end(f, fd, buf, sizeof(buf), &closed);
	assert_non_null(strstr(buf, "HTTP/1.1 400 Bad Request"));
	close(fd);
	/* garbage */
	fd = client(f);
	say(fd, "\x00\x01\x02\r\n\r\n", 7);
	await_end(f, fd, buf, sizeof(buf), &closed);
	assert_non_null(strstr(buf, "HTTP/1.1 400"));
	close(fd);
	/* another method */
	fd = client(f);
	say(fd, "DELETE /primary HTTP/1.1\r\n\r\n", 28);
	await_end(f, fd, buf, sizeof(buf), &closed);
	assert_non_null(strstr(buf, "HTTP/1.1 405"));
	close(fd);
	/* an answer over the limit is replaced by a 500 */
	fd = client(f);
	say(fd, "GET /big HTTP/1.1\r\n\r\n", 21);
	await_end(f, fd, buf, sizeof(buf), &closed);
	assert_non_null(strstr(buf, "HTTP/1.1 500"));
	close(fd);
	spin(f, 10);
	struct ha_http_stats st;
	ha_http_server_stats(f->srv, &st);
	assert_int_equal(st.answered[1], 2); /* 400 */
	assert_int_equal(st.answered[4], 1); /* 405 */
	assert_int_equal(st.answered[5], 1); /* 500 */
}

/* Closing the server with connections in every state (teardown checks nothing is left). */
static void close_with_connections_open(void **state)
{
	struct fixture *f = *state;
	int fds[6];
	for (int i = 0; i < 6; i++) {
		fds[i] = client(f);
		if (i % 2)
			say(fds[i], "GET / HTTP/1.1\r\n\r\n", 18);
		else
			say(fds[i], "GE", 2);
	}
	spin(f, 10);
	ha_http_server_close(f->srv);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < 6; i++)
		close(fds[i]);
	/* for teardown: a fresh server */
	struct ha_err e = {0};
	assert_int_equal(ha_http_server_start(&f->loop, "127.0.0.1", 0, handler, NULL, &f->srv, &e),
	                 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(answers_and_lingers, setup, teardown),
	    cmocka_unit_test_setup_teardown(half_close_after_the_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(unread_answer, setup, teardown),
	    cmocka_unit_test_setup_teardown(trickle_does_not_extend_the_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(eviction, setup, teardown),
	    cmocka_unit_test_setup_teardown(burst_does_not_evict_the_unread, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_requests_get_an_answer, setup, teardown),
	    cmocka_unit_test_setup_teardown(close_with_connections_open, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
