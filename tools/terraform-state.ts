/**
 * A Terraform state (format v4) that matches a configuration, made without
 * any API: the planned values of a plan from nothing, each value Terraform
 * only knows after apply made up from the provider's schema
 * (REAL-TERRAFORM.md, section 5); and the configuration each Terraform
 * folder plans, with its state beside it.
 *
 * Pure functions over the JSON that `terraform show -json` and
 * `terraform providers schema -json` write; `real-plans.ts` runs Terraform.
 */
import type { TerraformJson } from "./changes";

/** A value type as `terraform providers schema -json` writes it: `"string"`, `["set", "number"]`, `["object", {…}]`. */
export type SchemaType = string | readonly [string, unknown];

/** One attribute of a schema block. */
export interface SchemaAttribute {
  readonly type?: SchemaType;
  /** Protocol 6 nested attributes (the framework's), instead of `type`. */
  readonly nested_type?: { readonly attributes: Record<string, SchemaAttribute>; readonly nesting_mode: string };
  readonly computed?: boolean;
  readonly sensitive?: boolean;
}

/** A block of a resource schema: attributes and nested blocks. */
export interface SchemaBlock {
  readonly attributes?: Record<string, SchemaAttribute>;
  readonly block_types?: Record<string, { readonly nesting_mode: string; readonly block: SchemaBlock }>;
}

/** What `terraform providers schema -json` writes (the parts used here). */
export interface ProviderSchemas {
  readonly provider_schemas: Record<
    string,
    { readonly resource_schemas: Record<string, { readonly version: number; readonly block: SchemaBlock }> }
  >;
}

/** One entry of a plan's `resource_changes`, as `terraform show -json` writes it. */
export interface PlannedChange {
  readonly address: string;
  readonly mode: string;
  readonly type: string;
  readonly name: string;
  readonly provider_name: string;
  readonly change: {
    readonly actions: readonly string[];
    readonly before?: unknown;
    readonly after?: unknown;
    readonly after_unknown?: unknown;
    readonly after_sensitive?: unknown;
    readonly replace_paths?: readonly (readonly (string | number)[])[];
  };
  readonly action_reason?: string;
}

/** A saved plan as `terraform show -json` writes it (the parts used here). */
export interface PlanJson {
  readonly terraform_version: string;
  readonly resource_changes?: readonly PlannedChange[];
}

/** A step of an attribute path in the state's `sensitive_attributes`. */
export type PathStep =
  | { readonly type: "get_attr"; readonly value: string }
  | { readonly type: "index"; readonly value: { readonly value: number; readonly type: "number" } };

/** One managed resource of a state v4 document (no `count`/`for_each`: one instance). */
export interface StateResource {
  readonly mode: "managed";
  readonly type: string;
  readonly name: string;
  /** `provider["registry.terraform.io/digitalocean/digitalocean"]` */
  readonly provider: string;
  readonly instances: readonly [
    { readonly schema_version: number; readonly attributes: Record<string, unknown>; readonly sensitive_attributes: readonly PathStep[][] },
  ];
}

/** A state file, format version 4 (Terraform 0.13 and later). */
export interface StateV4 {
  readonly version: 4;
  readonly terraform_version: string;
  readonly serial: number;
  readonly lineage: string;
  readonly outputs: Record<string, never>;
  readonly resources: readonly StateResource[];
  readonly check_results: null;
}

/** Where the made-up values come from: a counter, so every id and address differs, and the VPC's range. */
export interface MadeUpContext {
  /** The resource type being filled, such as `digitalocean_droplet`. */
  readonly resourceType: string;
  /** The VPC's `ip_range` (private addresses are made up inside it). */
  readonly vpcRange: string;
  /** A new number at each call. */
  readonly next: () => number;
}

/** The value type of a schema block, as one `["object", {…}]`, so blocks and attributes are filled alike. */
export function blockType(block: SchemaBlock): SchemaType {
  const fields: Record<string, SchemaType> = {};
  for (const [name, attribute] of Object.entries(block.attributes ?? {})) {
    fields[name] =
      attribute.type ?? nested(attribute.nested_type!.nesting_mode, blockType({ attributes: attribute.nested_type!.attributes }));
  }
  for (const [name, inner] of Object.entries(block.block_types ?? {})) fields[name] = nested(inner.nesting_mode, blockType(inner.block));
  return ["object", fields];
}

function nested(mode: string, object: SchemaType): SchemaType {
  if (mode === "single" || mode === "group") return object;
  return [mode === "set" ? "set" : mode === "map" ? "map" : "list", object];
}

/** A UUID that is recognisably made up, and different for each `n`. */
export function madeUpUuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
}

/** The `n`-th host address of an IPv4 range, skipping the network address and the gateway. */
export function hostInRange(cidr: string, n: number): string {
  const [address, bits] = cidr.split("/");
  const base = address!.split(".").reduce((sum, octet) => sum * 256 + Number(octet), 0);
  const size = 2 ** (32 - Number(bits));
  const host = base + 2 + (n % Math.max(size - 3, 1));
  return [24, 16, 8, 0].map((shift) => Math.floor(host / 2 ** shift) % 256).join(".");
}

// Types whose id is their name (the API addresses them by it), and those whose id is a number.
const ID_IS_NAME = new Set(["digitalocean_domain", "digitalocean_tag"]);
const NUMERIC_ID = new Set(["digitalocean_droplet", "digitalocean_record"]);

/**
 * A plausible value for an attribute Terraform knows only after apply:
 * numeric ids for droplets, UUIDs for volumes and VPCs, `203.0.113.x` public
 * and VPC-range private addresses, `do:<type>:<id>` URNs; zero, false, empty
 * otherwise. `siblings` holds the resource's attributes filled so far (ids and
 * URNs are made last, from the name or address they repeat).
 */
export function makeUpValue(
  type: SchemaType,
  attribute: string,
  siblings: Readonly<Record<string, unknown>>,
  context: MadeUpContext,
): unknown {
  if (Array.isArray(type)) {
    const [kind, inner] = type as readonly [string, unknown];
    if (kind === "object") {
      const object: Record<string, unknown> = {};
      for (const [name, field] of Object.entries(inner as Record<string, SchemaType>))
        object[name] = makeUpValue(field, name, object, context);
      return object;
    }
    return kind === "map" ? {} : [];
  }
  if (type === "bool") return false;
  if (type === "number") return /(^|_)id$/.test(attribute) ? 400_000_000 + context.next() : 0;
  if (type !== "string") return null;
  return makeUpString(attribute, siblings, context);
}

function makeUpString(attribute: string, siblings: Readonly<Record<string, unknown>>, context: MadeUpContext): string {
  const type = context.resourceType;
  if (attribute === "id") {
    if (ID_IS_NAME.has(type) && typeof siblings.name === "string") return siblings.name;
    if (type === "digitalocean_reserved_ip" && typeof siblings.ip_address === "string") return siblings.ip_address;
    if (type === "random_password") return "none";
    return NUMERIC_ID.has(type) ? String(400_000_000 + context.next()) : madeUpUuid(context.next());
  }
  if (attribute === "urn") return `do:${type.replace(/^digitalocean_/, "").replace(/_/g, "")}:${String(siblings.id ?? context.next())}`;
  if (attribute === "ipv4_address_private") return hostInRange(context.vpcRange, context.next());
  if (attribute === "ipv4_address" || attribute === "ip_address") return `203.0.113.${(context.next() % 254) + 1}`;
  if (attribute.endsWith("uuid")) return madeUpUuid(context.next());
  if (attribute.endsWith("_at")) return "2025-01-01T00:00:00Z";
  if (attribute === "status") return "active";
  if (attribute === "result" || attribute === "bcrypt_hash") return `made-up-${context.next()}`;
  return "";
}

/** Object keys in the order they are filled: known ones, unknown ones, then `id` and `urn`, which repeat a name or address. */
function fillOrder(keys: readonly string[], isUnknown: (key: string) => boolean): string[] {
  const rank = (key: string) => (key === "urn" ? 3 : key === "id" ? 2 : isUnknown(key) ? 1 : 0);
  return [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/**
 * A planned value with each unknown leaf (`true` in `after_unknown`) replaced:
 * by the `prior` value at the same place when there is one (what the state
 * already says), else by a made-up one. Known values are kept as planned.
 */
export function fillUnknowns(
  after: unknown,
  unknown: unknown,
  type: SchemaType,
  prior: unknown,
  context: MadeUpContext,
  attribute = "",
): unknown {
  if (unknown === true) return prior ?? makeUpValue(type, attribute, {}, context);
  if (!Array.isArray(type) || after === null || after === undefined) return after ?? null;
  const [kind, inner] = type as readonly [string, unknown];
  const at = (value: unknown, key: string | number): unknown =>
    value !== null && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
  if (kind === "object") {
    const fields = inner as Record<string, SchemaType>;
    const object: Record<string, unknown> = {};
    for (const key of fillOrder(Object.keys(fields), (k) => at(unknown, k) === true)) {
      object[key] =
        at(unknown, key) === true
          ? (at(prior, key) ?? makeUpValue(fields[key]!, key, object, context))
          : fillUnknowns(at(after, key), at(unknown, key), fields[key]!, at(prior, key), context, key);
    }
    return object;
  }
  if (Array.isArray(after))
    return after.map((item, i) => fillUnknowns(item, at(unknown, i), inner as SchemaType, at(prior, i), context, attribute));
  if (kind === "map" && typeof after === "object") {
    return Object.fromEntries(
      Object.entries(after).map(([key, item]) => [
        key,
        fillUnknowns(item, at(unknown, key), inner as SchemaType, at(prior, key), context, key),
      ]),
    );
  }
  return after;
}

/** The state's `sensitive_attributes`: the path to each `true` of a plan's `after_sensitive`. */
export function sensitivePaths(sensitive: unknown, path: readonly PathStep[] = []): PathStep[][] {
  if (sensitive === true) return [[...path]];
  if (Array.isArray(sensitive))
    return sensitive.flatMap((item, i) => sensitivePaths(item, [...path, { type: "index", value: { value: i, type: "number" } }]));
  if (sensitive !== null && typeof sensitive === "object") {
    return Object.entries(sensitive).flatMap(([key, item]) => sensitivePaths(item, [...path, { type: "get_attr", value: key }]));
  }
  return [];
}

/** The schema of a resource type, from whichever provider has it. */
export function resourceSchema(schemas: ProviderSchemas, resourceType: string): { readonly version: number; readonly block: SchemaBlock } {
  for (const provider of Object.values(schemas.provider_schemas)) {
    const schema = provider.resource_schemas[resourceType];
    if (schema) return schema;
  }
  throw new Error(`no provider schema has the resource type ${resourceType}`);
}

/**
 * The state resource a planned change leaves behind: its `after` values,
 * unknowns taken from `prior` (the state's current attributes) or made up.
 */
export function stateResource(
  change: PlannedChange,
  schemas: ProviderSchemas,
  prior: StateResource | undefined,
  context: MadeUpContext,
): StateResource {
  const schema = resourceSchema(schemas, change.type);
  const attributes = fillUnknowns(
    change.change.after,
    change.change.after_unknown ?? {},
    blockType(schema.block),
    prior?.instances[0].attributes,
    context,
  ) as Record<string, unknown>;
  return {
    mode: "managed",
    type: change.type,
    name: change.name,
    provider: `provider["${change.provider_name}"]`,
    instances: [{ schema_version: schema.version, attributes, sensitive_attributes: sensitivePaths(change.change.after_sensitive) }],
  };
}

/** The VPC range of a plan (the first VPC's `ip_range`), where private addresses are made up. */
export function vpcRangeOf(plan: PlanJson): string {
  const vpc = plan.resource_changes?.find((c) => c.type === "digitalocean_vpc")?.change.after as { ip_range?: string } | undefined;
  return vpc?.ip_range ?? "10.10.10.0/24";
}

/** The changes of a plan that touch a resource (not no-op, not a data source read). */
export function resourceChangesOf(plan: PlanJson): PlannedChange[] {
  return (plan.resource_changes ?? []).filter((c) => c.mode === "managed" && !c.change.actions.every((a) => a === "no-op" || a === "read"));
}

/**
 * The state after merging a plan into it: each created, updated or replaced
 * resource takes the plan's known values (references now resolved against
 * the state), keeping what the state had where the plan still does not know.
 */
export function mergePlan(
  state: ReadonlyMap<string, StateResource>,
  plan: PlanJson,
  schemas: ProviderSchemas,
  next: () => number,
): Map<string, StateResource> {
  const merged = new Map(state);
  const vpcRange = vpcRangeOf(plan);
  for (const change of resourceChangesOf(plan)) {
    if (change.change.after === null || change.change.after === undefined) continue;
    merged.set(change.address, stateResource(change, schemas, state.get(change.address), { resourceType: change.type, vpcRange, next }));
  }
  return merged;
}

/**
 * What a refresh would add that no plan shows: each volume's `droplet_ids`,
 * the droplets whose `volume_ids` hold it (the API reports the attachment on
 * both sides), and each record's `fqdn` (made up before its domain was known).
 */
export function recordRefresh(state: ReadonlyMap<string, StateResource>): Map<string, StateResource> {
  const droplets = [...state.values()].filter((r) => r.type === "digitalocean_droplet").map((r) => r.instances[0].attributes);
  const refreshed = new Map(state);
  const update = (address: string, resource: StateResource, changes: Record<string, unknown>) =>
    refreshed.set(address, {
      ...resource,
      instances: [{ ...resource.instances[0], attributes: { ...resource.instances[0].attributes, ...changes } }],
    });
  for (const [address, resource] of state) {
    const attributes = resource.instances[0].attributes;
    if (resource.type === "digitalocean_volume") {
      update(address, resource, {
        droplet_ids: droplets.filter((d) => ((d.volume_ids ?? []) as unknown[]).includes(attributes.id)).map((d) => Number(d.id)),
      });
    } else if (resource.type === "digitalocean_record" && typeof attributes.domain === "string") {
      // The provider's own rule: `@` is the domain itself.
      update(address, resource, { fqdn: attributes.name === "@" ? attributes.domain : `${String(attributes.name)}.${attributes.domain}` });
    }
  }
  return refreshed;
}

/** The state file: its resources in address order. */
export function stateDocument(state: ReadonlyMap<string, StateResource>, terraformVersion: string, lineage: string): StateV4 {
  const resources = [...state.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, resource]) => resource);
  return { version: 4, terraform_version: terraformVersion, serial: 1, lineage, outputs: {}, resources, check_results: null };
}

/** A copy of a configuration without these lifecycle arguments on any resource. */
export function withoutLifecycle(stack: TerraformJson, strip: readonly ("ignore_changes" | "prevent_destroy")[]): TerraformJson {
  const copy = JSON.parse(JSON.stringify(stack)) as TerraformJson;
  for (const byName of Object.values(copy.resource ?? {})) {
    for (const config of Object.values(byName)) {
      const lifecycle = config.lifecycle as Record<string, unknown> | undefined;
      if (!lifecycle) continue;
      for (const argument of strip) delete lifecycle[argument];
      // An empty lifecycle block says nothing: leave none rather than `"lifecycle": {}`.
      if (Object.keys(lifecycle).length === 0) delete config.lifecycle;
    }
  }
  return copy;
}

/**
 * A configuration ready for a folder of its own: a local state in that
 * folder (a Spaces backend, too, would reach the network), the DigitalOcean
 * provider pinned to the version under test, and optionally without the
 * lifecycle arguments that hide planned values (`ignore_changes`) or stop a
 * plan (`prevent_destroy`).
 */
export function prepareConfig(
  stack: TerraformJson,
  providerVersion: string | undefined,
  strip: readonly ("ignore_changes" | "prevent_destroy")[] = [],
): TerraformJson {
  const copy = withoutLifecycle(stack, strip) as TerraformJson & {
    terraform: { backend?: unknown; required_providers: Record<string, { version?: string }> };
  };
  copy.terraform.backend = { local: { path: "terraform.tfstate" } };
  if (providerVersion !== undefined) copy.terraform.required_providers.digitalocean!.version = providerVersion;
  return copy;
}
