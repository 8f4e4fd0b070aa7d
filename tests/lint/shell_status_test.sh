#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test scripts report a condition with `check "<message>" $?`. A command
# substitution inside the message runs before `$?` is expanded and resets it
# to its own status, so such a check passes whatever the condition was: the
# status has to be saved first (`ok=$?`). This finds the unsafe form,
# including a message continued on the next line.
# Usage: shell_status_test.sh <source dir>
root=${1:-.}
found=$(find "$root/tests" "$root/scripts" "$root/bench" -name '*.sh' -print0 |
  xargs -0 awk '
    FNR == 1 { held = "" }
    held != "" {
      if ($0 ~ /\$\?[[:space:]]*$/) print held
      held = ""
    }
    /check "[^"]*\$\(/ {
      if ($0 ~ /\$\?[[:space:]]*$/) print FILENAME ":" FNR ": " $0
      else if ($0 ~ /\\[[:space:]]*$/) held = FILENAME ":" FNR ": " $0
    }')
if [ -n "$found" ]; then
  echo "FAIL: a check whose message has a command substitution is given \$?,"
  echo "which that substitution has already reset; save the status first:"
  echo "$found"
  exit 1
fi
echo "PASS: no check takes a \$? reset by its own message"
