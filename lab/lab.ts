/**
 * Bringing the whole lab up and down, and the `Lab` handle the checks use.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { FAILOVER_TOKEN_VARIABLE, isLoadBalancer } from "../names";
import { loadSettings } from "../settings";
import { RestoreTarget } from "../tools/restore";
import { haproxyServerName, releaseFromSettings, rollout, RolloutTarget } from "../tools/rollout";
import { acmeDirectoryUrl, createAcmeCertificates, ordersPlaced, startAcme, stopAcme, validateNamesAt } from "./emulations/acme";
import { alertsFile, startAlertReceiver, stopAlertReceiver } from "./emulations/alert-receiver";
import { apiDelayMs, apiLogFile, startApi, stopApi } from "./emulations/api";
import { applyChanges, ApplyReport } from "./emulations/apply";
import { createBackupIdentity } from "./emulations/backup-identity";
import { labDeploy } from "./emulations/deploy";
import { failNames, startDns, stopDns } from "./emulations/dns";
import {
  bootDroplet,
  cloudInitReport,
  containerInit,
  execIn as execInDroplet,
  powerOff as powerOffDroplet,
  powerOn as powerOnDroplet,
  prepareDroplet,
  teardownDroplets,
  waitForCloudInit,
} from "./emulations/droplets";
import { renderFirewall } from "./emulations/firewall";
import { LINK_LOCAL_RANGE, startMetadata, stopMetadata } from "./emulations/metadata";
import { randomPassword, randomSpacesKey } from "./emulations/passwords";
import { spacesLog, startSpaces, stopSpaces } from "./emulations/spaces";
import { createAdminKey, sshFromClient, sshFromClientCommand } from "./emulations/ssh";
import { describeOverrides, labOverrides, makeLabToken, synthesizeStack } from "./emulations/synth";
import { ComputedValues, LabDroplet, LabStack, resolveStack } from "./emulations/terraform";
import { createVolume, teardownVolumes } from "./emulations/volumes";
import { FaultKind, injectFault } from "./faults";
import { rangesOverlap } from "./host/addresses";
import { startAptProxy, stopAptProxy } from "./host/apt-proxy";
import { cgroupHierarchies, LAB_CGROUP, teardownCgroups } from "./host/cgroups";
import {
  addAcmeHost,
  addApiHost,
  addClient,
  addDnsHost,
  addDropletNetwork,
  addGuardRoutes,
  addHooksHost,
  addMetadataHost,
  addSpacesHost,
  applyNftables,
  assignReservedIp,
  createSwitch,
  hasNftTable,
  listNamespaces,
  reservedIpHolders,
  reservedIpHoldersFile,
  teardownNetwork,
} from "./host/network";
import { baseCached, ensureBase } from "./host/rootfs";
import { CommandResult, log, sleep, tryRun } from "./host/shell";
import { AcmeEndpoints, LabState, newState, readState, removeStateFile, saveState } from "./host/state";
import { recordTiming } from "./host/timings";
import {
  ACME_NS,
  API_NS,
  APT_PROXY_PORT,
  bootTimeoutSeconds,
  CLIENT_NS,
  DNS_NS,
  DROPLET_NS_PREFIX,
  dropletNamespace,
  FIREWALL_TABLE,
  FIRST_DROPLET_PRIVATE_HOST,
  FIRST_DROPLET_PUBLIC_HOST,
  FIRST_RESERVED_IP_HOST,
  GUARD_ROUTE_METRIC,
  HOOKS_NS,
  METADATA_NS,
  PUBLIC_RANGE,
  SPACES_NS,
  stateDir,
  UPLINK_ADDRESS,
} from "./settings";

/** What checks get: the resolved stack and ways to act on the running lab. */
export interface Lab {
  readonly stack: LabStack;
  /**
   * The lab's ACME CA (pebble in `lab-acme`): the directory the stack was
   * synthesized with, the CA of its HTTPS certificate, and the root it issues
   * site certificates under (new on every `up`). Files are host paths, readable
   * from `lab.client` too.
   */
  readonly acme: AcmeEndpoints;
  /** The shared base rootfs (read-only lower layer of every droplet's overlay), a host path. */
  readonly baseRootfs: string;
  /** The droplet of that name (throws if there is none). */
  droplet(name: string): LabDroplet;
  /** Runs a command inside a droplet as root (with `input` on its stdin); never throws on a non-zero exit. */
  execIn(name: string, cmd: readonly string[], timeoutMs?: number, input?: string): CommandResult;
  /** Runs a command in the client namespace (where record names resolve); never throws on a non-zero exit. */
  client(cmd: readonly string[], timeoutMs?: number): CommandResult;
  /** Host PID of the droplet's init (for `nsenter -t PID -a`), undefined while powered off. */
  initPid(name: string): number | undefined;
  /** Cleanly shuts a droplet down, keeping its disk. */
  powerOff(name: string): Promise<void>;
  /** Boots a powered-off droplet from the same disk; resolves when systemd is up. */
  powerOn(name: string): Promise<void>;
  /**
   * Changes the running lab to what `env` synthesizes now, like `terraform
   * apply` (see apply.ts); `replace` names droplets to replace regardless.
   */
  apply(env: NodeJS.ProcessEnv, replace?: readonly string[]): Promise<ApplyReport>;
  /**
   * `npm run deploy` against the lab: what `env` synthesizes, the disruptive
   * changes one droplet at a time (see emulations/deploy.ts); `say` hears each step.
   */
  deploy(env: NodeJS.ProcessEnv, say: (line: string) => void): Promise<void>;
  /** How many certificate orders the lab's ACME CA has taken since `up`. */
  acmeOrders(): number;
  /**
   * Where the ACME CA validates every name from now on: an address away from
   * the site makes renewals fail there; `undefined` points the names back at
   * the site (its `www` record's address).
   */
  acmeValidatesAt(ipv4: string | undefined): void;
  /** The loop device of a volume the lab created (kept or forgotten by Terraform alike), undefined if none. */
  volumeDevice(name: string): string | undefined;
  /** `npm run rollout` against the lab: the application `env` names, to every web server in turn, over SSH. */
  rollout(env: NodeJS.ProcessEnv, progress?: (line: string) => void): Promise<string[]>;
  /** `npm run restore`'s target in the lab: the web servers over SSH from the client namespace; `primary` is FOOBAR_DB_PRIMARY's. */
  restoreTarget(primary: string): RestoreTarget;
  /** The admin's private SSH key (a host path: the operator's machine). */
  readonly adminKey: string;
  /** The age identity the lab's backups are encrypted to (a host path: the operator's machine). */
  readonly backupIdentity?: string;
  /** Runs a bash script as root on a droplet over SSH from the client namespace (the admin's machine), `input` on its stdin. */
  ssh(name: string, script: string, input?: string): CommandResult;
  /** Injects a fault into one droplet (see faults.ts), logged with a timestamp; returns what happened. */
  fault(droplet: string, kind: FaultKind, unitOrDelay?: string | number): Promise<string>;
  /** From now on the lab's DNS gives no answer for these names (fully qualified); `[]` heals. */
  failNames(names: readonly string[]): void;
  /** Which droplet holds each reserved IP now (the API emulator moves them). */
  reservedIpHolder(ip: string): string | undefined;
  /** The API emulator's request log (host path). */
  apiLog(): string | undefined;
  /** The Spaces emulator's request log (host path), undefined when the stack has no bucket. */
  spacesLog(): string | undefined;
  /** The alert receiver's file (host path): every POST from Alertmanager, one JSON object a line (alert-webhook.ts). */
  alertsFile(): string | undefined;
}

/** Stand-ins for values that only exist after `terraform apply`. */
export function labComputedValues(state?: LabState): ComputedValues {
  return {
    publicRange: PUBLIC_RANGE,
    firstPublicHost: FIRST_DROPLET_PUBLIC_HOST,
    firstReservedHost: FIRST_RESERVED_IP_HOST,
    firstPrivateHost: FIRST_DROPLET_PRIVATE_HOST,
    password: randomPassword,
    spacesKey: randomSpacesKey,
    // What `TF_VAR_failover_token` gives Terraform: the token the stack was synthesized with.
    variables: { [FAILOVER_TOKEN_VARIABLE]: state?.failoverToken ?? makeLabToken() },
  };
}

/**
 * Brings the lab up: the ACME CA's certificates, the stack synthesized with
 * `env` and the lab's overrides, guard routes, base rootfs, network, apt
 * proxy, ACME CA, firewalls, droplets booted in parallel, cloud-init waited for.
 *
 * On any failure it prints what it knows, tears everything down and throws.
 */
export async function up(env: NodeJS.ProcessEnv, interrupted: () => boolean): Promise<Lab> {
  if (readState()) throw new Error(`a lab is already up (state in ${stateDir()}): run \`npm run lab:down\` first`);
  const state = newState();
  saveState(state);
  const startedAt = Date.now();
  const cold = !baseCached();
  try {
    // The stack embeds the CA of pebble's HTTPS certificate: make it first.
    const acmeFiles = createAcmeCertificates(state);
    state.failoverToken = makeLabToken();
    const overrides = labOverrides(
      acmeDirectoryUrl(),
      acmeFiles.serverCaFile,
      state.failoverToken,
      createBackupIdentity(state),
      env.FOOBAR_ADMIN_CIDRS,
      env.FOOBAR_MONITORING,
    );
    state.synthDir = path.join(stateDir(), "synth");
    saveState(state);
    const tf = synthesizeStack(state.synthDir, env, overrides);
    log(`synthesized the stack with lab settings: ${describeOverrides(overrides)}`);
    const stack = resolveStack(tf, labComputedValues(state));
    if (rangesOverlap(stack.vpc.ipRange, PUBLIC_RANGE)) {
      throw new Error(`the VPC range ${stack.vpc.ipRange} overlaps the lab's public range ${PUBLIC_RANGE}`);
    }
    state.stack = stack;
    saveState(state);

    // Before any namespace or link exists.
    // Not 169.254.169.254 itself: the host reaches its own metadata service
    // there; the lab switch keeps link-local traffic off the host's uplink.
    addGuardRoutes(state, [PUBLIC_RANGE, stack.vpc.ipRange, LINK_LOCAL_RANGE]);
    log(`host guard routes: unreachable ${PUBLIC_RANGE}, ${stack.vpc.ipRange}, ${LINK_LOCAL_RANGE}`);
    createAdminKey(state);
    const base = ensureBase();
    state.base = base;
    saveState(state);
    stopIf(interrupted);

    createSwitch(state);
    await startAptProxy(state);
    addClient(state, stack.records);
    addAcmeHost(state);
    await startAcme(state, siteAddress(stack));
    stopIf(interrupted);
    stack.droplets.forEach((droplet) => {
      const ns = addDropletNetwork(state, droplet, stack.vpc.ipRange);
      applyNftables(ns, labFirewall(stack, droplet));
    });
    addMetadataHost(
      state,
      stack.droplets.map((d) => d.name),
    );
    await startMetadata(state, stack, Number(PUBLIC_RANGE.split("/")[1]));
    addDnsHost(state);
    await startDns(state, stack.records);
    for (const reserved of stack.reservedIps) {
      if (reserved.assignedTo) assignReservedIp(state, reserved.ip, reserved.assignedTo);
    }
    addApiHost(state);
    await startApi(state, {
      token: state.failoverToken,
      delayMs: apiDelayMs(env),
      region: stack.droplets[0]?.region ?? "",
      certFile: acmeFiles.apiCertFile,
      keyFile: acmeFiles.apiKeyFile,
    });
    if (stack.spaces) {
      addSpacesHost(state);
      await startSpaces(state, stack.spaces, { certFile: acmeFiles.spacesCertFile, keyFile: acmeFiles.spacesKeyFile });
    }
    // Always, and before any droplet boots: mon-01's first alert finds it, and an apply may turn monitoring on.
    addHooksHost(state);
    await startAlertReceiver(state);
    log(
      `network: ${stack.droplets.length} droplet namespace(s), ${CLIENT_NS}, ${ACME_NS}, ${METADATA_NS}, ${DNS_NS}, ${API_NS}${stack.spaces ? `, ${SPACES_NS}` : ""}, ${HOOKS_NS}, firewalls applied`,
    );
    for (const volume of stack.volumes) createVolume(state, volume);
    stopIf(interrupted);

    for (const droplet of stack.droplets) {
      prepareDroplet(state, base, droplet, dropletNamespace(droplet.name));
      await bootDroplet(state, droplet.name);
    }
    const timeout = bootTimeoutSeconds();
    log(`booting ${stack.droplets.map((d) => d.name).join(", ")} (cloud-init timeout ${timeout}s)`);
    const names = stack.droplets.map((d) => d.name);
    const failed = await waitForCloudInit(state, names, timeout, interrupted);
    if (failed.length > 0) {
      for (const { name, reason } of interrupted() ? [] : failed) {
        process.stdout.write(`\n${name}: ${reason}\n${cloudInitReport(state, name)}\n`);
      }
      throw new Error(`cloud-init did not finish cleanly on ${failed.map((f) => `${f.name} (${f.reason})`).join(", ")}`);
    }
    keepCloudFirewall(state, stack);
    recordTiming(cold ? "cold up" : "warm up", (Date.now() - startedAt) / 1000);
    return attach(state);
  } catch (error) {
    log("up failed: tearing the lab down");
    const removed = await down();
    log(`lab is down (${removed.length} item(s) removed)`);
    throw error;
  }
}

/**
 * Tears down everything the state file records; safe to run any number of
 * times, also after a crash. Returns what it removed.
 */
export async function down(): Promise<string[]> {
  const state = readState();
  if (!state) return [];
  const removed: string[] = [];
  removed.push(...(await teardownDroplets(state)));
  log("droplets: stopped and unmounted");
  removed.push(...(await teardownCgroups(state, () => sleep(500))));
  saveState(state);
  log("cgroups: removed");
  removed.push(...teardownVolumes(state));
  log("volumes: removed");
  // Before the network: a namespace lives on while a process is still in it.
  removed.push(...(await stopAcme(state)));
  log("acme: stopped");
  removed.push(...(await stopMetadata(state)));
  log("metadata service: stopped");
  removed.push(...(await stopDns(state)));
  log("dns: stopped");
  removed.push(...(await stopApi(state)));
  log("api: stopped");
  removed.push(...(await stopSpaces(state)));
  log("spaces: stopped");
  removed.push(...(await stopAlertReceiver(state)));
  log("alert receiver: stopped");
  removed.push(...(await stopAptProxy(state)));
  log("apt proxy: stopped");
  removed.push(...teardownNetwork(state));
  if (state.synthDir) fs.rmSync(state.synthDir, { recursive: true, force: true });
  // The faults were printed as they happened; the log is for the lab that is up.
  fs.rmSync(path.join(stateDir(), "faults.log"), { force: true });
  fs.rmSync(reservedIpHoldersFile(), { force: true });
  removeStateFile();
  // Only empty directories: anything else left there is not ours to delete.
  for (const dir of [path.join(stateDir(), "droplets"), stateDir()]) {
    if (fs.existsSync(dir) && fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
  }
  return removed;
}

/**
 * What of a lab is still on the host: namespaces, cgroups, guard routes,
 * mounts, loop devices and processes that belong to the lab. Looks only;
 * never removes or signals anything. Empty after a clean `down`.
 */
export function leftovers(): string[] {
  const found: string[] = [];
  const state = stateDir();
  for (const ns of listNamespaces().filter((name) => name.startsWith(DROPLET_NS_PREFIX))) found.push(`namespace ${ns}`);
  for (const hierarchy of cgroupHierarchies()) {
    const dir = path.join(hierarchy.mountPoint, hierarchy.ownPath, LAB_CGROUP);
    if (fs.existsSync(dir)) found.push(`cgroup ${dir}`);
  }
  for (const line of tryRun("ip", ["-4", "route", "show", "table", "all"]).stdout.split("\n")) {
    if (line.includes(`metric ${GUARD_ROUTE_METRIC}`)) found.push(`route ${line.trim()}`);
  }
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mountPoint = line.split(" ")[4] ?? "";
    if (mountPoint.startsWith(state) || mountPoint.startsWith("/run/systemd/nspawn/propagate/")) found.push(`mount ${mountPoint}`);
  }
  for (const line of tryRun("losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"]).stdout.split("\n")) {
    if (line.includes(state)) found.push(`loop device ${line.trim()}`);
  }
  for (const entry of fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)) {
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      continue; // Gone already.
    }
    if (cmdline.includes(state) && !cmdline.includes("lab/cli.ts")) found.push(`process ${entry}: ${cmdline.trim().slice(0, 100)}`);
  }
  return found;
}

/** A `Lab` for the lab that is up, from its state file. */
export function attachRunning(): Lab {
  const state = readState();
  if (!state?.stack) throw new Error("no lab is up: run `npm run lab` first");
  return attach(state);
}

function attach(state: LabState): Lab {
  const acme = state.acme?.endpoints;
  if (!acme) throw new Error("the lab's ACME CA is not up: run `npm run lab:down`, then `npm run lab`");
  const lab: Lab = {
    // A getter: `apply` changes the stack under a running lab.
    get stack() {
      return state.stack!;
    },
    acme,
    baseRootfs: state.base ?? "",
    droplet(name) {
      const found = state.stack!.droplets.find((d) => d.name === name);
      if (!found) throw new Error(`no droplet named ${name} (have: ${state.stack!.droplets.map((d) => d.name).join(", ")})`);
      return found;
    },
    apply: (env, replace = []) => applyChanges(state, env, replace, () => false),
    deploy: (env, say) => labDeploy(state, env, say),
    acmeOrders: () => ordersPlaced(state),
    acmeValidatesAt: (ipv4) => validateNamesAt(state, ipv4 ?? siteAddress(state.stack!)),
    volumeDevice: (name) => state.volumes?.[name]?.loop,
    rollout: (env, progress) => {
      const droplets = state.stack!.droplets;
      const lbs = droplets.filter((d) => isLoadBalancer(d.name));
      if (lbs.length === 0) throw new Error("the stack has no load balancer");
      const target: RolloutTarget = {
        loadBalancers: lbs.map((lb) => lb.name),
        // HAProxy's server names are the web servers' labels (web-01, …), as in `npm run rollout`.
        webServers: droplets
          .filter((d) => haproxyServerName(d.name) !== undefined)
          .map((d) => ({ name: haproxyServerName(d.name)!, host: d.name })),
        run: (name, script, input) => lab.ssh(name, script, input),
      };
      return rollout(target, releaseFromSettings(loadSettings(env)), progress);
    },
    ssh: (name, script, input) => sshFromClient(state, lab.droplet(name).publicIpv4, script, input),
    backupIdentity: state.backupIdentity?.file,
    adminKey: state.adminKey ?? "",
    restoreTarget: (primary) => {
      const webs = state.stack!.droplets.filter((d) => haproxyServerName(d.name) !== undefined);
      const droplet = (label: string) => webs.find((d) => haproxyServerName(d.name) === label)!;
      return {
        webServers: webs.map((d) => haproxyServerName(d.name)!),
        primary,
        run: (label, script) => sshFromClient(state, droplet(label).publicIpv4, script),
        command: (label, script) => sshFromClientCommand(state, droplet(label).publicIpv4, script),
      };
    },
    initPid: (name) => containerInit(state, name),
    execIn: (name, cmd, timeoutMs, input) => execInDroplet(state, name, cmd, timeoutMs, input),
    client: (cmd, timeoutMs) => tryRun("ip", ["netns", "exec", CLIENT_NS, ...cmd], { timeoutMs: timeoutMs ?? 60_000 }),
    powerOff: async (name) => {
      await powerOffDroplet(state, name);
    },
    powerOn: (name) => powerOnDroplet(state, name),
    reservedIpHolder: (ip) => reservedIpHolders()[ip],
    failNames: (names) => failNames(state, names),
    apiLog: () => apiLogFile(state),
    spacesLog: () => spacesLog(state),
    alertsFile: () => alertsFile(state),
    fault: (droplet, kind, unitOrDelay) =>
      injectFault(
        { dropletNames: state.stack!.droplets.map((d) => d.name), execIn: lab.execIn, powerOff: lab.powerOff, powerOn: lab.powerOn },
        typeof unitOrDelay === "number"
          ? { droplet, kind, delayMs: unitOrDelay }
          : kind === "partition"
            ? { droplet, kind, from: unitOrDelay }
            : { droplet, kind, unit: unitOrDelay },
      ),
  };
  return lab;
}

/** The droplet's cloud firewalls as the lab enforces them: the stack's rules, and the apt proxy. */
export function labFirewall(stack: LabStack, droplet: LabDroplet): string {
  return renderFirewall(stack, droplet, FIREWALL_TABLE, { aptProxyAddress: UPLINK_ADDRESS, aptProxyPort: APT_PROXY_PORT });
}

/**
 * A DigitalOcean cloud firewall cannot be removed from inside the droplet, but
 * ours lives in the droplet's namespace, where root (e.g. an `nft flush
 * ruleset` from the user-data's own firewall setup) can delete it. Put it back
 * and say so, so the emulation stays faithful and the lead learns about it.
 */
function keepCloudFirewall(state: LabState, stack: LabStack): void {
  for (const droplet of stack.droplets) {
    const ns = state.droplets[droplet.name]!.namespace;
    const ruleset = labFirewall(stack, droplet);
    const expectsTable = ruleset.includes("{");
    if (expectsTable && !hasNftTable(ns, FIREWALL_TABLE)) {
      log(`WARNING ${droplet.name}: something inside the droplet removed the cloud firewall table; re-applied it`);
      applyNftables(ns, ruleset, containerInit(state, droplet.name));
    }
  }
}

/**
 * The load balancer's lab address, what the site's names resolve to: the
 * `www` A record's value, or the first A record's.
 */
export function siteAddress(stack: LabStack): string {
  const records = stack.records.filter((r) => r.type === "A");
  const site = records.find((r) => r.name === "www") ?? records[0];
  if (!site) throw new Error("the stack has no A record: the ACME CA would not know where to validate");
  return site.value;
}

function stopIf(interrupted: () => boolean): void {
  if (interrupted()) throw new Error("interrupted");
}
