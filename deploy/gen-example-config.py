#!/usr/bin/env python3
"""Writes deploy/haagent.conf.example from `haagentd --help-config` (the keys, defaults and
documentation declared once in agent/config.c), so the example lists every key:
    /usr/bin/python3 deploy/gen-example-config.py build/haagentd > deploy/haagent.conf.example
tests/integration/test_operations.py checks that it is complete."""
import re
import subprocess
import sys
import textwrap

REQUIRED = {"node": "node1", "data_dir": "/var/lib/haagent",
            "db_password_file": "/etc/haagent/db.password",
            "repl_password_file": "/etc/haagent/repl.password"}
EXAMPLES = {"repository": "/srv/haagent-backups", "key_file": "/etc/haagent/backup.key",
            "haadm_cert": "/etc/haagent/tls/admin.crt", "haadm_key": "/etc/haagent/tls/admin.key"}
# required in practice (TLS is on unless insecure = yes): written set, not commented
SET = {"ca": "/etc/haagent/tls/ca.crt", "cert": "/etc/haagent/tls/node1.crt",
       "key": "/etc/haagent/tls/node1.key"}

out = ["""# /etc/haagent/haagent.conf: the haagent configuration of ONE node (docs/config.md).
#
# Every node has the same file except [agent] node. Every key is listed with its default;
# a commented key keeps the default. Validate with:
#     haadm config check -c /etc/haagent/haagent.conf
# which also checks the database credentials and privileges (docs/runbook.md)."""]
section = None
text = subprocess.run([sys.argv[1], "--help-config"], capture_output=True, text=True).stdout
for line in text.splitlines():
    if not line.strip():
        continue
    if line.startswith("["):
        if line.startswith("[node"):
            break
        out.append(f"\n{line}")
        section = line.split()[0]
        continue
    # "  KEY DEFAULT DOC": a default that is empty or has spaces is quoted
    m = re.match(r'^  (\S+) +("[^"]*"|\S+) +(.*)$', line)
    if not m:
        sys.exit(f"gen-example-config: cannot read: {line!r}")
    key, default, doc = m.group(1), m.group(2).strip('"'), m.group(3).strip()
    out += [f"# {x}" for x in textwrap.wrap(doc, 94)]
    if default == "(required)":
        out.append(f"{key} = {REQUIRED[key]}")
    elif key in SET and section == "[tls]":
        out.append(f"{key} = {SET[key]}")
    elif key in EXAMPLES:
        out.append(f"#{key} = {EXAMPLES[key]}")
    else:
        out.append(f"#{key} = {default}" if default else f"#{key} =")
out.append("""
# Repositories for backups and the binlog archive, instead of [backup] repository: up to four
# [repository NAME] sections, identical on every node. Each backup and archive slice is written
# to the first that takes it and copied to the others by the raft leader (docs/backup.md,
# "Several repositories"; the S3 keys: "S3 repositories").
#[repository local]
#type = dir
#path = /srv/haagent-backups
#
#[repository offsite]
#type = s3
#endpoint = https://s3.eu-west-1.amazonaws.com
#region = eu-west-1
#bucket = example-haagent-backups
#prefix = cluster1
#credentials_file = /etc/haagent/s3.keys
""")
out.append("""
# One [node NAME] section per node, identical on every node. Names: letters, digits, _ . -
# id: raft server id, unique and never reused. address: IPv4 the agent binds raft, RPC and HTTP
# to (and where mariadbd listens). priority: preference among equally advanced candidates
# (default 100). no_promote = yes: never promote this node. http_port: /primary, /replica,
# /health, /metrics (default 7300; 0 turns it off).
[node node1]
id = 1
address = 10.0.0.11
raft_port = 7100
rpc_port = 7200
db_port = 3306
#http_port = 7300
#priority = 100
#no_promote = no

[node node2]
id = 2
address = 10.0.0.12
raft_port = 7100
rpc_port = 7200
db_port = 3306

[node node3]
id = 3
address = 10.0.0.13
raft_port = 7100
rpc_port = 7200
db_port = 3306""")
print("\n".join(out))
