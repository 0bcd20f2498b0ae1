/**
 * API keys of your org: `/api/api-keys`. A new key is returned once, by
 * `ApiKey.create` (the server stores only its SHA-256): keep it in a secret
 * manager. Every key has a scope, "sandbox" (the server's default: create,
 * use and delete sandboxes, read projects) or "admin" (everything), and
 * optionally an expiry. Listings carry ids, names, scopes and dates, never
 * keys. Deleting a key revokes it at once; the org's last unexpired admin
 * key cannot be deleted (ConflictError).
 */
import { splitConnectionOptions, type ConnectionOptions } from "./config.js";
import { Collection } from "./collection.js";
import type { ApiKeyInfo, ApiKeyScope } from "./types.js";

const KEYS = new Collection<ApiKeyInfo>("/api/api-keys");

export class ApiKey {
  private constructor() {}

  /**
   * `POST /api/api-keys`: a new key; `.key` holds it, this once. Never retried.
   * `expiresIn` ("30d", "12h", "45m", "90s") or `expiresAt` (RFC 3339), not both.
   */
  static async create(
    params: { name: string; scope?: ApiKeyScope; expiresIn?: string; expiresAt?: string } & ConnectionOptions,
  ): Promise<ApiKeyInfo> {
    const [conn, body] = splitConnectionOptions(params);
    return KEYS.create(body, conn);
  }

  /** `GET /api/api-keys`: ids, names, scopes and dates, oldest first (no `key`). */
  static async list(opts: ConnectionOptions = {}): Promise<ApiKeyInfo[]> {
    return KEYS.list(opts);
  }

  /** `DELETE /api/api-keys/{id}`: revokes the key at once. NotFoundError / ConflictError (last key). */
  static async delete(id: string, opts: ConnectionOptions = {}): Promise<void> {
    return KEYS.delete(id, opts);
  }
}
