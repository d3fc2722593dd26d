/* The S3 XML parsers (backup/s3_xml.h) on what a server sends and on what a hostile or broken
 * one could: cut short at every byte, huge, nested, mis-nested, missing tags, entities that
 * are not XML's, random damage. Run under ASan (build-asan) to see that nothing is read out of
 * bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backup/s3_xml.h"
#include "common/buf.h"

static const char page1[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>b</Name><Prefix>p/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>"
    "<Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
    "<!-- a comment -->"
    "<Contents><Key>p/a&amp;b &lt;c&gt; &quot;&apos;</Key><LastModified>2026-01-01T00:00:00.000Z"
    "</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>8388632</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>\n"
    "  <Contents><Key>p/&#x41;&#66;\xc3\xa9&#x1F600;</Key><Size>0</Size></Contents>"
    "<CommonPrefixes><Prefix>p/dir/</Prefix></CommonPrefixes>"
    "<CommonPrefixes><Prefix><![CDATA[p/<raw>/]]></Prefix></CommonPrefixes>"
    "</ListBucketResult>\n";

static int list(const char *xml, size_t len, struct ha_s3_list_page *p, struct ha_err *e)
{
	return ha_s3_xml_list(xml, len, p, e);
}

static void list_page(void **state)
{
	(void)state;
	struct ha_s3_list_page p;
	struct ha_err e = {0};
	assert_int_equal(list(page1, strlen(page1), &p, &e), 0);
	assert_int_equal(p.n_objs, 2);
	assert_string_equal(p.objs[0].key, "p/a&b <c> \"'");
	assert_int_equal(p.objs[0].size, 8388632);
	assert_string_equal(p.objs[1].key, "p/AB\xc3\xa9\xf0\x9f\x98\x80");
	assert_int_equal(p.objs[1].size, 0);
	assert_int_equal(p.n_prefixes, 2);
	assert_string_equal(p.prefixes[0], "p/dir/");
	assert_string_equal(p.prefixes[1], "p/<raw>/");
	assert_true(p.truncated);
	assert_string_equal(p.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	ha_s3_list_page_free(&p);
	/* a namespace prefix, an empty listing, self-closing elements */
	const char *ns = "<s3:ListBucketResult xmlns:s3='x'><s3:IsTruncated>false</s3:IsTruncated>"
	                 "<s3:Prefix/><s3:Contents><s3:Key>k</s3:Key></s3:Contents>"
	                 "</s3:ListBucketResult>";
	assert_int_equal(list(ns, strlen(ns), &p, &e), 0);
	assert_int_equal(p.n_objs, 1);
	assert_string_equal(p.objs[0].key, "k");
	assert_false(p.truncated);
	assert_null(p.next_token);
	ha_s3_list_page_free(&p);
	const char *empty = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
	assert_int_equal(list(empty, strlen(empty), &p, &e), 0);
	assert_int_equal(p.n_objs + p.n_prefixes, 0);
	ha_s3_list_page_free(&p);
}

/* Every proper prefix of a valid page is refused, cleanly. */
static void cut_at_every_byte(void **state)
{
	(void)state;
	size_t n = strlen(page1);
	for (size_t k = 0; k + 1 < n; k++) {
		char *copy = malloc(k ? k : 1); /* exactly k bytes: ASan sees any overread */
		memcpy(copy, page1, k);
		struct ha_s3_list_page p;
		struct ha_err e = {0};
		/* the last byte is a newline after the root: every shorter cut is refused */
		assert_int_equal(list(copy, k, &p, &e), HA_EPROTO);
		assert_null(p.objs);
		assert_null(p.next_token);
		free(copy);
	}
}

static void expect_refused(const char *xml, size_t len, const char *why)
{
	struct ha_s3_list_page p;
	struct ha_err e = {0};
	char *copy = malloc(len ? len : 1);
	memcpy(copy, xml, len);
	int rc = list(copy, len, &p, &e);
	free(copy);
	if (rc != HA_EPROTO)
		fail_msg("accepted (rc %d): %.200s", rc, xml);
	if (why && strstr(e.msg, why) == NULL)
		fail_msg("'%s' not in '%s'", why, e.msg);
	assert_int_equal(p.n_objs + p.n_prefixes, 0);
}

#define REFUSED(xml, why) expect_refused(xml, strlen(xml), why)

static void hostile_lists(void **state)
{
	(void)state;
	REFUSED("", "no element");
	REFUSED("   \n", "no element");
	REFUSED("<html><body>502 Bad Gateway</body></html>", "not a ListBucketResult");
	REFUSED("<Error><Code>AccessDenied</Code></Error>", "not a ListBucketResult");
	REFUSED("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
	        "without a <Key>");
	REFUSED("<ListBucketResult><CommonPrefixes></CommonPrefixes></ListBucketResult>",
	        "without a <Prefix>");
	REFUSED("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
	        "without a continuation token");
	REFUSED("<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>", "neither");
	REFUSED(
	    "<ListBucketResult><Contents><Key>a</Key><Key>b</Key></Contents></ListBucketResult>",
	    "two keys");
	REFUSED("<ListBucketResult><Contents><Key></Key></Contents></ListBucketResult>", "empty");
	REFUSED("<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents>"
	        "</ListBucketResult>",
	        "<Size>");
	REFUSED("<ListBucketResult><Contents><Key>a</Key><Size>99999999999999999999</Size>"
	        "</Contents></ListBucketResult>",
	        "<Size>");
	REFUSED("<ListBucketResult><Contents></ListBucketResult></Contents>", "closes no open");
	REFUSED("<ListBucketResult></ListBucketResult><ListBucketResult/>", "second root");
	REFUSED("<ListBucketResult>x</ListBucketResult>trailing", "outside the root");
	REFUSED("<ListBucketResult><Contents><Key>a&bogus;</Key></Contents></ListBucketResult>",
	        "unknown entity");
	REFUSED("<ListBucketResult><Contents><Key>a&#0;b</Key></Contents></ListBucketResult>",
	        "NUL");
	REFUSED("<ListBucketResult><Contents><Key>&#xD800;</Key></Contents></ListBucketResult>",
	        "no character");
	REFUSED("<ListBucketResult><Contents><Key>&#x110000;</Key></Contents></ListBucketResult>",
	        "no character");
	REFUSED("<ListBucketResult><Contents><Key>a & b</Key></Contents></ListBucketResult>",
	        "entity");
	REFUSED("<ListBucketResult><Contents><Key>&#;</Key></Contents></ListBucketResult>", NULL);
	REFUSED("<ListBucketResult><Contents><Key>&#x;</Key></Contents></ListBucketResult>", NULL);
	REFUSED("<ListBucketResult><Contents><Key>&#12a;</Key></Contents></ListBucketResult>",
	        NULL);
	/* no DOCTYPE, so no entity expansion ("billion laughs") */
	REFUSED("<?xml version='1.0'?><!DOCTYPE l [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;'>]>"
	        "<ListBucketResult><Prefix>&b;</Prefix></ListBucketResult>",
	        "DOCTYPE");
	REFUSED("<ListBucketResult a=\"1></ListBucketResult>", "attribute");
	REFUSED("<ListBucketResult a></ListBucketResult>", "attribute");
	REFUSED("<ListBucketResult <Contents/></ListBucketResult>", "attribute");
	REFUSED("<ListBucketResult><!-- never closed </ListBucketResult>", "comment");
	REFUSED("<ListBucketResult><![CDATA[ never closed </ListBucketResult>", NULL);
	REFUSED("<ListBucketResult>< Contents/></ListBucketResult>", "no tag");
	REFUSED("<ListBucketResult></ ListBucketResult>", NULL);
	REFUSED("<<<<<<<<", NULL);
	REFUSED("&&&&", NULL);
	REFUSED(">>>>", "outside");
	const char nul[] =
	    "<ListBucketResult><Contents><Key>a\0b</Key></Contents></ListBucketResult>";
	expect_refused(nul, sizeof(nul) - 1, "NUL");
}

static void huge_and_nested(void **state)
{
	(void)state;
	struct ha_buf b = HA_BUF_INIT;
	/* a key of 1025 bytes; one of 1024 is S3's maximum and fine */
	for (int len = 1024; len <= 1025; len++) {
		ha_buf_reset(&b);
		ha_buf_puts(&b, "<ListBucketResult><Contents><Key>");
		for (int i = 0; i < len; i++)
			ha_buf_puts(&b, "k");
		ha_buf_puts(&b, "</Key></Contents></ListBucketResult>");
		struct ha_s3_list_page p;
		struct ha_err e = {0};
		int rc = list(b.data, b.len, &p, &e);
		assert_int_equal(rc, len == 1024 ? 0 : HA_EPROTO);
		ha_s3_list_page_free(&p);
	}
	/* a text of a megabyte */
	ha_buf_reset(&b);
	ha_buf_puts(&b, "<ListBucketResult><Name>");
	for (int i = 0; i < 1 << 20; i++)
		ha_buf_append(&b, "x", 1);
	ha_buf_puts(&b, "</Name></ListBucketResult>");
	expect_refused(b.data, b.len, "too long");
	/* more entries than a page holds */
	ha_buf_reset(&b);
	ha_buf_puts(&b, "<ListBucketResult>");
	for (int i = 0; i <= HA_S3_LIST_PAGE_MAX; i++)
		ha_buf_printf(&b, "<Contents><Key>k%d</Key></Contents>", i);
	ha_buf_puts(&b, "</ListBucketResult>");
	expect_refused(b.data, b.len, "more entries");
	/* nested: 16 levels are fine (unknown ones ignored), 17 are not, 100000 neither */
	for (int depth = HA_S3_XML_DEPTH_MAX; depth <= HA_S3_XML_DEPTH_MAX + 1; depth++) {
		ha_buf_reset(&b);
		ha_buf_puts(&b, "<ListBucketResult>");
		for (int i = 1; i < depth; i++)
			ha_buf_puts(&b, "<a>");
		for (int i = 1; i < depth; i++)
			ha_buf_puts(&b, "</a>");
		ha_buf_puts(&b, "</ListBucketResult>");
		struct ha_s3_list_page p;
		struct ha_err e = {0};
		assert_int_equal(list(b.data, b.len, &p, &e),
		                 depth == HA_S3_XML_DEPTH_MAX ? 0 : HA_EPROTO);
		ha_s3_list_page_free(&p);
	}
	ha_buf_reset(&b);
	for (int i = 0; i < 100000; i++)
		ha_buf_puts(&b, "<a>");
	expect_refused(b.data, b.len, NULL);
	ha_buf_free(&b);
}

/* Random damage to a valid page: refused or parsed, never a crash (ASan watches). */
static void random_damage(void **state)
{
	(void)state;
	size_t n = strlen(page1);
	unsigned seed = 12345;
	int accepted = 0;
	for (int round = 0; round < 20000; round++) {
		char *copy = malloc(n);
		memcpy(copy, page1, n);
		int flips = 1 + (int)(rand_r(&seed) % 4);
		for (int f = 0; f < flips; f++) {
			static const char pool[] = "<>/&;#x\"'=!?[]- aZ\x80\xff";
			copy[rand_r(&seed) % n] = (rand_r(&seed) & 1)
			                              ? pool[rand_r(&seed) % (sizeof(pool) - 1)]
			                              : (char)rand_r(&seed);
		}
		size_t len = (rand_r(&seed) % 8) ? n : rand_r(&seed) % n;
		struct ha_s3_list_page p;
		struct ha_err e = {0};
		if (list(copy, len, &p, &e) == 0) {
			accepted++;
			for (size_t i = 0; i < p.n_objs; i++)
				assert_true(strlen(p.objs[i].key) > 0 &&
				            strlen(p.objs[i].key) <= HA_S3_KEY_MAX);
		}
		ha_s3_list_page_free(&p);
		struct ha_s3_error er;
		ha_s3_xml_error(copy, len, &er);
		free(copy);
	}
	print_message("random damage: %d of 20000 still parsed\n", accepted);
}

static void error_bodies(void **state)
{
	(void)state;
	struct ha_s3_error er;
	const char *skew =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>RequestTimeTooSkewed</Code>"
	    "<Message>The difference between the request time and the current time is too "
	    "large.</Message><RequestTime>20260101T000000Z</RequestTime>"
	    "<ServerTime>2026-01-01T01:00:00Z</ServerTime>"
	    "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>"
	    "<RequestId>4442587FB7D0A2F9</RequestId><HostId>x</HostId></Error>";
	assert_int_equal(ha_s3_xml_error(skew, strlen(skew), &er), 0);
	assert_string_equal(er.code, "RequestTimeTooSkewed");
	assert_string_equal(er.request_time, "20260101T000000Z");
	assert_string_equal(er.server_time, "2026-01-01T01:00:00Z");
	assert_string_equal(er.request_id, "4442587FB7D0A2F9");
	const char *rgw =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchBucket</Code>"
	    "<BucketName>nope</BucketName><RequestId>tx0</RequestId>"
	    "<HostId>1-default</HostId></Error>";
	assert_int_equal(ha_s3_xml_error(rgw, strlen(rgw), &er), 0);
	assert_string_equal(er.code, "NoSuchBucket");
	assert_string_equal(er.message, "");
	const char *region = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region "
	                     "'us-east-1' is wrong; expecting 'eu-west-1'</Message>"
	                     "<Region>eu-west-1</Region></Error>";
	assert_int_equal(ha_s3_xml_error(region, strlen(region), &er), 0);
	assert_string_equal(er.region, "eu-west-1");
	/* a long message is cut visibly; a code that long is no S3 code */
	struct ha_buf b = HA_BUF_INIT;
	ha_buf_puts(&b, "<Error><Code>SlowDown</Code><Message>");
	for (int i = 0; i < 5000; i++)
		ha_buf_puts(&b, "m");
	ha_buf_puts(&b, "</Message></Error>");
	assert_int_equal(ha_s3_xml_error(b.data, b.len, &er), 0);
	assert_int_equal(strlen(er.message), sizeof(er.message) - 1);
	assert_string_equal(er.message + sizeof(er.message) - 4, "...");
	ha_buf_reset(&b);
	ha_buf_puts(&b, "<Error><Code>");
	for (int i = 0; i < 100; i++)
		ha_buf_puts(&b, "C");
	ha_buf_puts(&b, "</Code></Error>");
	assert_int_equal(ha_s3_xml_error(b.data, b.len, &er), HA_EPROTO);
	ha_buf_free(&b);
	/* not error bodies */
	const char *bad[] = {"",
	                     "<Error></Error>",
	                     "<Error><Code>AccessDenied</Code>",
	                     "<Error><Code>AccessDenied</Code></Error><Error/>",
	                     "<html><title>403 Forbidden</title></html>",
	                     "<Error><Code>A</Code></Rror>",
	                     "Forbidden"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ha_s3_xml_error(bad[i], strlen(bad[i]), &er), HA_EPROTO);
		assert_string_equal(er.code, "");
	}
}

static void delete_results(void **state)
{
	(void)state;
	const char *r = "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	                "<Deleted><Key>a</Key></Deleted>"
	                "<Error><Key>p/b&amp;c</Key><Code>AccessDenied</Code>"
	                "<Message>Object is WORM protected</Message></Error>"
	                "<Error><Key>p/d</Key><Code>InternalError</Code></Error></DeleteResult>";
	size_t failed = 99;
	struct ha_s3_error first;
	assert_int_equal(ha_s3_xml_delete_result(r, strlen(r), &failed, &first), 0);
	assert_int_equal(failed, 2);
	assert_string_equal(first.key, "p/b&c");
	assert_string_equal(first.code, "AccessDenied");
	assert_string_equal(first.message, "Object is WORM protected");
	const char *quiet = "<DeleteResult/>";
	assert_int_equal(ha_s3_xml_delete_result(quiet, strlen(quiet), &failed, &first), 0);
	assert_int_equal(failed, 0);
	const char *other = "<Error><Code>MalformedXML</Code></Error>";
	assert_int_equal(ha_s3_xml_delete_result(other, strlen(other), &failed, &first), HA_EPROTO);
}

static void one_page(struct ha_s3_list_page *p, const char *xml)
{
	struct ha_err e = {0};
	if (ha_s3_xml_list(xml, strlen(xml), p, &e) != 0)
		fail_msg("%s", e.msg);
}

/* A listing goes forward, page after page; a server that cycles its continuation tokens (the
 * same keys again) or sends truncated empty pages without end is refused, where the listing
 * and delete_under went on forever. */
static void listing_goes_forward(void **state)
{
	(void)state;
	struct ha_s3_list_cursor cur = HA_S3_LIST_CURSOR_INIT;
	struct ha_s3_list_page p;
	struct ha_err e = {0};
	one_page(&p, "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>A"
	             "</NextContinuationToken><Contents><Key>k/b</Key></Contents><CommonPrefixes>"
	             "<Prefix>k/a/</Prefix></CommonPrefixes></ListBucketResult>");
	assert_int_equal(ha_s3_list_forward(&cur, &p, &e), 0);
	ha_s3_list_page_free(&p);
	one_page(&p,
	         "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>B"
	         "</NextContinuationToken><Contents><Key>k/c</Key></Contents></ListBucketResult>");
	assert_int_equal(ha_s3_list_forward(&cur, &p, &e), 0);
	ha_s3_list_page_free(&p);
	/* the first page again: refused */
	one_page(&p,
	         "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>A"
	         "</NextContinuationToken><Contents><Key>k/b</Key></Contents></ListBucketResult>");
	assert_int_equal(ha_s3_list_forward(&cur, &p, &e), HA_EPROTO);
	assert_non_null(strstr(e.msg, "goes back"));
	ha_s3_list_page_free(&p);
	ha_s3_list_cursor_free(&cur);
	/* empty truncated pages: a few pass, endless ones do not */
	const char empty[] = "<ListBucketResult><IsTruncated>true</IsTruncated>"
	                     "<NextContinuationToken>E</NextContinuationToken></ListBucketResult>";
	int rc = 0;
	unsigned n = 0;
	for (; rc == 0 && n < 1000; n++) {
		one_page(&p, empty);
		rc = ha_s3_list_forward(&cur, &p, &e);
		ha_s3_list_page_free(&p);
	}
	assert_int_equal(rc, HA_EPROTO);
	assert_int_equal(n, HA_S3_LIST_EMPTY_MAX + 1);
	ha_s3_list_cursor_free(&cur);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(list_page),      cmocka_unit_test(cut_at_every_byte),
	    cmocka_unit_test(hostile_lists),  cmocka_unit_test(huge_and_nested),
	    cmocka_unit_test(random_damage),  cmocka_unit_test(error_bodies),
	    cmocka_unit_test(delete_results), cmocka_unit_test(listing_goes_forward),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
