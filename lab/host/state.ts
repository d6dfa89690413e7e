/**
 * The lab's state file: everything `up` created, so `down` can undo it even
 * after a crash, and so later commands can find the running lab.
 *
 * Each step records what it is about to create *before* creating it; `down`
 * tolerates entries that were never created.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import type { LabStack } from "../emulations/terraform";
import { stateDir, stateFile } from "../settings";

export interface DropletState {
  readonly name: string;
  readonly namespace: string;
  /** Directory holding upper/, work/, merged/ and console.log. */
  readonly dir: string;
  readonly merged: string;
  /** The NoCloud instance-id seeded by this `up`; kept across power cycles. */
  readonly instanceId: string;
  /** The droplet's own cgroup in each host hierarchy (see cgroups.ts); its nspawn runs in them. */
  readonly cgroups: readonly string[];
  /** PID of the running systemd-nspawn, absent while powered off. */
  nspawnPid?: number;
}

export interface VolumeState {
  /** The sparse file holding the volume's blocks. */
  readonly file: string;
  /** The loop device over it, such as `/dev/loop3`, once attached. */
  loop?: string;
}

export interface AcmeState {
  /** Directory holding the certificates, pebble's config and both logs. */
  readonly dir: string;
  /** PID of pebble-challtestsrv (pebble's DNS), absent until started. */
  challtestsrvPid?: number;
  /** PID of pebble, absent until started. */
  pebblePid?: number;
  /** Set once pebble answers and its issuing root has been fetched. */
  endpoints?: AcmeEndpoints;
}

/** What checks need to know about the lab's ACME CA; files are host paths, readable from any lab namespace. */
export interface AcmeEndpoints {
  /** The ACME directory the stack was synthesized with, such as `https://198.51.100.3/dir`. */
  readonly directoryUrl: string;
  /** PEM of the CA that signed pebble's own HTTPS certificate (the stack's `FOOBAR_ACME_CA_FILE`). */
  readonly serverCaFile: string;
  /** PEM of the root pebble issues site certificates under; new on every `up`. */
  readonly issuingRootFile: string;
}

export interface LabState {
  readonly version: 1;
  readonly startedAt: string;
  /** Host routes (CIDR, metric) that keep lab addresses off the host's default route. */
  guardRoutes: { cidr: string; metric: number }[];
  /** Links created in the host namespace. */
  hostLinks: string[];
  /** Network namespaces, in creation order. */
  namespaces: string[];
  /** `/etc/netns/<ns>` directories written for `ip netns exec`. */
  netnsEtcDirs: string[];
  /** Cgroup directories created for the droplets, one per droplet and hierarchy. */
  cgroups: string[];
  proxy?: { pid?: number; dir: string };
  /** Private key of the lab's admin (ssh.ts), installed for root on every droplet. */
  adminKey?: string;
  /** The lab's DNS (dnsmasq): its directory (hosts file, log) and its PID once started. */
  dns?: { pid?: number; dir: string; /** Names a fault makes fail to resolve (dns.ts failNames). */ failing?: string[] };
  /** Loop devices backing the stack's volumes, by volume name; they outlive replaced droplets. */
  volumes?: Record<string, VolumeState>;
  /** The DigitalOcean API emulator: its directory (config, request log) and its PID once started. */
  api?: { pid?: number; dir: string };
  /** The Spaces emulator: its directory (config, request log, objects) and its PID once started. */
  spaces?: { pid?: number; dir: string };
  /** The alert receiver (the operator's webhook): its directory (config, received alerts, request log) and its PID once started. */
  hooks?: { pid?: number; dir: string };
  /** The API token the stack was synthesized with (`FOOBAR_FAILOVER_TOKEN`), made per lab. */
  failoverToken?: string;
  /** The age identity the lab's backups are encrypted to (a host path), and its recipient. */
  backupIdentity?: { file: string; recipient: string };
  /** The metadata service: its directory (config, request log) and its PID once started. */
  metadata?: { pid?: number; dir: string };
  /** The ACME CA: its files, its two processes, and what checks need to know about it. */
  acme?: AcmeState;
  /** The shared base rootfs every droplet's overlay reads from. */
  base?: string;
  /** Where `up` synthesized the stack (`<dir>/stacks/<stack>/cdk.tf.json`). */
  synthDir?: string;
  droplets: Record<string, DropletState>;
  /** The resolved stack the lab was built from (lets `check` attach to a running lab). */
  stack?: LabStack;
}

export function newState(): LabState {
  return {
    version: 1,
    startedAt: new Date().toISOString(),
    guardRoutes: [],
    hostLinks: [],
    namespaces: [],
    netnsEtcDirs: [],
    cgroups: [],
    droplets: {},
  };
}

/** The state of the lab that is up (or half up), if any. */
export function readState(): LabState | undefined {
  const file = stateFile();
  if (!fs.existsSync(file)) return undefined;
  const state = JSON.parse(fs.readFileSync(file, "utf8")) as LabState;
  // A state file written before the lab had per-droplet cgroups.
  state.cgroups ??= [];
  return state;
}

/** Writes the state atomically (a crash leaves the old or the new file, never half of one). */
export function saveState(state: LabState): void {
  // Traversable: apt-cacher-ng runs as its own user from a directory under it.
  fs.mkdirSync(stateDir(), { recursive: true, mode: 0o755 });
  const file = stateFile();
  const tmp = `${file}.${process.pid}.tmp`;
  // The state holds the resolved stack, generated passwords included: root only.
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export function removeStateFile(): void {
  fs.rmSync(stateFile(), { force: true });
}

/** Adds a value to a list in the state once, and saves. */
export function remember<T>(state: LabState, list: T[], value: T): void {
  if (!list.some((item) => JSON.stringify(item) === JSON.stringify(value))) list.push(value);
  saveState(state);
}

export function dropletDir(name: string): string {
  return path.join(stateDir(), "droplets", name);
}
