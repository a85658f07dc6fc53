-- Inbound authentication example for
--   inbound_auth: {strategy: lua, lua: {source: scripts/validate_token.lua, timeout: 100ms}}
--
-- Globals: `headers` (case-insensitive: headers["Authorization"] == headers["authorization"]),
-- `method`, `path`, and `params` (the config's `lua.params` map; put secrets there through ${ENV}).
-- Return false to deny (401), or true plus an optional claims table that becomes the caller's
-- identity: `sub` is the subject, `scope` a space-separated string or a list, anything else is kept
-- as a claim for authorization rules. An error, a timeout or running out of memory also denies.
--
-- This example accepts bearer tokens shaped "<subject>.<opaque part>" and gives callers listed in
-- params.admins (space-separated) the "tools:write" scope. Replace the checks with your own.

local token = headers["Authorization"]
if type(token) ~= "string" or token:sub(1, 7) ~= "Bearer " or #token <= 20 then
  return false
end

local subject = token:match("^Bearer ([%w_-]+)%.[%w_.~+/=-]+$")
if not subject then
  return false
end

local scopes = { "tools:read" }
for admin in (params.admins or ""):gmatch("%S+") do
  if admin == subject then
    scopes[#scopes + 1] = "tools:write"
  end
end

return true, { sub = subject, scope = scopes, auth_method = "lua-example" }
