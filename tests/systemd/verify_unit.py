#!/usr/bin/python3
"""Checks the generated systemd unit with `systemd-analyze verify`, strictly.

    verify_unit.py UNIT HAAGENTD [SYSUSERS]

systemd-analyze verify exits 0 on an unknown key or a value it cannot parse (it only warns and
ignores the line), so any line it prints counts as a failure here. It does fail on an ExecStart=
binary that does not exist: the unit names the installed path (/usr/sbin/haagentd), so the check
runs on a copy whose haagentd paths are replaced by HAAGENTD (the one just built); nothing else
is changed. Before trusting a clean result, the same check must fail on copies broken on purpose
(a misspelt key, a bad value, an unknown address family, a missing binary): a checker that
passes those checks nothing. systemd 252 ignores an unknown capability name without a word, so
the capability lines are checked against <linux/capability.h> here. SYSUSERS, when given, goes through `systemd-sysusers --dry-run` into an empty
root the same way.

Exit 0: good; 1: the unit (or the check) is broken; 77: systemd-analyze is not installed
(ctest: skipped)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def analyze(path):
    """(ok, output) of systemd-analyze verify on path: ok only with exit 0 and nothing said."""
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", path], capture_output=True,
                       text=True, timeout=60)
    out = (r.stdout + r.stderr).strip()
    return r.returncode == 0 and out == "", out


def unknown_capabilities(text):
    """The CAP_ names of the capability lines that the kernel's header does not define (None
    when the header is not installed)."""
    try:
        with open("/usr/include/linux/capability.h") as f:
            known = set(re.findall(r"(?m)^#define (CAP_[A-Z_]+)\s+\d+", f.read()))
    except OSError:
        return None
    used = []
    for m in re.finditer(r"(?m)^(?:CapabilityBoundingSet|AmbientCapabilities)=(.*)$", text):
        used += m.group(1).split()
    return [c for c in used if c.lstrip("~") not in known]


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    unit, haagentd = sys.argv[1], os.path.abspath(sys.argv[2])
    if shutil.which("systemd-analyze") is None:
        print("systemd-analyze not found: skipped")
        return SKIP
    with open(unit) as f:
        text = f.read()
    if re.search(r"@[A-Z_]+@", text):
        print(f"{unit}: an unsubstituted @VARIABLE@ is left")
        return 1
    # only the binary's path, which the check needs to exist
    local, n = re.subn(r"(?m)^(ExecStart(?:Pre)?=)\S*/haagentd\b", rf"\g<1>{haagentd}", text)
    if n != 2:
        print(f"{unit}: expected ExecStartPre= and ExecStart= naming haagentd, found {n}")
        return 1
    d = tempfile.mkdtemp(prefix="haagent-unit-")
    try:
        path = os.path.join(d, "haagentd.service")
        with open(path, "w") as f:
            f.write(local)
        ok, out = analyze(path)
        if not ok:
            print(f"{unit}: systemd-analyze verify:\n{out}")
            return 1
        # the same check on copies with one bad line each, which it must refuse
        for line in ("ProtectSystm=strict", "ProtectSystem=strikt",
                     "RestrictAddressFamilies=AF_PAKET", "ExecStartPost=/nonexistent/haagentd"):
            with open(path, "w") as f:
                f.write(local.replace("[Service]\n", f"[Service]\n{line}\n", 1))
            if analyze(path)[0]:
                print(f"self-test: a unit with {line} passed: this check checks nothing")
                return 1
        # systemd 252 ignores a capability it does not know without a word: checked here
        bad = unknown_capabilities(local)
        if bad is None:
            print("note: no <linux/capability.h>: capability names not checked")
        elif unknown_capabilities("AmbientCapabilities=CAP_NET_ADMIN CAP_KIL\n") != ["CAP_KIL"]:
            print("self-test: a misspelt capability was not found")
            return 1
        elif bad:
            print(f"{unit}: unknown capabilities: {' '.join(bad)}")
            return 1
        if len(sys.argv) == 4:
            root = os.path.join(d, "root")
            os.makedirs(os.path.join(root, "etc"))
            r = subprocess.run(["systemd-sysusers", f"--root={root}", "--dry-run",
                                os.path.abspath(sys.argv[3])],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                print(f"{sys.argv[3]}: systemd-sysusers:\n{r.stdout}{r.stderr}")
                return 1
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{unit}: systemd-analyze verify: clean (and it fails on the broken copies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
