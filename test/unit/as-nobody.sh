#!/usr/bin/env bash
# make unit-nobody (as root): runs the unit tests as the user nobody, to show that
# they need no privilege. They run from a copy of what they need (the compiled
# modules, the helper, node_modules, and the source tree, which some of them read:
# sys-seam, store-words and readme-layout) in a new directory under /tmp, since
# nobody may not reach the checkout (CI clones into a 0700 directory); the copy is
# removed afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [ "$(id -u)" != 0 ]; then
  echo "unit-nobody: run it as root (it becomes nobody); as any other user, make unit already runs unprivileged" >&2
  exit 1
fi
# The compiled tests whose source is still there (not a stale build of a removed one).
tests=()
for t in test/unit/*.test.ts; do tests+=("build/${t%.ts}.js"); done
work=$(mktemp -d /tmp/tspod-unit-nobody.XXXXXX)
trap 'rm -rf "$work"' EXIT
{ printf '%s\n' bin/tspod-helper node_modules \
    build/package.json build/cmd build/stage0 build/stage1 build/store build/native build/test
  # The source tree: every file but the build outputs, git's data and the big test data.
  find . \( -name .git -o -path ./node_modules -o -path ./bin -o -path ./build -o -path ./test/data -o -path ./fixtures/out \) -prune \
    -o -type f -print
} | tar -cf - -T - | tar -C "$work" -xf -
chown -R nobody:nogroup "$work"
chmod 0755 "$work"
cd "$work"
node=$(command -v node)
setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env \
  "$node" --test --test-reporter=spec "${tests[@]}"
