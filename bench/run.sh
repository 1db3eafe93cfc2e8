#!/usr/bin/env bash
# Performance harness (issue 7): git-atomic (A, built as install.sh builds it) against the
# hand-written alternative (B), side by side in one run (A B A B …, a fresh repository copy for
# each run on a fresh loop-mounted ext4 when root, `sync` before every timed command so that no
# run pays for another's dirty pages), printing medians and the median pairwise ratio.
#
#   bench/run.sh [quick|full]      quick: small cases only (seconds); full: every case (~12 min)
#   BENCH_ONLY=fsync=false bench/run.sh full   only the cases whose name contains the text
#
# Cases and bars (this machine, 2 cores, ext4):
#   1 ref + 1 file                  vs bash: printf > tmp; sync tmp; mv; sync dir; update-ref   <= 1.2
#     (also in a repository used before, as an editor integration uses one)
#   100+100, 10,000+10,000 (1 KiB, 50 dirs)  vs examples/bench_baseline (fsync per file and dir) <= 1.2
#   100,000 refs                    vs git update-ref --stdin alone                           <= 1.1
#   scaling 1,000 -> 10,000 -> 100,000 entries (half refs, half files)   10x entries <= 11x time
#   peak RSS of 100,000 refs + 10,000 files                                                   <= 100 MiB
#   recovery of an interrupted 10,000 + 10,000 batch vs its apply                             <= 1.0
#   atomic.fsync=false, 1+1 and 10,000+10,000 vs the same baselines without fsync             <= 1.1
#   a rename touching 1,000 files as an LSP WorkspaceEdit (--lsp) vs the same plain write batch <= 1.2
#   two-phase: prepare + commit vs apply of the same batch, 1+1 and 10,000+10,000              <= 1.3
#   two-phase: a 1+1 batch in two repositories (repositories:) vs its halves applied in turn   <= 2.2
#   history on vs off (atomic.history=false), 1+1, 100+100, 10,000+10,000, files replaced     <= 1.1
#   undo of a 10,000 + 10,000 batch vs its apply                                              <= 1.2
set -euo pipefail
mode=${1:-full}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# git-atomic as install.sh builds it (profile release; see README "Install" for dist).
cargo build --release --quiet --bin git-atomic
cargo build --release --quiet --example bench_baseline
atomic=${CARGO_TARGET_DIR:-$here/target}/release/git-atomic
baseline=${CARGO_TARGET_DIR:-$here/target}/release/examples/bench_baseline
work=$(mktemp -d "${TMPDIR:-/tmp}/git-atomic-bench.XXXXXX")
trap 'umount "$work/fs" 2>/dev/null || umount -l "$work/fs" 2>/dev/null; rm -rf "$work"' EXIT

# The repositories live on a fresh ext4 image, journaled as mkfs.ext4 makes it, loop-mounted: runs
# then start from the same file-system state whatever ran before. This machine's own root ext4
# has no journal, and such an ext4 skips every inode deleted in the last 60 s when it allocates one
# (fs/ext4/ialloc.c, recently_deleted): a run's time there depends on what was deleted before it,
# by up to 3x. Without root or loop devices the repositories stay under $TMPDIR, and the header
# says so. `-i 4096`: the full mode's repositories hold about 2.5 million inodes.
repos=$work
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin:/sbin" ;; esac
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null 2>&1 && truncate -s 24G "$work/fs.img" &&
    mkfs.ext4 -q -F -i 4096 "$work/fs.img" && mkdir "$work/fs" &&
    mount -o loop "$work/fs.img" "$work/fs" 2>/dev/null; then
    repos=$work/fs
    fs_note="repositories on a fresh loop-mounted ext4 (journaled)"
else
    fs_note="repositories under $work ($(df -T "$work" | awk 'NR == 2 {print $2}'); no loop mount)"
fi
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@x \
    GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@x

template=$repos/template
git init -q "$template"
git -C "$template" commit -q --allow-empty -m init
commit=$(git -C "$template" rev-parse HEAD)
commit2=$(git -C "$template" commit-tree -p HEAD -m second "HEAD^{tree}")

# gen NAME REFS FILES: a batch and the baseline's plan with the same changes.
gen() { "$baseline" gen --refs "$2" --files "$3" --dirs 50 --commit "$commit" --out "$work/$1"; }

# fresh: a new copy of the template (or of $tmpl) in $run; `clean` removes the copies after each case.
fresh() {
    run=$(mktemp -d "$repos/run.XXXXXX")
    cp -a "${tmpl:-$template}/." "$run"
    sync
}
clean() {
    rm -rf "$repos"/run.* "$repos"/steady-*
    sync
}

# timed CMD…: runs CMD in a fresh copy of the template, prints wall milliseconds.
timed() {
    fresh
    local t0 t1
    t0=$(date +%s%N)
    (cd "$run" && "$@" >/dev/null 2>&1) || { echo "failed: $*" >&2; exit 1; }
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
}

# timed_in DIR CMD…: like timed, in an existing repository that every run of a case shares.
timed_in() {
    local dir=$1 t0 t1
    shift
    sync
    t0=$(date +%s%N)
    (cd "$dir" && "$@" >/dev/null 2>&1) || { echo "failed: $*" >&2; exit 1; }
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# want NAME: whether BENCH_ONLY (when set) picks this case.
want() { [[ -z ${BENCH_ONLY:-} || $1 == *"$BENCH_ONLY"* ]]; }

# pair NAME RUNS BAR "A…" "B…": alternates A and B, prints medians and the median ratio A/B.
pair() {
    local name=$1 runs=$2 bar=$3 a=$4 b=$5 ta tb as=() bs=() rs=()
    want "$name" || return 0
    for ((i = 0; i < runs; i++)); do
        ta=$(timed bash -c "$a")
        tb=$(timed bash -c "$b")
        as+=("$ta") bs+=("$tb") rs+=("$(awk -v x="$ta" -v y="$tb" 'BEGIN {printf "%.4f", x/y}')")
    done
    report "$name" "$bar" "${as[*]}" "${bs[*]}" "${rs[*]}"
    clean
}

# report NAME BAR "A times" "B times" "ratios": one line of medians.
report() {
    local name=$1 bar=$2 ma mb mr
    ma=$(printf '%s\n' $3 | median)
    mb=$(printf '%s\n' $4 | median)
    mr=$(printf '%s\n' $5 | median)
    last_a=$ma last_b=$mb
    awk -v n="$name" -v a="$ma" -v b="$mb" -v r="$mr" -v bar="$bar" \
        'BEGIN {printf "%-44s %10.1f %10.1f %8.3f %6s  %s\n", n, a/1000, b/1000, r, bar, (r <= bar) ? "ok" : "OVER"}'
}

# steady NAME RUNS BAR "A…" "B…": like pair, but A and B each keep one repository for all their
# runs, as an editor integration would; every command gets the run number as $1 (its parity picks
# one of two batches, so that every run really changes the ref and the file).
steady() {
    local name=$1 runs=$2 bar=$3 a=$4 b=$5 ta tb as=() bs=() rs=()
    want "$name" || return 0
    for side in a b; do
        rm -rf "$repos/steady-$side"
        cp -a "$template" "$repos/steady-$side"
    done
    (cd "$repos/steady-a" && bash -c "$a" _ 1 >/dev/null 2>&1) # the repository's first batch
    (cd "$repos/steady-b" && bash -c "$b" _ 1 >/dev/null 2>&1)
    for ((i = 0; i < runs; i++)); do
        ta=$(timed_in "$repos/steady-a" bash -c "$a" _ "$i")
        tb=$(timed_in "$repos/steady-b" bash -c "$b" _ "$i")
        as+=("$ta") bs+=("$tb") rs+=("$(awk -v x="$ta" -v y="$tb" 'BEGIN {printf "%.4f", x/y}')")
    done
    report "$name" "$bar" "${as[*]}" "${bs[*]}" "${rs[*]}"
    clean
}

echo "git-atomic benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(git --version), mode $mode"
echo "$fs_note"
printf '%-44s %10s %10s %8s %6s\n' "case" "A ms" "B ms" "A/B" "bar"

small_script='printf "hello\n" > .f.txt.tmp && sync .f.txt.tmp && mv .f.txt.tmp f.txt && sync . && printf "update refs/heads/x '$commit'\n" | git update-ref --stdin'
small_script_nosync='printf "hello\n" > .f.txt.tmp && mv .f.txt.tmp f.txt && printf "update refs/heads/x '$commit'\n" | git update-ref --stdin'
printf 'refs:\n  - update: refs/heads/x\n    to: %s\nfiles:\n  - write: f.txt\n    content: "hello\\n"\n' "$commit" >"$work/small.yaml"
pair "1 ref + 1 file" 21 1.2 "$atomic apply -q $work/small.yaml" "$small_script"
# The config reaches the binary as git's own `git -c` would pass it, without git's extra exec.
nofsync='GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=atomic.fsync GIT_CONFIG_VALUE_0=false'
pair "1 ref + 1 file, atomic.fsync=false" 21 1.1 "$nofsync $atomic apply -q $work/small.yaml" "$small_script_nosync"

# Two-phase commit (issue 19): prepare + commit against apply of the same batch; and a batch
# across two repositories (this one and a nested one, `part`) against its halves applied one after
# the other without atomicity. The benchmark repositories have no hook: --no-hook-check.
pair "two-phase: prepare+commit 1+1 vs apply" 21 1.3 \
    "$atomic prepare -q --no-hook-check --xid t $work/small.yaml && $atomic commit -q --xid t" \
    "$atomic apply -q $work/small.yaml"
template2=$repos/template2
cp -a "$template" "$template2"
git init -q "$template2/part"
git -C "$template2/part" commit -q --allow-empty -m init
part_commit=$(git -C "$template2/part" rev-parse HEAD)
printf 'refs:\n  - update: refs/heads/x\n    to: %s\nfiles:\n  - write: f.txt\n    content: "hello\\n"\n' \
    "$part_commit" >"$work/part.yaml"
{
    cat "$work/small.yaml"
    printf 'repositories:\n  - path: part\n    refs:\n      - update: refs/heads/x\n        to: %s\n' "$part_commit"
    printf '    files:\n      - write: f.txt\n        content: "hello\\n"\n'
} >"$work/two.yaml"
tmpl=$template2
pair "two-phase: 2 repositories 1+1 vs halves in turn" 21 2.2 "$atomic apply -q $work/two.yaml" \
    "$atomic apply -q $work/small.yaml && cd part && $atomic apply -q $work/part.yaml"
tmpl=

# The same small batch in a repository used before, as an editor integration uses one: git-atomic's
# own directories exist, and only the batch's files are new. Runs alternate two batches (v0 / v1).
for v in 0 1; do
    c=$([ $v = 0 ] && echo "$commit" || echo "$commit2")
    printf 'refs:\n  - update: refs/heads/x\n    to: %s\nfiles:\n  - write: f.txt\n    content: "v%s\\n"\n' \
        "$c" "$v" >"$work/small-$v.yaml"
done
pick='n=$(($1 % 2)); c=('"$commit $commit2"'); '
steady_script=$pick'printf "v$n\n" > .f.txt.tmp && sync .f.txt.tmp && mv .f.txt.tmp f.txt && sync . && printf "update refs/heads/x ${c[n]}\n" | git update-ref --stdin'
steady_nosync=$pick'printf "v$n\n" > .f.txt.tmp && mv .f.txt.tmp f.txt && printf "update refs/heads/x ${c[n]}\n" | git update-ref --stdin'
steady "1+1, repository used before" 21 1.2 "$atomic apply -q $work/small-\$((\$1 % 2)).yaml" "$steady_script"
steady "1+1, used before, atomic.fsync=false" 21 1.1 \
    "$nofsync $atomic apply -q $work/small-\$((\$1 % 2)).yaml" "$steady_nosync"

gen m100 100 100
pair "100 refs + 100 files" 11 1.2 "$atomic apply -q $work/m100/batch.yaml" "$baseline run $work/m100/plan"

# An editor's rename touching 1,000 files (3 edits each, 50 dirs) as an LSP WorkspaceEdit, against
# the same change as a plain batch of `write` entries. Both read their input through the same sed
# pipe (A's points the edit's URIs at the run's fresh copy; B's has none to change), so the pipe
# costs both sides alike; B's batch has no `expect` (--lsp adds one per file).
if want "lsp rename"; then
    tmpl=$repos/lsp-template
    cp -a "$template" "$tmpl"
    python3 "$here/bench/lsp_rename.py" "$tmpl" "$work/lsp" 1000
    git -C "$tmpl" add -A && git -C "$tmpl" commit -q -m files
    pair "lsp rename, 1,000 files: --lsp vs write batch" 11 1.2 \
        "sed \"s|file:///ROOT|file://\$PWD|g\" $work/lsp/edit.json | $atomic apply --lsp -q -" \
        "sed \"s|file:///ROOT|file://\$PWD|g\" $work/lsp/batch.json | $atomic apply -q -"
    tmpl=
    rm -rf "$repos/lsp-template"
fi
[ "$mode" = full ] || exit 0

gen m10k 10000 10000
pair "10,000 refs + 10,000 files" 3 1.2 "$atomic apply -q $work/m10k/batch.yaml" "$baseline run $work/m10k/plan"
pair "10,000 + 10,000, atomic.fsync=false" 3 1.1 \
    "$nofsync $atomic apply -q $work/m10k/batch.yaml" "$baseline run $work/m10k/plan --no-fsync"
pair "two-phase: prepare+commit 10k+10k vs apply" 3 1.3 \
    "$atomic prepare -q --no-hook-check --xid t $work/m10k/batch.yaml && $atomic commit -q --xid t" \
    "$atomic apply -q $work/m10k/batch.yaml"
want "100,000" || want scaling || exit 0
gen r100k 100000 0
pair "100,000 refs" 3 1.1 "$atomic apply -q $work/r100k/batch.yaml" \
    "git update-ref --stdin < $work/r100k/plan.refs"
# Where the difference goes: git-atomic gives git every old value (here: must not exist) and syncs
# the refs. B2 is update-ref given the same old values, A2 git-atomic without the sync.
zero=$(printf '%040d' 0)
awk -v z="$zero" '{print $0, z}' "$work/r100k/plan.refs" >"$work/r100k/plan.cas"
pair "100,000 refs, fsync=false vs update-ref, old values" 3 1.1 \
    "$nofsync $atomic apply -q $work/r100k/batch.yaml" "git update-ref --stdin < $work/r100k/plan.cas"

# History (issue 17): the same batch with history on (A) and off (B, atomic.history=false), with
# fsync, in a copy of the template where the batch was applied once already (without history),
# so that every put replaces a file and keeps it as a pre-image.
nohist='GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=atomic.history GIT_CONFIG_VALUE_0=false'
# with_template DIR CMD: the template for the next case is a copy with CMD run in it.
with_template() {
    rm -rf "$repos/tpl"
    cp -a "$base_template" "$repos/tpl"
    (cd "$repos/tpl" && bash -c "$1" >/dev/null 2>&1) || { echo "failed: $1" >&2; exit 1; }
    template=$repos/tpl
}
base_template=$template
for spec in "1 ref + 1 file:small.yaml:21" "100 refs + 100 files:m100/batch.yaml:11" \
    "10,000 + 10,000:m10k/batch.yaml:3"; do
    IFS=: read -r label file runs <<<"$spec"
    want "history, $label" || continue
    with_template "$nohist $atomic apply -q $work/$file"
    pair "history, $label" "$runs" 1.1 "$atomic apply -q $work/$file" "$nohist $atomic apply -q $work/$file"
    fresh
    (cd "$run" && "$atomic" apply -q "$work/$file" >/dev/null)
    echo "  log entry of '$label': $(du -sk "$run/.git/atomic/log" | cut -f1) KiB on disk," \
        "journal $(cat "$run"/.git/atomic/log/*/journal | wc -c) bytes, $(ls "$run"/.git/atomic/log/* | wc -l) files"
    clean
    template=$base_template
done
# Undo of a 10,000 + 10,000 batch (A, in a copy where it was applied) against its apply (B).
if want "undo"; then
    us=() as=() rs=()
    with_template "$atomic apply -q $work/m10k/batch.yaml"
    undo_template=$template
    for ((i = 0; i < 3; i++)); do
        template=$undo_template
        tu=$(timed "$atomic" undo -q)
        template=$base_template
        ta=$(timed "$atomic" apply -q "$work/m10k/batch.yaml")
        us+=("$tu") as+=("$ta") rs+=("$(awk -v x="$tu" -v y="$ta" 'BEGIN {printf "%.4f", x/y}')")
    done
    report "undo of 10,000 + 10,000 vs its apply" 1.2 "${us[*]}" "${as[*]}" "${rs[*]}"
    clean
    template=$base_template
fi

want scaling || exit 0
echo
echo "scaling (half refs, half files; A = git-atomic, B = baseline):"
scale_a=() scale_b=()
for n in 500 5000 50000; do
    gen "s$n" "$n" "$n"
    pair "$((2 * n)) entries" 3 1.2 "$atomic apply -q $work/s$n/batch.yaml" "$baseline run $work/s$n/plan"
    scale_a+=("$last_a") scale_b+=("$last_b")
done
for i in 0 1; do
    awk -v from=$((1000 * 10 ** i)) -v a0="${scale_a[i]}" -v a1="${scale_a[i + 1]}" -v b0="${scale_b[i]}" \
        -v b1="${scale_b[i + 1]}" 'BEGIN {printf "  %d -> %d entries: A %.1fx, B %.1fx (bar 11x)  %s\n",
        from, from * 10, a1 / a0, b1 / b0, (a1 / a0 <= 11) ? "ok" : "OVER"}'
done

echo
gen mem 100000 10000
fresh
rss=$(cd "$run" && /usr/bin/time -f %M "$atomic" apply -q "$work/mem/batch.yaml" 2>&1 >/dev/null | tail -1)
awk -v k="$rss" 'BEGIN {printf "peak RSS, 100,000 refs + 10,000 files: %.1f MiB (bar 100 MiB)\n", k/1024}'
clean

rec_a=() rec_r=()
for ((i = 0; i < 3; i++)); do
    rec_a+=("$(timed "$atomic" apply -q "$work/m10k/batch.yaml")")
    fresh
    # The crash point SIGKILLs git-atomic itself; the inner shell's "Killed" notice is dropped.
    bash -c 'cd "$1" && GIT_TEST_ATOMIC_CRASH=committed "$2" apply -q "$3"; exit 0' _ "$run" "$atomic" \
        "$work/m10k/batch.yaml" >/dev/null 2>&1 || true
    sync
    t0=$(date +%s%N)
    (cd "$run" && "$atomic" recover >/dev/null)
    t1=$(date +%s%N)
    rec_r+=($(((t1 - t0) / 1000)))
    clean
done
ra=$(printf '%s\n' "${rec_a[@]}" | median)
rr=$(printf '%s\n' "${rec_r[@]}" | median)
awk -v r="$rr" -v a="$ra" \
    'BEGIN {printf "recovery of an interrupted 10,000 + 10,000 batch: %.1f ms vs apply %.1f ms, ratio %.3f (bar 1.0)\n", r/1000, a/1000, r/a}'
