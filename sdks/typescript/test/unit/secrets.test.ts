/** No secret value in any error, log line or printed request. */
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { ApiRequest, OpenSandboxError, Project, SecretGroup } from "../../src/index.js";
import { MockServer, deadUrl } from "./mockServer.js";

const VALUE = "sk-live-TOPSECRET-9f8e7d6c";
let server: MockServer;
let conn: { apiUrl: string; apiKey: string; retryDelayMs: number; maxRetries: number };

before(async () => {
  server = await new MockServer().start();
  conn = { apiUrl: server.url, apiKey: "k", retryDelayMs: 1, maxRetries: 0 };
});
after(async () => server.stop());
beforeEach(() => server.reset());

/** Every way a user might print or serialise an error. */
function everyRendering(err: unknown): string {
  const e = err as Error;
  return [String(e), e.message, e.stack ?? "", JSON.stringify(e), inspect(e, { depth: 10, showHidden: true })].join("\n");
}

async function failureOf(p: Promise<unknown>): Promise<OpenSandboxError> {
  const err = await p.then(() => assert.fail("expected an error"), (e: unknown) => e);
  assert.ok(err instanceof OpenSandboxError, String(err));
  return err;
}

test("a setSecret error never contains the value, even when the server echoes it", async () => {
  server.reply({ status: 400, body: { error: `bad value "${VALUE}" for API_KEY` } });
  const err = await failureOf(Project.setSecret("demo", "API_KEY", VALUE, conn));
  assert.equal(err.status, 400);
  assert.ok(!everyRendering(err).includes(VALUE));
  assert.match(err.message, /\[REDACTED\]/);
  assert.match(err.message, /API_KEY/);
});

test("a JSON-escaped echo of the value is redacted too", async () => {
  const tricky = 'quote"and\\back\nslash';
  server.reply({ status: 413, text: JSON.stringify({ error: `too large: ${JSON.stringify(tricky)}` }) });
  const err = await failureOf(SecretGroup.setSecret("g", "X", tricky, conn));
  const rendered = everyRendering(err);
  assert.ok(!rendered.includes(tricky));
  assert.ok(!rendered.includes(JSON.stringify(tricky).slice(1, -1)));
});

test("a network error from setSecret never contains the value or the body", async () => {
  const err = await failureOf(Project.setSecret("demo", "API_KEY", VALUE, { apiUrl: await deadUrl(), apiKey: "k", maxRetries: 0 }));
  assert.equal(err.status, 0);
  assert.ok(!everyRendering(err).includes(VALUE));
});

test("every status from setSecret keeps the value out", async () => {
  for (const status of [400, 401, 404, 409, 413, 500, 503]) {
    server.reply({ status, body: { error: `echo ${VALUE}` } });
    const err = await failureOf(Project.setSecret("demo", "API_KEY", VALUE, conn));
    assert.ok(!everyRendering(err).includes(VALUE), `status ${status}`);
  }
});

test("a non-string value is refused without echoing it", async () => {
  const err = await failureOf(Project.setSecret("demo", "API_KEY", { v: VALUE } as unknown as string, conn));
  assert.ok(!everyRendering(err).includes(VALUE));
  assert.equal(server.requests.length, 0);
});

test("ApiRequest: toString, JSON and inspect show method and path, never the body", () => {
  const req = new ApiRequest("PUT", "/api/projects/demo/secrets/API_KEY", { value: VALUE }, { sensitive: [VALUE] });
  const rendered = [String(req), `${req}`, JSON.stringify(req), inspect(req, { depth: 10, showHidden: true }), JSON.stringify(Object.entries(req))].join("\n");
  assert.ok(!rendered.includes(VALUE), rendered);
  assert.match(String(req), /PUT \/api\/projects\/demo\/secrets\/API_KEY \(body redacted\)/);
  assert.equal(req.redact(`x ${VALUE} y`), "x [REDACTED] y");
});

test("the debug logger gets method, path and status, never the value or the API key", async () => {
  const lines: string[] = [];
  server.reply({ body: {} });
  await Project.setSecret("demo", "API_KEY", VALUE, { ...conn, apiKey: "the-api-key", logger: (l) => lines.push(l) });
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^PUT \/api\/projects\/demo\/secrets\/API_KEY -> 200 \(\d+ ms\)$/);
  assert.ok(!lines.join("\n").includes(VALUE));
  assert.ok(!lines.join("\n").includes("the-api-key"));
});

test("the value is sent to the server exactly as given", async () => {
  server.reply({ body: {} });
  await Project.setSecret("demo", "API_KEY", VALUE, conn);
  assert.deepEqual(JSON.parse(server.last().body), { value: VALUE });
});

test("redirects are not followed (a PUT body must not be resent elsewhere)", async () => {
  const other = await new MockServer().start();
  try {
    server.reply({ status: 307, headers: { location: `${other.url}/steal` } });
    const err = await failureOf(Project.setSecret("demo", "K", VALUE, conn));
    assert.equal(err.status, 307);
    assert.match(err.message, /redirect/);
    assert.equal(server.requests.length, 1);
    assert.equal(other.requests.length, 0);
  } finally {
    await other.stop();
  }
});

test("swapped name and value: refused before any request, value not echoed, never in a URL", async () => {
  const err = await failureOf(Project.setSecret("demo", VALUE, "API_KEY", conn));
  assert.ok(!everyRendering(err).includes(VALUE));
  assert.match(err.message, /environment variable name/);
  await failureOf(Project.deleteSecret("demo", "bad name!", conn));
  await failureOf(Project.get(undefined as unknown as string, conn));
  assert.equal(server.requests.length, 0);
});
