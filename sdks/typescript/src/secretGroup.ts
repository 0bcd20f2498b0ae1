/**
 * Org-level secret groups: `/api/secret-groups`. A project attaches groups by
 * name (`secretGroups` on the project); for a sandbox the attached groups
 * resolve in order, then the project's own secrets, the later winning.
 */
import { splitConnectionOptions, type ConnectionOptions } from "./config.js";
import { Collection } from "./collection.js";
import type { SecretGroupInfo, SecretInfo, SetSecretOptions } from "./types.js";

const GROUPS = new Collection<SecretGroupInfo>("/api/secret-groups");

export class SecretGroup {
  private constructor() {}

  /** `POST /api/secret-groups`. Throws ConflictError (409) when the name is taken. */
  static async create(params: { name: string } & ConnectionOptions): Promise<SecretGroupInfo> {
    const [conn, body] = splitConnectionOptions(params);
    return GROUPS.create(body, conn);
  }

  /** `GET /api/secret-groups`. */
  static async list(opts: ConnectionOptions = {}): Promise<SecretGroupInfo[]> {
    return GROUPS.list(opts);
  }

  /** `GET /api/secret-groups/{idOrName}`. */
  static async get(idOrName: string, opts: ConnectionOptions = {}): Promise<SecretGroupInfo> {
    return GROUPS.get(idOrName, opts);
  }

  /** `PATCH /api/secret-groups/{idOrName}`: renames the group (attached projects follow it). */
  static async update(idOrName: string, params: { name: string }, opts: ConnectionOptions = {}): Promise<SecretGroupInfo> {
    return GROUPS.update(idOrName, { name: params.name }, opts);
  }

  /** `DELETE /api/secret-groups/{idOrName}`: removes the group and its secrets. */
  static async delete(idOrName: string, opts: ConnectionOptions = {}): Promise<void> {
    return GROUPS.delete(idOrName, opts);
  }

  /** `PUT /api/secret-groups/{group}/secrets/{name}`: creates or replaces a secret. */
  static async setSecret(
    group: string,
    name: string,
    value: string,
    opts: SetSecretOptions & ConnectionOptions = {},
  ): Promise<SecretInfo | undefined> {
    return GROUPS.setSecret(group, name, value, opts);
  }

  /** `GET /api/secret-groups/{group}/secrets`: names and metadata, never values. */
  static async listSecrets(group: string, opts: ConnectionOptions = {}): Promise<SecretInfo[]> {
    return GROUPS.listSecrets(group, opts);
  }

  /** `DELETE /api/secret-groups/{group}/secrets/{name}`. */
  static async deleteSecret(group: string, name: string, opts: ConnectionOptions = {}): Promise<void> {
    return GROUPS.deleteSecret(group, name, opts);
  }
}
