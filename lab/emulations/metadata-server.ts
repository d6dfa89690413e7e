/**
 * The lab's metadata service process: answers each droplet, told apart by its
 * link-local source address, with its own metadata (see metadata.ts).
 * Started by `startMetadata` as `nobody` in `lab-meta`; logs one line a request.
 *
 *   node -r ts-node/register/transpile-only lab/metadata-server.ts CONFIG.json
 */
import * as fs from "node:fs";
import * as http from "node:http";

import { reservedIpHolders } from "../host/network";
import { metadataAnswer, MetadataServerConfig, withReservedIp } from "./metadata";

const config = JSON.parse(fs.readFileSync(process.argv[2] ?? "", "utf8")) as MetadataServerConfig;

const server = http.createServer((request, response) => {
  const from = (request.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
  const own = config.byAddress[from];
  // Who holds a reserved IP changes at run time (the API emulator moves them).
  const held = own && Object.entries(reservedIpHolders()).find(([, droplet]) => droplet === own.tree.hostname)?.[0];
  const metadata = own && withReservedIp(own, held);
  const answer = metadata
    ? metadataAnswer(metadata, request.method ?? "GET", request.url ?? "/")
    : { status: 404, body: "not found\n", headers: { "Content-Type": "text/plain; charset=utf-8" } };
  response.writeHead(answer.status, answer.headers);
  response.end(request.method === "HEAD" ? undefined : answer.body);
  process.stdout.write(`${new Date().toISOString()} ${from} ${request.method} ${request.url} ${answer.status}\n`);
});
server.listen(config.port, config.address, () => {
  process.stdout.write(`${new Date().toISOString()} listening on ${config.address}:${config.port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
