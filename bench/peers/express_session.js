// Express + express-session + connect-redis (node-redis client): the Node
// stack gatepass is compared with.  PORT and BENCH_REDIS from the environment;
// modules from bench/node/node_modules (NODE_PATH).  The cookie is not marked
// Secure here: express-session refuses to set a Secure cookie over plain HTTP.
"use strict";
const express = require("express");
const session = require("express-session");
const { RedisStore } = require("connect-redis");
const { createClient } = require("redis");

async function main() {
  const client = createClient({ url: process.env.BENCH_REDIS || "redis://127.0.0.1:6379/0" });
  await client.connect();
  const app = express();
  app.disable("x-powered-by");
  app.use(
    session({
      store: new RedisStore({ client, prefix: "sess:" }),
      secret: "s".repeat(32),
      resave: false,
      saveUninitialized: false,
      rolling: false,
      cookie: { httpOnly: true, sameSite: "lax", maxAge: 1800 * 1000 },
    }),
  );
  app.get("/plain", (req, res) => res.type("text").send("ok"));
  app.get("/me", (req, res) => {
    if (!req.session.user) return res.status(401).type("text").send("unauthorized");
    res.type("text").send(req.session.user);
  });
  app.post("/_bench/login", (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = "bench-user";
      req.session.save((err2) => (err2 ? next(err2) : res.type("text").send("")));
    });
  });
  app.listen(Number(process.env.PORT), "127.0.0.1");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
