/** Config precedence: explicit option > environment variable > default. */
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_API_URL, Project, resolveConfig } from "../../src/index.js";
import { MockServer } from "./mockServer.js";

const saved = { url: process.env.OPENSANDBOX_API_URL, key: process.env.OPENSANDBOX_API_KEY };
let explicitServer: MockServer;
let envServer: MockServer;

before(async () => {
  explicitServer = await new MockServer().start();
  envServer = await new MockServer().start();
});
after(async () => {
  await explicitServer.stop();
  await envServer.stop();
});
afterEach(() => {
  for (const [name, value] of [["OPENSANDBOX_API_URL", saved.url], ["OPENSANDBOX_API_KEY", saved.key]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  explicitServer.reset();
  envServer.reset();
});

test("defaults when neither option nor environment is set", () => {
  const c = resolveConfig({}, {});
  assert.equal(c.apiUrl, DEFAULT_API_URL);
  assert.equal(DEFAULT_API_URL, "http://127.0.0.1:8080");
  assert.equal(c.apiKey, undefined);
  assert.equal(c.maxRetries, 3);
});

test("environment beats default; empty environment values count as unset", () => {
  assert.deepEqual(
    [resolveConfig({}, { OPENSANDBOX_API_URL: "http://env:1/", OPENSANDBOX_API_KEY: "envkey" })].map((c) => [c.apiUrl, c.apiKey]),
    [["http://env:1", "envkey"]],
  );
  assert.equal(resolveConfig({}, { OPENSANDBOX_API_URL: "" }).apiUrl, DEFAULT_API_URL);
});

test("explicit option beats environment", () => {
  const c = resolveConfig({ apiUrl: "http://explicit:2", apiKey: "explicitkey" }, { OPENSANDBOX_API_URL: "http://env:1", OPENSANDBOX_API_KEY: "envkey" });
  assert.equal(c.apiUrl, "http://explicit:2");
  assert.equal(c.apiKey, "explicitkey");
});

test("calls read the environment (process.env) at call time", async () => {
  process.env.OPENSANDBOX_API_URL = envServer.url;
  process.env.OPENSANDBOX_API_KEY = "from-env";
  envServer.reply({ body: [] });
  await Project.list();
  assert.equal(envServer.requests.length, 1);
  assert.equal(envServer.last().headers["x-api-key"], "from-env");
});

test("explicit options on a call win over the environment", async () => {
  process.env.OPENSANDBOX_API_URL = envServer.url;
  process.env.OPENSANDBOX_API_KEY = "from-env";
  explicitServer.reply({ body: [] });
  await Project.list({ apiUrl: explicitServer.url, apiKey: "explicit" });
  assert.equal(envServer.requests.length, 0);
  assert.equal(explicitServer.requests.length, 1);
  assert.equal(explicitServer.last().headers["x-api-key"], "explicit");
});

test("apiUrl may carry a path prefix and a trailing slash", async () => {
  explicitServer.reply({ body: [] });
  await Project.list({ apiUrl: `${explicitServer.url}/prefix/`, apiKey: "k" });
  assert.equal(explicitServer.last().url, "/prefix/api/projects");
});

test("negative numbers are refused", () => {
  assert.throws(() => resolveConfig({ maxRetries: -1 }, {}), /maxRetries/);
});
