/**
 * `npm run lab -- apply [--replace <droplet>]...`: changes the running lab the
 * way `terraform apply` would change the deployment, from the stack as the
 * current settings synthesize it.
 *
 * The plan is the project's own (`tools/changes.ts`, the provider's ForceNew
 * rules): a droplet whose ForceNew arguments changed, or that is named with
 * `--replace` (`terraform apply -replace`), is destroyed and then created
 * again, with a new id, new addresses and a blank disk, as on DigitalOcean;
 * its volumes are kept and attached to the new droplet. Resources are
 * destroyed first, then created (Terraform's default order, all at once).
 * A droplet whose size changed is powered off and on again (DigitalOcean's
 * resize: same disk, same addresses), all of them at once.
 * DNS records and the reserved IP follow; every cloud firewall is
 * recomputed, since tag rules expand to addresses. A volume Terraform
 * forgets (its server left the configuration) keeps its loop device and its
 * data, as the volume stays in a DigitalOcean account. A change Terraform
 * would refuse (replacing a protected volume), or DigitalOcean would
 * (creating a volume whose name a kept one holds), stops before anything is
 * touched.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { planChanges, protectedVolumesAtRisk, ResourceChange, TerraformJson } from "../../tools/changes";
import { removeDropletCgroups } from "../host/cgroups";
import {
  addDropletNetwork,
  applyMetadataSwitchRules,
  applyNftables,
  assignReservedIp,
  moveReservedIp,
  removeDropletNetwork,
  updateClientHosts,
} from "../host/network";
import { log, sleep } from "../host/shell";
import { LabState, saveState } from "../host/state";
import { labComputedValues, labFirewall } from "../lab";
import { bootTimeoutSeconds, dropletNamespace, PUBLIC_RANGE, stateDir } from "../settings";
import { updateApiDroplets } from "./api";
import { updateDns } from "./dns";
import { bootDroplet, cloudInitReport, containerInit, powerOff, powerOn, prepareDroplet, removeDisk, waitForCloudInit } from "./droplets";
import { startMetadata, stopMetadata } from "./metadata";
import { labOverrides, STACK_NAME, synthesizeStack } from "./synth";
import { LabStack, resolveStack } from "./terraform";
import { createVolume } from "./volumes";

/** What `apply` did, for people and checks. */
export interface ApplyReport {
  readonly changes: readonly ResourceChange[];
  /** Droplets destroyed and created again, by name. */
  readonly replaced: readonly string[];
  readonly created: readonly string[];
  readonly deleted: readonly string[];
  /** Droplets powered off and on for a new size, by name. */
  readonly resized: readonly string[];
  /** One line per change: what, and why. */
  readonly lines: readonly string[];
}

function synthFile(dir: string): string {
  return path.join(dir, "stacks", STACK_NAME, "cdk.tf.json");
}

/**
 * Plans and applies the change from the lab's stack to the one `env`
 * synthesizes now.
 *
 * @param replace droplet names to replace whatever changed.
 * @throws Error, before touching anything, when Terraform would refuse the plan.
 */
export async function applyChanges(
  state: LabState,
  env: NodeJS.ProcessEnv,
  replace: readonly string[],
  interrupted: () => boolean,
): Promise<ApplyReport> {
  return applyConfiguration(state, synthesizeNext(state, env), replace, interrupted);
}

/** The configuration the lab's current settings synthesize, with its overrides; written to `synth-next`. */
export function synthesizeNext(state: LabState, env: NodeJS.ProcessEnv): TerraformJson {
  if (!state.stack || !state.synthDir || !state.acme?.endpoints) throw new Error("no lab is up: run `npm run lab` first");
  const overrides = labOverrides(
    state.acme.endpoints.directoryUrl,
    state.acme.endpoints.serverCaFile,
    state.failoverToken ?? "",
    state.backupIdentity?.recipient,
    env.FOOBAR_ADMIN_CIDRS,
    env.FOOBAR_MONITORING,
  );
  return synthesizeStack(path.join(stateDir(), "synth-next"), env, overrides) as TerraformJson;
}

/** The configuration the lab runs now (what Terraform's state would say). */
export function currentConfiguration(state: LabState): TerraformJson {
  if (!state.synthDir) throw new Error("no lab is up: run `npm run lab` first");
  return JSON.parse(fs.readFileSync(synthFile(state.synthDir), "utf8")) as TerraformJson;
}

/**
 * Plans and applies the change from the lab's stack to `after` (Terraform
 * JSON, its user-data inline), as `terraform apply` would.
 *
 * @param replace droplet names to replace whatever changed.
 * @throws Error, before touching anything, when Terraform would refuse the plan.
 */
export async function applyConfiguration(
  state: LabState,
  after: TerraformJson,
  replace: readonly string[],
  interrupted: () => boolean,
): Promise<ApplyReport> {
  const old = state.stack;
  if (!old || !state.synthDir) throw new Error("no lab is up: run `npm run lab` first");
  const before = currentConfiguration(state);
  const nextDir = path.join(stateDir(), "synth-next");
  fs.mkdirSync(path.dirname(synthFile(nextDir)), { recursive: true });
  fs.writeFileSync(synthFile(nextDir), JSON.stringify(after, null, 2));
  const forced = replace.map((name) => {
    const droplet = old.droplets.find((d) => d.name === name);
    if (!droplet) throw new Error(`--replace ${name}: no droplet of that name (have: ${old.droplets.map((d) => d.name).join(", ")})`);
    return droplet.address;
  });
  const changes = planChanges(before, after, forced);
  const refused = protectedVolumesAtRisk(before, changes);
  if (refused.length > 0) {
    throw new Error(
      `apply refused, nothing changed: it would replace ${refused.join(", ")}, protected by prevent_destroy (FOOBAR_ALLOW_DATA_LOSS=true allows it)`,
    );
  }
  const volumeName = (address: string) => String(after.resource?.digitalocean_volume?.[address.slice("digitalocean_volume.".length)]?.name);
  const taken = changes
    .filter((c) => c.type === "digitalocean_volume" && c.action === "create")
    .map((c) => volumeName(c.address))
    .filter((name) => state.volumes?.[name]);
  if (taken.length > 0) {
    throw new Error(
      `apply refused, nothing changed: DigitalOcean refuses a second volume named ${taken.join(", ")} (409 already exists): ` +
        "it was kept when its server left the configuration; import it or delete it first (the runbook says how)",
    );
  }

  const renew = new Set(changes.filter((c) => c.action === "replace" || c.action === "create").map((c) => c.address));
  const stack = resolveStack(after, { ...labComputedValues(state), previous: { attrs: old.computed, renew } });
  const byAddress = (s: LabStack, address: string) => s.droplets.find((d) => d.address === address);
  const action = (address: string) => changes.find((c) => c.address === address)?.action;
  const replaced = old.droplets.filter((d) => action(d.address) === "replace").map((d) => d.name);
  const deleted = old.droplets.filter((d) => action(d.address) === "delete").map((d) => d.name);
  const created = stack.droplets.filter((d) => action(d.address) === "create").map((d) => d.name);
  // A new size: DigitalOcean powers the droplet off, resizes it and powers it on (same disk, same addresses).
  const resized = old.droplets
    .filter((d) => changes.some((c) => c.address === d.address && c.action === "update" && c.arguments.includes("size")))
    .map((d) => d.name);
  const lines = changes.map((c) => {
    const name = byAddress(stack, c.address)?.name ?? byAddress(old, c.address)?.name;
    const why = c.arguments.length ? ` (${c.arguments.join(", ")})` : "";
    return `${c.action} ${c.address}${name ? ` [${name}]` : ""}${why}`;
  });
  for (const line of lines) log(`apply: ${line}`);
  if (changes.length === 0) log("apply: no changes");

  // A deleted assignment unassigns the address (the provider's Delete); a forgotten one leaves it where it is.
  if (changes.some((c) => c.type === "digitalocean_reserved_ip_assignment" && c.action === "delete")) {
    for (const reserved of old.reservedIps.filter((r) => !r.placedOnCreate && r.assignedTo)) {
      moveReservedIp(state.namespaces, reserved.ip, undefined);
      log(`apply: unassigned ${reserved.ip}`);
    }
  }

  // Destroy, then create: Terraform's default for a replacement.
  // Each step tolerates what an interrupted apply already removed.
  const destroy = [...replaced, ...deleted];
  await Promise.all(destroy.filter((name) => state.droplets[name]).map((name) => powerOff(state, name)));
  for (const name of destroy) {
    if (state.droplets[name]) removeDisk(state, name);
    await removeDropletCgroups(state, name, () => sleep(500));
    removeDropletNetwork(state, name);
    log(`apply: destroyed ${name}`);
  }
  state.stack = stack;
  fs.rmSync(state.synthDir, { recursive: true, force: true });
  fs.renameSync(nextDir, state.synthDir);
  saveState(state);

  const fresh = stack.droplets.filter((d) => replaced.includes(d.name) || created.includes(d.name));
  for (const droplet of fresh) addDropletNetwork(state, droplet, stack.vpc.ipRange);
  // Tag rules expand to addresses, which changed: every droplet's firewall is recomputed.
  for (const droplet of stack.droplets) {
    applyNftables(
      dropletNamespace(droplet.name),
      labFirewall(stack, droplet),
      containerInit(state, droplet.name),
      state.droplets[droplet.name]?.merged,
    );
  }
  applyMetadataSwitchRules(stack.droplets.map((d) => d.name));
  await stopMetadata(state);
  await startMetadata(state, stack, Number(PUBLIC_RANGE.split("/")[1]));
  updateApiDroplets(state);
  for (const volume of stack.volumes) createVolume(state, volume);
  updateDns(state, stack.records);
  updateClientHosts(stack.records);
  for (const reserved of stack.reservedIps) {
    if (!reserved.assignedTo) continue;
    // An address placed by its own `droplet_id` (a load balancer pair moves
    // it at run time; Terraform ignores changes) is placed once, when created.
    if (reserved.placedOnCreate && old.reservedIps.some((r) => r.address === reserved.address)) continue;
    assignReservedIp(state, reserved.ip, reserved.assignedTo);
  }

  for (const droplet of fresh) {
    prepareDroplet(state, state.base!, droplet, dropletNamespace(droplet.name));
    await bootDroplet(state, droplet.name);
    log(
      `apply: created ${droplet.name} (public ${droplet.publicIpv4}, private ${droplet.privateIpv4}${droplet.volumes.length ? `, volumes ${droplet.volumes.join(", ")}` : ""})`,
    );
  }
  // All at once, as Terraform resizes them.
  await Promise.all(
    resized.map(async (name) => {
      await powerOff(state, name);
      await powerOn(state, name);
      log(`apply: resized ${name} (powered off, then on)`);
    }),
  );
  const failed = await waitForCloudInit(
    state,
    fresh.map((d) => d.name),
    bootTimeoutSeconds(),
    interrupted,
  );
  if (failed.length > 0) {
    for (const { name, reason } of failed) process.stdout.write(`\n${name}: ${reason}\n${cloudInitReport(state, name)}\n`);
    throw new Error(`apply: cloud-init did not finish cleanly on ${failed.map((f) => f.name).join(", ")}`);
  }
  return { changes, replaced, created, deleted, resized, lines };
}
