/* The identity a certificate carries (tls.h): the pure half of the TLS layer.
 *
 * The certificate is hostile input until this code says otherwise. Every string is bounded,
 * checked for NUL bytes and its ASN.1 type, and matched against a strict grammar; anything
 * ambiguous (two subjectAltName extensions, two URIs of any kind, two subject CNs) is refused,
 * never resolved by picking one. */
#include "tls.h"

#include <string.h>

#include <openssl/x509v3.h>

#include "../config.h"

_Static_assert(HA_TLS_NAME_MAX == HA_NAME_MAX, "identity names follow ha_name_valid");

/* The longest URI we accept: the node form with a 63-character name and a 10-digit id is 91. */
#define URI_MAX 128
/* How much of a hostile string an error message quotes. */
#define SHOWN_MAX 80

const char *ha_role_name(enum ha_role r)
{
	switch (r) {
	case HA_ROLE_NONE:
		return "none";
	case HA_ROLE_NODE:
		return "node";
	case HA_ROLE_READONLY:
		return "readonly";
	case HA_ROLE_ADMIN:
		return "admin";
	}
	return "unknown";
}

void ha_identity_str(const struct ha_identity *id, char *out, size_t size)
{
	if (out == NULL || size == 0)
		return;
	if (id == NULL || id->role == HA_ROLE_NONE || id->name[0] == '\0') {
		snprintf(out, size, "nobody (none)");
		return;
	}
	if (id->role == HA_ROLE_NODE)
		snprintf(out, size, "%.*s (node %u)", HA_TLS_NAME_MAX - 1, id->name, id->node_id);
	else
		snprintf(out, size, "%.*s (%s)", HA_TLS_NAME_MAX - 1, id->name,
		         ha_role_name(id->role));
}

/* A hostile byte string made fit for an error message: printable ASCII kept, anything else as
 * \xHH, cut after SHOWN_MAX bytes with "...". */
static const char *shown(const unsigned char *p, size_t n, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < n && i < SHOWN_MAX && o + 5 < size; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' && p[i] != '\\')
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", p[i]);
	}
	if (n > SHOWN_MAX && o + 4 < size) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

/* The raft id of a node URI: 1 to 10 decimal digits, no sign, no leading zero, 1..2^32-1. */
static bool parse_raftid(const char *s, uint32_t *out)
{
	size_t n = strlen(s);
	if (n == 0 || n > 10 || s[0] == '0' || strspn(s, "0123456789") != n)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	if (v == 0 || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* "NAME:RAFTID", what follows HA_TLS_URI_NODE. */
static int parse_node(const char *uri, const char *rest, struct ha_identity *id, struct ha_err *e)
{
	char q[SHOWN_MAX * 4 + 8];
	const char *colon = strchr(rest, ':');
	if (colon == NULL)
		return ha_err_set(e, HA_EREFUSED, "node URI '%s' has no ':RAFTID' after the name",
		                  shown((const unsigned char *)uri, strlen(uri), q, sizeof(q)));
	size_t nl = (size_t)(colon - rest);
	char name[HA_TLS_NAME_MAX];
	if (nl >= sizeof(name))
		return ha_err_set(e, HA_EREFUSED,
		                  "node URI '%s': the name is longer than %d characters",
		                  shown((const unsigned char *)uri, strlen(uri), q, sizeof(q)),
		                  HA_TLS_NAME_MAX - 1);
	memcpy(name, rest, nl);
	name[nl] = '\0';
	if (!ha_name_valid(name))
		return ha_err_set(e, HA_EREFUSED, "node URI '%s': bad name (" HA_NAME_RULE ")",
		                  shown((const unsigned char *)uri, strlen(uri), q, sizeof(q)));
	uint32_t raftid;
	if (!parse_raftid(colon + 1, &raftid))
		return ha_err_set(
		    e, HA_EREFUSED,
		    "node URI '%s': the raft id must be a number from 1 to 4294967295 "
		    "without leading zeros, and end the URI",
		    shown((const unsigned char *)uri, strlen(uri), q, sizeof(q)));
	id->role = HA_ROLE_NODE;
	memcpy(id->name, name, nl + 1);
	id->node_id = raftid;
	return 0;
}

/* The subject CN of an operator certificate: exactly one, a valid name. */
static int operator_name(X509 *cert, char *out, struct ha_err *e)
{
	X509_NAME *sub = X509_get_subject_name(cert);
	int i = sub ? X509_NAME_get_index_by_NID(sub, NID_commonName, -1) : -1;
	if (i < 0)
		return ha_err_set(
		    e, HA_EREFUSED,
		    "operator certificate without a subject CN (the operator's name)");
	if (X509_NAME_get_index_by_NID(sub, NID_commonName, i) >= 0)
		return ha_err_set(
		    e, HA_EREFUSED,
		    "operator certificate with two subject CNs: which name is meant?");
	const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(sub, i));
	unsigned char *u = NULL;
	int n = s ? ASN1_STRING_to_UTF8(&u, s) : -1;
	if (n < 0)
		return ha_err_set(e, HA_EREFUSED,
		                  "operator certificate: its subject CN is unreadable");
	char q[SHOWN_MAX * 4 + 8];
	bool ok = n > 0 && n < HA_TLS_NAME_MAX && memchr(u, '\0', (size_t)n) == NULL;
	if (ok) {
		memcpy(out, u, (size_t)n);
		out[n] = '\0';
		ok = ha_name_valid(out);
	}
	if (!ok)
		ha_err_set(e, HA_EREFUSED,
		           "operator certificate: subject CN '%s' is not a name (" HA_NAME_RULE ")",
		           shown(u, (size_t)n, q, sizeof(q)));
	OPENSSL_free(u);
	return ok ? 0 : HA_EREFUSED;
}

/* The one URI of the subjectAltName, copied out NUL-terminated into uri[URI_MAX + 1]. */
static int the_uri(X509 *cert, char *uri, struct ha_err *e)
{
	int crit = -1;
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		if (crit == -1)
			return ha_err_set(
			    e, HA_EREFUSED,
			    "no subjectAltName: not a haagent certificate (haadm cert "
			    "issues them)");
		return ha_err_set(e, HA_EREFUSED, "%s",
		                  crit == -2 ? "two subjectAltName extensions"
		                             : "subjectAltName unreadable");
	}
	const ASN1_IA5STRING *u = NULL;
	int n_uri = 0;
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_URI) {
			n_uri++;
			u = g->d.uniformResourceIdentifier;
		}
	}
	int rc = 0;
	char q[SHOWN_MAX * 4 + 8];
	if (n_uri == 0) {
		rc = ha_err_set(e, HA_EREFUSED, "no URI in subjectAltName: no haagent identity");
	} else if (n_uri > 1) {
		rc = ha_err_set(
		    e, HA_EREFUSED,
		    "%d URIs in subjectAltName: a haagent certificate carries exactly one", n_uri);
	} else {
		const unsigned char *p = ASN1_STRING_get0_data(u);
		int n = ASN1_STRING_length(u);
		if (ASN1_STRING_type(u) != V_ASN1_IA5STRING || p == NULL || n <= 0)
			rc = ha_err_set(e, HA_EREFUSED,
			                "subjectAltName URI empty or not an IA5String");
		else if (memchr(p, '\0', (size_t)n) != NULL)
			rc = ha_err_set(e, HA_EREFUSED,
			                "subjectAltName URI '%s' has a NUL byte inside",
			                shown(p, (size_t)n, q, sizeof(q)));
		else if (n > URI_MAX)
			rc = ha_err_set(e, HA_EREFUSED,
			                "subjectAltName URI '%s' too long (%d bytes)",
			                shown(p, (size_t)n, q, sizeof(q)), n);
		if (rc == 0) {
			memcpy(uri, p, (size_t)n);
			uri[n] = '\0';
		}
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

int ha_tls_identity(X509 *cert, struct ha_identity *id, struct ha_err *e)
{
	memset(id, 0, sizeof(*id));
	if (cert == NULL)
		return ha_err_set(e, HA_EREFUSED, "no certificate");
	char uri[URI_MAX + 1];
	int rc = the_uri(cert, uri, e);
	if (rc != 0)
		return rc;
	char q[SHOWN_MAX * 4 + 8];
	size_t np = strlen(HA_TLS_URI_NODE), rp = strlen(HA_TLS_URI_ROLE);
	if (!strncmp(uri, HA_TLS_URI_NODE, np)) {
		rc = parse_node(uri, uri + np, id, e);
	} else if (!strncmp(uri, HA_TLS_URI_ROLE, rp)) {
		const char *role = uri + rp;
		enum ha_role r = !strcmp(role, "admin")      ? HA_ROLE_ADMIN
		                 : !strcmp(role, "readonly") ? HA_ROLE_READONLY
		                                             : HA_ROLE_NONE;
		if (r == HA_ROLE_NONE)
			rc = ha_err_set(
			    e, HA_EREFUSED, "role URI '%s': unknown role (admin or readonly)",
			    shown((const unsigned char *)uri, strlen(uri), q, sizeof(q)));
		else if ((rc = operator_name(cert, id->name, e)) == 0)
			id->role = r;
	} else {
		rc = ha_err_set(e, HA_EREFUSED,
		                "subjectAltName URI '%s' is not a haagent identity "
		                "(urn:haagent:node:NAME:RAFTID or urn:haagent:role:admin|readonly)",
		                shown((const unsigned char *)uri, strlen(uri), q, sizeof(q)));
	}
	if (rc != 0)
		memset(id, 0, sizeof(*id));
	return rc;
}
