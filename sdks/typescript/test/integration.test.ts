/**
 * The 8-step integration test against a real OpenSandbox (`osb dev`) and a
 * local TLS upstream that records what it receives. The environment contract
 * is in tests/sdk/README.md; without it this test is skipped.
 *
 *   OPENSANDBOX_API_URL, OPENSANDBOX_API_KEY   the server
 *   OSB_TEST_UPSTREAM_URL                      https://<host>[:port] as the sandbox reaches it
 *   OSB_TEST_UPSTREAM_RECORD_DIR               where the upstream records each request it receives
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { NotFoundError, OpenSandboxError, Project, Sandbox, type ConnectionOptions } from "../src/index.js";

const REQUIRED = ["OPENSANDBOX_API_URL", "OPENSANDBOX_API_KEY", "OSB_TEST_UPSTREAM_URL", "OSB_TEST_UPSTREAM_RECORD_DIR"] as const;
const missing = REQUIRED.filter((name) => !process.env[name]);
const SEALED = /^osb_sealed_[0-9a-f]{32}$/;
const POLL_DEADLINE_MS = 60_000;

const hex = (bytes: number): string => randomBytes(bytes).toString("hex");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every request record (one JSON object per file, or one per line) whose text contains `needle`. */
function recordsContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const text = readFileSync(path, "utf8");
    if (!text.includes(needle)) continue;
    const lines = text.split("\n").filter((l) => l.includes(needle));
    const candidates = lines.length > 1 || name.endsWith(".jsonl") ? lines : [text];
    // Only complete records count: a file or line still being written does not parse yet.
    found.push(...candidates.filter(isJson));
  }
  return found;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Polls (bounded) until `probe` returns a value; the deadline failure names `what`. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + POLL_DEADLINE_MS;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${POLL_DEADLINE_MS} ms waiting for ${what}`);
    await sleep(delay);
  }
}

/** Parses `env` output into a map. */
function parseEnv(stdout: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) env.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return env;
}

test("SDK 8-step: project → secrets → sandbox → sealed env → upstream gets real values → live update → delete → cleanup", {
  skip: missing.length > 0 ? `integration environment not set (missing ${missing.join(", ")}); see tests/sdk/README.md` : false,
  timeout: 600_000,
}, async (t: TestContext) => {
  const conn: ConnectionOptions = {}; // apiUrl / apiKey come from the environment on purpose
  const upstream = new URL(process.env.OSB_TEST_UPSTREAM_URL!);
  assert.equal(upstream.protocol, "https:", "OSB_TEST_UPSTREAM_URL must be https://");
  const upstreamHost = upstream.hostname.toLowerCase();
  const upstreamBase = upstream.origin;
  const recordDir = process.env.OSB_TEST_UPSTREAM_RECORD_DIR!;

  const projectName = `sdk-it-ts-${hex(4)}`;
  const tokenV1 = `sk-it-ts-${hex(16)}`;
  const tokenV2 = `sk-it-ts-v2-${hex(16)}`;
  const other = `other-it-ts-${hex(16)}`;
  const realValues = [tokenV1, tokenV2, other];
  let sandbox: Sandbox | undefined;
  let projectCreated = false;

  const step = async (n: number, name: string, fn: () => Promise<void>): Promise<void> => {
    t.diagnostic(`step ${n}: ${name}`);
    try {
      await fn();
    } catch (err) {
      if (err instanceof Error) err.message = `step ${n} (${name}): ${err.message}`;
      throw err;
    }
  };
  const assertNoRealValue = (text: string, where: string): void => {
    for (const v of realValues) assert.ok(!text.includes(v), `a real secret value appeared in ${where}`);
  };
  /** Runs a curl to the upstream /echo from inside the sandbox; returns the nonce and the sandbox's output. */
  const curlUpstream = async (headers: string[]): Promise<{ nonce: string; stdout: string }> => {
    const nonce = `osbtest-${hex(8)}`;
    const hdrs = headers.map((h) => `-H "${h}"`).join(" ");
    const res = await sandbox!.exec.run(`curl -sS --max-time 20 ${hdrs} "${upstreamBase}/echo?nonce=${nonce}"`, { timeout: 30 });
    assertNoRealValue(res.stdout + res.stderr, "the sandbox's curl output");
    assert.equal(res.exitCode, 0, `curl inside the sandbox failed: ${res.stderr}`);
    return { nonce, stdout: res.stdout };
  };
  const recordOf = (nonce: string): Promise<string> =>
    waitFor(`the upstream to record request ${nonce}`, () => recordsContaining(recordDir, nonce)[0]);

  try {
    // 1. Project whose allowlist includes the upstream.
    await step(1, "create project", async () => {
      const p = await Project.create({ name: projectName, egressAllowlist: [upstreamHost], ...conn });
      projectCreated = true;
      assert.equal(p.name, projectName);
      assert.ok(p.id);
      assert.deepEqual(p.egressAllowlist, [upstreamHost]);
      assert.equal((await Project.get(projectName, conn)).id, p.id);
    });

    // 2. Two secrets; values never come back.
    await step(2, "set secrets", async () => {
      await Project.setSecret(projectName, "OSB_TEST_TOKEN", tokenV1, { allowedHosts: [upstreamHost], ...conn });
      await Project.setSecret(projectName, "OSB_TEST_OTHER", other, conn);
      const listed = await Project.listSecrets(projectName, conn);
      assert.deepEqual(listed.map((s) => s.name).sort(), ["OSB_TEST_OTHER", "OSB_TEST_TOKEN"]);
      assert.deepEqual(listed.find((s) => s.name === "OSB_TEST_TOKEN")?.allowedHosts, [upstreamHost]);
      assertNoRealValue(JSON.stringify(listed), "listSecrets");
    });

    // 3. A sandbox with the project.
    await step(3, "create sandbox", async () => {
      sandbox = await Sandbox.create({ project: projectName, timeout: 600, ...conn });
      assert.ok(sandbox.sandboxId);
      assertNoRealValue(JSON.stringify(sandbox.info), "the create response");
    });

    // 4. Inside, env shows sealed tokens only.
    let token = "";
    let otherToken = "";
    await step(4, "env inside the sandbox is sealed", async () => {
      const res = await sandbox!.exec.run("env");
      assert.equal(res.exitCode, 0, res.stderr);
      assertNoRealValue(res.stdout + res.stderr, "the sandbox's env");
      const env = parseEnv(res.stdout);
      token = env.get("OSB_TEST_TOKEN") ?? "";
      otherToken = env.get("OSB_TEST_OTHER") ?? "";
      assert.match(token, SEALED, "OSB_TEST_TOKEN is not a sealed token");
      assert.match(otherToken, SEALED, "OSB_TEST_OTHER is not a sealed token");
      assert.notEqual(token, otherToken);
    });

    // 5. The upstream receives the real values; the sandbox sees only tokens.
    await step(5, "upstream receives real values, sandbox sees tokens", async () => {
      const { nonce, stdout } = await curlUpstream(["Authorization: Bearer $OSB_TEST_TOKEN", "X-Osb-Other: $OSB_TEST_OTHER"]);
      assert.ok(stdout.includes(token), "the echoed request seen by the sandbox should carry the token");
      const record = await recordOf(nonce);
      assert.ok(record.includes(`Bearer ${tokenV1}`), "the upstream did not receive the real OSB_TEST_TOKEN");
      assert.ok(record.includes(other), "the upstream did not receive the real OSB_TEST_OTHER");
      assert.ok(!record.includes(token) && !record.includes(otherToken), "the upstream received a sealed token");
    });

    // 6. A secret update reaches the SAME sandbox: same token, new value upstream.
    await step(6, "update a secret; the same sandbox sends the new value", async () => {
      await Project.setSecret(projectName, "OSB_TEST_TOKEN", tokenV2, { allowedHosts: [upstreamHost], ...conn });
      await waitFor("the upstream to receive the updated value", async () => {
        const { nonce } = await curlUpstream(["Authorization: Bearer $OSB_TEST_TOKEN"]);
        const record = await recordOf(nonce);
        assert.ok(!record.includes(token), "the upstream received a sealed token");
        return record.includes(`Bearer ${tokenV2}`) ? true : undefined;
      });
      const env = parseEnv((await sandbox!.exec.run("env")).stdout);
      assert.equal(env.get("OSB_TEST_TOKEN"), token, "the sandbox's token changed; it must stay the same");
    });

    // 7. Delete a secret: gone from the list; its token is no longer replaced.
    await step(7, "delete a secret", async () => {
      await Project.deleteSecret(projectName, "OSB_TEST_OTHER", conn);
      const listed = await Project.listSecrets(projectName, conn);
      assert.deepEqual(listed.map((s) => s.name), ["OSB_TEST_TOKEN"]);
      await waitFor("the deleted secret to stop being substituted", async () => {
        const { nonce } = await curlUpstream(["X-Osb-Other: $OSB_TEST_OTHER"]);
        const record = await recordOf(nonce);
        return record.includes(otherToken) && !record.includes(other) ? true : undefined;
      });
    });

    // 8. Clean up: sandbox and project are gone.
    await step(8, "kill sandbox and delete project; both 404", async () => {
      await sandbox!.kill();
      const sandboxId = sandbox!.sandboxId;
      sandbox = undefined;
      await Project.delete(projectName, conn);
      projectCreated = false;
      await assert.rejects(Sandbox.getInfo(sandboxId, conn), (e: unknown) => e instanceof NotFoundError && e.status === 404);
      await assert.rejects(Project.get(projectName, conn), (e: unknown) => e instanceof NotFoundError && e.status === 404);
      await assert.rejects(Project.listSecrets(projectName, conn), NotFoundError);
    });
  } finally {
    // Best-effort cleanup when a step failed; never masks the failure.
    if (sandbox !== undefined) await sandbox.kill().catch((e: unknown) => t.diagnostic(`cleanup: ${String((e as OpenSandboxError).message)}`));
    if (projectCreated) await Project.delete(projectName, conn).catch((e: unknown) => t.diagnostic(`cleanup: ${String((e as OpenSandboxError).message)}`));
  }
});
