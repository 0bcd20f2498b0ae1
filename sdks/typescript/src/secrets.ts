/** Secret routes shared by projects and secret groups (`{base}/secrets/{NAME}`). */
import { ConfigurationError } from "./errors.js";
import { ApiRequest, seg, type HttpClient } from "./http.js";
import type { RequestRule, SecretInfo, SetSecretOptions } from "./types.js";

/** Secret names are environment variable names (the server's rule too). */
const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/**
 * Checks a secret name before it goes into a URL. The name is not echoed: a
 * caller who swapped name and value would otherwise see the value in an
 * error, and a value in a URL path would land in access logs.
 */
export function secretPath(base: string, name: string): string {
  if (typeof name !== "string" || !SECRET_NAME.test(name)) {
    throw new ConfigurationError("secret name must be an environment variable name ([A-Za-z_][A-Za-z0-9_]{0,127})");
  }
  return `${base}/secrets/${seg(name)}`;
}

export async function setSecretAt(
  client: HttpClient,
  base: string,
  name: string,
  value: string,
  opts: SetSecretOptions,
): Promise<SecretInfo | undefined> {
  if (typeof value !== "string") {
    // Say what is wrong without echoing what was passed.
    throw new ConfigurationError("secret value must be a string");
  }
  const kind = opts.kind ?? "value";
  if (!["value", "hmac", "aws-sigv4", "oauth2-refresh"].includes(kind)) {
    throw new ConfigurationError("kind must be value, hmac, aws-sigv4 or oauth2-refresh");
  }
  const body: Record<string, unknown> = {};
  let sensitive: string[];
  if (kind === "value") {
    if (opts.material !== undefined) throw new ConfigurationError("material is for kinds hmac, aws-sigv4, oauth2-refresh");
    body.value = value;
    sensitive = [value];
  } else {
    if (value !== "") throw new ConfigurationError(`a ${kind} secret takes opts.material, not a value (pass "")`);
    if (opts.material === undefined || typeof opts.material !== "object" || Array.isArray(opts.material)) {
      throw new ConfigurationError(`a ${kind} secret needs opts.material (an object; see docs/secrets.md)`);
    }
    body.kind = kind;
    body.material = opts.material;
    sensitive = stringsOf(opts.material);
  }
  if (opts.allowedHosts !== undefined) body.allowedHosts = opts.allowedHosts;
  if (opts.allowedRequests !== undefined) body.allowedRequests = opts.allowedRequests.map(ruleOf);
  if (opts.onDisallowedRequest !== undefined) {
    if (opts.onDisallowedRequest !== "seal" && opts.onDisallowedRequest !== "refuse") {
      throw new ConfigurationError('onDisallowedRequest must be "seal" or "refuse"');
    }
    body.onDisallowedRequest = opts.onDisallowedRequest;
  }
  const path = secretPath(base, name);
  return client.send<SecretInfo | undefined>(new ApiRequest("PUT", path, body, { sensitive }));
}

/** Every string inside a JSON-like value (kept out of errors). */
function stringsOf(v: unknown): string[] {
  if (typeof v === "string") return v ? [v] : [];
  if (Array.isArray(v)) return v.flatMap(stringsOf);
  if (v !== null && typeof v === "object") return Object.values(v).flatMap(stringsOf);
  return [];
}

/** A rule as the API takes it, from {host, methods, pathPrefix} or "POST host/path". */
function ruleOf(r: RequestRule | string): RequestRule {
  if (typeof r !== "string") return r;
  const parts = r.trim().split(/\s+/);
  const [methods, rest] = parts.length >= 2 ? [parts[0], parts[1]] : ["*", parts[0]];
  const slash = rest.indexOf("/");
  return {
    host: slash < 0 ? rest : rest.slice(0, slash),
    pathPrefix: slash < 0 ? "" : rest.slice(slash),
    methods: methods === "*" ? [] : methods.split(",").filter((m) => m).map((m) => m.toUpperCase()),
  };
}

export async function listSecretsAt(client: HttpClient, base: string): Promise<SecretInfo[]> {
  return client.send<SecretInfo[]>(new ApiRequest("GET", `${base}/secrets`));
}

export async function deleteSecretAt(client: HttpClient, base: string, name: string): Promise<void> {
  await client.send<unknown>(new ApiRequest("DELETE", secretPath(base, name)));
}
