/** HTTPS with a certificate made by the openssl CLI: `caFile` / `OSB_CA_FILE` trust it. */
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigurationError, ConnectionError, Project } from "../../src/index.js";

let dir: string;
let cert: string;
let server: Server;
let url: string;
const seen: { method: string; url: string; body: string }[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "osb-ts-tls-"));
  cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const r = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-days", "1", "-subj", "/CN=osb-ts-test", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert]);
  assert.equal(r.status, 0, String(r.stderr));
  server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", body: Buffer.concat(chunks).toString("utf8") });
      const text = req.method === "GET" ? "[]" : JSON.stringify({ name: "K", allowedHosts: [] });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(text);
    });
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  seen.length = 0;
  delete process.env.OSB_CA_FILE;
});

test("caFile verifies the server; GET and a PUT with a body both work", async () => {
  const conn = { apiUrl: url, apiKey: "k", caFile: cert, maxRetries: 0 };
  assert.deepEqual(await Project.list(conn), []);
  await Project.setSecret("demo", "K", "the-value", { allowedHosts: [], ...conn });
  assert.deepEqual(seen.map((s) => `${s.method} ${s.url}`), ["GET /api/projects", "PUT /api/projects/demo/secrets/K"]);
  assert.equal(JSON.parse(seen[1]!.body).value, "the-value");
});

test("OSB_CA_FILE is the default caFile", async () => {
  process.env.OSB_CA_FILE = cert;
  assert.deepEqual(await Project.list({ apiUrl: url, apiKey: "k", maxRetries: 0 }), []);
});

test("without a CA file the self-signed certificate is refused and nothing is sent", async () => {
  await assert.rejects(Project.list({ apiUrl: url, apiKey: "k", maxRetries: 0 }), (err: unknown) => {
    assert.ok(err instanceof ConnectionError, String(err));
    return true;
  });
  assert.equal(seen.length, 0);
});

test("an unreadable caFile is a ConfigurationError naming it", async () => {
  const missing = join(dir, "missing.pem");
  await assert.rejects(Project.list({ apiUrl: url, apiKey: "k", caFile: missing, maxRetries: 0 }), (err: unknown) => {
    assert.ok(err instanceof ConfigurationError, String(err));
    assert.match((err as Error).message, /caFile: cannot read/);
    assert.ok((err as Error).message.includes(missing));
    return true;
  });
});
