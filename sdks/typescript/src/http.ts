/**
 * The one place that talks HTTP.
 *
 * - JSON in, JSON out; `X-API-Key` on every request.
 * - Retries: only idempotent methods (GET, PUT, DELETE), only on network
 *   errors, timeouts and 502/503/504, at most `maxRetries` times with
 *   exponential backoff and jitter. POST and PATCH are never retried (a
 *   create or an exec must not run twice).
 * - Errors: see errors.ts. A request's body is never put in an error, a log
 *   line, `toString()`, `JSON.stringify()` or `util.inspect()` of the request;
 *   values marked sensitive are scrubbed from any text the server echoes back.
 *
 * Stateless; safe to use concurrently.
 */
import { inspect } from "node:util";
import { resolveConfig, type ConnectionOptions, type ResolvedConfig } from "./config.js";
import { ConfigurationError, ConnectionError, OpenSandboxError, errorForStatus } from "./errors.js";
import { readCaFile, requestWithCa } from "./tls.js";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

const IDEMPOTENT: ReadonlySet<HttpMethod> = new Set<HttpMethod>(["GET", "PUT", "DELETE"]);
const RETRYABLE_STATUS: ReadonlySet<number> = new Set([502, 503, 504]);
const MAX_BACKOFF_MS = 5_000;
const REDACTED = "[REDACTED]";
const USER_AGENT = "opensandbox-js/0.1.0";

/**
 * One API request. Its body is held privately: printing, stringifying or
 * inspecting the request shows the method and path only.
 */
export class ApiRequest {
  readonly method: HttpMethod;
  readonly path: string;
  /** Extra time (ms) added to the per-attempt timeout, e.g. an exec's own timeout. */
  readonly extraTimeoutMs: number;
  readonly #body: unknown;
  readonly #sensitive: readonly string[];

  constructor(method: HttpMethod, path: string, body?: unknown, options: { sensitive?: string[]; extraTimeoutMs?: number } = {}) {
    this.method = method;
    this.path = path;
    this.#body = body;
    this.#sensitive = (options.sensitive ?? []).filter((s) => s.length > 0);
    this.extraTimeoutMs = options.extraTimeoutMs ?? 0;
  }

  get hasBody(): boolean {
    return this.#body !== undefined;
  }

  /** The serialized body; only the transport calls this. */
  serializeBody(): string | undefined {
    return this.#body === undefined ? undefined : JSON.stringify(this.#body);
  }

  /** Replaces every sensitive value (raw and JSON-escaped) in `text`. */
  redact(text: string): string {
    let out = text;
    for (const value of this.#sensitive) {
      const escaped = JSON.stringify(value).slice(1, -1);
      for (const needle of new Set([value, escaped])) {
        if (needle.length > 0) out = out.split(needle).join(REDACTED);
      }
    }
    return out;
  }

  toString(): string {
    return `${this.method} ${this.path}${this.hasBody ? " (body redacted)" : ""}`;
  }

  toJSON(): { method: string; path: string } {
    return { method: this.method, path: this.path };
  }

  [inspect.custom](): string {
    return `ApiRequest { ${this.toString()} }`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function backoffMs(config: ResolvedConfig, retry: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, config.retryDelayMs * 2 ** retry);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Reads `{"error": "..."}` from an error response, falling back to a short generic text. */
function serverMessage(status: number, statusText: string, bodyText: string): string {
  try {
    const parsed: unknown = JSON.parse(bodyText);
    if (parsed !== null && typeof parsed === "object" && typeof (parsed as { error?: unknown }).error === "string") {
      return (parsed as { error: string }).error;
    }
  } catch {
    // not JSON: fall through
  }
  const text = bodyText.trim().slice(0, 200);
  return text !== "" ? `HTTP ${status}: ${text}` : `HTTP ${status}${statusText ? ` ${statusText}` : ""}`;
}

function describeNetworkError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return `request timed out after ${timeoutMs} ms`;
  }
  // fetch wraps the real reason (ECONNREFUSED, ENOTFOUND, ...) in `cause`.
  const cause = err instanceof Error ? (err as Error & { cause?: unknown }).cause : undefined;
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: unknown }).code;
    return `connection failed: ${typeof code === "string" ? `${code} ` : ""}${cause.message}`.trim();
  }
  return `connection failed: ${err instanceof Error ? err.message : String(err)}`;
}

/** Sends requests to one OpenSandbox server. */
export class HttpClient {
  readonly config: ResolvedConfig;

  constructor(opts: ConnectionOptions = {}) {
    this.config = resolveConfig(opts);
  }

  /** Sends `req`, retrying when allowed; resolves to the parsed JSON body (undefined when empty). */
  async send<T>(req: ApiRequest): Promise<T> {
    if (this.config.apiKey === undefined) {
      throw new ConfigurationError(
        "no API key: pass apiKey or set OPENSANDBOX_API_KEY",
        0,
        req.method,
        req.path,
      );
    }
    const attempts = IDEMPOTENT.has(req.method) ? this.config.maxRetries + 1 : 1;
    let lastError: OpenSandboxError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep(backoffMs(this.config, attempt - 1));
      const outcome = await this.#attempt<T>(req, this.config.apiKey);
      if (outcome.ok) return outcome.value;
      lastError = outcome.error;
      if (!outcome.retryable) break;
    }
    throw lastError as OpenSandboxError;
  }

  async #attempt<T>(
    req: ApiRequest,
    apiKey: string,
  ): Promise<{ ok: true; value: T } | { ok: false; error: OpenSandboxError; retryable: boolean }> {
    const timeoutMs = this.config.requestTimeoutMs + req.extraTimeoutMs;
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": USER_AGENT,
      "x-api-key": apiKey,
    };
    const body = req.serializeBody();
    if (body !== undefined) headers["content-type"] = "application/json";
    const started = Date.now();
    const log = (outcome: string): void => this.config.logger?.(`${req.method} ${req.path} -> ${outcome} (${Date.now() - started} ms)`);

    let response: { ok: boolean; status: number; statusText: string };
    let text: string;
    let ca: Buffer | undefined;
    if (this.config.caFile !== undefined && this.config.apiUrl.startsWith("https:")) {
      try {
        ca = readCaFile(this.config.caFile);
      } catch (err) {
        return { ok: false, error: new ConfigurationError(String((err as Error).message), 0, req.method, req.path), retryable: false };
      }
    }
    try {
      if (ca !== undefined) {
        // fetch cannot take a CA: node:https, which also never follows redirects.
        ({ response, text } = await requestWithCa(this.config.apiUrl + req.path, req.method, headers, body, timeoutMs, ca));
      } else {
        const fetched = await fetch(this.config.apiUrl + req.path, {
          method: req.method,
          headers,
          body,
          // Never follow redirects: that would resend the body (maybe a secret) elsewhere.
          redirect: "manual",
          signal: timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined,
        });
        response = fetched;
        text = await fetched.text();
      }
    } catch (err) {
      const message = req.redact(describeNetworkError(err, timeoutMs));
      log(message);
      return { ok: false, error: new ConnectionError(message, 0, req.method, req.path), retryable: true };
    }
    log(String(response.status));
    if (response.ok) {
      if (text.trim() === "") return { ok: true, value: undefined as T };
      try {
        return { ok: true, value: JSON.parse(text) as T };
      } catch {
        return {
          ok: false,
          error: new OpenSandboxError(`invalid JSON in response (HTTP ${response.status})`, response.status, req.method, req.path),
          retryable: false,
        };
      }
    }
    if (response.status >= 300 && response.status < 400) {
      return {
        ok: false,
        error: new OpenSandboxError(`unexpected redirect (HTTP ${response.status}); check apiUrl`, response.status, req.method, req.path),
        retryable: false,
      };
    }
    const message = req.redact(serverMessage(response.status, response.statusText, text));
    return {
      ok: false,
      error: errorForStatus(response.status, message, req.method, req.path),
      retryable: RETRYABLE_STATUS.has(response.status),
    };
  }
}

/** Encodes one path segment (a project name, secret name, sandbox id...). */
export function seg(value: string): string {
  if (typeof value !== "string" || value === "") {
    // The value is not echoed: a misplaced argument could be a secret.
    throw new ConfigurationError(`expected a non-empty string identifier, got ${value === "" ? "an empty string" : typeof value}`);
  }
  return encodeURIComponent(value);
}
