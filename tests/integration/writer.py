"""The acknowledged-write checker: a client that writes numbered rows to whatever the cluster
reports as its primary, and remembers every commit the server acknowledged. After a failover,
every acknowledged row must be on the new primary."""

import threading
import time

import pymysql


class Writer:
    def __init__(self, sb, table="sandbox.ledger",
                 columns="id BIGINT PRIMARY KEY, at TIMESTAMP(3) DEFAULT NOW(3)",
                 insert="INSERT INTO {table} (id) VALUES (%s)"):
        self.sb = sb
        self.table = table
        self.columns = columns
        self.insert = insert.format(table=table)
        self.acked = []          # ids whose COMMIT returned OK
        self.errors = []
        self.ack_times = []      # (monotonic time, primary name) per acked write
        self._stop = threading.Event()
        self._thread = None
        self.next_id = 1
        self.primary = None

    def _primary(self):
        try:
            s = self.sb.status()
        except Exception:  # noqa: BLE001 - haadm may be mid-election; try again
            return None
        p = s.get("primary")
        if not p:
            return None
        node = self.sb.node(s, p)
        if node.get("read_only") is not False:
            return None
        return p

    def _connect(self, name):
        n = int(name[4:])
        return pymysql.connect(host=self.sb.ip(n), port=3306, user="app", password="app",
                               connect_timeout=2, read_timeout=3, write_timeout=3,
                               autocommit=True)

    def setup(self, timeout=30):
        """Creates the table on the primary (retrying while the primary is briefly read-only)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                c = self._connect(self._wait_primary(30))
                with c.cursor() as cur:
                    cur.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({self.columns})")
                    # a table left by an earlier writer: carry on after its ids
                    cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self.table}")
                    self.next_id = int(cur.fetchone()[0]) + 1
                c.close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _wait_primary(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self._primary()
            if p:
                return p
            time.sleep(0.05)
        raise AssertionError("no writable primary")

    def _run(self):
        conn, name = None, None
        while not self._stop.is_set():
            if conn is None:
                name = self._primary()
                if name is None:
                    time.sleep(0.05)
                    continue
                try:
                    conn = self._connect(name)
                except Exception as e:  # noqa: BLE001
                    self.errors.append(f"connect {name}: {e}")
                    conn = None
                    time.sleep(0.05)
                    continue
            i = self.next_id
            try:
                with conn.cursor() as cur:
                    cur.execute(self.insert, (i,))
                self.acked.append(i)
                self.ack_times.append((time.monotonic(), name))
                self.next_id += 1
            except pymysql.err.IntegrityError:
                # the previous attempt of this id committed after all: it was never acked to
                # us, so it is not counted, but the id moves on
                self.next_id += 1
            except Exception as e:  # noqa: BLE001 - lost connection, read-only, killed...
                self.errors.append(f"{name}: {e}")
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                self.next_id += 1  # outcome unknown: never reuse the id
            time.sleep(0.005)
        if conn:
            conn.close()

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def wait_acks(self, n, timeout=20):
        target = len(self.acked) + n
        deadline = time.monotonic() + timeout
        while len(self.acked) < target and time.monotonic() < deadline:
            time.sleep(0.05)
        if len(self.acked) < target:
            raise AssertionError(f"writer stalled: {len(self.acked)} acked, errors: {self.errors[-5:]}")

    def missing_on(self, node):
        """Acknowledged ids that node does not have. The acknowledged ones are taken before the
        table is read: while the writer runs, an id acknowledged after the read is not missing
        (that race once failed test_safety, which then looked like a lost write)."""
        acked = list(self.acked)
        ids = set(int(x) for x in self.sb.sql(node, f"SELECT id FROM {self.table}").split())
        return [i for i in acked if i not in ids]
