/** Packaging promises: zero runtime dependencies, only typescript + @types/node to build, Node >= 20. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// build-test/test/unit/ → package root
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Record<string, unknown>;

test("no runtime dependencies of any kind", () => {
  for (const field of ["dependencies", "peerDependencies", "optionalDependencies", "bundleDependencies"]) {
    assert.equal(pkg[field], undefined, field);
  }
});

test("devDependencies are only typescript and @types/node", () => {
  assert.deepEqual(Object.keys(pkg.devDependencies as object).sort(), ["@types/node", "typescript"]);
});

test("ESM with type declarations, Node >= 20", () => {
  assert.equal(pkg.name, "opensandbox");
  assert.equal(pkg.type, "module");
  assert.deepEqual((pkg.exports as Record<string, unknown>)["."], { types: "./dist/index.d.ts", import: "./dist/index.js" });
  assert.equal((pkg.engines as Record<string, string>).node, ">=20");
});
