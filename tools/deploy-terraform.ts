/**
 * `npm run deploy [-- <stack>] [--yes]`: deploys the synthesized stack with
 * Terraform, one disruptive change at a time (tools/deploy-plan.ts orders
 * them, tools/deploy.ts runs them, tools/deploy-site.ts drains, waits and
 * hands over over SSH).
 *
 * 1. Synthesizes the stack and runs `terraform init` in its folder, as
 *    `cdktf deploy` would.
 * 2. Plans twice: the configuration as it is, and a copy without
 *    `ignore_changes` (droplets ignore `user_data` and `ssh_keys`): a droplet
 *    the copy would replace for those alone has not received a setting yet,
 *    and is replaced in its turn (`-replace`).
 * 3. Asks the droplets who is the primary and the pair's master, prints the
 *    order and what each step costs, and asks (`--yes` skips the question).
 * 4. Each apply is planned first with its `-target`s and refused, before any
 *    change, when it would disturb a droplet that is not its own.
 *
 * Credentials as for `cdktf deploy`: DIGITALOCEAN_TOKEN (and the Spaces keys
 * with a state or backup bucket); SSH as root to every droplet, as
 * `npm run rollout`.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline/promises";

import { App } from "cdktf";

import { FoobarStack } from "../constructs";
import { loadStacks } from "../environments";
import { SettingsError } from "../settings";
import { ResourceChange, TerraformJson } from "./changes";
import { quietEnvironment } from "./cli";
import { DeployStopped, runDeploy } from "./deploy";
import { describeDeploy, disturbsDroplet, planDeploy, primaryRecordAddress } from "./deploy-plan";
import { DeploySite, runningRoles, siteExecutor } from "./deploy-site";
import { actionOf } from "./real-plans";
import { sshRun } from "./rollout";
import { PlanJson, resourceChangesOf, withoutLifecycle } from "./terraform-state";

/** A saved plan's changes in the planner's words: each resource's action, and the top-level arguments that change. */
export function changesOfPlan(plan: PlanJson): ResourceChange[] {
  return resourceChangesOf(plan).flatMap((c): ResourceChange[] => {
    const action = actionOf(c.change.actions);
    if (!action) return [];
    const before = (c.change.before ?? {}) as Record<string, unknown>;
    const after = (c.change.after ?? {}) as Record<string, unknown>;
    const unknown = (c.change.after_unknown ?? {}) as Record<string, unknown>;
    const changed =
      action === "replace"
        ? (c.change.replace_paths ?? []).map((p) => String(p[0]))
        : action === "update"
          ? [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
              (key) => unknown[key] === true || JSON.stringify(before[key]) !== JSON.stringify(after[key]),
            )
          : [];
    return [{ address: c.address, type: c.type, action, arguments: [...new Set(changed)].sort() }];
  });
}

/**
 * The droplets the plan without `ignore_changes` replaces and the real plan
 * does not: their user-data or SSH keys changed, and nothing else did.
 */
export function outdatedOfPlans(real: PlanJson, stripped: PlanJson): string[] {
  const replacedInReal = new Set(
    changesOfPlan(real)
      .filter((c) => c.action === "replace")
      .map((c) => c.address),
  );
  return changesOfPlan(stripped)
    .filter((c) => c.type === "digitalocean_droplet" && c.action === "replace" && !replacedInReal.has(c.address))
    .map((c) => c.address);
}

/** What `terraform show -json` says of the droplets in the state: name → addresses. */
export function dropletsOfState(state: unknown): Map<string, { publicIpv4: string; privateIpv4: string }> {
  const resources =
    (state as { values?: { root_module?: { resources?: { type: string; values: Record<string, unknown> }[] } } }).values?.root_module
      ?.resources ?? [];
  return new Map(
    resources
      .filter((r) => r.type === "digitalocean_droplet")
      .map((r) => [
        String(r.values.name),
        { publicIpv4: String(r.values.ipv4_address), privateIpv4: String(r.values.ipv4_address_private) },
      ]),
  );
}

/** Runs Terraform in `dir`; throws with its last error line when it fails. */
function terraform(dir: string, args: readonly string[], env: NodeJS.ProcessEnv): string {
  const result = spawnSync("terraform", [`-chdir=${dir}`, ...args], { env, encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
  if (result.error) throw new Error(`terraform could not run (${result.error.message}): install Terraform 1.7 or later`);
  if (result.status !== 0) {
    const why = /Error: (.*)/.exec(result.stderr)?.[1] ?? (result.stderr.trim().split("\n").pop() || `exit ${result.status}`);
    throw new Error(`terraform ${args[0]} failed in ${dir}: ${why}`);
  }
  return result.stdout;
}

/** Plans `args` in `dir` into a saved plan file; returns its path and the plan. */
function savedPlan(dir: string, args: readonly string[], env: NodeJS.ProcessEnv): { file: string; plan: PlanJson } {
  const file = "foobar-deploy.tfplan";
  terraform(dir, ["plan", "-input=false", "-no-color", `-out=${file}`, ...args], env);
  return { file, plan: JSON.parse(terraform(dir, ["show", "-json", file], env)) as PlanJson };
}

/** A scratch copy of an initialised stack folder (same providers and backend, so the same state) holding `config`. */
function copyWith(dir: string, config: TerraformJson): string {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-deploy-"));
  fs.cpSync(dir, copy, { recursive: true });
  fs.writeFileSync(path.join(copy, "cdk.tf.json"), JSON.stringify(config, null, 2));
  return copy;
}

/** Synthesizes one stack into `outdir`, with `FOOBAR_DB_PRIMARY` replaced when `primary` is given. */
function synthesize(outdir: string, stackName: string, primary?: string): TerraformJson {
  const stack = loadStacks(process.env).find((s) => s.name === stackName)!;
  const app = new App({ outdir });
  new FoobarStack(app, stack.name, primary ? { ...stack.settings, databasePrimary: primary } : stack.settings);
  app.synth();
  return JSON.parse(fs.readFileSync(path.join(outdir, "stacks", stackName, "cdk.tf.json"), "utf8")) as TerraformJson;
}

/** Applies `args` in `dir` after planning them, refusing a plan that disturbs a droplet not in `allowed`. */
function guardedApply(dir: string, args: readonly string[], allowed: readonly string[], env: NodeJS.ProcessEnv): void {
  const { file, plan } = savedPlan(dir, args, env);
  const stray = changesOfPlan(plan)
    .filter(disturbsDroplet)
    .filter((c) => !allowed.includes(c.address));
  if (stray.length > 0)
    throw new Error(`refused, nothing changed: it would also ${stray.map((c) => `${c.action} ${c.address}`).join(", ")}`);
  terraform(dir, ["apply", "-input=false", "-no-color", file], env);
}

/** The site a Terraform deploy reaches: droplets from the state, SSH as root, applies in the stack's folder. */
function terraformSite(dir: string, stackName: string, env: NodeJS.ProcessEnv): DeploySite {
  let droplets = dropletsOfState(JSON.parse(terraform(dir, ["show", "-json"], env)));
  const refresh = () => (droplets = dropletsOfState(JSON.parse(terraform(dir, ["show", "-json"], env))));
  const droplet = (name: string) => {
    const found = droplets.get(name);
    if (!found) throw new Error(`the state has no droplet named ${name}`);
    return found;
  };
  return {
    droplets: () => [...droplets.keys()],
    privateAddress: (name) => droplet(name).privateIpv4,
    // A replaced droplet has a new host key: accepted on first sight, as a new droplet's is.
    run: (name, script, input) => sshRun(droplet(name).publicIpv4, script, input, ["StrictHostKeyChecking=accept-new"]),
    async apply(targets, replace) {
      guardedApply(dir, [...targets.map((t) => `-target=${t}`), ...replace.map((r) => `-replace=${r}`)], targets, env);
      refresh();
    },
    async applyPrimaryRecordFor(label) {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-deploy-synth-"));
      const naming = synthesize(out, stackName, label);
      const record = primaryRecordAddress(naming);
      if (!record) throw new Error("the configuration has no primary record");
      const copy = copyWith(dir, naming);
      try {
        guardedApply(copy, [`-target=${record}`], [], env);
      } finally {
        fs.rmSync(copy, { recursive: true, force: true });
        fs.rmSync(out, { recursive: true, force: true });
      }
      refresh();
    },
    async applyAll() {
      guardedApply(dir, [], [], env);
      refresh();
    },
  };
}

/** Whether to go on: `--yes`, or the operator's answer on a terminal (anything but yes changes nothing). */
async function confirmed(yes: boolean): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) throw new SettingsError("deploy asks before it changes anything: answer on a terminal, or pass --yes");
  const prompt = readline.createInterface({ input: process.stdin, output: process.stdout });
  const answer = await prompt.question("deploy: go on? [y/N] ");
  prompt.close();
  if (/^y(es)?$/i.test(answer.trim())) return true;
  console.log("deploy: nothing changed");
  return false;
}

async function main(args: readonly string[]): Promise<number> {
  const yes = args.includes("--yes");
  const named = args.filter((a) => a !== "--yes");
  const emptyConfig = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "foobar-terraformrc-")), "terraformrc");
  fs.writeFileSync(emptyConfig, "");
  const env = { ...quietEnvironment(process.env, emptyConfig), TF_IN_AUTOMATION: "1" } as NodeJS.ProcessEnv;
  try {
    const stacks = loadStacks(process.env);
    const stack = named[0] ? stacks.find((s) => s.name === named[0]) : stacks.length === 1 ? stacks[0] : undefined;
    if (!stack)
      throw new SettingsError(`deploy needs one of the stacks: ${stacks.map((s) => s.name).join(", ")} (npm run deploy -- <stack>)`);
    const say = (line: string) => console.log(`deploy: ${line}`);
    say(`synthesizing ${stack.name}`);
    const after = synthesize("cdktf.out", stack.name);
    const dir = path.join("cdktf.out", "stacks", stack.name);
    say("terraform init");
    terraform(dir, ["init", "-input=false", "-no-color"], env);
    say("planning (twice: as configured, and without ignore_changes, to find droplets a setting has not reached)");
    const real = savedPlan(dir, [], env).plan;
    const stripped = copyWith(dir, withoutLifecycle(after, ["ignore_changes"]));
    let outdated: string[];
    try {
      outdated = outdatedOfPlans(real, savedPlan(stripped, ["-lock=false"], env).plan);
    } finally {
      fs.rmSync(stripped, { recursive: true, force: true });
    }
    const changes = changesOfPlan(real).map((c) => (outdated.includes(c.address) ? { ...c, action: "replace" as const } : c));
    for (const address of outdated.filter((a) => !changes.some((c) => c.address === a))) {
      changes.push({ address, type: "digitalocean_droplet", action: "replace", arguments: ["user_data"] });
    }
    const site = terraformSite(dir, stack.name, env);
    if (site.droplets().length === 0) {
      // A first deploy: nothing runs yet, so nothing can be disturbed.
      say(`no droplet runs yet: applying everything at once (${changes.length} resource change(s))`);
      if (!(await confirmed(yes))) return 1;
      await site.applyAll();
      say("done");
      return 0;
    }
    const plan = planDeploy(after, changes, runningRoles(site));
    for (const line of describeDeploy(plan)) say(line);
    if (plan.atOnce.length === 0 && plan.steps.length === 0) {
      say("nothing to change");
      return 0;
    }
    if (!(await confirmed(yes))) return 1;
    const started = Date.now();
    await runDeploy(plan, siteExecutor(site), say);
    say(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return 0;
  } catch (error) {
    if (error instanceof SettingsError) console.error(`error: ${error.message}`);
    else if (error instanceof DeployStopped) console.error(`deploy stopped: ${error.message}`);
    else console.error(`deploy: ${(error as Error).message}`);
    return 1;
  } finally {
    fs.rmSync(path.dirname(emptyConfig), { recursive: true, force: true });
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (status) => process.exit(status),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
