/**
 * DigitalOcean's DNS, emulated: the stack's zone served to the lab.
 *
 * On DigitalOcean a droplet's resolver answers for every public zone,
 * the stack's own included, so the droplets find each other's private
 * addresses by their `internal` records. Here one dnsmasq in the `lab-dns`
 * namespace plays that resolver: it answers the stack's A records from a
 * hosts file the lab writes (and rewrites on `apply`, then SIGHUP), and
 * NXDOMAIN for every other name, since the lab has no internet. Each
 * droplet asks it through its own caching stub (systemd-resolved, rootfs.ts),
 * as an Ubuntu droplet does; answers carry the records' 30 s TTL.
 *
 * A fault (`failNames`) makes chosen names fail to resolve (an answer that is
 * neither an address nor "no such name"), as a resolver outage does.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { NOBODY_ID, spawnUnprivileged, stopServer, waitUntilServing } from "../host/processes";
import { log, run, tryRun } from "../host/shell";
import { LabState, saveState } from "../host/state";
import { API_ADDRESS, DNS_ADDRESS, DNS_NS, stateDir } from "../settings";
import { API_HOST_NAME } from "./api";
import { spacesHostsLines } from "./spaces";
import type { LabRecord, LabSpaces } from "./terraform";

/** TTL of every answer, in seconds: DigitalOcean's minimum, what the stack gives its internal records. */
export const DNS_TTL_SECONDS = 30;

/**
 * The hosts file dnsmasq answers from: one `address name` line per A record,
 * but none for a name that must fail (dnsmasq answers from here first), and
 * the lab's own servers: the API, and Spaces when the stack has a bucket.
 */
export function renderZoneHosts(
  records: readonly LabRecord[],
  failing: readonly string[] = [],
  spaces?: Pick<LabSpaces, "bucket" | "region">,
): string {
  const lines = ["# foobar lab: the stack's DNS records (DigitalOcean DNS, emulated)"];
  for (const record of records) if (record.type === "A" && !failing.includes(record.fqdn)) lines.push(`${record.value} ${record.fqdn}`);
  // The one name of the internet the droplets call besides the stack's: the API (emulated, api.ts).
  lines.push(`${API_ADDRESS} ${API_HOST_NAME}`);
  // And the backups' bucket (emulated, spaces.ts), when the stack has one.
  lines.push(...spacesHostsLines(spaces));
  return lines.join("\n") + "\n";
}

/**
 * Where a name that must fail is sent: a port nothing listens on in the
 * resolver's own namespace, so dnsmasq gets no answer and reports a failure.
 */
export const FAILING_UPSTREAM = "127.0.0.1#9";

/** The servers file dnsmasq re-reads on SIGHUP: one `server=` line per name that must fail. */
export function renderFailingNames(names: readonly string[]): string {
  return (
    ["# foobar lab: names that fail to resolve (a fault)", ...names.map((name) => `server=/${name}/${FAILING_UPSTREAM}`)].join("\n") + "\n"
  );
}

/** dnsmasq's command line: this hosts file only, on the lab's resolver address only, nothing forwarded. */
export function dnsmasqArgs(hostsFile: string, serversFile: string): string[] {
  return [
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--pid-file=",
    "--no-resolv",
    "--no-hosts",
    `--addn-hosts=${hostsFile}`,
    // Re-read on SIGHUP: names a fault makes fail (failNames).
    `--servers-file=${serversFile}`,
    `--listen-address=${DNS_ADDRESS}`,
    "--bind-interfaces",
    // Every name is local: what the hosts file does not hold does not exist.
    "--local=/#/",
    `--local-ttl=${DNS_TTL_SECONDS}`,
    "--log-facility=-",
    "--log-queries",
  ];
}

/** Starts the resolver in `lab-dns` (its namespace must exist) and waits until it answers. */
export async function startDns(state: LabState, records: readonly LabRecord[]): Promise<void> {
  const dir = path.join(stateDir(), "dns");
  state.dns = { dir };
  saveState(state);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const hostsFile = path.join(dir, "hosts");
  fs.writeFileSync(hostsFile, renderZoneHosts(records, [], state.stack?.spaces), { mode: 0o644 });
  const serversFile = path.join(dir, "servers");
  fs.writeFileSync(serversFile, renderFailingNames([]), { mode: 0o644 });
  const logFile = path.join(dir, "dnsmasq.log");
  fs.writeFileSync(logFile, "");
  fs.chownSync(logFile, NOBODY_ID, NOBODY_ID);
  // Only inside lab-dns: lets `nobody` bind port 53 there.
  run("ip", ["netns", "exec", DNS_NS, "sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=53"]);
  state.dns.pid = spawnUnprivileged(DNS_NS, "dnsmasq", dnsmasqArgs(hostsFile, serversFile), {}, logFile);
  saveState(state);
  await waitUntilServing(
    DNS_NS,
    "the lab's DNS (dnsmasq)",
    state.dns.pid,
    "dnsmasq",
    logFile,
    () => tryRun("ip", ["netns", "exec", DNS_NS, "ss", "-Hlun", `src ${DNS_ADDRESS}:53`]).stdout.trim() !== "",
  );
  log(`dns: dnsmasq pid ${state.dns.pid} at ${DNS_ADDRESS} in ${DNS_NS}, ${records.filter((r) => r.type === "A").length} A record(s)`);
}

/** Serves `records` from now on (what a DigitalOcean record change does, minus the API's delay). */
export function updateDns(state: LabState, records: readonly LabRecord[]): void {
  if (!state.dns?.pid) throw new Error("the lab's DNS is not running");
  const hostsFile = path.join(state.dns.dir, "hosts");
  const next = `${hostsFile}.next`;
  fs.writeFileSync(next, renderZoneHosts(records, state.dns.failing, state.stack?.spaces), { mode: 0o644 });
  fs.renameSync(next, hostsFile);
  process.kill(state.dns.pid, "SIGHUP");
}

/**
 * From now on, `names` (fully qualified) fail to resolve: no answer, which is
 * neither an address nor "no such name"; every other name as before, through
 * applies too. `[]` heals.
 */
export function failNames(state: LabState, names: readonly string[]): void {
  if (!state.dns?.pid) throw new Error("the lab's DNS is not running");
  state.dns.failing = [...names];
  saveState(state);
  const serversFile = path.join(state.dns.dir, "servers");
  fs.writeFileSync(`${serversFile}.next`, renderFailingNames(names), { mode: 0o644 });
  fs.renameSync(`${serversFile}.next`, serversFile);
  // The records served now: the stack the lab is at (apply saves it before it updates the DNS).
  if (!state.stack) throw new Error("the lab has no stack");
  updateDns(state, state.stack.records);
}

/** Stops the resolver (by its recorded PID) and deletes its files; returns what it did. */
export async function stopDns(state: LabState): Promise<string[]> {
  const removed = await stopServer(state.dns, "dnsmasq", "dnsmasq");
  state.dns = undefined;
  saveState(state);
  return removed;
}
