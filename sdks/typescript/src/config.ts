/**
 * Connection options shared by every call, and how they are resolved.
 *
 * Precedence for each setting: the explicit option, then the environment
 * variable, then the default. Nothing is cached: each call resolves again,
 * so changing the environment between calls takes effect.
 */
import { ConfigurationError } from "./errors.js";

/** The default API URL: what `osb dev` listens on. */
export const DEFAULT_API_URL = "http://127.0.0.1:8080";
/** Default per-request timeout. Exec requests add their own timeout on top. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** Default number of retries of an idempotent request (GET, PUT, DELETE). */
export const DEFAULT_MAX_RETRIES = 3;
/** Default first backoff delay; doubles per retry, capped at 5 s. */
export const DEFAULT_RETRY_DELAY_MS = 250;

/** Options accepted by every SDK call. */
export interface ConnectionOptions {
  /** Base URL of the OpenSandbox server. Default: `OPENSANDBOX_API_URL`, else `http://127.0.0.1:8080`. */
  apiUrl?: string;
  /** API key sent as `X-API-Key`. Default: `OPENSANDBOX_API_KEY`. */
  apiKey?: string;
  /** Timeout of one HTTP attempt in milliseconds. Default 60000. */
  requestTimeoutMs?: number;
  /** Retries of idempotent requests (GET, PUT, DELETE) on network errors and 502/503/504. Default 3; 0 disables. */
  maxRetries?: number;
  /** First retry delay in milliseconds (doubles per retry, with jitter, capped at 5 s). Default 250. */
  retryDelayMs?: number;
  /**
   * PEM file of CA certificates that verify an `https://` server, instead of
   * Node's default trust store. Default: `OSB_CA_FILE`, else the default store.
   */
  caFile?: string;
  /**
   * Optional debug logger: receives one line per HTTP attempt
   * (method, path, status or error, duration). Never a body or a header value.
   */
  logger?: (line: string) => void;
}

/** Fully resolved connection settings. */
export interface ResolvedConfig {
  apiUrl: string;
  apiKey: string | undefined;
  requestTimeoutMs: number;
  maxRetries: number;
  retryDelayMs: number;
  logger: ((line: string) => void) | undefined;
  caFile: string | undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new ConfigurationError(`${name} must be a non-negative number`);
  }
  return value;
}

/** Resolves options against the environment (`env` defaults to `process.env`). */
export function resolveConfig(opts: ConnectionOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  const rawUrl = nonEmpty(opts.apiUrl) ?? nonEmpty(env.OPENSANDBOX_API_URL) ?? DEFAULT_API_URL;
  let parsed: URL;
  try {
    parsed = new URL(rawUrl);
  } catch {
    throw new ConfigurationError(`apiUrl is not a valid URL: ${JSON.stringify(rawUrl)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ConfigurationError(`apiUrl must be http:// or https://, got ${JSON.stringify(parsed.protocol)}`);
  }
  if (parsed.username !== "" || parsed.password !== "") {
    throw new ConfigurationError("apiUrl must not contain credentials; use apiKey");
  }
  return {
    apiUrl: rawUrl.replace(/\/+$/, ""),
    apiKey: nonEmpty(opts.apiKey) ?? nonEmpty(env.OPENSANDBOX_API_KEY),
    requestTimeoutMs: nonNegative("requestTimeoutMs", opts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
    maxRetries: Math.floor(nonNegative("maxRetries", opts.maxRetries, DEFAULT_MAX_RETRIES)),
    retryDelayMs: nonNegative("retryDelayMs", opts.retryDelayMs, DEFAULT_RETRY_DELAY_MS),
    logger: opts.logger,
    caFile: nonEmpty(opts.caFile) ?? nonEmpty(env.OSB_CA_FILE),
  };
}

/** Splits caller options into connection options and everything else. */
export function splitConnectionOptions<T extends ConnectionOptions>(
  opts: T,
): [ConnectionOptions, Omit<T, keyof ConnectionOptions>] {
  const { apiUrl, apiKey, requestTimeoutMs, maxRetries, retryDelayMs, logger, caFile, ...rest } = opts;
  return [{ apiUrl, apiKey, requestTimeoutMs, maxRetries, retryDelayMs, logger, caFile }, rest];
}
