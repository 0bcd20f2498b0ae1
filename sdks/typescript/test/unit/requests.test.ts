/** Request shapes: every SDK call sends the method, path, headers and body the REST API expects. */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ApiKey, ConflictError, Project, Sandbox, SecretGroup, buildExecBody } from "../../src/index.js";
import { MockServer } from "./mockServer.js";

const KEY = "test-api-key-123";
let server: MockServer;
let conn: { apiUrl: string; apiKey: string; retryDelayMs: number };

const PROJECT = {
  id: "p_1", orgId: "o_1", name: "demo", template: "base", cpuCount: 2, memoryMB: 512, timeoutSec: 300,
  egressAllowlist: ["api.example.com"], secretGroups: [], createdAt: "2026-01-01T00:00:00Z", updatedAt: "2026-01-01T00:00:00Z",
};
const SANDBOX = { sandboxID: "sb_1", status: "running", projectId: "p_1", templateID: "base", cpuCount: 2, memoryMB: 512, startedAt: "t0", endAt: "t1" };

before(async () => {
  server = await new MockServer().start();
  conn = { apiUrl: server.url, apiKey: KEY, retryDelayMs: 1 };
});
after(async () => server.stop());
beforeEach(() => server.reset());

function json(body: string): unknown {
  return JSON.parse(body);
}

describe("headers", () => {
  test("every request carries X-API-Key and JSON content negotiation", async () => {
    server.reply({ body: PROJECT });
    await Project.create({ name: "demo", ...conn });
    const r = server.last();
    assert.equal(r.headers["x-api-key"], KEY);
    assert.equal(r.headers["content-type"], "application/json");
    assert.equal(r.headers["accept"], "application/json");
    assert.match(String(r.headers["user-agent"]), /^opensandbox-js\//);
  });

  test("GET has no body and no content-type", async () => {
    server.reply({ body: [] });
    await Project.list(conn);
    assert.equal(server.last().body, "");
    assert.equal(server.last().headers["content-type"], undefined);
  });
});

describe("projects", () => {
  test("create posts camelCase fields and never the connection options", async () => {
    server.reply({ status: 201, body: PROJECT });
    const p = await Project.create({ name: "demo", cpuCount: 2, memoryMB: 512, timeoutSec: 300, egressAllowlist: ["api.example.com"], ...conn });
    assert.deepEqual(p, PROJECT);
    const r = server.last();
    assert.equal(r.method, "POST");
    assert.equal(r.url, "/api/projects");
    assert.deepEqual(json(r.body), { name: "demo", cpuCount: 2, memoryMB: 512, timeoutSec: 300, egressAllowlist: ["api.example.com"] });
  });

  test("list, get, delete", async () => {
    server.reply({ body: [PROJECT] }, { body: PROJECT }, { status: 204 });
    assert.deepEqual(await Project.list(conn), [PROJECT]);
    assert.deepEqual(await Project.get("demo", conn), PROJECT);
    assert.equal(await Project.delete("demo", conn), undefined);
    assert.deepEqual(server.requests.map((r) => `${r.method} ${r.url}`), ["GET /api/projects", "GET /api/projects/demo", "DELETE /api/projects/demo"]);
  });

  test("update is a PATCH with only the given fields", async () => {
    server.reply({ body: PROJECT });
    await Project.update("demo", { egressAllowlist: [] }, conn);
    assert.equal(server.last().method, "PATCH");
    assert.equal(server.last().url, "/api/projects/demo");
    assert.deepEqual(json(server.last().body), { egressAllowlist: [] });
  });

  test("identifiers are URL-encoded", async () => {
    server.reply({ body: PROJECT });
    await Project.get("a b/../c", conn);
    assert.equal(server.last().url, "/api/projects/a%20b%2F..%2Fc");
  });

  test("an empty identifier is refused before any request", async () => {
    await assert.rejects(Project.get("", conn), /non-empty/);
    assert.equal(server.requests.length, 0);
  });
});

describe("secrets", () => {
  test("setSecret PUTs {value, allowedHosts} to the secret's path", async () => {
    server.reply({ body: { name: "API_KEY", allowedHosts: ["api.example.com"], createdAt: "t", updatedAt: "t" } });
    await Project.setSecret("demo", "API_KEY", "sk-live-1", { allowedHosts: ["api.example.com"], ...conn });
    const r = server.last();
    assert.equal(r.method, "PUT");
    assert.equal(r.url, "/api/projects/demo/secrets/API_KEY");
    assert.deepEqual(json(r.body), { value: "sk-live-1", allowedHosts: ["api.example.com"] });
  });

  test("setSecret of a signing kind sends its material and request rules, never a value", async () => {
    server.reply({ body: { name: "SIG", kind: "hmac", allowedHosts: [], createdAt: "t", updatedAt: "t" } });
    const material = { key: "whsec-SECRET", header: "X-Signature" };
    await Project.setSecret("demo", "SIG", "", {
      kind: "hmac",
      material,
      allowedRequests: ["POST,get hooks.example.com/v1/events", { host: "*.example.com" }],
      onDisallowedRequest: "refuse",
      ...conn,
    });
    assert.deepEqual(json(server.last().body), {
      kind: "hmac",
      material,
      allowedRequests: [
        { host: "hooks.example.com", pathPrefix: "/v1/events", methods: ["POST", "GET"] },
        { host: "*.example.com" },
      ],
      onDisallowedRequest: "refuse",
    });
    await assert.rejects(Project.setSecret("demo", "SIG", "a-value", { kind: "hmac", material, ...conn }), /not a value/);
    await assert.rejects(Project.setSecret("demo", "SIG", "", { kind: "hmac", ...conn }), /needs opts.material/);
  });

  test("setSecret without allowedHosts sends only the value", async () => {
    await Project.setSecret("demo", "API_KEY", "v", conn);
    assert.deepEqual(json(server.last().body), { value: "v" });
  });

  test("setSecret returns the server's warnings; allowedHosts ['*'] is sent as given", async () => {
    const warning = "no allowedHosts and project 'demo' has an empty egress allowlist: not sent to any host";
    server.reply({ body: { name: "K", allowedHosts: [], createdAt: "t", updatedAt: "t", warnings: [warning] } });
    const info = await Project.setSecret("demo", "K", "v", conn);
    assert.deepEqual(info?.warnings, [warning]);
    server.reply({ body: { name: "K", allowedHosts: ["*"], createdAt: "t", updatedAt: "t" } });
    const any = await Project.setSecret("demo", "K", "v", { allowedHosts: ["*"], ...conn });
    assert.deepEqual(json(server.last().body), { value: "v", allowedHosts: ["*"] });
    assert.deepEqual(any?.allowedHosts, ["*"]);
    assert.equal(any?.warnings, undefined);
  });

  test("listSecrets and deleteSecret", async () => {
    const list = [{ name: "API_KEY", allowedHosts: [], createdAt: "t", updatedAt: "t" }];
    server.reply({ body: list }, { status: 204 });
    assert.deepEqual(await Project.listSecrets("demo", conn), list);
    await Project.deleteSecret("demo", "API_KEY", conn);
    assert.deepEqual(server.requests.map((r) => `${r.method} ${r.url}`), ["GET /api/projects/demo/secrets", "DELETE /api/projects/demo/secrets/API_KEY"]);
  });

  test("secret groups use /api/secret-groups and the same secret routes", async () => {
    server.reply({ status: 201, body: { id: "g_1", name: "shared" } }, { body: [] }, { body: {} }, { body: {} }, { body: {} }, { body: [] }, { status: 204 }, { status: 204 });
    await SecretGroup.create({ name: "shared", ...conn });
    await SecretGroup.list(conn);
    await SecretGroup.get("shared", conn);
    await SecretGroup.update("shared", { name: "shared2" }, conn);
    await SecretGroup.setSecret("shared", "TOKEN", "t0k", { allowedHosts: ["*.example.com"], ...conn });
    await SecretGroup.listSecrets("shared", conn);
    await SecretGroup.deleteSecret("shared", "TOKEN", conn);
    await SecretGroup.delete("shared", conn);
    assert.deepEqual(server.requests.map((r) => `${r.method} ${r.url}`), [
      "POST /api/secret-groups",
      "GET /api/secret-groups",
      "GET /api/secret-groups/shared",
      "PATCH /api/secret-groups/shared",
      "PUT /api/secret-groups/shared/secrets/TOKEN",
      "GET /api/secret-groups/shared/secrets",
      "DELETE /api/secret-groups/shared/secrets/TOKEN",
      "DELETE /api/secret-groups/shared",
    ]);
    assert.deepEqual(json(server.requests[0]!.body), { name: "shared" });
    assert.deepEqual(json(server.requests[3]!.body), { name: "shared2" });
    assert.deepEqual(json(server.requests[4]!.body), { value: "t0k", allowedHosts: ["*.example.com"] });
  });
});

describe("api keys", () => {
  test("create, list and delete use /api/api-keys; the key comes back once", async () => {
    const key = "osb_" + "ab".repeat(32);
    server.reply(
      { status: 201, body: { id: "key_1", name: "ci", createdAt: "t", key } },
      { body: [{ id: "key_1", name: "ci", createdAt: "t" }] },
      { status: 204 },
    );
    const created = await ApiKey.create({ name: "ci", ...conn });
    assert.equal(created.key, key);
    const listed = await ApiKey.list(conn);
    assert.equal(listed[0]!.key, undefined);
    await ApiKey.delete("key_1", conn);
    assert.deepEqual(server.requests.map((r) => `${r.method} ${r.url}`), [
      "POST /api/api-keys",
      "GET /api/api-keys",
      "DELETE /api/api-keys/key_1",
    ]);
    assert.deepEqual(json(server.requests[0]!.body), { name: "ci" });
  });

  test("scope and expiry are sent and read back", async () => {
    const key = "osb_" + "ab".repeat(32);
    server.reply({
      status: 201,
      body: { id: "key_3", name: "agent", scope: "sandbox", expiresAt: "2027-01-01T00:00:00.000Z", key },
    });
    const created = await ApiKey.create({ name: "agent", scope: "sandbox", expiresIn: "30d", ...conn });
    assert.equal(created.scope, "sandbox");
    assert.equal(created.expiresAt, "2027-01-01T00:00:00.000Z");
    assert.deepEqual(json(server.requests[0]!.body), { name: "agent", scope: "sandbox", expiresIn: "30d" });
  });

  test("deleting the org's last key is a ConflictError", async () => {
    server.reply({ status: 409, body: { error: "this is the org's last API key: create another one before deleting it" } });
    await assert.rejects(ApiKey.delete("key_0", conn), (e: unknown) => e instanceof ConflictError);
  });
});

describe("sandboxes", () => {
  test("create posts the given fields and returns a handle", async () => {
    server.reply({ status: 201, body: SANDBOX });
    const sb = await Sandbox.create({ project: "demo", templateID: "base", cpuCount: 2, memoryMB: 512, timeout: 60, envs: { A: "1" }, ...conn });
    assert.equal(sb.sandboxId, "sb_1");
    assert.deepEqual(sb.info, SANDBOX);
    assert.equal(server.last().method, "POST");
    assert.equal(server.last().url, "/api/sandboxes");
    assert.deepEqual(json(server.last().body), { project: "demo", templateID: "base", cpuCount: 2, memoryMB: 512, timeout: 60, envs: { A: "1" } });
  });

  test("create fails clearly when the response has no sandboxID", async () => {
    server.reply({ status: 201, body: { status: "running" } });
    await assert.rejects(Sandbox.create({ ...conn }), /no sandboxID/);
  });

  test("exec.run of a string runs it through sh -c", async () => {
    server.reply({ status: 201, body: SANDBOX }, { body: { exitCode: 0, stdout: "hi\n", stderr: "" } });
    const sb = await Sandbox.create({ project: "demo", ...conn });
    const res = await sb.exec.run("echo hi | cat", { envs: { X: "1" }, cwd: "/tmp", timeout: 5 });
    assert.deepEqual(res, { exitCode: 0, stdout: "hi\n", stderr: "" });
    assert.equal(server.last().method, "POST");
    assert.equal(server.last().url, "/api/sandboxes/sb_1/exec/run");
    assert.deepEqual(json(server.last().body), { cmd: "sh", args: ["-c", "echo hi | cat"], envs: { X: "1" }, cwd: "/tmp", timeout: 5 });
  });

  test("exec.run with args or an argv array runs the program directly", () => {
    assert.deepEqual(buildExecBody("ls", { args: ["-l", "/"] }), { cmd: "ls", args: ["-l", "/"] });
    assert.deepEqual(buildExecBody(["ls", "-l", "/"]), { cmd: "ls", args: ["-l", "/"] });
    assert.throws(() => buildExecBody(["ls"], { args: ["-l"] }), /not both/);
    assert.throws(() => buildExecBody([]), /program/);
    assert.throws(() => buildExecBody(""), /non-empty/);
    assert.equal(buildExecBody("true", { timeout: 2.5 }).timeout, 3);
    assert.throws(() => buildExecBody("true", { timeout: 0 }), /timeout/);
  });

  test("a non-zero exit code is a result, not an error", async () => {
    server.reply({ body: SANDBOX }, { body: { exitCode: 3, stdout: "", stderr: "boom" } });
    const sb = await Sandbox.connect("sb_1", conn);
    assert.equal((await sb.exec.run("exit 3")).exitCode, 3);
  });

  test("connect, getInfo, list, kill", async () => {
    server.reply({ body: SANDBOX }, { body: SANDBOX }, { body: [SANDBOX] }, { status: 204 }, { status: 204 });
    const sb = await Sandbox.connect("sb_1", conn);
    assert.deepEqual(await sb.getInfo(), SANDBOX);
    assert.deepEqual(await Sandbox.list(conn), [SANDBOX]);
    await sb.kill();
    await Sandbox.kill("sb_2", conn);
    assert.deepEqual(server.requests.map((r) => `${r.method} ${r.url}`), [
      "GET /api/sandboxes/sb_1",
      "GET /api/sandboxes/sb_1",
      "GET /api/sandboxes",
      "DELETE /api/sandboxes/sb_1",
      "DELETE /api/sandboxes/sb_2",
    ]);
  });
});

describe("checkpoints and lifetime", () => {
  const CHECKPOINT = { checkpointID: "ck-1", sandboxID: "sb_1", sizeBytes: 4096, envNames: ["A"] };

  test("checkpoint, fork, timeout, hibernate, wake and delete use their routes", async () => {
    server.reply(
      { body: SANDBOX },
      { status: 201, body: CHECKPOINT },
      { body: [CHECKPOINT] },
      { status: 201, body: SANDBOX },
      { body: SANDBOX },
      { body: { ...SANDBOX, status: "hibernated" } },
      { body: SANDBOX },
      { status: 204 },
      { body: [CHECKPOINT] },
    );
    const sb = await Sandbox.connect("sb_1", conn);
    const calls: string[] = [];
    const note = () => calls.push(`${server.last().method} ${server.last().url}`);
    assert.equal((await sb.createCheckpoint()).checkpointID, "ck-1");
    note();
    assert.deepEqual(await sb.listCheckpoints(), [CHECKPOINT]);
    note();
    await Sandbox.create({ fromCheckpoint: "ck-1", ...conn });
    note();
    assert.deepEqual(json(server.last().body), { fromCheckpoint: "ck-1" });
    await sb.setTimeout(3600);
    note();
    assert.deepEqual(json(server.last().body), { timeoutSec: 3600 });
    assert.equal((await sb.hibernate()).status, "hibernated");
    note();
    assert.equal((await sb.wake()).status, "running");
    note();
    await sb.deleteCheckpoint("ck-1");
    note();
    assert.equal((await Sandbox.listCheckpoints(conn)).length, 1);
    note();
    assert.deepEqual(calls, [
      "POST /api/sandboxes/sb_1/checkpoints",
      "GET /api/sandboxes/sb_1/checkpoints",
      "POST /api/sandboxes",
      "POST /api/sandboxes/sb_1/timeout",
      "POST /api/sandboxes/sb_1/hibernate",
      "POST /api/sandboxes/sb_1/wake",
      "DELETE /api/sandboxes/sb_1/checkpoints/ck-1",
      "GET /api/checkpoints",
    ]);
  });

  test("setTimeout refuses a bad value before any request", async () => {
    server.reply({ body: SANDBOX });
    const sb = await Sandbox.connect("sb_1", conn);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(sb.setTimeout(bad), /timeoutSec/);
    }
  });
});
