/**
 * Runs a deploy plan (tools/deploy-plan.ts) through an executor: Terraform
 * for `npm run deploy`, the lab's apply for `npm run lab -- deploy`. The
 * order and the stops are here, once; how a droplet is drained, changed or
 * waited for is the executor's.
 *
 * A droplet's turn: hand over what it holds (the primary role, the site's
 * address), drain it on every load balancer, apply its change alone, wait
 * until it is ready and healthy, readmit it and wait until every load
 * balancer sees it UP; the primary's server then takes its role back. Once
 * every turn is done, the whole configuration is applied (it changes no
 * droplet any more). The first turn that fails stops the deploy: the
 * droplets after it are untouched, and the failed one stays drained.
 * Running the deploy again resumes: the plan then holds only what is left,
 * and a droplet a stopped deploy left drained is readmitted first, once
 * healthy.
 */
import { DeployPlan, DeployStep } from "./deploy-plan";

/** How a deploy reaches the site. Every method throws with a one-line reason when it cannot do its part. */
export interface DeployExecutor {
  /**
   * Applies these Terraform addresses, and only these (with what they depend on); `replace` (addresses
   * among them) are replaced whatever changed (`-replace`).
   */
  apply(targets: readonly string[], replace: readonly string[]): Promise<void>;
  /** Applies the whole configuration; refuses, changing nothing, when that would still replace or resize a droplet. */
  applyAll(): Promise<void>;
  /** The droplets that a stopped deploy left drained on a load balancer. */
  drained(): Promise<readonly string[]>;
  /** Hands the primary role to the freshest healthy replica (a planned switchover); resolves with its name. */
  switchPrimaryFrom(droplet: string): Promise<string>;
  /** Waits until this web server is the writable primary (after the primary record named it). */
  primaryIs(droplet: string): Promise<void>;
  /** Hands the site's address to the other load balancer of the pair; resolves with its name. */
  moveAddressFrom(droplet: string): Promise<string>;
  /** Stops sending it new requests on every load balancer, and waits for those in flight. */
  drain(droplet: string): Promise<void>;
  /** Waits until the droplet has booted (cloud-init done) and its service answers its health check on itself. */
  booted(droplet: string): Promise<void>;
  /** Waits until the droplet has booted and every load balancer has checked it healthy at its address now. */
  ready(droplet: string): Promise<void>;
  /** Sends it requests again, and waits until every load balancer sees it UP. */
  readmit(droplet: string): Promise<void>;
}

/** Why a deploy stopped, and how to go on. */
export class DeployStopped extends Error {
  constructor(
    /** What failed: a droplet's turn, the changes that go at once, a droplet left drained. */
    readonly where: string,
    readonly reason: string,
    /** The droplets whose turn did not come. */
    readonly untouched: readonly string[],
  ) {
    super(
      `${where}: ${reason}; ${untouched.length > 0 ? `untouched: ${untouched.join(", ")}; ` : ""}` +
        "once the cause is fixed, run the deploy again: it goes on from here",
    );
  }
}

function stop(where: string, error: unknown, rest: readonly DeployStep[]): never {
  throw new DeployStopped(
    where,
    error instanceof Error ? error.message : String(error),
    rest.map((s) => s.droplet),
  );
}

/** One droplet's turn, each action said as it is done. */
async function turn(step: DeployStep, executor: DeployExecutor, say: (line: string) => void): Promise<void> {
  if (step.handOver === "primary") say(`${step.droplet}: the primary role moved to ${await executor.switchPrimaryFrom(step.droplet)}`);
  if (step.handOver === "address") say(`${step.droplet}: the site's address moved to ${await executor.moveAddressFrom(step.droplet)}`);
  await executor.drain(step.droplet);
  say(`${step.droplet}: drained`);
  await executor.apply(step.targets, step.action === "replace" ? [step.address] : []);
  say(`${step.droplet}: ${step.action === "replace" ? "replaced" : "resized"} (${step.targets.length} change(s))`);
  await executor.ready(step.droplet);
  await executor.readmit(step.droplet);
  say(`${step.droplet}: healthy and back in rotation`);
  if (step.then) {
    await executor.apply(step.then, []);
    const primary = step.primaryAfter ?? step.droplet;
    await executor.primaryIs(primary);
    say(`${primary}: the primary, as the configuration names it`);
  }
}

/**
 * Runs a plan: first readmits what a stopped deploy left drained, then the
 * changes that go at once, then names the new web servers once they are
 * healthy, then each droplet's turn, then the whole configuration.
 *
 * @throws DeployStopped at the first failure, saying what is untouched and how to go on.
 */
export async function runDeploy(plan: DeployPlan, executor: DeployExecutor, say: (line: string) => void = () => {}): Promise<void> {
  for (const droplet of await executor.drained()) {
    try {
      await executor.ready(droplet);
      await executor.readmit(droplet);
      say(`${droplet}: left drained by a stopped deploy; healthy, back in rotation`);
    } catch (error) {
      stop(`${droplet}, left drained by a stopped deploy, is not healthy`, error, plan.steps);
    }
  }
  if (plan.atOnce.length > 0) {
    try {
      await executor.apply(plan.atOnce, []);
      say(`applied at once: ${plan.atOnce.length} change(s)`);
    } catch (error) {
      stop("the changes that go at once failed", error, plan.steps);
    }
  }
  if (plan.newServers.droplets.length > 0) {
    const names = plan.newServers.droplets.join(", ");
    try {
      for (const droplet of plan.newServers.droplets) await executor.booted(droplet);
      await executor.apply(plan.newServers.targets, []);
    } catch (error) {
      stop(`new web server ${names} not healthy; its name is not published yet`, error, plan.steps);
    }
    say(`${names}: healthy, then named (${plan.newServers.targets.length} record(s))`);
    for (const droplet of plan.newServers.droplets) {
      // Not a reason to stop: a resolver may still hold the name's earlier "no such name" for its negative TTL.
      await executor.readmit(droplet).then(
        () => say(`${droplet}: in rotation on every load balancer`),
        (error: Error) =>
          say(`${droplet}: not yet UP on every load balancer (${error.message}); HAProxy takes it once its resolver sees the name`),
      );
    }
  }
  for (const [index, step] of plan.steps.entries()) {
    try {
      await turn(step, executor, say);
    } catch (error) {
      stop(
        `${step.droplet} (${step.action}) failed; it is left as it is (drained, once its turn drained it)`,
        error,
        plan.steps.slice(index + 1),
      );
    }
  }
  try {
    await executor.applyAll();
  } catch (error) {
    stop("every droplet had its turn, but applying the whole configuration failed", error, []);
  }
  say("applied the whole configuration: nothing left to change");
}
