/* haadm cert's own interface between its files: cert.c (the command line, issuing),
 * certfile.c (reading and writing the files), certshow.c (haadm cert show). */
#ifndef HA_CLI_CERT_H
#define HA_CLI_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/tls.h"

/* dir/base into out; HA_EUSAGE when it does not fit. */
int ha_cli_cert_path(char *out, size_t size, const char *dir, const char *base, struct ha_err *e);
/* Anything at path, a dangling symbolic link included. */
bool ha_cli_cert_exists(const char *path);
/* HA_EREFUSED: path exists, and what to do. */
int ha_cli_cert_refuse_existing(const char *path, struct ha_err *e);
/* The directory, created 0700 when it does not exist (its parent must). */
int ha_cli_cert_ensure_dir(const char *dir, struct ha_err *e);

/* data into dir/base with mode, atomically: a temporary file in dir (created 0600 by mkostemp,
 * so a key is never readable by others, not for an instant), set to mode, written, fsynced,
 * then linked to its name, which fails when the name exists (HA_EREFUSED), or with force
 * renamed over it (a symbolic link there is replaced, not followed); then dir is fsynced. */
int ha_cli_cert_write(const char *dir, const char *base, const void *data, size_t n, mode_t mode,
                      bool force, struct ha_err *e);

/* Every certificate of a PEM file (at most 1 MiB, HA_CERT_FILE_MAX certificates). */
int ha_cli_cert_load_certs(const char *path, STACK_OF(X509) * *out, struct ha_err *e);
/* An unencrypted PEM private key; warns on stderr when others may read the file. */
int ha_cli_cert_load_key(const char *path, EVP_PKEY **out, struct ha_err *e);

/* A unix time as "YYYY-MM-DDTHH:MM:SSZ". */
const char *ha_cli_cert_iso(int64_t t, char *buf, size_t size);
/* "identity": {"role", "name", "node_id"}, or null when idrc is not 0. */
void ha_cli_cert_identity_json(struct ha_json *j, int idrc, const struct ha_identity *id);

/* haadm cert show FILE: 0 when every certificate in it is usable now, else HA_EREFUSED (or the
 * error reading it) with why in e. */
int ha_cli_cert_show(const char *file, bool json, struct ha_err *e);

#endif
