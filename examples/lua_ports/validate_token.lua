-- ../validate_token.js in Lua, line for line:
--   inbound_auth: {strategy: lua, lua: {source: examples/lua_ports/validate_token.lua}}
local token = headers["Authorization"] or ""
if token:sub(1, 7) ~= "Bearer " then return false end
-- custom HMAC or structural check
return #token > 20
