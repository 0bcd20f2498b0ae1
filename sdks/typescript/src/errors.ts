/**
 * Errors thrown by the SDK.
 *
 * Every failure is an {@link OpenSandboxError}. `status` is the HTTP status
 * the server answered with, or 0 when no response was received (network
 * failure, timeout, missing configuration). `message` is the server's own
 * `{"error": "..."}` text when it sent one.
 *
 * Contract: no error ever carries a secret value. Request bodies are never
 * copied into errors, and any text a server echoes back that contains a value
 * the failed request was sending is replaced by `[REDACTED]`.
 */

/** Base class of every error the SDK throws. */
export class OpenSandboxError extends Error {
  /** HTTP status code, or 0 when no HTTP response was received. */
  readonly status: number;
  /** HTTP method of the failed request (empty for configuration errors). */
  readonly method: string;
  /** Path of the failed request, e.g. `/api/projects/demo` (never a body). */
  readonly path: string;

  constructor(message: string, status = 0, method = "", path = "") {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.method = method;
    this.path = path;
  }

  /** A JSON view that never contains more than the fields above. */
  toJSON(): { name: string; status: number; message: string; method: string; path: string } {
    return { name: this.name, status: this.status, message: this.message, method: this.method, path: this.path };
  }
}

/** 400: the server rejected the input; the message names the field. */
export class BadRequestError extends OpenSandboxError {}
/** 401: missing, wrong or expired API key; 403: the key's scope does not cover the call. */
export class AuthenticationError extends OpenSandboxError {}
/** 404: no such project, secret group, secret or sandbox (in your org). */
export class NotFoundError extends OpenSandboxError {}
/** 409: the name is already taken. */
export class ConflictError extends OpenSandboxError {}
/** 413: the request body is too large (e.g. a secret value over 64 KiB). */
export class PayloadTooLargeError extends OpenSandboxError {}
/** 503: the service cannot serve the request now (e.g. no healthy worker). */
export class ServiceUnavailableError extends OpenSandboxError {}
/** status 0: no HTTP response (connection refused, DNS, timeout). */
export class ConnectionError extends OpenSandboxError {}
/** status 0: the SDK was given an unusable configuration (e.g. a bad apiUrl). */
export class ConfigurationError extends OpenSandboxError {}

/** Maps an HTTP status to the matching error class. */
export function errorForStatus(status: number, message: string, method: string, path: string): OpenSandboxError {
  switch (status) {
    case 400:
      return new BadRequestError(message, status, method, path);
    case 401:
    case 403:
      return new AuthenticationError(message, status, method, path);
    case 404:
      return new NotFoundError(message, status, method, path);
    case 409:
      return new ConflictError(message, status, method, path);
    case 413:
      return new PayloadTooLargeError(message, status, method, path);
    case 503:
      return new ServiceUnavailableError(message, status, method, path);
    default:
      return new OpenSandboxError(message, status, method, path);
  }
}
