/**
 * The lab's command line.
 *
 *   up     synthesize the stack with the lab's settings, boot it as local droplets, leave them running
 *          (the default: `npm run lab`)
 *   down   tear down whatever the state file records (idempotent, crash-safe)
 *   test   [default|pair]: for each configuration (both unless one is named): up, its checks
 *          (lab/checks/; with FOOBAR_LOAD_BALANCERS=2, lab/checks/pair.ts), always down;
 *          exit non-zero if a check failed
 *   check  [group]: run the checks that fit the lab that is already up (no up/down), or one group of them
 *          (base, database, backups, scaling, pair, deploy, pair-scaling, monitoring)
 *   fault  <droplet> <kind> [unit|ms|droplet]: inject one fault into the lab that is up (see faults.ts)
 *   apply  [--replace <droplet>]...: change the lab that is up to what the settings synthesize now, like
 *          `terraform apply [-replace=…]` (see apply.ts)
 *   rollout  take FOOBAR_APP_DIR / FOOBAR_APP_COMMAND to every web server in turn, like `npm run rollout`
 *   deploy   change the lab that is up to what the settings synthesize now, like `npm run deploy`: what disturbs
 *            no droplet at once, then every droplet to replace or resize in turn (see emulations/deploy.ts)
 *
 * Environment: the stack's FOOBAR_* settings (the lab overrides only the ACME
 * directory, its CA file, the admin CIDRs, the failover token, the backup bucket and, unless
 * FOOBAR_MONITORING=false, the alert webhook, its own receiver), FOOBAR_LAB_CACHE,
 * FOOBAR_LAB_STATE, FOOBAR_LAB_BOOT_TIMEOUT (seconds), FOOBAR_LAB_API_DELAY_MS (how
 * long the emulated API takes to move a reserved IP; default 1000).
 */
import { isLoadBalancer } from "../names";
import {
  backupChecks,
  Check,
  checks,
  databaseChecks,
  deployChecks,
  monitoringChecks,
  monitoringGroupChecks,
  pairChecks,
  pairScalingChecks,
  scalingChecks,
} from "./checks";
import { httpsOn, siteUrl } from "./checks/helpers";
import { alertWebhookUrl } from "./emulations/alert-receiver";
import { parseFault } from "./faults";
import { preflight } from "./host/preflight";
import { baseCached } from "./host/rootfs";
import { log } from "./host/shell";
import { recordTiming } from "./host/timings";
import { attachRunning, down, Lab, leftovers, up } from "./lab";
import { ACME_NS, CLIENT_NS, HOOKS_NS, PAIR_SETTINGS, UPLINK_ADDRESS } from "./settings";

let interrupted = false;

const USAGE =
  "usage: ts-node lab/cli.ts [up|down|test [default|pair]|check [group]|fault <droplet> <kind> [unit|ms|droplet]|apply [--replace <droplet>]...|rollout|deploy]";

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? "up";
  const argsAllowed =
    command === "fault"
      ? argv.length >= 3
      : command === "apply"
        ? true
        : command === "test" || command === "check"
          ? argv.length <= 2
          : argv.length <= 1;
  if (!argsAllowed || !["up", "down", "test", "check", "fault", "apply", "rollout", "deploy"].includes(command)) {
    console.error(USAGE);
    return 2;
  }
  const problem = preflight();
  if (problem) {
    console.error(`lab: ${problem}`);
    return 1;
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (!interrupted) log(`${signal}: stopping, the lab will be torn down`);
      interrupted = true;
    });
  }

  if (command === "down") {
    await runDown();
    return 0;
  }
  if (command === "fault") {
    const lab = attachRunning();
    const fault = parseFault(
      argv.slice(1),
      lab.stack.droplets.map((d) => d.name),
    );
    await lab.fault(fault.droplet, fault.kind, fault.delayMs ?? fault.unit ?? fault.from);
    return 0;
  }
  if (command === "apply") {
    const replace = parseReplace(argv.slice(1));
    const report = await attachRunning().apply(process.env, replace);
    console.log(
      report.changes.length === 0
        ? "apply: no changes"
        : `apply: done, ${report.lines.length} change(s): replaced ${report.replaced.join(", ") || "no droplet"}, created ${report.created.join(", ") || "none"}, deleted ${report.deleted.join(", ") || "none"}`,
    );
    return 0;
  }
  if (command === "rollout") {
    const lines = await attachRunning().rollout(process.env, (line) => log(`rollout: ${line}`));
    console.log(`rollout: done, ${lines.length} web server(s) on the new release`);
    return 0;
  }
  if (command === "deploy") {
    const started = Date.now();
    await attachRunning().deploy(process.env, (line) => log(line));
    console.log(`deploy: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  }
  if (command === "check") {
    const lab = attachRunning();
    const group = argv[1];
    if (group !== undefined && !(group in CHECK_GROUPS)) throw new Error(`usage: check [${Object.keys(CHECK_GROUPS).join("|")}]`);
    const result = await runChecks(lab, group === undefined ? checksFor(lab) : CHECK_GROUPS[group]!);
    console.log(`${result.passed} passed, ${result.failed} failed`);
    return result.failed === 0 ? 0 : 1;
  }

  if (command === "up") {
    const lab = await up(process.env, () => interrupted);
    printSummary(lab);
    return 0;
  }
  // test: for each configuration, up, its checks, always down, and a look for
  // leftovers; the count is the last line, after the teardowns.
  const wanted = argv[1];
  if (wanted !== undefined && !CONFIGURATIONS.some((c) => c.name === wanted)) {
    throw new Error(`usage: test [${CONFIGURATIONS.map((c) => c.name).join("|")}] (default: all)`);
  }
  const total = { passed: 0, failed: 0 };
  const testStartedAt = Date.now();
  const warm = baseCached();
  for (const configuration of CONFIGURATIONS.filter((c) => wanted === undefined || c.name === wanted)) {
    if (interrupted) break;
    log(`test: the ${configuration.name} configuration (${configuration.what})`);
    let result = { passed: 0, failed: configuration.checks.length };
    try {
      const lab = await up({ ...process.env, ...configuration.env }, () => interrupted);
      printSummary(lab);
      result = await runChecks(lab, configuration.checks);
    } catch (error) {
      console.error(`lab: ${(error as Error).message}`);
      for (const check of configuration.checks) console.log(`FAIL ${check.name} — not run: the lab did not come up`);
    } finally {
      await runDown();
    }
    // The run proves it leaves the machine as it found it.
    const left = leftovers();
    if (left.length > 0) {
      console.log(`FAIL lab:down leaves nothing of the lab behind — left: ${left.join("; ")}`);
      result.failed += 1;
    } else {
      console.log("PASS lab:down leaves nothing of the lab behind — no lab namespace, cgroup, guard route, mount, loop device or process");
      result.passed += 1;
    }
    console.log(`${configuration.name}: ${result.passed} passed, ${result.failed} failed`);
    total.passed += result.passed;
    total.failed += result.failed;
  }
  // What the bench reports as a warm test:lab: every configuration, from a built base.
  if (warm && wanted === undefined && !interrupted) recordTiming("warm test:lab", (Date.now() - testStartedAt) / 1000);
  console.log(`${total.passed} passed, ${total.failed} failed`);
  return total.failed === 0 && !interrupted ? 0 : 1;
}

/** What `test` boots, in order: the operator's settings, then the same with a load balancer pair. */
const CONFIGURATIONS: readonly { name: string; what: string; env: Readonly<Record<string, string>>; checks: readonly Check[] }[] = [
  {
    name: "default",
    what: "the settings as they are",
    env: {},
    checks: [...checks, ...databaseChecks, ...backupChecks, ...monitoringChecks, ...scalingChecks],
  },
  {
    name: "pair",
    what: "FOOBAR_LOAD_BALANCERS=2, SSH also from lab-api",
    env: PAIR_SETTINGS,
    checks: [...pairChecks, ...deployChecks, ...pairScalingChecks],
  },
];

/** The checks by group, for `check <group>` against a lab that is up (each group expects the state the ones before it leave). */
const CHECK_GROUPS: Readonly<Record<string, readonly Check[]>> = {
  base: checks,
  database: databaseChecks,
  backups: backupChecks,
  scaling: scalingChecks,
  pair: pairChecks,
  deploy: deployChecks,
  "pair-scaling": pairScalingChecks,
  monitoring: monitoringGroupChecks,
};

/** The checks that fit a running lab: the pair's when it has two load balancers. */
function checksFor(lab: Lab): readonly Check[] {
  return lab.stack.droplets.filter((d) => isLoadBalancer(d.name)).length > 1
    ? [...pairChecks, ...pairScalingChecks]
    : [...checks, ...databaseChecks, ...backupChecks, ...monitoringChecks, ...scalingChecks];
}

/** `--replace web-01 --replace lb-01` → the droplet names. */
function parseReplace(args: readonly string[]): string[] {
  const names: string[] = [];
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] !== "--replace" || !args[i + 1]) throw new Error("usage: apply [--replace <droplet>]...");
    names.push(args[i + 1]!);
  }
  return names;
}

/** Runs every check, printing PASS/FAIL lines; a check skipped by an interrupt counts as failed. */
async function runChecks(lab: Lab, list: readonly Check[]): Promise<{ passed: number; failed: number }> {
  let passed = 0;
  let failed = 0;
  for (const check of list) {
    if (interrupted) {
      console.log(`FAIL ${check.name} — not run: interrupted`);
      failed += 1;
      continue;
    }
    // Each line says how long its check took: where the lab's time goes, read off any run.
    const startedAt = Date.now();
    const took = () => `(${((Date.now() - startedAt) / 1000).toFixed(0)} s)`;
    try {
      const evidence = await check.run(lab);
      console.log(`PASS ${took()} ${check.name} — ${evidence}`);
      passed += 1;
    } catch (error) {
      console.log(`FAIL ${took()} ${check.name} — ${(error as Error).message}`);
      failed += 1;
    }
  }
  return { passed, failed };
}

async function runDown(): Promise<void> {
  log("tearing the lab down");
  const removed = await down();
  for (const item of removed) console.log(`  removed ${item}`);
  log(removed.length > 0 ? "lab is down" : "nothing to tear down");
}

function printSummary(lab: Lab): void {
  const a = lab.stack.records.filter((r) => r.type === "A");
  const www = a.find((r) => r.name === "www") ?? a[0];
  const lines = ["", "The lab is up."];
  const url = www ? siteUrl(lab) : "http://<droplet public address>/";
  const trust = httpsOn(lab) ? ` --cacert ${lab.acme.issuingRootFile}` : "";
  if (www) lines.push(`  site: ${url}  (${www.fqdn} → ${www.value}, resolved in ${CLIENT_NS})`);
  for (const d of lab.stack.droplets) {
    lines.push(
      `  ${d.name.padEnd(10)} public ${d.publicIpv4.padEnd(15)} private ${d.privateIpv4.padEnd(15)} tags ${d.tags.join(",") || "-"}`,
    );
  }
  lines.push(
    `  apt proxy: http://${UPLINK_ADDRESS}:3142 (host)`,
    `  ACME CA:   ${lab.acme.directoryUrl} (pebble in ${ACME_NS}), its HTTPS CA ${lab.acme.serverCaFile}`,
    `             site certificates issued under ${lab.acme.issuingRootFile}`,
    `  alerts:    ${alertWebhookUrl()} (in ${HOOKS_NS}) appends every one to ${lab.alertsFile() ?? "?"}`,
    "",
    "Reach it (only from the client namespace):",
    `  ip netns exec ${CLIENT_NS} curl -i${trust} ${url}`,
    "Look inside a droplet (as root, all its namespaces):",
    ...lab.stack.droplets.map((d) => `  nsenter -t ${lab.initPid(d.name) ?? "?"} -a bash -l    # ${d.name}`),
    "Inject a fault (logged in the lab's faults.log):",
    "  npm run lab -- fault web-02 crash mysql    # kinds: stop, start, crash <unit>; poweroff, poweron; partition, slow [ms], heal",
    "Tear it down: npm run lab:down",
    "",
  );
  console.log(lines.join("\n"));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`lab: ${error.message}`);
    process.exit(1);
  },
);
