/**
 * What the lab's checks share: the droplets by role, requests from the client
 * namespace, SQL in a droplet, waiting, background load.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";

import { userDataText } from "../../cloud-init/cloud-config";
import { MONITORING_PATHS } from "../../cloud-init/monitoring-server";
import { isLoadBalancer, isMonitoringServer, isWebServer } from "../../names";
import type { LabDroplet } from "../emulations/terraform";
import { CommandResult, sleep, tryRun } from "../host/shell";
import type { Lab } from "../lab";
import { CLIENT_NS } from "../settings";

export interface Check {
  /** A sentence stating the rule: printed as `PASS (<seconds> s) <name> — <evidence>`. */
  readonly name: string;
  run(lab: Lab): Promise<string>;
}

/** The load balancer and the web servers, by the names the stack gives them. */
export function roles(lab: Lab): { lb: LabDroplet; webs: LabDroplet[]; primary: LabDroplet; replicas: LabDroplet[] } {
  const lb = lab.stack.droplets.find((d) => isLoadBalancer(d.name));
  const webs = lab.stack.droplets.filter((d) => isWebServer(d.name)).sort((a, b) => a.name.localeCompare(b.name));
  if (!lb || webs.length === 0) throw new Error("the stack has no lb-NN or no web-NN droplet");
  return { lb, webs, primary: webs[0], replicas: webs.slice(1) };
}

/** True when the stack's load balancer terminates HTTPS (FOOBAR_HTTPS, on by default). */
export function httpsOn(lab: Lab): boolean {
  return /bind :443 ssl/.test(userDataText(roles(lab).lb.userData));
}

/** The site's host name: `www.<domain>` if the stack has a www record, else the first A record's name. */
export function siteHost(lab: Lab): string {
  const records = lab.stack.records.filter((r) => r.type === "A");
  const www = records.find((r) => r.name === "www") ?? records[0];
  if (!www) throw new Error("the stack has no A record to reach the site by");
  return www.fqdn;
}

/** `https://www.<domain>/`, or `http://` when the stack serves plain HTTP. */
export function siteUrl(lab: Lab): string {
  return `${httpsOn(lab) ? "https" : "http"}://${siteHost(lab)}/`;
}

/**
 * A TLS handshake with lb-01 from the client namespace, by the site's name,
 * trusting only the lab ACME CA's root; `then` is a shell pipe stage for its output.
 */
export function tlsHandshake(lab: Lab, options: string, then = "cat"): CommandResult {
  const { lb } = roles(lab);
  const connect = `openssl s_client -connect ${lb.publicIpv4}:443 -servername ${siteHost(lab)} -CAfile ${lab.acme.issuingRootFile}`;
  return lab.client(["sh", "-c", `echo | ${connect} ${options} | ${then}`], 15_000);
}

/** curl options that trust only the lab ACME CA's root: the placeholder certificate fails them. */
export function trustLabCa(lab: Lab): string[] {
  return ["--cacert", lab.acme.issuingRootFile];
}

export interface HttpAnswer {
  code: string;
  servedBy: string;
  body: string;
}

/** One request from the client namespace, by name. */
export function request(lab: Lab, url: string, extra: string[] = []): HttpAnswer {
  // The status and the served-by header come last, on a line of their own.
  const result = lab.client(
    ["curl", "-sS", "--max-time", "5", ...trustLabCa(lab), "-w", "\\n%{http_code} %header{x-served-by}", ...extra, url],
    15_000,
  );
  const lines = result.stdout.split("\n");
  const [code, servedBy] = (lines.pop() ?? "").split(" ");
  return { code: code || "000", servedBy: servedBy ?? "", body: lines.join("\n") };
}

/** Runs SQL as root inside a droplet (over its socket) and returns the output. */
export function sql(lab: Lab, droplet: string, statement: string, options: string[] = ["--batch", "--skip-column-names"]): string {
  const result = lab.execIn(droplet, ["mysql", ...options, "--execute", statement], 30_000);
  if (result.status !== 0) throw new Error(`${droplet}: mysql failed: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** SHOW REPLICA STATUS of a replica, as name → value. */
/** Whether a replica's status (from `replicaStatus`) has both its receiver and its applier running. */
export function threadsRunning(status: Record<string, string>): boolean {
  return status.Replica_IO_Running === "Yes" && status.Replica_SQL_Running === "Yes";
}

export function replicaStatus(lab: Lab, droplet: string): Record<string, string> {
  const text = sql(lab, droplet, "SHOW REPLICA STATUS", ["--vertical"]);
  return Object.fromEntries(
    text
      .split("\n")
      .map((line) => /^\s*(\w+): ?(.*)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]),
  );
}

export type Origin = { client: true } | { droplet: string } | { namespace: string };

/** Runs a command in the client namespace, a droplet, or another lab namespace (such as lab-acme). */
export function runFrom(lab: Lab, from: Origin, cmd: string[], timeoutMs: number) {
  if ("client" in from) return lab.client(cmd, timeoutMs);
  if ("droplet" in from) return lab.execIn(from.droplet, cmd, timeoutMs);
  return tryRun("ip", ["netns", "exec", from.namespace, ...cmd], { timeoutMs });
}

/** Tries a TCP connection from inside a namespace: "open", "refused" or "dropped" (timed out). */
export function tcpFrom(lab: Lab, from: Origin, address: string, port: number): string {
  return tcpProbes(lab, [{ from, address, port }])[0]!;
}

/** A TCP connection to try: from where, to what. */
export interface TcpProbe {
  readonly from: Origin;
  readonly address: string;
  readonly port: number;
}

/**
 * `tcpFrom` for many probes, those of one origin all tried at once: a dropped
 * connection waits out its 3 s timeout once for its origin's batch, not once each.
 *
 * @returns per probe, in order: "open", "refused", "dropped" or "failed (…)".
 */
export function tcpProbes(lab: Lab, probes: readonly TcpProbe[]): string[] {
  const states: string[] = [];
  const origins = new Map<string, number[]>();
  probes.forEach(({ from }, i) => {
    const key = JSON.stringify(from);
    origins.set(key, [...(origins.get(key) ?? []), i]);
  });
  for (const indices of origins.values()) {
    // One line per probe, written whole: "=<index> <exit status> <what bash said>".
    const script = indices.map((i) => {
      const { address, port } = probes[i]!;
      return `( said=$(timeout 3 bash -c 'exec 3<>/dev/tcp/${address}/${port}' 2>&1); echo "=${i} $? \${said//$'\\n'/ }" ) &`;
    });
    const result = runFrom(lab, probes[indices[0]!]!.from, ["bash", "-c", [...script, "wait"].join("\n")], 15_000);
    const lines = new Map(
      [...result.stdout.matchAll(/^=(\d+) (\d+) ?(.*)$/gm)].map((m) => [Number(m[1]), { status: Number(m[2]), said: m[3]! }]),
    );
    for (const i of indices) {
      const probe = lines.get(i);
      states[i] = !probe
        ? `failed (no answer from the probe: ${result.stderr.trim() || `exit ${result.status}`})`
        : probe.status === 0
          ? "open"
          : probe.status === 124
            ? "dropped"
            : /refused/i.test(probe.said)
              ? "refused"
              : `failed (${probe.said.replace(/^bash: /, "").trim() || probe.status})`;
    }
  }
  return states;
}

/** HAProxy's view of each backend server ("UP", "DOWN", …), read from its admin socket. */
export function backendStates(lab: Lab): Record<string, string> {
  const { lb } = roles(lab);
  const script = [
    "import socket",
    "s = socket.socket(socket.AF_UNIX)",
    "s.connect('/run/haproxy/admin.sock')",
    "s.sendall(b'show stat\\n')",
    "data = b''",
    "while True:",
    "    chunk = s.recv(65536)",
    "    if not chunk: break",
    "    data += chunk",
    "print(data.decode())",
  ].join("\n");
  const result = lab.execIn(lb.name, ["python3", "-c", script], 10_000);
  if (result.status !== 0) throw new Error(`HAProxy stats: ${result.stderr.trim()}`);
  const states: Record<string, string> = {};
  for (const line of result.stdout.split("\n")) {
    const fields = line.split(",");
    if (fields[0] === "web_servers" && !["FRONTEND", "BACKEND"].includes(fields[1])) states[fields[1]] = fields[17];
  }
  return states;
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  let last: unknown;
  while (Date.now() - start < timeoutMs) {
    try {
      const value = probe();
      if (value !== undefined) return { value, ms: Date.now() - start };
    } catch (error) {
      last = error;
    }
    await sleep(250);
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last error: ${(last as Error).message})` : ""}`);
}

/** Runs a bash loop in the client namespace until stopped; `stop` resolves with everything it printed. */
export function backgroundClient(script: string) {
  const child = spawn("ip", ["netns", "exec", CLIENT_NS, "bash", "-c", script], { stdio: ["ignore", "pipe", "ignore"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    /** Stops the loop (again: a no-op) and returns its output. */
    async stop(): Promise<string> {
      child.kill("SIGTERM");
      await exited;
      return output;
    },
  };
}

/** A request of `continuousClient` that was not answered 200. */
export interface FailedRequest {
  /** When it was sent, ms since the epoch (the lab host's clock). */
  readonly at: number;
  /** The HTTP status, or "000" for no answer at all. */
  readonly code: string;
  /** curl's error message, if it had one ("Connection reset by peer", "Operation timed out …"). */
  readonly error: string;
}

/**
 * Sends requests to the site from the client namespace, one after another,
 * until stopped; counts answers by status and by server, and keeps when each
 * failed one was sent and why, to be matched with what happened then.
 */
export function continuousClient(lab: Lab, url: string) {
  const script = `while :; do at=$EPOCHREALTIME; curl -s -o /dev/null --max-time 3 --cacert '${lab.acme.issuingRootFile}' -D - -w "code=%{http_code} at=$at error=%{errormsg}\\n" '${url}' | tr -d '\\r' | grep -iE '^(x-served-by|code=)'; sleep 0.05; done`;
  const client = backgroundClient(script);
  return {
    /** Stops the client (again: a no-op) and counts its answers. */
    async stop() {
      const output = await client.stop();
      const answers = [...output.matchAll(/^code=(\d+) at=([\d.]+) error=(.*)$/gm)].map((m) => ({
        code: m[1]!,
        at: Math.round(Number(m[2]) * 1000),
        error: m[3]!.trim(),
      }));
      const failures: FailedRequest[] = answers.filter((answer) => answer.code !== "200");
      const byStatus = new Map<string, number>();
      for (const { code } of failures) byStatus.set(code, (byStatus.get(code) ?? 0) + 1);
      // "000" is curl's code for no answer at all (refused, reset, or its 3 s timeout).
      const detail = [...byStatus].map(([code, count]) => `${count}× ${code}`).join(", ");
      return { total: answers.length, failed: failures.length, byStatus: detail ? ` (${detail})` : "", failures };
    },
  };
}

/** The host's view of a droplet init's cgroups, one `ID:controllers:path` line per hierarchy. */
export function cgroupLines(lab: Lab, droplet: string): string[] {
  const init = lab.initPid(droplet);
  if (init === undefined) throw new Error(`${droplet} is not running`);
  return fs.readFileSync(`/proc/${init}/cgroup`, "utf8").split("\n").filter(Boolean);
}

export interface UnitRun {
  state: string;
  mainPid: string;
  /** New on every start of the unit: tells a restart even when the PID number repeats. */
  invocation: string;
}

/** A unit's state, main PID and invocation id inside a droplet. */
export function unitInvocation(lab: Lab, droplet: string, unit: string): UnitRun {
  const result = lab.execIn(droplet, ["systemctl", "show", "--property=ActiveState,MainPID,InvocationID", unit]);
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(result.stdout)?.[1] ?? "";
  return { state: value("ActiveState"), mainPid: value("MainPID"), invocation: value("InvocationID") };
}

/**
 * The stack's generated passwords, read from the root-only environment files
 * that hold them on the droplets: value → the variables that hold it.
 *
 * @throws Error when fewer than the three the stack generates are found.
 */
export function generatedSecrets(lab: Lab): Map<string, string[]> {
  const { lb, webs } = roles(lab);
  const files: [string, string][] = [
    [lb.name, "/etc/haproxy/foobar-stats.env"],
    ...webs.flatMap((w): [string, string][] => [
      [w.name, "/etc/foobar/app.env"],
      [w.name, "/etc/foobar/mysql-setup.env"],
    ]),
  ];
  const secrets = new Map<string, string[]>();
  for (const [droplet, file] of files) {
    const text = lab.execIn(droplet, ["cat", file]).stdout;
    for (const match of text.matchAll(/^(\w*PASSWORD)=(\S+)$/gm)) {
      secrets.set(match[2]!, [...new Set([...(secrets.get(match[2]!) ?? []), match[1]!])]);
    }
  }
  // Prometheus' password on mon-01: a file of its own, the password alone.
  const mon = lab.stack.droplets.find((d) => isMonitoringServer(d.name));
  if (mon) {
    const password = lab.execIn(mon.name, ["cat", MONITORING_PATHS.passwordFile]).stdout.trim();
    if (password) secrets.set(password, ["PROMETHEUS_PASSWORD"]);
  }
  if (secrets.size < 3) throw new Error(`found only ${secrets.size} generated secret(s) to look for`);
  return secrets;
}

export const replicationSettles = 10_000;

/**
 * Stops Nginx on the first web server, or powers off the last one, under a
 * continuous client; it must go DOWN in HAProxy and come back, and while
 * HAProxy still counts it in, a request may be lost only if redispatching
 * fails too: at most a couple.
 */
export async function nginxOrPowerFault(lab: Lab, fault: "nginx" | "power"): Promise<string> {
  const { webs } = roles(lab);
  if (webs.length < 2) return "only one web server: nothing to fail over to";
  const target = fault === "nginx" ? webs[0]! : webs[webs.length - 1]!;
  return faultUnderLoad(lab, {
    server: target.name,
    url: siteUrl(lab),
    inject: () => (fault === "nginx" ? lab.fault(target.name, "stop", "nginx") : lab.fault(target.name, "poweroff")),
    downWindowMs: 60_000,
    requireDown: true,
    meanwhile: async () => {
      await sleep(2000);
      return "";
    },
    recover: async () => {
      await (fault === "nginx" ? lab.fault(target.name, "start", "nginx") : lab.fault(target.name, "poweron"));
      return fault === "nginx" ? "Nginx started again" : "powered on again";
    },
    maxFailed: 2,
  });
}

export interface FaultUnderLoad {
  /** The HAProxy backend server to watch (a web server's name). */
  readonly server: string;
  /** What the continuous client requests. */
  readonly url: string;
  inject(): Promise<unknown>;
  /** How long to watch for HAProxy marking the server DOWN before going on without. */
  readonly downWindowMs: number;
  /** Fail unless HAProxy marks the server DOWN within the window. @default false */
  readonly requireDown?: boolean;
  /** Fail when more requests than this fail. @default - any number, reported */
  readonly maxFailed?: number;
  /** Runs while the fault lasts; returns evidence. */
  meanwhile?(): Promise<string>;
  /** Ends the fault (or waits for the product to); returns evidence. */
  recover(): Promise<string>;
}

/**
 * Injects a fault while a client requests `url` continuously, and reports
 * requests sent and failed (by status), the time until HAProxy marks the
 * server DOWN (if it does within the window), and until it is UP again after
 * recovery. Throws only when the server does not come back.
 */
export async function faultUnderLoad(lab: Lab, fault: FaultUnderLoad): Promise<string> {
  // A fault measured on a server HAProxy already counts out would time nothing.
  await waitFor(`${fault.server} UP in HAProxy before the fault`, 60_000, () =>
    backendStates(lab)[fault.server] === "UP" ? true : undefined,
  );
  const client = continuousClient(lab, fault.url);
  try {
    await sleep(1000);
    const began = Date.now();
    await fault.inject();
    // Measured from the fault, not from when watching began.
    const markedDown = await waitFor(`HAProxy marking ${fault.server} DOWN`, fault.downWindowMs, () =>
      backendStates(lab)[fault.server]?.startsWith("DOWN") ? true : undefined,
    ).then(
      () => Date.now() - began,
      (error: Error) => {
        if (fault.requireDown) throw error;
        return undefined;
      },
    );
    const meanwhile = fault.meanwhile ? await fault.meanwhile() : "";
    const recovered = await fault.recover();
    const recoveredAt = Date.now();
    await waitFor(`${fault.server} UP in HAProxy again`, 180_000, () => (backendStates(lab)[fault.server] === "UP" ? true : undefined));
    const upAfter = Date.now() - recoveredAt;
    await sleep(1000);
    const { total, failed, byStatus } = await client.stop();
    if (total < 10) throw new Error(`the client sent only ${total} requests`);
    if (fault.maxFailed !== undefined && failed > fault.maxFailed) throw new Error(`${failed} of ${total} requests failed${byStatus}`);
    const down =
      markedDown === undefined
        ? `not marked DOWN within ${fault.downWindowMs / 1000} s`
        : `marked DOWN after ${(markedDown / 1000).toFixed(1)} s`;
    return [
      `${total} requests, ${failed} failed${byStatus}`,
      down,
      ...(meanwhile ? [meanwhile] : []),
      recovered,
      `UP ${(upAfter / 1000).toFixed(1)} s later`,
    ].join("; ");
  } finally {
    await client.stop();
  }
}

/** Runs `action` while a continuous client requests `url` (a second before and after); returns its result and the client's counts. */
export async function underLoad<T>(
  lab: Lab,
  url: string,
  action: () => Promise<T>,
): Promise<{ result: T; total: number; failed: number; byStatus: string }> {
  const client = continuousClient(lab, url);
  try {
    await sleep(1000);
    const result = await action();
    await sleep(1000);
    return { result, ...(await client.stop()) };
  } finally {
    await client.stop();
  }
}

/** POSTs one message with `body` through the site (`url`: its /api/messages). */
export function postMessage(lab: Lab, url: string, body: string): HttpAnswer {
  return request(lab, url, ["-X", "POST", "-H", "Content-Type: application/json", "--data", JSON.stringify({ body })]);
}

/** POSTs `count` messages through the site; returns how many were accepted (201). */
export function writeMessages(lab: Lab, url: string, count: number, label: string): number {
  let accepted = 0;
  for (let i = 0; i < count; i++) {
    if (postMessage(lab, url, `${label} ${i}`).code === "201") accepted += 1;
  }
  return accepted;
}

/** Waits until the replica replicates again and holds as many messages as the primary. */
export async function replicaCaughtUp(lab: Lab, primary: string, replica: string): Promise<string> {
  const running = await waitFor(`replication running again on ${replica}`, 120_000, () => {
    const status = replicaStatus(lab, replica);
    return threadsRunning(status) ? true : undefined;
  });
  const count = sql(lab, primary, "SELECT COUNT(*) FROM foobar.messages");
  await waitFor(`${replica} catching up to ${count} rows`, 60_000, () =>
    sql(lab, replica, "SELECT COUNT(*) FROM foobar.messages") === count ? true : undefined,
  );
  return `replication running again after ${(running.ms / 1000).toFixed(1)} s, ${count} rows on both`;
}
