#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every tracked source file carries an SPDX licence line (scripts/add-spdx.sh --check), and the
# script itself does what it says on a tree this test makes: the check fails on files without the
# line, applying adds exactly the right line in the right place, a second run changes nothing.
#   tests/lint/spdx_test.sh REPO_ROOT
set -euo pipefail
root=${1:?usage: spdx_test.sh REPO_ROOT}
script=$root/scripts/add-spdx.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A tree of one file per rule (not a git work tree, so the script's find(1) path is used).
t=$tmp/tree
mkdir -p "$t/agent" "$t/bpf/shared" "$t/scripts" "$t/deploy" "$t/tests/testdata" "$t/.ci"
printf 'int main() { return 0; }\n' >"$t/agent/main.cc"
printf '#!/usr/bin/env bash\necho hi\n' >"$t/scripts/run.sh"
printf '# syntax=docker/dockerfile:1\nFROM debian:12-slim\n' >"$t/deploy/agent.Dockerfile"
printf '/* probe */\nchar LICENSE[] SEC("license") = "Dual BSD/GPL";\n' >"$t/bpf/probe.bpf.c"
printf '/* abi */\nstruct x { int a; };\n' >"$t/bpf/shared/abi.h"
printf 'kind: Namespace\n' >"$t/deploy/ns.yaml"
printf '#!/bin/sh\nexec true\n' >"$t/.ci/run"
printf '// SPDX-License-Identifier: MIT\nint kept;\n' >"$t/agent/already.h"
printf 'kind: Pod\n' >"$t/tests/testdata/pod.yaml"
printf '{"a": 1}\n' >"$t/deploy/dash.json"
chmod +x "$t/scripts/run.sh"

if bash "$script" --check "$t" 2>"$tmp/err"; then fail "--check passed on a tree without SPDX lines"; fi
n=$(grep -c '^missing' "$tmp/err")
[ "$n" = 7 ] || { cat "$tmp/err"; fail "--check listed $n files, expected 7"; }

bash "$script" "$t" >/dev/null
expect() {  # FILE LINE_NUMBER TEXT
  got=$(sed -n "${2}p" "$t/$1")
  [ "$got" = "$3" ] || fail "$1 line $2 is \"$got\", expected \"$3\""
}
expect agent/main.cc 1 '// SPDX-License-Identifier: Apache-2.0'
expect agent/main.cc 2 'int main() { return 0; }'
expect scripts/run.sh 1 '#!/usr/bin/env bash'
expect scripts/run.sh 2 '# SPDX-License-Identifier: Apache-2.0'
expect deploy/agent.Dockerfile 1 '# syntax=docker/dockerfile:1'
expect deploy/agent.Dockerfile 2 '# SPDX-License-Identifier: Apache-2.0'
expect bpf/probe.bpf.c 1 '// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0'
expect bpf/shared/abi.h 1 '// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0'
expect deploy/ns.yaml 1 '# SPDX-License-Identifier: Apache-2.0'
expect .ci/run 2 '# SPDX-License-Identifier: Apache-2.0'
expect agent/already.h 1 '// SPDX-License-Identifier: MIT'
[ "$(head -1 "$t/tests/testdata/pod.yaml")" = 'kind: Pod' ] || fail "test data was changed"
[ "$(head -1 "$t/deploy/dash.json")" = '{"a": 1}' ] || fail "JSON was changed"
[ -x "$t/scripts/run.sh" ] || fail "the executable bit was lost"

(cd "$t" && find . -type f -exec md5sum {} + | sort) >"$tmp/before"
bash "$script" "$t" >/dev/null
(cd "$t" && find . -type f -exec md5sum {} + | sort) >"$tmp/after"
cmp -s "$tmp/before" "$tmp/after" || fail "a second run changed files (not idempotent)"
bash "$script" --check "$t" >/dev/null || fail "--check fails after applying"
echo "add-spdx.sh: check fails on 7 unlicensed files, apply puts each line in place, idempotent"

# The repository itself.
bash "$script" --check "$root"
