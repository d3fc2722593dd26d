"""Faults around one agent: a hung or dead mariadbd, hostile RPC input, bad configuration, a
second agent on the same data directory."""

import os
import socket
import ssl
import struct
import subprocess
import time
import unittest

from harness import HAAGENTD, Sandbox

PROBE_TIMEOUT_S = 1.5  # the agent's default probe_timeout_ms


class FaultTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=31)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()

    def setUp(self):
        self.sb.up()
        self.sb.wait_leader()

    def test_stopped_mariadbd_is_reported_hung_and_status_keeps_answering(self):
        sb = self.sb
        pid = sb.db_pid(2)
        os.kill(pid, 19)  # SIGSTOP
        try:
            t0 = time.monotonic()
            slowest = 0.0

            def hung():
                nonlocal slowest
                c0 = time.monotonic()
                st = sb.status()
                slowest = max(slowest, time.monotonic() - c0)
                return sb.node(st, "node2")["db"] == "hung"
            sb.wait_for(hung, PROBE_TIMEOUT_S + 3, interval=0.05, what="node2 reported hung")
            seen = time.monotonic() - t0
            # the agent's loop keeps running: status answers quickly throughout, also from node2
            self.assertLess(slowest, 1.0, f"a status call took {slowest:.2f}s")
            c0 = time.monotonic()
            st = sb.status(addr=f"{sb.ip(2)}:7200", local=True)
            self.assertLess(time.monotonic() - c0, 1.0)
            self.assertEqual(sb.node(st, "node2")["db"], "hung")
            self.assertIn("no answer", sb.node(st, "node2")["db_error"] or "")
            # the others are not affected
            st = sb.status()
            self.assertEqual(sb.node(st, "node1")["db"], "up")
            self.assertEqual(sb.node(st, "node3")["db"], "up")
            print(f"hung reported {seen:.2f}s after SIGSTOP (probe timeout {PROBE_TIMEOUT_S}s)")
        finally:
            os.kill(pid, 18)  # SIGCONT
        sb.wait_for(lambda: sb.node(sb.status(), "node2")["db"] == "up", 10, what="node2 up again")

    def test_killed_mariadbd_is_reported_down_then_up_after_restart(self):
        sb = self.sb
        os.kill(sb.db_pid(3), 9)
        t0 = time.monotonic()
        sb.wait_for(lambda: sb.node(sb.status(), "node3")["db"] == "down", 3, interval=0.05,
                    what="node3 reported down")
        print(f"down reported {time.monotonic() - t0:.2f}s after kill -9 of mariadbd")
        st = sb.status()
        n3 = sb.node(st, "node3")
        self.assertEqual(n3["agent"], "reachable")  # the agent is fine, its database is not
        self.assertIn("connect", n3["db_error"])
        sb.up()  # restarts the database
        sb.wait_for(lambda: sb.node(sb.status(), "node3")["io_running"] is True, 15,
                    what="node3 replicating again")

    def _raw(self, payload, read=True):
        # after the TLS layer, as an admin: the frame decoder is what is under test
        s = self.sb.connect(self.sb.ip(1), 7200)
        try:
            s.sendall(payload)
            if not read:
                return s
            s.settimeout(3)
            try:
                return s.recv(100)
            except (ConnectionResetError, socket.timeout, ssl.SSLError):
                return b""
        finally:
            if read:
                s.close()

    def test_hostile_rpc_input_closes_the_connection_not_the_agent(self):
        sb = self.sb
        pid = sb.agent_pid(1)
        # garbage
        self.assertEqual(self._raw(b"GET / HTTP/1.0\r\n\r\n"), b"")
        # a header announcing 4 GiB
        self.assertEqual(self._raw(b"HA\x01\x01" + struct.pack(">I", 0xFFFFFFFF)), b"")
        # an unknown message type
        self.assertEqual(self._raw(b"HA\x01\x63" + struct.pack(">I", 0)), b"")
        # a valid header with a payload that is not protobuf
        self.assertEqual(self._raw(b"HA\x01\x01" + struct.pack(">I", 4) + b"\xff\xff\xff\xff"), b"")
        # a truncated frame left hanging does not block others
        hanging = self._raw(b"HA\x01\x03" + struct.pack(">I", 100) + b"\x00", read=False)
        try:
            st = sb.status(addr=f"{sb.ip(1)}:7200", local=True)
            self.assertEqual(st["served_by"], "node1")
        finally:
            hanging.close()
        self.assertEqual(sb.agent_pid(1), pid, "the agent must survive hostile input")
        with open(os.path.join(sb.node_dir(1), "agent.log")) as f:
            log = f.read()
        self.assertIn("rpc-bad-frame", log)
        self.assertIn("exceeds limit", log)
        self.assertTrue(sb.status()["authoritative"])

    def test_second_agent_on_same_data_dir_is_refused(self):
        sb = self.sb
        r = subprocess.run([HAAGENTD, "-c", sb.conf(2)], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is locked by another agent", r.stderr)
        self.assertIn(str(sb.agent_pid(2)), r.stderr)
        self.assertIsNotNone(sb.agent_pid(2))

    def test_bad_config_is_a_clear_error(self):
        sb = self.sb
        bad = os.path.join(sb.dir, "bad.conf")
        with open(sb.conf(1)) as f:
            text = f.read()
        with open(bad, "w") as f:
            f.write(text.replace("db_user = haagent", "db_user = haagent\nprobe_intervall_ms = 5"))
        line = text.split("\n").index("db_user = haagent") + 2
        r = subprocess.run([HAAGENTD, "-c", bad], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 3)
        self.assertIn(f"{bad}:{line}: [agent] probe_intervall_ms: unknown key", r.stderr)
        # world-readable credentials
        pw = os.path.join(sb.dir, "haagent.password")
        os.chmod(pw, 0o644)
        try:
            r = subprocess.run([HAAGENTD, "-c", sb.conf(1), "--check"], capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 3)
            self.assertIn("world-readable", r.stderr)
        finally:
            os.chmod(pw, 0o600)
        r = subprocess.run([HAAGENTD, "-c", sb.conf(1), "--check"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
