#!/usr/bin/env python3
"""bench/run.sh's "lsp rename" case: N files in 50 directories under REPO, each naming `oldName`
three times, and in OUT the rename as an LSP WorkspaceEdit (`changes`, URIs under file:///ROOT)
and as the equivalent plain batch of `write` entries (JSON).

usage: lsp_rename.py REPO OUT N
"""
import json, os, sys

repo, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
changes, writes = {}, []
for i in range(n):
    path = f"d{i % 50:02d}/f{i:05d}.ts"
    lines = [f"// file {i}: padding to about a kibibyte " + "x" * 20 for _ in range(20)]
    lines[2] = "import { oldName } from './lib';"
    lines[9] = "export const a = oldName(1) + oldName(2);"
    old, new = "\n".join(lines) + "\n", None
    os.makedirs(os.path.join(repo, os.path.dirname(path)), exist_ok=True)
    open(os.path.join(repo, path), "w").write(old)
    edits = [(2, 9), (9, 17), (9, 30)]
    changes[f"file:///ROOT/{path}"] = [
        {"range": {"start": {"line": l, "character": c}, "end": {"line": l, "character": c + 7}}, "newText": "newName"}
        for l, c in edits]
    writes.append({"write": path, "content": old.replace("oldName", "newName")})
json.dump({"changes": changes}, open(os.path.join(out, "edit.json"), "w"))
json.dump({"message": "LSP workspace edit", "files": writes}, open(os.path.join(out, "batch.json"), "w"))
