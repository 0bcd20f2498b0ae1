/** Secret routes shared by projects and secret groups (`{base}/secrets/{NAME}`). */
import { ConfigurationError } from "./errors.js";
import { ApiRequest, seg, type HttpClient } from "./http.js";
import type { SecretInfo, SetSecretOptions } from "./types.js";

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
  const body: { value: string; allowedHosts?: string[] } = { value };
  if (opts.allowedHosts !== undefined) body.allowedHosts = opts.allowedHosts;
  const path = secretPath(base, name);
  return client.send<SecretInfo | undefined>(new ApiRequest("PUT", path, body, { sensitive: [value] }));
}

export async function listSecretsAt(client: HttpClient, base: string): Promise<SecretInfo[]> {
  return client.send<SecretInfo[]>(new ApiRequest("GET", `${base}/secrets`));
}

export async function deleteSecretAt(client: HttpClient, base: string, name: string): Promise<void> {
  await client.send<unknown>(new ApiRequest("DELETE", secretPath(base, name)));
}
