#!/usr/bin/python3
"""The simulator catches a deliberately broken core, and its failing seed replays exactly.

hasim_mutant is hasim built with HA_SIM_MUTANT: the coordinator counts an agent that cannot log
in as a dead server (the first fault class of docs/failover.md). Random schedules must find a
broken invariant within seconds, and `--seed N` must break the same one again."""
import re
import subprocess
import sys
import time

mutant = sys.argv[1]
t0 = time.monotonic()
p = subprocess.run([mutant, "--seconds", "30"], capture_output=True, text=True, timeout=120)
took = time.monotonic() - t0
print(p.stdout, end="")
assert p.returncode == 1, f"the broken core was not caught (exit {p.returncode})"
m = re.search(r"FAILED seed (\d+): ([a-z-]+): ", p.stdout)
assert m, "no failing seed printed"
seed, violation = m.group(1), m.group(2)
assert took < 30, f"caught only after {took:.1f} s"
r = subprocess.run([mutant, "--seed", seed], capture_output=True, text=True, timeout=60)
print(r.stdout, end="")
assert r.returncode == 1 and f": {violation}: " in r.stdout, "the seed did not replay"
print(f"caught in {took:.2f} s: seed {seed}, {violation}; replayed")
