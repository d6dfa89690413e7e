/**
 * The database tier's failover checks: promotion in one step, no
 * acknowledged write lost, an old primary that comes back read-only and
 * rejoins, a third server that follows, and no two writable primaries even
 * when the old one is cut off. They run last in the default configuration,
 * after the stack has grown to three web servers, and each starts from where
 * the one before left it.
 */
import { REBUILD_FLAG_PATH } from "../../cloud-init/mysql";
import { sleep } from "../host/shell";
import type { Lab } from "../lab";
import {
  agentLines,
  currentPrimary,
  equalRowCounts,
  hostPidOf,
  internalName,
  nothingLost,
  promote,
  readOnly,
  replicating,
  sameEverywhere,
  Sampled,
  sampleWritable,
  webs,
  withDiagnostics,
  writeFigures,
  writePause,
  writer,
  Writes,
} from "./database-helpers";
import { Check, replicaStatus, siteUrl, sql, threadsRunning, waitFor, writeMessages } from "./helpers";

const checks: Check[] = [
  {
    name: "promotion: web-01 powered off under a writer; FOOBAR_DB_PRIMARY=web-02 and one apply promote web-02 (only the record and tags change, no droplet replaced); writes succeed again; every write acknowledged with 201 is on the new primary",
    async run(lab) {
      const names = webs(lab);
      if (names.length < 3) throw new Error(`this check runs on three web servers, the stack has ${names.length}`);
      const w = writer(lab, "promotion");
      const sampler = sampleWritable(lab);
      let report: Awaited<ReturnType<Lab["apply"]>>;
      let offAt = 0;
      let promotedAfter = 0;
      let writes: Writes;
      let sampled: Sampled;
      try {
        await sleep(3000);
        offAt = Date.now();
        await lab.fault("web-01", "poweroff");
        report = await promote(lab, "web-02");
        await waitFor("web-02 writable", 120_000, () => (readOnly(lab)["web-02"] === "0" ? true : undefined));
        promotedAfter = Date.now() - offAt;
        await sleep(8000);
      } finally {
        writes = await w.stop();
        sampled = await sampler.stop();
      }
      const { samples, overlaps } = sampled;
      if (overlaps.length > 0) throw new Error(`two writable primaries: ${overlaps.slice(0, 3).join(", ")}`);
      const changed = report!.lines.map((line) => line.split(" ").slice(0, 2).join(" "));
      if (report!.replaced.length > 0 || report!.created.length > 0 || report!.deleted.length > 0) {
        throw new Error(`the promotion replaced, created or deleted droplets: ${report!.lines.join("; ")}`);
      }
      const before = writes.filter((x) => x.at < offAt && x.code === "201").length;
      const after = writes.filter((x) => x.at > offAt + promotedAfter && x.code === "201");
      if (after.length === 0) throw new Error(`no write was accepted after web-02's promotion (${writes.length} tried)`);
      const lost = nothingLost(lab, "web-02", writes, sampled);
      const firstAfter = Math.min(...after.map((x) => x.at));
      return (
        `${changed.join(", ")}; web-02 writable ${(promotedAfter / 1000).toFixed(1)} s after web-01 went off; no writes for ` +
        `${((firstAfter - offAt) / 1000).toFixed(1)} s; ${writeFigures(writes, lost, { samples, overlaps })} (${before} acknowledged before the poweroff)`
      );
    },
  },
  {
    name: "promotion: web-03 follows the new primary by itself, by GTID auto-position",
    async run(lab) {
      const status = await waitFor("web-03 replicating from web-02", 90_000, () => {
        const state = replicaStatus(lab, "web-03");
        const sourceUuid = sql(lab, "web-03", "SELECT SOURCE_UUID FROM performance_schema.replication_connection_status");
        const primaryUuid = sql(lab, "web-02", "SELECT @@GLOBAL.server_uuid");
        return threadsRunning(state) && sourceUuid === primaryUuid ? state : undefined;
      });
      const count = sql(lab, "web-02", "SELECT COUNT(*) FROM foobar.messages");
      await waitFor(`web-03 at ${count} rows`, 60_000, () =>
        sql(lab, "web-03", "SELECT COUNT(*) FROM foobar.messages") === count ? true : undefined,
      );
      return `web-03: IO=Yes SQL=Yes from web-02 (server_uuid matches), Auto_Position=${status.value.Auto_Position}, ${count} rows as on web-02`;
    },
  },
  {
    name: "promotion: web-01 comes back read-only and takes no write; its database agent finds no errant transaction and makes it a replica of web-02; row counts equal everywhere",
    async run(lab) {
      await lab.fault("web-01", "poweron");
      await waitFor("web-01's MySQL up", 120_000, () => (readOnly(lab)["web-01"] !== undefined ? true : undefined));
      const states: string[] = [];
      for (let i = 0; i < 5; i++) {
        states.push(readOnly(lab)["web-01"] ?? "?");
        await sleep(500);
      }
      if (states.some((value) => value !== "1")) throw new Error(`web-01's super_read_only after the boot: ${states.join(", ")}`);
      const write = lab.execIn("web-01", [
        "mysql",
        "--execute",
        "INSERT INTO foobar.messages (body, written_by) VALUES ('must fail', 'web-01')",
      ]);
      if (write.status === 0) throw new Error("web-01 took a write as root after coming back");
      await replicating(lab, "web-01", "web-01 replicating from web-02", 90_000);
      const count = sql(lab, "web-02", "SELECT COUNT(*) FROM foobar.messages");
      await equalRowCounts(lab, count);
      const joined = lab
        .execIn("web-01", ["journalctl", "-u", "foobar-db-agent", "-o", "cat", "--no-pager"])
        .stdout.split("\n")
        .filter((l) => /joining the primary|diverged/.test(l))
        .pop();
      return `web-01 super_read_only=1 from its first query on, root's INSERT refused (${write.stderr.trim().split("\n").pop()?.slice(0, 90)}); "${joined?.trim()}"; ${count} rows on ${webs(lab).join(", ")}`;
    },
  },
  {
    name: "promotion with the primary cut off (partitioned, not crashed) and its name failing to resolve (no answer, not 'no such name'): the cut-off primary fences itself, web-03 still waits the whole 40 s for it and is promoted only after that; under a writer, 0 acknowledged writes missing and at no sample are two servers writable",
    async run(lab) {
      const w = writer(lab, "partition");
      const sampler = sampleWritable(lab);
      let fencedAfter: number;
      let promotedAfter: number;
      let writes: Writes;
      const cutAt = Date.now();
      try {
        await lab.fault("web-02", "partition");
        lab.failNames([internalName(lab, "web-02")]);
        await promote(lab, "web-03");
        await waitFor("web-02 fenced", 60_000, () => (readOnly(lab)["web-02"] === "1" ? true : undefined));
        fencedAfter = Date.now() - cutAt;
        await waitFor("web-03 writable", 120_000, () => (readOnly(lab)["web-03"] === "0" ? true : undefined));
        promotedAfter = Date.now() - cutAt;
        await sleep(2000);
      } finally {
        lab.failNames([]);
        await lab.fault("web-02", "heal");
        writes = await w.stop();
      }
      // A write in flight at the cut is in web-02's binary log, waiting for an acknowledgement that cannot come: it is
      // committed there alone, never acknowledged. Then web-02 holds more than its own heartbeats, and its agent
      // refuses to rejoin until the operator allows a rebuild (docs/database.md): both outcomes are right.
      const { value: outcome } = await waitFor("web-02 replicating from web-03, or refusing as diverged", 90_000, () => {
        const status = replicaStatus(lab, "web-02");
        if (threadsRunning(status)) return "rejoined";
        return agentLines(lab, "web-02").find((line) => line.startsWith("diverged from the primary"));
      });
      const sampled = await sampler.stop();
      if (sampled.overlaps.length > 0) throw new Error(`two writable primaries: ${sampled.overlaps.slice(0, 3).join(", ")}`);
      const waited = agentLines(lab, "web-03").find((line) => /not answering: .*web-02/.test(line));
      if (!waited) throw new Error("web-03's agent never waited for web-02 (its name failing must count as silent, not as an empty slot)");
      // Before any rebuild: every acknowledged write is on web-03, so what only web-02 holds was never acknowledged.
      const lost = nothingLost(lab, "web-03", writes, sampled);
      let rejoin =
        agentLines(lab, "web-02")
          .find((line) => /^(forgetting|joining the primary)/.test(line))
          ?.trim() ?? outcome;
      if (outcome !== "rejoined") {
        lab.execIn("web-02", ["touch", REBUILD_FLAG_PATH]);
        await replicating(lab, "web-02", `web-02 rebuilt after ${REBUILD_FLAG_PATH} and replicating from web-03`, 240_000);
        const archived = lab.execIn("web-02", ["sh", "-c", "ls /var/lib/mysql-archive/errant-*.binlog.sql"]).stdout.trim();
        if (!archived)
          throw new Error(`web-02 was rebuilt, but its errant transactions are not archived in /var/lib/mysql-archive (${outcome})`);
        rejoin = `refused as diverged ("${outcome.trim()}"), nothing of it acknowledged; rebuilt with CLONE after ${REBUILD_FLAG_PATH}, archived in ${archived}`;
      }
      const count = sql(lab, "web-03", "SELECT COUNT(*) FROM foobar.messages");
      await equalRowCounts(lab, count);
      return (
        `web-02 read-only ${(fencedAfter / 1000).toFixed(1)} s after the cut (it could not resolve its record, and no replica acknowledged), web-03 writable ` +
        `${(promotedAfter / 1000).toFixed(1)} s after ("${waited.trim()}"); ${writeFigures(writes, lost, sampled)}; healed, web-02: ${rejoin}; it replicates from web-03, ${count} rows everywhere`
      );
    },
  },
  {
    name: "no silent gap: a replica off while the primary purges its binary logs rebuilds itself with CLONE from a healthy donor, then replicates; under a writer, 0 acknowledged writes missing, never two writable; rows and their checksum equal everywhere",
    async run(lab) {
      const primary = currentPrimary(lab);
      const victim = webs(lab).find((name) => name !== primary)!;
      const url = `${siteUrl(lab)}api/messages`;
      const w = writer(lab, "no silent gap");
      const sampler = sampleWritable(lab);
      let writes: Writes;
      let sampled: Sampled;
      let before: number;
      let meanwhile: number;
      let purged: string;
      let rebuilt: { ms: number };
      try {
        before = writeMessages(lab, url, 20, "before the purge");
        await lab.fault(victim, "stop", "mysql");
        meanwhile = writeMessages(lab, url, 20, `while ${victim} is off`);
        // Every log but the one just opened: the writes above are gone from the primary's logs.
        sql(lab, primary, "FLUSH BINARY LOGS");
        const current = sql(lab, primary, "SHOW BINARY LOGS").split("\n").filter(Boolean).pop()!.split("\t")[0]!;
        sql(lab, primary, `PURGE BINARY LOGS TO '${current}'`);
        purged = sql(lab, primary, "SELECT REPLACE(@@GLOBAL.gtid_purged, '\\n', '')");
        await lab.fault(victim, "start", "mysql");
        rebuilt = await waitFor(`${victim}'s agent rebuilding it with CLONE`, 180_000, () =>
          agentLines(lab, victim).find((line) => /^rebuilt from .* with CLONE/.test(line)),
        );
        await replicating(lab, victim, `${victim} replicating again`, 180_000);
      } finally {
        writes = await w.stop();
        sampled = await sampler.stop();
      }
      // Every acknowledged write on the primary; then the rebuilt server holds the same rows (count and checksum).
      const lost = nothingLost(lab, primary, writes, sampled);
      const expected = await sameEverywhere(lab, primary);
      const line = agentLines(lab, victim).find((l) => /rebuilding from/.test(l)) ?? "";
      return (
        `${before} + ${meanwhile} writes acknowledged, ${victim}'s MySQL off for the second 20; ${primary} purged its logs (gtid_purged ${purged}); ` +
        `${writeFigures(writes, lost, sampled)}; ` +
        `${victim} rebuilt ${(rebuilt.ms / 1000).toFixed(1)} s after its MySQL started (${line}) and replicates; ` +
        `rows (count, checksum) ${expected} on ${webs(lab).join(", ")}`
      );
    },
  },
  {
    name: "fencing does not rest on one live loop: the agent frozen (SIGSTOP) on a primary cut off from everything is killed by systemd's watchdog and started again, and the primary is read-only within the 40 s a promotion waits; healed, it is the primary again",
    async run(lab) {
      const states = readOnly(lab);
      const primary = Object.keys(states).find((name) => states[name] === "0");
      if (!primary) throw new Error(`no writable primary: ${JSON.stringify(states)}`);
      const agent = hostPidOf(lab, primary, "foobar-db-agent.service");
      const w = writer(lab, "frozen agent");
      const sampler = sampleWritable(lab);
      process.kill(agent, "SIGSTOP");
      let fenced: { ms: number } | undefined;
      let writes: Writes;
      let sampled: Sampled;
      try {
        await lab.fault(primary, "partition");
        fenced = await waitFor(`${primary} read-only with its agent frozen`, 40_000, () =>
          readOnly(lab)[primary] === "1" ? true : undefined,
        );
      } finally {
        await lab.fault(primary, "heal");
      }
      const restarted = lab.execIn(primary, ["journalctl", "--no-pager", "-u", "foobar-db-agent.service", "--since", "-3min"]).stdout;
      if (!/Watchdog timeout/.test(restarted)) throw new Error(`${primary}'s agent was not restarted by the watchdog`);
      let back: { ms: number };
      try {
        back = await waitFor(`${primary} writable again once healed (its record never moved)`, 90_000, () =>
          readOnly(lab)[primary] === "0" ? true : undefined,
        );
        await sleep(3000);
      } finally {
        writes = await w.stop();
        sampled = await sampler.stop();
      }
      const lost = nothingLost(lab, primary, writes, sampled);
      const count = sql(lab, primary, "SELECT COUNT(*) FROM foobar.messages");
      await equalRowCounts(lab, count);
      return (
        `${primary}'s agent (host PID ${agent}) SIGSTOPped and ${primary} cut off: the watchdog killed and restarted the agent, ` +
        `and ${primary} was read-only ${(fenced.ms / 1000).toFixed(1)} s after the cut; healed, writable again after ${(back.ms / 1000).toFixed(1)} s; ` +
        `${writeFigures(writes, lost, sampled)}; ${count} rows everywhere`
      );
    },
  },
  {
    name: "planned switchover: both servers healthy, FOOBAR_DB_PRIMARY names a replica under a writer, with every droplet's DNS cached for the records' TTL; 0 acknowledged writes missing, never two writable, the write pause measured (goal ≤ 5 s: the agents ask DNS past the cache, the app writes where its agent says)",
    async run(lab) {
      const from = currentPrimary(lab);
      const to = webs(lab).find((name) => name !== from)!;
      const w = writer(lab, "switchover");
      const sampler = sampleWritable(lab);
      let writes: Writes;
      let sampled: Sampled;
      let appliedAt = 0;
      let promoted = { ms: 0 };
      try {
        await sleep(3000);
        appliedAt = Date.now();
        await promote(lab, to);
        promoted = await waitFor(`${to} writable`, 120_000, () => (readOnly(lab)[to] === "0" ? true : undefined));
        await sleep(5000);
      } finally {
        writes = await w.stop();
        sampled = await sampler.stop();
      }
      const lost = nothingLost(lab, to, writes, sampled);
      if (!writes.some((x) => x.at > appliedAt + promoted.ms && x.code === "201"))
        throw new Error(`no write acknowledged after ${to}'s promotion`);
      const pause = writePause(writes, appliedAt);
      const acknowledging = await waitFor(`${to} acknowledged semi-synchronously`, 60_000, () =>
        sql(lab, to, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_source_status'").endsWith("ON") ? true : undefined,
      );
      await replicating(lab, from, `${from} replicating from ${to}`, 90_000);
      const cached = lab.execIn(to, ["resolvectl", "statistics"], 10_000).stdout.match(/Current Cache Size:\s*(\d+)/)?.[1] ?? "?";
      return (
        `${from} → ${to}: ${to} writable ${(promoted.ms / 1000).toFixed(1)} s after the apply began; longest pause between acknowledged writes ` +
        `${(pause / 1000).toFixed(1)} s (goal ≤ 5 s: ${pause <= 5000 ? "met" : "NOT met"}); ${writeFigures(writes, lost, sampled)}; ` +
        `semi-sync acknowledging on ${to} ${(acknowledging.ms / 1000).toFixed(1)} s after its promotion was seen; ${from} replicates from ${to}; ` +
        `systemd-resolved cache on ${to}: ${cached} entries`
      );
    },
  },
  {
    name: "a stale candidate named: a replica that was off while every other server purged its binary logs is named primary; it refuses with one line naming what it lacks and writes nothing (writes are refused meanwhile); named back, the primary takes writes again and the stale server rebuilds itself with CLONE, rows and checksums equal",
    async run(lab) {
      const primary = currentPrimary(lab);
      const stale = webs(lab).find((name) => name !== primary)!;
      const url = `${siteUrl(lab)}api/messages`;
      writeMessages(lab, url, 5, "before the stale candidate");
      await lab.fault(stale, "stop", "mysql");
      const meanwhile = writeMessages(lab, url, 10, `while ${stale} is off`);
      for (const server of webs(lab).filter((name) => name !== stale)) {
        sql(lab, server, "FLUSH BINARY LOGS");
        const current = sql(lab, server, "SHOW BINARY LOGS").split("\n").filter(Boolean).pop()!.split("\t")[0]!;
        sql(lab, server, `PURGE BINARY LOGS TO '${current}'`);
      }
      const w = writer(lab, "stale candidate");
      const sampler = sampleWritable(lab);
      let writes: Writes;
      let sampled: Sampled;
      let refusal: { value: string; ms: number } | undefined;
      let before: string;
      let after: string;
      let fencedAt = 0;
      let backAt = 0;
      try {
        await promote(lab, stale);
        // From the moment the old primary has fenced itself (the record moved), no write may be acknowledged.
        await waitFor(`${primary} fenced once the record names ${stale}`, 60_000, () =>
          readOnly(lab)[primary] === "1" ? true : undefined,
        );
        fencedAt = Date.now();
        await lab.fault(stale, "start", "mysql");
        refusal = await waitFor(`${stale}'s agent refusing the promotion`, 120_000, () =>
          agentLines(lab, stale, 3).find((line) => /^named primary, but (lacks|its replication stopped)/.test(line)),
        );
        const state = () => sql(lab, stale, "SELECT CONCAT_WS(' ', @@GLOBAL.super_read_only, REPLACE(@@GLOBAL.gtid_executed, '\\n', ''))");
        before = state();
        await sleep(3000);
        after = state();
        backAt = Date.now();
        await promote(lab, primary);
        await waitFor(`${primary} writable again`, 120_000, () => (readOnly(lab)[primary] === "0" ? true : undefined));
        await sleep(3000);
      } finally {
        writes = await w.stop();
        sampled = await sampler.stop();
      }
      if (sampled.overlaps.length > 0) throw new Error(`two writable primaries: ${sampled.overlaps.slice(0, 3).join(", ")}`);
      // Read-only, and nothing applied or written while it refused (its own earlier transactions, from when it was
      // the primary, are in its history already).
      if (after !== before || !after.startsWith("1 ")) {
        throw new Error(`${stale} changed while it refused: super_read_only and gtid_executed "${before}", 3 s later "${after}"`);
      }
      const whileStale = writes.filter((x) => x.at > fencedAt && x.at < backAt);
      if (whileStale.some((x) => x.code === "201"))
        throw new Error(
          `a write was acknowledged while ${stale} was named and refused: ${JSON.stringify(whileStale.find((x) => x.code === "201"))}`,
        );
      const lost = nothingLost(lab, primary, writes, sampled);
      const rebuilt = await waitFor(`${stale} rebuilding itself with CLONE`, 180_000, () =>
        agentLines(lab, stale).find((line) => /^rebuilt from .* with CLONE/.test(line)),
      );
      await replicating(lab, stale, `${stale} replicating again`, 180_000);
      const expected = await sameEverywhere(lab, primary);
      return (
        `${stale} off for ${meanwhile} acknowledged writes, every other server purged its logs; named, ${stale} refused ${(refusal!.ms / 1000).toFixed(1)} s after its MySQL started: ` +
        `"${refusal!.value.trim()}"; it stayed read-only with gtid_executed unchanged; ${whileStale.length} writes from the old primary's fencing until it was named back, none acknowledged; ` +
        `${writeFigures(writes, lost, sampled)}; named back, ${primary} took writes, "${rebuilt.value.trim()}", rows (count, checksum) ${expected} everywhere`
      );
    },
  },
];

/** The database checks, each reporting every server's agent journal and replication status when it fails. */
export const databaseChecks: Check[] = checks.map((check) => withDiagnostics(check));
