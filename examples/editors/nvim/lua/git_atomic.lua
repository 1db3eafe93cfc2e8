-- git_atomic: Neovim applies a language server's WorkspaceEdit all-or-nothing through
-- `git atomic apply --lsp --json` (a rename across files, "move to file", a module rename), and
-- answers `workspace/applyEdit` with its applied/failureReason/failedChange.
--
--   require("git_atomic").setup()            -- in init.lua; Neovim 0.7 or later
--
-- The edit applies to the files on disk, so every buffer it touches must be saved. When one is
-- not, the module says so and falls back to Neovim's own (file by file) apply. Afterwards the
-- touched buffers are reloaded from disk.
local M = {}

M.opts = {
  -- The command; `git -C <root>` is put in front of it.
  cmd = { "atomic", "apply", "--lsp", "--json" },
  git = "git",
  -- Say why an edit falls back to Neovim's own apply.
  notify = function(msg, level) vim.notify(msg, level or vim.log.levels.WARN) end,
}

local function uri_to_fname(uri) return vim.uri_to_fname(uri) end

-- Every file URI the edit touches, in order.
local function touched_uris(edit)
  local uris = {}
  if edit.documentChanges then
    for _, change in ipairs(edit.documentChanges) do
      if change.textDocument then table.insert(uris, change.textDocument.uri)
      elseif change.kind == "rename" then table.insert(uris, change.oldUri); table.insert(uris, change.newUri)
      elseif change.uri then table.insert(uris, change.uri) end
    end
  elseif edit.changes then
    for uri, _ in pairs(edit.changes) do table.insert(uris, uri) end
  end
  return uris
end

-- The loaded buffer of a file, if any.
local function buffer_of(uri)
  local bufnr = vim.fn.bufnr(uri_to_fname(uri))
  if bufnr ~= -1 and vim.api.nvim_buf_is_loaded(bufnr) then return bufnr end
  return nil
end

-- The first touched buffer with unsaved changes: why git-atomic cannot apply the edit.
local function unsaved(edit)
  for _, uri in ipairs(touched_uris(edit)) do
    local bufnr = buffer_of(uri)
    if bufnr and vim.api.nvim_buf_get_option(bufnr, "modified") then return uri_to_fname(uri) end
  end
  return nil
end

-- Reloads the touched buffers from disk; a renamed file's buffer follows it.
local function reload(edit)
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.kind == "rename" then
      local bufnr = buffer_of(change.oldUri)
      if bufnr then vim.api.nvim_buf_set_name(bufnr, uri_to_fname(change.newUri)) end
    end
  end
  for _, uri in ipairs(touched_uris(edit)) do
    local bufnr = buffer_of(uri)
    if bufnr and vim.fn.filereadable(uri_to_fname(uri)) == 1 then
      vim.api.nvim_buf_call(bufnr, function() vim.cmd("silent edit!") end)
    end
  end
end

local function root_of(client)
  return (client and client.config and client.config.root_dir) or vim.fn.getcwd()
end

--- Applies `edit` (a WorkspaceEdit) with git-atomic; returns LSP's ApplyWorkspaceEditResult.
--- `label` becomes the batch message; `client` gives the position encoding and the root.
function M.apply(edit, client, label)
  local file = unsaved(edit)
  local encoding = (client and client.offset_encoding) or "utf-16"
  if file then
    M.opts.notify("git-atomic: " .. file .. " has unsaved changes; Neovim applies this edit file by file")
    local ok, err = pcall(vim.lsp.util.apply_workspace_edit, edit, encoding)
    return { applied = ok, failureReason = (not ok) and tostring(err) or nil }
  end
  local cmd = { M.opts.git, "-C", root_of(client) }
  vim.list_extend(cmd, M.opts.cmd)
  vim.list_extend(cmd, { "--position-encoding", encoding })
  if label then vim.list_extend(cmd, { "-m", label }) end
  table.insert(cmd, "-")
  -- system() mixes stderr into the output: the result is the one line of JSON.
  local output = vim.fn.system(cmd, vim.fn.json_encode(edit))
  local ok, result = false, nil
  for _, line in ipairs(vim.split(output, "\n")) do
    if line:sub(1, 1) == "{" then
      ok, result = pcall(vim.fn.json_decode, line)
      break
    end
  end
  if not ok or type(result) ~= "table" or result.applied == nil then
    return { applied = false, failureReason = "git atomic failed: " .. vim.trim(output) }
  end
  if result.applied then reload(edit) end
  local failed = result.failedChange
  return {
    applied = result.applied,
    failureReason = result.failureReason ~= vim.NIL and result.failureReason or nil,
    failedChange = failed ~= vim.NIL and failed or nil,
  }
end

--- Routes `workspace/applyEdit` and rename results through git-atomic.
function M.setup(opts)
  M.opts = vim.tbl_extend("force", M.opts, opts or {})
  local default_rename = vim.lsp.handlers["textDocument/rename"]
  vim.lsp.handlers["workspace/applyEdit"] = function(_, params, ctx)
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    return M.apply(params.edit, client, params.label)
  end
  vim.lsp.handlers["textDocument/rename"] = function(err, result, ctx, config)
    if err or not result then return default_rename(err, result, ctx, config) end
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    local answer = M.apply(result, client, "rename")
    if not answer.applied then
      M.opts.notify("git-atomic: rename not applied: " .. (answer.failureReason or "?"), vim.log.levels.ERROR)
    end
  end
end

return M
