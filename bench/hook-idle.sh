#!/usr/bin/env bash
# Idle cost of the reference-transaction hook (issue 5, SPEC §6): `git update-ref` in three
# repositories in turn — git-atomic's hook installed, no hook, an empty `#!/bin/sh` hook — and
# the cost each hook adds over no hook. Bar: ours adds <= 1.1 x what the empty hook adds.
#
#   bench/hook-idle.sh [ROUNDS] [CALLS_PER_ROUND]     (default 40 x 25)
#
# Needs git-atomic built (cargo build --release) or on PATH.
set -euo pipefail
rounds=${1:-40}
calls=${2:-25}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${GIT_ATOMIC_BIN:-$here/target/release/git-atomic}
[ -x "$bin" ] || bin=$(command -v git-atomic)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

make_repo() {
    git init -q "$tmp/$1"
    git -C "$tmp/$1" -c user.name=b -c user.email=b@x commit -q --allow-empty -m init
    # A journal directory exists in every repo git-atomic has used: the glob must see it.
    mkdir -p "$tmp/$1/.git/atomic/batches"
}
make_repo ours
make_repo none
make_repo empty
(cd "$tmp/ours" && "$bin" hook install >/dev/null)
printf '#!/bin/sh\nexit 0\n' >"$tmp/empty/.git/hooks/reference-transaction"
chmod +x "$tmp/empty/.git/hooks/reference-transaction"

now() { date +%s%N; }
declare -A samples
for ((r = 0; r < rounds; r++)); do
    for repo in ours none empty; do
        dir=$tmp/$repo
        id=$(git -C "$dir" rev-parse HEAD)
        t0=$(now)
        for ((i = 0; i < calls; i++)); do
            git -C "$dir" update-ref refs/heads/bench "$id"
        done
        t1=$(now)
        samples[$repo]+="$(((t1 - t0) / calls)) "
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ours=$(echo "${samples[ours]}" | median)
none=$(echo "${samples[none]}" | median)
empty=$(echo "${samples[empty]}" | median)
awk -v o="$ours" -v n="$none" -v e="$empty" 'BEGIN {
    printf "git update-ref, median per call over rounds (us): no hook %.0f, empty hook %.0f, git-atomic hook %.0f\n", n/1000, e/1000, o/1000
    printf "added by the empty hook: %.0f us; added by the git-atomic hook: %.0f us\n", (e-n)/1000, (o-n)/1000
    printf "ratio (git-atomic / empty): %.3f  (bar: <= 1.1)\n", (o-n)/(e-n)
}'
