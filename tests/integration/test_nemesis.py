"""A short randomized fault schedule (nemesis.py) against a real sandbox: one fault of every
kind in the catalogue, in an order, with targets and durations drawn from a seed, while several
writers keep commits in flight and all three servers' read_only is sampled ten times a second.

The seed is printed first and in every failure message; HA_NEMESIS_SEED=N replays it.
HA_NEMESIS_FAULTS=N changes the number of faults (default: one of each kind, 10)."""

import os
import time
import unittest

import nemesis
from harness import Sandbox
from netfault import NetFaults

FIRST = 141
BUDGET_S = 200     # no new fault after this long (one fault and its repair can take ~100 s)


class NemesisTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.seed = nemesis.seed_from_env()
        print(f"\nnemesis seed {cls.seed} (replay: HA_NEMESIS_SEED={cls.seed})", flush=True)
        cls.net = NetFaults(f"n{os.getpid()}", lambda n: f"127.0.0.{FIRST + n - 1}")
        cls.addClassCleanup(cls.net.close)
        cls.sb = Sandbox(first=FIRST, cgroup_prefix=cls.net.cgroup_prefix)
        cls.addClassCleanup(cls.sb.destroy)
        cls.addClassCleanup(cls.net.heal)
        cls.sb.up()

    def test_random_fault_schedule(self):
        sb = self.sb
        for n in (1, 2, 3):  # every process inside its node's cgroup, so partitions cut it
            self.assertIn(sb.agent_pid(n), self.net.members(n))
            self.assertIn(sb.db_pid(n), self.net.members(n))
        count = int(os.environ.get("HA_NEMESIS_FAULTS", str(len(nemesis.KINDS))))
        faults = nemesis.Schedule(self.seed).take(count)
        print("schedule: " + "; ".join(f.describe() for f in faults), flush=True)
        nem = nemesis.Nemesis(sb, self.net, self.seed)
        t0 = time.monotonic()
        try:
            try:
                nem.start()
                nem.run(faults, budget_s=BUDGET_S)
            except nemesis.Abort as e:
                nem.violation(None, f"the cluster stopped answering: {e}")
        finally:
            nem.finish()
            print(nem.report(), flush=True)
            print(f"nemesis test: {time.monotonic() - t0:.0f} s", flush=True)
        self.assertEqual(nem.violations, [],
                         f"seed {self.seed} (replay: HA_NEMESIS_SEED={self.seed}): "
                         f"{len(nem.violations)} invariant violation(s):\n"
                         + "\n".join(nem.violations))


if __name__ == "__main__":
    unittest.main()
