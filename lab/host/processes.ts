/**
 * Looking at and stopping processes by PID.
 *
 * The lab only ever signals PIDs it recorded itself, and checks the process
 * name first so a PID reused after a crash or reboot is never touched.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";

import { sleep, tail } from "./shell";

/** The command name of a live process; undefined if it is gone or a zombie. */
export function processName(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Format: "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
    const close = stat.lastIndexOf(")");
    const state = stat.slice(close + 2, close + 3);
    if (state === "Z" || state === "X") return undefined;
    return stat.slice(stat.indexOf("(") + 1, close);
  } catch {
    return undefined;
  }
}

/** PIDs of the live children of a process. */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid && fields[0] !== "Z") children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

/** Waits until the process is gone; false on timeout. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (processName(pid) === undefined) return true;
    await sleep(100);
  }
  return processName(pid) === undefined;
}

/**
 * SIGTERM, wait, then SIGKILL — only if the PID still runs `expectedName`.
 *
 * @returns whether the process was running (and is now stopped).
 */
export async function stopProcess(pid: number, expectedName: string, timeoutMs: number): Promise<boolean> {
  if (processName(pid) !== expectedName) return false;
  process.kill(pid, "SIGTERM");
  if (await waitForExit(pid, timeoutMs)) return true;
  if (processName(pid) === expectedName) process.kill(pid, "SIGKILL");
  await waitForExit(pid, 5_000);
  return true;
}

/** `nobody`: the lab's servers (pebble, the metadata service) need no privilege, only a port in their own namespace. */
export const NOBODY_ID = 65534;
/** How long a lab server may take to answer after it starts. */
const READY_TIMEOUT_MS = 20_000;

/**
 * Starts a program as `nobody` in a lab namespace, detached, output to a log.
 * `ip netns exec` and `setpriv` both exec, so the PID is the program's own.
 */
export function spawnUnprivileged(
  ns: string,
  program: string,
  args: readonly string[],
  env: Record<string, string>,
  logFile: string,
): number {
  const out = fs.openSync(logFile, "a");
  const child = spawn(
    "ip",
    ["netns", "exec", ns, "setpriv", `--reuid=${NOBODY_ID}`, `--regid=${NOBODY_ID}`, "--clear-groups", "--", program, ...args],
    { detached: true, stdio: ["ignore", out, out], env: { ...process.env, ...env } },
  );
  fs.closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${program}`);
  return child.pid;
}

/**
 * Polls `ready` until it holds; throws with the log's tail if the process
 * (expected to exec into `comm`) dies or time runs out.
 */
export async function waitUntilServing(
  ns: string,
  what: string,
  pid: number,
  comm: string,
  logFile: string,
  ready: () => boolean,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited = false;
  while (Date.now() < deadline) {
    if (ready()) return;
    // Until it has exec'd, the process is still called `ip` or `setpriv`.
    const name = processName(pid);
    if (name === undefined || (name !== comm && name !== "ip" && name !== "setpriv")) {
      exited = true;
      break;
    }
    await sleep(100);
  }
  const output = fs.existsSync(logFile) ? tail(fs.readFileSync(logFile, "utf8"), 15) : "";
  const why = exited ? "exited" : `did not answer within ${READY_TIMEOUT_MS / 1000}s`;
  throw new Error(`${what} (pid ${pid}) ${why} in ${ns}; ${logFile}:\n${output}`);
}

/** A lab server as the state records it: its directory and, once started, its PID. */
export interface ServerRecord {
  readonly dir: string;
  readonly pid?: number;
}

/**
 * Stops a lab server by its recorded PID (only if it still runs `comm`) and
 * deletes its directory; returns what it did. The caller forgets the record.
 */
export async function stopServer(record: ServerRecord | undefined, comm: string, label: string): Promise<string[]> {
  if (!record) return [];
  const removed: string[] = [];
  if (record.pid !== undefined && (await stopProcess(record.pid, comm, 10_000))) removed.push(`${label} pid ${record.pid}`);
  fs.rmSync(record.dir, { recursive: true, force: true });
  return removed;
}
