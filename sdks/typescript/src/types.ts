/** Wire types of the OpenSandbox REST API (JSON, camelCase). */

/** A project: defaults for its sandboxes, and the owner of a set of secrets. */
export interface ProjectInfo {
  id: string;
  orgId: string;
  name: string;
  template: string;
  cpuCount: number;
  memoryMB: number;
  /** Default writable disk of the project's image sandboxes, in MB. */
  diskMB?: number;
  timeoutSec: number;
  /** Hosts sandboxes may reach: exact names or `*.suffix`; empty = all hosts. */
  egressAllowlist: string[];
  /** Names of org-level secret groups attached to the project, in resolution order. */
  secretGroups: string[];
  createdAt: string;
  updatedAt: string;
}

/** Fields accepted when creating a project; all but `name` are optional. */
export interface ProjectCreateParams {
  name: string;
  template?: string;
  cpuCount?: number;
  memoryMB?: number;
  /** Writable disk of image sandboxes in MB, 64–65536 (default 1024). */
  diskMB?: number;
  timeoutSec?: number;
  egressAllowlist?: string[];
  secretGroups?: string[];
}

/** A partial update: fields left out keep their values; `[]` clears a list. */
export type ProjectUpdateParams = Partial<ProjectCreateParams>;

/** Metadata of a stored secret. Values are write-only and never returned. */
export interface SecretInfo {
  name: string;
  /**
   * Hosts the real value may be sent to. `["*"]` = any host the sandbox may
   * reach; empty = only the hosts on the sandbox's egress allowlist, and none
   * at all when that allowlist is empty.
   */
  allowedHosts: string[];
  createdAt: string;
  updatedAt: string;
  /** "value" (default), "hmac", "aws-sigv4" or "oauth2-refresh". */
  kind?: SecretKind;
  /** A signing kind's non-secret material fields (never its key or tokens). */
  material?: Record<string, unknown>;
  /** Requests that may use the secret; empty = every request. */
  allowedRequests?: RequestRule[];
  onDisallowedRequest?: "seal" | "refuse";
  /**
   * Only in the answer to setSecret, when there is advice: e.g. the secret has
   * no allowedHosts and the project's egress allowlist is empty, so it will
   * not be sent to any host.
   */
  warnings?: string[];
}

/** Options of setSecret. */
export interface SetSecretOptions {
  /**
   * Where the real value may be sent: names, `*.suffix` or IP addresses, each
   * with an optional `:port`; `["*"]` = any host the sandbox may reach.
   * Left out: only the egress allowlist's hosts (none if it is empty).
   */
  allowedHosts?: string[];
  /**
   * A signing kind (docs/secrets.md): the proxy signs (hmac, aws-sigv4) or
   * injects a fresh access token (oauth2-refresh). Such a secret takes
   * `material` instead of a value (pass "" as the value).
   */
  kind?: SecretKind;
  /** The kind's JSON material; every string in it is treated as secret. */
  material?: Record<string, unknown>;
  /** Only these requests may use the secret ({host, methods, pathPrefix} or "POST host/path"). */
  allowedRequests?: Array<RequestRule | string>;
  /** What a request outside allowedRequests does: "seal" (default) or "refuse" (403). */
  onDisallowedRequest?: "seal" | "refuse";
}

export type SecretKind = "value" | "hmac" | "aws-sigv4" | "oauth2-refresh";

/** A request a secret may be used in. */
export interface RequestRule {
  host: string;
  /** Upper case; empty = any method. */
  methods?: string[];
  /** Starts with "/"; matches the path and everything below it. */
  pathPrefix?: string;
}

/** An org-level, named set of secrets that projects can attach. */
export interface SecretGroupInfo {
  id: string;
  orgId?: string;
  name: string;
  createdAt?: string;
  updatedAt?: string;
}

/** An API key of your org; `key` is present only in the answer to `ApiKey.create`. */
export interface ApiKeyInfo {
  id: string;
  name: string;
  /** "admin" or "sandbox". */
  scope?: ApiKeyScope;
  createdAt?: string;
  /** RFC 3339 UTC; null for a key that never expires. */
  expiresAt?: string | null;
  key?: string;
}

/** admin: everything, including secrets and keys; sandbox: create, use and delete sandboxes, read projects. */
export type ApiKeyScope = "admin" | "sandbox";

/** A sandbox as the server reports it. */
export interface SandboxInfo {
  sandboxID: string;
  status: string;
  projectId?: string;
  templateID?: string;
  cpuCount?: number;
  memoryMB?: number;
  diskMB?: number;
  startedAt?: string;
  endAt?: string;
  /** Set at create; {} when none. */
  metadata?: Record<string, string>;
}

/** Fields of `POST /api/sandboxes`; project defaults apply to what is left out. */
export interface SandboxCreateParams {
  /** Project id or name whose defaults and secrets the sandbox gets. */
  project?: string;
  templateID?: string;
  cpuCount?: number;
  memoryMB?: number;
  /** Writable disk of an image sandbox in MB, 64–65536; overrides the project's. */
  diskMB?: number;
  /** Lifetime in seconds; the sandbox is killed when it expires. */
  timeout?: number;
  /** Plain (unsealed) environment variables; they win over a secret of the same name. */
  envs?: Record<string, string>;
  egressAllowlist?: string[];
  /** Restore this checkpoint (its config gives the defaults; fresh tokens for the current secrets). */
  fromCheckpoint?: string;
  /** Alias of templateID (seed-compatible). */
  template?: string;
  /** A small string map kept with the sandbox and returned everywhere (<= 64 keys). */
  metadata?: Record<string, string>;
}

/** A checkpoint: a sandbox's saved files + resolved config (no process memory, no secrets, no tokens). */
export interface CheckpointInfo {
  checkpointID: string;
  sandboxID: string;
  projectId?: string | null;
  templateID?: string;
  cpuCount?: number;
  memoryMB?: number;
  timeoutSec?: number;
  egressAllowlist?: string[];
  envNames?: string[];
  sizeBytes?: number;
  createdAt?: string;
}

/** Result of a command run in a sandbox. */
export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Set by servers that cap output: the stream was cut at the cap. */
  stdoutTruncated?: boolean;
  stderrTruncated?: boolean;
  /** Set when the command was killed at its timeout. */
  timedOut?: boolean;
}

/** Options of `sandbox.exec.run`. */
export interface ExecOptions {
  /** Arguments; when given, `cmd` is run directly as the program (no shell). */
  args?: string[];
  /** Extra environment variables for this command. */
  envs?: Record<string, string>;
  /** Working directory inside the sandbox. */
  cwd?: string;
  /** Timeout of the command in whole seconds (server-side; fractions round up). */
  timeout?: number;
}
