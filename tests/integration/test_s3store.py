"""The S3 store (agent/backup/store_s3.c) and its client against a real S3 server: Ceph's radosgw
started by deploy/radosgw.sh on 127.0.0.232:7482 (loopback only), driven by tests/s3tool.

It checks a round trip of a dozen 1 MiB chunks, that a name is listed only once committed and
that clean() removes what a node staged, that a commit never overwrites, that the errors an
operator meets say what to do (wrong secret, unknown key, missing bucket, skewed clock,
unreachable endpoint), that a damaged object is returned as stored (the pipeline's hashes
catch it), and that retries carry an operation through a short stall of the server while a
long one fails within timeout x attempts."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import SRC

SCRIPT = os.path.join(SRC, "deploy", "radosgw.sh")
S3TOOL = os.environ.get("S3TOOL", os.path.join(SRC, "build", "tests", "s3tool"))
IP, PORT = "127.0.0.232", 7482
ENDPOINT = f"http://{IP}:{PORT}"
BUCKET = "haagent-it"
MIB = 1 << 20


class TlsFront:
    """https on (IP, port) in front of radosgw's http: each TLS connection's bytes forwarded
    both ways (a thread each), so that the client's https and ca_file meet a real server."""

    def __init__(self, cert, key, port):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server((IP, port))
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
            up = socket.create_connection((IP, PORT))
        except OSError:
            conn.close()
            return
        threading.Thread(target=self.pump, args=(up, tls), daemon=True).start()
        self.pump(tls, up)

    @staticmethod
    def pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self.sock.close()


class S3StoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="haagent-s3store-")
        cls.rgw = os.path.join(cls.dir, "rgw")
        cls.args = ["bash", SCRIPT, "--dir", cls.rgw, "--ip", IP, "--port", str(PORT)]
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.addClassCleanup(subprocess.run, cls.args + ["destroy"], capture_output=True,
                            timeout=120)
        r = subprocess.run(cls.args + ["start"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"radosgw.sh start: {r.stdout}{r.stderr}")
        cls.keys = os.path.join(cls.rgw, "s3.keys")  # access_key = / secret_key =, mode 0600
        with open(cls.keys) as f:
            cls.access_key = f.read().split("access_key = ")[1].split()[0]
        r = cls.tool(None, "mkbucket")
        if not r["ok"]:
            raise AssertionError(f"mkbucket: {r}")

    @classmethod
    def tool(cls, prefix, *args, keys=None, endpoint=ENDPOINT, bucket=BUCKET, env=None,
             timeout_ms=5000, retries=5, timeout=120):
        """s3tool's JSON answer (its exit status as "rc", its stderr as "stderr")."""
        cmd = [S3TOOL, "--json", "--endpoint", endpoint, "--bucket", bucket,
               "--credentials-file", keys or cls.keys, "--timeout-ms", str(timeout_ms),
               "--connect-timeout-ms", "1000", "--retries", str(retries)]
        if prefix:
            cmd += ["--prefix", prefix]
        r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, **(env or {})))
        try:
            out = json.loads(r.stdout)
        except ValueError as e:
            raise AssertionError(f"s3tool {args}: {r.stdout!r} {r.stderr!r}") from e
        out["rc"] = r.returncode
        out["stderr"] = r.stderr
        return out

    def ok(self, prefix, *args, **kw):
        r = self.tool(prefix, *args, **kw)
        self.assertTrue(r["ok"], f"{args}: {r}")
        self.assertEqual(r["rc"], 0, r["stderr"])  # a sanitizer's exit status too
        return r

    def refused(self, prefix, *args, **kw):
        r = self.tool(prefix, *args, **kw)
        self.assertFalse(r["ok"], f"{args} succeeded: {r}")
        self.assertEqual(r["rc"], r["code"], r["stderr"])
        return r

    def raw_keys(self, under):
        return [o["key"] for o in self.ok(None, "list", under)["objects"]]

    def file(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def rgw_pid(self):
        with open(os.path.join(self.rgw, "rgw.pid")) as f:
            return int(f.read().strip())

    # ---- the store ----

    def test_roundtrip_of_1mib_chunks(self):
        r = self.ok("rt", "store-roundtrip", "12", "--chunk-size", str(MIB))
        self.assertEqual(r["chunks"], 12)
        self.assertEqual(r["bytes"], 12 * MIB)
        self.assertEqual(r["retries"], 0)
        print(f"\n  12 x 1 MiB: PUT {r['put_mib_s']:.1f} MiB/s, GET {r['get_mib_s']:.1f} MiB/s")
        self.assertEqual(self.raw_keys("rt/"), [], "the round trip removes what it wrote")
        # the binlog archive's kind: its own places, the same rules
        r = self.ok("rt", "--kind", "archive", "store-roundtrip", "3", "--chunk-size", "1000",
                    "--keep", "--name", "000000000001-1-abc")
        self.assertEqual(self.ok("rt", "--kind", "archive", "store-list")["names"],
                         ["000000000001-1-abc"])
        self.assertEqual(self.ok("rt", "store-list")["names"], [])
        self.assertIn("rt/archive/000000000001-1-abc.manifest", self.raw_keys("rt/"))
        self.ok("rt", "--kind", "archive", "store-remove", "000000000001-1-abc")
        self.assertEqual(self.raw_keys("rt/"), [])

    def test_listed_only_once_committed_and_clean_removes_the_staged(self):
        p, chunk = "staged", self.file("chunk", os.urandom(4096))
        self.ok(p, "store-begin", "node1", "000001-full-a")
        for i in range(3):
            self.ok(p, "store-put", "node1", "000001-full-a", str(i), chunk)
        self.assertEqual(self.ok(p, "store-list")["names"], [])
        self.assertEqual(sorted(self.raw_keys(f"{p}/")),
                         [f"{p}/backups-data/000001-full-a/chunks/0000000{i}" for i in range(3)] +
                         [f"{p}/backups-partial/node1/000001-full-a"])
        # another node's clean leaves node1's staging alone
        self.ok(p, "store-clean", "node2")
        self.assertEqual(len(self.raw_keys(f"{p}/")), 4)
        self.ok(p, "store-clean", "node1")
        self.assertEqual(self.raw_keys(f"{p}/"), [])
        # cleaned means aborted: its commit is refused
        r = self.refused(p, "store-commit", "node1", "000001-full-a", self.file("m", b"m\n"))
        self.assertIn("staging of 000001-full-a is gone", r["error"])
        self.assertEqual(self.ok(p, "store-list")["names"], [])
        # staged again and committed: listed
        self.ok(p, "store-begin", "node1", "000001-full-a")
        self.ok(p, "store-put", "node1", "000001-full-a", "0", chunk)
        self.ok(p, "store-commit", "node1", "000001-full-a", self.file("m", b"m\n"))
        self.assertEqual(self.ok(p, "store-list")["names"], ["000001-full-a"])
        self.assertNotIn(f"{p}/backups-partial/node1/000001-full-a", self.raw_keys(f"{p}/"))
        # a commit cut short (its marker still there) is not listed, and clean removes it
        # whole, manifest first
        self.ok(p, "store-begin", "node1", "000002-incr-a")
        self.ok(p, "store-put", "node1", "000002-incr-a", "0", chunk)
        self.ok(None, "put", f"{p}/backups/000002-incr-a.manifest", self.file("m", b"m\n"))
        self.assertEqual(self.ok(p, "store-list")["names"], ["000001-full-a"])
        self.ok(p, "store-clean", "node1")
        self.assertEqual(sorted(self.raw_keys(f"{p}/")),
                         [f"{p}/backups-data/000001-full-a/chunks/00000000",
                          f"{p}/backups/000001-full-a.manifest"])
        self.ok(p, "store-remove", "000001-full-a")
        self.assertEqual(self.raw_keys(f"{p}/"), [])

    def test_a_commit_never_overwrites(self):
        p, manifest = "twice", self.file("m1", b"first\n")
        self.ok(p, "store-begin", "node1", "000003-full-b")
        self.ok(p, "store-commit", "node1", "000003-full-b", manifest)
        # a second staging of a committed name is refused
        r = self.refused(p, "store-begin", "node2", "000003-full-b")
        self.assertIn("exists already", r["error"])
        # and a second commit, should a marker be there again, never overwrites
        self.ok(None, "put", f"{p}/backups-partial/node2/000003-full-b", self.file("e", b""))
        r = self.refused(p, "store-commit", "node2", "000003-full-b", self.file("m2", b"2nd\n"))
        self.assertIn("exists already: never overwritten", r["error"])
        self.assertEqual(self.ok(p, "store-get-manifest", "000003-full-b")["manifest"],
                         "first\n")
        # two nodes staging one name: the second is refused (chunks have one place per name)
        self.ok(p, "store-begin", "node1", "000004-full-b")
        r = self.refused(p, "store-begin", "node3", "000004-full-b")
        self.assertIn("being staged by node1", r["error"])
        # ... naming the marker to delete should node1 be gone for good
        self.assertIn(f"delete s3://{BUCKET}/{p}/backups-partial/node1/000004-full-b",
                      r["error"])
        self.ok(p, "store-abort", "node1", "000004-full-b")
        self.ok(None, "delete", f"{p}/backups-partial/node2/000003-full-b")
        self.ok(p, "store-remove", "000003-full-b")
        self.assertEqual(self.raw_keys(f"{p}/"), [])

    def test_a_damaged_object_is_returned_as_stored(self):
        p = "damage"
        self.ok(p, "store-roundtrip", "3", "--chunk-size", "65536", "--keep", "--name", "dmg")
        out = os.path.join(self.dir, "chunk1")
        self.ok(p, "store-get-chunk", "dmg", "1", "--out", out)
        with open(out, "rb") as f:
            before = f.read()
        damaged = bytearray(before)
        damaged[1000] ^= 0xFF
        self.ok(None, "put", f"{p}/backups-data/dmg/chunks/00000001",
                self.file("damaged", bytes(damaged)))
        self.ok(p, "store-get-chunk", "dmg", "1", "--out", out)
        with open(out, "rb") as f:
            after = f.read()
        self.assertEqual(after, bytes(damaged))
        self.assertNotEqual(after, before)
        # a chunk grown beyond what a chunk can be is refused as damage
        self.ok(None, "put", f"{p}/backups-data/dmg/chunks/00000002",
                self.file("big", b"x" * (8 * MIB + 25)))
        r = self.refused(p, "store-get-chunk", "dmg", "2")
        self.assertIn("larger than expected", r["error"])
        self.ok(p, "store-remove", "dmg")

    # ---- what an operator is told ----

    def test_probe(self):
        self.ok("probed", "probe")
        self.assertEqual(self.raw_keys("probed/"), [], "the probe object is deleted")

    def test_wrong_credentials(self):
        wrong = self.file("wrong.keys",
                          f"access_key = {self.access_key}\nsecret_key = {'x' * 40}\n".encode())
        os.chmod(wrong, 0o600)
        r = self.refused("p", "probe", keys=wrong)
        self.assertIn("SignatureDoesNotMatch", r["error"])
        self.assertIn("wrong credentials", r["error"])
        self.assertIn(f"check secret_key in {wrong}", r["error"])
        self.assertEqual(r["rc"], 3)
        unknown = self.file("unknown.keys", b"access_key = AKIANOSUCHKEY\nsecret_key = x\n")
        os.chmod(unknown, 0o600)
        r = self.refused("p", "probe", keys=unknown)
        self.assertIn("InvalidAccessKeyId", r["error"])
        self.assertIn(f"check access_key in {unknown}", r["error"])
        # the secret-file rule, before any request
        os.chmod(wrong, 0o644)
        r = self.refused("p", "probe", keys=wrong)
        self.assertIn("world-readable", r["error"])
        self.assertIn("credentials_file", r["error"])
        self.assertNotIn("x" * 40, r["error"] + r["stderr"])

    def test_missing_bucket(self):
        r = self.refused("p", "probe", bucket="no-such-bucket")
        self.assertIn("bucket 'no-such-bucket' does not exist", r["error"])
        self.assertIn("create the bucket", r["error"])
        self.assertEqual(r["rc"], 3)

    def test_skewed_clock(self):
        for skew, word in (("-3600", "behind"), ("3600", "ahead of")):
            r = self.refused("p", "probe", env={"HA_S3_CLOCK_SKEW_S": skew})
            self.assertIn("RequestTimeTooSkewed", r["error"])
            self.assertIn("the clock is off", r["error"])
            self.assertRegex(r["error"], rf"clock is 3[56]\d\d s {word} the server's")
            self.assertIn("NTP", r["error"])

    def test_unreachable_endpoint(self):
        t0 = time.monotonic()
        r = self.refused("p", "probe", endpoint=f"http://{IP}:{PORT + 9}")
        self.assertIn("unreachable", r["error"])
        self.assertIn("Connection refused", r["error"])
        self.assertLess(time.monotonic() - t0, 5)

    def test_https_with_its_ca_file(self):
        cert, key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", f"/CN={IP}", "-addext",
                        f"subjectAltName=IP:{IP}"], check=True, capture_output=True, timeout=30)
        front = TlsFront(cert, key, PORT + 10)
        self.addCleanup(front.close)
        https = f"https://{IP}:{PORT + 10}"
        self.ok("tls", "probe", "--ca-file", cert, endpoint=https)
        r = self.ok("tls", "store-roundtrip", "4", "--ca-file", cert, endpoint=https)
        self.assertEqual(r["chunks"], 4)
        r = self.refused("tls", "probe", endpoint=https)  # the system's CAs do not know it
        self.assertIn("certificate does not verify", r["error"])
        self.assertIn("ca_file", r["error"])

    def test_virtual_host_urls(self):
        """url_style = virtual: the bucket in the host name (BUCKET.127.0.0.232:7482, which
        radosgw takes as its rgw_dns_name's subdomain), reached without DNS by curl's
        CONNECT_TO (s3tool's HA_S3_CONNECT_TO)."""
        env = {"HA_S3_CONNECT_TO": f"::{IP}:{PORT}"}
        r = self.ok("virt", "--url-style", "virtual", "store-roundtrip", "3", "--keep",
                    env=env)
        self.assertEqual(r["chunks"], 3)
        # the same objects, seen path style
        self.assertEqual(self.ok("virt", "store-list")["names"], ["rt-000001"])
        self.ok("virt", "--url-style", "virtual", "store-remove", "rt-000001", env=env)
        self.assertEqual(self.raw_keys("virt/"), [])

    def test_listing_pages_and_odd_keys(self):
        """ListObjectsV2 by pages of 7 with the server's continuation tokens, over keys with
        spaces, '+', '~', '=' and UTF-8 (each encoded as it is signed)."""
        body = self.file("small", b"x")
        keys = [f"pages/k {i:02d} \u00e9+~=" for i in range(25)]
        for k in keys:
            self.ok(None, "put", k, body)
        r = self.ok(None, "list", "pages/", "--page-size", "7")
        self.assertEqual(r["pages"], 4)
        self.assertEqual([o["key"] for o in r["objects"]], sorted(keys))
        self.assertEqual(self.ok(None, "get", keys[3])["size"], 1)
        for k in keys:
            self.ok(None, "delete", k)
        self.assertEqual(self.raw_keys("pages/"), [])

    def test_parallel_reads(self):
        """get_chunk from 4 threads at once, as restore's workers call it."""
        r = self.ok("par", "store-roundtrip", "16", "--chunk-size", str(MIB), "--threads", "4")
        self.assertEqual(r["threads"], 4)
        print(f"\n  16 x 1 MiB, 4 readers: GET {r['get_mib_s']:.1f} MiB/s")

    # ---- stalls: retries, and their bound ----

    def test_z_retries_carry_a_short_stall(self):
        """The server stopped (SIGSTOP) for 2.5 s during a round trip of 40 chunks, with a
        timeout of 1.5 s: a request times out, is retried, and the round trip completes."""
        pid = self.rgw_pid()
        cmd = [S3TOOL, "--json", "--endpoint", ENDPOINT, "--bucket", BUCKET, "--prefix", "stall",
               "--credentials-file", self.keys, "--timeout-ms", "1500", "--retries", "5",
               "store-roundtrip", "40", "--chunk-size", str(MIB)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.3)
            os.kill(pid, signal.SIGSTOP)
            time.sleep(2.5)
        finally:
            os.kill(pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
        r = json.loads(out)
        self.assertTrue(r["ok"], f"{r} {err}")
        self.assertGreaterEqual(r["retries"], 1, "the stall was not met")
        self.assertIn("s3-retry", err)

    def test_z_a_long_stall_fails_within_the_bound(self):
        """Stopped for good: timeout 1 s, 2 retries: 3 attempts of 1 s and two waits of at most
        0.2 and 0.4 s, then an error that says so."""
        pid = self.rgw_pid()
        data = self.file("one", os.urandom(MIB))
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            r = self.tool("stall2", "put", "stall2/x", data, timeout_ms=1000, retries=2)
            took = time.monotonic() - t0
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertFalse(r["ok"])
        self.assertEqual(r["rc"], 11)  # HA_ETIMEOUT
        self.assertIn("after 3 attempts", r["error"])
        self.assertIn("within timeout_ms = 1000", r["error"])
        self.assertGreaterEqual(took, 3.0)
        self.assertLess(took, 3.0 + 0.6 + 1.5)
        self.assertEqual(r["retries"], 2)
        # and the server, let go, answers again
        self.ok("stall2", "probe")


class OddServer:
    """An S3 endpoint on 127.0.0.1 (an ephemeral port) that misbehaves in `mode`: "cycle" answers
    every ListObjectsV2 page truncated, its continuation token alternating A, B, A, ... (the same
    key again); "noprefix" ignores the listing's prefix and lists the whole bucket. HEAD: 404;
    PUT, DELETE: 200; DeleteObjects: an empty DeleteResult, its body kept in `deleted`."""

    KEYS = ["backups/000001-full-a.manifest", "backups-data/000001-full-a/chunks/00000000",
            "archive/000000000001-x.manifest"]

    def __init__(self, mode):
        import http.server
        import urllib.parse
        odd = self
        self.mode, self.lists, self.deleted = mode, 0, []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, body=b"", status=200):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                if "list-type" not in q:
                    return self.reply(b"", 404)
                odd.lists += 1
                if odd.mode == "cycle":
                    nxt = "B" if q.get("continuation-token", [""])[0] == "A" else "A"
                    key = q.get("prefix", [""])[0] + "x"
                    body = (f"<ListBucketResult><IsTruncated>true</IsTruncated>"
                            f"<NextContinuationToken>{nxt}</NextContinuationToken><Contents>"
                            f"<Key>{key}</Key><Size>1</Size></Contents></ListBucketResult>")
                else:
                    body = ("<ListBucketResult><IsTruncated>false</IsTruncated>" + "".join(
                        f"<Contents><Key>{k}</Key><Size>1</Size></Contents>"
                        for k in OddServer.KEYS) + "</ListBucketResult>")
                self.reply(body.encode())

            def do_HEAD(self):
                self.reply(b"", 404)

            def do_PUT(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.reply()

            def do_DELETE(self):
                self.reply(b"", 204)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                odd.deleted.append(body.decode())
                self.reply(b"<DeleteResult></DeleteResult>")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class OddServerTest(unittest.TestCase):
    """What a server that does not list as S3 does cannot make the store loop or delete what is
    not its own."""

    def tool(self, endpoint, *args):
        keys = os.path.join(self.dir, "keys")
        with open(keys, "w") as f:
            f.write("access_key = AKIAODDSERVER\nsecret_key = odd/server/secret\n")
        os.chmod(keys, 0o600)
        r = subprocess.run([S3TOOL, "--json", "--endpoint", endpoint, "--bucket", "odd-bucket",
                            "--credentials-file", keys, "--retries", "0"] + list(args),
                           capture_output=True, text=True, timeout=20)
        out = json.loads(r.stdout)
        out["rc"] = r.returncode
        return out

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="haagent-odd-s3-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_a_cycling_listing_is_refused(self):
        """Continuation tokens A, B, A, ...: store-list and store-remove stop (they listed
        forever), saying the listing goes back."""
        odd = OddServer("cycle")
        self.addCleanup(odd.close)
        for args in (["store-list"], ["store-remove", "000001-full-a"]):
            r = self.tool(odd.endpoint, *args)
            self.assertFalse(r["ok"], r)
            self.assertIn("goes back", r["error"])
        self.assertLess(odd.lists, 10)

    def test_a_listing_outside_the_prefix_deletes_nothing(self):
        """A server that ignores the prefix: the begin of a new backup (which deletes what an
        earlier attempt at its name left) deletes none of the bucket's other objects."""
        odd = OddServer("noprefix")
        self.addCleanup(odd.close)
        r = self.tool(odd.endpoint, "store-begin", "node1", "000002-full-b")
        self.assertFalse(r["ok"], r)
        self.assertIn("not under it", r["error"])
        self.assertEqual(odd.deleted, [])


if __name__ == "__main__":
    unittest.main()
