/**
 * What a change of settings does to a deployed stack, the way `terraform
 * plan` would decide it: from two syntheses (before and after) and the
 * provider's own rules for which arguments force a resource to be replaced.
 *
 * The table of changes (docs/day-two.md), the tests that keep it true, and the lab's
 * `apply` all use this one planner.
 */
import { isMonitoringServer } from "../names";
import { FORCE_NEW_ARGUMENTS, OPTIONAL_COMPUTED_ARGUMENTS } from "./force-new";

/** Terraform JSON as cdktf writes it (`resource.<type>.<name> = config`): the one type the tools and the lab read it as. */
export interface TerraformJson {
  readonly resource?: Record<string, Record<string, Record<string, unknown>>>;
  readonly [key: string]: unknown;
}

/**
 * What Terraform does to one resource. `forget`: the resource's block left the
 * configuration and a `removed` block with `lifecycle { destroy = false }`
 * names it, so Terraform drops it from its state and leaves it in the account.
 */
export type ChangeAction = "create" | "delete" | "forget" | "replace" | "update";

export interface ResourceChange {
  /** `type.name`, as Terraform addresses it. */
  readonly address: string;
  readonly type: string;
  readonly action: ChangeAction;
  /** The top-level arguments that differ (for a replacement: those that force it). */
  readonly arguments: readonly string[];
}

/** One top-level `removed` block of Terraform JSON (Terraform 1.7 and later). */
export interface RemovedBlock {
  readonly from: string;
  readonly lifecycle?: { readonly destroy?: boolean };
}

/** The addresses the stack's `removed` blocks tell Terraform to forget rather than destroy. */
export function forgottenAddresses(stack: TerraformJson): Set<string> {
  const blocks = (stack.removed ?? []) as readonly RemovedBlock[];
  return new Set(blocks.filter((block) => block.lifecycle?.destroy === false).map((block) => block.from));
}

/** Arguments that are Terraform's, not the resource's. */
const META_ARGUMENTS = new Set(["lifecycle", "depends_on", "provider", "count", "for_each", "//"]);

/** `type.name` of every resource referenced anywhere in a value. */
export function referencedResources(value: unknown): Set<string> {
  const found = new Set<string>();
  const text = JSON.stringify(value ?? null);
  for (const match of text.matchAll(/\$\{([a-z0-9_]+\.[A-Za-z0-9_-]+)\.[a-z0-9_]+/g)) found.add(match[1]!);
  return found;
}

function ignoredChanges(config: Record<string, unknown>): Set<string> {
  const lifecycle = config.lifecycle as { ignore_changes?: string[] | "all" } | undefined;
  if (lifecycle?.ignore_changes === "all") return new Set(Object.keys(config));
  return new Set(lifecycle?.ignore_changes ?? []);
}

/**
 * The resources that `terraform apply` would create, delete, replace or
 * update to go from `before` to `after`, in address order.
 *
 * A resource is replaced when a ForceNew argument changes (ignoring those in
 * its `lifecycle.ignore_changes`), or when such an argument refers to a
 * resource that is itself replaced: its new id or address is only known
 * after apply. An argument that refers to a replaced resource and is not
 * ForceNew is updated in place.
 */
export function planChanges(before: TerraformJson, after: TerraformJson, forceReplace: readonly string[] = []): ResourceChange[] {
  const flatten = (stack: TerraformJson) =>
    new Map<string, { type: string; config: Record<string, unknown> }>(
      Object.entries(stack.resource ?? {}).flatMap(([type, byName]) =>
        Object.entries(byName).map(([name, config]): [string, { type: string; config: Record<string, unknown> }] => [
          `${type}.${name}`,
          { type, config },
        ]),
      ),
    );
  const old = flatten(before);
  const next = flatten(after);
  const decided = new Map<string, ResourceChange>();
  const changedArguments = (address: string): string[] => {
    const a = old.get(address)!.config;
    const b = next.get(address)!.config;
    const ignored = ignoredChanges(b);
    const keptWhenUnset = OPTIONAL_COMPUTED_ARGUMENTS[next.get(address)!.type] ?? [];
    return [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .filter((key) => !META_ARGUMENTS.has(key) && !ignored.has(key))
      .filter((key) => key in b || !keptWhenUnset.includes(key))
      .filter((key) => JSON.stringify(a[key]) !== JSON.stringify(b[key]))
      .sort();
  };
  const forgotten = forgottenAddresses(after);
  for (const address of old.keys()) {
    if (next.has(address)) continue;
    decided.set(address, { address, type: old.get(address)!.type, action: forgotten.has(address) ? "forget" : "delete", arguments: [] });
  }
  for (const [address, { type }] of next) {
    if (!old.has(address)) {
      decided.set(address, { address, type, action: "create", arguments: [] });
      continue;
    }
    if (forceReplace.includes(address)) {
      decided.set(address, { address, type, action: "replace", arguments: ["-replace"] });
      continue;
    }
    const changed = changedArguments(address);
    const forcing = changed.filter((key) => (FORCE_NEW_ARGUMENTS[type] ?? []).includes(key));
    if (forcing.length > 0) decided.set(address, { address, type, action: "replace", arguments: forcing });
    else if (changed.length > 0) decided.set(address, { address, type, action: "update", arguments: changed });
  }
  // Replacements spread through references until nothing more changes. A
  // resource replaced already gains the arguments that force it again (a
  // droplet in a new region is replaced for `region` and for the new VPC's
  // `vpc_uuid`, as Terraform's replace_paths say).
  const merged = (a: readonly string[], b: readonly string[]) => [...new Set([...a, ...b])].sort();
  for (let spreading = true; spreading;) {
    spreading = false;
    for (const [address, { type, config }] of next) {
      const current = decided.get(address);
      if (!old.has(address)) continue;
      const ignored = ignoredChanges(config);
      const affected = Object.keys(config)
        .filter((key) => !META_ARGUMENTS.has(key) && !ignored.has(key))
        .filter((key) =>
          [...referencedResources(config[key])].some((ref) => ["replace", "create"].includes(decided.get(ref)?.action ?? "")),
        );
      if (affected.length === 0) continue;
      const forcing = affected.filter((key) => (FORCE_NEW_ARGUMENTS[type] ?? []).includes(key));
      if (current?.action === "replace" && forcing.length === 0) continue;
      const change: ResourceChange =
        current?.action === "replace"
          ? { address, type, action: "replace", arguments: merged(current.arguments, forcing) }
          : forcing.length > 0
            ? { address, type, action: "replace", arguments: forcing }
            : { address, type, action: "update", arguments: merged(current?.arguments ?? [], affected) };
      if (JSON.stringify(change) !== JSON.stringify(current)) {
        decided.set(address, change);
        spreading = true;
      }
    }
  }
  return [...decided.values()].sort((a, b) => a.address.localeCompare(b.address));
}

/** What one change does, in words an operator acts on. */
export interface ChangeSummary {
  readonly replaced: readonly string[];
  readonly updated: readonly string[];
  readonly created: readonly string[];
  readonly deleted: readonly string[];
  /** Data, address, certificate and downtime: what the change costs (empty: nothing). */
  readonly costs: readonly string[];
}

/** A resource as the table names it: `droplet web-01`, `volume web-01-mysql`, `record www`. */
function describe(address: string, stacks: readonly TerraformJson[]): string {
  const [type, name] = [address.slice(0, address.indexOf(".")), address.slice(address.indexOf(".") + 1)];
  const config = stacks.map((s) => s.resource?.[type]?.[name]).find((c) => c !== undefined) ?? {};
  const short = type.replace(/^digitalocean_/, "").replace(/_/g, " ");
  const label = typeof config.name === "string" ? config.name : type === "digitalocean_reserved_ip" ? "(the site's address)" : "";
  return label ? `${short} ${label}` : short;
}

/** Resource types that hold data: the volumes and the backup bucket, protected by `prevent_destroy` and `removed` blocks. */
export const DATA_RESOURCE_TYPES: readonly string[] = ["digitalocean_volume", "digitalocean_spaces_bucket"];

/**
 * The volumes and buckets a plan would replace although `lifecycle.prevent_destroy`
 * protects them: Terraform refuses such a plan before it changes anything.
 * One whose block left the configuration is not among them: Terraform
 * deletes it (or, with a `removed` block, forgets it) without looking at the flag.
 */
export function protectedVolumesAtRisk(before: TerraformJson, changes: readonly ResourceChange[]): string[] {
  return changes
    .filter((c) => DATA_RESOURCE_TYPES.includes(c.type) && c.action === "replace")
    .map((c) => configOf(before, c.address))
    .filter((config) => (config.lifecycle as { prevent_destroy?: boolean } | undefined)?.prevent_destroy)
    .map((config) => String(config.name));
}

/** The arguments of the resource at `type.name` in a stack; empty when the stack has none there. */
export function configOf(stack: TerraformJson, address: string): Record<string, unknown> {
  const dot = address.indexOf(".");
  return stack.resource?.[address.slice(0, dot)]?.[address.slice(dot + 1)] ?? {};
}

/** Summarizes `planChanges(before, after)` for docs/day-two.md and for `lab apply`. */
export function summarizeChanges(before: TerraformJson, after: TerraformJson, changes = planChanges(before, after)): ChangeSummary {
  // "monitor alert" six times reads better as "6 monitor alerts".
  const named = (action: ChangeAction) => {
    const names = changes.filter((c) => c.action === action).map((c) => describe(c.address, [before, after]));
    return [...new Set(names)].map((name) => {
      const n = names.filter((other) => other === name).length;
      return n > 1 ? `${n} ${name}s` : name;
    });
  };
  const nameOf = (c: ResourceChange) => String(configOf(before, c.address).name ?? "");
  const costs: string[] = [];
  const protectedVolumes = protectedVolumesAtRisk(before, changes);
  for (const change of changes) {
    const name = nameOf(change);
    if (change.type === "digitalocean_volume") {
      const lost = name.endsWith("-mysql")
        ? `the MySQL data on ${name}`
        : name.endsWith("-prometheus")
          ? `${name} (Prometheus' history)`
          : `${name} (a new certificate is requested)`;
      if (change.action === "forget") {
        costs.push(
          `${name} kept: Terraform forgets it, and the volume stays in the account with its data (billed) until you delete it; before a change that declares it again, import it or delete it (runbook)`,
        );
      } else if (change.action === "replace" && protectedVolumes.includes(name)) {
        costs.push(`**Terraform stops: ${name} is protected** (with \`FOOBAR_ALLOW_DATA_LOSS=true\` it deletes ${lost})`);
      } else if (change.action === "replace" || change.action === "delete") {
        costs.push(`**${lost} lost**`);
      }
    } else if (change.type === "digitalocean_spaces_bucket") {
      if (change.action === "forget") {
        costs.push(
          `${name} kept: Terraform forgets the backup bucket, which stays in the account with its backups (billed) until you delete it`,
        );
      } else if (change.action === "replace" && protectedVolumes.includes(name)) {
        costs.push(`**Terraform stops: ${name} is protected** (with \`FOOBAR_ALLOW_DATA_LOSS=true\` it deletes it once empty)`);
      } else if (change.action === "replace" || change.action === "delete") {
        costs.push(`**the backups in ${name} lost** once it is empty (Terraform never empties it)`);
      }
    } else if (change.type === "digitalocean_reserved_ip" && change.action === "replace") {
      costs.push("**the site's address changes** (clients follow the DNS TTL)");
    } else if (change.type === "digitalocean_reserved_ip_assignment" && change.action === "delete") {
      costs.push("**the site's address is unassigned** until something assigns it again");
    } else if (change.type === "digitalocean_domain" && change.action === "replace") {
      costs.push("the DNS zone is recreated");
    } else if (change.type === "digitalocean_droplet" && change.action === "replace") {
      costs.push(
        /lb-\d+$/.test(name)
          ? `site down while ${name} boots (address and certificate kept)`
          : isMonitoringServer(name)
            ? `no alerts while ${name} boots (its history kept)`
            : `${name} out of rotation while it boots${/web-01$/.test(name) ? "; writes fail meanwhile" : ""}`,
      );
    }
  }
  if (changes.some((c) => c.type === "digitalocean_record" && c.action !== "create" && !/\.internal$/.test(nameOf(c)))) {
    costs.push("the site's DNS records change (clients follow within the TTL)");
  }
  return {
    replaced: named("replace"),
    updated: named("update"),
    created: named("create"),
    deleted: [...named("delete"), ...named("forget").map((name) => `${name} (forgotten, kept)`)],
    costs,
  };
}
