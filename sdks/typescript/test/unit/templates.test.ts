/** Template.import/list/get/delete against a real local HTTP server. */
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BadRequestError, ConflictError, NotFoundError, PayloadTooLargeError, Template } from "../../src/index.js";
import { MockServer } from "./mockServer.js";

let server: MockServer;
const DIGEST = "sha256:" + "ab".repeat(32);
const TEMPLATE = { name: "busy box", digest: DIGEST, size: 3, createdAt: "2026-01-01T00:00:00.000Z" };

before(async () => {
  server = await new MockServer().start();
});
after(async () => {
  await server.stop();
});
afterEach(() => server.reset());

const conn = () => ({ apiUrl: server.url, apiKey: "k", retryDelayMs: 1 });

test("import streams a file path (with its size) and bytes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "osb-tpl-"));
  const file = join(dir, "image.tar");
  const content = "x".repeat(300 * 1024) + "end";
  writeFileSync(file, content);
  server.reply({ status: 201, body: TEMPLATE });
  assert.deepEqual(await Template.import("busy box", file, conn()), TEMPLATE);
  const r = server.last();
  assert.equal(r.method, "POST");
  assert.equal(r.url, "/api/templates?name=busy%20box");
  assert.equal(r.body, content);
  assert.equal(r.headers["content-type"], "application/octet-stream");
  assert.equal(r.headers["content-length"], String(content.length));
  assert.equal(r.headers["x-api-key"], "k");
  server.reply({ status: 201, body: TEMPLATE });
  await Template.import("busybox", new TextEncoder().encode("abc"), conn());
  assert.equal(server.last().body, "abc");
});

test("import errors name the problem and are never retried", async () => {
  const cases: Array<[number, new (...a: never[]) => Error]> = [
    [400, BadRequestError],
    [413, PayloadTooLargeError],
    [409, ConflictError],
  ];
  for (const [status, cls] of cases) {
    server.reply({ status, body: { error: "image: layer 0 (sha256:00): digest mismatch" } });
    await assert.rejects(Template.import("x", new Uint8Array([1]), conn()), (e: Error) => {
      assert.ok(e instanceof cls, `${status}`);
      assert.match(e.message, /digest mismatch/);
      return true;
    });
  }
  assert.equal(server.requests.length, 3);
});

test("list, get, delete", async () => {
  server.reply({ status: 200, body: [TEMPLATE] });
  assert.deepEqual(await Template.list(conn()), [TEMPLATE]);
  assert.equal(server.last().url, "/api/templates");
  server.reply({ status: 200, body: TEMPLATE });
  assert.equal((await Template.get("busy box", conn())).digest, DIGEST);
  assert.equal(server.last().url, "/api/templates/busy%20box");
  server.reply({ status: 204 });
  await Template.delete("busybox", conn());
  assert.equal(server.last().method, "DELETE");
  server.reply({ status: 404, body: { error: "template nope not found" } });
  await assert.rejects(Template.get("nope", conn()), NotFoundError);
});
