/**
 * Faults injected into a running lab, for people (`npm run lab -- fault …`)
 * and checks (`lab.fault(…)`) alike. Every fault is logged with a timestamp to
 * `<state dir>/faults.log` and printed.
 *
 * Each acts on one droplet only:
 * - `stop` / `start` a unit: `systemctl` inside that droplet;
 * - `crash` a unit: SIGKILL to every process of the unit's cgroup, which is
 *   that droplet's own (see cgroups.ts);
 * - `poweroff` / `poweron`: a clean shutdown / a boot from the same disk;
 * - `partition`: every frame to or from the droplet's two NICs dropped in the
 *   lab switch (outside the droplet, so nothing inside can undo it), links up;
 *   `partition <other droplet>`: only the frames between the two droplets;
 * - `slow [ms]`: `tc netem` delay on the switch ports towards the droplet,
 *   which adds that much to every round trip;
 * - `heal`: undoes `partition` and `slow`.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { switchPorts } from "./host/network";
import { log, run, tryRun } from "./host/shell";
import { dropletSlot, stateDir, SWITCH_NS } from "./settings";

export const FAULT_KINDS = ["stop", "start", "crash", "poweroff", "poweron", "partition", "slow", "heal"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Kinds that act on a systemd unit inside the droplet. */
const UNIT_KINDS: readonly FaultKind[] = ["stop", "start", "crash"];

/** Added latency of `slow` when none is given, in milliseconds. */
export const DEFAULT_SLOW_MS = 200;

export interface Fault {
  readonly droplet: string;
  readonly kind: FaultKind;
  /** The unit for `stop`, `start` and `crash` (`.service` is added when no suffix is given). */
  readonly unit?: string;
  /** Added latency for `slow`, in milliseconds. @default DEFAULT_SLOW_MS */
  readonly delayMs?: number;
  /** For `partition`: cut the droplet off from this one only. @default - from everything */
  readonly from?: string;
}

/** What a fault needs from the lab: its droplets, and ways to act on them. */
export interface FaultTarget {
  /** The droplets' names. */
  readonly dropletNames: readonly string[];
  execIn(name: string, cmd: readonly string[], timeoutMs?: number): { status: number; stdout: string; stderr: string };
  powerOff(name: string): Promise<void>;
  powerOn(name: string): Promise<void>;
}

/**
 * Parses `<droplet> <kind> [unit|ms]` as typed on the command line.
 *
 * @throws Error with one line saying what is accepted.
 */
export function parseFault(args: readonly string[], dropletNames: readonly string[]): Fault {
  const usage = `usage: fault <droplet> <${FAULT_KINDS.join("|")}> [unit | ms | other droplet]`;
  const [droplet, kind, extra, ...rest] = args;
  if (!droplet || !kind || rest.length > 0) throw new Error(usage);
  if (!dropletNames.includes(droplet)) {
    throw new Error(`fault: no droplet named "${droplet}" (have: ${dropletNames.join(", ")})`);
  }
  if (!(FAULT_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`fault: unknown kind "${kind}" (accepted: ${FAULT_KINDS.join(", ")})`);
  }
  const faultKind = kind as FaultKind;
  if (UNIT_KINDS.includes(faultKind)) {
    if (!extra) throw new Error(`fault: ${kind} needs a unit, such as "mysql" or "nginx.service"`);
    if (!/^[A-Za-z0-9@._:-]+$/.test(extra)) throw new Error(`fault: "${extra}" is not a systemd unit name`);
    return { droplet, kind: faultKind, unit: extra };
  }
  if (faultKind === "slow" && extra !== undefined) {
    const delayMs = Number(extra);
    if (!Number.isInteger(delayMs) || delayMs < 1 || delayMs > 10_000) {
      throw new Error(`fault: slow takes a delay in whole milliseconds from 1 to 10000, got "${extra}"`);
    }
    return { droplet, kind: faultKind, delayMs };
  }
  if (faultKind === "partition" && extra !== undefined) {
    if (!dropletNames.includes(extra) || extra === droplet) {
      throw new Error(
        `fault: partition takes another droplet to cut ${droplet} off from, got "${extra}" (have: ${dropletNames.join(", ")})`,
      );
    }
    return { droplet, kind: faultKind, from: extra };
  }
  if (extra !== undefined) throw new Error(`fault: ${kind} takes no argument, got "${extra}"`);
  return { droplet, kind: faultKind };
}

/** `mysql` → `mysql.service`; names with a suffix stay as they are. */
export function unitName(unit: string): string {
  return /\.[a-z]+$/.test(unit) ? unit : `${unit}.service`;
}

/** The nftables table (bridge family, in the switch namespace) that partitions one droplet. */
export function partitionTable(droplet: string): string {
  return `lab_partition_${droplet.replace(/[^A-Za-z0-9]/g, "_")}`;
}

/**
 * The ruleset that drops every frame to or from the given switch ports, or
 * with `otherPorts`, only the frames between those and the given ports.
 */
export function renderPartition(droplet: string, ports: readonly string[], otherPorts?: readonly string[]): string {
  const set = (names: readonly string[]) => `{ ${names.map((name) => `"${name}"`).join(", ")} }`;
  const rules = otherPorts
    ? [`    iifname ${set(ports)} oifname ${set(otherPorts)} drop`, `    iifname ${set(otherPorts)} oifname ${set(ports)} drop`]
    : ports.flatMap((port) => [`    iifname "${port}" drop`, `    oifname "${port}" drop`]);
  return [
    `table bridge ${partitionTable(droplet)} {`,
    "  chain forward {",
    "    type filter hook forward priority -200; policy accept;",
    ...rules,
    "  }",
    "}",
    "",
  ].join("\n");
}

/**
 * Injects one fault, logs it with a timestamp, and returns what happened.
 *
 * @throws Error when the fault could not be applied (the log says so too).
 */
export async function injectFault(target: FaultTarget, fault: Fault): Promise<string> {
  if (!target.dropletNames.includes(fault.droplet)) throw new Error(`fault: no droplet named "${fault.droplet}"`);
  const what = [
    fault.droplet,
    fault.kind,
    fault.unit ?? fault.from ?? (fault.kind === "slow" ? `${fault.delayMs ?? DEFAULT_SLOW_MS}ms` : ""),
  ]
    .filter(Boolean)
    .join(" ");
  try {
    const other = fault.from === undefined ? undefined : switchPorts(dropletSlot(fault.from));
    const outcome = await apply(target, fault, switchPorts(dropletSlot(fault.droplet)), other);
    record(`${what}: ${outcome}`);
    return outcome;
  } catch (error) {
    record(`${what}: FAILED ${(error as Error).message}`);
    throw error;
  }
}

async function apply(target: FaultTarget, fault: Fault, ports: readonly string[], otherPorts?: readonly string[]): Promise<string> {
  const inside = (cmd: string[]): string => {
    const result = target.execIn(fault.droplet, cmd, 120_000);
    if (result.status !== 0) throw new Error(`${cmd.join(" ")} on ${fault.droplet}: ${(result.stderr || result.stdout).trim()}`);
    return result.stdout.trim();
  };
  switch (fault.kind) {
    case "stop":
    case "start":
      inside(["systemctl", fault.kind, unitName(fault.unit!)]);
      return `${unitName(fault.unit!)} ${fault.kind === "stop" ? "stopped" : "started"}`;
    case "crash": {
      const unit = unitName(fault.unit!);
      const before = inside(["systemctl", "show", "--property=MainPID", "--value", unit]);
      // SIGKILL to the whole cgroup of the unit (the droplet's own): what a crash or the OOM killer does.
      inside(["systemctl", "kill", "--kill-whom=all", "--signal=SIGKILL", unit]);
      return `${unit} killed (SIGKILL to its cgroup, main PID was ${before})`;
    }
    case "poweroff":
      await target.powerOff(fault.droplet);
      return "powered off";
    case "poweron":
      await target.powerOn(fault.droplet);
      return "powered on, booted";
    case "partition":
      removePartition(fault.droplet);
      run("ip", ["netns", "exec", SWITCH_NS, "nft", "-f", "-"], { input: renderPartition(fault.droplet, ports, otherPorts) });
      return otherPorts
        ? `all traffic between ${ports.join(", ")} and ${fault.from}'s ${otherPorts.join(", ")} dropped in the lab switch`
        : `all traffic to and from ${ports.join(", ")} dropped in the lab switch`;
    case "slow": {
      const delayMs = fault.delayMs ?? DEFAULT_SLOW_MS;
      for (const port of ports) {
        const result = tryRun("ip", [
          "netns",
          "exec",
          SWITCH_NS,
          "tc",
          "qdisc",
          "replace",
          "dev",
          port,
          "root",
          "netem",
          "delay",
          `${delayMs}ms`,
        ]);
        if (result.status !== 0) {
          const why = /unknown/i.test(result.stderr)
            ? "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): slow cannot run here"
            : result.stderr.trim();
          throw new Error(why);
        }
      }
      return `${delayMs} ms added towards ${ports.join(", ")} (every round trip)`;
    }
    case "heal": {
      const partitioned = removePartition(fault.droplet);
      const slowed = ports.filter(
        (port) => tryRun("ip", ["netns", "exec", SWITCH_NS, "tc", "qdisc", "del", "dev", port, "root", "netem"]).status === 0,
      );
      return partitioned || slowed.length > 0
        ? [partitioned ? "partition removed" : "", slowed.length ? "delay removed" : ""].filter(Boolean).join(", ")
        : "nothing to heal";
    }
  }
}

function removePartition(droplet: string): boolean {
  return tryRun("ip", ["netns", "exec", SWITCH_NS, "nft", "delete", "table", "bridge", partitionTable(droplet)]).status === 0;
}

/** Appends one timestamped line to the lab's fault log and prints it. */
function record(line: string): void {
  const stamped = `${new Date().toISOString()} fault ${line}`;
  fs.appendFileSync(path.join(stateDir(), "faults.log"), stamped + "\n");
  log(`fault ${line}`);
}
