#include "tlsio.h"

#include <stdlib.h>

struct tls_write {
	uv_write_t req;
	size_t *outstanding;
	size_t len;
	char data[];
};

static void on_written(uv_write_t *req, int status)
{
	(void)status; /* a failed write shows on the read side too, which closes the stream */
	struct tls_write *w = (struct tls_write *)req;
	*w->outstanding -= w->len;
	free(w);
}

int ha_tls_send_pending(struct ha_tls *t, uv_stream_t *s, size_t *outstanding)
{
	size_t n = ha_tls_pending(t);
	if (n == 0)
		return 0;
	struct tls_write *w = malloc(sizeof(*w) + n);
	if (w == NULL)
		return UV_ENOMEM;
	w->len = ha_tls_take(t, w->data, n);
	w->outstanding = outstanding;
	uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
	int rc = uv_write(&w->req, s, &b, 1, on_written);
	if (rc != 0) {
		free(w);
		return rc;
	}
	*outstanding += w->len;
	return 0;
}
