/**
 * `npm run lab -- deploy`: the deploy (tools/deploy.ts) against the lab that
 * is up. The sequencer and the executor are the real deploy's; only applying
 * is the lab's: each step's configuration is what `terraform apply -target`
 * would leave (tools/deploy-plan.ts `targetedConfiguration`), applied by the
 * lab's apply (a replacement boots a new droplet, a resize power-cycles one).
 * Every droplet is reached over SSH from the client namespace, as an
 * operator's machine reaches it.
 */
import { planChanges, TerraformJson } from "../../tools/changes";
import { runDeploy } from "../../tools/deploy";
import {
  describeDeploy,
  disturbsDroplet,
  outdatedDroplets,
  planDeploy,
  primaryRecordAddress,
  targetedConfiguration,
} from "../../tools/deploy-plan";
import { DeploySite, runningRoles, siteExecutor } from "../../tools/deploy-site";
import { LabState } from "../host/state";
import { applyConfiguration, currentConfiguration, synthesizeNext } from "./apply";
import { sshFromClient } from "./ssh";

/** Applies `next`, refusing (before any change) when it would disturb a droplet other than `allowed`. */
async function applyOnly(state: LabState, next: TerraformJson, replace: readonly string[], allowed: readonly string[]): Promise<void> {
  const before = currentConfiguration(state);
  const stray = planChanges(before, next, replace)
    .filter(disturbsDroplet)
    .filter((c) => !allowed.includes(c.address));
  if (stray.length > 0)
    throw new Error(`refused, nothing changed: this step would also ${stray.map((c) => `${c.action} ${c.address}`).join(", ")}`);
  const names = replace.map((address) => String(next.resource!.digitalocean_droplet![address.split(".")[1]!]!.name));
  await applyConfiguration(state, next, names, () => false);
}

/** The lab as a deploy reaches it, deploying `after`. */
function labSite(state: LabState, env: NodeJS.ProcessEnv, after: TerraformJson): DeploySite {
  const droplet = (name: string) => {
    const found = state.stack!.droplets.find((d) => d.name === name);
    if (!found) throw new Error(`no droplet named ${name}`);
    return found;
  };
  return {
    droplets: () => state.stack!.droplets.map((d) => d.name),
    privateAddress: (name) => droplet(name).privateIpv4,
    run: (name, script, input) => sshFromClient(state, droplet(name).publicIpv4, script, input),
    // A step's own droplet is among its targets; no other droplet may be disturbed.
    apply: (targets, replace) => applyOnly(state, targetedConfiguration(currentConfiguration(state), after, targets), replace, targets),
    async applyPrimaryRecordFor(label) {
      const naming = synthesizeNext(state, { ...env, FOOBAR_DB_PRIMARY: label });
      const record = primaryRecordAddress(naming);
      if (!record) throw new Error("the configuration has no primary record");
      await applyOnly(state, targetedConfiguration(currentConfiguration(state), naming, [record]), [], []);
    },
    applyAll: () => applyOnly(state, after, [], []),
  };
}

/**
 * Deploys what `env` synthesizes to the lab, one droplet at a time; `say`
 * hears the plan and each step. Throws DeployStopped at the first failure.
 */
export async function labDeploy(state: LabState, env: NodeJS.ProcessEnv, say: (line: string) => void): Promise<void> {
  const before = currentConfiguration(state);
  const after = synthesizeNext(state, env);
  const outdated = outdatedDroplets(before, after);
  const site = labSite(state, env, after);
  const plan = planDeploy(after, planChanges(before, after, outdated), runningRoles(site));
  if (outdated.length > 0) say(`deploy: user-data or SSH keys changed on ${outdated.join(", ")}: each is replaced in its turn`);
  for (const line of describeDeploy(plan)) say(`deploy: ${line}`);
  await runDeploy(plan, siteExecutor(site), say);
}
