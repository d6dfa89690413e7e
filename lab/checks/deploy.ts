/**
 * `npm run deploy` in the lab (`lab.deploy`, the same sequencer and executor):
 * each change under a continuous HTTPS client and a writer, printing requests
 * sent and failed, writes acknowledged, refused and lost, and how long the
 * deploy took. Run in the pair configuration, after the pair's checks; each
 * deploy keeps the settings of the ones before it.
 */
import { isLoadBalancer, isMonitoringServer } from "../../names";
import { accountKeyFile, LAB_ACCOUNT_KEY_ID, sshCommand } from "../emulations/ssh";
import { log, tryRun } from "../host/shell";
import type { Lab } from "../lab";
import { API_ADDRESS, API_NS, CLIENT_NS, DNS_ADDRESS, DNS_NS, PAIR_SETTINGS } from "../settings";
import { currentPrimary, nothingLost, sampleWritable, withDiagnostics, writeFigures, writePause, writer } from "./database-helpers";
import { Check, continuousClient, request, siteHost, siteUrl, trustLabCa } from "./helpers";

/** The settings every deploy here keeps, from the pair configuration's own on (each check adds its own on top). */
const deployed: Record<string, string> = { ...PAIR_SETTINGS };

/** The settings the lab runs after the deploy checks: an apply after them starts from these, or it undoes them all at once. */
export function deployedSettings(): NodeJS.ProcessEnv {
  return { ...process.env, ...deployed };
}

/** What one deploy did and cost. */
interface DeployRun {
  /** What the deploy said, step by step. */
  readonly lines: readonly string[];
  /** Its figures, for the check's evidence. */
  readonly figures: string;
  readonly failedRequests: number;
  /** Writes refused outside the primary's turn (from the end of the turn before it to its server being primary again, 5 s after). */
  readonly refusedOutsideSwitchovers: number;
}

/** Deploys `change` on top of the earlier pair checks' settings, under a client and a writer. */
function deployPair(lab: Lab, change: Record<string, string>): Promise<DeployRun> {
  Object.assign(deployed, change);
  return deployUnderLoad(lab, deployedSettings(), Object.keys(change).join(","));
}

/**
 * Deploys what `env` synthesizes under a client and a writer; fails on two
 * writable servers or an acknowledged write lost.
 */
async function deployUnderLoad(lab: Lab, env: NodeJS.ProcessEnv, label: string): Promise<DeployRun> {
  const client = continuousClient(lab, siteUrl(lab));
  const w = writer(lab, `deploy ${label}`);
  const sampler = sampleWritable(lab);
  const lines: string[] = [];
  const said: number[] = [];
  const started = Date.now();
  const settled = await lab
    .deploy(env, (line) => {
      lines.push(line);
      said.push(Date.now());
      log(line);
    })
    .then(
      () => undefined,
      (error: Error) => error,
    );
  const seconds = (Date.now() - started) / 1000;
  const requests = await client.stop();
  const writes = await w.stop();
  const sampled = await sampler.stop();
  // Each failed request beside the deploy's last line before it: what the deploy was doing then.
  const when = requests.failures.slice(0, 5).map((failure) => {
    const last = said.reduce((found, at, i) => (at <= failure.at ? i : found), -1);
    const during = last < 0 ? "before the deploy's first line" : `after "${lines[last]}"`;
    return `+${((failure.at - started) / 1000).toFixed(1)} s ${during}: ${failure.code} ${failure.error || ""}`.trim();
  });
  const traffic = `${requests.total} requests, ${requests.failed} failed${requests.byStatus}${when.length > 0 ? ` [${when.join("; ")}]` : ""}`;
  if (settled) throw new Error(`the deploy stopped after ${seconds.toFixed(0)} s (${traffic}): ${settled.message}`);
  const lost = nothingLost(lab, currentPrimary(lab), writes, sampled);
  const pause = writePause(writes, started);
  // The primary's turn: from the line that ended the turn before it (or the start) to the line that says the
  // configured primary is writable again, plus the writer's 5 s timeout.
  const back = lines.findIndex((line) => line.endsWith(": the primary, as the configuration names it"));
  const moved = lines.findIndex((line) => line.includes(": the primary role moved to "));
  const ended = lines.map((line, i) => (line.endsWith(": healthy and back in rotation") && i < moved ? i : -1));
  const before = Math.max(-1, ...ended);
  const window = back < 0 ? undefined : { from: before < 0 ? started : said[before]!, to: said[back]! + 5000 };
  const refused = writes.filter((x) => x.code !== "201");
  const outside = refused.filter((x) => !window || x.at < window.from || x.at > window.to).length;
  return {
    lines,
    failedRequests: requests.failed,
    refusedOutsideSwitchovers: outside,
    figures: `deploy took ${seconds.toFixed(1)} s; ${traffic}; ${writeFigures(writes, lost, sampled)}; longest pause between acknowledged writes ${(pause / 1000).toFixed(1)} s; ${outside} writes refused outside the primary's turn`,
  };
}

/** The droplets a deploy's lines say it replaced or resized, in order. */
function turns(run: DeployRun, action: "replaced" | "resized"): string[] {
  return run.lines.map((line) => new RegExp(`^(\\S+): ${action} `).exec(line)?.[1]).filter((name): name is string => name !== undefined);
}

/**
 * Fails unless every droplet `changed` names had its turn with `action`, no request failed and no write was refused
 * but in the primary's turn.
 */
function everyDroplet(lab: Lab, run: DeployRun, action: "replaced" | "resized", changed: (name: string) => boolean = () => true): string {
  const done = turns(run, action);
  const all = lab.stack.droplets
    .map((d) => d.name)
    .filter(changed)
    .sort();
  if ([...done].sort().join() !== all.join())
    throw new Error(`${action}: ${done.join(", ") || "none"}, expected ${all.join(", ")}; ${run.figures}`);
  if (run.failedRequests > 0) throw new Error(`${run.failedRequests} requests failed: ${run.figures}`);
  if (run.refusedOutsideSwitchovers > 0) throw new Error(`writes were refused outside the primary's turn: ${run.figures}`);
  return `${action} in turn: ${done.join(" → ")}; ${run.figures}`;
}

/** The HSTS header each load balancer sends, asked of it directly (not through the site's address). */
function hstsByLoadBalancer(lab: Lab): Record<string, string> {
  const host = siteHost(lab);
  const found: Record<string, string> = {};
  for (const lb of lab.stack.droplets.filter((d) => isLoadBalancer(d.name))) {
    const headers = lab.client(
      [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "--max-time",
        "5",
        ...trustLabCa(lab),
        "--resolve",
        `${host}:443:${lb.publicIpv4}`,
        `https://${host}/`,
      ],
      15_000,
    ).stdout;
    found[lb.name] = /^strict-transport-security: *(.*?)\r?$/im.exec(headers)?.[1] ?? "none";
  }
  return found;
}

const DIAGNOSTIC_UNITS = ["foobar-db-agent.service", "haproxy.service", "keepalived.service"];

/** The admin range the pair configuration boots with besides the client (PAIR_SETTINGS): the API emulator's namespace. */
const OLD_ADMIN_SOURCE = { namespace: API_NS, address: API_ADDRESS };
/** The range the deploy puts in its place: the DNS server's namespace. */
const NEW_ADMIN_SOURCE = { namespace: DNS_NS, address: DNS_ADDRESS };

/** Whether root logs in over SSH to a droplet from a namespace with a key (a `true` run, 10 s at most). */
function logsIn(lab: Lab, droplet: string, namespace: string, key: string): boolean {
  const [program, ...args] = sshCommand(namespace, key, lab.droplet(droplet).publicIpv4, "true");
  return tryRun(program!, args, { timeoutMs: 10_000 }).status === 0;
}

/** Per droplet: the admin key from the old and the new range, and the account key from the client. */
function access(lab: Lab): Record<string, { old: boolean; fresh: boolean; accountKey: boolean }> {
  const admin = lab.adminKey;
  return Object.fromEntries(
    lab.stack.droplets.map((d) => [
      d.name,
      {
        old: logsIn(lab, d.name, OLD_ADMIN_SOURCE.namespace, admin),
        fresh: logsIn(lab, d.name, NEW_ADMIN_SOURCE.namespace, admin),
        accountKey: logsIn(lab, d.name, CLIENT_NS, accountKeyFile()),
      },
    ]),
  );
}

/** Each droplet's ufw rules for SSH, as `ufw status` lists their sources. */
function ufwSshSources(lab: Lab, droplet: string): string[] {
  return lab
    .execIn(droplet, ["ufw", "status"])
    .stdout.split("\n")
    .filter((line) => /^22\/tcp\s+ALLOW/.test(line) && !line.includes("(v6)"))
    .map((line) => line.replace(/#.*$/, "").trim().split(/\s+/).pop()!);
}

/** What the deploy that replaces every droplet found before and left after, for the checks that read it. */
let replacedAll: { run: DeployRun; before: ReturnType<typeof access>; primary: string } | undefined;

function afterReplacingAll(): NonNullable<typeof replacedAll> {
  if (!replacedAll) throw new Error("the deploy that replaces every droplet did not run or failed (see the check before)");
  return replacedAll;
}

export const deployChecks: Check[] = [
  withDiagnostics(
    {
      name: "deploy: FOOBAR_SIZE changed under a client and a writer: every droplet powered off and on in turn (replicas, the primary after a switchover, the backup load balancer, the master after the address moves), 0 failed requests, 0 acknowledged writes lost",
      async run(lab) {
        // mon-01 has a size of its own (FOOBAR_MONITORING_SIZE): FOOBAR_SIZE resizes every other droplet.
        return everyDroplet(lab, await deployPair(lab, { FOOBAR_SIZE: "s-2vcpu-4gb" }), "resized", (name) => !isMonitoringServer(name));
      },
    },
    DIAGNOSTIC_UNITS,
  ),
  withDiagnostics(
    {
      name: "deploy: FOOBAR_IMAGE changed, with FOOBAR_HSTS_MAX_AGE, FOOBAR_ADMIN_CIDRS and FOOBAR_SSH_KEYS (settings only user-data and SSH keys carry), under a client and a writer: every droplet replaced in turn, the primary's after a switchover (and the primary again after), 0 failed requests, 0 acknowledged writes lost, writes refused only during the switchovers",
      async run(lab) {
        const primary = currentPrimary(lab);
        const before = access(lab);
        const run = await deployPair(lab, {
          FOOBAR_IMAGE: "ubuntu-26-04-x64",
          FOOBAR_HSTS_MAX_AGE: "600",
          FOOBAR_ADMIN_CIDRS: `${NEW_ADMIN_SOURCE.address}/32`,
          FOOBAR_SSH_KEYS: LAB_ACCOUNT_KEY_ID,
        });
        replacedAll = { run, before, primary };
        const evidence = everyDroplet(lab, run, "replaced");
        if (currentPrimary(lab) !== primary) throw new Error(`the primary is ${currentPrimary(lab)}, was ${primary}; ${run.figures}`);
        return `${evidence}; ${primary} the primary again`;
      },
    },
    DIAGNOSTIC_UNITS,
  ),
  {
    name: "deploy: the new FOOBAR_HSTS_MAX_AGE reached both load balancers (each asked directly)",
    async run(lab) {
      afterReplacingAll();
      const hsts = hstsByLoadBalancer(lab);
      const stale = Object.entries(hsts).filter(([, header]) => !header.startsWith("max-age=600"));
      if (stale.length > 0) throw new Error(`HSTS: ${JSON.stringify(hsts)}`);
      return Object.entries(hsts)
        .map(([lb, header]) => `${lb} sends Strict-Transport-Security: ${header}`)
        .join("; ");
    },
  },
  {
    name: "deploy: FOOBAR_ADMIN_CIDRS changed: every droplet's ufw allows SSH from the new range and no longer from the removed one; SSH from the removed range is refused by every droplet, from the new one accepted",
    async run(lab) {
      const { before } = afterReplacingAll();
      const after = access(lab);
      const problems: string[] = [];
      const evidence: string[] = [];
      for (const droplet of lab.stack.droplets.map((d) => d.name)) {
        const sources = ufwSshSources(lab, droplet);
        if (sources.includes(OLD_ADMIN_SOURCE.address) || !sources.includes(NEW_ADMIN_SOURCE.address))
          problems.push(`${droplet} ufw allows SSH from ${sources.join(", ")}`);
        if (after[droplet]!.old || !after[droplet]!.fresh)
          problems.push(
            `${droplet}: SSH from ${OLD_ADMIN_SOURCE.address} ${after[droplet]!.old ? "accepted" : "refused"}, from ${NEW_ADMIN_SOURCE.address} ${after[droplet]!.fresh ? "accepted" : "refused"}`,
          );
        evidence.push(`${droplet}: ufw SSH from ${sources.join(", ")}`);
      }
      if (problems.length > 0) throw new Error(problems.join("; "));
      const wasOld = Object.values(before).filter((b) => b.old).length;
      const wasNew = Object.values(before).filter((b) => b.fresh).length;
      return (
        `before the deploy SSH from ${OLD_ADMIN_SOURCE.address} logged in to ${wasOld} of ${Object.keys(before).length} droplets, from ${NEW_ADMIN_SOURCE.address} to ${wasNew}; ` +
        `after: from ${OLD_ADMIN_SOURCE.address} to none, from ${NEW_ADMIN_SOURCE.address} to all; ${evidence.join("; ")}`
      );
    },
  },
  {
    name: "deploy: an SSH key added to FOOBAR_SSH_KEYS logs in to every running droplet (and did to none before)",
    async run(lab) {
      const { before } = afterReplacingAll();
      const after = access(lab);
      const without = Object.entries(after)
        .filter(([, a]) => !a.accountKey)
        .map(([name]) => name);
      if (without.length > 0) throw new Error(`the account key ${LAB_ACCOUNT_KEY_ID} does not log in to ${without.join(", ")}`);
      const already = Object.entries(before)
        .filter(([, b]) => b.accountKey)
        .map(([name]) => name);
      if (already.length > 0)
        throw new Error(`the account key logged in before the deploy, to ${already.join(", ")}: the check proves nothing`);
      return `account key ${LAB_ACCOUNT_KEY_ID}: refused by all ${Object.keys(before).length} droplets before the deploy, logs in to all after`;
    },
  },
  withDiagnostics(
    {
      name: "deploy: FOOBAR_WEB_SERVERS from 2 to 3 under a client and a writer: web-03 created, named (and so in HAProxy's rotation) only once healthy, nothing replaced, 0 failed requests",
      async run(lab) {
        const run = await deployPair(lab, { FOOBAR_WEB_SERVERS: "3" });
        const changed = [...turns(run, "replaced"), ...turns(run, "resized")];
        if (changed.length > 0) throw new Error(`the deploy changed ${changed.join(", ")}; ${run.figures}`);
        const named = run.lines.find((line) => line.startsWith("web-03: healthy, then named"));
        if (!named) throw new Error(`the deploy did not name web-03 once healthy: ${run.lines.slice(-4).join(" | ")}; ${run.figures}`);
        const inRotation = run.lines.find((line) => line.startsWith("web-03: in rotation on every load balancer"));
        if (!inRotation) throw new Error(`web-03 was not UP on every load balancer after it was named: ${run.lines.slice(-4).join(" | ")}`);
        if (run.failedRequests > 0) throw new Error(`${run.failedRequests} requests failed: ${run.figures}`);
        const served = new Set<string>();
        for (let i = 0; i < 12; i++) served.add(request(lab, siteUrl(lab)).servedBy);
        if (!served.has("web-03")) throw new Error(`no request was served by web-03: ${[...served].join(", ")}`);
        return `${named}; ${inRotation}; requests then served by ${[...served].sort().join(", ")}; ${run.figures}`;
      },
    },
    DIAGNOSTIC_UNITS,
  ),
];

/**
 * The default configuration's one load balancer replaced by the deploy (its
 * HSTS setting changed): the one step that costs requests, counted. Run
 * between the scaling checks, whose settings it keeps (two web servers,
 * web-01 the primary).
 */
export const singleLoadBalancerDeploy: Check = withDiagnostics(
  {
    name: "deploy, one load balancer: FOOBAR_HSTS_MAX_AGE changed, lb-01 replaced last under a client and a writer; the failed requests counted (the site is down while it boots), 0 acknowledged writes lost",
    async run(lab) {
      const env = { ...process.env, FOOBAR_WEB_SERVERS: "2", FOOBAR_DB_PRIMARY: "web-01", FOOBAR_HSTS_MAX_AGE: "600" };
      const run = await deployUnderLoad(lab, env, "one load balancer");
      const replaced = turns(run, "replaced");
      if (replaced.join() !== "lb-01") throw new Error(`replaced: ${replaced.join(", ") || "none"}, expected lb-01 alone; ${run.figures}`);
      const hsts = hstsByLoadBalancer(lab)["lb-01"];
      if (!hsts?.startsWith("max-age=600")) throw new Error(`lb-01 sends Strict-Transport-Security: ${hsts}; ${run.figures}`);
      return `lb-01 replaced; ${run.figures}; lb-01 sends Strict-Transport-Security: ${hsts}`;
    },
  },
  DIAGNOSTIC_UNITS,
);
