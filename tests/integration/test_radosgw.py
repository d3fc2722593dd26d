"""deploy/radosgw.sh: a real S3 server (Ceph's radosgw over one monitor and one memstore OSD) on
a loopback address, which the S3 repository work (issue 14) and users test against. The test
checks that it starts, that it really checks what S3 checks (the SigV4 signature, the payload
hash), and that it stops, removing what it made."""

import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import SRC

SCRIPT = os.path.join(SRC, "deploy", "radosgw.sh")
IP, PORT = "127.0.0.241", 7480
EMPTY = hashlib.sha256(b"").hexdigest()


def running(pid):
    """The process exists and is not a zombie (a daemon's exit is reaped by whoever forked it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class RadosgwTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="haagent-rgw-")
        cls.args = ["bash", SCRIPT, "--dir", os.path.join(cls.dir, "rgw"), "--ip", IP,
                    "--port", str(PORT)]
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.addClassCleanup(subprocess.run, cls.args + ["destroy"], capture_output=True,
                            timeout=120)
        r = subprocess.run(cls.args + ["start"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"radosgw.sh start: {r.stdout}{r.stderr}")
        env = subprocess.run(cls.args + ["env"], capture_output=True, text=True, timeout=30)
        cls.s3 = dict(kv.split("=", 1) for kv in env.stdout.split())

    def curl(self, method, path, body=None, secret=None, sha=None):
        """HTTP status of a SigV4-signed request (curl's signer; the content hash given)."""
        user = f"{self.s3['S3_ACCESS_KEY']}:{secret or self.s3['S3_SECRET_KEY']}"
        cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
               "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", user,
               "-H", f"x-amz-content-sha256: {sha or hashlib.sha256(body or b'').hexdigest()}"]
        if body is not None:
            cmd += ["--data-binary", "@-"]
        r = subprocess.run(cmd + [self.s3["S3_ENDPOINT"] + path], input=body,
                           capture_output=True, timeout=30)
        return int(r.stdout or b"0")

    def test_signed_requests_and_what_is_refused(self):
        self.assertEqual(self.s3["S3_ENDPOINT"], f"http://{IP}:{PORT}")
        self.assertEqual(self.curl("PUT", "/bucket1"), 200)
        self.assertEqual(self.curl("PUT", "/bucket1/a", body=b"hello"), 200)
        self.assertEqual(self.curl("GET", "/bucket1/a"), 200)
        # a wrong secret: the signature does not match
        self.assertEqual(self.curl("GET", "/bucket1/a", secret="x" * 40), 403)
        # a body that is not what the signed hash says
        self.assertEqual(self.curl("PUT", "/bucket1/b", body=b"hello", sha=EMPTY), 400)
        self.assertEqual(self.curl("GET", "/bucket1/b"), 404)
        r = subprocess.run(self.args + ["status"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_zz_stop_stops_it(self):
        pids = [open(os.path.join(self.dir, "rgw", f"{p}.pid")).read().strip()
                for p in ("mon", "osd", "rgw")]
        subprocess.run(self.args + ["stop"], capture_output=True, timeout=120, check=True)
        for pid in pids:
            self.assertFalse(running(pid), f"pid {pid} still runs")
        r = subprocess.run(self.args + ["status"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        # and it starts again (memstore: a fresh, empty store and new keys)
        r = subprocess.run(self.args + ["start"], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
