#!/usr/bin/env bash
# The README's first command: install dependencies, build, start the local three-node sandbox
# (three real MariaDB servers and three haagentd on 127.0.0.11-13) and print `haadm status`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
bash "$here/install-deps.sh"
cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$repo/build" -j"$(nproc)"
bash "$here/sandbox.sh" up
