/* Which connection the HTTP server gives up when every slot is taken and another client
 * connects. Pure, any thread; the server (server.c) feeds it its slots.
 *
 * A health check must not wait behind clients that hold connections without finishing a
 * request, so a new connection is never refused for lack of room: it takes the slot of one that
 * has waited longest without completing its request. When one peer address holds more than its
 * share (HA_HTTP_PEER_SHARE slots still waiting), the victim is the oldest of the peer holding
 * the most: a flood from one address evicts itself, and a load balancer's few fresh checks are
 * not touched even by a slow handshake. A connection already answered and only waiting for its
 * client's close goes before all of them; one still writing its answer goes last (its client
 * does not take it). A connection so new that it has not been read yet is never given up: a
 * burst of connections accepted together, before any is read, would otherwise evict a check
 * that came first in the burst with its request already sent; when only such connections are
 * left, there is no victim and the newcomer is refused.
 *
 * Among waiting connections, one that has shown less gives way first (its rank): on
 * a server with TLS, one that sent plain bytes which can only earn a 403 goes before a TLS
 * handshake under way, and that before a client whose certificate was verified. A check of
 * HAProxy or Prometheus (TLS, with the monitoring certificate) is then never evicted by plain
 * slow clients, whatever address they come from. docs/security.md, "HTTP server", says why. */
#ifndef HA_HTTP_SLOTS_H
#define HA_HTTP_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A peer address above this many waiting connections is evicted first. */
#define HA_HTTP_PEER_SHARE 8

enum ha_http_slot_state {
	HA_HTTP_SLOT_FREE = 0,
	HA_HTTP_SLOT_WAITING, /* for its request to arrive whole */
	HA_HTTP_SLOT_WRITING, /* its answer */
	HA_HTTP_SLOT_DONE,    /* answer written: waiting for the client to close */
};

/* What a waiting connection has shown so far; a lower rank gives way first. */
enum ha_http_slot_rank {
	HA_HTTP_RANK_PLAIN = 0, /* plain bytes on a TLS server (or nothing read yet) */
	HA_HTTP_RANK_TRYING,    /* a TLS handshake under way, or plain where plain is served */
	HA_HTTP_RANK_VERIFIED,  /* a TLS client whose certificate verified */
};

struct ha_http_slot {
	enum ha_http_slot_state state;
	uint64_t order; /* accept order: smaller is older, unique among used slots */
	uint32_t peer;  /* the client's address (IPv4, any fixed byte order); 0 when unknown */
	bool fresh;     /* waiting, and not offered a read yet: never the victim */
	enum ha_http_slot_rank rank; /* of a waiting slot */
};

/* The index of the slot to give up among the n, or -1 when none can be. */
int ha_http_slot_victim(const struct ha_http_slot *slots, size_t n);

#endif
