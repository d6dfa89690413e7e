/**
 * What the database checks share: every server's read-only flag sampled, a
 * writer that records each acknowledged id, the figures every writer check
 * prints, and the diagnostics a failed check carries.
 */
import * as fs from "node:fs";

import { isWebServer } from "../../names";
import { sleep } from "../host/shell";
import type { Lab } from "../lab";
import { backgroundClient, Check, replicaStatus, siteUrl, sql, threadsRunning, waitFor } from "./helpers";

/** The web servers, by name. */
export function webs(lab: Lab): string[] {
  return lab.stack.droplets
    .map((d) => d.name)
    .filter(isWebServer)
    .sort();
}

/**
 * Every powered-on web server's read-only state: name → "0" (writable: `read_only` off, the app can
 * write), "1" (`super_read_only`: fenced, not even root writes), or "root" (`read_only` only: no
 * account but root, the agent itself, may write, as while it clones).
 */
export function readOnly(lab: Lab): Record<string, string> {
  const states: Record<string, string> = {};
  for (const name of webs(lab)) {
    if (lab.initPid(name) === undefined) continue;
    const query = "SELECT IF(@@GLOBAL.super_read_only, '1', IF(@@GLOBAL.read_only, 'root', '0'))";
    const result = lab.execIn(name, ["mysql", "--batch", "--skip-column-names", "--execute", query], 10_000);
    if (result.status === 0) states[name] = result.stdout.trim();
  }
  return states;
}

export function writable(lab: Lab): string[] {
  return Object.entries(readOnly(lab))
    .filter(([, value]) => value === "0")
    .map(([name]) => name);
}

/** Samples every server's read-only flag until stopped; records any moment with two writable. */
export function sampleWritable(lab: Lab) {
  let running = true;
  const overlaps: string[] = [];
  let samples = 0;
  const loop = (async () => {
    while (running) {
      const now = writable(lab);
      samples += 1;
      if (now.length > 1) overlaps.push(`${new Date().toISOString()} ${now.join("+")}`);
      await sleep(300);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { samples, overlaps };
    },
  };
}

/** A writer posting a message every 200 ms; records the ids acknowledged with 201, when each was sent and answered. */
export function writer(lab: Lab, label: string) {
  const url = `${siteUrl(lab)}api/messages`;
  // Bash expands the words in order: the first date is the sending time, the last the answer's.
  const client = backgroundClient(
    `i=0; while :; do i=$((i + 1)); echo "$(date +%s%3N) $(curl -s --max-time 5 --cacert '${lab.acme.issuingRootFile}' -H 'Content-Type: application/json' --data "{\\"body\\":\\"${label} $i\\"}" -w ' %{http_code}' '${url}' | tr -d '\\n') $(date +%s%3N)"; sleep 0.2; done`,
  );
  return {
    async stop() {
      return (await client.stop())
        .trim()
        .split("\n")
        .map((line) => {
          const words = line.trim().split(" ");
          const at = Number(words[0]);
          const answeredAt = Number(words[words.length - 1]);
          const code = words[words.length - 2] ?? "";
          const id = /"id": (\d+)/.exec(line)?.[1];
          return { at, answeredAt, code, id: id === undefined ? undefined : Number(id) };
        })
        .filter((w) => Number.isFinite(w.at) && Number.isFinite(w.answeredAt));
    },
  };
}

export type Writes = Awaited<ReturnType<ReturnType<typeof writer>["stop"]>>;
export type Sampled = Awaited<ReturnType<ReturnType<typeof sampleWritable>["stop"]>>;

/** The acknowledged (201) ids of a writer that `server` lacks. */
export function missingOn(lab: Lab, server: string, writes: Writes): number[] {
  const acknowledged = writes.filter((x) => x.code === "201" && x.id !== undefined).map((x) => x.id!);
  const present = new Set(ids(lab, server, acknowledged));
  return acknowledged.filter((id) => !present.has(id));
}

/** Every writer check's figures, in one form: sent, acknowledged, refused; acknowledged ids missing; two writable. */
export function writeFigures(writes: Writes, missing: readonly number[], sampled: Sampled): string {
  const refused = writes.filter((x) => x.code !== "201");
  const codes = [...new Set(refused.map((x) => x.code))].join("/") || "none";
  return (
    `writes ${writes.length} sent, ${writes.length - refused.length} acknowledged, ${refused.length} refused (${codes}); ` +
    `${missing.length} acknowledged ids missing; ${sampled.overlaps.length} of ${sampled.samples} samples with two writable servers`
  );
}

/** The longest time between two acknowledged writes sent after `from` (ms since the epoch). */
export function writePause(writes: Writes, from: number): number {
  const acknowledged = writes.filter((x) => x.code === "201").map((x) => x.at);
  let longest = 0;
  for (let i = 1; i < acknowledged.length; i++)
    if (acknowledged[i]! > from) longest = Math.max(longest, acknowledged[i]! - acknowledged[i - 1]!);
  return longest;
}

/**
 * Fails on a sample with two writable servers, or on an acknowledged write `server` lacks; returns the
 * missing ids (none) for the figures.
 */
export function nothingLost(lab: Lab, server: string, writes: Writes, sampled: Sampled): number[] {
  if (sampled.overlaps.length > 0) throw new Error(`two writable primaries: ${sampled.overlaps.slice(0, 3).join(", ")}`);
  const lost = missingOn(lab, server, writes);
  if (lost.length > 0) throw new Error(`${lost.length} acknowledged write(s) missing on ${server}: ids ${lost.slice(0, 10).join(", ")}`);
  return lost;
}

/** The one writable web server. */
export function currentPrimary(lab: Lab): string {
  const states = readOnly(lab);
  const writers = Object.keys(states).filter((name) => states[name] === "0");
  if (writers.length !== 1) throw new Error(`expected one writable server: ${JSON.stringify(states)}`);
  return writers[0]!;
}

/** The agent's journal lines on `server` in the last `minutes`, without the prefix. */
export function agentLines(lab: Lab, server: string, minutes = 5): string[] {
  return lab
    .execIn(server, ["journalctl", "--no-pager", "-o", "cat", "-u", "foobar-db-agent.service", "--since", `-${minutes}min`], 10_000)
    .stdout.split("\n")
    .map((line) => line.replace(/^foobar-db-agent: /, ""));
}

/** A web server's internal name, as the agents resolve it. */
export function internalName(lab: Lab, server: string): string {
  return `${server}.internal.${lab.stack.records[0]!.domain}`;
}

export const ids = (lab: Lab, server: string, acknowledged: number[]): number[] => {
  if (acknowledged.length === 0) return [];
  const found = sql(lab, server, `SELECT id FROM foobar.messages WHERE id IN (${acknowledged.join(",")})`);
  return found.split("\n").filter(Boolean).map(Number);
};

/** The settings the promotion checks apply: three web servers (the stack grew to three), and the primary named. */
export function promote(lab: Lab, primary: string) {
  return lab.apply({ ...process.env, FOOBAR_WEB_SERVERS: String(webs(lab).length), FOOBAR_DB_PRIMARY: primary });
}

/**
 * Waits until every web server holds `count` messages; on timeout, says what each holds and its executed
 * GTID set (a replica short of rows while replicating would be a silent gap).
 */
export async function equalRowCounts(lab: Lab, count: string): Promise<void> {
  const counts = () => Object.fromEntries(webs(lab).map((name) => [name, sql(lab, name, "SELECT COUNT(*) FROM foobar.messages")]));
  try {
    await waitFor("equal row counts", 60_000, () => (Object.values(counts()).every((n) => n === count) ? true : undefined));
  } catch (error) {
    const held = Object.entries(counts())
      .map(([name, n]) => `${name} ${n} (gtid_executed ${sql(lab, name, "SELECT @@GLOBAL.gtid_executed").replace(/\n/g, "")})`)
      .join("; ");
    throw new Error(`${(error as Error).message}: the primary held ${count}; ${held}`, { cause: error });
  }
}

/** Rows (count and a checksum of their content) as one server holds them. */
export function contents(lab: Lab, server: string): string {
  return sql(
    lab,
    server,
    "SELECT CONCAT_WS(' ', COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', id, body, written_by, created_at))), 0)) FROM foobar.messages",
  );
}

/** Waits until `server` receives and applies from its source. */
export async function replicating(lab: Lab, server: string, what: string, timeoutMs: number): Promise<void> {
  await waitFor(what, timeoutMs, () => {
    const status = replicaStatus(lab, server);
    return threadsRunning(status) ? true : undefined;
  });
}

/** Waits until every web server holds the rows `primary` holds (count and checksum); returns them. */
export async function sameEverywhere(lab: Lab, primary: string): Promise<string> {
  const expected = contents(lab, primary);
  await waitFor("equal rows and checksums on every server", 60_000, () =>
    webs(lab).every((name) => contents(lab, name) === expected) ? true : undefined,
  );
  return expected;
}

/**
 * What a failed database check needs to find its cause: every web server's
 * read-only flag, replication status and the last lines of the journals of
 * `units` (the database agent's by default).
 */
export function databaseDiagnostics(lab: Lab, units: readonly string[] = ["foobar-db-agent.service"]): string {
  return webs(lab)
    .map((name) => {
      if (lab.initPid(name) === undefined) return `--- ${name}: powered off`;
      const status = (() => {
        try {
          const s = replicaStatus(lab, name);
          return `IO ${s.Replica_IO_Running ?? "-"}, SQL ${s.Replica_SQL_Running ?? "-"}, source ${s.Source_Host ?? "-"}, last IO error ${s.Last_IO_Errno ?? "-"} ${s.Last_IO_Error ?? ""}`;
        } catch (error) {
          return `no replication status: ${(error as Error).message}`;
        }
      })();
      const journal = units
        .map((unit) => lab.execIn(name, ["journalctl", "--no-pager", "-o", "short-precise", "-n", "25", "-u", unit], 10_000).stdout.trim())
        .join("\n");
      return `--- ${name}: read-only ${readOnly(lab)[name] ?? "?"}; ${status}\n${journal}`;
    })
    .join("\n");
}

/**
 * The host PID of a unit's main process inside a droplet: the process whose
 * innermost PID (`NSpid`) is the unit's MainPID, in the droplet's PID namespace.
 */
export function hostPidOf(lab: Lab, droplet: string, unit: string): number {
  const inside = lab.execIn(droplet, ["systemctl", "show", "--property=MainPID", "--value", unit]).stdout.trim();
  const init = lab.initPid(droplet);
  if (!init || !/^[1-9]\d*$/.test(inside)) throw new Error(`${unit} on ${droplet} has no main process (MainPID ${inside || "?"})`);
  const namespace = fs.readlinkSync(`/proc/${init}/ns/pid`);
  for (const entry of fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const nspid = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${entry}/status`, "utf8"))?.[1]?.split(/\s+/);
      if (nspid?.[nspid.length - 1] === inside && fs.readlinkSync(`/proc/${entry}/ns/pid`) === namespace) return Number(entry);
    } catch {
      // The process ended while the list was read.
    }
  }
  throw new Error(`no host process for ${unit} (PID ${inside} in ${droplet})`);
}

/** A check whose failure carries the database diagnostics (with the journals of `units`). */
export function withDiagnostics(check: Check, units?: readonly string[]): Check {
  return {
    name: check.name,
    async run(lab) {
      try {
        return await check.run(lab);
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${databaseDiagnostics(lab, units)}`, { cause: error });
      }
    },
  };
}
