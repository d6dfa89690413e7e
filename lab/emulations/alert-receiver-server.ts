/**
 * The lab's alert receiver process (see alert-receiver.ts): plain HTTP, every
 * POST body appended to one file, one JSON object a line (alert-webhook.ts),
 * one log line a request.
 *
 *   node -r ts-node/register/transpile-only lab/emulations/alert-receiver-server.ts CONFIG.json
 *
 * POST (any path) → 200 and a line in the file; GET → 200 and a one-line
 * banner (what a probe from a droplet reads); anything else → 405. A body over
 * 1 MiB is refused with 413 and not recorded.
 */
import * as fs from "node:fs";
import * as http from "node:http";

import type { AlertReceiverConfig } from "./alert-receiver";
import { receivedLine } from "./alert-webhook";

/** Far more than Alertmanager sends for this stack's alerts. */
const MAX_BODY_BYTES = 1024 * 1024;

const config = JSON.parse(fs.readFileSync(process.argv[2] ?? "", "utf8")) as AlertReceiverConfig;
const line = (text: string) => process.stdout.write(`${new Date().toISOString()} ${text}\n`);

const server = http.createServer((request, response) => {
  const from = (request.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
  const target = request.url ?? "/";
  const answer = (status: number, text: string, bytes = 0) => {
    response.writeHead(status, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(text) });
    response.end(text);
    line(`${from} ${request.method} ${target} ${status} ${bytes} bytes`);
  };
  if (request.method === "GET" || request.method === "HEAD") {
    answer(200, "foobar lab alert receiver\n");
    return;
  }
  if (request.method !== "POST") {
    answer(405, "POST alerts here\n");
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  request.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) tooBig = true;
    else chunks.push(chunk);
  });
  request.on("end", () => {
    if (tooBig) {
      answer(413, "body over 1 MiB\n", size);
      return;
    }
    // Synchronous: one line at a time, never two interleaved.
    fs.appendFileSync(config.file, receivedLine(Buffer.concat(chunks).toString("utf8"), new Date(), from, target));
    answer(200, "ok\n", size);
  });
  request.on("error", () => response.destroy());
});
server.listen(config.port, config.address, () => line(`listening on ${config.address}:${config.port}, appending to ${config.file}`));
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  // Keep-alive connections would hold close() open.
  server.closeAllConnections();
});
