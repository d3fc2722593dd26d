/* MariaDB GTID positions: "domain-server-seq" entries separated by commas, at most one entry
 * per replication domain (the form of @@gtid_current_pos, @@gtid_slave_pos, @@gtid_binlog_pos).
 *
 * Comparison follows MariaDB's strict-mode model: within a domain, sequence numbers are totally
 * ordered and each is used once, so position A contains position B when, for every domain of B,
 * A has that domain with a sequence number above B's, or the same GTID. The server id does not
 * take part in ordering, but the same sequence number from two servers is two different
 * transactions: neither position contains the other (an old primary's last write and the new
 * primary's first one, say).
 *
 * Pure functions, any thread. Parsing treats its input as hostile. */
#ifndef HA_GTID_H
#define HA_GTID_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define HA_GTID_MAX_DOMAINS 64
/* The text of any position that parses: HA_GTID_MAX_DOMAINS entries of at most
 * "4294967295-4294967295-18446744073709551615," (43 characters), and the NUL. Every buffer that
 * holds a GTID position (probe samples, actions, reports, the replicated state) has this size,
 * so a position that parses is never cut on its way; one that does not parse (more domains) is
 * refused where it enters, with a message. */
#define HA_GTID_TEXT_MAX (HA_GTID_MAX_DOMAINS * 43 + 1)

struct ha_gtid {
	uint32_t domain;
	uint32_t server;
	uint64_t seq;
};

struct ha_gtid_pos {
	size_t n;
	struct ha_gtid g[HA_GTID_MAX_DOMAINS]; /* sorted by domain, unique domains */
};

enum ha_gtid_cmp {
	HA_GTID_EQUAL,    /* same sequence number in every domain */
	HA_GTID_AHEAD,    /* a contains b and has more */
	HA_GTID_BEHIND,   /* b contains a and has more */
	HA_GTID_DIVERGED, /* each has something the other lacks */
};

/* Parses s (NULL or "" is the empty position). Whitespace around entries is allowed. Fails with
 * HA_EINVAL on bad syntax, numbers out of range, a repeated domain or too many domains. */
int ha_gtid_parse(const char *s, struct ha_gtid_pos *out, struct ha_err *e);

/* Writes the canonical form (sorted by domain) into buf; returns the length it needed. */
size_t ha_gtid_format(const struct ha_gtid_pos *p, char *buf, size_t size);

/* Nonzero when every transaction of `inner` is in `outer`. */
int ha_gtid_contains(const struct ha_gtid_pos *outer, const struct ha_gtid_pos *inner);

enum ha_gtid_cmp ha_gtid_compare(const struct ha_gtid_pos *a, const struct ha_gtid_pos *b);
const char *ha_gtid_cmp_name(enum ha_gtid_cmp c);

/* The part of a that b lacks, as ranges per domain, written as
 * "domain-server-seq" of a for each domain where a is ahead of b (the errant set's upper
 * bounds), and the first missing sequence number per domain in `from` (may be NULL).
 * Returns the number of domains in which a has transactions b lacks. */
size_t ha_gtid_missing_from(const struct ha_gtid_pos *a, const struct ha_gtid_pos *b,
                            struct ha_gtid_pos *missing, uint64_t from[HA_GTID_MAX_DOMAINS]);

/* Whether position pos holds, in each domain, the last transaction that server `server` logged
 * according to the binary log state `state` (the form of @@gtid_binlog_state: one
 * "domain-server-seq" per domain and server; a server's own transactions are what a MariaDB
 * replica skips when they come back to it, so a server restored at pos must already have
 * them). server 0: every server but `except`. Returns 1, or 0 with the first entry pos lacks
 * in missing, or HA_EINVAL on a malformed state. */
int ha_gtid_state_held(const char *state, uint32_t server, uint32_t except,
                       const struct ha_gtid_pos *pos, char *missing, size_t size);

/* The union of a and b: per domain the entry with the higher sequence number (a's on a tie).
 * What a replica has received is the merge of what it applied and what its IO thread wrote to
 * the relay log. Returns 0, or HA_EINVAL (out untouched) when the union has more than
 * HA_GTID_MAX_DOMAINS domains. */
int ha_gtid_merge(const struct ha_gtid_pos *a, const struct ha_gtid_pos *b,
                  struct ha_gtid_pos *out);

/* Copies a position's text into buf only when it fits whole; otherwise buf gets "" and -1 is
 * returned (the caller refuses the value: a cut position would silently lose domains). */
int ha_gtid_copy_text(char *buf, size_t size, const char *text);

/* A position for a message: the text itself when it is short, else its first entry and the
 * number of domains ("0-1-902,... (36 domains)"). Never used as data. */
#define HA_GTID_BRIEF_MAX 96
const char *ha_gtid_brief(const char *text, char buf[HA_GTID_BRIEF_MAX]);

/* Total number of transactions of a that b lacks (saturating). */
uint64_t ha_gtid_count_missing(const struct ha_gtid_pos *a, const struct ha_gtid_pos *b);

/* Per domain the lower of a and b; a domain missing from either is missing from out (a point
 * that both positions contain). out may be a or b. */
void ha_gtid_min(const struct ha_gtid_pos *a, const struct ha_gtid_pos *b, struct ha_gtid_pos *out);

/* Whether the binary log state `state` (as @@gtid_binlog_state) holds transaction g: the state
 * has g's domain and server at a sequence number no lower (strict mode: a server's
 * transactions in a domain are applied in order). 1, 0, or HA_EINVAL on a malformed state. */
int ha_gtid_state_has(const char *state, const struct ha_gtid *g);

#endif
