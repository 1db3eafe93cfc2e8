#!/usr/bin/env bash
# Build git-atomic and install it, its man page and its hook script under a prefix.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: ./install.sh [--prefix DIR]

Builds git-atomic (cargo build --profile dist: release with LTO) and installs:
  DIR/bin/git-atomic
  DIR/share/man/man1/git-atomic.1
  DIR/share/git-atomic/hooks/reference-transaction

  --prefix DIR, --prefix=DIR   where to install (default: $HOME/.local)
  -h, --help                   show this help
EOF
}

prefix="${HOME:?HOME is not set; pass --prefix}/.local"
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix)
            [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; usage >&2; exit 2; }
            prefix="$2"
            shift 2
            ;;
        --prefix=*)
            prefix="${1#--prefix=}"
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "install.sh: unknown argument '$1'" >&2
            usage >&2
            exit 2
            ;;
    esac
done
[ -n "$prefix" ] || { echo "install.sh: --prefix must not be empty" >&2; exit 2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

command -v cargo >/dev/null 2>&1 || {
    echo "install.sh: cargo not found; install the Rust toolchain (https://rustup.rs) first" >&2
    exit 1
}

if [ -f Cargo.lock ]; then
    cargo build --profile dist --locked
else
    cargo build --profile dist
fi

# Honour CARGO_TARGET_DIR if the caller set one, as cargo did.
target_dir="${CARGO_TARGET_DIR:-$here/target}"
binary="$target_dir/dist/git-atomic"
[ -x "$binary" ] || { echo "install.sh: build produced no $binary" >&2; exit 1; }

bindir="$prefix/bin"
mandir="$prefix/share/man/man1"
hookdir="$prefix/share/git-atomic/hooks"

mkdir -p "$bindir" "$mandir" "$hookdir"
install -m 755 "$binary" "$bindir/git-atomic"
echo "installed $bindir/git-atomic"

if [ -f man/git-atomic.1 ]; then
    install -m 644 man/git-atomic.1 "$mandir/git-atomic.1"
    echo "installed $mandir/git-atomic.1"
else
    echo "install.sh: warning: man/git-atomic.1 is missing; man page not installed" >&2
fi

if [ -f hooks/reference-transaction ]; then
    install -m 755 hooks/reference-transaction "$hookdir/reference-transaction"
    echo "installed $hookdir/reference-transaction"
else
    echo "install.sh: warning: hooks/reference-transaction is missing; hook script not installed" >&2
fi

case ":${PATH:-}:" in
    *":$bindir:"*) ;;
    *)
        echo
        echo "note: $bindir is not on your PATH, so 'git atomic' will not find git-atomic yet."
        echo "      add this line to your shell profile (~/.profile, ~/.bashrc):"
        echo "        export PATH=\"$bindir:\$PATH\""
        ;;
esac
case ":${MANPATH:-}:" in
    "::" | *":$prefix/share/man:"*) ;;
    *) echo "note: MANPATH is set; add $prefix/share/man to it for 'git atomic --help'." ;;
esac
