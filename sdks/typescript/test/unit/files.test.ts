/** sandbox.files and the item-6 shapes (template alias, metadata) against a real local HTTP server. */
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigurationError, NotFoundError, PayloadTooLargeError, Sandbox } from "../../src/index.js";
import { MockServer } from "./mockServer.js";

let server: MockServer;
const SANDBOX = { sandboxID: "sb_1", status: "running", metadata: { team: "ml" } };

before(async () => {
  server = await new MockServer().start();
});
after(async () => {
  await server.stop();
});
afterEach(() => server.reset());

async function sandbox(): Promise<Sandbox> {
  server.reply({ status: 200, body: SANDBOX });
  const sb = await Sandbox.connect("sb_1", { apiUrl: server.url, apiKey: "k", retryDelayMs: 1 });
  server.reset();
  return sb;
}

test("write sends bytes, strings and streams with the path encoded", async () => {
  const sb = await sandbox();
  server.reply({ status: 200, body: { path: "/home/sandbox/a b", size: 3 } });
  assert.deepEqual(await sb.files.write("/home/sandbox/a b", new Uint8Array([97, 98, 99]), { mode: 0o600 }), {
    path: "/home/sandbox/a b",
    size: 3,
  });
  const r = server.last();
  assert.equal(r.method, "PUT");
  assert.equal(r.url, "/api/sandboxes/sb_1/files?path=%2Fhome%2Fsandbox%2Fa%20b&mode=600");
  assert.equal(r.body, "abc");
  assert.equal(r.headers["x-api-key"], "k");
  server.reply({ status: 200, body: { path: "/tmp/s", size: 6 } });
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode("str"));
      c.enqueue(new TextEncoder().encode("eam"));
      c.close();
    },
  });
  await sb.files.write("/tmp/s", stream);
  assert.equal(server.last().body, "stream");
});

test("read, readText, readStream and errors", async () => {
  const sb = await sandbox();
  server.reply({ status: 200, text: "hello" });
  assert.equal(await sb.files.readText("x"), "hello");
  assert.equal(server.last().url, "/api/sandboxes/sb_1/files?path=x");
  server.reply({ status: 200, text: "chunks" });
  const reader = (await sb.files.readStream("/tmp/y")).getReader();
  let got = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    got += new TextDecoder().decode(value);
  }
  assert.equal(got, "chunks");
  server.reply({ status: 404, body: { error: "path: /nope does not exist" } });
  await assert.rejects(sb.files.read("/nope"), (e: unknown) => e instanceof NotFoundError && /does not exist/.test(String(e)));
  server.reply({ status: 413, body: { error: "no space left" } });
  await assert.rejects(sb.files.write("/tmp/z", "x"), PayloadTooLargeError);
});

test("list, mkdir, remove", async () => {
  const sb = await sandbox();
  const entries = [{ name: "a", type: "file", size: 5, mode: "0644", mtime: "2026-01-01T00:00:00.000Z" }];
  server.reply({ status: 200, body: { path: "/tmp", entries, truncated: false } });
  assert.deepEqual(await sb.files.list("/tmp"), entries);
  assert.equal(server.last().url, "/api/sandboxes/sb_1/files/list?path=%2Ftmp");
  server.reply({ status: 201, body: { path: "/tmp/d" } });
  await sb.files.mkdir("/tmp/d", { parents: true, mode: "750" });
  assert.deepEqual(JSON.parse(server.last().body), { path: "/tmp/d", parents: true, mode: "750" });
  server.reply({ status: 204 });
  await sb.files.remove("/tmp/d", { recursive: true });
  assert.equal(server.last().url, "/api/sandboxes/sb_1/files?path=%2Ftmp%2Fd&recursive=true");
  await assert.rejects(sb.files.read(""), ConfigurationError);
  await assert.rejects(sb.files.write("/x", "", { mode: 0o17777 }), ConfigurationError);
});

test("template is an alias of templateID; metadata is sent and returned", async () => {
  server.reply({ status: 201, body: SANDBOX });
  const sb = await Sandbox.create({ template: "python", metadata: { team: "ml" }, apiUrl: server.url, apiKey: "k" });
  assert.deepEqual(JSON.parse(server.last().body), { templateID: "python", metadata: { team: "ml" } });
  assert.deepEqual(sb.info.metadata, { team: "ml" });
  await assert.rejects(Sandbox.create({ template: "a", templateID: "b", apiUrl: server.url, apiKey: "k" }), ConfigurationError);
});
