/**
 * `npm run bench [-- --seconds N] [--keep]`: how fast the site the stack
 * deploys is, measured in the lab, side by side with what the hardware
 * allows, in one run.
 *
 * It uses the lab that is up, or brings one up (and tears it down after,
 * unless `--keep`). Every load comes from Debian's wrk, bounded in time, at
 * lab addresses only: from the client namespace through the load balancer
 * (HTTPS, by name), and from lb-01's network namespace straight to web-01
 * (HTTP, its private address), which is what the hardware allows one web
 * server without the load balancer in the path.
 *
 * It prints one table and writes it to lab/bench/latest.md and
 * lab/bench/latest.json. It is not a test: goals are reported as met or
 * missed, and a missed goal does not fail the run.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import {
  BenchReport,
  BenchRow,
  BenchSection,
  failedRequests,
  formatMs,
  formatRate,
  formatRatio,
  parseWrk,
  percentile,
  renderMarkdown,
  renderText,
  WrkResult,
} from "./bench-report";
import { backendStates, request, roles, siteUrl, sql, waitFor } from "./checks/helpers";
import { insideArgs } from "./emulations/droplets";
import { preflight } from "./host/preflight";
import { baseCached } from "./host/rootfs";
import { CommandResult, log, sleep, tryRun } from "./host/shell";
import { readState } from "./host/state";
import { readTimings, TimingName } from "./host/timings";
import { attachRunning, down, Lab, up } from "./lab";
import { CLIENT_NS } from "./settings";

/** The issue's goals, checked in the table. */
export const GOALS = {
  staticRatio: 0.6,
  readsPerSecond: 1000,
  readsVersusBefore: 5,
  writesPerSecond: 300,
  detectionSeconds: 1,
  failedRequests: 0,
} as const;

/** Reads through the load balancer before this work, measured with the same wrk settings (issue 13). */
const READS_BEFORE = 119;

const OUT_DIR = path.join(__dirname, "bench");

interface Options {
  /** Length of each throughput run. */
  readonly seconds: number;
  readonly threads: number;
  readonly connections: number;
  /** Leave a lab the bench brought up running. */
  readonly keep: boolean;
}

/** Parses `--seconds N`, `--connections N`, `--keep`. @throws Error with the usage on anything else. */
export function parseBenchArgs(argv: readonly string[]): Options {
  const usage = "usage: npm run bench [-- --seconds N (1-60, default 10)] [--connections N (1-256, default 32)] [--keep]";
  let seconds = 10;
  let connections = 32;
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--keep") keep = true;
    else if (arg === "--seconds" || arg === "--connections") {
      const value = Number(argv[++i]);
      const [low, high] = arg === "--seconds" ? [1, 60] : [1, 256];
      if (!Number.isInteger(value) || value < low || value > high)
        throw new Error(`${arg} must be a whole number from ${low} to ${high}, got "${argv[i] ?? ""}"\n${usage}`);
      if (arg === "--seconds") seconds = value;
      else connections = value;
    } else throw new Error(usage);
  }
  return { seconds, threads: 2, connections, keep };
}

/** A wrk command line (`--latency` for the percentiles), for `seconds` at most. */
function wrkArgs(options: Options, url: string, extra: readonly string[] = [], connections = options.connections): string[] {
  return ["wrk", `-t${options.threads}`, `-c${connections}`, `-d${options.seconds}s`, "--timeout", "5s", "--latency", ...extra, url];
}

/** A Lua script that makes wrk POST a message, written once per run. */
function postScript(): string {
  const file = path.join(os.tmpdir(), `foobar-bench-post-${process.pid}.lua`);
  fs.writeFileSync(
    file,
    ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"', 'wrk.body = \'{"body": "bench"}\''].join("\n") + "\n",
  );
  return file;
}

function wrkResult(what: string, result: CommandResult): WrkResult {
  if (result.status !== 0)
    throw new Error(`${what}: wrk exited ${result.status}: ${(result.stderr || result.stdout).trim().split("\n").slice(-2).join(" | ")}`);
  return parseWrk(result.stdout);
}

/** Runs a command in the background; `done` resolves with its status and output. */
function background(cmd: string, args: readonly string[]): { done: Promise<CommandResult> } {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return { done: new Promise((resolve) => child.once("close", (status) => resolve({ status: status ?? 128, stdout, stderr }))) };
}

/** The lab's roles (lab/checks/helpers.ts), with the two web servers the bench compares and fails over between. */
function benchRoles(lab: Lab) {
  const found = roles(lab);
  if (found.webs.length < 2) throw new Error("the bench needs at least two web servers (FOOBAR_WEB_SERVERS ≥ 2)");
  return found;
}

/** wrk from the client namespace, through the load balancer by name. */
function throughLoadBalancer(lab: Lab, options: Options, pathName: string, extra: readonly string[] = [], connections?: number): WrkResult {
  const url = new URL(pathName, siteUrl(lab)).toString();
  return wrkResult(`wrk ${url}`, lab.client(wrkArgs(options, url, extra, connections), (options.seconds + 30) * 1000));
}

/** wrk from lb-01's network namespace straight to web-01's Nginx (HTTP on its private address). */
function straightToWebServer(lab: Lab, options: Options, pathName: string, extra: readonly string[] = []): WrkResult {
  const { lb, primary } = benchRoles(lab);
  const pid = lab.initPid(lb.name);
  if (pid === undefined) throw new Error(`${lb.name} is not running`);
  const url = `http://${primary.privateIpv4}${pathName}`;
  return wrkResult(
    `wrk ${url}`,
    tryRun("nsenter", ["-t", String(pid), "-n", ...wrkArgs(options, url, extra)], { timeoutMs: (options.seconds + 30) * 1000 }),
  );
}

function throughputRow(measure: string, result: WrkResult, note: string, goal?: BenchRow["goal"]): BenchRow {
  const failed = failedRequests(result);
  return {
    measure,
    result: `${formatRate(result.requestsPerSecond)} req/s, p50 ${formatMs(result.p50Ms)}, p99 ${formatMs(result.p99Ms)}${failed ? `, ${failed} failed` : ""}`,
    goal,
    note,
  };
}

async function throughput(lab: Lab, options: Options): Promise<BenchSection[]> {
  const { primary } = benchRoles(lab);
  const post = postScript();
  try {
    // Reads return the 20 newest of at least 100 messages, as on a site in use.
    const count = Number(sql(lab, primary.name, "SELECT COUNT(*) FROM foobar.messages"));
    const messages = new URL("/api/messages", siteUrl(lab)).toString();
    for (let i = count; i < 100; i++)
      request(lab, messages, ["-X", "POST", "-H", "Content-Type: application/json", "--data", '{"body":"seed"}']);

    log("bench: static files");
    const staticLb = throughLoadBalancer(lab, options, "/");
    const staticDirect = straightToWebServer(lab, options, "/");
    log("bench: TLS handshakes (a new connection for every request)");
    const handshakes = throughLoadBalancer(lab, options, "/", ["-H", "Connection: close"]);
    log("bench: reads");
    const readLb = throughLoadBalancer(lab, options, "/api/messages");
    const readDirect = straightToWebServer(lab, options, "/api/messages");
    log("bench: writes");
    const writeLb = throughLoadBalancer(lab, options, "/api/messages", ["-s", post]);
    const writeDirect = straightToWebServer(lab, options, "/api/messages", ["-s", post]);
    log("bench: writes with semi-synchronous replication off on the primary");
    sql(lab, primary.name, "SET GLOBAL rpl_semi_sync_source_enabled = OFF");
    let writeAsync: WrkResult;
    try {
      writeAsync = throughLoadBalancer(lab, options, "/api/messages", ["-s", post]);
    } finally {
      sql(lab, primary.name, "SET GLOBAL rpl_semi_sync_source_enabled = ON");
    }

    const staticRatio = staticLb.requestsPerSecond / staticDirect.requestsPerSecond;
    return [
      {
        title: "Static file `/`",
        rows: [
          throughputRow("through the load balancer (HTTPS)", staticLb, "client → HAProxy → Nginx"),
          throughputRow("straight to web-01 (HTTP)", staticDirect, "from lb-01's namespace: what one web server allows"),
          {
            measure: "ratio, load balancer / straight",
            result: formatRatio(staticLb.requestsPerSecond, staticDirect.requestsPerSecond),
            goal: { text: `≥ ${GOALS.staticRatio}×`, met: staticRatio >= GOALS.staticRatio },
          },
          throughputRow("TLS handshakes/s (no keep-alive)", handshakes, "Connection: close, a full handshake per request"),
        ],
      },
      {
        title: "Dynamic `/api/messages`",
        rows: [
          throughputRow("reads through the load balancer", readLb, `before this work: ${READS_BEFORE} req/s`, {
            text: `≥ ${GOALS.readsPerSecond}/s and ≥ ${GOALS.readsVersusBefore}× ${READS_BEFORE}/s`,
            met: readLb.requestsPerSecond >= GOALS.readsPerSecond && readLb.requestsPerSecond >= GOALS.readsVersusBefore * READS_BEFORE,
          }),
          throughputRow("reads straight to web-01", readDirect, ""),
          { measure: "ratio, reads load balancer / straight", result: formatRatio(readLb.requestsPerSecond, readDirect.requestsPerSecond) },
          throughputRow("writes through the load balancer (semi-sync on)", writeLb, "every write acknowledged by a replica first", {
            text: `≥ ${GOALS.writesPerSecond}/s`,
            met: writeLb.requestsPerSecond >= GOALS.writesPerSecond,
          }),
          throughputRow("writes straight to web-01 (semi-sync on)", writeDirect, ""),
          {
            measure: "ratio, writes load balancer / straight",
            result: formatRatio(writeLb.requestsPerSecond, writeDirect.requestsPerSecond),
          },
          throughputRow("writes through the load balancer (semi-sync off)", writeAsync, "asynchronous: an acknowledged write can be lost"),
        ],
      },
    ];
  } finally {
    fs.rmSync(post, { force: true });
  }
}

/**
 * Replication lag under a sustained write load, from a heartbeat: the
 * primary rewrites a row with its clock every 100 ms; each replica reads it
 * every 20 ms, and a beat's lag is how old it was when the replica first saw
 * it (the lab's droplets share one clock). Not Seconds_Behind_Source.
 */
async function replicationLag(lab: Lab, options: Options): Promise<BenchSection> {
  const { primary, webs } = benchRoles(lab);
  const replicas = webs.slice(1);
  const seconds = Math.max(options.seconds, 10);
  sql(lab, primary.name, "CREATE TABLE IF NOT EXISTS foobar.bench_heartbeat (id INT PRIMARY KEY, beat DATETIME(6) NOT NULL)");
  sql(lab, primary.name, "REPLACE INTO foobar.bench_heartbeat VALUES (1, NOW(6))");
  for (const replica of replicas) {
    await waitFor(`the bench's heartbeat table on ${replica.name}`, 60_000, () =>
      sql(lab, replica.name, "SELECT COUNT(*) FROM foobar.bench_heartbeat") === "1" ? true : undefined,
    );
  }
  const post = postScript();
  try {
    const inDroplet = (name: string, script: string) => {
      const pid = lab.initPid(name);
      if (pid === undefined) throw new Error(`${name} is not running`);
      return background("nsenter", insideArgs(pid, ["bash", "-c", script]));
    };
    const beats = seconds * 10;
    const writer = inDroplet(
      primary.name,
      `for i in $(seq 1 ${beats}); do echo "REPLACE INTO foobar.bench_heartbeat VALUES (1, NOW(6));"; sleep 0.1; done | mysql --batch --force`,
    );
    const readers = replicas.map((replica) =>
      inDroplet(
        replica.name,
        `for i in $(seq 1 ${beats * 5}); do echo "SELECT DATE_FORMAT(beat, '%Y%m%d%H%i%s%f'), TIMESTAMPDIFF(MICROSECOND, beat, NOW(6)) FROM foobar.bench_heartbeat WHERE id = 1;"; sleep 0.02; done | mysql --batch --skip-column-names --force`,
      ),
    );
    log(`bench: replication lag under a write load for ${seconds} s`);
    const load = lab.client(
      wrkArgs({ ...options, seconds }, new URL("/api/messages", siteUrl(lab)).toString(), ["-s", post], 16),
      (seconds + 60) * 1000,
    );
    const [written, ...read] = await Promise.all([writer.done, ...readers.map((r) => r.done)]);
    if (written!.status !== 0) throw new Error(`the heartbeat writer on ${primary.name} failed: ${written!.stderr.trim()}`);
    const writes = wrkResult("the write load", load);
    const rows: BenchRow[] = [];
    replicas.forEach((replica, i) => {
      const firstSeen = new Map<string, number>();
      for (const line of read[i]!.stdout.split("\n")) {
        const [beat, micros] = line.split("\t");
        if (beat && micros && !firstSeen.has(beat)) firstSeen.set(beat, Number(micros) / 1000);
      }
      const lags = [...firstSeen.values()].slice(1); // The first row read predates the run.
      rows.push({
        measure: `${replica.name} lag`,
        result: `p50 ${formatMs(percentile(lags, 50))}, p99 ${formatMs(percentile(lags, 99))}, max ${formatMs(Math.max(...lags))}`,
        note: `${lags.length} heartbeats every 100 ms, read every 20 ms, under ${formatRate(writes.requestsPerSecond)} writes/s through the load balancer`,
      });
    });
    return { title: "Replication lag under sustained writes (semi-sync on)", rows };
  } finally {
    fs.rmSync(post, { force: true });
    sql(lab, primary.name, "DROP TABLE IF EXISTS foobar.bench_heartbeat");
  }
}

/**
 * A fault injected 3 s into a wrk run on `/` through the load balancer:
 * requests failed, and seconds from the fault until HAProxy marks the server
 * DOWN (polled on its admin socket). Then the fault is undone and the server
 * waited for until it is UP again.
 */
interface FailoverResult {
  readonly text: string;
  readonly failed: number;
  /** Seconds until HAProxy marked the server DOWN: from the fault, or from the end of a clean shutdown. */
  readonly downSeconds?: number;
}

async function failover(
  lab: Lab,
  options: Options,
  server: string,
  inject: () => Promise<unknown>,
  undo: () => Promise<unknown>,
): Promise<FailoverResult> {
  await waitFor(`${server} UP before the fault`, 180_000, () => (backendStates(lab)[server] === "UP" ? true : undefined));
  const seconds = Math.max(options.seconds, 15);
  const url = siteUrl(lab);
  const load = background("ip", ["netns", "exec", CLIENT_NS, ...wrkArgs({ ...options, seconds }, url)]);
  await sleep(3000);
  const faultAt = Date.now();
  await inject();
  // A clean poweroff takes a while, and the server serves until its Nginx stops.
  const injectedMs = Date.now() - faultAt;
  let detectedMs: number | undefined;
  while (Date.now() - faultAt < (seconds - 3) * 1000) {
    if (backendStates(lab)[server]?.startsWith("DOWN")) {
      detectedMs = Date.now() - faultAt;
      break;
    }
    await sleep(50);
  }
  const result = wrkResult(`wrk ${url}`, await load.done);
  await undo();
  await waitFor(`${server} UP again`, 300_000, () => (backendStates(lab)[server] === "UP" ? true : undefined));
  const failed = failedRequests(result);
  if (detectedMs === undefined)
    return { text: `${failed} of ${result.requests.toLocaleString("en-US")} requests failed; not marked DOWN during the run`, failed };
  const detection =
    injectedMs > 500
      ? `DOWN ${(Math.max(0, detectedMs - injectedMs) / 1000).toFixed(2)} s after the droplet was off (${(detectedMs / 1000).toFixed(2)} s after the shutdown began)`
      : `DOWN ${(detectedMs / 1000).toFixed(2)} s after the fault`;
  return {
    text: `${failed} of ${result.requests.toLocaleString("en-US")} requests failed; ${detection}`,
    failed,
    downSeconds: Math.max(0, detectedMs - (injectedMs > 500 ? injectedMs : 0)) / 1000,
  };
}

async function failovers(lab: Lab, options: Options): Promise<BenchSection> {
  const { primary, webs } = benchRoles(lab);
  const last = webs[webs.length - 1]!;
  log(`bench: ${primary.name}'s Nginx crashed under load`);
  const crash = await failover(
    lab,
    options,
    primary.name,
    () => lab.fault(primary.name, "crash", "nginx"),
    () => lab.fault(primary.name, "start", "nginx"),
  );
  log(`bench: ${last.name} powered off under load`);
  const power = await failover(
    lab,
    options,
    last.name,
    () => lab.fault(last.name, "poweroff"),
    () => lab.fault(last.name, "poweron"),
  );
  const goal = (result: FailoverResult): BenchRow["goal"] => ({
    text: `${GOALS.failedRequests} failed, DOWN ≤ ${GOALS.detectionSeconds} s`,
    met: result.failed === GOALS.failedRequests && result.downSeconds !== undefined && result.downSeconds <= GOALS.detectionSeconds,
  });
  return {
    title: "Failover under load (static `/` through the load balancer)",
    rows: [
      {
        measure: `${primary.name}'s Nginx crashed (SIGKILL)`,
        result: crash.text,
        goal: goal(crash),
        note: "fault crash nginx; started again after the run",
      },
      {
        measure: `${last.name} powered off`,
        result: power.text,
        goal: goal(power),
        note: "fault poweroff (a clean shutdown); powered on after the run",
      },
    ],
  };
}

function timingsSection(measuredUp: { name: TimingName; seconds: number } | undefined): BenchSection {
  const recorded = readTimings();
  const names: TimingName[] = ["cold up", "warm up", "warm test:lab"];
  return {
    title: "Lab timings",
    rows: names.map((name) => {
      if (measuredUp?.name === name) return { measure: name, result: `${measuredUp.seconds} s`, note: "measured in this run" };
      const timing = recorded[name];
      return timing
        ? { measure: name, result: `${timing.seconds} s`, note: `the last one recorded, ${timing.at}` }
        : { measure: name, result: "not recorded yet", note: name === "warm test:lab" ? "run npm run test:lab" : "run npm run lab" };
    }),
  };
}

function machine(): string {
  const cpu = os.cpus()[0]?.model.replace(/\s+/g, " ").trim() ?? "unknown CPU";
  return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}; every droplet shares these cores`;
}

let interrupted = false;

async function main(argv: string[]): Promise<number> {
  const options = parseBenchArgs(argv);
  const problem = preflight([{ command: "wrk", pkg: "wrk" }]);
  if (problem) {
    console.error(`bench: ${problem}`);
    return 1;
  }
  process.on("SIGINT", () => (interrupted = true));
  const startedAt = new Date().toISOString();
  let lab: Lab;
  let measuredUp: { name: TimingName; seconds: number } | undefined;
  const broughtUp = !readState();
  if (broughtUp) {
    log("bench: no lab is up, bringing one up");
    const began = Date.now();
    const name: TimingName = baseCached() ? "warm up" : "cold up";
    lab = await up(process.env, () => interrupted);
    measuredUp = { name, seconds: Math.round((Date.now() - began) / 1000) };
  } else {
    lab = attachRunning();
    log("bench: using the lab that is up");
  }
  try {
    const sections = [
      ...(await throughput(lab, options)),
      await replicationLag(lab, options),
      await failovers(lab, options),
      timingsSection(measuredUp),
    ];
    const report: BenchReport = {
      startedAt,
      machine: machine(),
      load: `wrk -t${options.threads} -c${options.connections} -d${options.seconds}s (failover and lag runs: at least 15 s and 10 s)`,
      sections,
    };
    fs.mkdirSync(OUT_DIR, { recursive: true });
    fs.writeFileSync(path.join(OUT_DIR, "latest.json"), JSON.stringify(report, null, 2) + "\n");
    fs.writeFileSync(path.join(OUT_DIR, "latest.md"), renderMarkdown(report));
    process.stdout.write("\n" + renderText(report));
    console.log(`\nwritten: ${path.relative(process.cwd(), path.join(OUT_DIR, "latest.md"))} and latest.json`);
    return 0;
  } finally {
    if (broughtUp && !options.keep) {
      log("bench: tearing down the lab it brought up");
      await down();
    }
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`bench: ${error.message}`);
      process.exit(1);
    },
  );
}
