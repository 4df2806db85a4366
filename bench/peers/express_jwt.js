// Express + jsonwebtoken, HS256, with the key object built once (a raw string
// secret makes jsonwebtoken rebuild it on every verify: ~40x slower).
"use strict";
const crypto = require("crypto");
const express = require("express");
const jwt = require("jsonwebtoken");

const key = crypto.createSecretKey(Buffer.from("s".repeat(32)));
const options = { algorithms: ["HS256"], issuer: "http://bench", audience: "http://bench" };
const app = express();
app.disable("x-powered-by");
app.get("/plain", (req, res) => res.type("text").send("ok"));
app.get("/me", (req, res) => {
  const header = req.headers.authorization || "";
  if (!header.startsWith("Bearer ")) return res.status(401).type("text").send("unauthorized");
  try {
    const claims = jwt.verify(header.slice(7), key, options);
    res.type("text").send(String(claims.sub));
  } catch {
    res.status(401).type("text").send("unauthorized");
  }
});
app.post("/_bench/login", (req, res) => {
  const token = jwt.sign({ sub: "bench-user", roles: ["user"] }, key, {
    algorithm: "HS256",
    expiresIn: 3600,
    issuer: "http://bench",
    audience: "http://bench",
    jwtid: crypto.randomUUID(),
  });
  res.type("text").send(`Authorization: Bearer ${token}`);
});
app.listen(Number(process.env.PORT), "127.0.0.1");
