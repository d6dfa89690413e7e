/**
 * Looking at and stopping processes by PID.
 *
 * The lab only ever signals PIDs it recorded itself, and checks the process
 * name first so a PID reused after a crash or reboot is never touched.
 */
import * as fs from "node:fs";
import { sleep } from "./shell";

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
