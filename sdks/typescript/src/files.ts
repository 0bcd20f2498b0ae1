/**
 * Files inside a sandbox: `sandbox.files` (`/api/sandboxes/{id}/files`).
 *
 * Paths are resolved inside the sandbox, as the sandbox user; a relative
 * path is taken from `/home/sandbox`. Uploads and downloads stream:
 * `readStream` hands over the response body as it arrives, and `write`
 * accepts a `ReadableStream` (sent chunked) so large files never sit in
 * memory. A failed upload leaves no partial file behind.
 *
 * Streams use the platform's `fetch`; with a custom `caFile` the small
 * calls work as usual, but streamed transfers need the CA in
 * `NODE_EXTRA_CA_CERTS` (fetch cannot take one).
 */
import { ConfigurationError, ConnectionError, OpenSandboxError, errorForStatus } from "./errors.js";
import { ApiRequest, HttpClient, seg } from "./http.js";

/** One listing entry. */
export interface FileEntry {
  name: string;
  /** file, dir, symlink, fifo, socket, char-device, block-device or other */
  type: string;
  size: number;
  /** Octal permission bits, e.g. "0644". */
  mode: string;
  /** RFC 3339. */
  mtime: string;
}

export interface FileListing {
  path: string;
  entries: FileEntry[];
  truncated: boolean;
}

export interface WriteOptions {
  /** Permission bits: 0o600 or "600" (default 0644). */
  mode?: number | string;
}

const TRANSFER_TIMEOUT_MS = 6 * 60 * 60 * 1000;

function checkPath(path: string): string {
  if (typeof path !== "string" || path === "") throw new ConfigurationError("files: path must be a non-empty string");
  return path;
}

function modeText(mode: number | string | undefined): string | undefined {
  if (mode === undefined) return undefined;
  if (typeof mode === "number" && Number.isInteger(mode) && mode >= 0 && mode <= 0o7777) return mode.toString(8);
  if (typeof mode === "string" && /^[0-7]{1,4}$/.test(mode)) return mode;
  throw new ConfigurationError("files: mode must be a number like 0o644 or a string like \"644\"");
}

/** File operations on one sandbox. */
export class SandboxFiles {
  readonly #id: string;
  readonly #client: HttpClient;

  constructor(sandboxId: string, client: HttpClient) {
    this.#id = sandboxId;
    this.#client = client;
  }

  #url(suffix: string, path: string, extra = ""): string {
    return `/api/sandboxes/${seg(this.#id)}/files${suffix}?path=${encodeURIComponent(checkPath(path))}${extra}`;
  }

  async #stream(method: "GET" | "PUT", path: string, body?: NonNullable<RequestInit["body"]>, contentLength?: number): Promise<Response> {
    const apiKey = this.#client.config.apiKey;
    if (apiKey === undefined) throw new ConfigurationError("no API key: pass apiKey or set OPENSANDBOX_API_KEY", 0, method, path);
    const headers: Record<string, string> = { "x-api-key": apiKey, accept: "application/octet-stream, application/json" };
    if (body !== undefined) headers["content-type"] = "application/octet-stream";
    if (contentLength !== undefined) headers["content-length"] = String(contentLength);
    let res: Response;
    try {
      const init: RequestInit & { duplex?: "half" } = {
        method,
        headers,
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(TRANSFER_TIMEOUT_MS),
      };
      if (body instanceof ReadableStream) init.duplex = "half";
      res = await fetch(this.#client.config.apiUrl + path, init);
    } catch (err) {
      throw new ConnectionError(`connection failed: ${err instanceof Error ? err.message : String(err)}`, 0, method, path);
    }
    if (!res.ok) {
      const text = await res.text();
      let message = `HTTP ${res.status}`;
      try {
        const parsed = JSON.parse(text) as { error?: unknown };
        if (typeof parsed.error === "string") message = parsed.error;
      } catch {
        /* not JSON */
      }
      throw errorForStatus(res.status, message, method, path);
    }
    return res;
  }

  /** The file's bytes as a stream, as they arrive (`GET .../files`). */
  async readStream(path: string): Promise<ReadableStream<Uint8Array>> {
    const url = this.#url("", path);
    const res = await this.#stream("GET", url);
    if (res.body === null) return new ReadableStream({ start: (c) => c.close() });
    return res.body;
  }

  /** The whole file (for small files; see readStream). Throws if the body ends early. */
  async read(path: string): Promise<Uint8Array> {
    const url = this.#url("", path);
    const res = await this.#stream("GET", url);
    const data = new Uint8Array(await res.arrayBuffer());
    const expected = res.headers.get("content-length");
    if (expected !== null && Number(expected) !== data.length) {
      throw new OpenSandboxError(`download of ${path} ended early`, 0, "GET", url);
    }
    return data;
  }

  async readText(path: string): Promise<string> {
    return new TextDecoder().decode(await this.read(path));
  }

  /**
   * Uploads to `path` (`PUT .../files`), replacing the file atomically.
   * `data`: a string (UTF-8), bytes, a Blob, or a ReadableStream (streamed,
   * chunked). A full disk throws PayloadTooLargeError (413).
   */
  async write(
    path: string,
    data: string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>,
    opts: WriteOptions = {},
  ): Promise<{ path: string; size: number }> {
    const mode = modeText(opts.mode);
    const url = this.#url("", path, mode !== undefined ? `&mode=${mode}` : "");
    let body: NonNullable<RequestInit["body"]>;
    if (typeof data === "string") body = new TextEncoder().encode(data);
    else if (data instanceof Uint8Array || data instanceof ArrayBuffer || data instanceof Blob || data instanceof ReadableStream) body = data;
    else throw new ConfigurationError("files.write: data must be a string, bytes, a Blob or a ReadableStream");
    const res = await this.#stream("PUT", url, body);
    return (await res.json()) as { path: string; size: number };
  }

  /** `GET .../files/list`: the entries of a directory (or the one entry of a file). */
  async list(path = "/home/sandbox"): Promise<FileEntry[]> {
    const out = await this.#client.send<FileListing>(new ApiRequest("GET", this.#url("/list", path)));
    return out?.entries ?? [];
  }

  /** `POST .../files/mkdir`; `parents` creates missing parents and accepts an existing directory. */
  async mkdir(path: string, opts: { parents?: boolean; mode?: number | string } = {}): Promise<void> {
    const body: Record<string, unknown> = { path: checkPath(path), parents: opts.parents === true };
    const mode = modeText(opts.mode);
    if (mode !== undefined) body.mode = mode;
    await this.#client.send<unknown>(new ApiRequest("POST", `/api/sandboxes/${seg(this.#id)}/files/mkdir`, body));
  }

  /** `DELETE .../files`: a file, a symlink (not its target) or an empty directory; a tree with `recursive`. */
  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.#client.send<unknown>(new ApiRequest("DELETE", this.#url("", path, opts.recursive === true ? "&recursive=true" : "")));
  }
}
