/** Secret routes shared by projects and secret groups (`{base}/secrets/{NAME}`). */
import { ConfigurationError } from "./errors.js";
import { ApiRequest, seg, type HttpClient } from "./http.js";
import type { SecretInfo, SetSecretOptions } from "./types.js";

export async function setSecretAt(
  client: HttpClient,
  base: string,
  name: string,
  value: string,
  opts: SetSecretOptions,
): Promise<SecretInfo | undefined> {
  if (typeof value !== "string") {
    // Say what is wrong without echoing what was passed.
    throw new ConfigurationError(`secret value for ${name} must be a string`);
  }
  const body: { value: string; allowedHosts?: string[] } = { value };
  if (opts.allowedHosts !== undefined) body.allowedHosts = opts.allowedHosts;
  const path = `${base}/secrets/${seg(name)}`;
  return client.send<SecretInfo | undefined>(new ApiRequest("PUT", path, body, { sensitive: [value] }));
}

export async function listSecretsAt(client: HttpClient, base: string): Promise<SecretInfo[]> {
  return client.send<SecretInfo[]>(new ApiRequest("GET", `${base}/secrets`));
}

export async function deleteSecretAt(client: HttpClient, base: string, name: string): Promise<void> {
  await client.send<unknown>(new ApiRequest("DELETE", `${base}/secrets/${seg(name)}`));
}
