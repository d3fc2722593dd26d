/* The SigV4 signer against published values:
 *   - the four S3 examples of "Signature Calculations for the Authorization Header: Transferring
 *     Payload in a Single Chunk" (docs.aws.amazon.com/AmazonS3/latest/API/
 *     sig-v4-header-based-auth.html): GET Object, PUT Object, GET Bucket Lifecycle, Get Bucket
 *     (List Objects); access key AKIAIOSFODNN7EXAMPLE, 20130524T000000Z, us-east-1;
 *   - cases of AWS's generic SigV4 test suite (aws-sig-v4-test-suite: AKIDEXAMPLE,
 *     20150830T123600Z, service "service"), for query order, UTF-8, unreserved characters and
 *     header trimming;
 * and S3's encoding rules where curl's own signer is wrong (sigv4.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backup/sigv4.h"

#define S3_AK     "AKIAIOSFODNN7EXAMPLE"
#define S3_SK     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE   "20130524T000000Z"
#define S3_HOST   "examplebucket.s3.amazonaws.com"
#define EMPTY     HA_SIGV4_EMPTY_SHA256
#define S3_PREFIX "AWS4-HMAC-SHA256 Credential=" S3_AK "/20130524/us-east-1/s3/aws4_request,"

static const struct ha_sigv4_creds s3_creds = {S3_AK, S3_SK, "us-east-1", "s3"};

/* The Authorization value, and the hash the string to sign ends with. */
static void sign(const struct ha_sigv4_request *r, const struct ha_sigv4_creds *c, const char *date,
                 char *auth, size_t size, char sts_hash[65])
{
	struct ha_buf canon = HA_BUF_INIT, sh = HA_BUF_INIT, out = HA_BUF_INIT;
	struct ha_err e = {0};
	assert_int_equal(ha_sigv4_canonical_request(r, &canon, &sh, &e), 0);
	ha_sigv4_sha256_hex(canon.data, canon.len, sts_hash);
	assert_int_equal(ha_sigv4_authorization(r, c, date, &out, &e), 0);
	snprintf(auth, size, "%s", ha_buf_cstr(&out));
	ha_buf_free(&canon);
	ha_buf_free(&sh);
	ha_buf_free(&out);
}

static void s3_get_object(void **state)
{
	(void)state;
	struct ha_sigv4_pair h[] = {{"Host", S3_HOST},
	                            {"Range", "bytes=0-9"},
	                            {"x-amz-content-sha256", EMPTY},
	                            {"x-amz-date", S3_DATE}};
	struct ha_sigv4_request r = {"GET", "/test.txt", NULL, 0, h, 4, EMPTY};
	struct ha_buf canon = HA_BUF_INIT, sh = HA_BUF_INIT;
	struct ha_err e = {0};
	assert_int_equal(ha_sigv4_canonical_request(&r, &canon, &sh, &e), 0);
	assert_string_equal(canon.data, "GET\n/test.txt\n\nhost:" S3_HOST "\nrange:bytes=0-9\n"
	                                "x-amz-content-sha256:" EMPTY "\nx-amz-date:" S3_DATE "\n\n"
	                                "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY);
	struct ha_buf sts = HA_BUF_INIT;
	ha_sigv4_string_to_sign(&sts, S3_DATE, "us-east-1", "s3", canon.data, canon.len);
	assert_string_equal(sts.data,
	                    "AWS4-HMAC-SHA256\n" S3_DATE "\n20130524/us-east-1/s3/"
	                    "aws4_request\n"
	                    "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	char auth[512], hash[65];
	sign(&r, &s3_creds, S3_DATE, auth, sizeof(auth), hash);
	assert_string_equal(
	    auth,
	    S3_PREFIX "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
	              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	ha_buf_free(&canon);
	ha_buf_free(&sh);
	ha_buf_free(&sts);
}

static void s3_put_object(void **state)
{
	(void)state;
	char body_hash[65];
	ha_sigv4_sha256_hex("Welcome to Amazon S3.", 21, body_hash);
	assert_string_equal(body_hash,
	                    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	struct ha_sigv4_pair h[] = {{"Host", S3_HOST},
	                            {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
	                            {"x-amz-date", S3_DATE},
	                            {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
	                            {"x-amz-content-sha256", body_hash}};
	struct ha_sigv4_request r = {"PUT", "/test$file.text", NULL, 0, h, 5, body_hash};
	char auth[512], hash[65];
	sign(&r, &s3_creds, S3_DATE, auth, sizeof(auth), hash);
	struct ha_buf canon = HA_BUF_INIT, sh = HA_BUF_INIT;
	struct ha_err e = {0};
	assert_int_equal(ha_sigv4_canonical_request(&r, &canon, &sh, &e), 0);
	assert_non_null(strstr(canon.data, "PUT\n/test%24file.text\n\ndate:Fri, 24 May"));
	struct ha_buf sts = HA_BUF_INIT;
	ha_sigv4_string_to_sign(&sts, S3_DATE, "us-east-1", "s3", canon.data, canon.len);
	assert_non_null(
	    strstr(sts.data, "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"));
	assert_string_equal(
	    auth,
	    S3_PREFIX "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
	              "x-amz-storage-class,"
	              "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	ha_buf_free(&canon);
	ha_buf_free(&sh);
	ha_buf_free(&sts);
}

/* "?lifecycle": a key without a value is signed as "lifecycle=" */
static void s3_get_lifecycle(void **state)
{
	(void)state;
	struct ha_sigv4_pair q[] = {{"lifecycle", ""}};
	struct ha_sigv4_pair h[] = {
	    {"Host", S3_HOST}, {"x-amz-date", S3_DATE}, {"x-amz-content-sha256", EMPTY}};
	struct ha_sigv4_request r = {"GET", "/", q, 1, h, 3, EMPTY};
	char auth[512], hash[65];
	sign(&r, &s3_creds, S3_DATE, auth, sizeof(auth), hash);
	assert_string_equal(
	    auth,
	    S3_PREFIX "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
	              "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void s3_list_objects(void **state)
{
	(void)state;
	struct ha_sigv4_pair q[] = {{"prefix", "J"}, {"max-keys", "2"}}; /* out of order */
	struct ha_sigv4_pair h[] = {
	    {"Host", S3_HOST}, {"x-amz-date", S3_DATE}, {"x-amz-content-sha256", EMPTY}};
	struct ha_sigv4_request r = {"GET", "/", q, 2, h, 3, EMPTY};
	char auth[512], hash[65];
	sign(&r, &s3_creds, S3_DATE, auth, sizeof(auth), hash);
	struct ha_buf sts = HA_BUF_INIT, canon = HA_BUF_INIT, sh = HA_BUF_INIT;
	struct ha_err e = {0};
	assert_int_equal(ha_sigv4_canonical_request(&r, &canon, &sh, &e), 0);
	assert_non_null(strstr(canon.data, "GET\n/\nmax-keys=2&prefix=J\n"));
	ha_sigv4_string_to_sign(&sts, S3_DATE, "us-east-1", "s3", canon.data, canon.len);
	assert_non_null(
	    strstr(sts.data, "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7"));
	assert_string_equal(
	    auth,
	    S3_PREFIX "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
	              "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	ha_buf_free(&canon);
	ha_buf_free(&sh);
	ha_buf_free(&sts);
}

/* ---- AWS's generic test suite (no payload-hash header: that one is S3's rule) ---- */

#define SUITE_DATE "20150830T123600Z"
static const struct ha_sigv4_creds suite_creds = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service"};

static void suite_case(const struct ha_sigv4_pair *q, size_t nq, const struct ha_sigv4_pair *extra,
                       size_t nextra, const char *signed_headers, const char *signature)
{
	struct ha_sigv4_pair h[8] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};
	for (size_t i = 0; i < nextra; i++)
		h[2 + i] = extra[i];
	struct ha_sigv4_request r = {"GET", "/", q, nq, h, 2 + nextra, EMPTY};
	char auth[512], want[512], hash[65];
	sign(&r, &suite_creds, SUITE_DATE, auth, sizeof(auth), hash);
	snprintf(want, sizeof(want),
	         "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,"
	         "SignedHeaders=%s,Signature=%s",
	         signed_headers, signature);
	assert_string_equal(auth, want);
}

static void suite_vectors(void **state)
{
	(void)state;
	/* get-vanilla */
	suite_case(NULL, 0, NULL, 0, "host;x-amz-date",
	           "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	/* get-vanilla-query-order-key-case */
	struct ha_sigv4_pair order[] = {{"Param2", "value2"}, {"Param1", "value1"}};
	suite_case(order, 2, NULL, 0, "host;x-amz-date",
	           "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
	/* get-vanilla-utf8-query: U+1234 as its three UTF-8 bytes */
	struct ha_sigv4_pair utf8[] = {{"\xe1\x88\xb4", "bar"}};
	suite_case(utf8, 1, NULL, 0, "host;x-amz-date",
	           "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
	/* get-vanilla-query-unreserved: - . _ ~ and alphanumerics stay as they are */
	const char *u = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	struct ha_sigv4_pair unres[] = {{u, u}};
	suite_case(unres, 1, NULL, 0, "host;x-amz-date",
	           "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
	/* get-header-value-trim: leading spaces dropped, inner runs of spaces made one */
	struct ha_sigv4_pair trim[] = {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}};
	suite_case(NULL, 0, trim, 2, "host;my-header1;my-header2;x-amz-date",
	           "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

/* ---- encoding edge cases ---- */

static const char *uri(const char *path)
{
	static struct ha_buf b = HA_BUF_INIT;
	ha_buf_reset(&b);
	ha_sigv4_canonical_uri(&b, path);
	return ha_buf_cstr(&b);
}

static const char *query(const struct ha_sigv4_pair *q, size_t n)
{
	static struct ha_buf b = HA_BUF_INIT;
	ha_buf_reset(&b);
	ha_sigv4_canonical_query(&b, q, n);
	return ha_buf_cstr(&b);
}

static void encoding(void **state)
{
	(void)state;
	assert_string_equal(uri(""), "/");
	assert_string_equal(uri("/bucket/dir/a b~c"), "/bucket/dir/a%20b~c");
	assert_string_equal(uri("/b/x+y*z=1&%"), "/b/x%2By%2Az%3D1%26%25");
	assert_string_equal(uri("/b/\xc3\xa9t\xc3\xa9"), "/b/%C3%A9t%C3%A9"); /* été */
	assert_string_equal(uri("/b//double"), "/b//double"); /* S3: no normalisation */
	/* curl 7.88.1 sends prefix=dir/ unencoded and signs ?uploads without '=' */
	struct ha_sigv4_pair list[] = {{"prefix", "dir/sub dir/"},
	                               {"list-type", "2"},
	                               {"delimiter", "/"},
	                               {"continuation-token", "1a+b/c=="}};
	assert_string_equal(query(list, 4), "continuation-token=1a%2Bb%2Fc%3D%3D&delimiter=%2F&"
	                                    "list-type=2&prefix=dir%2Fsub%20dir%2F");
	struct ha_sigv4_pair uploads[] = {{"uploads", ""}};
	assert_string_equal(query(uploads, 1), "uploads=");
	/* sorted by the encoded key: '%' (0x25) sorts before letters */
	struct ha_sigv4_pair enc[] = {
	    {"Param-3", "Value3"}, {"Param", "Value2"}, {"\xe1\x88\xb4", "V1"}};
	assert_string_equal(query(enc, 3), "%E1%88%B4=V1&Param=Value2&Param-3=Value3");
	/* the same key twice: by value */
	struct ha_sigv4_pair same[] = {{"k", "b"}, {"k", "a"}};
	assert_string_equal(query(same, 2), "k=a&k=b");
	assert_string_equal(query(NULL, 0), "");
}

static void refusals(void **state)
{
	(void)state;
	struct ha_buf canon = HA_BUF_INIT, sh = HA_BUF_INIT, out = HA_BUF_INIT;
	struct ha_err e = {0};
	struct ha_sigv4_pair twice[] = {{"Host", "h"}, {"host", "h"}};
	struct ha_sigv4_request r = {"GET", "/", NULL, 0, twice, 2, EMPTY};
	assert_int_equal(ha_sigv4_canonical_request(&r, &canon, &sh, &e), HA_EINVAL);
	assert_non_null(strstr(e.msg, "host given twice"));
	struct ha_sigv4_pair bad[] = {{"Ho st", "h"}};
	r.headers = bad;
	r.n_headers = 1;
	assert_int_equal(ha_sigv4_canonical_request(&r, &canon, &sh, &e), HA_EINVAL);
	struct ha_sigv4_pair ok[] = {{"Host", "h"}};
	r.headers = ok;
	assert_int_equal(ha_sigv4_authorization(&r, &s3_creds, "2013", &out, &e), HA_EINVAL);
	ha_buf_free(&canon);
	ha_buf_free(&sh);
	ha_buf_free(&out);
	char d[17];
	ha_sigv4_amz_date(1369353600, d); /* 2013-05-24 00:00:00 UTC */
	assert_string_equal(d, S3_DATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(s3_get_object),    cmocka_unit_test(s3_put_object),
	    cmocka_unit_test(s3_get_lifecycle), cmocka_unit_test(s3_list_objects),
	    cmocka_unit_test(suite_vectors),    cmocka_unit_test(encoding),
	    cmocka_unit_test(refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
