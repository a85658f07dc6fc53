// A real OAuth 2 / OIDC server for the tests: oauth2-mock-server's service, plus
// what its CLI cannot do at run time: key rotation, per-token claims, a real
// token store behind /introspect and /revoke, client authentication, faults and
// outages. Driven by tests/support/idp.py.
//
//   node idp.mjs <node_modules dir>
//
// Prints one JSON line `{"port": N, "control_port": M}` when both listeners are up,
// then nothing else on stdout. The control API (JSON, 127.0.0.1 only):
//   POST /keys {alg}          add a signing key; new tokens use it; -> {kid}
//   POST /configure {...}     expires_in: token lifetime in seconds (default 3600)
//                             clients: {client_id: secret} checked at /token, /introspect
//                                      and /revoke (null: accept anything)
//                             json_grant: a JSON /token body without grant_type is a
//                                         client credentials grant (a custom token
//                                         service taking {client_id, client_secret})
//                             faults: {path: {status, body, delay_ms}} answered instead
//                                      of the real endpoint (status omitted: delay only)
//   POST /down, POST /up      close / reopen the OAuth listener (connection refused)
//   GET  /requests            every OAuth request: {method, path, auth_method, client_id, form}
//   POST /reset               forget configuration and recorded requests (keys stay)

import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Buffer } from "node:buffer";
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";

const nodeModules = process.argv[2];
const entry = createRequire(join(nodeModules, "_")).resolve("oauth2-mock-server");
const { OAuth2Issuer, OAuth2Service, Events } = await import(pathToFileURL(entry).href);

const issuer = new OAuth2Issuer();
const service = new OAuth2Service(issuer);
const state = { currentKid: undefined, expiresIn: 3600, clients: null, jsonGrant: false, faults: {}, requests: [] };
// Access tokens this server issued, by value: what /introspect looks up.
const issued = new Map();
const revoked = new Set();

// The library signs with its keys round-robin; a rotated-in key must sign every new token.
const keyStore = issuer.keys;
const storeGet = keyStore.get.bind(keyStore);
keyStore.get = (kid) => storeGet(kid ?? state.currentKid);

async function addKey(alg) {
  const jwk = await keyStore.generate(alg ?? "RS256");
  state.currentKid = jwk.kid;
  return jwk.kid;
}
await addKey("RS256");

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function sendJson(res, status, body) {
  const content = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(content) });
  res.end(content);
}

function clientCredentials(req, form) {
  const header = req.headers.authorization ?? "";
  if (header.toLowerCase().startsWith("basic ")) {
    const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return {
      method: "client_secret_basic",
      id: decodeURIComponent(decoded.slice(0, colon)),
      secret: decodeURIComponent(decoded.slice(colon + 1)),
    };
  }
  if (form.client_secret !== undefined) return { method: "client_secret_post", id: form.client_id, secret: form.client_secret };
  return { method: "none", id: form.client_id, secret: undefined };
}

function clientRejected(credentials) {
  if (state.clients === null) return null;
  const known = credentials.secret !== undefined && Object.hasOwn(state.clients, credentials.id ?? "");
  return known && state.clients[credentials.id] === credentials.secret
    ? null
    : { error: "invalid_client", error_description: "client authentication failed" };
}

// Custom claims come with the token request itself (`claims`, a JSON object; null
// deletes a claim), so concurrent token requests never see each other's claims.
service.on(Events.BeforeTokenSigning, (token, req) => {
  const form = req.body ?? {};
  const credentials = clientCredentials(req, form);
  const now = Math.floor(Date.now() / 1000);
  token.payload.exp = now + state.expiresIn;
  token.payload.jti = randomUUID(); // as real providers do: no two tokens are the same string
  if (credentials.id !== undefined) {
    token.payload.client_id ??= credentials.id;
    token.payload.sub ??= credentials.id;
  }
  if (typeof form.claims === "string") {
    for (const [name, value] of Object.entries(JSON.parse(form.claims))) {
      if (value === null) delete token.payload[name];
      else token.payload[name] = value;
    }
  }
});

service.on(Events.BeforeResponse, (response, req) => {
  const rejection = clientRejected(clientCredentials(req, req.body ?? {}));
  if (rejection !== null) {
    response.statusCode = 401;
    response.body = rejection;
    return;
  }
  response.body.expires_in = state.expiresIn;
  const token = response.body.access_token;
  const payload = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
  issued.set(token, payload);
});

service.on(Events.BeforeIntrospect, (response, req) => {
  const rejection = clientRejected(clientCredentials(req, req.body));
  if (rejection !== null) {
    response.statusCode = 401;
    response.body = rejection;
    return;
  }
  const payload = issued.get(req.body.token);
  const now = Math.floor(Date.now() / 1000);
  const active = payload !== undefined && !revoked.has(req.body.token) && (payload.exp ?? Infinity) > now;
  response.body = active ? { active: true, token_type: "Bearer", ...payload } : { active: false };
});

service.on(Events.BeforeRevoke, (response, req) => {
  if (clientRejected(clientCredentials(req, req.body)) !== null) {
    response.statusCode = 401;
    return;
  }
  revoked.add(req.body.token);
});

const serviceHandler = service.requestHandler;

function parseForm(req, raw) {
  if ((req.headers["content-type"] ?? "").includes("application/json")) return raw ? JSON.parse(raw) : {};
  return Object.fromEntries(new URLSearchParams(raw));
}

// The body is read here (to record it, and because the library's /introspect and
// /revoke handlers ignore it), then replayed to the library, which reads it again.
function replay(req, raw, form) {
  const copy = Readable.from([Buffer.from(raw)]);
  Object.assign(copy, { method: req.method, url: req.url, headers: req.headers, socket: req.socket, body: form });
  return copy;
}

const oauth = createServer(async (req, res) => {
  const path = new URL(req.url, "http://localhost").pathname;
  let raw = req.method === "POST" ? await readBody(req) : "";
  let form = parseForm(req, raw);
  const json = (req.headers["content-type"] ?? "").includes("application/json");
  if (state.jsonGrant && path === "/token" && json && form.grant_type === undefined) {
    form = { grant_type: "client_credentials", ...form };
    raw = JSON.stringify(form);
    req.headers["content-length"] = String(Buffer.byteLength(raw));
  }
  const credentials = clientCredentials(req, form);
  const { client_secret, ...recorded } = form;
  state.requests.push({ method: req.method, path, auth_method: credentials.method, client_id: credentials.id ?? null, form: recorded });
  const fault = state.faults[path];
  if (fault?.delay_ms) await new Promise((resolve) => setTimeout(resolve, fault.delay_ms));
  if (fault?.status !== undefined) {
    sendJson(res, fault.status, fault.body ?? {});
    return;
  }
  serviceHandler(replay(req, raw, form), res);
});

let oauthPort = 0;
function listen(port) {
  return new Promise((resolve, reject) => {
    oauth.once("error", reject);
    oauth.listen(port, "127.0.0.1", () => {
      oauth.off("error", reject);
      resolve(oauth.address().port);
    });
  });
}

const control = createServer(async (req, res) => {
  const body = req.method === "POST" ? await readBody(req) : "";
  const input = body ? JSON.parse(body) : {};
  const path = new URL(req.url, "http://localhost").pathname;
  try {
    if (req.method === "POST" && path === "/keys") {
      sendJson(res, 200, { kid: await addKey(input.alg) });
    } else if (req.method === "POST" && path === "/configure") {
      if ("expires_in" in input) state.expiresIn = input.expires_in;
      if ("clients" in input) state.clients = input.clients;
      if ("json_grant" in input) state.jsonGrant = input.json_grant;
      if ("faults" in input) state.faults = input.faults ?? {};
      sendJson(res, 200, {});
    } else if (req.method === "POST" && path === "/down") {
      if (oauth.listening) await new Promise((resolve) => { oauth.close(resolve); oauth.closeAllConnections(); });
      sendJson(res, 200, {});
    } else if (req.method === "POST" && path === "/up") {
      if (!oauth.listening) await listen(oauthPort);
      sendJson(res, 200, {});
    } else if (req.method === "GET" && path === "/requests") {
      sendJson(res, 200, state.requests);
    } else if (req.method === "POST" && path === "/reset") {
      Object.assign(state, { expiresIn: 3600, clients: null, jsonGrant: false, faults: {}, requests: [] });
      sendJson(res, 200, {});
    } else {
      sendJson(res, 404, { error: `no control route ${req.method} ${path}` });
    }
  } catch (err) {
    sendJson(res, 500, { error: String(err) });
  }
});

oauthPort = await listen(0);
issuer.url = `http://127.0.0.1:${oauthPort}`;
await new Promise((resolve) => control.listen(0, "127.0.0.1", resolve));
process.stdout.write(`${JSON.stringify({ port: oauthPort, control_port: control.address().port })}\n`);

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    oauth.closeAllConnections();
    control.closeAllConnections();
    process.exit(0);
  });
}
