/**
 * Droplets as booted systemd-nspawn containers running the real cloud-init.
 *
 * Each droplet is an overlayfs over the shared base (its own upper dir under
 * the lab state dir), seeded with a NoCloud meta-data/user-data pair, booted
 * with systemd-nspawn inside the droplet's network namespace.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { createDropletCgroups, dropletCgroupDirs, inCgroups } from "../host/cgroups";
import { removeTree, unmountAll } from "../host/mounts";
import { childrenOf, processName, stopProcess } from "../host/processes";
import { CommandResult, log, run, sleep, tail, tryRun } from "../host/shell";
import { dropletDir, DropletState, LabState, saveState } from "../host/state";
import { installLabCa } from "./acme";
import { installAdminKey } from "./ssh";
import type { LabDroplet } from "./terraform";
import { volumeBinds } from "./volumes";

/** Mounts the droplet's overlay and writes its NoCloud seed (a fresh instance-id). */
export function prepareDroplet(state: LabState, base: string, droplet: LabDroplet, ns: string): DropletState {
  const dir = dropletDir(droplet.name);
  const merged = path.join(dir, "merged");
  const instanceId = `iid-${droplet.name}-${randomBytes(4).toString("hex")}`;
  const cgroups = dropletCgroupDirs(droplet.name);
  const record: DropletState = { name: droplet.name, namespace: ns, dir, merged, instanceId, cgroups };
  state.droplets[droplet.name] = record;
  saveState(state);
  createDropletCgroups(state, droplet.name);
  for (const sub of ["upper", "work", "merged"]) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  run("mount", [
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${base},upperdir=${path.join(dir, "upper")},workdir=${path.join(dir, "work")}`,
    merged,
  ]);
  const seed = path.join(merged, "var/lib/cloud/seed/nocloud");
  fs.mkdirSync(seed, { recursive: true });
  fs.writeFileSync(path.join(seed, "meta-data"), `instance-id: ${instanceId}\nlocal-hostname: ${droplet.name}\n`);
  // Byte for byte what DigitalOcean would hand the droplet; it may hold secrets.
  fs.writeFileSync(path.join(seed, "user-data"), droplet.userData, { mode: 0o600 });
  installAdminKey(state, merged, droplet.sshKeys);
  installLabCa(state, merged);
  return record;
}

/**
 * Starts the droplet's container in the background, inside the droplet's own
 * cgroups; records the nspawn PID once it runs.
 */
export async function bootDroplet(state: LabState, name: string): Promise<number> {
  const droplet = dropletState(state, name);
  // Attached volumes appear where DigitalOcean puts them (volumes.ts).
  const volumes = volumeBinds(state, state.stack?.droplets.find((d) => d.name === name)?.volumes ?? []);
  const console = fs.openSync(path.join(droplet.dir, "console.log"), "a");
  const [shell, ...args] = inCgroups(
    droplet.cgroups.map((dir) => path.join(dir, "cgroup.procs")),
    [
      "systemd-nspawn",
      "-D",
      droplet.merged,
      "--boot",
      `--network-namespace-path=/run/netns/${droplet.namespace}`,
      "--register=no",
      "--keep-unit",
      `--machine=${droplet.name}`,
      // With "passive" and output to a file, PID 1 blocked (LAB-NOTES).
      "--console=pipe",
      // The host's resolver is not reachable from the lab; keep the base's resolv.conf.
      "--resolv-conf=off",
      "--link-journal=no",
      // Root on a droplet configures its own packet filter (ufw). nspawn keeps
      // CAP_NET_ADMIN only with networking it sets up itself; here it applies
      // to the droplet's own namespace only, which the lab created for it.
      "--capability=CAP_NET_ADMIN",
      ...volumes,
    ],
  );
  const child = spawn(shell!, args, {
    // Its own session: a Ctrl-C on the lab's terminal must not reach the droplets.
    detached: true,
    stdio: ["ignore", console, console],
    // This host has a hybrid cgroup v1 layout that sid's systemd refuses without it.
    env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1" },
  });
  fs.closeSync(console);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start systemd-nspawn for ${name}`);
  // The shell moves itself into the cgroups, then execs nspawn under the same PID.
  const deadline = Date.now() + 10_000;
  while (processName(pid) !== "systemd-nspawn") {
    if (processName(pid) === undefined || Date.now() > deadline) {
      const output = tail(fs.readFileSync(path.join(droplet.dir, "console.log"), "utf8"), 10).trim();
      throw new Error(`systemd-nspawn for ${name} did not start in its cgroups: ${output || "(no output)"}`);
    }
    await sleep(20);
  }
  droplet.nspawnPid = pid;
  saveState(state);
  return pid;
}

/** The PID (on the host) of the container's init, the child of its nspawn process. */
export function containerInit(state: LabState, name: string): number | undefined {
  const pid = state.droplets[name]?.nspawnPid;
  if (pid === undefined || processName(pid) !== "systemd-nspawn") return undefined;
  return childrenOf(pid).find((child) => processName(child) === "systemd");
}

/**
 * Runs a command inside a droplet (all of its init's namespaces), with a clean
 * environment like a root login shell.
 */
export function execIn(state: LabState, name: string, cmd: readonly string[], timeoutMs = 60_000, input?: string): CommandResult {
  const init = containerInit(state, name);
  if (init === undefined) return { status: 255, stdout: "", stderr: `${name} is not running` };
  return tryRun("nsenter", insideArgs(init, cmd), { timeoutMs, input });
}

/** `nsenter` arguments that run `cmd` as root in all of a droplet's namespaces (init: its init's host PID), with a clean environment. */
export function insideArgs(init: number, cmd: readonly string[]): string[] {
  return [
    "-t",
    String(init),
    "-a",
    "--",
    "/usr/bin/env",
    "-i",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    "HOME=/root",
    "TERM=dumb",
    ...cmd,
  ];
}

/** What the host can see of a droplet's cloud-init run. */
export interface CloudInitOutcome {
  readonly finished: boolean;
  /** From /var/lib/cloud/data/result.json once finished. */
  readonly errors: readonly string[];
  readonly recoverableErrors: readonly string[];
}

/** Reads a droplet's cloud-init progress from the host side of its overlay. */
export function cloudInitOutcome(droplet: DropletState): CloudInitOutcome {
  // /var/lib/cloud/instance is an absolute symlink, wrong from the host: use the instance id.
  // cloud-init writes boot-finished first and result.json a few milliseconds
  // later (seen: 9 ms): finished means both are there.
  const bootFinished = fs.existsSync(path.join(droplet.merged, "var/lib/cloud/instances", droplet.instanceId, "boot-finished"));
  const resultFile = path.join(droplet.merged, "var/lib/cloud/data/result.json");
  const finished = bootFinished && fs.existsSync(resultFile);
  if (!finished) return { finished, errors: [], recoverableErrors: [] };
  const v1 = (JSON.parse(fs.readFileSync(resultFile, "utf8")) as { v1?: Record<string, unknown> }).v1 ?? {};
  const errors = Array.isArray(v1.errors) ? v1.errors.map(String) : [];
  const recoverable = v1.recoverable_errors as Record<string, unknown[]> | undefined;
  const recoverableErrors = Object.entries(recoverable ?? {}).flatMap(([level, messages]) =>
    (messages ?? []).map((m) => `${level}: ${String(m)}`),
  );
  return { finished, errors, recoverableErrors };
}

/**
 * Waits for every droplet's cloud-init, printing one line per droplet as it
 * finishes and a progress line every 30 s.
 *
 * @returns the droplets that failed (error, container gone, or timeout), with why.
 */
export async function waitForCloudInit(
  state: LabState,
  names: readonly string[],
  timeoutSeconds: number,
  interrupted: () => boolean,
): Promise<{ name: string; reason: string }[]> {
  const started = Date.now();
  const pending = new Set(names);
  const failed: { name: string; reason: string }[] = [];
  let lastProgress = Date.now();
  while (pending.size > 0) {
    const seconds = Math.round((Date.now() - started) / 1000);
    for (const name of [...pending]) {
      const droplet = dropletState(state, name);
      const outcome = cloudInitOutcome(droplet);
      if (outcome.finished) {
        pending.delete(name);
        if (outcome.errors.length > 0) {
          failed.push({ name, reason: `cloud-init finished with errors: ${outcome.errors.join("; ")}` });
          log(`${name}: cloud-init FAILED after ${seconds}s`);
        } else {
          const warnings = outcome.recoverableErrors.length;
          log(
            `${name}: cloud-init finished in ${seconds}s${warnings ? ` (${warnings} warning(s), see \`cloud-init status --long\`)` : ""}`,
          );
        }
      } else if (droplet.nspawnPid === undefined || processName(droplet.nspawnPid) !== "systemd-nspawn") {
        pending.delete(name);
        failed.push({ name, reason: "the container stopped before cloud-init finished" });
        log(`${name}: container stopped after ${seconds}s`);
      }
    }
    if (pending.size === 0) break;
    // One failed droplet fails the stack; the others may wait on it for long
    // (a replica waits up to 30 min for its primary), so stop here.
    if (failed.length > 0) {
      for (const name of pending) failed.push({ name, reason: "not waited for: another droplet failed" });
      break;
    }
    if (interrupted()) {
      for (const name of pending) failed.push({ name, reason: "interrupted" });
      break;
    }
    if (seconds >= timeoutSeconds) {
      for (const name of pending) failed.push({ name, reason: `cloud-init not finished after ${timeoutSeconds}s` });
      break;
    }
    if (Date.now() - lastProgress >= 30_000) {
      lastProgress = Date.now();
      const detail = [...pending].map((name) => `${name} (${lastOutputLine(dropletState(state, name))})`).join(", ");
      log(`waiting for cloud-init: ${detail}`);
    }
    await sleep(1000);
  }
  return failed;
}

function withoutBootNoise(log: string): string {
  const kept: string[] = [];
  let inKeyBlock = false;
  for (const line of log.split("\n")) {
    if (/-----BEGIN SSH HOST KEY|^\+--\[|^Generating public\/private/.test(line)) inKeyBlock = true;
    if (!inKeyBlock && !line.startsWith("ci-info:")) kept.push(line);
    if (/-----END SSH HOST KEY|^\+----\[SHA256\]/.test(line)) inKeyBlock = false;
  }
  return kept.join("\n");
}

/** Logs (relative to the droplet's root) worth showing when a boot fails. */
const DAEMON_LOGS = ["var/log/mysql/error.log"];

/** `cloud-init status --long` and the tail of cloud-init-output.log, for a failure report. */
export function cloudInitReport(state: LabState, name: string): string {
  const droplet = dropletState(state, name);
  const status = execIn(state, name, ["cloud-init", "status", "--long"], 30_000);
  const outputLog = path.join(droplet.merged, "var/log/cloud-init-output.log");
  // Without the ci-info network tables and the SSH host keys printed at the
  // end of the final stage: they fill the tail and say nothing about a failure.
  const output = fs.existsSync(outputLog) ? tail(withoutBootNoise(fs.readFileSync(outputLog, "utf8")), 40) : "(no cloud-init-output.log)";
  const consoleLog = path.join(droplet.dir, "console.log");
  const consoleTail = fs.existsSync(consoleLog) ? tail(fs.readFileSync(consoleLog, "utf8"), 15) : "";
  // A daemon that failed during a package's own setup (mysqld --initialize) says why only in its log.
  const daemonLogs = DAEMON_LOGS.filter((file) => fs.existsSync(path.join(droplet.merged, file))).flatMap((file) => [
    `--- ${name}: tail of /${file}`,
    tail(fs.readFileSync(path.join(droplet.merged, file), "utf8"), 25).trimEnd(),
  ]);
  return [
    `--- ${name}: cloud-init status --long (exit ${status.status})`,
    (status.stdout + status.stderr).trimEnd(),
    `--- ${name}: tail of /var/log/cloud-init-output.log`,
    output,
    ...daemonLogs,
    ...(status.status === 255 ? [`--- ${name}: tail of the container console`, consoleTail] : []),
  ].join("\n");
}

/** Powers a droplet off (SIGTERM to nspawn: a clean shutdown inside), keeping its disk. */
export async function powerOff(state: LabState, name: string): Promise<boolean> {
  const droplet = dropletState(state, name);
  const pid = droplet.nspawnPid;
  const stopped = pid !== undefined && (await stopProcess(pid, "systemd-nspawn", 60_000));
  droplet.nspawnPid = undefined;
  saveState(state);
  return stopped;
}

/**
 * Boots a powered-off droplet again from the same disk and instance-id (so
 * cloud-init treats it as a reboot, not a new instance), and waits until
 * systemd reports the boot done.
 */
export async function powerOn(state: LabState, name: string, timeoutMs = 180_000): Promise<void> {
  const droplet = dropletState(state, name);
  if (droplet.nspawnPid !== undefined && processName(droplet.nspawnPid) === "systemd-nspawn") {
    throw new Error(`${name} is already running`);
  }
  await bootDroplet(state, name);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (containerInit(state, name) !== undefined) {
      const result = execIn(state, name, ["systemctl", "is-system-running", "--wait"], Math.max(1000, deadline - Date.now()));
      // "degraded" still means the boot finished; anything else: look again.
      if (["running", "degraded"].includes(result.stdout.trim())) return;
    }
    await sleep(500);
  }
  throw new Error(`${name} did not finish booting within ${Math.round(timeoutMs / 1000)}s`);
}

/** Stops every droplet and unmounts and deletes its overlay; returns what it removed. */
export async function teardownDroplets(state: LabState): Promise<string[]> {
  const removed: string[] = [];
  const names = Object.keys(state.droplets);
  // Power off in parallel: each clean shutdown takes a few seconds.
  const stops = await Promise.all(names.map((name) => powerOff(state, name)));
  names.forEach((name, i) => {
    if (stops[i]) removed.push(`container ${name}`);
  });
  for (const name of names) removed.push(...removeDisk(state, name));
  return removed;
}

/** Unmounts and deletes a powered-off droplet's overlay (its disk) and forgets it; returns what it removed. */
export function removeDisk(state: LabState, name: string): string[] {
  const removed: string[] = [];
  const droplet = dropletState(state, name);
  // nspawn leaves its mount-propagation directory behind when /run is not a tmpfs.
  const propagate = `/run/systemd/nspawn/propagate/${name}`;
  if (fs.existsSync(propagate)) {
    unmountAll(propagate);
    removeTree(propagate);
  }
  const unmounted = unmountAll(droplet.dir);
  if (unmounted.length > 0) removed.push(`overlay ${droplet.merged}`);
  removeTree(droplet.dir);
  delete state.droplets[name];
  saveState(state);
  return removed;
}

function lastOutputLine(droplet: DropletState): string {
  const file = path.join(droplet.merged, "var/log/cloud-init-output.log");
  if (!fs.existsSync(file)) return "booting";
  const line = tail(fs.readFileSync(file, "utf8"), 1).trim();
  return line.length > 70 ? `${line.slice(0, 67)}...` : line || "cloud-init started";
}

function dropletState(state: LabState, name: string): DropletState {
  const droplet = state.droplets[name];
  if (!droplet) throw new Error(`no droplet named ${name} in the lab (have: ${Object.keys(state.droplets).join(", ")})`);
  return droplet;
}
