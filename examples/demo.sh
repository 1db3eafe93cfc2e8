#!/usr/bin/env bash
# A walk through git-atomic in a scratch repository:
#   1. one batch that creates a branch and a tag and writes, renames and deletes files;
#   2. a batch whose precondition fails: refused with exit 1, nothing changed;
#   3. a dry run with --json: every precondition checked, nothing changed.
# Exits 0 when git-atomic behaved as documented, non-zero otherwise.
# KEEP=1 keeps the scratch directory for a look around.
set -euo pipefail

if ! command -v git-atomic >/dev/null 2>&1 && [ -x "$HOME/.local/bin/git-atomic" ]; then
    PATH="$HOME/.local/bin:$PATH"
    export PATH
fi
if ! command -v git-atomic >/dev/null 2>&1; then
    echo "demo: git-atomic is not on PATH (run ./install.sh first)" >&2
    exit 127
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/git-atomic-demo.XXXXXX")"
cleanup() {
    if [ "${KEEP:-}" = 1 ]; then
        echo "demo: kept $scratch"
    else
        rm -rf "$scratch"
    fi
}
trap cleanup EXIT

failures=0
step() { printf '\n=== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() {
    printf 'FAILED: %s\n' "$*" >&2
    failures=$((failures + 1))
}
check() { # check DESCRIPTION COMMAND...
    local what="$1"
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

# Everything a batch could change: refs, the work tree (names, types, modes, contents), and the
# names of everything in .git outside .git/atomic (a leftover lock file or directory shows up).
snapshot() {
    git for-each-ref --format='%(refname) %(objectname) %(symref)'
    git symbolic-ref HEAD
    find . -path ./.git -prune -o -printf '%p %y %m %l\n' | LC_ALL=C sort
    find . -path ./.git -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha1sum
    find .git -path .git/atomic -prune -o -printf '%p %y\n' | LC_ALL=C sort
}

show() {
    echo "--- git for-each-ref"
    git for-each-ref
    echo "--- work tree"
    ls -lR --ignore=.git .
    echo "--- git status --short"
    git status --short
}

step "scratch repository in $scratch"
repo="$scratch/repo"
git init -q --initial-branch=main "$repo"
cd "$repo"
git config user.name "Demo User"
git config user.email "demo@example.invalid"
git config commit.gpgsign false
mkdir -p docs
printf '# demo\n' >README.md
printf 'first notes\n' >notes.txt
printf 'this page is obsolete\n' >docs/old.md
git add README.md notes.txt docs/old.md
git commit -q -m "initial commit"
printf 'more notes\n' >>notes.txt
git commit -q -am "more notes"
head="$(git rev-parse HEAD)"
git log --oneline

step "batch 1: a branch, a tag and four file changes, all or nothing"
# The batch files live beside the repository, not in its work tree.
cat >"$scratch/batch1.yaml" <<'EOF'
version: 1
message: "demo: branch, tag and file moves"
refs:
  - create: refs/heads/feature    # must not exist yet
    to: HEAD
  - create: refs/tags/demo
    to: HEAD
files:
  - write: src/config.toml
    content: |
      [server]
      port = 8080
  - write: bin/run.sh
    mode: "100755"
    content: |
      #!/bin/sh
      echo "hello from git-atomic"
  - rename: notes.txt
    to: notes.md
  - delete: docs/old.md           # docs/ is left empty, so it goes too
    expect: present
EOF
cat "$scratch/batch1.yaml"

rc=0
git atomic apply "$scratch/batch1.yaml" || rc=$?
check "apply exited 0 (got $rc)" test "$rc" -eq 0
show
check "refs/heads/feature is at HEAD" test "$(git rev-parse -q --verify refs/heads/feature)" = "$head"
check "refs/tags/demo is at HEAD" test "$(git rev-parse -q --verify refs/tags/demo)" = "$head"
check "src/config.toml written" grep -qx 'port = 8080' src/config.toml
check "bin/run.sh is executable" test -x bin/run.sh
check "bin/run.sh runs" test "$(./bin/run.sh 2>/dev/null)" = "hello from git-atomic"
check "notes.txt renamed to notes.md" test ! -e notes.txt -a -f notes.md
check "notes.md kept its content" test "$(cat notes.md 2>/dev/null)" = "$(printf 'first notes\nmore notes')"
check "docs/old.md deleted and empty docs/ removed" test ! -e docs
check "reflog message is the batch message" \
    test "$(git reflog show --format=%gs -n 1 refs/heads/feature 2>/dev/null)" = "demo: branch, tag and file moves"

step "batch 2: a precondition fails (refs/heads/feature exists), so nothing happens"
cat >"$scratch/batch2.yaml" <<'EOF'
message: "demo: must be refused"
refs:
  - create: refs/heads/other
    to: HEAD
  - verify: refs/heads/feature
    is: absent                    # false: batch 1 created it
files:
  - write: src/config.toml
    content: "overwritten?\n"
  - delete: notes.md
EOF
cat "$scratch/batch2.yaml"
before="$(snapshot)"
rc=0
git atomic apply "$scratch/batch2.yaml" || rc=$?
after="$(snapshot)"
check "apply refused with exit 1 (got $rc)" test "$rc" -eq 1
check "refs, work tree and .git unchanged" test "$before" = "$after"
if [ "$before" != "$after" ]; then
    diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2 || true
fi
check "refs/heads/other was not created" test -z "$(git for-each-ref refs/heads/other)"

step "batch 3: --dry-run --json of a valid batch"
feature="$(git rev-parse refs/heads/feature)"
config_blob="$(git hash-object src/config.toml)"
cat >"$scratch/batch3.yaml" <<EOF
message: "demo: dry run"
refs:
  - update: refs/heads/feature
    to: HEAD~1
    from: $feature
  - delete: refs/tags/demo
files:
  # expect: what \`git hash-object src/config.toml\` prints now
  - write: src/config.toml
    expect: $config_blob
    content: |
      [server]
      port = 9090
  - rename: notes.md
    to: docs/notes.md
EOF
cat "$scratch/batch3.yaml"
before="$(snapshot)"
rc=0
json="$(git atomic apply --dry-run --json "$scratch/batch3.yaml")" || rc=$?
after="$(snapshot)"
printf '%s\n' "$json"
check "dry run exited 0 (got $rc)" test "$rc" -eq 0
check "JSON says would-apply" grep -Eq '"status"[[:space:]]*:[[:space:]]*"would-apply"' <<<"$json"
check "dry run changed nothing" test "$before" = "$after"

step "result"
if [ "$failures" -ne 0 ]; then
    echo "demo: $failures check(s) failed" >&2
    exit 1
fi
echo "demo: every step behaved as documented"
