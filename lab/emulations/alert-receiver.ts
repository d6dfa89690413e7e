/**
 * The operator's alert webhook, emulated for the lab: what
 * `FOOBAR_ALERT_WEBHOOK_URL` points at, so that a check sees every alert
 * Alertmanager on mon-01 sends, every resolution, and when each arrived.
 *
 * One server (alert-receiver-server.ts, as `nobody`) in its own namespace
 * (`lab-hooks`) on the lab's "internet", plain HTTP on port 80, outside every
 * cloud firewall: mon-01 reaches it through its own egress rules (tcp 80 to
 * anywhere), as it would reach a service on the internet. Every POST body is
 * appended to `<state dir>/hooks/alerts.jsonl`, one JSON object a line
 * (alert-webhook.ts), deleted by `down` with the rest of the directory.
 *
 * Not emulated: TLS (an https:// webhook), authentication, a receiver that
 * fails or is slow (Alertmanager's retries).
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { NOBODY_ID, spawnUnprivileged, stopServer, waitUntilServing } from "../host/processes";
import { log, run, tryRun } from "../host/shell";
import { LabState, saveState } from "../host/state";
import { HOOKS_ADDRESS, HOOKS_NS, stateDir } from "../settings";

export const ALERT_RECEIVER_PORT = 80;
/** The path of the webhook URL the stack is synthesized with (the receiver records a POST to any path). */
export const ALERT_RECEIVER_PATH = "/alerts";

/** `FOOBAR_ALERT_WEBHOOK_URL` in the lab: `http://198.51.100.7:80/alerts`, written without the default port. */
export function alertWebhookUrl(address: string = HOOKS_ADDRESS): string {
  return new URL(`http://${address}:${ALERT_RECEIVER_PORT}${ALERT_RECEIVER_PATH}`).toString();
}

/** What the receiver reads at start. */
export interface AlertReceiverConfig {
  readonly address: string;
  readonly port: number;
  /** The file every POST is appended to, one JSON object a line. */
  readonly file: string;
}

/** The received alerts' file (host path) in the receiver's directory. */
export function alertsFileIn(dir: string): string {
  return path.join(dir, "alerts.jsonl");
}

/** The receiver's request log: one line a request. */
export function alertReceiverLogFile(dir: string): string {
  return path.join(dir, "requests.log");
}

/** Where the receiver listens and keeps its files; the lab's own unless a test gives its own namespace. */
export interface AlertReceiverPlace {
  readonly ns: string;
  readonly address: string;
  readonly dir: string;
}

/**
 * Writes the config, starts the receiver as `nobody` in `place.ns` and waits
 * until it listens.
 *
 * @returns the receiver's PID.
 */
export async function serveAlertReceiver(place: AlertReceiverPlace, onPid: (pid: number) => void = () => undefined): Promise<number> {
  fs.mkdirSync(place.dir, { recursive: true, mode: 0o755 });
  fs.chownSync(place.dir, NOBODY_ID, NOBODY_ID);
  const config: AlertReceiverConfig = { address: place.address, port: ALERT_RECEIVER_PORT, file: alertsFileIn(place.dir) };
  // Made here, so a check reading before the first alert finds an empty file, not none.
  fs.writeFileSync(config.file, "", { mode: 0o644 });
  fs.chownSync(config.file, NOBODY_ID, NOBODY_ID);
  const configFile = path.join(place.dir, "config.json");
  fs.writeFileSync(configFile, JSON.stringify(config), { mode: 0o644 });
  // Only inside the receiver's namespace: lets `nobody` bind port 80 there.
  run("ip", ["netns", "exec", place.ns, "sysctl", "-qw", `net.ipv4.ip_unprivileged_port_start=${ALERT_RECEIVER_PORT}`]);
  const logFile = alertReceiverLogFile(place.dir);
  const server = path.join(__dirname, "alert-receiver-server.ts");
  const tsNode = require.resolve("ts-node/register/transpile-only");
  const pid = spawnUnprivileged(place.ns, process.execPath, ["-r", tsNode, server, configFile], {}, logFile);
  onPid(pid);
  await waitUntilServing(
    place.ns,
    "the alert receiver",
    pid,
    "node",
    logFile,
    () => tryRun("ip", ["netns", "exec", place.ns, "ss", "-Hltn", `src ${place.address}:${ALERT_RECEIVER_PORT}`]).stdout.trim() !== "",
  );
  return pid;
}

/** Starts the lab's alert receiver in `lab-hooks` (its namespace must exist). */
export async function startAlertReceiver(state: LabState): Promise<void> {
  const dir = path.join(stateDir(), "hooks");
  state.hooks = { dir };
  saveState(state);
  const pid = await serveAlertReceiver({ ns: HOOKS_NS, address: HOOKS_ADDRESS, dir }, (started) => {
    state.hooks = { dir, pid: started };
    saveState(state);
  });
  log(`alert receiver: ${alertWebhookUrl()} in ${HOOKS_NS}, pid ${pid}, appending to ${alertsFileIn(dir)}`);
}

/** The received alerts' file (host path), undefined while the receiver is not up. */
export function alertsFile(state: LabState): string | undefined {
  return state.hooks ? alertsFileIn(state.hooks.dir) : undefined;
}

/** Stops the alert receiver (by its recorded PID) and deletes its files; returns what it did. */
export async function stopAlertReceiver(state: LabState): Promise<string[]> {
  const removed = await stopServer(state.hooks, "node", "alert receiver");
  state.hooks = undefined;
  saveState(state);
  return removed;
}
