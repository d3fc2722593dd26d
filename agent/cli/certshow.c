/* haadm cert show FILE: what each certificate of a file says, read as the agents read it, and
 * whether it is usable now. The file is hostile input: certgen's summary escapes it. Blocking;
 * haadm only. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/certgen.h"
#include "cert.h"

/* One certificate, read. */
struct shown {
	struct ha_cert_info i;
	struct ha_identity id;
	int idrc;
	struct ha_err why; /* why no identity ("" for a CA without subjectAltName) */
	bool expired, early;
	long long days_left; /* negative once expired */
	char nb[32], na[32], who[HA_TLS_NAME_MAX + 32];
};

static void read_cert(X509 *x, int64_t now, struct shown *s)
{
	memset(s, 0, sizeof(*s));
	ha_certgen_info(x, &s->i);
	s->idrc = ha_tls_identity(x, &s->id, &s->why);
	if (s->idrc != 0 && s->i.is_ca && !s->i.names[0])
		ha_err_clear(&s->why); /* the usual CA: no subjectAltName, nothing to explain */
	if (s->idrc == 0)
		ha_identity_str(&s->id, s->who, sizeof(s->who));
	s->expired = s->i.not_after <= now;
	s->early = s->i.not_before > now;
	int64_t left = s->i.not_after - now;
	s->days_left = (long long)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400));
	ha_cli_cert_iso(s->i.not_before, s->nb, sizeof(s->nb));
	ha_cli_cert_iso(s->i.not_after, s->na, sizeof(s->na));
}

static void print_text(const struct shown *s, int k, int n)
{
	if (n > 1)
		printf("%scertificate %d of %d\n", k ? "\n" : "", k + 1, n);
	printf("subject     %s\nissuer      %s\n", s->i.subject, s->i.issuer);
	if (s->idrc != 0 && s->i.is_ca)
		printf("identity    none: a CA certificate%s%s%s\n", s->why.msg[0] ? " (" : "",
		       s->why.msg, s->why.msg[0] ? ")" : "");
	else if (s->idrc != 0)
		printf("identity    NONE: %s\n", s->why.msg);
	else if (s->id.role == HA_ROLE_NODE)
		printf("identity    %s, raft id %u\n", s->who, s->id.node_id);
	else
		printf("identity    %s\n", s->who);
	printf("names       %s\nserial      %s\nnot before  %s%s\nnot after   %s\n",
	       s->i.names[0] ? s->i.names : "-", s->i.serial, s->nb,
	       s->early ? " (NOT YET VALID)" : "", s->na);
	if (s->expired)
		printf("days left   EXPIRED %lld days ago\n", -s->days_left);
	else
		printf("days left   %lld\n", s->days_left);
	printf("sha256      %s\n", s->i.sha256);
}

static void print_json(struct ha_json *j, const struct shown *s)
{
	ha_json_obj_begin(j, NULL);
	ha_json_str(j, "subject", s->i.subject);
	ha_json_str(j, "issuer", s->i.issuer);
	ha_json_bool(j, "ca", s->i.is_ca);
	ha_cli_cert_identity_json(j, s->idrc, &s->id);
	ha_json_str_or_null(j, "identity_error", s->why.msg);
	ha_json_str(j, "names", s->i.names);
	ha_json_str(j, "serial", s->i.serial);
	ha_json_str(j, "not_before", s->nb);
	ha_json_str(j, "not_after", s->na);
	ha_json_int(j, "not_before_unix", s->i.not_before);
	ha_json_int(j, "not_after_unix", s->i.not_after);
	ha_json_int(j, "days_left", s->days_left);
	ha_json_bool(j, "expired", s->expired);
	ha_json_bool(j, "not_yet_valid", s->early);
	ha_json_str(j, "sha256", s->i.sha256);
	ha_json_obj_end(j);
}

/* 0 when s is usable now (an identity, or a CA, which needs none), else HA_EREFUSED with the
 * reason in e unless e holds an earlier one. */
static int verdict(const struct shown *s, int k, int n, struct ha_err *e)
{
	bool bad_id = s->idrc != 0 && !s->i.is_ca;
	if (!bad_id && !s->expired && !s->early)
		return 0;
	if (e->code != 0)
		return HA_EREFUSED;
	char which[32] = "";
	if (n > 1)
		snprintf(which, sizeof(which), "certificate %d: ", k + 1);
	if (bad_id)
		return ha_err_set(e, HA_EREFUSED, "%sno identity: %s", which, s->why.msg);
	return ha_err_set(e, HA_EREFUSED, "%s%s %s", which,
	                  s->expired ? "expired at" : "not valid before",
	                  s->expired ? s->na : s->nb);
}

int ha_cli_cert_show(const char *file, bool json, struct ha_err *e)
{
	STACK_OF(X509) *sk = NULL;
	int rc = ha_cli_cert_load_certs(file, &sk, e);
	if (rc != 0)
		return rc;
	ha_err_clear(e);
	struct ha_buf b = HA_BUF_INIT;
	struct ha_json j;
	ha_json_init(&j, &b, true);
	ha_json_obj_begin(&j, NULL);
	ha_json_uint(&j, "format", 1);
	ha_json_str(&j, "file", file);
	ha_json_arr_begin(&j, "certificates");
	int64_t now = (int64_t)time(NULL);
	int n = sk_X509_num(sk);
	for (int k = 0; k < n; k++) {
		struct shown s;
		read_cert(sk_X509_value(sk, k), now, &s);
		if (json)
			print_json(&j, &s);
		else
			print_text(&s, k, n);
		if (verdict(&s, k, n, e) != 0)
			rc = HA_EREFUSED;
	}
	ha_json_arr_end(&j);
	ha_json_bool(&j, "ok", rc == 0);
	ha_json_obj_end(&j);
	if (json)
		printf("%s\n", ha_buf_failed(&b) ? "{}" : ha_buf_cstr(&b));
	ha_buf_free(&b);
	sk_X509_pop_free(sk, X509_free);
	if (rc != 0)
		ha_err_wrap(e, "%s", file);
	return rc;
}
