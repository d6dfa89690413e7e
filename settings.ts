/**
 * Typed settings for the www.foobar.com stack.
 *
 * Every setting has a documented default and can be overridden by an
 * environment variable named `FOOBAR_<NAME>`. `loadSettings` validates every
 * value before any construct is created and throws a `SettingsError` whose
 * message is one line naming the variable, the value given and what is
 * accepted.
 */

import * as fs from "node:fs";

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

export interface Settings {
  /** Project name: prefixes tags, firewall names and the DigitalOcean project. `FOOBAR_PROJECT`. @default "foobar" */
  readonly project: string;
  /** DNS zone created on DigitalOcean. `FOOBAR_DOMAIN`. @default "foobar.com" */
  readonly domain: string;
  /** Host name of the site inside the zone. `FOOBAR_HOST_NAME`. @default "www" */
  readonly hostName: string;
  /** Also point the zone apex (`@`) at the load balancer. `FOOBAR_APEX_RECORD`. @default false */
  readonly apexRecord: boolean;
  /** TTL of the DNS records, in seconds (30 to 86400). `FOOBAR_DNS_TTL`. @default 300 */
  readonly dnsTtl: number;
  /** DigitalOcean region slug. `FOOBAR_REGION`. @default "nyc3" */
  readonly region: string;
  /** RFC 1918 range of the VPC, a /16 to /28. `FOOBAR_VPC_IP_RANGE`. @default "10.10.10.0/24" */
  readonly vpcIpRange: string;
  /** Number of web servers (1 to 10); the first holds the MySQL primary, the others replicas. `FOOBAR_WEB_SERVERS`. @default 2 */
  readonly webServers: number;
  /** Droplet image slug. `FOOBAR_IMAGE`. @default "ubuntu-24-04-x64" */
  readonly image: string;
  /** Droplet size slug for every droplet. `FOOBAR_SIZE`. @default "s-1vcpu-2gb" */
  readonly size: string;
  /** CIDRs allowed to reach SSH (port 22), comma separated. `FOOBAR_ADMIN_CIDRS`. @default - none: no SSH rule at all */
  readonly adminCidrs: readonly string[];
  /** Opt-in that allows 0.0.0.0/0 or ::/0 in `adminCidrs`. `FOOBAR_ALLOW_SSH_FROM_ANYWHERE`. @default false */
  readonly allowSshFromAnywhere: boolean;
  /** SSH key ids or fingerprints already in the DigitalOcean account, comma separated. `FOOBAR_SSH_KEYS`. @default - none */
  readonly sshKeys: readonly string[];
  /** Seconds a replica may lag before reads fall back to the primary and its health check fails (1 to 3600). `FOOBAR_REPLICA_MAX_LAG`. @default 10 */
  readonly replicaMaxLagSeconds: number;
  /** Folder with the application files to install on every web server. `FOOBAR_APP_DIR`. @default - the sample application in `app/` */
  readonly appDir?: string;
  /** Command that starts the application on 127.0.0.1:8000, run from the application folder. `FOOBAR_APP_COMMAND`. @default - Gunicorn serving the sample application */
  readonly appCommand?: string;
  /** Serve the site over HTTPS with a certificate from an ACME CA, redirecting HTTP. `FOOBAR_HTTPS`. @default true */
  readonly https: boolean;
  /** ACME directory the load balancer gets its certificate from. `FOOBAR_ACME_DIRECTORY_URL`. @default - Let's Encrypt production */
  readonly acmeDirectoryUrl: string;
  /** Contact e-mail of the ACME account; required when HTTPS is on. `FOOBAR_ACME_EMAIL`. @default - webmaster@ the domain (RFC 2142) */
  readonly acmeEmail: string;
  /** PEM file of an extra CA the load balancer trusts when talking to the ACME directory (a private or test CA). `FOOBAR_ACME_CA_FILE`. @default - the system's CAs only */
  readonly acmeCaFile?: string;
  /** `max-age` of the Strict-Transport-Security header, in seconds (0 to 63072000; 0 tells browsers to forget it). `FOOBAR_HSTS_MAX_AGE`. @default 31536000 */
  readonly hstsMaxAgeSeconds: number;
  /** Addresses that receive alerts, comma separated; alerts exist only if this or Slack is set. `FOOBAR_ALERT_EMAILS`. @default - none */
  readonly alertEmails: readonly string[];
  /** Slack incoming-webhook URL for alerts; needs `FOOBAR_ALERT_SLACK_CHANNEL`. `FOOBAR_ALERT_SLACK_WEBHOOK_URL`. @default - none */
  readonly alertSlackWebhookUrl?: string;
  /** Slack channel for alerts, such as #ops. `FOOBAR_ALERT_SLACK_CHANNEL`. @default - none */
  readonly alertSlackChannel?: string;
  /** CPU use above which a droplet alerts, in percent (1 to 100). `FOOBAR_ALERT_CPU_PERCENT`. @default 80 */
  readonly alertCpuPercent: number;
  /** Memory use above which a droplet alerts, in percent (1 to 100). `FOOBAR_ALERT_MEMORY_PERCENT`. @default 90 */
  readonly alertMemoryPercent: number;
  /** Disk use above which a droplet alerts, in percent (1 to 100). `FOOBAR_ALERT_DISK_PERCENT`. @default 85 */
  readonly alertDiskPercent: number;
  /** Site response time above which the uptime check alerts, in milliseconds (100 to 30000). `FOOBAR_ALERT_LATENCY_MS`. @default 2000 */
  readonly alertLatencyMs: number;
  /** Days before the certificate expires at which the uptime check alerts (1 to 60). `FOOBAR_ALERT_CERT_EXPIRY_DAYS`. @default 14 */
  readonly alertCertExpiryDays: number;
}

/** Let's Encrypt's production ACME directory: trusted certificates, strict rate limits. */
export const LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";
/** Let's Encrypt's staging ACME directory: untrusted certificates, generous rate limits, for trials. */
export const LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

export const DEFAULT_SETTINGS: Settings = {
  project: "foobar",
  domain: "foobar.com",
  hostName: "www",
  apexRecord: false,
  dnsTtl: 300,
  region: "nyc3",
  vpcIpRange: "10.10.10.0/24",
  webServers: 2,
  image: "ubuntu-24-04-x64",
  size: "s-1vcpu-2gb",
  adminCidrs: [],
  allowSshFromAnywhere: false,
  sshKeys: [],
  replicaMaxLagSeconds: 10,
  https: true,
  acmeDirectoryUrl: LETS_ENCRYPT_PRODUCTION,
  // webmaster@ the domain when FOOBAR_ACME_EMAIL is not set: see loadSettings.
  acmeEmail: "webmaster@foobar.com",
  hstsMaxAgeSeconds: 31_536_000,
  alertEmails: [],
  alertCpuPercent: 80,
  alertMemoryPercent: 90,
  alertDiskPercent: 85,
  alertLatencyMs: 2000,
  alertCertExpiryDays: 14,
};

/** Environment variables, in the order the README lists them. */
export const SETTING_VARIABLES: Record<keyof Settings, string> = {
  project: "FOOBAR_PROJECT",
  domain: "FOOBAR_DOMAIN",
  hostName: "FOOBAR_HOST_NAME",
  apexRecord: "FOOBAR_APEX_RECORD",
  dnsTtl: "FOOBAR_DNS_TTL",
  region: "FOOBAR_REGION",
  vpcIpRange: "FOOBAR_VPC_IP_RANGE",
  webServers: "FOOBAR_WEB_SERVERS",
  image: "FOOBAR_IMAGE",
  size: "FOOBAR_SIZE",
  adminCidrs: "FOOBAR_ADMIN_CIDRS",
  allowSshFromAnywhere: "FOOBAR_ALLOW_SSH_FROM_ANYWHERE",
  sshKeys: "FOOBAR_SSH_KEYS",
  replicaMaxLagSeconds: "FOOBAR_REPLICA_MAX_LAG",
  appDir: "FOOBAR_APP_DIR",
  appCommand: "FOOBAR_APP_COMMAND",
  https: "FOOBAR_HTTPS",
  acmeDirectoryUrl: "FOOBAR_ACME_DIRECTORY_URL",
  acmeEmail: "FOOBAR_ACME_EMAIL",
  acmeCaFile: "FOOBAR_ACME_CA_FILE",
  hstsMaxAgeSeconds: "FOOBAR_HSTS_MAX_AGE",
  alertEmails: "FOOBAR_ALERT_EMAILS",
  alertSlackWebhookUrl: "FOOBAR_ALERT_SLACK_WEBHOOK_URL",
  alertSlackChannel: "FOOBAR_ALERT_SLACK_CHANNEL",
  alertCpuPercent: "FOOBAR_ALERT_CPU_PERCENT",
  alertMemoryPercent: "FOOBAR_ALERT_MEMORY_PERCENT",
  alertDiskPercent: "FOOBAR_ALERT_DISK_PERCENT",
  alertLatencyMs: "FOOBAR_ALERT_LATENCY_MS",
  alertCertExpiryDays: "FOOBAR_ALERT_CERT_EXPIRY_DAYS",
};

type Environment = Readonly<Record<string, string | undefined>>;

/** A plain address such as ops@foobar.com (no display name, no spaces). */
const EMAIL = /^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$/;

function fail(variable: string, value: string, accepted: string): never {
  throw new SettingsError(`${variable} must be ${accepted}, got "${value}"`);
}

function wholeNumber(variable: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
    fail(variable, raw, `a whole number from ${min} to ${max}`);
  }
  return value;
}

function flag(variable: string, raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (["true", "1", "yes"].includes(value)) return true;
  if (["false", "0", "no", ""].includes(value)) return false;
  return fail(variable, raw, "true or false");
}

function list(raw: string): string[] {
  return raw
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** True for a lower-case DNS name of two or more labels with an alphabetic top-level label. */
export function isDomainName(value: string): boolean {
  const labels = value.split(".");
  return (
    value.length <= 253 &&
    labels.length >= 2 &&
    labels.every((label) => DNS_LABEL.test(label)) &&
    /^[a-z]{2,63}$/.test(labels[labels.length - 1])
  );
}

/** Parses `a.b.c.d/n` into a 32-bit network address and prefix length, or undefined. */
export function parseIpv4Cidr(value: string): { address: number; prefix: number } | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  if (!match) return undefined;
  const octets = match.slice(1, 5).map(Number);
  const prefix = Number(match[5]);
  if (octets.some((octet) => octet > 255) || prefix > 32) return undefined;
  const address = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
  return { address, prefix };
}

/** True for an IPv6 CIDR such as `2001:db8::/32` (syntax only). */
function isIpv6Cidr(value: string): boolean {
  const match = /^([0-9a-fA-F:]+)\/(\d{1,3})$/.exec(value);
  return match !== null && match[1].includes(":") && Number(match[2]) <= 128;
}

function isPrivateIpv4Range(address: number): boolean {
  const inRange = (base: string, prefix: number) => {
    const parsed = parseIpv4Cidr(`${base}/${prefix}`)!;
    const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
    return ((address & mask) >>> 0) === parsed.address;
  };
  return inRange("10.0.0.0", 8) || inRange("172.16.0.0", 12) || inRange("192.168.0.0", 16);
}

function validateVpcRange(variable: string, value: string): string {
  const cidr = parseIpv4Cidr(value);
  const accepted = "an RFC 1918 network in CIDR form from /16 to /28, such as 10.10.10.0/24";
  if (!cidr || cidr.prefix < 16 || cidr.prefix > 28 || !isPrivateIpv4Range(cidr.address)) {
    fail(variable, value, accepted);
  }
  const hostBits = 32 - cidr.prefix;
  if (cidr.address % 2 ** hostBits !== 0) fail(variable, value, `${accepted} (host bits zero)`);
  return value;
}

function validateAdminCidrs(cidrs: string[], allowAnywhere: boolean): string[] {
  const variable = SETTING_VARIABLES.adminCidrs;
  for (const cidr of cidrs) {
    if (!parseIpv4Cidr(cidr) && !isIpv6Cidr(cidr)) {
      fail(variable, cidr, "a comma-separated list of IPv4 or IPv6 CIDRs, such as 203.0.113.7/32");
    }
    const anywhere = cidr.endsWith("/0");
    if (anywhere && !allowAnywhere) {
      fail(
        variable,
        cidr,
        `a list of CIDRs narrower than /0 (SSH from anywhere needs ${SETTING_VARIABLES.allowSshFromAnywhere}=true)`,
      );
    }
  }
  return cidrs;
}

/**
 * Reads the settings from `env` over the defaults and validates them.
 *
 * @throws SettingsError with a one-line message for the first bad value.
 */
export function loadSettings(env: Environment = process.env): Settings {
  const raw = (key: keyof Settings): string | undefined => env[SETTING_VARIABLES[key]];
  const text = (key: keyof Settings, fallback: string): string => raw(key)?.trim() || fallback;
  const v = SETTING_VARIABLES;
  const d = DEFAULT_SETTINGS;

  const project = text("project", d.project);
  if (!/^[a-z][a-z0-9-]{1,30}$/.test(project)) {
    fail(v.project, project, "2 to 31 lower-case letters, digits or hyphens, starting with a letter");
  }

  const domain = text("domain", d.domain);
  if (!isDomainName(domain)) fail(v.domain, domain, "a lower-case domain name such as foobar.com");

  const hostName = text("hostName", d.hostName);
  if (!DNS_LABEL.test(hostName)) fail(v.hostName, hostName, "one lower-case DNS label such as www");

  const region = text("region", d.region);
  if (!(DIGITALOCEAN_REGIONS as readonly string[]).includes(region)) {
    fail(v.region, region, `one of ${DIGITALOCEAN_REGIONS.join(", ")}`);
  }

  const image = text("image", d.image);
  if (!(SUPPORTED_IMAGES as readonly string[]).includes(image)) {
    fail(v.image, image, `one of ${SUPPORTED_IMAGES.join(", ")}`);
  }

  const size = text("size", d.size);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(size)) fail(v.size, size, "a DigitalOcean size slug such as s-1vcpu-2gb");

  const allowSshFromAnywhere = raw("allowSshFromAnywhere") !== undefined
    ? flag(v.allowSshFromAnywhere, raw("allowSshFromAnywhere")!)
    : d.allowSshFromAnywhere;
  const adminCidrs = validateAdminCidrs(
    raw("adminCidrs") !== undefined ? list(raw("adminCidrs")!) : [...d.adminCidrs],
    allowSshFromAnywhere,
  );

  const sshKeys = raw("sshKeys") !== undefined ? list(raw("sshKeys")!) : [...d.sshKeys];
  for (const key of sshKeys) {
    if (!/^(\d+|([0-9a-f]{2}:){15}[0-9a-f]{2}|SHA256:[A-Za-z0-9+/=]+)$/.test(key)) {
      fail(v.sshKeys, key, "a comma-separated list of DigitalOcean SSH key ids or fingerprints");
    }
  }

  const appDir = raw("appDir")?.trim() || d.appDir;
  const appCommand = raw("appCommand")?.trim() || d.appCommand;
  if (appCommand !== undefined && /[\n\r]/.test(appCommand)) {
    fail(v.appCommand, appCommand, "a single-line command");
  }

  const https = raw("https") !== undefined ? flag(v.https, raw("https")!) : d.https;
  const acmeDirectoryUrl = text("acmeDirectoryUrl", d.acmeDirectoryUrl);
  if (!/^https:\/\/[^\s/]+(\/\S*)?$/.test(acmeDirectoryUrl)) {
    fail(v.acmeDirectoryUrl, acmeDirectoryUrl, `an https:// URL such as ${LETS_ENCRYPT_STAGING}`);
  }
  // Set but empty is a mistake worth stopping for; unset means the RFC 2142 mailbox.
  const acmeEmail = raw("acmeEmail") !== undefined ? raw("acmeEmail")!.trim() : `webmaster@${domain}`;
  if (https && !EMAIL.test(acmeEmail)) {
    fail(v.acmeEmail, acmeEmail, `an e-mail address while ${v.https} is on, such as ops@${domain}`);
  }
  const acmeCaFile = raw("acmeCaFile")?.trim() || d.acmeCaFile;
  if (acmeCaFile !== undefined) readCaFile(acmeCaFile);

  const alertEmails = raw("alertEmails") !== undefined ? list(raw("alertEmails")!) : [...d.alertEmails];
  for (const email of alertEmails) {
    if (!EMAIL.test(email)) fail(v.alertEmails, email, "a comma-separated list of e-mail addresses");
  }
  const alertSlackWebhookUrl = raw("alertSlackWebhookUrl")?.trim() || d.alertSlackWebhookUrl;
  const alertSlackChannel = raw("alertSlackChannel")?.trim() || d.alertSlackChannel;
  if (alertSlackWebhookUrl !== undefined && !/^https:\/\/hooks\.slack\.com\/\S+$/.test(alertSlackWebhookUrl)) {
    fail(v.alertSlackWebhookUrl, alertSlackWebhookUrl, "a Slack incoming-webhook URL (https://hooks.slack.com/…)");
  }
  if ((alertSlackWebhookUrl === undefined) !== (alertSlackChannel === undefined)) {
    const [missing, present] = alertSlackWebhookUrl === undefined
      ? [v.alertSlackWebhookUrl, v.alertSlackChannel]
      : [v.alertSlackChannel, v.alertSlackWebhookUrl];
    fail(missing, "", `set as well when ${present} is set`);
  }
  type NumberSetting = { [K in keyof Settings]-?: Settings[K] extends number ? K : never }[keyof Settings];
  const number = (key: NumberSetting, min: number, max: number): number =>
    raw(key) !== undefined ? wholeNumber(v[key], raw(key)!, min, max) : d[key];

  return {
    project,
    domain,
    hostName,
    apexRecord: raw("apexRecord") !== undefined ? flag(v.apexRecord, raw("apexRecord")!) : d.apexRecord,
    dnsTtl: number("dnsTtl", 30, 86400),
    region,
    vpcIpRange: validateVpcRange(v.vpcIpRange, text("vpcIpRange", d.vpcIpRange)),
    webServers: number("webServers", 1, MAX_WEB_SERVERS),
    image,
    size,
    adminCidrs,
    allowSshFromAnywhere,
    sshKeys,
    replicaMaxLagSeconds: number("replicaMaxLagSeconds", 1, 3600),
    appDir,
    appCommand,
    https,
    acmeDirectoryUrl,
    acmeEmail,
    acmeCaFile,
    hstsMaxAgeSeconds: number("hstsMaxAgeSeconds", 0, 63_072_000),
    alertEmails,
    alertSlackWebhookUrl,
    alertSlackChannel,
    alertCpuPercent: number("alertCpuPercent", 1, 100),
    alertMemoryPercent: number("alertMemoryPercent", 1, 100),
    alertDiskPercent: number("alertDiskPercent", 1, 100),
    alertLatencyMs: number("alertLatencyMs", 100, 30_000),
    alertCertExpiryDays: number("alertCertExpiryDays", 1, 60),
  };
}

/**
 * Reads the PEM certificates of `FOOBAR_ACME_CA_FILE`.
 *
 * @throws SettingsError when the file is missing or holds no certificate.
 */
export function readCaFile(file: string): string {
  const variable = SETTING_VARIABLES.acmeCaFile;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return fail(variable, file, "a readable PEM file of CA certificates");
  }
  const certificates = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!certificates) fail(variable, file, "a PEM file holding at least one CERTIFICATE block");
  return certificates.join("\n") + "\n";
}
