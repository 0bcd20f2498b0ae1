/**
 * Image templates of your org: `/api/templates` (docs/templates.md).
 *
 * `Template.import` uploads an OCI archive or `docker save` tarball,
 * streamed (a file path is read as a stream: the image never sits in
 * memory); the server verifies every digest and answers with the template's
 * name and image digest. Then `Sandbox.create({ template: "NAME" })` runs on
 * it. Import and delete need an admin key; list and get also work with a
 * sandbox-scope key. Errors: BadRequestError naming what is wrong with the
 * image (the blob or entry), PayloadTooLargeError beyond the server's
 * `--max-template-bytes`, ConflictError for a taken name (import) or a
 * template in use (delete).
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { Collection } from "./collection.js";
import type { ConnectionOptions } from "./config.js";
import { ConfigurationError, ConnectionError, errorForStatus } from "./errors.js";
import { HttpClient } from "./http.js";

export interface TemplateInfo {
  name: string;
  /** The image config digest, "sha256:<hex>". */
  digest: string;
  /** Bytes of the stored tarball. */
  size: number;
  createdAt: string;
}

const TEMPLATES = new Collection<TemplateInfo>("/api/templates");
const TRANSFER_TIMEOUT_MS = 2 * 60 * 60 * 1000;

export type TemplateTarball = string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>;

export class Template {
  private constructor() {}

  /**
   * `POST /api/templates?name=NAME` with the tarball as the body. `tarball`:
   * a local file path (streamed, with its size), bytes, a Blob, or a
   * ReadableStream (streamed chunked). Never retried.
   */
  static async import(name: string, tarball: TemplateTarball, opts: ConnectionOptions = {}): Promise<TemplateInfo> {
    if (typeof name !== "string" || name === "") throw new ConfigurationError("templates.import: name must be a non-empty string");
    const client = new HttpClient(opts);
    const apiKey = client.config.apiKey;
    const path = `/api/templates?name=${encodeURIComponent(name)}`;
    if (apiKey === undefined) throw new ConfigurationError("no API key: pass apiKey or set OPENSANDBOX_API_KEY", 0, "POST", path);
    const headers: Record<string, string> = { "x-api-key": apiKey, "content-type": "application/octet-stream", accept: "application/json" };
    let body: NonNullable<RequestInit["body"]>;
    if (typeof tarball === "string") {
      const st = await stat(tarball).catch(() => {
        throw new ConfigurationError(`templates.import: cannot read ${tarball}`);
      });
      headers["content-length"] = String(st.size);
      body = Readable.toWeb(createReadStream(tarball)) as unknown as ReadableStream<Uint8Array>;
    } else if (tarball instanceof Uint8Array || tarball instanceof ArrayBuffer || tarball instanceof Blob || tarball instanceof ReadableStream) {
      body = tarball;
    } else {
      throw new ConfigurationError("templates.import: tarball must be a path, bytes, a Blob or a ReadableStream");
    }
    const init: RequestInit & { duplex?: "half" } = {
      method: "POST",
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(TRANSFER_TIMEOUT_MS),
    };
    if (body instanceof ReadableStream) init.duplex = "half";
    let res: Response;
    try {
      res = await fetch(client.config.apiUrl + path, init);
    } catch (err) {
      throw new ConnectionError(`connection failed: ${err instanceof Error ? err.message : String(err)}`, 0, "POST", path);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    if (!res.ok) {
      const message = typeof (parsed as { error?: unknown })?.error === "string" ? (parsed as { error: string }).error : `HTTP ${res.status}`;
      throw errorForStatus(res.status, message, "POST", path);
    }
    return parsed as TemplateInfo;
  }

  /** `GET /api/templates`: the org's templates, by name. */
  static async list(opts: ConnectionOptions = {}): Promise<TemplateInfo[]> {
    return TEMPLATES.list(opts);
  }

  /** `GET /api/templates/{name}`; NotFoundError if the org has none of that name. */
  static async get(name: string, opts: ConnectionOptions = {}): Promise<TemplateInfo> {
    return TEMPLATES.get(name, opts);
  }

  /** `DELETE /api/templates/{name}`; ConflictError while a sandbox uses it. */
  static async delete(name: string, opts: ConnectionOptions = {}): Promise<void> {
    return TEMPLATES.delete(name, opts);
  }
}
