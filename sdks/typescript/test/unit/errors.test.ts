/** Error mapping: HTTP status → typed error with the server's message; no response → status 0. */
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import {
  AuthenticationError, BadRequestError, ConfigurationError, ConflictError, ConnectionError, NotFoundError,
  OpenSandboxError, PayloadTooLargeError, Project, Sandbox, ServiceUnavailableError,
} from "../../src/index.js";
import { MockServer, deadUrl } from "./mockServer.js";

let server: MockServer;
let conn: { apiUrl: string; apiKey: string; maxRetries: number };

before(async () => {
  server = await new MockServer().start();
  conn = { apiUrl: server.url, apiKey: "k", maxRetries: 0 };
});
after(async () => server.stop());
beforeEach(() => server.reset());

const cases: Array<[number, new (...a: never[]) => OpenSandboxError]> = [
  [400, BadRequestError],
  [401, AuthenticationError],
  [404, NotFoundError],
  [409, ConflictError],
  [413, PayloadTooLargeError],
  [503, ServiceUnavailableError],
  [500, OpenSandboxError],
];

for (const [status, cls] of cases) {
  test(`HTTP ${status} → ${cls.name} with the server's message`, async () => {
    server.reply({ status, body: { error: `server says ${status}` } });
    const err = await Project.get("demo", conn).then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(err instanceof cls, `got ${String(err)}`);
    assert.ok(err instanceof OpenSandboxError);
    assert.ok(err instanceof Error);
    assert.equal(err.status, status);
    assert.equal(err.message, `server says ${status}`);
    assert.equal(err.method, "GET");
    assert.equal(err.path, "/api/projects/demo");
    assert.equal(err.name, cls.name);
  });
}

test("a non-JSON error body still gives a useful message", async () => {
  server.reply({ status: 502, text: "Bad Gateway from nginx" });
  const err = await Project.list(conn).catch((e: unknown) => e);
  assert.ok(err instanceof OpenSandboxError);
  assert.equal(err.status, 502);
  assert.match(err.message, /HTTP 502: Bad Gateway from nginx/);
});

test("an empty error body gives the status", async () => {
  server.reply({ status: 418 });
  const err = await Project.list(conn).catch((e: unknown) => e);
  assert.ok(err instanceof OpenSandboxError);
  assert.match(err.message, /HTTP 418/);
});

test("no server → ConnectionError with status 0", async () => {
  const err = await Project.list({ apiUrl: await deadUrl(), apiKey: "k", maxRetries: 0 }).catch((e: unknown) => e);
  assert.ok(err instanceof ConnectionError, String(err));
  assert.equal(err.status, 0);
  assert.match(err.message, /ECONNREFUSED/);
});

test("a timeout is a ConnectionError naming the timeout", async () => {
  // A server that never answers; requestTimeoutMs makes the attempt give up.
  const { createServer } = await import("node:http");
  const silent = createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const port = (silent.address() as { port: number }).port;
  try {
    const err = await Project.list({ apiUrl: `http://127.0.0.1:${port}`, apiKey: "k", maxRetries: 0, requestTimeoutMs: 50 }).catch((e: unknown) => e);
    assert.ok(err instanceof ConnectionError, String(err));
    assert.match(err.message, /timed out after 50 ms/);
  } finally {
    silent.closeAllConnections();
    await new Promise<void>((r) => silent.close(() => r()));
  }
});

test("a missing API key is a ConfigurationError before any request", async () => {
  const saved = process.env.OPENSANDBOX_API_KEY;
  delete process.env.OPENSANDBOX_API_KEY;
  try {
    const err = await Project.list({ apiUrl: server.url }).catch((e: unknown) => e);
    assert.ok(err instanceof ConfigurationError);
    assert.match(err.message, /OPENSANDBOX_API_KEY/);
    assert.equal(server.requests.length, 0);
  } finally {
    if (saved !== undefined) process.env.OPENSANDBOX_API_KEY = saved;
  }
});

test("a bad apiUrl is a ConfigurationError", async () => {
  await assert.rejects(Project.list({ apiUrl: "not a url", apiKey: "k" }), ConfigurationError);
  await assert.rejects(Project.list({ apiUrl: "ftp://x", apiKey: "k" }), /http:\/\/ or https:\/\//);
});

test("invalid JSON in a 2xx response is an error, not a crash", async () => {
  server.reply({ status: 200, text: "{not json" });
  const err = await Sandbox.list(conn).catch((e: unknown) => e);
  assert.ok(err instanceof OpenSandboxError);
  assert.match(err.message, /invalid JSON/);
});
