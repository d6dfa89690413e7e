/**
 * The lab's DigitalOcean API process (see api.ts): HTTPS on the lab's
 * "internet", one log line a request (never the token), and the address
 * moved once the configured delay has passed.
 *
 *   node -r ts-node/register/transpile-only lab/api-server.ts CONFIG.json
 */
import * as fs from "node:fs";
import * as https from "node:https";

import { moveReservedIp, reservedIpHolders } from "../host/network";
import { apiAnswer, ApiServerConfig, ApiState } from "./api";

const configFile = process.argv[2] ?? "";
const readConfig = () => JSON.parse(fs.readFileSync(configFile, "utf8")) as ApiServerConfig;
const config = readConfig();
const state: ApiState = { holders: reservedIpHolders(), actions: [] };
const line = (text: string) => process.stdout.write(`${new Date().toISOString()} ${text}\n`);

const server = https.createServer({ cert: fs.readFileSync(config.certFile), key: fs.readFileSync(config.keyFile) }, (request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const from = (request.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    const body = Buffer.concat(chunks).toString("utf8");
    // The holders file is the network's truth (the lab's own moves write it too).
    state.holders = reservedIpHolders();
    // The droplets change when the lab applies a replacement (api.ts `updateApiDroplets`): read them afresh.
    const answer = apiAnswer(
      { ...config, droplets: readConfig().droplets },
      state,
      request.method ?? "GET",
      request.url ?? "/",
      request.headers.authorization,
      body,
      new Date(),
    );
    response.writeHead(answer.status, { "Content-Type": "application/json" });
    response.end(JSON.stringify(answer.body));
    line(`${from} ${request.method} ${request.url} ${body.length > 0 ? body + " " : ""}${answer.status}`);
    const move = answer.move;
    if (!move) return;
    setTimeout(() => {
      const action = state.actions.find((a) => a.id === move.actionId)!;
      try {
        moveReservedIp(config.namespaces, move.ip, move.droplet);
        action.status = "completed";
        line(`action ${move.actionId}: ${move.ip} now on ${move.droplet ?? "no droplet"}`);
      } catch (error) {
        action.status = "errored";
        line(`action ${move.actionId}: moving ${move.ip} failed: ${(error as Error).message}`);
      }
      action.completed_at = new Date().toISOString();
    }, config.delayMs);
  });
});
server.listen(config.port, config.address, () => line(`listening on ${config.address}:${config.port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
