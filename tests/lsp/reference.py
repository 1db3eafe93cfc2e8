#!/usr/bin/env python3
"""The reference applier: applies each recorded WorkspaceEdit to its case's before/ and writes
after/, written apart from git-atomic's src/lsp (Python strings, UTF-16 by encoding) so that
tests/lsp.rs can compare the two. The rules beyond LSP are git-atomic's documented ones: in a
CRLF file a bare LF of new text becomes CRLF; a whole-file replacement of a file without a final
line ending keeps none; (line count, 0) of such a file is its end.

usage: reference.py FIXTURES_DIR      (every case with a server.json)
"""
import json, os, re, shutil, sys
from urllib.parse import unquote

ROOT = "file:///ROOT/"


def read_tree(top):
    files = {}
    for dirpath, _, names in os.walk(top):
        for name in names:
            full = os.path.join(dirpath, name)
            files[os.path.relpath(full, top)] = open(full, "rb").read()
    return files


def path_of(uri):
    assert uri.startswith(ROOT), uri
    return unquote(uri[len(ROOT):])


WIDTH = {
    "utf-16": lambda c: len(c.encode("utf-16-le")) // 2,
    "utf-32": lambda c: 1,
    "utf-8": lambda c: len(c.encode("utf-8")),
}


def offset(text, line, character, encoding):
    """Code-point offset of an LSP (line, character) position; characters count `encoding` units."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    if line == len(starts) and character == 0 and not text.endswith(("\n", "\r")):
        return len(text)
    start = starts[line]
    end_match = re.compile(r"\r\n|\r|\n").search(text, start)
    end = end_match.start() if end_match else len(text)
    units = 0
    for i in range(start, end + 1):
        if units == character:
            return i
        if i == end:
            break
        units += WIDTH[encoding](text[i])
    raise ValueError(f"position {line}:{character} is not on a character boundary of its line")


def apply_text(data, edits, encoding):
    text = data.decode("utf-8")
    crlf = bool(re.search(r"\r\n|\r|\n", text)) and re.search(r"\r\n|\r|\n", text).group() == "\r\n"
    spans = []
    for i, e in enumerate(edits):
        r = e["range"]
        s = offset(text, r["start"]["line"], r["start"]["character"], encoding)
        t = offset(text, r["end"]["line"], r["end"]["character"], encoding)
        spans.append((s, t, i, e["newText"]))
    spans.sort(key=lambda x: (x[0], x[1], x[2]))
    out, done = [], 0
    for s, t, _, new in spans:
        assert s >= done, "overlapping edits"
        out.append(text[done:s])
        if s == 0 and t == len(text) and text and not text.endswith(("\n", "\r")):
            new = re.sub(r"\r?\n$", "", new)
        if crlf:
            new = re.sub(r"(?<!\r)\n", "\r\n", new)
        out.append(new)
        done = t
    out.append(text[done:])
    return "".join(out).encode("utf-8")


def apply_edit(files, edit, encoding):
    if edit.get("documentChanges") is not None:
        changes = edit["documentChanges"]
    else:
        changes = [{"textDocument": {"uri": u}, "edits": e} for u, e in edit.get("changes", {}).items()]
    for ch in changes:
        opts = ch.get("options") or {}
        kind = ch.get("kind")
        if kind == "create":
            p = path_of(ch["uri"])
            if p in files and not opts.get("overwrite"):
                assert opts.get("ignoreIfExists"), p
                continue
            files[p] = b""
        elif kind == "rename":
            old, new = path_of(ch["oldUri"]), path_of(ch["newUri"])
            moving = {p: b for p, b in files.items() if p == old or p.startswith(old + "/")}
            assert moving, old
            if new in files and not opts.get("overwrite"):
                assert opts.get("ignoreIfExists"), new
                continue
            for p, b in moving.items():
                del files[p]
                files[new + p[len(old):]] = b
        elif kind == "delete":
            p = path_of(ch["uri"])
            for q in [q for q in files if q == p or q.startswith(p + "/")]:
                del files[q]
        else:
            p = path_of(ch["textDocument"]["uri"])
            files[p] = apply_text(files[p], ch["edits"], encoding)
    return files


def compose(case):
    """The edit given to git-atomic: the server's answer, or for a willRenameFiles request the
    answer followed by the rename itself (LSP: the client applies the edit, then renames)."""
    raw = open(os.path.join(case, "server.json"), encoding="utf-8").read()
    req = json.load(open(os.path.join(case, "request.json")))
    if req["method"] != "workspace/willRenameFiles":
        edit = json.loads(raw)
        return raw, edit.get("edit", edit)  # ApplyWorkspaceEditParams, from a code action
    answer = json.loads(raw)
    changes = answer.get("documentChanges") or [
        {"textDocument": {"uri": u, "version": None}, "edits": e} for u, e in answer.get("changes", {}).items()]
    changes.append({"kind": "rename", "oldUri": ROOT + req["file"], "newUri": ROOT + req["to"]})
    edit = {"documentChanges": changes}
    text = json.dumps(edit, indent=1, ensure_ascii=False) + "\n"
    open(os.path.join(case, "edit.json"), "w", encoding="utf-8").write(text)
    return text, edit


def main():
    top = sys.argv[1]
    for name in sorted(os.listdir(top)):
        case = os.path.join(top, name)
        if not os.path.exists(os.path.join(case, "server.json")):
            continue
        _, edit = compose(case)
        encoding = json.load(open(os.path.join(case, "meta.json")))["encoding"]
        files = apply_edit(read_tree(os.path.join(case, "before")), edit, encoding)
        after = os.path.join(case, "after")
        shutil.rmtree(after, ignore_errors=True)
        for p, b in files.items():
            os.makedirs(os.path.dirname(os.path.join(after, p)), exist_ok=True)
            open(os.path.join(after, p), "wb").write(b)
        print(f"reference: {name}: {len(files)} file(s) in after/")


main()
