#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Adds the SPDX licence line to every tracked source file that lacks one; a file that already has
# an SPDX line in its first five lines is left as it is, so running it twice changes nothing.
#   scripts/add-spdx.sh [--check] [ROOT]
# --check: change nothing, list the files without the line, exit 1 if there are any (the `lint`
# test spdx_headers runs this). ROOT defaults to the repository holding this script. Files come
# from `git ls-files` when ROOT is a git work tree, else from find(1).
#
# Which line:
#   - objects loaded into the kernel and what they include (*.bpf.c, *.bpf.h, bpf/shared/*.h):
#     GPL-2.0 OR Apache-2.0, as the kernel requires a GPL-compatible licence of BPF programs that
#     call GPL-only helpers (the objects' SEC("license") says "Dual BSD/GPL", the kernel's string
#     for a dual licence);
#   - C, C++, proto, JavaScript: `// SPDX-License-Identifier: Apache-2.0` on the first line;
#   - shell, Python, CMake, YAML, Dockerfiles: `# SPDX-License-Identifier: Apache-2.0`, after a
#     `#!` line or Dockerfile parser directives (`# syntax=`, `# escape=`), which must stay first.
# Not touched: data and generated files (testdata, fuzz corpora, the generated vmlinux.h, JSON,
# CSV, Markdown), which either cannot carry comments or are not ours to license.
set -euo pipefail

check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

list_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files
  else
    find . -type f -not -path './.git/*' -not -path './build*' -not -path '*/node_modules/*' | sed 's|^\./||'
  fi
}

# Prints the comment style for a path ("//" or "#") and the licence, or nothing when the file is
# out of scope.
style_of() {
  local f=$1 base=${1##*/}
  case "$f" in
    tests/testdata/* | */testdata/* | tests/fuzz/corpus/* | bpf/include/vmlinux/* | */node_modules/*) return ;;
  esac
  case "$base" in
    *.bpf.c | *.bpf.h) echo "// GPL-2.0 OR Apache-2.0"; return ;;
  esac
  case "$f" in
    bpf/shared/*.h) echo "// GPL-2.0 OR Apache-2.0"; return ;;
  esac
  case "$base" in
    *.cc | *.h | *.c | *.cpp | *.hpp | *.proto | *.js | *.mjs) echo "// Apache-2.0" ;;
    *.sh | *.py | *.cmake | CMakeLists.txt | *.yaml | *.yml | *.Dockerfile | Dockerfile) echo "# Apache-2.0" ;;
    *)
      # Extension-less executables with a shell or Python shebang (e.g. .ci/run).
      if [ -f "$f" ] && head -c 64 "$f" | head -1 | grep -Eq '^#!.*(bash|sh|python3?)( |$)'; then
        echo "# Apache-2.0"
      fi
      ;;
  esac
}

missing=()
while IFS= read -r f; do
  [ -f "$f" ] || continue
  style=$(style_of "$f")
  [ -n "$style" ] || continue
  if head -n 5 "$f" | grep -q 'SPDX-License-Identifier:'; then continue; fi
  missing+=("$f")
  [ "$check" = 1 ] && continue
  marker=${style%% *}
  line="$marker SPDX-License-Identifier: ${style#* }"
  # Lines that must stay before the SPDX line: a shebang, Dockerfile parser directives.
  keep=0
  if head -n 1 "$f" | grep -q '^#!'; then
    keep=1
  elif [ "$marker" = "#" ]; then
    keep=$(awk 'tolower($0) ~ /^# *(syntax|escape|check)=/ { n = NR; next } { exit } END { print n + 0 }' "$f")
  fi
  tmp=$(mktemp "$f.spdx.XXXXXX")
  { head -n "$keep" "$f"; printf '%s\n' "$line"; tail -n +"$((keep + 1))" "$f"; } >"$tmp"
  chmod --reference="$f" "$tmp"
  mv "$tmp" "$f"
done < <(list_files)

if [ "$check" = 1 ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'missing SPDX-License-Identifier: %s\n' "${missing[@]}" >&2
    echo "${#missing[@]} file(s) without an SPDX line; run scripts/add-spdx.sh" >&2
    exit 1
  fi
  echo "SPDX: every source file carries a licence line"
else
  echo "SPDX: added a licence line to ${#missing[@]} file(s)"
fi
