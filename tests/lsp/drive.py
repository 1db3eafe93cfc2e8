#!/usr/bin/env python3
"""Drive one language server over stdio once and record the WorkspaceEdit it answers.

usage: drive.py CASE_DIR SERVER_NAME SERVER_VERSION -- SERVER_CMD...

CASE_DIR/before/ holds the workspace; CASE_DIR/request.json names the request:
  {"method": "textDocument/rename", "file": "src/util.ts", "line": 0, "character": 17,
   "newName": "welcomeUser", "language": "typescript"}
  {"method": "workspace/willRenameFiles", "file": "src/util.ts", "to": "src/helpers.ts", ...}
Writes CASE_DIR/server.json (the server's answer, URIs under file:///ROOT) and CASE_DIR/meta.json.
"""
import json, os, shutil, subprocess, sys, tempfile, threading

case, name, version = sys.argv[1], sys.argv[2], sys.argv[3]
cmd = sys.argv[sys.argv.index("--") + 1:]
req = json.load(open(os.path.join(case, "request.json")))
work = tempfile.mkdtemp(prefix="lsprec")
root = os.path.join(work, "ws")
shutil.copytree(os.path.join(case, "before"), root)
root_uri = "file://" + root

def uri(rel):
    from urllib.parse import quote
    return "file://" + quote(os.path.join(root, rel))

proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=root)
lock = threading.Lock()
next_id = [0]
applied_edits = []  # workspace/applyEdit requests the server sent us

def send(msg):
    body = json.dumps(msg).encode()
    proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    proc.stdin.flush()

def read():
    length = None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("server closed its output")
        if line in (b"\r\n", b"\n"):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    raw = proc.stdout.read(length).decode("utf-8")
    msg = json.loads(raw)
    msg["__raw"] = raw
    return msg

def request(method, params):
    next_id[0] += 1
    mine = next_id[0]
    send({"jsonrpc": "2.0", "id": mine, "method": method, "params": params})
    while True:
        msg = read()
        if msg.get("id") == mine and "method" not in msg:
            if "error" in msg:
                raise SystemExit(f"{method}: {msg['error']}")
            return msg
        if "method" in msg and "id" in msg:  # a request from the server: answer it plainly
            result = None
            if msg["method"] == "workspace/applyEdit":
                applied_edits.append(msg)
                result = {"applied": True}
            if msg["method"] == "workspace/configuration":
                result = [None] * len(msg["params"]["items"])
            send({"jsonrpc": "2.0", "id": msg["id"], "result": result})

caps = {
    "workspace": {
        "workspaceEdit": {"documentChanges": True, "resourceOperations": ["create", "rename", "delete"],
                          "failureHandling": "transactional"},
        "fileOperations": {"willRename": True},
        "applyEdit": True, "configuration": True,
    },
    "textDocument": {"rename": {"prepareSupport": False}, "synchronization": {}},
    "general": {"positionEncodings": ["utf-16"]},
}
init = request("initialize", {"processId": os.getpid(), "rootUri": root_uri, "rootPath": root,
                              "workspaceFolders": [{"uri": root_uri, "name": "ws"}], "capabilities": caps,
                              "initializationOptions": req.get("initializationOptions", {})})
init = init["result"]
send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
for rel in req.get("open", [req["file"]]):
    text = open(os.path.join(root, rel), encoding="utf-8", newline="").read()
    send({"jsonrpc": "2.0", "method": "textDocument/didOpen",
          "params": {"textDocument": {"uri": uri(rel), "languageId": req["language"], "version": 1, "text": text}}})
if req["method"] == "codeAction":
    params = {"textDocument": {"uri": uri(req["file"])},
              "range": {"start": {"line": req["line"], "character": 0}, "end": {"line": req["endLine"], "character": 0}},
              "context": {"diagnostics": [], "only": ["refactor"]}}
elif req["method"] == "textDocument/rename":
    params = {"textDocument": {"uri": uri(req["file"])},
              "position": {"line": req["line"], "character": req["character"]}, "newName": req["newName"]}
else:
    params = {"files": [{"oldUri": uri(req["file"]), "newUri": uri(req["to"])}]}
import time
time.sleep(req.get("settle", 1))
if req["method"] == "codeAction":
    # Run the action titled req["title"]; what the server then asks us to apply is the edit.
    actions = request("textDocument/codeAction", params)["result"] or []
    action = next(a for a in actions if a.get("title") == req["title"])
    command = action.get("command") or {}
    if isinstance(command, dict) and command.get("command"):
        request("workspace/executeCommand", {"command": command["command"], "arguments": command.get("arguments", [])})
    time.sleep(1)
    answer = applied_edits[-1]
    answer["__raw"] = answer["__raw"].replace('"params"', '"result"', 1)
    result = answer["params"]
else:
    answer = request(req["method"], params)
    result = answer.get("result")
try:
    request("shutdown", None)
    send({"jsonrpc": "2.0", "method": "exit"})
    proc.wait(timeout=10)
except Exception:
    proc.kill()
if not result:
    raise SystemExit(f"{case}: the server answered nothing")
# The answer exactly as the server wrote it (pylsp writes '/' as '\\/'), root replaced.
raw = answer["__raw"]
start = raw.index(":", raw.index('"result"')) + 1
while raw[start] in " \t\r\n":
    start += 1
_, end = json.JSONDecoder().raw_decode(raw, start)
text = raw[start:end].replace("file://" + root, "file:///ROOT")
text = text.replace("file:" + ("//" + root).replace("/", "\\/"), "file:\\/\\/\\/ROOT")
assert root not in text.replace("\\/", "/"), "the root was not replaced everywhere"
open(os.path.join(case, "server.json"), "w", encoding="utf-8").write(text + "\n")
json.dump({"server": name, "version": version, "request": req["method"],
           # What the server's columns really count, when it is not what it announces.
           "encoding": req.get("positionEncoding") or (init.get("capabilities") or {}).get("positionEncoding", "utf-16")},
          open(os.path.join(case, "meta.json"), "w"), indent=1)
# Files the server made on disk itself (TypeScript's "Move to a new file" does): the edit
# arrives when they exist, so they belong to the state before it.
made = []
for dirpath, _, names in os.walk(root):
    for file in names:
        rel = os.path.relpath(os.path.join(dirpath, file), root)
        if not os.path.exists(os.path.join(case, "before", rel)) and not rel.startswith("node_modules"):
            os.makedirs(os.path.dirname(os.path.join(case, "before", rel)), exist_ok=True)
            shutil.copy(os.path.join(root, rel), os.path.join(case, "before", rel))
            made.append(rel)
if made:
    meta = json.load(open(os.path.join(case, "meta.json")))
    meta["made_by_server"] = made
    json.dump(meta, open(os.path.join(case, "meta.json"), "w"), indent=1)
shutil.rmtree(work)
print(f"recorded {case} from {name} {version}")
