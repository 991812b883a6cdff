const test = require("node:test");
const assert = require("node:assert");
const http = require("node:http");
const {handler} = require("../server.js");

test("health answers ok", async () => {
  const server = http.createServer(handler).listen(0);
  const {port} = server.address();
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(await res.text(), "ok\n");
  server.close();
});
