// scripts/validate_token.js
const token = headers["Authorization"] ?? "";
if (!token.startsWith("Bearer ")) return false;
// custom HMAC or structural check
return token.length > 20;
