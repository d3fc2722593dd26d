/* The S3 repository's configuration keys and its credentials (s3.h). Pure but for reading the
 * credentials file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/secret.h"
#include "s3.h"

#define BUCKET_RULE                                                                                \
	"3 to 63 lowercase letters, digits, '.' or '-', beginning and ending with a letter or "    \
	"a digit, no '..', not an IP address"
#define PREFIX_RULE                                                                                \
	"segments of letters, digits, '.', '_' or '-' separated by '/', none empty, '.' or '..'"

void ha_s3_conf_init(struct ha_s3_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->region, sizeof(c->region), "us-east-1");
	c->timeout_ms = 30000;
	c->connect_timeout_ms = 5000;
	c->retries = 5;
}

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* value into a field of size bytes, or HA_ECONFIG: never cut */
static int copy(char *dst, size_t size, const char *key, const char *value, struct ha_err *e)
{
	size_t n = strlen(value);
	if (n >= size)
		return ha_err_set(e, HA_ECONFIG, "%s: longer than %zu characters", key, size - 1);
	memcpy(dst, value, n + 1);
	return 0;
}

/* http(s)://host[:port][/]: a host name, an IPv4 address or [IPv6]; no user, path or query
 * (S3 keys are the path). Stored without the final '/'. */
static int set_endpoint(struct ha_s3_conf *c, const char *v, struct ha_err *e)
{
	const char *host = !strncmp(v, "https://", 8)  ? v + 8
	                   : !strncmp(v, "http://", 7) ? v + 7
	                                               : NULL;
	if (host == NULL)
		return ha_err_set(e, HA_ECONFIG,
		                  "endpoint: '%.200s' does not begin with http:// or https://", v);
	const char *p = host;
	if (*p == '[') {
		while (*p && *p != ']' && (alnum(*p) || *p == ':' || *p == '.' || *p == '['))
			p++;
		p += *p == ']';
	} else {
		while (alnum(*p) || *p == '.' || *p == '-')
			p++;
	}
	size_t hlen = (size_t)(p - host);
	bool bad = hlen == 0 || hlen > 253 || host[0] == '.' || host[0] == '-' ||
	           (host[0] == '[' && host[hlen - 1] != ']');
	if (!bad && *p == ':') {
		char *end;
		errno = 0;
		unsigned long port = strtoul(p + 1, &end, 10);
		bad = errno || end == p + 1 || p[1] == '+' || p[1] == '-' || port == 0 ||
		      port > 65535;
		p = end;
	}
	if (!bad && *p == '/')
		p++;
	if (bad || *p)
		return ha_err_set(
		    e, HA_ECONFIG,
		    "endpoint: '%.200s' is not http(s)://host[:port] (no user, path or "
		    "query: the bucket and keys make the path)",
		    v);
	size_t n = strlen(v) - (p > v && p[-1] == '/');
	if (n >= sizeof(c->endpoint))
		return ha_err_set(e, HA_ECONFIG, "endpoint: longer than %zu characters",
		                  sizeof(c->endpoint) - 1);
	memcpy(c->endpoint, v, n);
	c->endpoint[n] = '\0';
	return 0;
}

static bool bucket_valid(const char *b)
{
	size_t n = strlen(b);
	if (n < 3 || n > 63 || !alnum(b[0]) || !alnum(b[n - 1]) || strstr(b, "..") ||
	    !strncmp(b, "xn--", 4))
		return false;
	bool all_digits_dots = true;
	for (const char *p = b; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '-'))
			return false;
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			all_digits_dots = false;
	}
	return !all_digits_dots; /* 192.168.5.4 is an address, not a name */
}

/* Without '/' at either end; every segment a plain name, so that keys built on it are what
 * they look like (no "..", no "//" that some servers fold). */
static int set_prefix(struct ha_s3_conf *c, const char *v, struct ha_err *e)
{
	while (*v == '/')
		v++;
	size_t n = strlen(v);
	while (n && v[n - 1] == '/')
		n--;
	if (n >= sizeof(c->prefix))
		return ha_err_set(e, HA_ECONFIG, "prefix: longer than %zu characters",
		                  sizeof(c->prefix) - 1);
	size_t seg = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || v[i] == '/') {
			const char *s = v + i - seg;
			if (n && (seg == 0 || (seg == 1 && s[0] == '.') ||
			          (seg == 2 && s[0] == '.' && s[1] == '.')))
				return ha_err_set(e, HA_ECONFIG, "prefix: '%.200s' is not %s", v,
				                  PREFIX_RULE);
			seg = 0;
			continue;
		}
		if (!alnum(v[i]) && v[i] != '.' && v[i] != '_' && v[i] != '-')
			return ha_err_set(e, HA_ECONFIG, "prefix: '%.200s' is not %s", v,
			                  PREFIX_RULE);
		seg++;
	}
	memcpy(c->prefix, v, n);
	c->prefix[n] = '\0';
	return 0;
}

static int set_uint(unsigned *out, const char *key, const char *v, unsigned min, unsigned max,
                    struct ha_err *e)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || v[0] == '+' || n < min || n > max)
		return ha_err_set(e, HA_ECONFIG, "%s: '%.40s' is not a whole number from %u to %u",
		                  key, v, min, max);
	*out = (unsigned)n;
	return 0;
}

/* Printable ASCII without spaces: what a KMS key id, ARN or alias is. */
static bool token(const char *v, bool upper_only)
{
	if (!*v)
		return false;
	for (const char *p = v; *p; p++) {
		if (upper_only
		        ? !((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_')
		        : (*p <= ' ' || *p > '~'))
			return false;
	}
	return true;
}

int ha_s3_conf_set(struct ha_s3_conf *c, const char *key, const char *value, struct ha_err *e)
{
	const char *v = value ? value : "";
	if (!strcmp(key, "endpoint"))
		return set_endpoint(c, v, e);
	if (!strcmp(key, "region")) {
		for (const char *p = v; *p; p++)
			if (!alnum(*p) && *p != '-' && *p != '_')
				return ha_err_set(e, HA_ECONFIG,
				                  "region: '%.80s' is not a region name", v);
		return *v ? copy(c->region, sizeof(c->region), key, v, e)
		          : ha_err_set(e, HA_ECONFIG, "region: empty");
	}
	if (!strcmp(key, "bucket"))
		return bucket_valid(v) ? copy(c->bucket, sizeof(c->bucket), key, v, e)
		                       : ha_err_set(e, HA_ECONFIG,
		                                    "bucket: '%.80s' is not an S3 bucket name (%s)",
		                                    v, BUCKET_RULE);
	if (!strcmp(key, "prefix"))
		return set_prefix(c, v, e);
	if (!strcmp(key, "url_style")) {
		if (strcmp(v, "path") && strcmp(v, "virtual"))
			return ha_err_set(e, HA_ECONFIG,
			                  "url_style: '%.40s' is not path or virtual", v);
		c->virtual_host = v[0] == 'v';
		return 0;
	}
	if (!strcmp(key, "credentials_file"))
		return *v ? copy(c->credentials_file, sizeof(c->credentials_file), key, v, e)
		          : ha_err_set(e, HA_ECONFIG, "credentials_file: empty");
	if (!strcmp(key, "sse")) {
		if (strcmp(v, "none") && strcmp(v, "AES256") && strcmp(v, "aws:kms"))
			return ha_err_set(e, HA_ECONFIG,
			                  "sse: '%.40s' is not none, AES256 or aws:kms", v);
		return copy(c->sse, sizeof(c->sse), key, strcmp(v, "none") ? v : "", e);
	}
	if (!strcmp(key, "sse_kms_key_id"))
		return token(v, false)
		           ? copy(c->sse_kms_key_id, sizeof(c->sse_kms_key_id), key, v, e)
		           : ha_err_set(e, HA_ECONFIG,
		                        "sse_kms_key_id: not a key id, ARN or alias");
	if (!strcmp(key, "storage_class"))
		return token(v, true) ? copy(c->storage_class, sizeof(c->storage_class), key, v, e)
		                      : ha_err_set(e, HA_ECONFIG,
		                                   "storage_class: '%.64s' is not a storage class "
		                                   "(STANDARD, STANDARD_IA, ...)",
		                                   v);
	if (!strcmp(key, "ca_file"))
		return *v ? copy(c->ca_file, sizeof(c->ca_file), key, v, e)
		          : ha_err_set(e, HA_ECONFIG, "ca_file: empty");
	if (!strcmp(key, "timeout_ms"))
		return set_uint(&c->timeout_ms, key, v, 100, 3600000, e);
	if (!strcmp(key, "connect_timeout_ms"))
		return set_uint(&c->connect_timeout_ms, key, v, 100, 600000, e);
	if (!strcmp(key, "retries"))
		return set_uint(&c->retries, key, v, 0, 20, e);
	return ha_err_set(e, HA_ECONFIG,
	                  "%.64s: unknown key for an S3 repository (endpoint, region, bucket, "
	                  "prefix, url_style, credentials_file, sse, sse_kms_key_id, "
	                  "storage_class, ca_file, timeout_ms, connect_timeout_ms, retries)",
	                  key);
}

int ha_s3_conf_check(const struct ha_s3_conf *c, struct ha_err *e)
{
	if (!c->endpoint[0])
		return ha_err_set(e, HA_ECONFIG, "endpoint: missing (required)");
	if (!c->bucket[0])
		return ha_err_set(
		    e, HA_ECONFIG,
		    "bucket: missing (required; it must exist: haagent does not create "
		    "buckets)");
	if (c->sse_kms_key_id[0] && strcmp(c->sse, "aws:kms"))
		return ha_err_set(e, HA_ECONFIG, "sse_kms_key_id: only with sse = aws:kms");
	const char *host = strstr(c->endpoint, "://") + 3;
	if (c->virtual_host && host[0] == '[')
		return ha_err_set(
		    e, HA_ECONFIG,
		    "url_style: virtual needs a host name in endpoint, not an address");
	if (c->virtual_host && strchr(c->bucket, '.') && !strncmp(c->endpoint, "https:", 6))
		return ha_err_set(
		    e, HA_ECONFIG,
		    "url_style: virtual with bucket '%s' over https: a name with dots is "
		    "not covered by the server's wildcard certificate; HINT: url_style = "
		    "path",
		    c->bucket);
	if (c->ca_file[0] && access(c->ca_file, R_OK) != 0)
		return ha_err_set(e, HA_ECONFIG, "ca_file: cannot read %s: %s", c->ca_file,
		                  strerror(errno));
	struct ha_s3_creds *cr = malloc(sizeof(*cr));
	if (cr == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	int rc = ha_s3_creds_load(c, cr, e);
	ha_s3_creds_wipe(cr);
	free(cr);
	return rc;
}

void ha_s3_creds_wipe(struct ha_s3_creds *c)
{
	ha_wipe(c->access_key, sizeof(c->access_key));
	ha_wipe(c->secret_key, sizeof(c->secret_key));
	ha_wipe(c->session_token, sizeof(c->session_token));
}

/* "name = value" of the credentials file into its field; the text is wiped by the caller. */
static int cred_line(struct ha_s3_creds *out, const char *path, int ln, char *line,
                     struct ha_err *e)
{
	char *eq = strchr(line, '=');
	if (eq == NULL)
		return ha_err_set(e, HA_ECONFIG, "%s:%d: not 'name = value'", path, ln);
	char *name = line, *value = eq + 1, *end = eq;
	while (*name == ' ' || *name == '\t')
		name++;
	while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	*eq = '\0';
	while (*value == ' ' || *value == '\t')
		value++;
	end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	char *field = !strcmp(name, "access_key")      ? out->access_key
	              : !strcmp(name, "secret_key")    ? out->secret_key
	              : !strcmp(name, "session_token") ? out->session_token
	                                               : NULL;
	size_t size =
	    field == out->session_token ? sizeof(out->session_token) : sizeof(out->access_key);
	if (field == NULL)
		return ha_err_set(e, HA_ECONFIG,
		                  "%s:%d: unknown name '%.40s' (access_key, secret_key, "
		                  "session_token)",
		                  path, ln, name);
	if (strlen(value) >= size || !token(value, false))
		return ha_err_set(e, HA_ECONFIG,
		                  "%s:%d: %s: empty, longer than %zu characters, or holding spaces "
		                  "or control characters",
		                  path, ln, name, size - 1);
	memcpy(field, value, strlen(value) + 1);
	return 0;
}

/* Checked by the secret-file rule on the open descriptor, read whole (16 KiB at most), every
 * copy of the text wiped. */
static int creds_from_file(const char *path, struct ha_s3_creds *out, struct ha_err *e)
{
	enum { MAX = 16384 };
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return ha_err_set(e, HA_ECONFIG, "credentials_file: cannot read %s: %s", path,
		                  strerror(errno));
	int rc = ha_secret_fd_check(fd, path, e);
	if (rc)
		ha_err_wrap(e, "credentials_file");
	char *text = rc ? NULL : malloc(MAX + 1);
	ssize_t n = 0;
	if (rc == 0 && text == NULL)
		rc = ha_err_set(e, HA_ENOMEM, "out of memory");
	while (rc == 0 && n <= MAX) {
		ssize_t k = read(fd, text + n, (size_t)(MAX + 1 - n));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			rc = ha_err_set(e, HA_ECONFIG, "cannot read %s: %s", path, strerror(errno));
		if (k <= 0)
			break;
		n += k;
	}
	close(fd);
	if (rc == 0 && n > MAX)
		rc = ha_err_set(e, HA_ECONFIG, "%s: larger than %d bytes", path, MAX);
	int ln = 0;
	for (char *line = text, *next; rc == 0 && line && line < text + n; line = next) {
		char *nl = memchr(line, '\n', (size_t)(text + n - line));
		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		else
			text[n] = '\0';
		ln++;
		char *p = line + strspn(line, " \t\r");
		if (*p && *p != '#')
			rc = cred_line(out, path, ln, line, e);
	}
	if (text) {
		ha_wipe(text, MAX + 1);
		free(text);
	}
	if (rc)
		return rc;
	if (!out->access_key[0] || !out->secret_key[0])
		return ha_err_set(e, HA_ECONFIG, "%s: needs access_key = ... and secret_key = ...",
		                  path);
	snprintf(out->source, sizeof(out->source), "%s", path);
	return 0;
}

static int env_value(const char *name, char *out, size_t size, struct ha_err *e)
{
	const char *v = getenv(name);
	if (v == NULL || !*v)
		return 0;
	if (strlen(v) >= size || !token(v, false))
		return ha_err_set(e, HA_ECONFIG, "%s: longer than %zu characters or not printable",
		                  name, size - 1);
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

int ha_s3_creds_load(const struct ha_s3_conf *c, struct ha_s3_creds *out, struct ha_err *e)
{
	memset(out, 0, sizeof(*out));
	int rc;
	if (c->credentials_file[0]) {
		rc = creds_from_file(c->credentials_file, out, e);
	} else {
		rc = env_value("AWS_ACCESS_KEY_ID", out->access_key, sizeof(out->access_key), e);
		rc = rc ? rc
		        : env_value("AWS_SECRET_ACCESS_KEY", out->secret_key,
		                    sizeof(out->secret_key), e);
		rc = rc ? rc
		        : env_value("AWS_SESSION_TOKEN", out->session_token,
		                    sizeof(out->session_token), e);
		if (rc == 0 && (!out->access_key[0] || !out->secret_key[0]))
			rc = ha_err_set(
			    e, HA_ECONFIG,
			    "credentials_file: not set, and AWS_ACCESS_KEY_ID and "
			    "AWS_SECRET_ACCESS_KEY are not in the environment; HINT: "
			    "credentials_file = a file (mode 0600) with access_key = ... "
			    "and secret_key = ...");
		snprintf(out->source, sizeof(out->source),
		         "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
	}
	if (rc)
		ha_s3_creds_wipe(out);
	return rc;
}
