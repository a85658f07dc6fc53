-- ../get_token.js in Lua, line for line:
--   outbound_auth:
--     strategy: lua
--     lua: {source: examples/lua_ports/get_token.lua, allowed_hosts: [auth.example.com], env: [CLIENT_ID, CLIENT_SECRET]}
local resp = ctx.fetch("https://auth.example.com/token", {
  method = "POST",
  body = json_encode({ client_id = ctx.env.CLIENT_ID, client_secret = ctx.env.CLIENT_SECRET }),
  headers = { ["Content-Type"] = "application/json" },
})
return "Bearer " .. json_decode(resp.body).access_token
