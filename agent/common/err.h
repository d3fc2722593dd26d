/* Error codes and an error value that carries a message wrapped with context.
 *
 * Every fallible function returns 0 or a negative HA_E... code and, when it takes a
 * `struct ha_err *`, fills it with a message. Callers add context on the way up with
 * ha_err_wrap(), so the final message reads like a path:
 *     "start raft: open /var/lib/haagent/raft: lock held by another process"
 *
 * The numeric codes are stable (they are haadm's exit codes, see docs/cli.md). */
#ifndef HA_ERR_H
#define HA_ERR_H

#include <stddef.h>

/* X(name, number, summary) */
#define HA_ERRORS(X)                                                                               \
	X(HA_OK, 0, "success")                                                                     \
	X(HA_EUSAGE, 2, "bad command line")                                                        \
	X(HA_ECONFIG, 3, "bad configuration")                                                      \
	X(HA_ECONNECT, 4, "cannot reach any agent")                                                \
	X(HA_EPROTO, 5, "protocol error")                                                          \
	X(HA_ENOLEADER, 6, "no raft leader")                                                       \
	X(HA_EIO, 7, "input/output error")                                                         \
	X(HA_ENOMEM, 8, "out of memory")                                                           \
	X(HA_ERAFT, 9, "consensus error")                                                          \
	X(HA_EDB, 10, "database error")                                                            \
	X(HA_ETIMEOUT, 11, "timed out")                                                            \
	X(HA_EINVAL, 12, "invalid argument")                                                       \
	X(HA_ETOOBIG, 13, "message too large")                                                     \
	X(HA_EREFUSED, 14, "refused")                                                              \
	X(HA_EINTERNAL, 15, "internal error")                                                      \
	X(HA_EBUSY, 16, "busy, retry")                                                             \
	X(HA_EPERM, 17, "not permitted")

enum {
#define HA_ERR_ENUM(name, num, text) name##_ = num,
	HA_ERRORS(HA_ERR_ENUM)
#undef HA_ERR_ENUM
};

#define HA_ERR_NEG(name) (-(name##_))
#define HA_EUSAGE        HA_ERR_NEG(HA_EUSAGE)
#define HA_ECONFIG       HA_ERR_NEG(HA_ECONFIG)
#define HA_ECONNECT      HA_ERR_NEG(HA_ECONNECT)
#define HA_EPROTO        HA_ERR_NEG(HA_EPROTO)
#define HA_ENOLEADER     HA_ERR_NEG(HA_ENOLEADER)
#define HA_EIO           HA_ERR_NEG(HA_EIO)
#define HA_ENOMEM        HA_ERR_NEG(HA_ENOMEM)
#define HA_ERAFT         HA_ERR_NEG(HA_ERAFT)
#define HA_EDB           HA_ERR_NEG(HA_EDB)
#define HA_ETIMEOUT      HA_ERR_NEG(HA_ETIMEOUT)
#define HA_EINVAL        HA_ERR_NEG(HA_EINVAL)
#define HA_ETOOBIG       HA_ERR_NEG(HA_ETOOBIG)
#define HA_EREFUSED      HA_ERR_NEG(HA_EREFUSED)
#define HA_EINTERNAL     HA_ERR_NEG(HA_EINTERNAL)
#define HA_EBUSY         HA_ERR_NEG(HA_EBUSY)
#define HA_EPERM         HA_ERR_NEG(HA_EPERM)

#define HA_ERR_MSG_MAX 1024

struct ha_err {
	int code; /* 0 or a negative HA_E... code */
	char msg[HA_ERR_MSG_MAX];
};

/* Summary text of a code (negative or positive). */
const char *ha_strerror(int code);

/* Process exit status for a code: its absolute value (0 for success). */
int ha_exit_code(int code);

/* Sets e (when not NULL) and returns code, so that `return ha_err_set(e, HA_EIO, ...)` works. */
int ha_err_set(struct ha_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes e->msg with "context: " and returns e->code. */
int ha_err_wrap(struct ha_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void ha_err_clear(struct ha_err *e);

#endif
