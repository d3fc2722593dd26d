/* Binary log events as the archive reads them: one event at a time from a byte stream, and
 * where each transaction begins and ends. Pure (no I/O), any thread; every length is checked
 * against the bytes there are (the input is hostile: a damaged slice, a rogue server).
 *
 * An event is a 19-byte header (timestamp, type, server id, size, end position, flags), a
 * body, and, when the stream's Format_description event says so, a 4-byte CRC32 (not checked
 * here: mariadb-binlog checks it on replay, and the archive's own SHA-256 and GCM tag guard
 * the stored bytes).
 *
 * A transaction is a GTID event and the events after it up to its end: an XID event, a Query
 * event "COMMIT" or "ROLLBACK", an XA prepare, or, for a standalone GTID (DDL, or a statement
 * outside a transaction), the first Query event. Everything else outside a transaction
 * (Format_description, Gtid_list, Binlog_checkpoint, Rotate, Stop, heartbeats) belongs to the
 * file, not to the history, and the archive leaves it out. */
#ifndef HA_BACKUP_BINLOGEV_H
#define HA_BACKUP_BINLOGEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/gtid.h"

#define HA_BL_MAGIC_LEN 4
extern const uint8_t ha_bl_magic[HA_BL_MAGIC_LEN]; /* "\xfe" "bin" */

#define HA_BL_HEADER        19
#define HA_BL_EVENT_MAX     (1u << 30) /* max_allowed_packet's ceiling */
#define HA_BL_QUERY         2
#define HA_BL_STOP          3
#define HA_BL_ROTATE        4
#define HA_BL_FD            15
#define HA_BL_XID           16
#define HA_BL_HEARTBEAT     27
#define HA_BL_XA_PREPARE    38
#define HA_BL_ANNOTATE      160
#define HA_BL_CHECKPOINT    161
#define HA_BL_GTID          162
#define HA_BL_GTID_LIST     163
#define HA_BL_FL_STANDALONE 0x01

struct ha_bl_event {
	uint32_t ts;
	uint8_t type;
	uint32_t server_id;
	uint32_t size; /* the whole event, header and checksum included */
	uint16_t flags;
	const uint8_t *body; /* after the header, before the checksum */
	size_t body_len;
};

/* One event at p, with n bytes there: 1 (ev set; ev->size bytes make the event), 0 when more
 * bytes are needed, -1 when the bytes cannot be an event. checksum: 0 or 4, as the stream's
 * Format_description event says (ha_bl_fd_checksum). */
int ha_bl_event(const uint8_t *p, size_t n, unsigned checksum, struct ha_bl_event *ev);

/* A Format_description event's checksum length (read as an event with checksum 0): 0 or 4,
 * or -1 when it is malformed or names an algorithm other than none or CRC32. */
int ha_bl_fd_checksum(const struct ha_bl_event *fd);

/* A GTID event's transaction id and flags; -1 when malformed. */
int ha_bl_gtid(const struct ha_bl_event *ev, struct ha_gtid *g, uint8_t *flags);

/* A Query event's statement text (not NUL-terminated); -1 when malformed. An Annotate_rows
 * event's text likewise (the statement behind row events). */
int ha_bl_query_text(const struct ha_bl_event *ev, const char **text, size_t *len);

/* A Gtid_list event's position (per domain, the highest sequence number); -1 when malformed
 * or with more domains than a position holds. */
int ha_bl_gtid_list(const struct ha_bl_event *ev, struct ha_gtid_pos *out);

/* A Rotate event's next file name into out (NUL-terminated); -1 when malformed, longer than
 * size - 1, or not a plain file name (a '/', or a leading '.': never ".." nor a hidden file). */
int ha_bl_rotate_name(const struct ha_bl_event *ev, char *out, size_t size);

/* Where an event stands in the history. */
enum ha_bl_role {
	HA_BL_OUTSIDE,  /* belongs to no transaction */
	HA_BL_TX_START, /* a GTID event: a transaction begins */
	HA_BL_TX_BODY,
	HA_BL_TX_END, /* its last event */
};

struct ha_bl_split {
	bool in_tx, standalone;
	struct ha_gtid gtid; /* of the open transaction */
	uint32_t ts;         /* its GTID event's timestamp */
	/* The last event fed began a transaction, or was a file event (Rotate, Stop, ...), while
	 * one was open: the server writes whole transactions, so the open one ended with the event
	 * before (an end this reader does not know, such as XA COMMIT of a given xid): closed says
	 * so, with its GTID and time. */
	bool closed;
	struct ha_gtid closed_gtid;
	uint32_t closed_ts;
	/* The last event fed was a new file's Format_description inside a transaction: the file
	 * before ended in its middle (its server died while writing it); it is not part of the
	 * history. */
	bool cut;
};

/* The role of ev after the events already fed; -1 on a malformed GTID event. */
int ha_bl_split_feed(struct ha_bl_split *s, const struct ha_bl_event *ev, enum ha_bl_role *role);

#endif
