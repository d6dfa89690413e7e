/**
 * DigitalOcean's API, emulated for the lab: exactly the part the droplets
 * call, as https://docs.digitalocean.com/reference/api/ documents it.
 *
 * - `POST /v2/reserved_ips/{ip}/actions` with `{"type":"assign","droplet_id":N}`
 *   or `{"type":"unassign"}`: 201 and an `in-progress` action; the address
 *   moves after the lab's delay (`FOOBAR_LAB_API_DELAY_MS`, like the real
 *   API's few seconds), and the action is then `completed`;
 * - `GET /v2/reserved_ips/{ip}` and `GET /v2/reserved_ips/{ip}/actions/{id}`;
 * - errors as the API gives them: `{"id": "...", "message": "..."}` with 401
 *   (no or wrong bearer token), 404 (unknown address or path), 422 (bad body,
 *   unknown droplet), 405.
 *
 * One server (lab/api-server.ts) in its own namespace (`lab-api`) on the
 * lab's "internet", HTTPS with a certificate for api.digitalocean.com from the
 * lab's CA (which every droplet trusts, as real droplets trust the CA of the
 * real API); the lab's DNS answers api.digitalocean.com with its address.
 * Nothing here ever reaches the real API: the lab has no route out.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { stopServer, waitUntilServing } from "../host/processes";
import { log, tryRun } from "../host/shell";
import { LabState, saveState } from "../host/state";
import { API_ADDRESS, API_NS, stateDir } from "../settings";

/** The host name the droplets call. */
export const API_HOST_NAME = "api.digitalocean.com";
export const API_PORT = 443;
/** How long an assign takes to move the address, unless `FOOBAR_LAB_API_DELAY_MS` says otherwise. */
export const DEFAULT_API_DELAY_MS = 1000;

/** `FOOBAR_LAB_API_DELAY_MS`: milliseconds between an accepted action and the address moving. */
export function apiDelayMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FOOBAR_LAB_API_DELAY_MS;
  if (raw === undefined || raw === "") return DEFAULT_API_DELAY_MS;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 60_000) {
    throw new Error(`FOOBAR_LAB_API_DELAY_MS must be a whole number of milliseconds from 0 to 60000, got "${raw}"`);
  }
  return value;
}

/** What the API server reads at start. */
export interface ApiServerConfig {
  readonly address: string;
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  /** The only bearer token accepted. */
  readonly token: string;
  readonly delayMs: number;
  readonly region: string;
  readonly droplets: readonly { readonly id: number; readonly name: string }[];
  readonly reservedIps: readonly string[];
  /** Every lab namespace, for moving an address (network.ts `moveReservedIp`). */
  readonly namespaces: readonly string[];
}

/** A reserved IP action, as the API returns it. */
export interface ApiAction {
  id: number;
  status: "in-progress" | "completed" | "errored";
  type: "assign_ip" | "unassign_ip";
  started_at: string;
  completed_at: string | null;
  resource_id: number;
  resource_type: "reserved_ip";
  region_slug: string;
}

/** The API's state: who holds each address, and the actions taken. */
export interface ApiState {
  holders: Record<string, string | undefined>;
  actions: ApiAction[];
}

/** What the server should do after answering: move an address once the delay has passed. */
export interface ApiMove {
  readonly actionId: number;
  readonly ip: string;
  readonly droplet: string | undefined;
}

export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly move?: ApiMove;
}

const error = (status: number, id: string, message: string): ApiAnswer => ({ status, body: { id, message } });

/** An IPv4 address as the integer the API uses for `resource_id`. */
function addressNumber(ip: string): number {
  return ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

/**
 * How the API answers one request (pure: the server applies `move` later).
 * `authorization` is the raw header; `body` the raw request body.
 */
export function apiAnswer(
  config: ApiServerConfig,
  state: ApiState,
  method: string,
  urlPath: string,
  authorization: string | undefined,
  body: string,
  now: Date,
): ApiAnswer {
  if (authorization !== `Bearer ${config.token}`) return error(401, "Unauthorized", "Unable to authenticate you");
  const pathname = urlPath.split("?")[0] ?? "";
  const match = /^\/v2\/reserved_ips\/([0-9.]+)(\/actions(?:\/(\d+))?)?$/.exec(pathname);
  if (!match) return error(404, "not_found", "The resource you requested could not be found.");
  const [, ip, actions, actionId] = match as unknown as [string, string, string | undefined, string | undefined];
  if (!config.reservedIps.includes(ip)) return error(404, "not_found", "The resource you were accessing could not be found.");

  if (!actions) {
    if (method !== "GET") return error(405, "method_not_allowed", "Method not allowed");
    const holder = state.holders[ip];
    const droplet = config.droplets.find((d) => d.name === holder);
    return {
      status: 200,
      body: {
        reserved_ip: {
          ip,
          droplet: droplet ? { id: droplet.id, name: droplet.name } : null,
          region: { slug: config.region },
          locked: state.actions.some((a) => a.resource_id === addressNumber(ip) && a.status === "in-progress"),
        },
      },
    };
  }
  if (actionId !== undefined) {
    if (method !== "GET") return error(405, "method_not_allowed", "Method not allowed");
    const action = state.actions.find((a) => a.id === Number(actionId) && a.resource_id === addressNumber(ip));
    return action ? { status: 200, body: { action } } : error(404, "not_found", "The resource you were accessing could not be found.");
  }
  if (method !== "POST") return error(405, "method_not_allowed", "Method not allowed");

  let request: { type?: unknown; droplet_id?: unknown };
  try {
    request = JSON.parse(body) as typeof request;
  } catch {
    return error(422, "unprocessable_entity", "The request body is not valid JSON.");
  }
  if (request.type !== "assign" && request.type !== "unassign") {
    return error(422, "unprocessable_entity", "type must be assign or unassign");
  }
  if (state.actions.some((a) => a.resource_id === addressNumber(ip) && a.status === "in-progress")) {
    return error(422, "unprocessable_entity", "The reserved IP already has a pending event.");
  }
  let droplet: string | undefined;
  if (request.type === "assign") {
    const target = config.droplets.find((d) => d.id === request.droplet_id);
    if (!target)
      return error(422, "unprocessable_entity", `droplet_id ${JSON.stringify(request.droplet_id)} is not a droplet of this account`);
    droplet = target.name;
  }
  const action: ApiAction = {
    id: 2_000_000_000 + state.actions.length + 1,
    status: "in-progress",
    type: request.type === "assign" ? "assign_ip" : "unassign_ip",
    started_at: now.toISOString(),
    completed_at: null,
    resource_id: addressNumber(ip),
    resource_type: "reserved_ip",
    region_slug: config.region,
  };
  state.actions.push(action);
  return { status: 201, body: { action }, move: { actionId: action.id, ip, droplet } };
}

/** The API's request log: one line a request (never its token). */
export function apiLogFile(state: LabState): string | undefined {
  return state.api ? path.join(state.api.dir, "requests.log") : undefined;
}

/**
 * Writes the server's config (root only: it holds the token) and starts it in
 * `lab-api` as root, which moving addresses between namespaces needs.
 */
export async function startApi(
  state: LabState,
  options: { token: string; delayMs: number; region: string; certFile: string; keyFile: string },
): Promise<void> {
  const stack = state.stack;
  if (!stack) throw new Error("startApi before the stack is resolved");
  const dir = path.join(stateDir(), "api");
  state.api = { dir };
  saveState(state);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const config: ApiServerConfig = {
    address: API_ADDRESS,
    port: API_PORT,
    certFile: options.certFile,
    keyFile: options.keyFile,
    token: options.token,
    delayMs: options.delayMs,
    region: options.region,
    droplets: stack.droplets.map((d) => ({ id: Number(d.id), name: d.name })),
    reservedIps: stack.reservedIps.map((r) => r.ip),
    namespaces: state.namespaces,
  };
  const configFile = path.join(dir, "config.json");
  fs.writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
  const logFile = apiLogFile(state)!;
  const out = fs.openSync(logFile, "a");
  const server = path.join(__dirname, "api-server.ts");
  const tsNode = require.resolve("ts-node/register/transpile-only");
  const child = spawn("ip", ["netns", "exec", API_NS, process.execPath, "-r", tsNode, server, configFile], {
    detached: true,
    stdio: ["ignore", out, out],
  });
  fs.closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error("could not start the API emulator");
  state.api.pid = child.pid;
  saveState(state);
  await waitUntilServing(
    API_NS,
    "the DigitalOcean API emulator",
    child.pid,
    "node",
    logFile,
    () => tryRun("ip", ["netns", "exec", API_NS, "ss", "-Hltn", `src ${API_ADDRESS}:${API_PORT}`]).stdout.trim() !== "",
  );
  log(`api: https://${API_HOST_NAME}/v2/reserved_ips at ${API_ADDRESS} in ${API_NS}, pid ${child.pid}, moves take ${options.delayMs} ms`);
}

/** Tells a running API emulator the droplets of the stack now (a replaced droplet has a new id). */
export function updateApiDroplets(state: LabState): void {
  if (!state.api || !state.stack) return;
  const configFile = path.join(state.api.dir, "config.json");
  const config = JSON.parse(fs.readFileSync(configFile, "utf8")) as ApiServerConfig;
  const droplets = state.stack.droplets.map((d) => ({ id: Number(d.id), name: d.name }));
  fs.writeFileSync(configFile, JSON.stringify({ ...config, droplets }), { mode: 0o600 });
}

/** Stops the API emulator (by its recorded PID) and deletes its files; returns what it did. */
export async function stopApi(state: LabState): Promise<string[]> {
  const removed = await stopServer(state.api, "node", "API emulator");
  state.api = undefined;
  saveState(state);
  return removed;
}
