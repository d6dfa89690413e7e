/**
 * Typed settings for the www.foobar.com stack, declared once.
 *
 * `SETTINGS` is the one declaration: for every setting its environment
 * variable, type, default, what it accepts and what it does. Parsing,
 * validation, the error messages and the README's settings table
 * (`settingsTable`) all come from it.
 *
 * Rules that hold for every variable:
 * - unset means the default; set but empty or blank is an error, so an unset
 *   shell variable in a pipeline (`FOOBAR_HTTPS=$TYPO`) can never turn
 *   anything off;
 * - a `FOOBAR_*` variable that is not a setting is an error naming the
 *   closest one, except `FOOBAR_LAB_*`, which belong to the lab (`lab/`);
 * - a bad value stops everything with a `SettingsError`: one line naming the
 *   variable, the value and what is accepted.
 */

import * as fs from "node:fs";

import * as ipaddr from "ipaddr.js";
import { z } from "zod";

/** Thrown for a bad setting; `main.ts` prints its message alone and exits 1. */
export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SettingsError";
  }
}

/** DigitalOcean region slugs that offer droplets, VPCs and firewalls. */
export const DIGITALOCEAN_REGIONS = [
  "ams3",
  "atl1",
  "blr1",
  "fra1",
  "lon1",
  "nyc1",
  "nyc2",
  "nyc3",
  "sfo2",
  "sfo3",
  "sgp1",
  "syd1",
  "tor1",
] as const;

/** Droplet images whose packages and MySQL syntax the user-data is written for. */
export const SUPPORTED_IMAGES = ["ubuntu-24-04-x64", "ubuntu-26-04-x64"] as const;

export const MAX_WEB_SERVERS = 10;

/** One load balancer, or a pair sharing the reserved IP. */
export const MAX_LOAD_BALANCERS = 2;

/** DigitalOcean's personal access tokens: `dop_v1_` and 64 hex digits. */
export const FAILOVER_TOKEN_PATTERN = /^dop_v1_[0-9a-f]{64}$/;

/** Where Terraform reads the `failover_token` variable from. */
export const FAILOVER_TOKEN_TERRAFORM_VARIABLE = "TF_VAR_failover_token";

/**
 * Spaces regions: where a state bucket can be.
 *
 * @see https://docs.digitalocean.com/products/platform/availability-matrix/
 */
export const SPACES_REGIONS = ["ams3", "atl1", "blr1", "fra1", "lon1", "nyc3", "sfo2", "sfo3", "sgp1", "syd1", "tor1"] as const;

/** An environment's name: a short DNS label, so `<project>-<environment>-web-01` stays a valid host name. */
export const ENVIRONMENT_NAME = /^[a-z](?:[a-z0-9-]{0,14}[a-z0-9])?$/;

/** Let's Encrypt's production ACME directory: trusted certificates, strict rate limits. */
export const LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";
/** Let's Encrypt's staging ACME directory: untrusted certificates, generous rate limits, for trials. */
export const LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

/** Prefix of every setting's variable. */
export const VARIABLE_PREFIX = "FOOBAR_";
/** Variables under this prefix belong to the lab (`lab/settings.ts`), never to the stack. */
export const LAB_VARIABLE_PREFIX = "FOOBAR_LAB_";

/**
 * Admin CIDRs that together cover more addresses than this (a /8) are "from
 * anywhere" for SSH and need `FOOBAR_ALLOW_SSH_FROM_ANYWHERE=true`.
 */
export const MAX_ADMIN_ADDRESSES = 2 ** 24;

/** Thrown by a value type's `parse`: the value is not accepted. */
class Rejected extends Error {
  /**
   * @param detail why, appended to the message. @default - none
   * @param got the part of the value at fault (one item of a list). @default - the whole value
   */
  constructor(
    readonly detail?: string,
    readonly got?: string,
  ) {
    super(detail ?? "rejected");
  }
}

/** How the text of one variable becomes a typed value. */
interface ValueType<T> {
  /** The type's name in the README's table. */
  readonly type: string;
  /** What is accepted, for messages and the README: "a whole number from 1 to 10". */
  readonly accepted: string;
  /** Parses a trimmed, non-empty value. @throws Rejected */
  readonly parse: (value: string) => T;
}

/** One setting: where it comes from, what it accepts and what it does. */
export interface Declaration<T> {
  readonly variable: string;
  readonly valueType: ValueType<T>;
  /** The value when the variable is unset. */
  readonly default: T;
  /** The default as the README shows it. @default - the default in backticks, or "none" */
  readonly defaultText?: string;
  /** What is accepted, when more precise than the type's own words. @default - the value type's */
  readonly accepted?: string;
  readonly description: string;
  /**
   * Where the variable may be set: `app` settings choose the stacks and are
   * read from the shell only; `stack` settings configure one stack, and come
   * from an environment's file when environments are in use.
   *
   * @default "stack"
   */
  readonly scope?: "app" | "stack";
  /**
   * A secret: messages never repeat its value (they give its length), and
   * the stack hands it to Terraform as a sensitive variable, never as text.
   *
   * @default false
   */
  readonly secret?: boolean;
}

/** A value type from a zod schema: zod checks, the declaration words the message. */
function fromSchema<T>(type: string, accepted: string, schema: z.ZodType<T, string>): ValueType<T> {
  return {
    type,
    accepted,
    parse: (value) => {
      const result = schema.safeParse(value);
      if (!result.success) throw new Rejected();
      return result.data;
    },
  };
}

const wholeNumber = (min: number, max: number): ValueType<number> =>
  fromSchema(
    "whole number",
    `a whole number from ${min} to ${max}`,
    z
      .string()
      .regex(/^\d{1,9}$/)
      .transform(Number)
      .pipe(z.number().min(min).max(max)),
  );

const flag: ValueType<boolean> = fromSchema("boolean", "true or false", z.stringbool({ truthy: ["true"], falsy: ["false"] }));

const oneOf = <V extends string>(values: readonly V[]): ValueType<V> =>
  fromSchema("one of a list", `one of ${values.join(", ")}`, z.enum(values as [V, ...V[]]));

const text = (accepted: string, pattern: RegExp): ValueType<string> => fromSchema("text", accepted, z.string().regex(pattern));

const email = (accepted: string): ValueType<string> => fromSchema("e-mail", accepted, z.email());

const httpsUrl = (accepted: string, hostname?: RegExp): ValueType<string> =>
  fromSchema("URL", accepted, z.url({ protocol: /^https$/, ...(hostname ? { hostname } : {}) }));

/** A value the setting may leave unset. */
const optional = <T>(valueType: ValueType<T>): ValueType<T | undefined> => valueType;

/** A comma-separated list; every item is parsed by `item`, and an empty item is an error. */
function list<T>(item: ValueType<T>, accepted: string): ValueType<readonly T[]> {
  return {
    type: `list of ${item.type}`,
    accepted,
    parse: (value) =>
      value.split(",").map((raw) => {
        const trimmed = raw.trim();
        if (trimmed === "") throw new Rejected("an item is empty: remove the extra comma");
        try {
          return item.parse(trimmed);
        } catch (error) {
          if (error instanceof Rejected) throw new Rejected(error.detail, error.got ?? trimmed);
          throw error;
        }
      }),
  };
}

/** A parsed IPv4 network. */
export interface Ipv4Network {
  /** Canonical form, such as `203.0.113.0/24`. */
  readonly cidr: string;
  readonly address: ipaddr.IPv4;
  readonly prefix: number;
}

/**
 * Parses an IPv4 CIDR strictly: four decimal octets without leading zeros,
 * a prefix from 0 to 32, no host bits set.
 *
 * @throws Rejected saying the corrected network when host bits are set.
 */
function parseIpv4Network(value: string): Ipv4Network {
  const [address, prefixText, ...rest] = value.split("/");
  if (rest.length > 0 || prefixText === undefined || !/^\d{1,3}$/.test(prefixText)) throw new Rejected();
  if (!ipaddr.IPv4.isValidFourPartDecimal(address) || !ipaddr.IPv4.isValidCIDR(value)) throw new Rejected();
  const prefix = Number(prefixText);
  const network = ipaddr.IPv4.networkAddressFromCIDR(value);
  const cidr = `${network.toString()}/${prefix}`;
  if (network.toString() !== address) throw new Rejected(`host bits are set, the network is ${cidr}`);
  return { cidr, address: network, prefix };
}

const ipv4Network = (accepted: string, check: (network: Ipv4Network) => boolean): ValueType<string> => ({
  type: "IPv4 CIDR",
  accepted,
  parse: (value) => {
    const network = parseIpv4Network(value);
    if (!check(network)) throw new Rejected();
    return network.cidr;
  },
});

const adminCidr: ValueType<string> = {
  type: "IPv4 CIDR",
  accepted: "an IPv4 CIDR such as 203.0.113.7/32",
  parse: (value) => {
    if (ipaddr.IPv6.isValidCIDR(value)) {
      throw new Rejected("the droplets have no IPv6 address, so an IPv6 SSH rule could never match");
    }
    return parseIpv4Network(value).cidr;
  },
};

/** How many IPv4 addresses the CIDRs cover together, overlaps counted once. */
export function addressesCovered(cidrs: readonly string[]): number {
  const ranges = cidrs
    .map((cidr) => {
      const [address, prefix] = ipaddr.IPv4.parseCIDR(cidr);
      const start = address.toByteArray().reduce((n, octet) => n * 256 + octet, 0);
      const size = 2 ** (32 - prefix);
      return [start - (start % size), size] as const;
    })
    .sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = 0;
  for (const [start, size] of ranges) {
    const from = Math.max(start, end);
    if (start + size > from) total += start + size - from;
    end = Math.max(end, start + size);
  }
  return total;
}

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A PEM file of CA certificates; the file is read to check it. */
const caFile: ValueType<string | undefined> = {
  type: "file",
  accepted: "a readable PEM file holding at least one CERTIFICATE block",
  parse: (value) => {
    readCaFile(value);
    return value;
  },
};

/** Declares one setting, keeping its value type for `Settings`. */
const declare = <T>(declaration: Declaration<T>): Declaration<T> => declaration;

/**
 * Every setting, in the README's order: the one declaration.
 *
 * Renaming a key renames the setting in code only; the variable is the
 * operator's contract.
 */
export const SETTINGS = {
  project: declare({
    variable: "FOOBAR_PROJECT",
    valueType: text("2 to 31 lower-case letters, digits or hyphens, starting with a letter", /^[a-z][a-z0-9-]{1,30}$/),
    default: "foobar",
    description: "prefixes tags, firewalls and the DigitalOcean project",
  }),
  domain: declare({
    variable: "FOOBAR_DOMAIN",
    valueType: fromSchema("domain name", "a lower-case domain name such as foobar.com", z.string().regex(z.regexes.domain).lowercase()),
    default: "foobar.com",
    description: "the zone created on DigitalOcean",
  }),
  hostName: declare({
    variable: "FOOBAR_HOST_NAME",
    valueType: text("one lower-case DNS label such as www", DNS_LABEL),
    default: "www",
    description: "the site is `<host>.<domain>`",
  }),
  apexRecord: declare({
    variable: "FOOBAR_APEX_RECORD",
    valueType: flag,
    default: false,
    description: "also point the apex at the load balancer",
  }),
  dnsTtl: declare({
    variable: "FOOBAR_DNS_TTL",
    valueType: wholeNumber(30, 86400),
    default: 300,
    description: "TTL of the DNS records, in seconds",
  }),
  region: declare<string>({
    variable: "FOOBAR_REGION",
    valueType: oneOf(DIGITALOCEAN_REGIONS),
    default: "nyc3",
    description: "the DigitalOcean region of every resource",
  }),
  vpcIpRange: declare({
    variable: "FOOBAR_VPC_IP_RANGE",
    valueType: ipv4Network(
      "an RFC 1918 network in CIDR form from /16 to /28, such as 10.10.10.0/24",
      (network) => network.prefix >= 16 && network.prefix <= 28 && network.address.range() === "private",
    ),
    default: "10.10.10.0/24",
    description: "the VPC's private range",
  }),
  loadBalancers: declare({
    variable: "FOOBAR_LOAD_BALANCERS",
    valueType: wholeNumber(1, MAX_LOAD_BALANCERS),
    default: 1,
    description:
      "how many load balancers: 1 (lb-01), or 2 (lb-01 and lb-02, keepalived between them, the reserved IP on the " +
      "master); 2 needs `FOOBAR_FAILOVER_TOKEN`",
  }),
  failoverToken: declare<string | undefined>({
    variable: "FOOBAR_FAILOVER_TOKEN",
    valueType: optional(text("a DigitalOcean API token: dop_v1_ and 64 lower-case hex digits", FAILOVER_TOKEN_PATTERN)),
    default: undefined,
    secret: true,
    description:
      "the API token the load balancers assign the reserved IP with: custom scope `reserved_ip:update` (and the read scopes DigitalOcean adds with it); " +
      "needed with 2 load balancers only. Terraform takes it as the sensitive variable `failover_token` " +
      "(`TF_VAR_failover_token`, which this setting falls back to)",
  }),
  webServers: declare({
    variable: "FOOBAR_WEB_SERVERS",
    valueType: wholeNumber(1, MAX_WEB_SERVERS),
    default: 2,
    description: "how many web servers; the first holds the MySQL primary",
  }),
  databasePrimary: declare({
    variable: "FOOBAR_DB_PRIMARY",
    valueType: text("a web server's name such as web-01", /^web-\d{2}$/),
    default: "web-01",
    description:
      "the web server whose MySQL is the primary. Changing it promotes another: `cdktf deploy` moves the " +
      "`mysql-primary.internal` record, and each server's database agent converges (see the promotion runbook in docs/database.md)",
  }),
  semiSyncTimeoutMs: declare({
    variable: "FOOBAR_DB_SEMI_SYNC_TIMEOUT",
    valueType: wholeNumber(100, 60000),
    default: 2000,
    description:
      "milliseconds a commit on the primary waits for a replica to acknowledge it (semi-synchronous replication) " +
      "before it is acknowledged anyway, asynchronously",
  }),
  image: declare<string>({
    variable: "FOOBAR_IMAGE",
    valueType: oneOf(SUPPORTED_IMAGES),
    default: "ubuntu-24-04-x64",
    description: "the droplets' image",
  }),
  size: declare({
    variable: "FOOBAR_SIZE",
    valueType: text("a DigitalOcean size slug such as s-1vcpu-2gb", /^[a-z0-9][a-z0-9-]*$/),
    default: "s-1vcpu-2gb",
    description: "every droplet's size (MySQL wants 2 GB)",
  }),
  adminCidrs: declare({
    variable: "FOOBAR_ADMIN_CIDRS",
    valueType: list(adminCidr, "a comma-separated list of IPv4 CIDRs such as 203.0.113.7/32"),
    default: [],
    description:
      "who may SSH in; none means no SSH rule at all. Together narrower than a /8 unless " +
      "`FOOBAR_ALLOW_SSH_FROM_ANYWHERE=true`. IPv4 only: the droplets have no IPv6",
  }),
  allowSshFromAnywhere: declare({
    variable: "FOOBAR_ALLOW_SSH_FROM_ANYWHERE",
    valueType: flag,
    default: false,
    description: "must be `true` for `FOOBAR_ADMIN_CIDRS` covering more than a /8 (such as `0.0.0.0/0`)",
  }),
  sshKeys: declare({
    variable: "FOOBAR_SSH_KEYS",
    valueType: list(
      text("a DigitalOcean SSH key id or fingerprint", /^(\d+|([0-9a-f]{2}:){15}[0-9a-f]{2}|SHA256:[A-Za-z0-9+/=]+)$/),
      "a comma-separated list of DigitalOcean SSH key ids or fingerprints",
    ),
    default: [],
    description: "the keys DigitalOcean installs for root",
  }),
  databaseVolumeGib: declare({
    variable: "FOOBAR_DB_VOLUME_SIZE",
    valueType: wholeNumber(1, 16_384),
    default: 10,
    description: "size in GiB of each web server's MySQL volume (its data outlives the droplet); grows in place, never shrinks",
  }),
  allowDataLoss: declare({
    variable: "FOOBAR_ALLOW_DATA_LOSS",
    valueType: flag,
    default: false,
    description:
      "`true` lets Terraform delete the volumes (MySQL data, certificates) on `cdktf destroy`, on a replacement and when " +
      "their server leaves the configuration; otherwise it refuses the first two (`prevent_destroy`) and forgets, not " +
      "deletes, a volume whose server left (`removed` blocks): nothing is deleted",
  }),
  replicaMaxLagSeconds: declare({
    variable: "FOOBAR_REPLICA_MAX_LAG",
    valueType: wholeNumber(1, 3600),
    default: 10,
    description:
      "seconds of data age (the primary's heartbeat) beyond which a replica's reads go to the primary and, while the " +
      "primary answers, the replica leaves rotation; with no primary it keeps serving and says how old its data is",
  }),
  appDir: declare({
    variable: "FOOBAR_APP_DIR",
    valueType: optional(text("a folder of application files", /^.+$/)),
    default: undefined,
    defaultText: "`app/` (the sample)",
    description:
      "the application's files, installed under `/srv/foobar/app` (see [Your own application](docs/monitoring-and-hardening.md#your-own-application))",
  }),
  appCommand: declare({
    variable: "FOOBAR_APP_COMMAND",
    valueType: optional(text("a single-line command", /^[^\n\r]+$/)),
    default: undefined,
    defaultText: "Gunicorn serving `foobar_app:application`",
    description: "the command that serves HTTP on `127.0.0.1:8000` from `/srv/foobar/app`",
  }),
  https: declare({
    variable: "FOOBAR_HTTPS",
    valueType: flag,
    default: true,
    description: "HTTPS on lb-01 with a certificate from the ACME CA, HTTP redirected; `false` serves plain HTTP on 80 only",
  }),
  acmeDirectoryUrl: declare({
    variable: "FOOBAR_ACME_DIRECTORY_URL",
    valueType: httpsUrl(`an https:// URL such as ${LETS_ENCRYPT_STAGING}`),
    default: LETS_ENCRYPT_PRODUCTION,
    defaultText: "Let's Encrypt production",
    description: "the ACME directory; for trials, Let's Encrypt staging (untrusted certificates, generous rate limits)",
  }),
  acmeEmail: declare({
    variable: "FOOBAR_ACME_EMAIL",
    valueType: email("an e-mail address such as ops@foobar.com"),
    // Replaced by webmaster@ the domain when unset: see loadSettings.
    default: "webmaster@foobar.com",
    defaultText: "`webmaster@<domain>`",
    description: "the ACME account's contact (set it to a mailbox you read)",
  }),
  acmeCaFile: declare({
    variable: "FOOBAR_ACME_CA_FILE",
    valueType: caFile,
    default: undefined,
    defaultText: "none",
    description: "an extra CA lb-01 trusts to reach the ACME directory (a private or test CA; the lab's)",
  }),
  hstsMaxAgeSeconds: declare({
    variable: "FOOBAR_HSTS_MAX_AGE",
    valueType: wholeNumber(0, 63_072_000),
    default: 31_536_000,
    defaultText: "`31536000` (1 year)",
    description: "`max-age` of `Strict-Transport-Security`, in seconds",
  }),
  alertEmails: declare({
    variable: "FOOBAR_ALERT_EMAILS",
    valueType: list(email("an e-mail address"), "a comma-separated list of e-mail addresses"),
    default: [],
    description: "who receives alerts (addresses verified in your DigitalOcean team)",
  }),
  alertSlackWebhookUrl: declare({
    variable: "FOOBAR_ALERT_SLACK_WEBHOOK_URL",
    valueType: optional(httpsUrl("a Slack incoming-webhook URL (https://hooks.slack.com/…)", /^hooks\.slack\.com$/)),
    default: undefined,
    description: "a Slack incoming webhook for alerts; needs `FOOBAR_ALERT_SLACK_CHANNEL`",
  }),
  alertSlackChannel: declare({
    variable: "FOOBAR_ALERT_SLACK_CHANNEL",
    valueType: optional(text("a Slack channel such as #ops", /^\S+$/)),
    default: undefined,
    description: "the Slack channel for alerts; needs `FOOBAR_ALERT_SLACK_WEBHOOK_URL`",
  }),
  alertCpuPercent: declare({
    variable: "FOOBAR_ALERT_CPU_PERCENT",
    valueType: wholeNumber(1, 100),
    default: 80,
    description: "CPU use over 5 minutes above which a droplet alerts",
  }),
  alertMemoryPercent: declare({
    variable: "FOOBAR_ALERT_MEMORY_PERCENT",
    valueType: wholeNumber(1, 100),
    default: 90,
    description: "memory use over 5 minutes above which a droplet alerts",
  }),
  alertDiskPercent: declare({
    variable: "FOOBAR_ALERT_DISK_PERCENT",
    valueType: wholeNumber(1, 100),
    default: 85,
    description: "disk use over 5 minutes above which a droplet alerts",
  }),
  alertLatencyMs: declare({
    variable: "FOOBAR_ALERT_LATENCY_MS",
    valueType: wholeNumber(100, 30_000),
    default: 2000,
    description: "the uptime check's response time over 2 minutes, in ms, above which it alerts",
  }),
  alertCertExpiryDays: declare({
    variable: "FOOBAR_ALERT_CERT_EXPIRY_DAYS",
    valueType: wholeNumber(1, 60),
    default: 14,
    description: "days before the site's certificate expires at which the uptime check alerts",
  }),
  environments: declare({
    variable: "FOOBAR_ENVIRONMENTS",
    valueType: list(
      text("a lower-case name of 1 to 16 letters, digits or hyphens such as staging", ENVIRONMENT_NAME),
      "a comma-separated list of environment names such as staging,production",
    ),
    default: [],
    defaultText: "none: one stack, `foobar`",
    description:
      "one stack per environment, `<project>-<name>`, each with the settings of `<name>.env` and nothing else " +
      "(see [Environments and state](docs/environments-and-state.md)); shell only",
    scope: "app",
  }),
  environmentsDir: declare({
    variable: "FOOBAR_ENVIRONMENTS_DIR",
    valueType: text("a folder holding one <name>.env file per environment", /^.+$/),
    default: "environments",
    defaultText: "`environments/`",
    description: "where the environment files are; needs `FOOBAR_ENVIRONMENTS`; shell only",
    scope: "app",
  }),
  stateBucket: declare({
    variable: "FOOBAR_STATE_BUCKET",
    valueType: optional(text("a Spaces bucket name: 3 to 63 lower-case letters, digits or hyphens", /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/)),
    default: undefined,
    defaultText: "none: local state",
    description:
      "keep Terraform's state in this Spaces bucket (the S3 backend), under `<stack>/terraform.tfstate`; " +
      "credentials come from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` at deploy time only",
  }),
  stateRegion: declare<string>({
    variable: "FOOBAR_STATE_REGION",
    valueType: oneOf(SPACES_REGIONS),
    default: "nyc3",
    description: "the state bucket's region: the endpoint is `https://<region>.digitaloceanspaces.com`",
  }),
  stateLocking: declare({
    variable: "FOOBAR_STATE_LOCKING",
    valueType: flag,
    default: true,
    description:
      "lock the state with Terraform's S3 lock file (`use_lockfile`, conditional writes); `false` only if your " +
      "bucket refuses them (see [Locking](docs/environments-and-state.md#locking))",
  }),
};

/** The settings of one stack, one field per entry of `SETTINGS`. */
export type Settings = {
  readonly [K in keyof typeof SETTINGS]: (typeof SETTINGS)[K] extends Declaration<infer T> ? T : never;
} & {
  /**
   * The environment these settings belong to (`environments.ts` sets it from
   * `FOOBAR_ENVIRONMENTS`); it prefixes every name.
   *
   * @default - none: the single stack, named as it always was
   */
  readonly environment?: string;
};

/** Every setting at its default. */
export const DEFAULT_SETTINGS: Settings = Object.fromEntries(
  Object.entries(SETTINGS).map(([key, declaration]) => [key, declaration.default]),
) as Settings;

/** Every setting's variable, by setting. */
export const SETTING_VARIABLES = Object.fromEntries(Object.entries(SETTINGS).map(([key, declaration]) => [key, declaration.variable])) as {
  readonly [K in keyof Settings]: string;
};

/** Variables by name, as in `process.env`. */
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * A value as messages show it: in double quotes, with newlines and other
 * control characters escaped, so a message stays one line whatever it holds.
 */
export function quoted(value: string): string {
  return JSON.stringify(value);
}

/** What a declaration accepts, in its own words or its type's. */
function acceptedOf(declaration: Declaration<unknown>): string {
  return declaration.accepted ?? declaration.valueType.accepted;
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** The declared variable closest to `name`: one it begins, else the fewest edits away. */
export function closestVariable(name: string): string {
  const variables = Object.values(SETTING_VARIABLES);
  return (
    variables.find((variable) => variable.startsWith(name)) ??
    variables.reduce((best, variable) => (editDistance(name, variable) < editDistance(name, best) ? variable : best))
  );
}

/** Stops on the first `FOOBAR_*` variable that is neither a setting nor the lab's. */
export function rejectUnknownVariables(env: Environment): void {
  const known = new Set(Object.values(SETTING_VARIABLES));
  const unknown = Object.keys(env)
    .filter((name) => name.startsWith(VARIABLE_PREFIX) && !name.startsWith(LAB_VARIABLE_PREFIX) && !known.has(name))
    .sort();
  if (unknown.length > 0) {
    throw new SettingsError(
      `${unknown[0]} is not a setting: did you mean ${closestVariable(unknown[0])}? (see the README's settings table)`,
    );
  }
}

/** Parses one variable: the default when unset, an error when blank or not accepted. */
export function parseVariable<T>(declaration: Declaration<T>, raw: string | undefined): T {
  if (raw === undefined) return declaration.default;
  const variable = declaration.variable;
  if (raw.trim() === "") {
    const fallback = declaration.defaultText ?? defaultText(declaration.default);
    throw new SettingsError(`${variable} is set but empty: unset it to take the default (${fallback.replace(/`/g, "")})`);
  }
  try {
    return declaration.valueType.parse(raw.trim());
  } catch (error) {
    if (!(error instanceof Rejected)) throw error;
    const detail = error.detail ? `: ${error.detail}` : "";
    // A secret is never repeated, not even in an error.
    const got = declaration.secret ? `a value of ${raw.trim().length} characters` : quoted(error.got ?? raw);
    throw new SettingsError(`${variable} must be ${acceptedOf(declaration)}, got ${got}${detail}`);
  }
}

/**
 * Reads the settings from `env` over the defaults and validates them.
 *
 * @throws SettingsError with a one-line message for the first bad value.
 */
export function loadSettings(env: Environment = process.env): Settings {
  rejectUnknownVariables(env);
  const parsed = Object.fromEntries(
    Object.entries(SETTINGS).map(([key, declaration]) => [
      key,
      parseVariable(declaration as Declaration<unknown>, env[declaration.variable]),
    ]),
  ) as { -readonly [K in keyof Settings]: Settings[K] };
  const v = SETTING_VARIABLES;

  // The RFC 2142 mailbox of the zone, unless the operator names one.
  if (env[v.acmeEmail] === undefined) parsed.acmeEmail = `webmaster@${parsed.domain}`;

  const covered = addressesCovered(parsed.adminCidrs);
  if (covered > MAX_ADMIN_ADDRESSES && !parsed.allowSshFromAnywhere) {
    throw new SettingsError(
      `${v.adminCidrs} must cover at most a /8 (${MAX_ADMIN_ADDRESSES} addresses) without ` +
        `${v.allowSshFromAnywhere}=true, got ${quoted(parsed.adminCidrs.join(","))}: ${covered} addresses` +
        (covered === 2 ** 32 ? ", the whole internet" : ""),
    );
  }

  if ((parsed.alertSlackWebhookUrl === undefined) !== (parsed.alertSlackChannel === undefined)) {
    const [missing, present] =
      parsed.alertSlackWebhookUrl === undefined
        ? [v.alertSlackWebhookUrl, v.alertSlackChannel]
        : [v.alertSlackChannel, v.alertSlackWebhookUrl];
    throw new SettingsError(`${missing} must be set as well when ${present} is set`);
  }

  const primaryIndex = Number(parsed.databasePrimary.slice("web-".length));
  if (primaryIndex < 1 || primaryIndex > parsed.webServers) {
    throw new SettingsError(
      `${v.databasePrimary} must name one of the ${parsed.webServers} web servers (web-01 to web-${String(parsed.webServers).padStart(2, "0")}), ` +
        `got ${quoted(parsed.databasePrimary)}`,
    );
  }

  // Terraform reads the token from TF_VAR_failover_token: either name will do, but not two different values.
  const terraformToken = env[FAILOVER_TOKEN_TERRAFORM_VARIABLE];
  if (terraformToken !== undefined) {
    const fromTerraform = parseVariable({ ...SETTINGS.failoverToken, variable: FAILOVER_TOKEN_TERRAFORM_VARIABLE }, terraformToken);
    if (parsed.failoverToken !== undefined && parsed.failoverToken !== fromTerraform) {
      throw new SettingsError(`${v.failoverToken} and ${FAILOVER_TOKEN_TERRAFORM_VARIABLE} are both set, to different tokens: set one`);
    }
    parsed.failoverToken = fromTerraform;
  }
  if (parsed.loadBalancers > 1 && parsed.failoverToken === undefined) {
    throw new SettingsError(
      `${v.failoverToken} must be set when ${v.loadBalancers}=${parsed.loadBalancers}: the load balancers assign the reserved IP with it ` +
        "(a DigitalOcean token with the custom scope reserved_ip:update)",
    );
  }

  if (env[v.environmentsDir] !== undefined && parsed.environments.length === 0) {
    throw new SettingsError(`${v.environments} must be set as well when ${v.environmentsDir} is set`);
  }
  return parsed;
}

/**
 * Reads the PEM certificates of `FOOBAR_ACME_CA_FILE`.
 *
 * @throws SettingsError when the file is missing or holds no certificate.
 */
export function readCaFile(file: string): string {
  const variable = SETTINGS.acmeCaFile.variable;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new SettingsError(`${variable} must be a readable PEM file of CA certificates, got ${quoted(file)}`);
  }
  const certificates = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!certificates) throw new SettingsError(`${variable} must be a PEM file holding at least one CERTIFICATE block, got ${quoted(file)}`);
  return certificates.join("\n") + "\n";
}

/** A default as the README shows it. */
function defaultText(value: unknown): string {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return "none";
  return `\`${String(value)}\``;
}

/**
 * The README's settings table, generated from `SETTINGS`; a test keeps the
 * README equal to it.
 */
export function settingsTable(): string {
  const escape = (cell: string) => cell.replace(/\|/g, "\\|");
  const rows = Object.values(SETTINGS).map((declaration: Declaration<unknown>) =>
    [
      `\`${declaration.variable}\``,
      declaration.valueType.type,
      declaration.defaultText ?? defaultText(declaration.default),
      acceptedOf(declaration),
      declaration.description,
    ]
      .map(escape)
      .join(" | "),
  );
  return [
    "| Variable | Type | Default | Accepted | What it sets |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((row) => `| ${row} |`),
  ].join("\n");
}
