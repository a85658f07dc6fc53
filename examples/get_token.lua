-- Outbound authentication example: an OAuth2 client credentials grant (RFC 6749 section 4.4).
--   outbound_auth:
--     strategy: lua
--     lua:
--       source: scripts/get_token.lua
--       allowed_hosts: [auth.example.com]   # fetch() may call these hosts only
--       timeout: 2s                         # bounds the whole run, fetch() included
--       params:
--         token_url: https://auth.example.com/oauth/token
--         client_id: ${CLIENT_ID}
--         client_secret: ${CLIENT_SECRET}
--         scope: read:data                  # optional
--
-- Globals: `params` (the config's `lua.params` map), `fetch(url, {method=, headers=, body=})`
-- returning {status=, headers=, body=}, `json_decode(string)` and `json_encode(value)`.
-- Return the Authorization header value, or a table of headers, and optionally a lifetime in
-- seconds: the gateway reuses the result for that long, and runs the script again after an
-- upstream 401. Error messages reach the tool's caller: never put a secret in them.

local function form_encode(fields)
  local parts = {}
  for name, value in pairs(fields) do
    local encoded = value:gsub("[^%w%-._~]", function(c)
      return string.format("%%%02X", c:byte())
    end)
    parts[#parts + 1] = name .. "=" .. encoded
  end
  table.sort(parts)
  return table.concat(parts, "&")
end

local response = fetch(params.token_url, {
  method = "POST",
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded", Accept = "application/json" },
  body = form_encode({
    grant_type = "client_credentials",
    client_id = params.client_id,
    client_secret = params.client_secret,
    scope = params.scope,
  }),
})
if response.status ~= 200 then
  local ok, problem = pcall(json_decode, response.body)
  local code = ok and type(problem) == "table" and problem.error or "no OAuth error code"
  error("token endpoint answered HTTP " .. response.status .. " (" .. tostring(code) .. ")", 0)
end

local token = json_decode(response.body)
if type(token.access_token) ~= "string" then
  error("token endpoint response has no access_token", 0)
end

-- Renew 30 seconds before the token expires.
local lifetime = tonumber(token.expires_in) or 300
return "Bearer " .. token.access_token, math.max(lifetime - 30, 1)
