/**
 * A real HTTP server on 127.0.0.1 (random port) that records every request
 * and answers from a script of responses, for the SDK's unit tests.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Reply {
  status?: number;
  body?: unknown;
  /** Raw text body (wins over `body`). */
  text?: string;
  /** Extra response headers. */
  headers?: Record<string, string>;
  /** Drop the connection without answering (a network error for the client). */
  destroy?: boolean;
}

export class MockServer {
  readonly requests: Recorded[] = [];
  #script: Reply[] = [];
  #fallback: Reply = { status: 200, body: {} };
  #server: Server;
  url = "";

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        const reply = this.#script.shift() ?? this.#fallback;
        if (reply.destroy) {
          req.socket.destroy();
          return;
        }
        const text = reply.text ?? (reply.body === undefined ? "" : JSON.stringify(reply.body));
        res.writeHead(reply.status ?? 200, { ...(text === "" ? {} : { "content-type": "application/json" }), ...reply.headers });
        res.end(text);
      });
    });
    this.#server.keepAliveTimeout = 1;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  /** Queue replies, answered in order; afterwards the fallback answers. */
  reply(...replies: Reply[]): this {
    this.#script.push(...replies);
    return this;
  }

  fallback(reply: Reply): this {
    this.#fallback = reply;
    return this;
  }

  reset(): void {
    this.requests.length = 0;
    this.#script = [];
    this.#fallback = { status: 200, body: {} };
  }

  last(): Recorded {
    const r = this.requests.at(-1);
    if (r === undefined) throw new Error("no request recorded");
    return r;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** An address on which nothing listens (a server that was started and stopped). */
export async function deadUrl(): Promise<string> {
  const s = await new MockServer().start();
  const url = s.url;
  await s.stop();
  return url;
}
