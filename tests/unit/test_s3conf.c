/* The S3 repository's configuration keys and credentials (backup/s3.h): what each key takes,
 * what it refuses (naming the key and the rule), never a value cut to fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup/s3.h"

static struct ha_s3_conf c;
static struct ha_err e;

static int set(const char *k, const char *v)
{
	memset(&e, 0, sizeof(e));
	return ha_s3_conf_set(&c, k, v, &e);
}

static void refused(const char *k, const char *v, const char *why)
{
	if (set(k, v) != HA_ECONFIG)
		fail_msg("%s = %s accepted", k, v);
	if (strncmp(e.msg, k, strlen(k)) != 0 || (why && strstr(e.msg, why) == NULL))
		fail_msg("%s = %s: '%s'", k, v, e.msg);
}

static void defaults_and_endpoint(void **state)
{
	(void)state;
	ha_s3_conf_init(&c);
	assert_string_equal(c.region, "us-east-1");
	assert_int_equal(c.timeout_ms, 30000);
	assert_int_equal(c.connect_timeout_ms, 5000);
	assert_int_equal(c.retries, 5);
	assert_false(c.virtual_host);
	assert_int_equal(set("endpoint", "http://127.0.0.1:7480"), 0);
	assert_string_equal(c.endpoint, "http://127.0.0.1:7480");
	assert_int_equal(set("endpoint", "https://s3.eu-west-1.amazonaws.com/"), 0);
	assert_string_equal(c.endpoint, "https://s3.eu-west-1.amazonaws.com");
	assert_int_equal(set("endpoint", "http://[::1]:9000"), 0);
	const char *bad[] = {"ftp://x",           "http://",          "s3.amazonaws.com",
	                     "http://user@host",  "http://host/path", "http://host:0",
	                     "http://host:70000", "http://host:",     "http://-host",
	                     "http://host?x=1",   "http://ho st",     "http://host:+80",
	                     "http://[::1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused("endpoint", bad[i], NULL);
	char big[400];
	memset(big, 'a', sizeof(big));
	memcpy(big, "http://", 7);
	big[sizeof(big) - 1] = '\0';
	refused("endpoint", big, NULL);
}

static void bucket_prefix_and_others(void **state)
{
	(void)state;
	ha_s3_conf_init(&c);
	assert_int_equal(set("bucket", "my.bucket-1"), 0);
	assert_string_equal(c.bucket, "my.bucket-1");
	const char *bad[] = {"ab",
	                     "Abc",
	                     "a..b",
	                     "192.168.1.1",
	                     "-abc",
	                     "abc-",
	                     "a_b",
	                     "xn--abc",
	                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused("bucket", bad[i], "3 to 63");
	assert_int_equal(set("prefix", "/team-a/db1/"), 0);
	assert_string_equal(c.prefix, "team-a/db1");
	assert_int_equal(set("prefix", "///"), 0);
	assert_string_equal(c.prefix, "");
	const char *badp[] = {"a//b", "a/../b", "./a", "a b", "a/b%2F", "\xc3\xa9"};
	for (size_t i = 0; i < sizeof(badp) / sizeof(badp[0]); i++)
		refused("prefix", badp[i], "segments");
	char long_prefix[300];
	memset(long_prefix, 'p', sizeof(long_prefix));
	long_prefix[sizeof(long_prefix) - 1] = '\0';
	refused("prefix", long_prefix, "longer than");
	assert_int_equal(set("url_style", "virtual"), 0);
	assert_true(c.virtual_host);
	assert_int_equal(set("url_style", "path"), 0);
	assert_false(c.virtual_host);
	refused("url_style", "dns", "path or virtual");
	assert_int_equal(set("sse", "aws:kms"), 0);
	assert_int_equal(set("sse", "none"), 0);
	assert_string_equal(c.sse, "");
	refused("sse", "aes256", NULL);
	assert_int_equal(set("sse_kms_key_id", "arn:aws:kms:us-east-1:111122223333:key/1234"), 0);
	refused("sse_kms_key_id", "a key", NULL);
	assert_int_equal(set("storage_class", "STANDARD_IA"), 0);
	refused("storage_class", "standard", NULL);
	assert_int_equal(set("region", "eu-west-1"), 0);
	refused("region", "eu west", NULL);
	char region[100];
	memset(region, 'r', sizeof(region));
	region[sizeof(region) - 1] = '\0';
	refused("region", region, "longer than"); /* never cut to fit */
	assert_string_equal(c.region, "eu-west-1");
	assert_int_equal(set("timeout_ms", "2000"), 0);
	assert_int_equal(c.timeout_ms, 2000);
	refused("timeout_ms", "10", "100 to");
	refused("retries", "-1", NULL);
	refused("retries", "21", NULL);
	assert_int_equal(set("retries", "0"), 0);
	refused("connect_timeout_ms", "5s", NULL);
	refused("credentials_file", "", "empty");
	assert_int_equal(set("bukket", "x"), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "bukket: unknown key"));
}

static void write_keys(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static void check_and_credentials(void **state)
{
	(void)state;
	char dir[] = "/tmp/ha-s3conf-XXXXXX", keys[64];
	assert_non_null(mkdtemp(dir));
	snprintf(keys, sizeof(keys), "%s/s3.keys", dir);
	ha_s3_conf_init(&c);
	assert_int_equal(ha_s3_conf_check(&c, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "endpoint: missing"));
	set("endpoint", "https://s3.example.com");
	assert_int_equal(ha_s3_conf_check(&c, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "bucket: missing"));
	set("bucket", "backups.example");
	set("url_style", "virtual");
	assert_int_equal(ha_s3_conf_check(&c, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "url_style = path"));
	set("url_style", "path");
	set("sse_kms_key_id", "alias/backups");
	assert_int_equal(ha_s3_conf_check(&c, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "only with sse = aws:kms"));
	set("sse", "aws:kms");
	/* credentials: the file, by the secret-file rule */
	set("credentials_file", keys);
	write_keys(keys, "# keys\naccess_key = AKIAEXAMPLE\n  secret_key=abc/def+ghi  \r\n", 0644);
	assert_int_equal(ha_s3_conf_check(&c, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "credentials_file"));
	assert_non_null(strstr(e.msg, "chmod 600"));
	chmod(keys, 0600);
	assert_int_equal(ha_s3_conf_check(&c, &e), 0);
	struct ha_s3_creds cr;
	assert_int_equal(ha_s3_creds_load(&c, &cr, &e), 0);
	assert_string_equal(cr.access_key, "AKIAEXAMPLE");
	assert_string_equal(cr.secret_key, "abc/def+ghi");
	assert_string_equal(cr.session_token, "");
	assert_string_equal(cr.source, keys);
	ha_s3_creds_wipe(&cr);
	assert_string_equal(cr.secret_key, "");
	write_keys(keys, "access_key = A\nsecret = SECRETVALUE\n", 0600);
	assert_int_equal(ha_s3_creds_load(&c, &cr, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, ":2: unknown name 'secret'"));
	assert_null(strstr(e.msg, "SECRETVALUE")); /* no value in the message */
	write_keys(keys, "access_key = A\n", 0600);
	assert_int_equal(ha_s3_creds_load(&c, &cr, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "needs access_key"));
	write_keys(keys, "access_key = A\nsecret_key = two words\n", 0600);
	assert_int_equal(ha_s3_creds_load(&c, &cr, &e), HA_ECONFIG);
	unlink(keys);
	assert_int_equal(ha_s3_creds_load(&c, &cr, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "cannot read"));
	rmdir(dir);
	/* the environment when no file is named */
	c.credentials_file[0] = '\0';
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(ha_s3_conf_check(&c, &e), HA_ECONFIG);
	assert_non_null(strstr(e.msg, "AWS_ACCESS_KEY_ID"));
	assert_non_null(strstr(e.msg, "credentials_file"));
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	assert_int_equal(ha_s3_creds_load(&c, &cr, &e), 0);
	assert_string_equal(cr.access_key, "AKIAENV");
	assert_string_equal(cr.session_token, "tok");
	assert_non_null(strstr(cr.source, "environment"));
	ha_s3_creds_wipe(&cr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults_and_endpoint),
	    cmocka_unit_test(bucket_prefix_and_others),
	    cmocka_unit_test(check_and_credentials),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
