#include "call.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "../common/clock.h"
#include "../common/frame.h"

int ha_split_hostport(const char *s, char *host, size_t host_size, unsigned *port)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s || (size_t)(colon - s) >= host_size)
		return HA_EINVAL;
	char *end;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (*end || p == 0 || p > 65535)
		return HA_EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (unsigned)p;
	return 0;
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		uint64_t now = ha_now_ms();
		if (now >= deadline)
			return HA_ETIMEOUT;
		struct pollfd p = {.fd = fd, .events = ev};
		int r = poll(&p, 1, (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r == 0)
			return HA_ETIMEOUT;
		if (errno != EINTR)
			return HA_EIO;
	}
}

/* Long on purpose: one request-answer exchange (connect, send, read the frame) under one
 * deadline, each step's error said in its own words. */
int ha_call(const char *host, unsigned port, int type, const void *pb_message, unsigned timeout_ms,
            int *resp_type, uint8_t **resp, size_t *resp_len, struct ha_err *e)
{
	uint64_t deadline = ha_now_ms() + timeout_ms;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return ha_err_set(e, HA_EINVAL, "%s is not an IPv4 address", host);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ha_err_set(e, HA_EIO, "socket: %s", strerror(errno));
	int rc;
	uint8_t *in = NULL;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
		rc = ha_err_set(e, HA_ECONNECT, "connect %s:%u: %s", host, port, strerror(errno));
		goto out;
	}
	if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0) {
		rc = ha_err_set(e, HA_ECONNECT, "connect %s:%u: timed out", host, port);
		goto out;
	}
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr) {
		rc = ha_err_set(e, HA_ECONNECT, "connect %s:%u: %s", host, port, strerror(soerr));
		goto out;
	}

	size_t n = protobuf_c_message_get_packed_size(pb_message);
	uint8_t *out = malloc(HA_FRAME_HEADER + n);
	if (out == NULL) {
		rc = ha_err_set(e, HA_ENOMEM, "out of memory");
		goto out;
	}
	ha_frame_header(out, (enum ha_msg_type)type, (uint32_t)n);
	protobuf_c_message_pack(pb_message, out + HA_FRAME_HEADER);
	size_t off = 0, total = HA_FRAME_HEADER + n;
	while (off < total) {
		ssize_t w = send(fd, out + off, total - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR) &&
		    wait_fd(fd, POLLOUT, deadline) == 0)
			continue;
		free(out);
		rc = ha_err_set(e, HA_EIO, "send to %s:%u: %s", host, port,
		                w < 0 ? strerror(errno) : "closed");
		goto out;
	}
	free(out);

	size_t cap = 65536, have = 0;
	in = malloc(cap);
	if (in == NULL) {
		rc = ha_err_set(e, HA_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		int t;
		const uint8_t *payload;
		size_t plen, flen;
		struct ha_err fe = {0};
		int d = ha_frame_decode(in, have, HA_FRAME_MAX_PAYLOAD, &t, &payload, &plen, &flen,
		                        &fe);
		if (d < 0) {
			rc = ha_err_set(e, HA_EPROTO, "reply from %s:%u: %s", host, port, fe.msg);
			goto out;
		}
		if (d == 1) {
			uint8_t *p = malloc(plen ? plen : 1);
			if (p == NULL) {
				rc = ha_err_set(e, HA_ENOMEM, "out of memory");
				goto out;
			}
			memcpy(p, payload, plen);
			*resp = p;
			*resp_len = plen;
			*resp_type = t;
			rc = 0;
			goto out;
		}
		if (have == cap) {
			if (cap >= HA_FRAME_HEADER + HA_FRAME_MAX_PAYLOAD) {
				rc = ha_err_set(e, HA_ETOOBIG, "reply too large");
				goto out;
			}
			uint8_t *bigger = realloc(in, cap * 2);
			if (bigger == NULL) {
				rc = ha_err_set(e, HA_ENOMEM, "out of memory");
				goto out;
			}
			in = bigger;
			cap *= 2;
		}
		ssize_t r = recv(fd, in + have, cap - have, 0);
		if (r > 0) {
			have += (size_t)r;
			continue;
		}
		if (r == 0) {
			rc = ha_err_set(e, HA_EIO, "%s:%u closed the connection", host, port);
			goto out;
		}
		if (errno == EAGAIN || errno == EINTR) {
			if (wait_fd(fd, POLLIN, deadline) != 0) {
				rc = ha_err_set(e, HA_ETIMEOUT, "no reply from %s:%u within %u ms",
				                host, port, timeout_ms);
				goto out;
			}
			continue;
		}
		rc = ha_err_set(e, HA_EIO, "recv from %s:%u: %s", host, port, strerror(errno));
		goto out;
	}
out:
	free(in);
	close(fd);
	return rc;
}
