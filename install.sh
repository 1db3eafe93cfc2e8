#!/usr/bin/env bash
# Build git-atomic and install it, its man page, shell completions and hook script under a
# prefix; or remove exactly what an earlier install put there (--uninstall).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: ./install.sh [--prefix DIR] [--profile PROFILE] [--uninstall]

Builds git-atomic (cargo build --profile PROFILE, default release) and installs:
  DIR/bin/git-atomic
  DIR/share/man/man1/git-atomic.1
  DIR/share/bash-completion/completions/git-atomic
  DIR/share/zsh/site-functions/_git-atomic
  DIR/share/fish/vendor_completions.d/git-atomic.fish
  DIR/share/git-atomic/hooks/reference-transaction
  DIR/share/git-atomic/manifest  (what --uninstall removes)

  --prefix DIR, --prefix=DIR   where to install (default: $HOME/.local)
  --profile PROFILE            cargo profile: release (default) or dist (fat LTO: a much
                               longer build for a slightly faster binary; see README)
  --uninstall                  remove what install.sh installed under DIR, and the
                               directories it created that are now empty
  -h, --help                   show this help

GIT_ATOMIC_INSTALL_BINARY=PATH installs that binary instead of building one.
EOF
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

prefix="${HOME:-}/.local"
profile=release
uninstall=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix | --profile)
            [ $# -ge 2 ] || { echo "install.sh: $1 needs a value" >&2; usage >&2; exit 2; }
            if [ "$1" = --prefix ]; then prefix="$2"; else profile="$2"; fi
            shift 2
            ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        --profile=*) profile="${1#--profile=}"; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *)
            echo "install.sh: unknown argument '$1'" >&2
            usage >&2
            exit 2
            ;;
    esac
done
[ -n "$prefix" ] && [ "$prefix" != /.local ] || { echo "install.sh: HOME is not set; pass --prefix DIR" >&2; exit 2; }
case "$prefix" in /*) ;; *) prefix="$PWD/$prefix" ;; esac
prefix="${prefix%/}"

# What install puts under the prefix; the manifest lists these and the directories it made.
manifest_rel=share/git-atomic/manifest
manifest="$prefix/$manifest_rel"

# Removes the files the manifest lists, then the directories install created, deepest first,
# when empty: the prefix is left as it was before the first install.
do_uninstall() {
    [ -f "$manifest" ] || die "nothing to uninstall: no $manifest (install.sh writes it)"
    local kind rel dirs=()
    while read -r kind rel; do
        case "$kind" in
            file) rm -f -- "$prefix/$rel" && echo "removed $prefix/$rel" ;;
            dir) dirs+=("$rel") ;;
        esac
    done <"$manifest"
    rm -f -- "$manifest"
    [ ${#dirs[@]} -eq 0 ] && return 0
    # Reverse order puts a directory's children before it.
    printf '%s\n' "${dirs[@]}" | sort -r | while read -r rel; do
        rmdir -- "$prefix/$rel" 2>/dev/null || true
    done
}

if [ "$uninstall" = 1 ]; then
    do_uninstall
    exit 0
fi

command -v git >/dev/null 2>&1 ||
    die "git not found on PATH; git-atomic is a git subcommand: install git first"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if [ -n "${GIT_ATOMIC_INSTALL_BINARY:-}" ]; then
    binary="$GIT_ATOMIC_INSTALL_BINARY"
else
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found on PATH; install the Rust toolchain (https://rustup.rs) first"
    locked=()
    [ -f Cargo.lock ] && locked=(--locked)
    cargo build --profile "$profile" "${locked[@]}"
    # Honour CARGO_TARGET_DIR if the caller set one, as cargo did; the dev profile builds to debug/.
    dir="$profile"
    [ "$profile" = dev ] && dir=debug
    binary="${CARGO_TARGET_DIR:-$here/target}/$dir/git-atomic"
fi
[ -x "$binary" ] || die "no executable git-atomic at $binary"

# Directories install.sh created, kept across runs so that reinstalling gives the same manifest.
declare -A created=()
if [ -f "$manifest" ]; then
    while read -r kind rel; do [ "$kind" = dir ] && created[$rel]=1; done <"$manifest"
fi
files=()

# Creates the directory (relative to the prefix) and each missing parent, remembering which.
make_dir() {
    local rel="$1" path=""
    local IFS=/
    for part in $rel; do
        path="${path:+$path/}$part"
        if [ ! -d "$prefix/$path" ]; then
            mkdir -p -- "$prefix/$path"
            created[$path]=1
        fi
    done
}

# put MODE SOURCE REL: installs SOURCE as PREFIX/REL.
put() {
    make_dir "$(dirname "$3")"
    install -m "$1" -- "$2" "$prefix/$3"
    files+=("$3")
    echo "installed $prefix/$3"
}

[ -d "$prefix" ] || { mkdir -p -- "$prefix"; }
put 755 "$binary" bin/git-atomic
put 644 man/git-atomic.1 share/man/man1/git-atomic.1
put 755 hooks/reference-transaction share/git-atomic/hooks/reference-transaction
# Completions come from the binary itself, so they match its command line exactly.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$binary" completions bash >"$tmp/bash"
"$binary" completions zsh >"$tmp/zsh"
"$binary" completions fish >"$tmp/fish"
put 644 "$tmp/bash" share/bash-completion/completions/git-atomic
put 644 "$tmp/zsh" share/zsh/site-functions/_git-atomic
put 644 "$tmp/fish" share/fish/vendor_completions.d/git-atomic.fish

make_dir "$(dirname "$manifest_rel")"
{
    printf 'file %s\n' "${files[@]}" "$manifest_rel"
    for rel in "${!created[@]}"; do printf 'dir %s\n' "$rel"; done | sort
} >"$manifest.tmp"
mv -- "$manifest.tmp" "$manifest"

# Where each tool looks, and what to add when the prefix is not one of those places.
bindir="$prefix/bin"
case ":${PATH:-}:" in
    *":$bindir:"*) ;;
    *)
        echo
        echo "note: $bindir is not on your PATH, so 'git atomic' will not find git-atomic yet."
        echo "      add this line to your shell profile (~/.profile, ~/.bashrc):"
        echo "        export PATH=\"$bindir:\$PATH\""
        ;;
esac
# man (and so 'git help atomic') finds PREFIX/share/man from PREFIX/bin on PATH unless MANPATH is set.
case ":${MANPATH:-}:" in
    "::" | *":$prefix/share/man:"*) ;;
    *) echo "note: MANPATH is set; add $prefix/share/man to it for 'git help atomic'." ;;
esac
# bash-completion and fish look in ~/.local/share and in XDG_DATA_DIRS; zsh in its fpath.
case ":${XDG_DATA_DIRS:-/usr/local/share:/usr/share}:" in
    *":$prefix/share:"*) ;;
    *)
        [ "$prefix" = "${HOME:-}/.local" ] ||
            echo "note: for bash and fish completions, add $prefix/share to XDG_DATA_DIRS."
        ;;
esac
case "$prefix" in
    /usr | /usr/local) ;;
    *) echo "note: for zsh completions, add to ~/.zshrc: fpath=($prefix/share/zsh/site-functions \$fpath)" ;;
esac
