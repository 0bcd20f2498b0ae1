/**
 * Sandboxes: `/api/sandboxes`.
 *
 * A `Sandbox` object is a handle: it holds the sandbox id and the connection
 * options it was created or connected with, and nothing else of consequence.
 * Code inside the sandbox sees each project secret only as a sealed token
 * (`osb_sealed_` + 32 hex); the real value is swapped in by the host-side
 * proxy on allowed HTTPS requests.
 */
import { Commands, Pty } from "./commands.js";
import { splitConnectionOptions, type ConnectionOptions } from "./config.js";
import { ConfigurationError, OpenSandboxError } from "./errors.js";
import { SandboxFiles } from "./files.js";
import { ApiRequest, HttpClient, seg } from "./http.js";
import type { CheckpointInfo, ExecOptions, ExecResult, SandboxCreateParams, SandboxInfo } from "./types.js";

/** Saving, restoring and waking copy files: allow them more time than a plain call. */
const LONG_CALL_EXTRA_MS = 5 * 60 * 1000;

/** The wire body of `POST /api/sandboxes/{id}/exec/run`. */
export interface ExecRequestBody {
  cmd: string;
  args?: string[];
  envs?: Record<string, string>;
  cwd?: string;
  timeout?: number;
}

/**
 * Turns the user's command into the wire shape:
 * - `"echo hi"` (a string, no `args`) runs through a shell: `sh -c "echo hi"`;
 * - `"ls", { args: ["-l"] }` runs `ls` directly with those arguments;
 * - `["ls", "-l"]` (an argv array) runs `ls` directly too.
 */
export function buildExecBody(cmd: string | string[], opts: ExecOptions = {}): ExecRequestBody {
  let program: string;
  let args: string[];
  if (Array.isArray(cmd)) {
    if (cmd.length === 0 || typeof cmd[0] !== "string" || cmd[0] === "") {
      throw new ConfigurationError("exec: cmd array must start with a program name");
    }
    if (opts.args !== undefined) throw new ConfigurationError("exec: pass arguments either in the cmd array or in args, not both");
    [program, ...args] = cmd;
  } else if (typeof cmd === "string" && cmd !== "") {
    if (opts.args !== undefined) {
      program = cmd;
      args = opts.args;
    } else {
      program = "sh";
      args = ["-c", cmd];
    }
  } else {
    throw new ConfigurationError("exec: cmd must be a non-empty string or argv array");
  }
  const body: ExecRequestBody = { cmd: program, args };
  if (opts.envs !== undefined) body.envs = opts.envs;
  if (opts.cwd !== undefined) body.cwd = opts.cwd;
  if (opts.timeout !== undefined) {
    if (typeof opts.timeout !== "number" || !Number.isFinite(opts.timeout) || opts.timeout <= 0) {
      throw new ConfigurationError("exec: timeout must be a positive number of seconds");
    }
    body.timeout = Math.ceil(opts.timeout);
  }
  return body;
}

/** Runs commands in one sandbox. */
export class SandboxExec {
  readonly #sandbox: Sandbox;

  constructor(sandbox: Sandbox) {
    this.#sandbox = sandbox;
  }

  /**
   * Runs a command and waits for it: `POST /api/sandboxes/{id}/exec/run`.
   * A non-zero exit code is a result, not an error. Never retried.
   */
  async run(cmd: string | string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const body = buildExecBody(cmd, opts);
    const extraTimeoutMs = body.timeout !== undefined && body.timeout > 0 ? body.timeout * 1000 : 0;
    const req = new ApiRequest("POST", `/api/sandboxes/${seg(this.#sandbox.sandboxId)}/exec/run`, body, { extraTimeoutMs });
    return this.#sandbox.client.send<ExecResult>(req);
  }
}

export class Sandbox {
  /** The sandbox id (`sandboxID` on the wire). */
  readonly sandboxId: string;
  /** What the server reported when this handle was created or connected. */
  readonly info: SandboxInfo;
  /** Command execution. */
  readonly exec: SandboxExec;
  /** Streamed and background commands. */
  readonly commands: Commands;
  /** Terminals. */
  readonly pty: Pty;
  /** Files: read/write/list/remove/mkdir (streams for large files). */
  readonly files: SandboxFiles;
  /** @internal the connection this handle uses. */
  readonly client: HttpClient;

  private constructor(info: SandboxInfo, client: HttpClient) {
    this.sandboxId = info.sandboxID;
    this.info = info;
    this.client = client;
    this.exec = new SandboxExec(this);
    this.commands = new Commands(this);
    this.pty = new Pty(this, this.commands);
    this.files = new SandboxFiles(info.sandboxID, client);
  }

  /**
   * `POST /api/sandboxes`: creates a sandbox (project defaults apply to fields
   * left out). Never retried. Throws ServiceUnavailableError (503) when no
   * worker is available.
   */
  static async create(params: SandboxCreateParams & ConnectionOptions = {}): Promise<Sandbox> {
    const [conn, rest] = splitConnectionOptions(params);
    // `template` is an alias of `templateID` (seed-compatible shapes).
    const { template, ...body } = rest as typeof rest & { template?: string };
    if (template !== undefined) {
      if (body.templateID !== undefined && body.templateID !== template) {
        throw new ConfigurationError("create: template and templateID differ (template is an alias)");
      }
      body.templateID = template;
    }
    if (body.metadata !== undefined) {
      const m = body.metadata as unknown;
      if (typeof m !== "object" || m === null || Object.values(m).some((v) => typeof v !== "string")) {
        throw new ConfigurationError("create: metadata must map strings to strings");
      }
    }
    const client = new HttpClient(conn);
    const info = await client.send<SandboxInfo>(new ApiRequest("POST", "/api/sandboxes", body));
    if (info === undefined || typeof info.sandboxID !== "string" || info.sandboxID === "") {
      throw new OpenSandboxError("server response to POST /api/sandboxes has no sandboxID", 0, "POST", "/api/sandboxes");
    }
    return new Sandbox(info, client);
  }

  /** Attaches to an existing sandbox (`GET /api/sandboxes/{id}`; NotFoundError if it is gone). */
  static async connect(sandboxId: string, opts: ConnectionOptions = {}): Promise<Sandbox> {
    const client = new HttpClient(opts);
    const info = await client.send<SandboxInfo>(new ApiRequest("GET", `/api/sandboxes/${seg(sandboxId)}`));
    return new Sandbox({ ...info, sandboxID: info?.sandboxID ?? sandboxId }, client);
  }

  /** `GET /api/sandboxes`: the sandboxes of your org. */
  static async list(opts: ConnectionOptions = {}): Promise<SandboxInfo[]> {
    return new HttpClient(opts).send<SandboxInfo[]>(new ApiRequest("GET", "/api/sandboxes"));
  }

  /** `GET /api/sandboxes/{id}`. */
  static async getInfo(sandboxId: string, opts: ConnectionOptions = {}): Promise<SandboxInfo> {
    return new HttpClient(opts).send<SandboxInfo>(new ApiRequest("GET", `/api/sandboxes/${seg(sandboxId)}`));
  }

  /** `DELETE /api/sandboxes/{id}`: kills a sandbox by id. */
  static async kill(sandboxId: string, opts: ConnectionOptions = {}): Promise<void> {
    await new HttpClient(opts).send<unknown>(new ApiRequest("DELETE", `/api/sandboxes/${seg(sandboxId)}`));
  }

  /** The current state of this sandbox. */
  async getInfo(): Promise<SandboxInfo> {
    return this.client.send<SandboxInfo>(new ApiRequest("GET", `/api/sandboxes/${seg(this.sandboxId)}`));
  }

  /** Kills this sandbox; afterwards the server answers 404 for it. */
  async kill(): Promise<void> {
    await this.client.send<unknown>(new ApiRequest("DELETE", `/api/sandboxes/${seg(this.sandboxId)}`));
  }

  /**
   * `POST /api/sandboxes/{id}/checkpoints`: saves this sandbox's files and
   * resolved config (not its process memory). Restore or fork it with
   * `Sandbox.create({ fromCheckpoint: id })`: each gets fresh tokens for the
   * project's current secret values.
   */
  async createCheckpoint(): Promise<CheckpointInfo> {
    const path = `/api/sandboxes/${seg(this.sandboxId)}/checkpoints`;
    return this.client.send<CheckpointInfo>(new ApiRequest("POST", path, {}, { extraTimeoutMs: LONG_CALL_EXTRA_MS }));
  }

  /** `GET /api/sandboxes/{id}/checkpoints`. */
  async listCheckpoints(): Promise<CheckpointInfo[]> {
    return this.client.send<CheckpointInfo[]>(new ApiRequest("GET", `/api/sandboxes/${seg(this.sandboxId)}/checkpoints`));
  }

  /** `DELETE /api/sandboxes/{id}/checkpoints/{checkpointId}`. */
  async deleteCheckpoint(checkpointId: string): Promise<void> {
    await this.client.send<unknown>(
      new ApiRequest("DELETE", `/api/sandboxes/${seg(this.sandboxId)}/checkpoints/${seg(checkpointId)}`),
    );
  }

  /** `GET /api/checkpoints`: every checkpoint of your org. */
  static async listCheckpoints(opts: ConnectionOptions = {}): Promise<CheckpointInfo[]> {
    return new HttpClient(opts).send<CheckpointInfo[]>(new ApiRequest("GET", "/api/checkpoints"));
  }

  /**
   * `POST /api/sandboxes/{id}/timeout`: the sandbox now ends `timeoutSec`
   * from now (at most the server's --max-sandbox-lifetime from its start).
   */
  async setTimeout(timeoutSec: number): Promise<SandboxInfo> {
    if (!Number.isInteger(timeoutSec) || timeoutSec <= 0) {
      throw new ConfigurationError("setTimeout: timeoutSec must be a positive integer");
    }
    return this.client.send<SandboxInfo>(
      new ApiRequest("POST", `/api/sandboxes/${seg(this.sandboxId)}/timeout`, { timeoutSec }),
    );
  }

  /** `POST /api/sandboxes/{id}/hibernate`: checkpoint, then free everything it holds. */
  async hibernate(): Promise<SandboxInfo> {
    const path = `/api/sandboxes/${seg(this.sandboxId)}/hibernate`;
    return this.client.send<SandboxInfo>(new ApiRequest("POST", path, {}, { extraTimeoutMs: LONG_CALL_EXTRA_MS }));
  }

  /** `POST /api/sandboxes/{id}/wake`: restore it under the same id, with fresh tokens. */
  async wake(): Promise<SandboxInfo> {
    const path = `/api/sandboxes/${seg(this.sandboxId)}/wake`;
    return this.client.send<SandboxInfo>(new ApiRequest("POST", path, {}, { extraTimeoutMs: LONG_CALL_EXTRA_MS }));
  }
}
