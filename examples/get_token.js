// scripts/get_token.js
const resp = ctx.fetch("https://auth.example.com/token", {
  method: "POST",
  body: JSON.stringify({ client_id: ctx.env.CLIENT_ID, client_secret: ctx.env.CLIENT_SECRET }),
  headers: { "Content-Type": "application/json" },
});
return "Bearer " + resp.json().access_token;
