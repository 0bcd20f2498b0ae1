/**
 * Streaming exec, background commands and terminals: `sandbox.commands`,
 * `sandbox.pty`. Output arrives as produced (docs/api.md, "Command WebSocket
 * frames"); nothing is truncated: a slow consumer slows the command.
 */
import { ApiRequest, seg } from "./http.js";
import { ConnectionError, errorForStatus } from "./errors.js";
import { openCommandSocket, type CommandSocket } from "./websocket.js";
import type { Sandbox } from "./sandbox.js";

export interface CommandInfo {
  id: string;
  cmd: string;
  args: string[];
  status: "running" | "exited";
  exitCode: number | null;
  signal?: number;
  timedOut?: boolean;
  pty: boolean;
  detached: boolean;
  startedAt: string;
  endedAt?: string;
}

export interface CommandResult {
  exitCode: number;
  signal: number | null;
  timedOut: boolean;
  /** Output without a callback is collected here. */
  stdout: string;
  stderr: string;
  /** attach: bytes of older output that were not retained (the last 1 MiB is kept). */
  droppedBytes: number;
  commandId: string;
}

export interface CommandOptions {
  args?: string[];
  envs?: Record<string, string>;
  cwd?: string;
  /** Seconds; 0 or absent = no limit. */
  timeoutSec?: number;
}

export interface RunOptions extends CommandOptions {
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
  /** Sent to the command, then end-of-input. */
  stdin?: string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
}

function startBody(cmd: string, o: CommandOptions, extra: Record<string, unknown> = {}): Record<string, unknown> {
  if (typeof cmd !== "string" || cmd.length === 0) throw new TypeError("cmd must be a non-empty string");
  const body: Record<string, unknown> = { cmd, ...extra };
  if (o.args) body.args = o.args.map(String);
  if (o.envs) body.envs = { ...o.envs };
  if (o.cwd !== undefined) body.cwd = o.cwd;
  if (o.timeoutSec !== undefined) body.timeoutSec = Math.trunc(o.timeoutSec);
  return body;
}

async function feed(ws: CommandSocket, stdin: RunOptions["stdin"]): Promise<void> {
  const send = (chunk: Uint8Array) => {
    for (let i = 0; i < chunk.length; i += 32768) {
      const part = chunk.subarray(i, i + 32768);
      const framed = new Uint8Array(part.length + 1);
      framed.set(part, 1);
      ws.sendBinary(framed);
    }
  };
  try {
    if (typeof stdin === "string") send(new TextEncoder().encode(stdin));
    else if (stdin instanceof Uint8Array) send(stdin);
    else if (stdin !== undefined) {
      for await (const chunk of stdin as AsyncIterable<Uint8Array>) send(chunk);
    }
    ws.sendText(JSON.stringify({ type: "eof" }));
  } catch {
    /* the command ended; its exit code says how */
  }
}

async function pump(ws: CommandSocket, path: string, onStdout?: (t: string) => void, onStderr?: (t: string) => void): Promise<CommandResult> {
  const decoders = { 1: new TextDecoder("utf-8"), 2: new TextDecoder("utf-8") };
  const out: string[] = [];
  const err: string[] = [];
  let result: CommandResult | undefined;
  let dropped = 0;
  let commandId = "";
  for (;;) {
    const m = await ws.next();
    if (m === null) break;
    if (m.binary) {
      const id = m.data[0];
      if (id !== 1 && id !== 2) continue;
      const text = decoders[id].decode(m.data.subarray(1), { stream: true });
      const cb = id === 1 ? onStdout : onStderr;
      if (cb) cb(text);
      else (id === 1 ? out : err).push(text);
      continue;
    }
    let j: any;
    try {
      j = JSON.parse(new TextDecoder().decode(m.data));
    } catch {
      continue;
    }
    if (j.type === "started") commandId = String(j.command?.id ?? "");
    else if (j.type === "dropped") dropped += Number(j.bytes ?? 0);
    else if (j.type === "exit") {
      result = { exitCode: Number(j.exitCode), signal: j.signal ?? null, timedOut: Boolean(j.timedOut), stdout: "", stderr: "", droppedBytes: 0, commandId: "" };
    } else if (j.type === "error") {
      ws.close();
      throw errorForStatus(Number(j.status ?? 500), String(j.error ?? "stream refused"), "GET", path);
    }
  }
  if (result === undefined) throw new ConnectionError(`the stream ended before the command's exit code arrived (close ${ws.closeCode ?? "-"})`, 0, "GET", path);
  result.stdout = out.join("");
  result.stderr = err.join("");
  result.droppedBytes = dropped;
  result.commandId = commandId;
  return result;
}

export class Commands {
  readonly #sandbox: Sandbox;
  constructor(sandbox: Sandbox) {
    this.#sandbox = sandbox;
  }

  #base(): string {
    return `/api/sandboxes/${seg(this.#sandbox.sandboxId)}`;
  }

  /** @internal */
  async open(path: string): Promise<CommandSocket> {
    return openCommandSocket(this.#sandbox.client.config, path);
  }

  /** Runs `cmd`, streaming its output to the callbacks (`GET .../exec/stream`). */
  async run(cmd: string, opts: RunOptions = {}): Promise<CommandResult> {
    const path = this.#base() + "/exec/stream";
    const ws = await this.open(path);
    ws.sendText(JSON.stringify({ type: "start", ...startBody(cmd, opts) }));
    void feed(ws, opts.stdin);
    try {
      return await pump(ws, path, opts.onStdout, opts.onStderr);
    } finally {
      ws.close();
    }
  }

  /** Starts a background command (`POST .../commands`). */
  async start(cmd: string, opts: CommandOptions = {}): Promise<CommandInfo> {
    return this.#sandbox.client.send<CommandInfo>(new ApiRequest("POST", this.#base() + "/commands", startBody(cmd, opts)));
  }

  async list(): Promise<CommandInfo[]> {
    return this.#sandbox.client.send<CommandInfo[]>(new ApiRequest("GET", this.#base() + "/commands"));
  }

  async get(commandId: string): Promise<CommandInfo> {
    return this.#sandbox.client.send<CommandInfo>(new ApiRequest("GET", `${this.#base()}/commands/${seg(commandId)}`));
  }

  /** Replays the retained output (last 1 MiB), follows until the exit. */
  async attach(commandId: string, opts: Pick<RunOptions, "onStdout" | "onStderr" | "stdin"> = {}): Promise<CommandResult> {
    const path = `${this.#base()}/commands/${seg(commandId)}/attach`;
    const ws = await this.open(path);
    if (opts.stdin !== undefined) void feed(ws, opts.stdin);
    try {
      return await pump(ws, path, opts.onStdout, opts.onStderr);
    } finally {
      ws.close();
    }
  }

  async kill(commandId: string, signal: string | number = "KILL"): Promise<CommandInfo> {
    return this.#sandbox.client.send<CommandInfo>(new ApiRequest("POST", `${this.#base()}/commands/${seg(commandId)}/kill`, { signal }));
  }

  /** Waits up to `timeoutSec` (<= 300) for the exit; the info either way. */
  async wait(commandId: string, timeoutSec = 60): Promise<CommandInfo> {
    return this.#sandbox.client.send<CommandInfo>(
      new ApiRequest("POST", `${this.#base()}/commands/${seg(commandId)}/wait?timeout=${Math.trunc(timeoutSec)}`, undefined, { extraTimeoutMs: timeoutSec * 1000 }),
    );
  }
}

export interface PtyOptions extends CommandOptions {
  cols?: number;
  rows?: number;
  /** Program to run; default /bin/bash. */
  cmd?: string;
  onData?: (data: Uint8Array) => void;
}

export class PtySession {
  readonly #ws: CommandSocket;
  readonly #done: Promise<CommandResult>;
  constructor(ws: CommandSocket, path: string, onData?: (d: Uint8Array) => void) {
    this.#ws = ws;
    const enc = new TextEncoder();
    this.#done = pump(ws, path, onData ? (t) => onData(enc.encode(t)) : undefined, undefined);
    this.#done.catch(() => {});
  }
  sendInput(data: string | Uint8Array): void {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const framed = new Uint8Array(bytes.length + 1);
    framed.set(bytes, 1);
    this.#ws.sendBinary(framed);
  }
  resize(cols: number, rows: number): void {
    this.#ws.sendText(JSON.stringify({ type: "resize", cols, rows }));
  }
  kill(signal: string | number = "KILL"): void {
    this.#ws.sendText(JSON.stringify({ type: "signal", signal }));
  }
  wait(): Promise<CommandResult> {
    return this.#done;
  }
  close(): void {
    this.#ws.close();
  }
}

export class Pty {
  readonly #commands: Commands;
  readonly #sandbox: Sandbox;
  constructor(sandbox: Sandbox, commands: Commands) {
    this.#sandbox = sandbox;
    this.#commands = commands;
  }
  /** Opens a terminal (`GET .../pty`) of `cols`x`rows` running `cmd` (default /bin/bash). */
  async create(opts: PtyOptions = {}): Promise<PtySession> {
    const path = `/api/sandboxes/${seg(this.#sandbox.sandboxId)}/pty`;
    const ws = await this.#commands.open(path);
    ws.sendText(JSON.stringify({ type: "start", ...startBody(opts.cmd ?? "/bin/bash", opts, { pty: true, cols: opts.cols ?? 80, rows: opts.rows ?? 24 }) }));
    return new PtySession(ws, path, opts.onData);
  }
}
