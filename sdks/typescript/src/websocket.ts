/**
 * WebSocket transport for command streams (docs/api.md, "Command WebSocket
 * frames"). Uses the platform's `WebSocket` when it exists and accepts
 * request headers (Node >= 22 / undici, Deno, Bun); otherwise (Node 20, or a
 * private CA via `caFile`) a minimal RFC 6455 client over `node:net` /
 * `node:tls` with the same certificate rules as the HTTP client.
 * @internal
 */
import { createHash, randomBytes } from "node:crypto";
import * as net from "node:net";
import * as tls from "node:tls";

import type { ResolvedConfig } from "./config.js";
import { readCaFile } from "./tls.js";
import { ConnectionError, errorForStatus } from "./errors.js";

export interface WsMessage {
  binary: boolean;
  data: Uint8Array;
}

export interface CommandSocket {
  sendText(text: string): void;
  sendBinary(data: Uint8Array): void;
  close(): void;
  /** Resolves with the next message, or null once the connection closed. */
  next(): Promise<WsMessage | null>;
  readonly closeCode: number | undefined;
}

/** A queue of incoming messages that `next()` drains in order. */
class Inbox {
  #items: (WsMessage | null)[] = [];
  #waiters: ((m: WsMessage | null) => void)[] = [];
  push(m: WsMessage | null): void {
    const w = this.#waiters.shift();
    if (w) w(m);
    else this.#items.push(m);
  }
  next(): Promise<WsMessage | null> {
    if (this.#items.length > 0) {
      const m = this.#items.shift()!;
      if (m === null) this.#items.unshift(null);
      return Promise.resolve(m);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

export async function openCommandSocket(config: ResolvedConfig, path: string): Promise<CommandSocket> {
  const headers: Record<string, string> = { "User-Agent": "opensandbox-typescript" };
  if (config.apiKey !== undefined) headers["X-API-Key"] = config.apiKey;
  const Platform = (globalThis as { WebSocket?: unknown }).WebSocket as
    | (new (url: string, init?: unknown) => {
        binaryType: string;
        readyState: number;
        onmessage: ((e: { data: unknown }) => void) | null;
        onclose: ((e: { code: number }) => void) | null;
        onerror: ((e: unknown) => void) | null;
        onopen: (() => void) | null;
        send(d: string | Uint8Array): void;
        close(): void;
      })
    | undefined;
  if (Platform !== undefined && config.caFile === undefined && typeof process !== "undefined" && Number(process.versions.node?.split(".")[0] ?? "0") >= 22) {
    return openPlatform(Platform, config, path, headers);
  }
  return openNode(config, path, headers);
}

function openPlatform(
  Platform: new (url: string, init?: unknown) => any,
  config: ResolvedConfig,
  path: string,
  headers: Record<string, string>,
): Promise<CommandSocket> {
  const url = config.apiUrl.replace(/^http/, "ws") + path;
  return new Promise((resolve, reject) => {
    const ws = new Platform(url, { headers });
    ws.binaryType = "arraybuffer";
    const inbox = new Inbox();
    let code: number | undefined;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      resolve({
        sendText: (t) => ws.send(t),
        sendBinary: (d) => ws.send(d),
        close: () => ws.close(),
        next: () => inbox.next(),
        get closeCode() {
          return code;
        },
      });
    };
    ws.onmessage = (e: { data: unknown }) => {
      if (typeof e.data === "string") inbox.push({ binary: false, data: new TextEncoder().encode(e.data) });
      else inbox.push({ binary: true, data: new Uint8Array(e.data as ArrayBuffer) });
    };
    ws.onclose = (e: { code: number }) => {
      code = e.code;
      inbox.push(null);
      if (!opened) reject(new ConnectionError(`WebSocket upgrade to ${path} refused (close ${e.code})`, 0, "GET", path));
    };
    ws.onerror = () => {};
  });
}

function mask(payload: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = payload[i]! ^ key[i & 3]!;
  return out;
}

function frame(opcode: number, payload: Uint8Array): Buffer {
  const n = payload.length;
  const head: number[] = [0x80 | opcode];
  if (n < 126) head.push(0x80 | n);
  else if (n < 65536) head.push(0x80 | 126, n >> 8, n & 0xff);
  else {
    head.push(0x80 | 127, 0, 0, 0, 0);
    head.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  }
  const key = randomBytes(4);
  return Buffer.concat([Buffer.from(head), key, Buffer.from(mask(payload, key))]);
}

function openNode(config: ResolvedConfig, path: string, headers: Record<string, string>): Promise<CommandSocket> {
  const url = new URL(config.apiUrl);
  const secure = url.protocol === "https:";
  const port = Number(url.port || (secure ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const target = url.pathname.replace(/\/$/, "") + path;
  const key = randomBytes(16).toString("base64");
  return new Promise((resolve, reject) => {
    const sock: net.Socket = secure
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ca: config.caFile ? readCaFile(config.caFile) : undefined, minVersion: "TLSv1.2" })
      : net.connect({ host, port });
    // Frames are small writes back to back (stdin, keystrokes): no Nagle delay.
    sock.setNoDelay(true);
    const timer = setTimeout(() => sock.destroy(new Error("timed out")), config.requestTimeoutMs || 30000);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const inbox = new Inbox();
    let closeCode: number | undefined;
    let parts: Buffer[] = [];
    let kind = 0;
    const send = (opcode: number, payload: Uint8Array) => {
      if (!sock.destroyed) sock.write(frame(opcode, payload));
    };
    const api: CommandSocket = {
      sendText: (t) => send(1, new TextEncoder().encode(t)),
      sendBinary: (d) => send(2, d),
      close: () => {
        send(8, Uint8Array.from([0x03, 0xe8]));
        sock.end();
      },
      next: () => inbox.next(),
      get closeCode() {
        return closeCode;
      },
    };
    const onConnect = () => {
      const lines = [
        `GET ${target} HTTP/1.1`,
        `Host: ${url.host}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${key}`,
        "Sec-WebSocket-Version: 13",
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      sock.write(lines.join("\r\n") + "\r\n\r\n");
    };
    sock.once(secure ? "secureConnect" : "connect", onConnect);
    sock.on("error", (err) => {
      clearTimeout(timer);
      if (!upgraded) reject(new ConnectionError(`cannot reach ${config.apiUrl}: ${err.message}`, 0, "GET", path));
      inbox.push(null);
    });
    sock.on("close", () => inbox.push(null));
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString("latin1");
        const rest = buf.subarray(end + 4);
        const [statusLine, ...fields] = head.split("\r\n");
        const status = Number(statusLine?.split(" ")[1] ?? 0);
        const hdrs = new Map(fields.map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
        if (status !== 101) {
          clearTimeout(timer);
          const length = Number(hdrs.get("content-length") ?? 0);
          const finish = (body: Buffer) => {
            let message = `HTTP ${status}`;
            try {
              const doc = JSON.parse(body.toString("utf8"));
              if (typeof doc?.error === "string") message = doc.error;
            } catch {
              /* not JSON */
            }
            sock.destroy();
            reject(errorForStatus(status, message, "GET", path));
          };
          if (rest.length >= length) finish(rest);
          else {
            let body = rest;
            sock.removeAllListeners("data");
            sock.on("data", (c: Buffer) => {
              body = Buffer.concat([body, c]);
              if (body.length >= length) finish(body);
            });
            sock.on("end", () => finish(body));
          }
          return;
        }
        const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
        if (hdrs.get("sec-websocket-accept") !== accept) {
          sock.destroy();
          reject(new ConnectionError("the server's WebSocket accept key is wrong", 0, "GET", path));
          return;
        }
        clearTimeout(timer);
        upgraded = true;
        buf = rest;
        resolve(api);
      }
      for (;;) {
        if (buf.length < 2) return;
        const b0 = buf[0]!, b1 = buf[1]!;
        let n = b1 & 0x7f;
        let off = 2;
        if (n === 126) {
          if (buf.length < 4) return;
          n = buf.readUInt16BE(2);
          off = 4;
        } else if (n === 127) {
          if (buf.length < 10) return;
          n = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + n) return;
        const payload = buf.subarray(off, off + n);
        buf = buf.subarray(off + n);
        const opcode = b0 & 0x0f;
        if (opcode === 9) send(10, payload);
        else if (opcode === 8) {
          closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : undefined;
          send(8, payload.subarray(0, 2));
          sock.end();
          inbox.push(null);
        } else if (opcode === 0 || opcode === 1 || opcode === 2) {
          if (opcode !== 0) kind = opcode;
          parts.push(Buffer.from(payload));
          if (b0 & 0x80) {
            inbox.push({ binary: kind === 2, data: new Uint8Array(Buffer.concat(parts)) });
            parts = [];
          }
        }
      }
    });
  });
}
