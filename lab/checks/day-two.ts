/** Day two: the reserved IP, a rollout, replacements and growing the stack. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { SAMPLE_APP_DIR } from "../../constructs/app-files";
import { readOnly, withDiagnostics } from "./database-helpers";
import {
  backendStates,
  Check,
  httpsOn,
  postMessage,
  replicaCaughtUp,
  replicaStatus,
  request,
  roles,
  siteHost,
  siteUrl,
  sql,
  tlsHandshake,
  underLoad,
  waitFor,
  writeMessages,
} from "./helpers";

/** How long writes may be refused after the primary was replaced, while every agent sees its new address. */
const WRITES_RETURN_WITHIN_MS = 60_000;

export const dayTwoChecks: Check[] = [
  {
    name: "day two: the site is at a reserved IP held by lb-01; droplets find each other by internal name; MySQL's data is on each web server's volume",
    async run(lab) {
      const { lb, webs, primary, replicas } = roles(lab);
      const [reserved] = lab.stack.reservedIps;
      if (!reserved) throw new Error("the stack has no reserved IP");
      const www = lab.stack.records.find((r) => r.fqdn === siteHost(lab));
      if (www?.value !== reserved.ip) throw new Error(`${siteHost(lab)} points at ${www?.value}, not the reserved IP ${reserved.ip}`);
      if (reserved.assignedTo !== lb.name) throw new Error(`the reserved IP is assigned to ${reserved.assignedTo}, not ${lb.name}`);
      const held = lab.execIn(lb.name, ["ip", "-4", "-o", "addr", "show", "to", `${reserved.ip}/32`]).stdout.trim();
      if (!held) throw new Error(`${lb.name} does not hold ${reserved.ip}`);
      const answer = request(lab, siteUrl(lab));
      if (answer.code !== "200") throw new Error(`GET ${siteUrl(lab)} (→ ${reserved.ip}) answered ${answer.code}`);
      const primaryName = `mysql-primary.internal.${lab.stack.records[0]!.domain}`;
      const resolved = lab.execIn(replicas[0]?.name ?? primary.name, ["getent", "ahostsv4", primaryName]).stdout.split(/\s+/)[0];
      if (resolved !== primary.privateIpv4)
        throw new Error(`${primaryName} resolves to ${resolved} inside the droplets, not ${primary.privateIpv4}`);
      // By the address the database agent resolved past DNS caches (the record's, right now).
      const sources = () => replicas.map((r) => `${r.name} → ${replicaStatus(lab, r.name).Source_Host}`);
      await waitFor(`replicas replicating from ${resolved}`, 30_000, () =>
        replicas.every((r) => replicaStatus(lab, r.name).Source_Host === resolved) ? true : undefined,
      ).catch(() => {
        throw new Error(`replicas replicate from ${sources().join(", ")}, not ${primaryName} (${resolved})`);
      });
      const sourceHosts = sources();
      const mounts = webs.map((w) => {
        const [source, fstype] = lab.execIn(w.name, ["findmnt", "-n", "-o", "SOURCE,FSTYPE", "/var/lib/mysql"]).stdout.trim().split(/\s+/);
        if (!source?.includes(`scsi-0DO_Volume_${w.name}-mysql`) && !source?.startsWith("/dev/loop")) {
          throw new Error(`${w.name}: /var/lib/mysql is on ${source ?? "the droplet's own disk"}, not its volume`);
        }
        return `${w.name} ${fstype} on its volume`;
      });
      const slots = Object.entries(backendStates(lab));
      const empty = slots.filter(([name]) => !webs.some((w) => w.name === name));
      if (empty.some(([, state]) => !state.startsWith("MAINT")))
        throw new Error(`empty HAProxy slots not in maintenance: ${empty.map((e) => e.join(" ")).join(", ")}`);
      return `www → ${reserved.ip} on ${lb.name}: 200; ${primaryName} → ${resolved}; ${sourceHosts.join(", ")}; ${mounts.join(", ")}; ${empty.length} empty HAProxy slots in MAINT`;
    },
  },
  {
    name: "day two: a new application version rolls out one server at a time with 0 failed requests, and every server then serves it",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const marker = `release-${Date.now()}`;
      const release = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-release-"));
      fs.cpSync(SAMPLE_APP_DIR, release, { recursive: true });
      fs.writeFileSync(path.join(release, "static", "version.txt"), `${marker}\n`);
      const {
        result: lines,
        total,
        failed,
        byStatus,
      } = await underLoad(lab, `${siteUrl(lab)}api/messages`, async () => {
        try {
          return await lab.rollout({ ...process.env, FOOBAR_APP_DIR: release });
        } finally {
          fs.rmSync(release, { recursive: true, force: true });
        }
      });
      if (failed > 0) throw new Error(`${failed} of ${total} requests failed during the rollout${byStatus}: ${lines.join("; ")}`);
      for (const web of webs) {
        const served = lab
          .execIn(lb.name, ["curl", "-s", "--max-time", "5", "-H", `Host: ${siteHost(lab)}`, `http://${web.privateIpv4}/version.txt`])
          .stdout.trim();
        if (served !== marker) throw new Error(`${web.name} serves version "${served}", not ${marker}`);
      }
      return `${total} requests to /api/messages during the rollout, ${failed} failed; ${lines.join("; ")}; every server serves ${marker}`;
    },
  },
  withDiagnostics({
    name: "day two: web-01 (the primary) replaced for a user-data change keeps every row, replication runs again, the site's address is unchanged (the replica keeps serving; requests HAProxy sends to the new web-01 before its health checks fail are expected to fail, and are counted)",
    async run(lab) {
      const { primary, replicas } = roles(lab);
      const url = `${siteUrl(lab)}api/messages`;
      writeMessages(lab, url, 5, "before replacing the primary");
      const rows = () =>
        sql(lab, primary.name, "SELECT CONCAT_WS(', ', COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0)) FROM foobar.messages");
      const before = rows();
      const address = lab.stack.reservedIps[0]!.ip;
      const oldPrivate = primary.privateIpv4;
      const {
        result: report,
        total,
        failed,
        byStatus,
      } = await underLoad(lab, url, async () => {
        const applied = await lab.apply({ ...process.env, FOOBAR_REPLICA_MAX_LAG: "11" }, [primary.name]);
        await waitFor(`${primary.name} UP in HAProxy after its replacement`, 180_000, () =>
          backendStates(lab)[primary.name] === "UP" ? true : undefined,
        );
        return applied;
      });
      if (report.replaced.join() !== primary.name)
        throw new Error(`apply replaced ${report.replaced.join(", ") || "nothing"}, not ${primary.name}: ${report.lines.join("; ")}`);
      const after = rows();
      if (after !== before) throw new Error(`the new ${primary.name} holds (count, max id, sum of ids) ${after}, before it was ${before}`);
      const caughtUp = await Promise.all(replicas.map((r) => replicaCaughtUp(lab, primary.name, r.name)));
      const now = lab.droplet(primary.name);
      if (lab.stack.reservedIps[0]!.ip !== address)
        throw new Error(`the site's address changed from ${address} to ${lab.stack.reservedIps[0]!.ip}`);
      // The new web-01 has a new private address: a replica's app writes to the primary its agent
      // last resolved, so writes may be refused (503) until every agent has seen the new record.
      // How long that takes is measured; writes that never return fail the check.
      const refusals: string[] = [];
      const accepted = await waitFor("a write accepted after the replacement", WRITES_RETURN_WITHIN_MS, () => {
        const posted = postMessage(lab, url, "after replacing the primary");
        if (posted.code === "201") return posted;
        refusals.push(`${posted.code} from ${posted.servedBy || "?"}: ${posted.body.trim()}`);
        return undefined;
      }).catch((error: Error) => {
        throw new Error(`${error.message}; refusals: ${[...new Set(refusals)].join(" | ")}; writable: ${JSON.stringify(readOnly(lab))}`);
      });
      const refused =
        refusals.length === 0
          ? "the first write accepted"
          : `writes accepted after ${(accepted.ms / 1000).toFixed(1)} s (${refusals.length} refused first: ${[...new Set(refusals)].slice(0, 2).join(" | ")})`;
      return `${report.lines.join("; ")}; private address ${oldPrivate} → ${now.privateIpv4}; rows (count, max id, sum) ${after} before and after; ${caughtUp.join("; ")}; site still at ${address}; ${refused}; under load: ${total} requests, ${failed} failed${byStatus}`;
    },
  }),
  {
    name: "day two: lb-01 replaced keeps the site's address and its certificate: the ACME CA takes no new order",
    async run(lab) {
      const { lb } = roles(lab);
      const address = lab.stack.reservedIps[0]!.ip;
      // With HTTPS off there is no certificate to keep, and no ACME order to avoid.
      const serial = () => (httpsOn(lab) ? tlsHandshake(lab, "", "openssl x509 -noout -serial").stdout.trim() : "none: HTTPS is off");
      const serialBefore = serial();
      const ordersBefore = lab.acmeOrders();
      const {
        result: report,
        total,
        failed,
        byStatus,
      } = await underLoad(lab, siteUrl(lab), async () => {
        const applied = await lab.apply(process.env, [lb.name]);
        await waitFor("the site answering through the new load balancer", 120_000, () =>
          request(lab, siteUrl(lab)).code === "200" ? true : undefined,
        );
        return applied;
      });
      if (report.replaced.join() !== lb.name) throw new Error(`apply replaced ${report.replaced.join(", ") || "nothing"}, not ${lb.name}`);
      if (lab.stack.reservedIps[0]!.ip !== address || lab.stack.reservedIps[0]!.assignedTo !== lb.name)
        throw new Error(`the site's address moved: ${JSON.stringify(lab.stack.reservedIps[0])}`);
      const serialAfter = serial();
      if (serialAfter !== serialBefore)
        throw new Error(`the new ${lb.name} serves certificate ${serialAfter}, before it was ${serialBefore}`);
      const orders = lab.acmeOrders() - ordersBefore;
      if (orders !== 0) throw new Error(`the ACME CA took ${orders} new order(s) for the new ${lb.name}`);
      return `${report.lines.join("; ")}; ${lb.name} now ${lab.droplet(lb.name).publicIpv4}, the site still at ${address}; same certificate (${serialAfter}), 0 new ACME orders; under load: ${total} requests, ${failed} failed${byStatus} (the site is down while the new load balancer boots)`;
    },
  },
  {
    name: "day two: FOOBAR_WEB_SERVERS from 2 to 3 on a running lab replaces nothing; web-03 joins the rotation and replicates",
    async run(lab) {
      const { webs, primary } = roles(lab);
      const next = `web-${String(webs.length + 1).padStart(2, "0")}`;
      const report = await lab.apply({ ...process.env, FOOBAR_WEB_SERVERS: String(webs.length + 1) });
      if (report.replaced.length > 0 || report.deleted.length > 0)
        throw new Error(`apply replaced ${report.replaced.join(", ")} and deleted ${report.deleted.join(", ")}`);
      if (report.created.join() !== next) throw new Error(`apply created ${report.created.join(", ") || "nothing"}, not ${next}`);
      const up = await waitFor(`${next} UP in HAProxy`, 180_000, () => (backendStates(lab)[next] === "UP" ? true : undefined));
      const caughtUp = await replicaCaughtUp(lab, primary.name, next);
      const served = new Set<string>();
      for (let i = 0; i < 3 * (webs.length + 1); i++) served.add(request(lab, siteUrl(lab)).servedBy);
      if (!served.has(next)) throw new Error(`no request was served by ${next}: ${[...served].join(", ")}`);
      return `${report.lines.join("; ")}; ${next} UP in HAProxy ${(up.ms / 1000).toFixed(1)} s after its cloud-init finished; ${caughtUp}; requests served by ${[...served].sort().join(", ")}`;
    },
  },
];
