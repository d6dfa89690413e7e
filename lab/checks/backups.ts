/**
 * Backups and point-in-time recovery against the lab's Spaces (spaces.ts):
 * a base backup on a replica while the site takes writes, a restore to the
 * second before a `DELETE FROM messages`, and a total loss (every web server
 * and its volume) recovered from the bucket alone. They run after the
 * database checks (three web servers, web-03 the primary) and leave the same.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { BaseBackup, formatStamp, readBucket } from "../../tools/backup-plan";
import { listBucket, restore, restoreBeside, RestoreOptions, RestoreTarget } from "../../tools/restore";
import { log, run, sleep } from "../host/shell";
import type { Lab } from "../lab";
import {
  contents,
  currentPrimary,
  replicating,
  sameEverywhere,
  webs,
  withDiagnostics,
  writePause,
  writer,
  Writes,
} from "./database-helpers";
import { Check, request, siteUrl, sql, waitFor } from "./helpers";

const WORK_DIR = "/mnt/mysql/backup";

function target(lab: Lab): RestoreTarget {
  return lab.restoreTarget(currentPrimary(lab));
}

function bucket(lab: Lab, primary: string) {
  return readBucket(listBucket(lab.restoreTarget(primary)));
}

function identity(lab: Lab): string {
  if (!lab.backupIdentity) throw new Error("the lab made no backup identity: is FOOBAR_BACKUP_BUCKET overridden?");
  return lab.backupIdentity;
}

/** What the site serves at /backup-status (any web server's view, through the load balancer). */
function backupStatus(lab: Lab): Record<string, Record<string, unknown> | undefined> {
  const answer = request(lab, `${siteUrl(lab)}backup-status`);
  if (answer.code !== "200") throw new Error(`GET /backup-status answered ${answer.code}`);
  return JSON.parse(answer.body) as Record<string, Record<string, unknown> | undefined>;
}

/** Acknowledged (201) ids of a writer, split at `at` (ms): answered before it, and sent at or after it. */
function splitAt(writes: Writes, at: number) {
  const acknowledged = writes.filter((w) => w.code === "201" && w.id !== undefined);
  return {
    before: acknowledged.filter((w) => w.answeredAt < at).map((w) => w.id!),
    after: acknowledged.filter((w) => w.at >= at).map((w) => w.id!),
  };
}

function present(lab: Lab, server: string, ids: readonly number[]): Set<number> {
  if (ids.length === 0) return new Set();
  const found = sql(lab, server, `SELECT id FROM foobar.messages WHERE id IN (${ids.join(",")})`);
  return new Set(found.split("\n").filter(Boolean).map(Number));
}

/** Waits until a base backup newer than `after` is in the bucket; returns it. */
async function baseAfter(lab: Lab, after: Date, timeoutMs: number): Promise<BaseBackup> {
  const { value } = await waitFor(`a base backup newer than ${after.toISOString()} in the bucket`, timeoutMs, () =>
    bucket(lab, currentPrimary(lab)).bases.find((b) => b.finished >= new Date(Math.floor(after.getTime() / 1000) * 1000)),
  );
  return value;
}

/** Waits until the archive holds a binary log closed at or after `at` (ms). */
async function archivedPast(lab: Lab, at: number): Promise<number> {
  const { ms } = await waitFor(`a binary log closed after ${new Date(at).toISOString()} archived`, 120_000, () =>
    bucket(lab, currentPrimary(lab)).binlogs.some((b) => b.closed.getTime() >= at) ? true : undefined,
  );
  return ms;
}

/** A whole restore, its lines logged; returns its figures. */
async function restoreTo(lab: Lab, until: Date | "latest"): Promise<Record<string, number>> {
  return restore(target(lab), { until, identity: identity(lab), yes: true, progress: (line) => log(`restore: ${line}`) });
}

/** Every web server rebuilt, replicating, and holding the primary's rows; the site answering and taking a write. */
async function siteWhole(lab: Lab, primary: string): Promise<string> {
  for (const name of webs(lab).filter((n) => n !== primary)) await replicating(lab, name, `${name} replicating`, 600_000);
  const rows = await sameEverywhere(lab, primary);
  const page = request(lab, siteUrl(lab));
  if (page.code !== "200") throw new Error(`the site answers ${page.code} after the restore`);
  const write = request(lab, `${siteUrl(lab)}api/messages`, [
    "-H",
    "Content-Type: application/json",
    "--data",
    '{"body":"after the restore"}',
  ]);
  if (write.code !== "201") throw new Error(`a write after the restore answered ${write.code}: ${write.body.slice(0, 200)}`);
  return rows;
}

const checks: Check[] = [
  {
    name: "backups: a base backup is taken on a replica (not the primary) while the site takes writes, encrypted and uploaded; the primary archives its binary logs; /backup-status shows both ages",
    async run(lab) {
      const primary = currentPrimary(lab);
      const since = new Date();
      const w = writer(lab, "backup");
      let writes: Writes;
      let took = "";
      try {
        await sleep(2000);
        for (const name of webs(lab)) {
          const result = lab.execIn(name, ["systemctl", "start", "foobar-backup-base.service"], 900_000);
          if (result.status !== 0) throw new Error(`foobar-backup-base.service failed on ${name}: ${result.stderr.trim()}`);
        }
        await sleep(2000);
      } finally {
        writes = await w.stop();
      }
      const base = await baseAfter(lab, since, 10_000);
      if (base.host === primary) throw new Error(`the base backup was taken on the primary ${primary}, though replicas were healthy`);
      for (const name of webs(lab)) {
        const said = lab.execIn(name, [
          "journalctl",
          "--no-pager",
          "-o",
          "cat",
          "-u",
          "foobar-backup-base.service",
          "--since",
          "-10min",
        ]).stdout;
        if (said.includes("base backup base/")) took = said.split("\n").find((l) => l.includes("base backup base/")) ?? "";
      }
      const refused = writes.filter((x) => x.code !== "201").length;
      if (refused > 0) throw new Error(`${refused} write(s) refused during the base backup`);
      const pause = writePause(writes, since.getTime());
      const { value: status } = await waitFor("/backup-status showing the new base", 90_000, () => {
        const s = backupStatus(lab);
        return String(s.bucket?.newest_base ?? "") >= base.key.split("--")[1]! && s.bucket?.newest_binlog ? s : undefined;
      });
      // One the primary closed during this check: an archiver that stopped long ago would pass on older ones.
      await waitFor(`a binary log of the primary ${primary} closed since ${since.toISOString()} in the bucket`, 90_000, () =>
        bucket(lab, primary).binlogs.some(
          (b) => b.host.endsWith(primary) && b.closed.getTime() >= Math.floor(since.getTime() / 1000) * 1000,
        )
          ? true
          : undefined,
      );
      const archived = bucket(lab, primary).binlogs;
      return `${took.replace(/^foobar-backup: /, "")}; ${writes.length} writes during it, none refused, longest pause between acknowledged writes ${pause} ms; ${archived.length} binary logs archived so far; status: newest base ${String(status.bucket?.newest_base)}, newest binary log ${String(status.bucket?.newest_binlog)}`;
    },
  },
  {
    name: "restore refuses bad input with one line and touches nothing: a wrong or missing identity, a time outside the window, a restore already running, a corrupt object",
    async run(lab) {
      const primary = currentPrimary(lab);
      const before = contents(lab, primary);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-restore-check-"));
      const options = (changes: Partial<RestoreOptions>): RestoreOptions => ({
        until: "latest",
        identity: identity(lab),
        yes: true,
        progress: () => undefined,
        ...changes,
      });
      const refused: string[] = [];
      const expectRefusal = async (what: string, attempt: Promise<unknown>, message: RegExp) => {
        const error = await attempt.then(
          () => undefined,
          (e: unknown) => e as Error,
        );
        if (!error) throw new Error(`${what}: the restore went ahead`);
        if (!message.test(error.message) || error.message.includes("\n"))
          throw new Error(`${what}: "${error.message}" is not the one line expected (${message})`);
        refused.push(`${what}: "${error.message.slice(0, 110)}"`);
      };
      const garbage = `base/${formatStamp(new Date())}--${formatStamp(new Date())}--web-99--mysql-${sql(lab, primary, "SELECT VERSION()").split("-")[0]}.tar.gz.age`;
      try {
        const wrong = path.join(dir, "wrong.txt");
        run("age-keygen", ["-o", wrong]);
        await expectRefusal(
          "another identity",
          restore(target(lab), options({ identity: wrong })),
          /^the identity .* is for age1\w+, but the backups are encrypted to age1\w+$/,
        );
        await expectRefusal(
          "no identity file",
          restore(target(lab), options({ identity: path.join(dir, "absent.txt") })),
          /does not exist$/,
        );
        await expectRefusal(
          "a time outside the window",
          restore(target(lab), options({ until: new Date("2000-01-01T00:00:00Z") })),
          /is outside the recovery window; restorable: /,
        );
        lab.execIn(primary, ["/usr/local/sbin/foobar-restore", "lock", "held-by-the-check"]);
        await expectRefusal(
          "a restore already running",
          restore(target(lab), options({})),
          /another restore holds .* \(run held-by-the-check\)/,
        );
        lab.execIn(primary, ["/usr/local/sbin/foobar-restore", "unlock", "held-by-the-check"]);
        const put = lab.execIn(primary, [
          "bash",
          "-c",
          `set -a; . /etc/foobar/backup.env; head -c 4096 /dev/urandom | rclone rcat "spaces:$BACKUP_BUCKET/${garbage}"`,
        ]);
        if (put.status !== 0) throw new Error(`could not put a corrupt object: ${put.stderr.trim()}`);
        await expectRefusal(
          "a corrupt base backup",
          restoreBeside(target(lab), options({})),
          /could not fetch, decrypt and stage base\/.*web-99.*: age: /,
        );
      } finally {
        lab.execIn(primary, ["/usr/local/sbin/foobar-restore", "unlock", "held-by-the-check"]);
        lab.execIn(primary, [
          "bash",
          "-c",
          `set -a; . /etc/foobar/backup.env; rclone deletefile "spaces:$BACKUP_BUCKET/${garbage}" || true`,
        ]);
        fs.rmSync(dir, { recursive: true, force: true });
      }
      const after = contents(lab, primary);
      if (currentPrimary(lab) !== primary) throw new Error(`the primary changed from ${primary}`);
      for (const name of webs(lab)) {
        const active = lab.execIn(name, ["systemctl", "is-active", "foobar-db-agent", "foobar-backup-archive"]).stdout.trim();
        if (active !== "active\nactive") throw new Error(`${name}: agent and archiver not both running after the refusals: ${active}`);
      }
      if (after !== before) throw new Error(`the primary's rows changed during the refusals: ${before} then ${after}`);
      return refused.join("; ");
    },
  },
  {
    name: "point-in-time restore: writes, a time T, then DELETE FROM messages; `npm run restore -- --to T` brings back every row acknowledged before T and none sent after it, rebuilds the replicas, and keeps the replaced data directory",
    async run(lab) {
      const primary = currentPrimary(lab);
      const w = writer(lab, "pitr");
      let writes: Writes;
      // T is a whole second: binary log events carry whole seconds.
      const T = Math.ceil((Date.now() + 8000) / 1000) * 1000;
      const deletedAt = T + 3000;
      try {
        await sleep(deletedAt - Date.now());
        sql(lab, primary, "DELETE FROM foobar.messages");
        await sleep(2000);
      } finally {
        writes = await w.stop();
      }
      const waited = await archivedPast(lab, deletedAt);
      const { before, after } = splitAt(writes, T);
      if (before.length === 0 || after.length === 0)
        throw new Error(`the writer needs writes on both sides of T: ${before.length} before, ${after.length} after`);
      // First beside the site, on a replica: the rows are there to read, and the site is not touched.
      const siteBefore = contents(lab, primary);
      const beside = await restoreBeside(target(lab), {
        until: new Date(T),
        identity: identity(lab),
        yes: true,
        progress: (line) => log(`restore --beside: ${line}`),
      });
      const scratch = lab.execIn(beside.host, [
        "mysql",
        `--socket=${beside.socket}`,
        "--batch",
        "--skip-column-names",
        "--execute",
        `SELECT CONCAT_WS(' ', COUNT(*), SUM(id IN (${before.join(",")})), SUM(id IN (${after.join(",")}))) FROM foobar.messages`,
      ]);
      lab.execIn(beside.host, ["/usr/local/sbin/foobar-restore", "beside-stop", beside.id]);
      const [scratchRows, scratchBefore, scratchAfter] = scratch.stdout.trim().split(" ").map(Number);
      if (scratch.status !== 0 || scratchBefore !== before.length || scratchAfter !== 0) {
        throw new Error(
          `the scratch MySQL on ${beside.host} holds ${scratch.stdout.trim() || scratch.stderr.trim()} (rows, of the ${before.length} before T, of the ${after.length} after)`,
        );
      }
      if (contents(lab, primary) !== siteBefore) throw new Error("the site's rows changed during the restore beside it");
      const figures = await restoreTo(lab, new Date(T));
      const have = present(lab, primary, [...before, ...after]);
      const missing = before.filter((id) => !have.has(id));
      const extra = after.filter((id) => have.has(id));
      if (missing.length > 0)
        throw new Error(`${missing.length} row(s) acknowledged before T missing after the restore: ids ${missing.slice(0, 10).join(", ")}`);
      if (extra.length > 0)
        throw new Error(`${extra.length} row(s) sent after T present after the restore: ids ${extra.slice(0, 10).join(", ")}`);
      const aside = lab.execIn(primary, ["bash", "-c", `ls -d ${WORK_DIR}/aside-* && du -sh ${WORK_DIR}/aside-* | tail -1`]);
      if (aside.status !== 0) throw new Error(`no data directory set aside on ${primary}: ${aside.stderr.trim()}`);
      const rows = await siteWhole(lab, primary);
      return `T ${new Date(T).toISOString()}: beside the site, a scratch MySQL on ${beside.host} held ${scratchRows} rows, all ${before.length} acknowledged before T; then on the site: ${before.length} rows acknowledged before T, 0 missing; ${after.length} sent after T, 0 present; archive caught up ${(waited / 1000).toFixed(0)} s after the DELETE; restore: staged in ${figures.stageSeconds!.toFixed(1)} s, writable ${figures.writableSeconds!.toFixed(1)} s and every replica rebuilt ${figures.rebuiltSeconds!.toFixed(1)} s after the freeze (RTO for the lab's data); rows everywhere (count checksum) ${rows}; set aside: ${aside.stdout.trim().split("\n").pop()}`;
    },
  },
  {
    name: "total loss: every web server and its volume destroyed under a writer, created anew (the new primary holds its binary logs back and no server takes a base backup: the bucket has another history), restored from the bucket alone; acknowledged writes lost cover at most 60 s (the RPO seen)",
    async run(lab) {
      const primary = currentPrimary(lab);
      const names = webs(lab);
      // The restore before began a new history: its first base backup must be in the bucket.
      const marks = bucket(lab, primary).restores;
      if (marks.length > 0) await baseAfter(lab, marks[marks.length - 1]!.finished, 600_000);
      const w = writer(lab, "total-loss");
      let writes: Writes;
      const lossAt = Date.now() + 70_000;
      try {
        await sleep(lossAt - Date.now());
        await Promise.all(names.map((name) => lab.fault(name, "poweroff")));
      } finally {
        writes = await w.stop();
      }
      for (const name of names) {
        const device = lab.volumeDevice(`${name}-mysql`);
        if (!device) throw new Error(`no loop device for ${name}-mysql`);
        run("wipefs", ["--all", "--quiet", device]);
      }
      log(`total loss: ${names.join(", ")} powered off and their volumes blanked at ${new Date(lossAt).toISOString()}; creating them anew`);
      await lab.apply({ ...process.env, FOOBAR_WEB_SERVERS: String(names.length), FOOBAR_DB_PRIMARY: primary }, names);
      await waitFor(`${primary} writable on its new, empty database`, 300_000, () => (currentPrimary(lab) === primary ? true : undefined));
      const { value: holding } = await waitFor(`${primary} holding its binary logs back`, 120_000, () => {
        const said = lab.execIn(primary, ["cat", `${WORK_DIR}/lineage`]).stdout;
        return said.startsWith("holding") ? said.trim() : undefined;
      });
      // Nor does any server take a base backup of the new, empty data (it would become the newest base).
      const basesBefore = bucket(lab, primary).bases.length;
      for (const name of names) lab.execIn(name, ["systemctl", "start", "foobar-backup-base.service"], 600_000);
      if (bucket(lab, primary).bases.length !== basesBefore) throw new Error("a base backup of the new, empty database was taken");
      const started = Date.now();
      const figures = await restoreTo(lab, "latest");
      const acknowledged = writes.filter((x) => x.code === "201" && x.id !== undefined);
      const have = present(
        lab,
        primary,
        acknowledged.map((x) => x.id!),
      );
      const lost = acknowledged.filter((x) => !have.has(x.id!));
      const rpo = lost.length ? (lossAt - Math.min(...lost.map((x) => x.answeredAt))) / 1000 : 0;
      const rows = await siteWhole(lab, primary);
      if (rpo > 60)
        throw new Error(`${lost.length} acknowledged writes lost, the oldest ${rpo.toFixed(1)} s before the loss: over the 60 s RPO`);
      return `${acknowledged.length} writes acknowledged before the loss, ${lost.length} lost: RPO seen ${rpo.toFixed(1)} s; the new primary said "${holding.slice(0, 60)}…"; restore ${((Date.now() - started) / 1000).toFixed(1)} s (writable ${figures.writableSeconds!.toFixed(1)} s after the freeze, replicas rebuilt ${figures.rebuiltSeconds!.toFixed(1)} s); rows (count checksum) ${rows}, the same everywhere`;
    },
  },
];

export const backupChecks: Check[] = checks.map((check) =>
  withDiagnostics(check, ["foobar-db-agent.service", "foobar-backup-archive.service", "foobar-backup-base.service"]),
);
