/**
 * Reading the synthesized Terraform JSON and resolving it the way
 * `terraform apply` would, into a typed model of what the lab boots.
 *
 * Pure functions: no file access, no randomness except
 * through the `computed` hooks, so tests can pin every generated value.
 */

import type { TerraformJson } from "../../tools/changes";
import { hostAddress, isInRange, parseCidr } from "../host/addresses";

/** One droplet, with every string resolved. */
export interface LabDroplet {
  /** `digitalocean_droplet.<name>` in the Terraform JSON. */
  readonly address: string;
  readonly name: string;
  /** DigitalOcean's numeric droplet id (as a string, like the provider's `id`). */
  readonly id: string;
  readonly image: string;
  readonly size: string;
  readonly region: string;
  readonly tags: readonly string[];
  readonly publicIpv4: string;
  readonly privateIpv4: string;
  /** The resolved user-data, byte for byte what the droplet would receive. */
  readonly userData: string;
  /** The account SSH keys (ids or fingerprints) DigitalOcean installs for root (`ssh_keys`). */
  readonly sshKeys: readonly string[];
  /** Names of the volumes attached at creation (`volume_ids`). */
  readonly volumes: readonly string[];
}

/** A block storage volume. */
export interface LabVolume {
  readonly address: string;
  readonly name: string;
  readonly id: string;
  readonly sizeGib: number;
}

/** A reserved IP and the droplet it is assigned to (if any). */
export interface LabReservedIp {
  readonly address: string;
  readonly ip: string;
  /**
   * Assigned by its own `droplet_id` when created, and moved at run time
   * since (Terraform ignores later changes): a load balancer pair's address.
   */
  readonly placedOnCreate: boolean;
  /** The droplet name of its `digitalocean_reserved_ip_assignment`. @default - unassigned */
  readonly assignedTo?: string;
}

export type FirewallProtocol = "tcp" | "udp" | "icmp";

/** One inbound or outbound rule of a cloud firewall. */
export interface LabFirewallRule {
  readonly protocol: FirewallProtocol;
  /** `"80"`, `"8000-8080"`, `"1-65535"`, `"all"`, or undefined (all ports). */
  readonly portRange?: string;
  /** CIDRs or single addresses, IPv4 or IPv6. */
  readonly addresses: readonly string[];
  /** Droplet tags: the tagged droplets' public and private addresses. */
  readonly tags: readonly string[];
  /** Droplet ids: those droplets' public and private addresses. */
  readonly dropletIds: readonly string[];
}

export interface LabFirewall {
  readonly address: string;
  readonly name: string;
  /** The firewall applies to droplets carrying any of these tags ... */
  readonly tags: readonly string[];
  /** ... and to these droplets. */
  readonly dropletIds: readonly string[];
  readonly inbound: readonly LabFirewallRule[];
  readonly outbound: readonly LabFirewallRule[];
}

export interface LabRecord {
  readonly address: string;
  readonly domain: string;
  readonly type: string;
  /** The record's own name: `www`, `@`. */
  readonly name: string;
  /** Fully qualified name: `www.foobar.com`, or the domain itself for `@`. */
  readonly fqdn: string;
  readonly value: string;
  readonly ttl?: number;
}

export interface LabVpc {
  readonly address: string;
  readonly name: string;
  readonly ipRange: string;
}

/**
 * The backup bucket and the key granted on it (`digitalocean_spaces_bucket`,
 * `digitalocean_spaces_key`): what the lab's Spaces emulation serves and accepts.
 */
export interface LabSpaces {
  readonly bucket: string;
  readonly region: string;
  /** The key's `access_key`, made up by the lab (`ComputedValues.spacesKey`). */
  readonly accessKeyId: string;
  /** The key's `secret_key`, made up by the lab. */
  readonly secretAccessKey: string;
}

/** A Spaces key's made-up credentials. */
export interface SpacesKeyValues {
  readonly accessKey: string;
  readonly secretKey: string;
}

/** Everything the lab needs from the stack, resolved. */
export interface LabStack {
  readonly vpc: LabVpc;
  readonly droplets: readonly LabDroplet[];
  readonly firewalls: readonly LabFirewall[];
  readonly records: readonly LabRecord[];
  readonly volumes: readonly LabVolume[];
  readonly reservedIps: readonly LabReservedIp[];
  /** The backup bucket and its key. @default - none: the stack has no backups */
  readonly spaces?: LabSpaces;
  /** Every computed attribute the lab made up, by Terraform address (what `apply` keeps). */
  readonly computed: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** The settings of a `random_password` (the provider's defaults filled in). */
export interface PasswordSpec {
  readonly length: number;
  readonly upper: boolean;
  readonly lower: boolean;
  readonly numeric: boolean;
  readonly special: boolean;
  /** Characters `special` draws from. @default the provider's `!@#$%&*()-_=+[]{}<>:?` */
  readonly overrideSpecial?: string;
  readonly minUpper: number;
  readonly minLower: number;
  readonly minNumeric: number;
  readonly minSpecial: number;
}

/** How the lab makes up values that only exist after `terraform apply`. */
export interface ComputedValues {
  /** The fake public range droplets get their `ipv4_address` from. */
  readonly publicRange: string;
  /** Host number (offset in the public range) of the first droplet. */
  readonly firstPublicHost: number;
  /** Host number (offset in the VPC range) of the first droplet. */
  readonly firstPrivateHost: number;
  /** Host number (offset in the public range) of the first reserved IP. */
  readonly firstReservedHost: number;
  /** Makes a `random_password` result that meets the resource's settings. */
  readonly password: (spec: PasswordSpec) => string;
  /** Makes a `digitalocean_spaces_key`'s `access_key` and `secret_key`. */
  readonly spacesKey: () => SpacesKeyValues;
  /**
   * The running lab's values, for `apply`: every resource keeps its computed
   * attributes unless its address is in `renew`. @default - a new lab
   */
  readonly previous?: PreviousValues;
  /** Values of the stack's input variables (`var.NAME`), as `TF_VAR_NAME` gives them to Terraform. @default - none */
  readonly variables?: Readonly<Record<string, string>>;
}

/** What a running lab's resources were given, and which of them get new values. */
export interface PreviousValues {
  /** Computed attributes by Terraform address (`LabStack.computed`). */
  readonly attrs: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Addresses that are replaced: they get values nothing had before. */
  readonly renew: ReadonlySet<string>;
}

/** Resource types whose `id` is their `name`. */
const ID_IS_NAME = ["digitalocean_domain", "digitalocean_spaces_bucket", "digitalocean_tag"];

/**
 * Resolves the lab-relevant resources of a synthesized stack.
 *
 * References `${type.name.attr}` resolve like `terraform apply`: to the
 * resource's own config value, or to a value the lab computes (droplet `id`,
 * `ipv4_address`, `ipv4_address_private`, `urn`; vpc `id`/`urn`; domain and tag
 * `id`; random_password `result`; volume `id`/`urn`; reserved IP
 * `ip_address`/`id`/`urn`; Spaces bucket `id`/`urn`/`endpoint`; Spaces key
 * `access_key`/`secret_key`/`id`, made up by `computed.spacesKey`). `$${` and `%%{` are unescaped. Only the
 * fields the lab uses are resolved, so references inside ignored resources
 * (projects, alerts, outputs) never matter.
 *
 * @throws Error naming the reference or the setting the lab cannot handle.
 */
export function resolveStack(tf: TerraformJson, computed: ComputedValues): LabStack {
  const resources = tf.resource ?? {};
  const ofType = (type: string): [string, Record<string, unknown>][] => Object.entries(resources[type] ?? {});

  const vpcs = ofType("digitalocean_vpc");
  const dropletEntries = ofType("digitalocean_droplet");
  if (dropletEntries.length === 0) throw new Error("the stack has no digitalocean_droplet resources");
  if (vpcs.length !== 1) {
    throw new Error(`the lab needs exactly one digitalocean_vpc, the stack has ${vpcs.length}`);
  }
  for (const [name, config] of [...dropletEntries, ...ofType("digitalocean_firewall")]) {
    if ("count" in config || "for_each" in config) {
      throw new Error(`the lab does not support count/for_each (on ${name}): use one resource per droplet`);
    }
  }

  // Computed attributes, assigned in a stable order (the order of the JSON).
  // A resource the running lab already has keeps its values (`previous`),
  // unless it is replaced or new: then it gets values nothing had before,
  // as DigitalOcean hands a new droplet a new id and new addresses.
  const computedAttrs = new Map<string, Record<string, string>>();
  const previous = computed.previous;
  const kept = (address: string) => (previous && !previous.renew.has(address) ? previous.attrs[address] : undefined);
  const taken = new Set(Object.values(previous?.attrs ?? {}).flatMap((attrs) => Object.values(attrs)));
  const fresh = (make: (n: number) => string, from: number): string => {
    for (let n = from; ; n++) {
      const value = make(n);
      if (!taken.has(value)) {
        taken.add(value);
        return value;
      }
    }
  };
  const computeOnce = (address: string, make: () => Record<string, string>) => computedAttrs.set(address, { ...(kept(address) ?? make()) });
  const [vpcName, vpcConfig] = vpcs[0]!;
  const vpcRange = String(vpcConfig.ip_range ?? "");
  if (!parseCidr(vpcRange)) {
    throw new Error(`digitalocean_vpc.${vpcName}.ip_range must be an IPv4 CIDR, got "${vpcRange}"`);
  }
  computeOnce(`digitalocean_vpc.${vpcName}`, () => ({
    id: fakeUuid(`vpc:${vpcName}`),
    urn: `do:vpc:${fakeUuid(`vpc:${vpcName}`)}`,
  }));
  // Kept droplets first, so new ones cannot take their addresses.
  for (const [name] of dropletEntries) {
    const attrs = kept(`digitalocean_droplet.${name}`);
    if (attrs) computedAttrs.set(`digitalocean_droplet.${name}`, { ...attrs });
  }
  dropletEntries.forEach(([name]) => {
    const address = `digitalocean_droplet.${name}`;
    if (computedAttrs.has(address)) return;
    const id = fresh((n) => String(100000001 + n), 0);
    computedAttrs.set(address, {
      id,
      urn: `do:droplet:${id}`,
      ipv4_address: fresh((n) => hostAddress(computed.publicRange, n), computed.firstPublicHost),
      ipv4_address_private: fresh((n) => hostAddress(vpcRange, n), computed.firstPrivateHost),
    });
  });
  ofType("digitalocean_volume").forEach(([name]) => {
    const id = fakeUuid(`volume:${name}`);
    computeOnce(`digitalocean_volume.${name}`, () => ({ id, urn: `do:volume:${id}` }));
  });
  ofType("digitalocean_reserved_ip").forEach(([name]) => {
    computeOnce(`digitalocean_reserved_ip.${name}`, () => {
      const ip = fresh((n) => hostAddress(computed.publicRange, n), computed.firstReservedHost);
      return { ip_address: ip, id: ip, urn: `do:reservedip:${ip}` };
    });
  });
  for (const [name, config] of ofType("random_password")) {
    computeOnce(`random_password.${name}`, () => ({
      id: "none",
      result: computed.password({
        length: Number(config.length),
        upper: config.upper !== false,
        lower: config.lower !== false,
        numeric: config.numeric !== false && config.number !== false,
        special: config.special !== false,
        overrideSpecial: typeof config.override_special === "string" ? config.override_special : undefined,
        minUpper: Number(config.min_upper ?? 0),
        minLower: Number(config.min_lower ?? 0),
        minNumeric: Number(config.min_numeric ?? 0),
        minSpecial: Number(config.min_special ?? 0),
      }),
    }));
  }
  for (const [name, config] of ofType("digitalocean_spaces_bucket")) {
    // The provider's own values: the bucket's id is its name, its endpoint is the region's.
    computeOnce(`digitalocean_spaces_bucket.${name}`, () => ({
      urn: `do:space:${String(config.name)}`,
      endpoint: `${String(config.region ?? "nyc3")}.digitaloceanspaces.com`,
      bucket_domain_name: `${String(config.name)}.${String(config.region ?? "nyc3")}.digitaloceanspaces.com`,
    }));
  }
  for (const [name] of ofType("digitalocean_spaces_key")) {
    computeOnce(`digitalocean_spaces_key.${name}`, () => {
      const key = computed.spacesKey();
      return { id: key.accessKey, access_key: key.accessKey, secret_key: key.secretKey };
    });
  }
  dropletEntries.forEach(([name]) => {
    const attrs = computedAttrs.get(`digitalocean_droplet.${name}`)!;
    if (!isInRange(attrs.ipv4_address_private!, vpcRange)) {
      throw new Error(`digitalocean_vpc.${vpcName}.ip_range ${vpcRange} is too small for ${dropletEntries.length} droplets`);
    }
  });

  const resolving = new Set<string>();
  const resolveRef = (ref: string): string => {
    const parts = ref.split(".");
    if (parts.length === 2 && parts[0] === "var") {
      const value = computed.variables?.[parts[1]!];
      if (value === undefined) throw new Error(`the lab has no value for \${${ref}}`);
      return value;
    }
    if (parts.length !== 3) throw new Error(`the lab cannot resolve \${${ref}}: only \${type.name.attribute} references are supported`);
    const [type, name, attr] = parts as [string, string, string];
    const key = `${type}.${name}`;
    const fromComputed = computedAttrs.get(key)?.[attr];
    if (fromComputed !== undefined) return fromComputed;
    // A domain's and a tag's id is their name.
    const configAttr = attr === "id" && ID_IS_NAME.includes(type) ? "name" : attr;
    const config = resources[type]?.[name];
    if (config && configAttr in config && typeof config[configAttr] !== "object") {
      if (resolving.has(ref)) throw new Error(`reference cycle through \${${ref}}`);
      resolving.add(ref);
      try {
        return resolveString(String(config[configAttr]));
      } finally {
        resolving.delete(ref);
      }
    }
    throw new Error(`the lab cannot resolve \${${ref}}`);
  };
  const resolveString = (value: string): string => interpolate(value, resolveRef);
  const str = (value: unknown, where: string): string => {
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    if (typeof value !== "string") throw new Error(`${where} must be a string, got ${JSON.stringify(value)}`);
    return resolveString(value);
  };
  const optStr = (value: unknown, where: string): string | undefined =>
    value === undefined || value === null ? undefined : str(value, where);
  const list = (value: unknown, where: string): string[] => {
    if (value === undefined || value === null) return [];
    // cdktf writes a token list as one string: "${[a.b.c, d.e.f]}".
    if (typeof value === "string") {
      const whole = /^\$\{\[(.*)\]\}$/s.exec(value);
      if (!whole) return [str(value, where)];
      return whole[1]!
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== "")
        .map(resolveRef);
    }
    if (!Array.isArray(value)) throw new Error(`${where} must be a list, got ${JSON.stringify(value)}`);
    return value.flatMap((item, i) => list(item, `${where}[${i}]`));
  };

  const volumes: LabVolume[] = ofType("digitalocean_volume").map(([name, config]) => {
    const where = `digitalocean_volume.${name}`;
    return {
      address: where,
      name: str(config.name, `${where}.name`),
      id: computedAttrs.get(where)!.id!,
      sizeGib: Number(config.size),
    };
  });
  const droplets: LabDroplet[] = dropletEntries.map(([name, config]) => {
    const where = `digitalocean_droplet.${name}`;
    const attrs = computedAttrs.get(where)!;
    const vpcUuid = optStr(config.vpc_uuid, `${where}.vpc_uuid`);
    if (vpcUuid !== undefined && vpcUuid !== computedAttrs.get(`digitalocean_vpc.${vpcName}`)!.id) {
      throw new Error(`${where}.vpc_uuid does not point at digitalocean_vpc.${vpcName}`);
    }
    return {
      address: where,
      name: str(config.name, `${where}.name`),
      id: attrs.id!,
      image: optStr(config.image, `${where}.image`) ?? "",
      size: optStr(config.size, `${where}.size`) ?? "",
      region: optStr(config.region, `${where}.region`) ?? "",
      tags: list(config.tags, `${where}.tags`),
      publicIpv4: attrs.ipv4_address!,
      privateIpv4: attrs.ipv4_address_private!,
      userData: optStr(config.user_data, `${where}.user_data`) ?? "",
      sshKeys: config.ssh_keys === undefined ? [] : list(config.ssh_keys, `${where}.ssh_keys`),
      volumes: list(config.volume_ids, `${where}.volume_ids`).map((id) => {
        const volume = volumes.find((v) => v.id === id);
        if (!volume) throw new Error(`${where}.volume_ids holds ${id}, which is not a volume of the stack`);
        return volume.name;
      }),
    };
  });
  const names = droplets.map((d) => d.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new Error(`two droplets are named "${duplicate}": the lab needs unique names`);
  for (const name of names) {
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(name)) {
      throw new Error(`droplet name "${name}" must be lowercase letters, digits and dashes (at most 31) for the lab`);
    }
  }

  const rules = (value: unknown, where: string, prefix: "source" | "destination"): LabFirewallRule[] => {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw new Error(`${where} must be a list of rules`);
    return value.map((raw: Record<string, unknown>, i) => {
      const at = `${where}[${i}]`;
      const protocol = str(raw.protocol, `${at}.protocol`);
      if (protocol !== "tcp" && protocol !== "udp" && protocol !== "icmp") {
        throw new Error(`${at}.protocol must be tcp, udp or icmp, got "${protocol}"`);
      }
      const rule: LabFirewallRule = {
        protocol,
        portRange: optStr(raw.port_range, `${at}.port_range`),
        addresses: list(raw[`${prefix}_addresses`], `${at}.${prefix}_addresses`),
        tags: list(raw[`${prefix}_tags`], `${at}.${prefix}_tags`),
        dropletIds: list(raw[`${prefix}_droplet_ids`], `${at}.${prefix}_droplet_ids`),
      };
      if (raw[`${prefix}_load_balancer_uids`] !== undefined || raw[`${prefix}_kubernetes_ids`] !== undefined) {
        throw new Error(`${at}: load balancer / kubernetes sources are not supported by the lab`);
      }
      return rule;
    });
  };
  const firewalls: LabFirewall[] = ofType("digitalocean_firewall").map(([name, config]) => {
    const where = `digitalocean_firewall.${name}`;
    return {
      address: where,
      name: str(config.name, `${where}.name`),
      tags: list(config.tags, `${where}.tags`),
      dropletIds: list(config.droplet_ids, `${where}.droplet_ids`),
      inbound: rules(config.inbound_rule, `${where}.inbound_rule`, "source"),
      outbound: rules(config.outbound_rule, `${where}.outbound_rule`, "destination"),
    };
  });

  const records: LabRecord[] = ofType("digitalocean_record").map(([name, config]) => {
    const where = `digitalocean_record.${name}`;
    const domain = str(config.domain, `${where}.domain`);
    const recordName = str(config.name, `${where}.name`);
    return {
      address: where,
      domain,
      type: str(config.type, `${where}.type`),
      name: recordName,
      fqdn: recordName === "@" ? domain : `${recordName}.${domain}`,
      value: str(config.value, `${where}.value`),
      ttl: config.ttl === undefined ? undefined : Number(config.ttl),
    };
  });

  const assignments = ofType("digitalocean_reserved_ip_assignment").map(([name, config]) => {
    const where = `digitalocean_reserved_ip_assignment.${name}`;
    const dropletId = str(config.droplet_id, `${where}.droplet_id`);
    const droplet = droplets.find((d) => d.id === dropletId);
    if (!droplet) throw new Error(`${where}.droplet_id ${dropletId} is not a droplet of the stack`);
    return { ip: str(config.ip_address, `${where}.ip_address`), droplet: droplet.name };
  });
  const reservedIps: LabReservedIp[] = ofType("digitalocean_reserved_ip").map(([name, config]) => {
    const where = `digitalocean_reserved_ip.${name}`;
    const ip = computedAttrs.get(where)!.ip_address!;
    // Assigned on the reserved IP itself (`droplet_id`), or by an assignment resource.
    const ownDropletId = optStr(config.droplet_id, `${where}.droplet_id`);
    if (ownDropletId !== undefined) {
      const droplet = droplets.find((d) => d.id === ownDropletId);
      if (!droplet) throw new Error(`${where}.droplet_id ${ownDropletId} is not a droplet of the stack`);
      assignments.push({ ip, droplet: droplet.name });
    }
    const assigned = assignments.filter((a) => a.ip === ip);
    if (assigned.length > 1) throw new Error(`${where} is assigned to ${assigned.length} droplets: a reserved IP has one`);
    return { address: where, ip, assignedTo: assigned[0]?.droplet, placedOnCreate: ownDropletId !== undefined };
  });

  const buckets = ofType("digitalocean_spaces_bucket");
  if (buckets.length > 1) throw new Error(`the lab emulates one Spaces bucket, the stack has ${buckets.length}`);
  let spaces: LabSpaces | undefined;
  if (buckets.length === 1) {
    const [bucketName, bucketConfig] = buckets[0]!;
    const where = `digitalocean_spaces_bucket.${bucketName}`;
    const bucket = str(bucketConfig.name, `${where}.name`);
    const keys = ofType("digitalocean_spaces_key").filter(([name, config]) => {
      const grants = (config.grant ?? []) as Record<string, unknown>[];
      return grants.some((grant, i) => str(grant.bucket, `digitalocean_spaces_key.${name}.grant[${i}].bucket`) === bucket);
    });
    if (keys.length !== 1)
      throw new Error(`the lab needs exactly one digitalocean_spaces_key granted on ${where}, the stack has ${keys.length}`);
    const key = computedAttrs.get(`digitalocean_spaces_key.${keys[0]![0]}`)!;
    spaces = {
      bucket,
      region: optStr(bucketConfig.region, `${where}.region`) ?? "nyc3",
      accessKeyId: key.access_key!,
      secretAccessKey: key.secret_key!,
    };
  }

  return {
    vpc: { address: `digitalocean_vpc.${vpcName}`, name: str(vpcConfig.name, `digitalocean_vpc.${vpcName}.name`), ipRange: vpcRange },
    droplets,
    firewalls,
    records,
    volumes,
    reservedIps,
    ...(spaces ? { spaces } : {}),
    computed: Object.fromEntries(computedAttrs),
  };
}

/**
 * Expands a Terraform template string: `${ref}` through `resolveRef`,
 * `$${` to a literal `${`, `%%{` to a literal `%{`.
 *
 * @throws Error on template directives (`%{ if }`) and on anything but a plain reference.
 */
export function interpolate(template: string, resolveRef: (ref: string) => string): string {
  let out = "";
  let i = 0;
  while (i < template.length) {
    if (template.startsWith("$${", i)) {
      out += "${";
      i += 3;
    } else if (template.startsWith("%%{", i)) {
      out += "%{";
      i += 3;
    } else if (template.startsWith("${", i)) {
      const end = template.indexOf("}", i + 2);
      if (end < 0) throw new Error(`unterminated \${ in: ${excerpt(template, i)}`);
      const expression = template.slice(i + 2, end).trim();
      if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(expression)) {
        throw new Error(`the lab cannot resolve \${${expression}}: only plain references are supported`);
      }
      out += resolveRef(expression);
      i = end + 1;
    } else if (template.startsWith("%{", i)) {
      throw new Error(`Terraform template directives are not supported by the lab: ${excerpt(template, i)}`);
    } else {
      out += template[i];
      i += 1;
    }
  }
  return out;
}

function excerpt(text: string, at: number): string {
  return JSON.stringify(text.slice(at, at + 40));
}

/** A stable UUID-shaped id derived from a label (the lab's stand-in for DigitalOcean's ids). */
function fakeUuid(label: string): string {
  let h = 0x811c9dc5;
  const hex: string[] = [];
  for (let round = 0; round < 4; round++) {
    for (const ch of `${round}:${label}`) {
      h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    }
    hex.push(h.toString(16).padStart(8, "0"));
  }
  const s = hex.join("");
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`;
}
