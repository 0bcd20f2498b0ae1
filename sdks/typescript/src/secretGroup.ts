/**
 * Org-level secret groups: `/api/secret-groups`. A project attaches groups by
 * name (`secretGroups` on the project); for a sandbox the attached groups
 * resolve in order, then the project's own secrets, the later winning.
 */
import { splitConnectionOptions, type ConnectionOptions } from "./config.js";
import { ApiRequest, HttpClient, seg } from "./http.js";
import { deleteSecretAt, listSecretsAt, setSecretAt } from "./secrets.js";
import type { SecretGroupInfo, SecretInfo, SetSecretOptions } from "./types.js";

export class SecretGroup {
  private constructor() {}

  /** `POST /api/secret-groups`. Throws ConflictError (409) when the name is taken. */
  static async create(params: { name: string } & ConnectionOptions): Promise<SecretGroupInfo> {
    const [conn, body] = splitConnectionOptions(params);
    return new HttpClient(conn).send<SecretGroupInfo>(new ApiRequest("POST", "/api/secret-groups", body));
  }

  /** `GET /api/secret-groups`. */
  static async list(opts: ConnectionOptions = {}): Promise<SecretGroupInfo[]> {
    return new HttpClient(opts).send<SecretGroupInfo[]>(new ApiRequest("GET", "/api/secret-groups"));
  }

  /** `GET /api/secret-groups/{idOrName}`. */
  static async get(idOrName: string, opts: ConnectionOptions = {}): Promise<SecretGroupInfo> {
    return new HttpClient(opts).send<SecretGroupInfo>(new ApiRequest("GET", `/api/secret-groups/${seg(idOrName)}`));
  }

  /** `PATCH /api/secret-groups/{idOrName}`: renames the group (attached projects follow it). */
  static async update(idOrName: string, params: { name: string }, opts: ConnectionOptions = {}): Promise<SecretGroupInfo> {
    return new HttpClient(opts).send<SecretGroupInfo>(new ApiRequest("PATCH", `/api/secret-groups/${seg(idOrName)}`, { name: params.name }));
  }

  /** `DELETE /api/secret-groups/{idOrName}`: removes the group and its secrets. */
  static async delete(idOrName: string, opts: ConnectionOptions = {}): Promise<void> {
    await new HttpClient(opts).send<unknown>(new ApiRequest("DELETE", `/api/secret-groups/${seg(idOrName)}`));
  }

  /** `PUT /api/secret-groups/{group}/secrets/{name}`: creates or replaces a secret. */
  static async setSecret(
    group: string,
    name: string,
    value: string,
    opts: SetSecretOptions & ConnectionOptions = {},
  ): Promise<SecretInfo | undefined> {
    const [conn, rest] = splitConnectionOptions(opts);
    return setSecretAt(new HttpClient(conn), `/api/secret-groups/${seg(group)}`, name, value, rest);
  }

  /** `GET /api/secret-groups/{group}/secrets`: names and metadata, never values. */
  static async listSecrets(group: string, opts: ConnectionOptions = {}): Promise<SecretInfo[]> {
    return listSecretsAt(new HttpClient(opts), `/api/secret-groups/${seg(group)}`);
  }

  /** `DELETE /api/secret-groups/{group}/secrets/{name}`. */
  static async deleteSecret(group: string, name: string, opts: ConnectionOptions = {}): Promise<void> {
    return deleteSecretAt(new HttpClient(opts), `/api/secret-groups/${seg(group)}`, name);
  }
}
