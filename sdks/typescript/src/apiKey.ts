/**
 * API keys of your org: `/api/api-keys`. A new key is returned once, by
 * `ApiKey.create` (the server stores only its SHA-256): keep it in a secret
 * manager. Listings carry ids, names and dates, never keys. Deleting a key
 * revokes it at once; the org's last key cannot be deleted (ConflictError).
 */
import { splitConnectionOptions, type ConnectionOptions } from "./config.js";
import { Collection } from "./collection.js";
import type { ApiKeyInfo } from "./types.js";

const KEYS = new Collection<ApiKeyInfo>("/api/api-keys");

export class ApiKey {
  private constructor() {}

  /** `POST /api/api-keys`: a new key; `.key` holds it, this once. Never retried. */
  static async create(params: { name: string } & ConnectionOptions): Promise<ApiKeyInfo> {
    const [conn, body] = splitConnectionOptions(params);
    return KEYS.create(body, conn);
  }

  /** `GET /api/api-keys`: ids, names and dates, oldest first (no `key`). */
  static async list(opts: ConnectionOptions = {}): Promise<ApiKeyInfo[]> {
    return KEYS.list(opts);
  }

  /** `DELETE /api/api-keys/{id}`: revokes the key at once. NotFoundError / ConflictError (last key). */
  static async delete(id: string, opts: ConnectionOptions = {}): Promise<void> {
    return KEYS.delete(id, opts);
  }
}
