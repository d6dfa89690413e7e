/**
 * The order of a deploy: which changes go at once, and which droplets are
 * changed one at a time, in what order and with what around them.
 *
 * `terraform apply` does a whole plan at once: every droplet resized, or
 * replaced, together. A deploy splits the same plan (tools/changes.ts):
 *
 * 1. **at once**: every change that disturbs no running droplet (DNS,
 *    firewalls, monitors, volumes grown, droplets created or removed), and
 *    that needs no droplet changed first;
 * 2. **one droplet at a time**: every droplet replaced or resized (a resize
 *    powers it off), with the changes that follow from it (its DNS records,
 *    the site's address on a load balancer). Web servers that replicate go
 *    first, then the primary's server, which hands the primary role to a
 *    replica first (a planned switchover); then the load balancers: the
 *    pair's backup, then the master, which hands the site's address over
 *    first; a single load balancer last of all, since replacing it is the
 *    one step that costs requests.
 *
 * Pure: the same steps drive Terraform (`npm run deploy`) and the lab's
 * apply (`npm run lab -- deploy`).
 */
import { INTERNAL_LABEL, isMonitoringServer, PRIMARY_DATABASE_LABEL } from "../names";
import { configOf, referencedResources, ResourceChange, TerraformJson } from "./changes";
import { haproxyServerName } from "./rollout";

/** What a droplet is to the site when the deploy starts (the running stack says; the configuration may not). */
export type DeployRole = "monitoring" | "replica" | "primary" | "backup-load-balancer" | "master-load-balancer" | "only-load-balancer";

/** What happens to one droplet in its step. */
export type DropletAction = "replace" | "resize";

/** One droplet's turn. */
export interface DeployStep {
  /** The droplet's name (`web-02`, `foobar-staging-lb-01`). */
  readonly droplet: string;
  /** The droplet's Terraform address (`-replace` takes it). */
  readonly address: string;
  readonly role: DeployRole;
  readonly action: DropletAction;
  /** What to do before the droplet leaves the site: hand the primary role, or the site's address, to another droplet. */
  readonly handOver?: "primary" | "address";
  /** Terraform addresses applied in this step (`-target`): the droplet's and those of changes that wait for it. */
  readonly targets: readonly string[];
  /**
   * Applied once the droplet is back in rotation: for the primary's server,
   * the primary record as the configuration declares it, so the role
   * returns only to a server that has caught up (and a record that follows
   * a replaced server's new address does not point at it while it boots).
   */
  readonly then?: readonly string[];
  /** With `then`: the web server the configuration names primary, waited for as the writable primary after it. */
  readonly primaryAfter?: string;
}

/** A whole deploy. */
export interface DeployPlan {
  /** Terraform addresses applied first, at once. */
  readonly atOnce: readonly string[];
  /**
   * Web servers the deploy creates, and the records that name them
   * (`web-03.internal`), applied only once they have booted and answer
   * their health check: HAProxy finds a slot's server by that name, and
   * HAProxy 2.8 sends requests to a slot that gains an address at once,
   * before any check. None when nothing is created.
   */
  readonly newServers: { readonly droplets: readonly string[]; readonly targets: readonly string[] };
  readonly steps: readonly DeployStep[];
}

/** The roles of the running droplets, by name. */
export interface RunningRoles {
  /** The web server that is the writable primary now (it may not be the one FOOBAR_DB_PRIMARY names). */
  readonly primary: string;
  /** The pair's master now (it holds the site's address); undefined with one load balancer. */
  readonly masterLoadBalancer?: string;
}

const DROPLET = "digitalocean_droplet";
const RECORD = "digitalocean_record";

/** The address of the record that names the MySQL primary (`mysql-primary.internal`), undefined without one. */
export function primaryRecordAddress(stack: TerraformJson): string | undefined {
  const name = `${PRIMARY_DATABASE_LABEL}.${INTERNAL_LABEL}`;
  const found = Object.entries(stack.resource?.[RECORD] ?? {}).find(([, config]) => config.name === name);
  return found && `${RECORD}.${found[0]}`;
}

/**
 * Droplets whose arguments the configuration tells Terraform to ignore
 * (`user_data`, `ssh_keys`: a change to either would replace the droplet
 * on every routine apply) differ between `before` and `after`: a setting
 * that only those carry has not reached the running droplet. The deploy
 * replaces each in its turn (`-replace`), so no setting stays "new
 * droplets only".
 */
export function outdatedDroplets(before: TerraformJson, after: TerraformJson): string[] {
  return Object.entries(after.resource?.[DROPLET] ?? {})
    .filter(([name, config]) => {
      const old = before.resource?.[DROPLET]?.[name];
      if (!old) return false;
      const ignored = (config.lifecycle as { ignore_changes?: unknown } | undefined)?.ignore_changes;
      const names = Array.isArray(ignored) ? (ignored as string[]) : [];
      return names.some((argument) => JSON.stringify(old[argument]) !== JSON.stringify(config[argument]));
    })
    .map(([name]) => `${DROPLET}.${name}`);
}

/** Droplet arguments whose change disturbs the droplet: `size` powers it off to resize it. */
const DISRUPTIVE_UPDATES: readonly string[] = ["size"];

/** Whether a change takes a droplet out of service: its replacement, or a resize. */
export function disturbsDroplet(change: ResourceChange): boolean {
  if (change.type !== DROPLET) return false;
  return change.action === "replace" || (change.action === "update" && change.arguments.some((a) => DISRUPTIVE_UPDATES.includes(a)));
}

function roleOf(name: string, roles: RunningRoles, loadBalancers: number): DeployRole {
  if (isMonitoringServer(name)) return "monitoring";
  if (haproxyServerName(name)) return name === roles.primary ? "primary" : "replica";
  if (loadBalancers < 2) return "only-load-balancer";
  return name === roles.masterLoadBalancer ? "master-load-balancer" : "backup-load-balancer";
}

/**
 * The order of roles in a deploy: the monitoring server (it serves no request, and is back to watch the rest),
 * replicas, the primary, then the load balancers (the master after its backup).
 */
const ROLE_ORDER: readonly DeployRole[] = [
  "monitoring",
  "replica",
  "primary",
  "backup-load-balancer",
  "master-load-balancer",
  "only-load-balancer",
];

/** Every resource an address depends on in `stack`, itself included (what `terraform apply -target` takes along). */
function dependencies(stack: TerraformJson, address: string, seen = new Set<string>()): Set<string> {
  if (seen.has(address)) return seen;
  seen.add(address);
  for (const ref of referencedResources(configOf(stack, address))) dependencies(stack, ref, seen);
  return seen;
}

/**
 * Splits a plan into what goes at once and the droplets' turns.
 *
 * @param after the configuration being deployed (Terraform JSON).
 * @param changes `planChanges(before, after)`.
 * @param roles who is the primary and the pair's master now.
 * @throws Error when `roles` names a droplet the configuration lacks.
 */
export function planDeploy(after: TerraformJson, changes: readonly ResourceChange[], roles: RunningRoles): DeployPlan {
  const droplets = Object.values(after.resource?.[DROPLET] ?? {}).map((config) => String(config.name));
  if (!droplets.includes(roles.primary)) throw new Error(`the primary ${roles.primary} is not among the droplets (${droplets.join(", ")})`);
  if (roles.masterLoadBalancer !== undefined && !droplets.includes(roles.masterLoadBalancer)) {
    throw new Error(`the load balancer ${roles.masterLoadBalancer} is not among the droplets (${droplets.join(", ")})`);
  }
  // The stack's droplets are web servers, load balancers and the monitoring server.
  const loadBalancers = droplets.filter((name) => !haproxyServerName(name) && !isMonitoringServer(name)).length;
  const disruptive = changes.filter(disturbsDroplet);
  const turns = disruptive
    .map((c) => {
      const name = String(configOf(after, c.address).name);
      return {
        address: c.address,
        name,
        role: roleOf(name, roles, loadBalancers),
        action: (c.action === "replace" ? "replace" : "resize") as DropletAction,
      };
    })
    .sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role) || a.name.localeCompare(b.name));
  const turnOf = new Map(turns.map((turn, index) => [turn.address, index]));
  // The primary's server hands its role to a replica first, when there is one; the primary record then
  // goes back to the configuration's after that turn (see DeployStep.then), not with any turn.
  const primaryTurn = turns.findIndex((turn) => turn.role === "primary");
  const handsOver = primaryTurn >= 0 && droplets.filter((name) => haproxyServerName(name)).length > 1;
  const primaryRecord = primaryRecordAddress(after);
  const named = primaryRecord
    ? [...referencedResources(configOf(after, primaryRecord))].find((a) => a.startsWith(`${DROPLET}.`))
    : undefined;
  const primaryAfter = named ? String(configOf(after, named).name) : undefined;
  // A change that depends on a droplet's turn waits for the last of those turns: `-target` on it
  // earlier would take that droplet along.
  const atOnce: string[] = [];
  const waiting = turns.map((turn) => [turn.address]);
  // A record that names a web server created now waits until that server is healthy (see DeployPlan.newServers).
  const created = changes
    .filter((c) => c.type === DROPLET && c.action === "create" && haproxyServerName(String(configOf(after, c.address).name)))
    .map((c) => c.address);
  const newServers = { droplets: created.map((a) => String(configOf(after, a).name)), targets: [] as string[] };
  for (const change of changes) {
    if (turnOf.has(change.address) || (handsOver && change.address === primaryRecord)) continue;
    const deps = dependencies(after, change.address);
    const needs = [...deps].map((a) => turnOf.get(a)).filter((i): i is number => i !== undefined);
    if (needs.length > 0) waiting[Math.max(...needs)]!.push(change.address);
    else if (change.type === RECORD && created.some((a) => deps.has(a))) newServers.targets.push(change.address);
    else atOnce.push(change.address);
  }
  return {
    atOnce,
    newServers,
    steps: turns.map((turn, index) => ({
      droplet: turn.name,
      address: turn.address,
      role: turn.role,
      action: turn.action,
      ...(index === primaryTurn && handsOver
        ? { handOver: "primary" as const, then: primaryRecord ? [primaryRecord] : [], ...(primaryAfter ? { primaryAfter } : {}) }
        : {}),
      ...(turn.role === "master-load-balancer" ? { handOver: "address" as const } : {}),
      targets: waiting[index]!,
    })),
  };
}

/** Whether a stack declares a resource at `type.name` (every declared one has arguments). */
function declares(stack: TerraformJson, address: string): boolean {
  return Object.keys(configOf(stack, address)).length > 0;
}

/**
 * The configuration as `terraform apply -target` leaves it: `before`, with
 * the targeted resources (and what they depend on) as `after` declares
 * them, and those `after` no longer declares gone. What the lab applies for
 * one step; once every step is applied, it is `after`.
 */
export function targetedConfiguration(before: TerraformJson, after: TerraformJson, targets: readonly string[]): TerraformJson {
  const taken = new Set<string>();
  for (const target of targets) {
    if (declares(after, target)) dependencies(after, target, taken);
    else taken.add(target);
  }
  const resource: Record<string, Record<string, Record<string, unknown>>> = {};
  const put = (address: string, config: Record<string, unknown>) => {
    const dot = address.indexOf(".");
    (resource[address.slice(0, dot)] ??= {})[address.slice(dot + 1)] = config;
  };
  for (const [type, byName] of Object.entries(before.resource ?? {})) {
    for (const [name, config] of Object.entries(byName)) if (!taken.has(`${type}.${name}`)) put(`${type}.${name}`, config);
  }
  for (const address of taken) if (declares(after, address)) put(address, configOf(after, address));
  return { ...after, resource };
}

/** What a step costs the site, in a few words (the lab's deploy checks measure it). */
export function stepCost(step: DeployStep): string {
  const out = step.action === "replace" ? "replaced, out of rotation while it boots" : "powered off, resized and on again";
  switch (step.role) {
    case "monitoring":
      return `${out}; it serves no request (no alerts while it boots)`;
    case "replica":
      return `${out}; no request fails`;
    case "primary":
      return step.handOver
        ? `${out}, after the primary role moves to a replica (and back after): writes refused for a few seconds, twice; no request fails`
        : `${out}: **the only web server: the site is down meanwhile**`;
    case "backup-load-balancer":
      return `${out} (it holds no address); no request fails`;
    case "master-load-balancer":
      return `${out}, after the site's address moves to its peer; no request fails`;
    case "only-load-balancer":
      return `${out}: **the site is down meanwhile** (one load balancer; \`FOOBAR_LOAD_BALANCERS=2\` avoids it)`;
  }
}

/** The plan, as the deploy prints it before it asks: what goes at once, then each droplet's turn and its cost. */
export function describeDeploy(plan: DeployPlan): string[] {
  return [
    `${plan.atOnce.length} change(s) at once, disturbing no droplet${plan.atOnce.length ? `: ${plan.atOnce.join(", ")}` : ""}`,
    ...(plan.newServers.droplets.length
      ? [`new web server(s) ${plan.newServers.droplets.join(", ")}: named (and so in HAProxy's rotation) once healthy`]
      : []),
    `${plan.steps.length} droplet(s) in turn${plan.steps.length ? ":" : ""}`,
    ...plan.steps.map((step, i) => `  ${i + 1}. ${step.droplet} (${step.role}): ${stepCost(step)}`),
  ];
}

/**
 * The deploy in one cell of the table of changes (docs/day-two.md).
 *
 * @param refused the protected resources the change would destroy: the deploy stops first, as Terraform does.
 */
export function summarizeDeploy(plan: DeployPlan, refused: readonly string[] = []): string {
  if (refused.length > 0) return `stops before any change, as Terraform does (${refused.join(", ")} protected)`;
  const named = plan.newServers.droplets.length ? `; ${plan.newServers.droplets.join(", ")} named once healthy` : "";
  if (plan.steps.length === 0) return plan.atOnce.length > 0 ? `all at once: it disturbs no droplet${named}` : "nothing to apply";
  const turns = plan.steps.map((step) => {
    const done = step.action === "replace" ? "replaced" : "resized";
    if (step.role === "primary")
      return step.handOver
        ? `${step.droplet} ${done} after a switchover (writes pause twice, a few seconds each)`
        : `${step.droplet} ${done} (**the site is down meanwhile**)`;
    if (step.role === "master-load-balancer") return `${step.droplet} ${done} after the address moves to its peer`;
    if (step.role === "only-load-balancer") return `${step.droplet} ${done} last (**the site is down while it boots**)`;
    return `${step.droplet} ${done}`;
  });
  const costly = plan.steps.some((step) => step.role === "only-load-balancer" || (step.role === "primary" && !step.handOver));
  return `${plan.atOnce.length > 0 ? `${plan.atOnce.length} change(s) at once, then ` : ""}one droplet at a time: ${turns.join(", ")}${costly ? "" : "; no request fails"}`;
}
