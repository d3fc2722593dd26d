#!/usr/bin/env bash
# The README's second command (and what CI runs): install dependencies, build with
# -Wall -Wextra -Werror, and run every test with ctest: cmocka unit tests and integration tests
# that start real mariadbd and haagentd processes on 127.0.0.0/8.
#
#   deploy/test.sh            normal build in build/
#   HA_SANITIZE=1 deploy/test.sh   ASan+UBSan build in build-asan/
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
bash "$here/install-deps.sh"
build=$repo/build
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${HA_SANITIZE:-0}" = 1 ]; then
	build=$repo/build-asan
	flags=(-DCMAKE_BUILD_TYPE=Debug -DHA_SANITIZE=ON)
fi
cmake -S "$repo" -B "$build" "${flags[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure --timeout 900
