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

import { z } from "zod";

import { webServerName } from "../names";
import {
  adminCidr,
  Declaration,
  declare,
  email,
  flag,
  fromSchema,
  httpsUrl,
  ipv4Network,
  list,
  oneOf,
  optional,
  text,
  ValueType,
  webhookUrl,
  wholeNumber,
} from "./value-types";

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
 * Spaces regions: where a state or backup bucket can be (Spaces Standard
 * Storage, as DigitalOcean's availability page listed it in March 2026).
 *
 * @see https://docs.digitalocean.com/products/spaces/details/availability/
 */
export const SPACES_REGIONS = ["ams3", "atl1", "blr1", "fra1", "lon1", "nyc3", "sfo2", "sfo3", "sgp1", "syd1", "tor1"] as const;

/** A Spaces (S3) bucket name: 3 to 63 lower-case letters, digits or hyphens, starting and ending with a letter or digit. */
export const SPACES_BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** An age X25519 recipient: `age1` and 58 bech32 characters. */
export const AGE_RECIPIENT_PATTERN = /^age1[02-9ac-hj-np-z]{58}$/;

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

/** A Spaces bucket's name, for the state and the backups. */
const spacesBucket = text("a Spaces bucket name: 3 to 63 lower-case letters, digits or hyphens", SPACES_BUCKET_NAME);

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
    default: webServerName(1),
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
      "`true` lets Terraform delete the volumes (MySQL data, certificates) and the backup bucket (once empty) on `cdktf destroy`, " +
      "on a replacement and when their server (or `FOOBAR_BACKUP_BUCKET`) leaves the configuration; otherwise it refuses the first two " +
      "(`prevent_destroy`) and forgets, not deletes, what left (`removed` blocks): nothing is deleted",
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
  monitoring: declare({
    variable: "FOOBAR_MONITORING",
    valueType: flag,
    default: true,
    description:
      "a monitoring server, mon-01 (Prometheus, Alertmanager, its data on a volume; about $7/month with the default size " +
      "and volume), scraping every droplet's exporters over the VPC and alerting on this stack's failures (docs/monitoring.md)",
  }),
  monitoringSize: declare({
    variable: "FOOBAR_MONITORING_SIZE",
    valueType: text("a DigitalOcean size slug such as s-1vcpu-1gb", /^[a-z0-9][a-z0-9-]*$/),
    default: "s-1vcpu-1gb",
    description: "mon-01's size; needs `FOOBAR_MONITORING=true`",
  }),
  monitoringVolumeGib: declare({
    variable: "FOOBAR_MONITORING_VOLUME_SIZE",
    valueType: wholeNumber(1, 16_384),
    default: 10,
    description: "size in GiB of mon-01's volume, Prometheus' data (15 days kept); grows in place, never shrinks",
  }),
  alertWebhookUrl: declare({
    variable: "FOOBAR_ALERT_WEBHOOK_URL",
    valueType: optional(webhookUrl("an http:// or https:// URL such as https://alerts.example.com/hook")),
    default: undefined,
    description: "a URL Alertmanager posts every alert and its resolution to (its webhook format); needs `FOOBAR_MONITORING=true`",
  }),
  alertSmtpSmarthost: declare({
    variable: "FOOBAR_ALERT_SMTP_SMARTHOST",
    valueType: optional(text("host:port of an SMTP relay such as smtp.sendgrid.net:587", /^[A-Za-z0-9.-]+:\d{1,5}$/)),
    default: undefined,
    description:
      "the SMTP relay Alertmanager sends e-mail to `FOOBAR_ALERT_EMAILS` through (DigitalOcean blocks outbound port 25); " +
      "without it only DigitalOcean's own alerts send e-mail",
  }),
  alertSmtpFrom: declare({
    variable: "FOOBAR_ALERT_SMTP_FROM",
    valueType: optional(email("an e-mail address")),
    default: undefined,
    description: "the sender of Alertmanager's e-mail; needs `FOOBAR_ALERT_SMTP_SMARTHOST`",
  }),
  alertSmtpUsername: declare({
    variable: "FOOBAR_ALERT_SMTP_USERNAME",
    valueType: optional(text("the relay's user name", /^\S+$/)),
    default: undefined,
    description: "the SMTP relay's user; its password is the Terraform variable `alert_smtp_password`",
  }),
  alert5xxPercent: declare({
    variable: "FOOBAR_ALERT_5XX_PERCENT",
    valueType: wholeNumber(1, 100),
    default: 5,
    description: "share of the site's answers over 2 minutes that are 5xx, in percent, above which mon-01 alerts",
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
    valueType: optional(spacesBucket),
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
  backupBucket: declare<string | undefined>({
    variable: "FOOBAR_BACKUP_BUCKET",
    valueType: optional(spacesBucket),
    default: undefined,
    defaultText: "none: **no backups**",
    description:
      "create this Spaces bucket (versioned, protected like the volumes) and a key that can use it and nothing else, for the " +
      "web servers' database backups; not `FOOBAR_STATE_BUCKET`. Terraform needs `SPACES_ACCESS_KEY_ID`/`SPACES_SECRET_ACCESS_KEY` " +
      "at deploy time (see [Backups](docs/database.md#backups))",
  }),
  backupRegion: declare<string | undefined>({
    variable: "FOOBAR_BACKUP_REGION",
    valueType: optional(oneOf(SPACES_REGIONS)),
    default: undefined,
    defaultText: "`FOOBAR_REGION` if Spaces has it",
    description: "the backup bucket's region; needs `FOOBAR_BACKUP_BUCKET`",
  }),
  backupRecipient: declare<string | undefined>({
    variable: "FOOBAR_BACKUP_RECIPIENT",
    valueType: optional(text("an age recipient: age1 and 58 lower-case bech32 characters", AGE_RECIPIENT_PATTERN)),
    default: undefined,
    description:
      "the age public key every backup is encrypted to (`age-keygen -o backup-identity.txt` prints it; the identity file " +
      "stays with you, never on a droplet); required with `FOOBAR_BACKUP_BUCKET`",
  }),
  backupRetentionDays: declare({
    variable: "FOOBAR_BACKUP_RETENTION_DAYS",
    valueType: wholeNumber(1, 3650),
    default: 30,
    description: "days the bucket keeps a backup, and an overwritten or deleted one's old version; needs `FOOBAR_BACKUP_BUCKET`",
  }),
  backupEveryHours: declare({
    variable: "FOOBAR_BACKUP_EVERY_HOURS",
    valueType: wholeNumber(1, 168),
    default: 24,
    description: "hours between base backups; needs `FOOBAR_BACKUP_BUCKET`",
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
