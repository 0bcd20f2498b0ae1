/**
 * HTTPS with a caller-supplied CA bundle (`caFile` / `OSB_CA_FILE`).
 *
 * The global `fetch` cannot be given a CA, so these requests go through
 * `node:https` with `ca` set: only those certificates are trusted (not the
 * default store), the host name is checked, TLS 1.2 is the minimum and
 * redirects are never followed (the status is returned as is).
 */
import { readFileSync } from "node:fs";
import { request } from "node:https";

/** Reads a PEM CA bundle; the error names the file, never its content. */
export function readCaFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new Error(`caFile: cannot read ${JSON.stringify(path)}${typeof code === "string" ? ` (${code})` : ""}`);
  }
}

/** One request; rejects like fetch does (the network error in `cause`, or a TimeoutError). */
export function requestWithCa(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  timeoutMs: number,
  ca: Buffer,
): Promise<{ response: { ok: boolean; status: number; statusText: string }; text: string }> {
  return new Promise((resolve, reject) => {
    const allHeaders = body === undefined ? headers : { ...headers, "content-length": String(Buffer.byteLength(body)) };
    let timer: NodeJS.Timeout | undefined;
    const req = request(url, { method, headers: allHeaders, ca, minVersion: "TLSv1.2", agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", fail);
      res.on("end", () => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        resolve({
          response: { ok: status >= 200 && status < 300, status, statusText: res.statusMessage ?? "" },
          text: Buffer.concat(chunks).toString("utf8"),
        });
      });
    });
    function fail(err: Error): void {
      clearTimeout(timer);
      reject(new Error("request failed", { cause: err }));
    }
    req.on("error", fail);
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        const timeout = new Error(`request timed out after ${timeoutMs} ms`);
        timeout.name = "TimeoutError";
        req.destroy();
        clearTimeout(timer);
        reject(timeout);
      }, timeoutMs);
    }
    req.end(body);
  });
}
