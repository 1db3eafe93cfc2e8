#!/bin/sh
# Records the WorkspaceEdits real language servers answer, into tests/fixtures/lsp/*/server.json
# (with meta.json naming the server and its version). Run by hand, once; CI only reads the
# committed fixtures. Needs network: installs the servers from npm and PyPI into a temp dir.
#   tests/lsp/record.sh            # every case
# Afterwards, tests/lsp/reference.py writes each case's after/ (the independent reference applier).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../fixtures/lsp"
tools=${LSP_TOOLS:-$(mktemp -d)}

npm install --prefix "$tools/npm" --no-audit --no-fund typescript-language-server "typescript@5" >/dev/null
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q python-lsp-server jedi-language-server

ts_version=$("$tools/npm/node_modules/.bin/typescript-language-server" --version)
tsc_version=$("$tools/npm/node_modules/.bin/tsc" --version | sed 's/Version //')
pylsp_version=$("$tools/venv/bin/pylsp" --version 2>&1 | sed 's/.* v//')
jls_version=$("$tools/venv/bin/pip" show jedi-language-server | sed -n 's/^Version: //p')
jedi_version=$("$tools/venv/bin/pip" show jedi | sed -n 's/^Version: //p')

for case in ts-rename-symbol ts-rename-file ts-move-to-file; do
    python3 "$here/drive.py" "$fixtures/$case" typescript-language-server "$ts_version, typescript $tsc_version" -- \
        "$tools/npm/node_modules/.bin/typescript-language-server" --stdio
done
python3 "$here/drive.py" "$fixtures/pylsp-rename-symbol" python-lsp-server "$pylsp_version, jedi $jedi_version" -- \
    "$tools/venv/bin/pylsp"
for case in jedi-rename-symbol jedi-rename-module; do
    python3 "$here/drive.py" "$fixtures/$case" jedi-language-server "$jls_version, jedi $jedi_version" -- \
        "$tools/venv/bin/jedi-language-server"
done
python3 "$here/reference.py" "$fixtures"
[ -n "${LSP_TOOLS:-}" ] || rm -rf "$tools"
