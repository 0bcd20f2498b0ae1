/**
 * Retries: idempotent requests (GET, PUT, DELETE) retry on network errors and
 * 502/503/504, a bounded number of times; POST, PATCH and exec never do.
 */
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionError, OpenSandboxError, Project, Sandbox, ServiceUnavailableError } from "../../src/index.js";
import { MockServer } from "./mockServer.js";

let server: MockServer;
let conn: { apiUrl: string; apiKey: string; retryDelayMs: number; maxRetries: number };

before(async () => {
  server = await new MockServer().start();
  conn = { apiUrl: server.url, apiKey: "k", retryDelayMs: 1, maxRetries: 3 };
});
after(async () => server.stop());
beforeEach(() => server.reset());

test("GET retries 503, 502 and 504 then succeeds", async () => {
  server.reply({ status: 503, body: { error: "busy" } }, { status: 502 }, { status: 504 }, { body: [] });
  assert.deepEqual(await Project.list(conn), []);
  assert.equal(server.requests.length, 4);
});

test("PUT (setSecret) retries a dropped connection and sends the same body again", async () => {
  server.reply({ destroy: true }, { body: {} });
  await Project.setSecret("demo", "K", "value-1", conn);
  assert.equal(server.requests.length, 2);
  assert.equal(server.requests[0]!.body, server.requests[1]!.body);
});

test("DELETE retries 503", async () => {
  server.reply({ status: 503 }, { status: 204 });
  await Project.delete("demo", conn);
  assert.equal(server.requests.length, 2);
});

test("retries are bounded by maxRetries; the last error is thrown", async () => {
  server.fallback({ status: 503, body: { error: "no worker" } });
  const err = await Project.get("demo", { ...conn, maxRetries: 2 }).catch((e: unknown) => e);
  assert.ok(err instanceof ServiceUnavailableError);
  assert.equal(err.message, "no worker");
  assert.equal(server.requests.length, 3);
});

test("maxRetries 0 disables retries", async () => {
  server.fallback({ status: 503 });
  await assert.rejects(Project.list({ ...conn, maxRetries: 0 }), ServiceUnavailableError);
  assert.equal(server.requests.length, 1);
});

test("POST (create) is never retried, not even on 503 or a dropped connection", async () => {
  server.reply({ status: 503, body: { error: "no worker" } });
  await assert.rejects(Sandbox.create({ project: "demo", ...conn }), ServiceUnavailableError);
  assert.equal(server.requests.length, 1);

  server.reset();
  server.reply({ destroy: true });
  await assert.rejects(Project.create({ name: "demo", ...conn }), ConnectionError);
  assert.equal(server.requests.length, 1);
});

test("exec is never retried", async () => {
  server.reply({ body: { sandboxID: "sb_1", status: "running" } }, { status: 503 });
  const sb = await Sandbox.connect("sb_1", conn);
  await assert.rejects(sb.exec.run("echo once"), ServiceUnavailableError);
  assert.equal(server.requests.filter((r) => r.url.endsWith("/exec/run")).length, 1);
});

test("PATCH (update) is never retried", async () => {
  server.reply({ status: 502 });
  await assert.rejects(Project.update("demo", { cpuCount: 2 }, conn), OpenSandboxError);
  assert.equal(server.requests.length, 1);
});

test("4xx and 500 are not retried", async () => {
  server.reply({ status: 404, body: { error: "not found" } });
  await assert.rejects(Project.get("x", conn), /not found/);
  server.reply({ status: 500, body: { error: "bug" } });
  await assert.rejects(Project.get("x", conn), /bug/);
  assert.equal(server.requests.length, 2);
});
