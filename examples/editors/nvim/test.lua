-- Headless test of git_atomic.lua (tests/editor_neovim.rs runs it in a scratch repository):
--   nvim --headless --clean -c "luafile examples/editors/nvim/test.lua"
-- Exits 0 when every check holds, 1 with the failure on stderr otherwise.
local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
package.path = here .. "/lua/?.lua;" .. package.path
local git_atomic = require("git_atomic")

local notes = {}
git_atomic.setup({ notify = function(msg) table.insert(notes, msg) end })
local root = vim.fn.getcwd()
local function uri(path) return vim.uri_from_fname(root .. "/" .. path) end
local function read(path) return table.concat(vim.fn.readfile(root .. "/" .. path), "\n") end
local function edit(line, from, to, text)
  return { range = { start = { line = line, character = from }, ["end"] = { line = line, character = to } }, newText = text }
end
local function check(cond, what) if not cond then error(what, 2) end end
local apply_edit = vim.lsp.handlers["workspace/applyEdit"]
local ctx = { client_id = 0, method = "workspace/applyEdit" }

local function run()
  -- A saved buffer: the edit goes through git-atomic, the buffer is reloaded, the renamed
  -- file's buffer follows it.
  vim.cmd("edit a.txt")
  local a = vim.api.nvim_get_current_buf()
  vim.cmd("edit b.txt")
  local b = vim.api.nvim_get_current_buf()
  local result = apply_edit(nil, { label = "rename x", edit = { documentChanges = {
    { textDocument = { uri = uri("a.txt"), version = 1 }, edits = { edit(0, 6, 7, "y😀") } },
    { kind = "rename", oldUri = uri("b.txt"), newUri = uri("c.txt") },
    { textDocument = { uri = uri("c.txt"), version = vim.NIL }, edits = { edit(0, 0, 1, "Z") } },
  } } }, ctx)
  check(result.applied == true, "applied: " .. vim.inspect(result))
  check(read("a.txt") == "alpha y😀 = 1", "a.txt on disk: " .. read("a.txt"))
  check(vim.api.nvim_buf_get_lines(a, 0, -1, false)[1] == "alpha y😀 = 1", "a.txt's buffer reloaded")
  check(vim.fn.filereadable(root .. "/b.txt") == 0 and read("c.txt") == "Zeta", "b.txt renamed to c.txt and edited")
  check(vim.api.nvim_buf_get_name(b) == root .. "/c.txt", "b.txt's buffer follows the rename")
  check(vim.api.nvim_buf_get_lines(b, 0, -1, false)[1] == "Zeta", "c.txt's buffer reloaded")

  -- A refusal: nothing changes, and the server hears which change failed and why. The column is
  -- inside the emoji's surrogate pair (UTF-16).
  result = apply_edit(nil, { edit = { documentChanges = {
    { textDocument = { uri = uri("a.txt"), version = 2 }, edits = { edit(0, 0, 1, "A") } },
    { textDocument = { uri = uri("c.txt"), version = 2 }, edits = { edit(0, 0, 1, "z"), edit(0, 0, 2, "q") } },
  } } }, ctx)
  check(result.applied == false, "overlap refused: " .. vim.inspect(result))
  check(result.failedChange == 1, "failedChange: " .. vim.inspect(result))
  check(result.failureReason:find("overlap") ~= nil, "failureReason: " .. vim.inspect(result))
  check(read("a.txt") == "alpha y😀 = 1", "a.txt untouched after the refusal")

  -- An unsaved buffer: git-atomic would overwrite it, so Neovim applies the edit itself and says why.
  vim.api.nvim_buf_set_lines(a, 0, -1, false, { "unsaved" })
  result = apply_edit(nil, { edit = { changes = { [uri("a.txt")] = { edit(0, 0, 2, "UN") } } } }, ctx)
  check(result.applied == true, "fallback applied: " .. vim.inspect(result))
  check(#notes == 1 and notes[1]:find("unsaved changes") ~= nil, "says why: " .. vim.inspect(notes))
  check(vim.api.nvim_buf_get_lines(a, 0, -1, false)[1] == "UNsaved", "Neovim applied it to the buffer")
  check(read("a.txt") == "alpha y😀 = 1", "not to the file")
  vim.cmd("silent edit! a.txt")

  -- A rename result goes through git-atomic too.
  vim.lsp.handlers["textDocument/rename"](nil, { changes = { [uri("c.txt")] = { edit(0, 0, 4, "Eta") } } },
    { client_id = 0, method = "textDocument/rename" }, {})
  check(read("c.txt") == "Eta", "rename applied: " .. read("c.txt"))
end

local ok, err = pcall(run)
if ok then
  io.stdout:write("neovim: every check holds\n")
  vim.cmd("qall!")
else
  io.stderr:write("neovim test failed: " .. tostring(err) .. "\n")
  vim.cmd("cquit 1")
end
