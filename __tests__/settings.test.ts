import { randomBytes } from "node:crypto";

import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { synthCli, synthInProcess, SynthRun } from "./helpers";

/** A made-up token of the right shape (not a secret). */
const FAKE_TOKEN = `dop_v1_${"0123456789abcdef".repeat(4)}`;
/** A well-formed age recipient (what `age-keygen` prints; nobody holds its identity). */
const RECIPIENT = `age1${"qpzry9x8gf2tvdw0s3jn54khce6mua7l".repeat(2).slice(0, 58)}`;
import { DEFAULT_SETTINGS, loadSettings, SETTINGS, SettingsError, settingsTable } from "../settings";

const caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "foobar-ca-")), "ca.pem");
fs.writeFileSync(caFile, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
const notPem = path.join(path.dirname(caFile), "not.pem");
fs.writeFileSync(notPem, "hello\n");

describe("settings", () => {
  test("with no FOOBAR_ variables, every setting has its documented default", () => {
    expect(loadSettings({})).toEqual({ ...DEFAULT_SETTINGS, appDir: undefined, appCommand: undefined });
  });

  test("every setting can be overridden by its FOOBAR_ variable", () => {
    const settings = loadSettings({
      FOOBAR_PROJECT: "shop",
      FOOBAR_DOMAIN: "example.org",
      FOOBAR_HOST_NAME: "shop",
      FOOBAR_APEX_RECORD: "true",
      FOOBAR_DNS_TTL: "60",
      FOOBAR_REGION: "fra1",
      FOOBAR_VPC_IP_RANGE: "172.16.8.0/22",
      FOOBAR_WEB_SERVERS: "3",
      FOOBAR_IMAGE: "ubuntu-26-04-x64",
      FOOBAR_SIZE: "s-2vcpu-4gb",
      FOOBAR_ADMIN_CIDRS: "203.0.113.7/32, 198.51.100.0/24",
      FOOBAR_SSH_KEYS: "12345,3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa",
      FOOBAR_REPLICA_MAX_LAG: "30",
      FOOBAR_DB_VOLUME_SIZE: "50",
      FOOBAR_ALLOW_DATA_LOSS: "true",
      FOOBAR_APP_DIR: "/opt/my-app",
      FOOBAR_APP_COMMAND: "/usr/bin/gunicorn --bind 127.0.0.1:8000 wsgi:app",
      FOOBAR_HTTPS: "false",
      FOOBAR_ACME_DIRECTORY_URL: "https://acme-staging-v02.api.letsencrypt.org/directory",
      FOOBAR_ACME_EMAIL: "ops@example.org",
      FOOBAR_ACME_CA_FILE: caFile,
      FOOBAR_HSTS_MAX_AGE: "300",
      FOOBAR_ALERT_EMAILS: "ops@example.org, oncall@example.org",
      FOOBAR_ALERT_SLACK_WEBHOOK_URL: "https://hooks.slack.com/services/T000/B000/XXXX",
      FOOBAR_ALERT_SLACK_CHANNEL: "#ops",
      FOOBAR_ALERT_CPU_PERCENT: "70",
      FOOBAR_ALERT_MEMORY_PERCENT: "75",
      FOOBAR_ALERT_DISK_PERCENT: "80",
      FOOBAR_ALERT_LATENCY_MS: "1500",
      FOOBAR_ALERT_CERT_EXPIRY_DAYS: "21",
      FOOBAR_MONITORING: "true",
      FOOBAR_MONITORING_SIZE: "s-1vcpu-2gb",
      FOOBAR_MONITORING_VOLUME_SIZE: "20",
      FOOBAR_ALERT_WEBHOOK_URL: "https://alerts.example.org/hook",
      FOOBAR_ALERT_SMTP_SMARTHOST: "smtp.example.org:587",
      FOOBAR_ALERT_SMTP_FROM: "alertmanager@example.org",
      FOOBAR_ALERT_SMTP_USERNAME: "alerts",
      FOOBAR_ALERT_5XX_PERCENT: "2",
      FOOBAR_ENVIRONMENTS: "staging, production",
      FOOBAR_ENVIRONMENTS_DIR: "/srv/foobar-environments",
      FOOBAR_STATE_BUCKET: "shop-terraform-state",
      FOOBAR_STATE_REGION: "fra1",
      FOOBAR_STATE_LOCKING: "false",
      FOOBAR_LOAD_BALANCERS: "2",
      FOOBAR_DB_PRIMARY: "web-02",
      FOOBAR_DB_SEMI_SYNC_TIMEOUT: "5000",
      FOOBAR_FAILOVER_TOKEN: FAKE_TOKEN,
      FOOBAR_BACKUP_BUCKET: "shop-backups",
      FOOBAR_BACKUP_REGION: "ams3",
      FOOBAR_BACKUP_RECIPIENT: RECIPIENT,
      FOOBAR_BACKUP_RETENTION_DAYS: "90",
      FOOBAR_BACKUP_EVERY_HOURS: "6",
    });
    expect(settings).toEqual({
      loadBalancers: 2,
      databasePrimary: "web-02",
      semiSyncTimeoutMs: 5000,
      failoverToken: FAKE_TOKEN,
      project: "shop",
      domain: "example.org",
      hostName: "shop",
      apexRecord: true,
      dnsTtl: 60,
      region: "fra1",
      vpcIpRange: "172.16.8.0/22",
      webServers: 3,
      image: "ubuntu-26-04-x64",
      size: "s-2vcpu-4gb",
      adminCidrs: ["203.0.113.7/32", "198.51.100.0/24"],
      allowSshFromAnywhere: false,
      sshKeys: ["12345", "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"],
      replicaMaxLagSeconds: 30,
      databaseVolumeGib: 50,
      allowDataLoss: true,
      appDir: "/opt/my-app",
      appCommand: "/usr/bin/gunicorn --bind 127.0.0.1:8000 wsgi:app",
      https: false,
      acmeDirectoryUrl: "https://acme-staging-v02.api.letsencrypt.org/directory",
      acmeEmail: "ops@example.org",
      acmeCaFile: caFile,
      hstsMaxAgeSeconds: 300,
      alertEmails: ["ops@example.org", "oncall@example.org"],
      alertSlackWebhookUrl: "https://hooks.slack.com/services/T000/B000/XXXX",
      alertSlackChannel: "#ops",
      alertCpuPercent: 70,
      alertMemoryPercent: 75,
      alertDiskPercent: 80,
      alertLatencyMs: 1500,
      alertCertExpiryDays: 21,
      monitoring: true,
      monitoringSize: "s-1vcpu-2gb",
      monitoringVolumeGib: 20,
      alertWebhookUrl: "https://alerts.example.org/hook",
      alertSmtpSmarthost: "smtp.example.org:587",
      alertSmtpFrom: "alertmanager@example.org",
      alertSmtpUsername: "alerts",
      alert5xxPercent: 2,
      environments: ["staging", "production"],
      environmentsDir: "/srv/foobar-environments",
      stateBucket: "shop-terraform-state",
      stateRegion: "fra1",
      stateLocking: false,
      backupBucket: "shop-backups",
      backupRegion: "ams3",
      backupRecipient: RECIPIENT,
      backupRetentionDays: 90,
      backupEveryHours: 6,
    });
  });

  test("the ACME contact defaults to webmaster@ the domain (RFC 2142)", () => {
    expect(loadSettings({ FOOBAR_DOMAIN: "example.org" }).acmeEmail).toBe("webmaster@example.org");
  });

  test("SSH from anywhere is accepted only with the explicit opt-in, in canonical form", () => {
    expect(loadSettings({ FOOBAR_ADMIN_CIDRS: "0.0.0.0/00", FOOBAR_ALLOW_SSH_FROM_ANYWHERE: "true" }).adminCidrs).toEqual(["0.0.0.0/0"]);
  });

  test("admin CIDRs covering a /8 in all need no opt-in; overlaps count once", () => {
    expect(loadSettings({ FOOBAR_ADMIN_CIDRS: "10.0.0.0/8,10.1.0.0/16" }).adminCidrs).toEqual(["10.0.0.0/8", "10.1.0.0/16"]);
  });

  test.each(Object.values(SETTINGS).map((declaration) => declaration.variable))(
    "%s set but empty or blank is an error, never the default or false",
    (variable) => {
      for (const value of ["", " ", "\t"]) {
        expect(() => loadSettings({ [variable]: value })).toThrow(
          new RegExp(`^${variable} is set but empty: unset it to take the default \\(.+\\)$`),
        );
      }
    },
  );

  test("FOOBAR_HTTPS set but empty names the default it would take", () => {
    expect(() => loadSettings({ FOOBAR_HTTPS: "" })).toThrow(
      new SettingsError("FOOBAR_HTTPS is set but empty: unset it to take the default (true)"),
    );
  });

  test.each([
    ["FOOBAR_WEBSERVERS", "FOOBAR_WEB_SERVERS"],
    ["FOOBAR_ADMIN_CIDR", "FOOBAR_ADMIN_CIDRS"],
    ["FOOBAR_SSH_KEY", "FOOBAR_SSH_KEYS"],
    ["FOOBAR_HTTP", "FOOBAR_HTTPS"],
    ["FOOBAR_ACME_CA", "FOOBAR_ACME_CA_FILE"],
  ])("the unknown variable %s is an error naming the closest setting, %s", (unknown, closest) => {
    expect(() => loadSettings({ [unknown]: "x" })).toThrow(
      new SettingsError(`${unknown} is not a setting: did you mean ${closest}? (see the README's settings table)`),
    );
  });

  test("FOOBAR_LAB_* variables belong to the lab and are left alone", () => {
    expect(() =>
      loadSettings({ FOOBAR_LAB_CACHE: "/var/cache/x", FOOBAR_LAB_STATE: "", FOOBAR_LAB_BOOT_TIMEOUT: "60", FOOBAR_LAB_ANYTHING: "1" }),
    ).not.toThrow();
  });

  test("variables of other programs are left alone", () => {
    expect(() => loadSettings({ DIGITALOCEAN_TOKEN: "", FOOBARX: "1", foobar_https: "" })).not.toThrow();
  });

  test.each([
    ["FOOBAR_DOMAIN", "not a domain", 'FOOBAR_DOMAIN must be a lower-case domain name such as foobar.com, got "not a domain"'],
    ["FOOBAR_DOMAIN", "foobar", 'FOOBAR_DOMAIN must be a lower-case domain name such as foobar.com, got "foobar"'],
    [
      "FOOBAR_REGION",
      "mars1",
      'FOOBAR_REGION must be one of ams3, atl1, blr1, fra1, lon1, nyc1, nyc2, nyc3, sfo2, sfo3, sgp1, syd1, tor1, got "mars1"',
    ],
    ["FOOBAR_WEB_SERVERS", "0", 'FOOBAR_WEB_SERVERS must be a whole number from 1 to 10, got "0"'],
    ["FOOBAR_WEB_SERVERS", "two", 'FOOBAR_WEB_SERVERS must be a whole number from 1 to 10, got "two"'],
    [
      "FOOBAR_ADMIN_CIDRS",
      "10.0.0.300/8",
      'FOOBAR_ADMIN_CIDRS must be a comma-separated list of IPv4 CIDRs such as 203.0.113.7/32, got "10.0.0.300/8"',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      "010.0.0.1/32",
      'FOOBAR_ADMIN_CIDRS must be a comma-separated list of IPv4 CIDRs such as 203.0.113.7/32, got "010.0.0.1/32"',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      "203.0.113.7",
      'FOOBAR_ADMIN_CIDRS must be a comma-separated list of IPv4 CIDRs such as 203.0.113.7/32, got "203.0.113.7"',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      "203.0.113.7/24",
      'FOOBAR_ADMIN_CIDRS must be a comma-separated list of IPv4 CIDRs such as 203.0.113.7/32, got "203.0.113.7/24": host bits are set, the network is 203.0.113.0/24',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      "203.0.113.7/32,,198.51.100.0/24",
      'FOOBAR_ADMIN_CIDRS must be a comma-separated list of IPv4 CIDRs such as 203.0.113.7/32, got "203.0.113.7/32,,198.51.100.0/24": an item is empty: remove the extra comma',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      ":::::/64",
      'FOOBAR_ADMIN_CIDRS must be a comma-separated list of IPv4 CIDRs such as 203.0.113.7/32, got ":::::/64"',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      "2001:db8::/48",
      'FOOBAR_ADMIN_CIDRS must be a comma-separated list of IPv4 CIDRs such as 203.0.113.7/32, got "2001:db8::/48": the droplets have no IPv6 address, so an IPv6 SSH rule could never match',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      "::/000",
      'FOOBAR_ADMIN_CIDRS must be a comma-separated list of IPv4 CIDRs such as 203.0.113.7/32, got "::/000": the droplets have no IPv6 address, so an IPv6 SSH rule could never match',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      "0.0.0.0/0",
      'FOOBAR_ADMIN_CIDRS must cover at most a /8 (16777216 addresses) without FOOBAR_ALLOW_SSH_FROM_ANYWHERE=true, got "0.0.0.0/0": 4294967296 addresses, the whole internet',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      "0.0.0.0/00",
      'FOOBAR_ADMIN_CIDRS must cover at most a /8 (16777216 addresses) without FOOBAR_ALLOW_SSH_FROM_ANYWHERE=true, got "0.0.0.0/0": 4294967296 addresses, the whole internet',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      "0.0.0.0/1,128.0.0.0/1",
      'FOOBAR_ADMIN_CIDRS must cover at most a /8 (16777216 addresses) without FOOBAR_ALLOW_SSH_FROM_ANYWHERE=true, got "0.0.0.0/1,128.0.0.0/1": 4294967296 addresses, the whole internet',
    ],
    [
      "FOOBAR_ADMIN_CIDRS",
      "10.0.0.0/8,11.0.0.0/24",
      'FOOBAR_ADMIN_CIDRS must cover at most a /8 (16777216 addresses) without FOOBAR_ALLOW_SSH_FROM_ANYWHERE=true, got "10.0.0.0/8,11.0.0.0/24": 16777472 addresses',
    ],
    [
      "FOOBAR_VPC_IP_RANGE",
      "8.8.8.0/24",
      'FOOBAR_VPC_IP_RANGE must be an RFC 1918 network in CIDR form from /16 to /28, such as 10.10.10.0/24, got "8.8.8.0/24"',
    ],
    [
      "FOOBAR_VPC_IP_RANGE",
      "10.10.10.1/24",
      'FOOBAR_VPC_IP_RANGE must be an RFC 1918 network in CIDR form from /16 to /28, such as 10.10.10.0/24, got "10.10.10.1/24": host bits are set, the network is 10.10.10.0/24',
    ],
    ["FOOBAR_IMAGE", "debian-12-x64", 'FOOBAR_IMAGE must be one of ubuntu-24-04-x64, ubuntu-26-04-x64, got "debian-12-x64"'],
    ["FOOBAR_DNS_TTL", "5", 'FOOBAR_DNS_TTL must be a whole number from 30 to 86400, got "5"'],
    ["FOOBAR_ALLOW_SSH_FROM_ANYWHERE", "maybe", 'FOOBAR_ALLOW_SSH_FROM_ANYWHERE must be true or false, got "maybe"'],
    ["FOOBAR_HTTPS", "sometimes", 'FOOBAR_HTTPS must be true or false, got "sometimes"'],
    ["FOOBAR_HTTPS", "0", 'FOOBAR_HTTPS must be true or false, got "0"'],
    ["FOOBAR_ACME_EMAIL", "ops at foobar", 'FOOBAR_ACME_EMAIL must be an e-mail address such as ops@foobar.com, got "ops at foobar"'],
    [
      "FOOBAR_ACME_DIRECTORY_URL",
      "http://acme.example/dir",
      'FOOBAR_ACME_DIRECTORY_URL must be an https:// URL such as https://acme-staging-v02.api.letsencrypt.org/directory, got "http://acme.example/dir"',
    ],
    [
      "FOOBAR_ACME_CA_FILE",
      "/nonexistent/ca.pem",
      'FOOBAR_ACME_CA_FILE must be a readable PEM file of CA certificates, got "/nonexistent/ca.pem"',
    ],
    ["FOOBAR_ACME_CA_FILE", notPem, `FOOBAR_ACME_CA_FILE must be a PEM file holding at least one CERTIFICATE block, got "${notPem}"`],
    ["FOOBAR_HSTS_MAX_AGE", "-1", 'FOOBAR_HSTS_MAX_AGE must be a whole number from 0 to 63072000, got "-1"'],
    ["FOOBAR_ALERT_EMAILS", "ops", 'FOOBAR_ALERT_EMAILS must be a comma-separated list of e-mail addresses, got "ops"'],
    [
      "FOOBAR_ALERT_SLACK_WEBHOOK_URL",
      "https://example.com/hook",
      'FOOBAR_ALERT_SLACK_WEBHOOK_URL must be a Slack incoming-webhook URL (https://hooks.slack.com/…), got "https://example.com/hook"',
    ],
    [
      "FOOBAR_ALERT_SLACK_WEBHOOK_URL",
      "https://hooks.slack.com/services/T/B/X",
      "FOOBAR_ALERT_SLACK_CHANNEL must be set as well when FOOBAR_ALERT_SLACK_WEBHOOK_URL is set",
    ],
    ["FOOBAR_ALERT_CPU_PERCENT", "101", 'FOOBAR_ALERT_CPU_PERCENT must be a whole number from 1 to 100, got "101"'],
    ["FOOBAR_ALERT_LATENCY_MS", "10", 'FOOBAR_ALERT_LATENCY_MS must be a whole number from 100 to 30000, got "10"'],
    ["FOOBAR_ALERT_CERT_EXPIRY_DAYS", "0", 'FOOBAR_ALERT_CERT_EXPIRY_DAYS must be a whole number from 1 to 60, got "0"'],
  ])("throws when %s is %p, naming the setting, the value and what is accepted", (variable, value, message) => {
    expect(() => loadSettings({ [variable]: value })).toThrow(new SettingsError(message));
  });
});

describe("backups (FOOBAR_BACKUP_*)", () => {
  const on = { FOOBAR_BACKUP_BUCKET: "foobar-backups", FOOBAR_BACKUP_RECIPIENT: RECIPIENT };

  test("are off by default: no bucket, no recipient, no region", () => {
    const settings = loadSettings({});
    expect([settings.backupBucket, settings.backupRecipient, settings.backupRegion]).toEqual([undefined, undefined, undefined]);
    expect([settings.backupRetentionDays, settings.backupEveryHours]).toEqual([30, 24]);
  });

  test("with a bucket and a recipient, the bucket is in FOOBAR_REGION when Spaces has it, or in FOOBAR_BACKUP_REGION", () => {
    expect(loadSettings(on)).toEqual(
      expect.objectContaining({ backupBucket: "foobar-backups", backupRecipient: RECIPIENT, backupRegion: "nyc3" }),
    );
    expect(loadSettings({ ...on, FOOBAR_REGION: "fra1" }).backupRegion).toBe("fra1");
    expect(loadSettings({ ...on, FOOBAR_REGION: "nyc1", FOOBAR_BACKUP_REGION: "nyc3" }).backupRegion).toBe("nyc3");
  });

  test.each([
    [
      { FOOBAR_BACKUP_BUCKET: "Foobar_Backups" },
      'FOOBAR_BACKUP_BUCKET must be a Spaces bucket name: 3 to 63 lower-case letters, digits or hyphens, got "Foobar_Backups"',
    ],
    [
      { FOOBAR_BACKUP_BUCKET: "ab" },
      'FOOBAR_BACKUP_BUCKET must be a Spaces bucket name: 3 to 63 lower-case letters, digits or hyphens, got "ab"',
    ],
    [
      { FOOBAR_BACKUP_BUCKET: "-backups" },
      'FOOBAR_BACKUP_BUCKET must be a Spaces bucket name: 3 to 63 lower-case letters, digits or hyphens, got "-backups"',
    ],
    [
      { FOOBAR_BACKUP_BUCKET: "backups-" },
      'FOOBAR_BACKUP_BUCKET must be a Spaces bucket name: 3 to 63 lower-case letters, digits or hyphens, got "backups-"',
    ],
    [
      { FOOBAR_BACKUP_BUCKET: "b".repeat(64) },
      `FOOBAR_BACKUP_BUCKET must be a Spaces bucket name: 3 to 63 lower-case letters, digits or hyphens, got "${"b".repeat(64)}"`,
    ],
    [
      { ...on, FOOBAR_BACKUP_REGION: "nyc1" },
      'FOOBAR_BACKUP_REGION must be one of ams3, atl1, blr1, fra1, lon1, nyc3, sfo2, sfo3, sgp1, syd1, tor1, got "nyc1"',
    ],
    [
      { ...on, FOOBAR_BACKUP_RECIPIENT: "age1abc" },
      'FOOBAR_BACKUP_RECIPIENT must be an age recipient: age1 and 58 lower-case bech32 characters, got "age1abc"',
    ],
    [
      { ...on, FOOBAR_BACKUP_RECIPIENT: `age1${"b".repeat(58)}` },
      `FOOBAR_BACKUP_RECIPIENT must be an age recipient: age1 and 58 lower-case bech32 characters, got "age1${"b".repeat(58)}"`,
    ],
    [{ ...on, FOOBAR_BACKUP_RETENTION_DAYS: "0" }, 'FOOBAR_BACKUP_RETENTION_DAYS must be a whole number from 1 to 3650, got "0"'],
    [{ ...on, FOOBAR_BACKUP_RETENTION_DAYS: "3651" }, 'FOOBAR_BACKUP_RETENTION_DAYS must be a whole number from 1 to 3650, got "3651"'],
    [{ ...on, FOOBAR_BACKUP_EVERY_HOURS: "0" }, 'FOOBAR_BACKUP_EVERY_HOURS must be a whole number from 1 to 168, got "0"'],
    [{ ...on, FOOBAR_BACKUP_EVERY_HOURS: "1.5" }, 'FOOBAR_BACKUP_EVERY_HOURS must be a whole number from 1 to 168, got "1.5"'],
    [
      { FOOBAR_BACKUP_BUCKET: "foobar-backups" },
      "FOOBAR_BACKUP_RECIPIENT must be set when FOOBAR_BACKUP_BUCKET is set: run `age-keygen -o backup-identity.txt`, set this to the public key it prints (age1…), and keep the identity file yourself, off the droplets",
    ],
    [
      { FOOBAR_BACKUP_RECIPIENT: RECIPIENT },
      "FOOBAR_BACKUP_RECIPIENT is set but FOOBAR_BACKUP_BUCKET is not: set FOOBAR_BACKUP_BUCKET to turn backups on, or unset FOOBAR_BACKUP_RECIPIENT",
    ],
    [
      { FOOBAR_BACKUP_REGION: "ams3" },
      "FOOBAR_BACKUP_REGION is set but FOOBAR_BACKUP_BUCKET is not: set FOOBAR_BACKUP_BUCKET to turn backups on, or unset FOOBAR_BACKUP_REGION",
    ],
    [
      { FOOBAR_BACKUP_RETENTION_DAYS: "7" },
      "FOOBAR_BACKUP_RETENTION_DAYS is set but FOOBAR_BACKUP_BUCKET is not: set FOOBAR_BACKUP_BUCKET to turn backups on, or unset FOOBAR_BACKUP_RETENTION_DAYS",
    ],
    [
      { FOOBAR_BACKUP_EVERY_HOURS: "6" },
      "FOOBAR_BACKUP_EVERY_HOURS is set but FOOBAR_BACKUP_BUCKET is not: set FOOBAR_BACKUP_BUCKET to turn backups on, or unset FOOBAR_BACKUP_EVERY_HOURS",
    ],
    [
      { ...on, FOOBAR_STATE_BUCKET: "foobar-backups" },
      'FOOBAR_BACKUP_BUCKET must differ from FOOBAR_STATE_BUCKET, both are "foobar-backups": a web server\'s key may overwrite and delete anything in the backup bucket',
    ],
    [
      { ...on, FOOBAR_REGION: "nyc1" },
      'FOOBAR_BACKUP_REGION must be set when FOOBAR_BACKUP_BUCKET is set and FOOBAR_REGION is "nyc1", which has no Spaces: one of ams3, atl1, blr1, fra1, lon1, nyc3, sfo2, sfo3, sgp1, syd1, tor1',
    ],
  ])("throws for %p, in one line naming the variable, the value and what is accepted", (env, message) => {
    expect(() => loadSettings(env)).toThrow(new SettingsError(message));
  });
});

describe("the monitoring server (FOOBAR_MONITORING and its alerts' destinations)", () => {
  test("is on by default, with no webhook and no SMTP relay", () => {
    const settings = loadSettings({});
    expect([settings.monitoring, settings.monitoringSize, settings.monitoringVolumeGib]).toEqual([true, "s-1vcpu-1gb", 10]);
    expect([settings.alertWebhookUrl, settings.alertSmtpSmarthost]).toEqual([undefined, undefined]);
  });

  test.each([
    [
      { FOOBAR_ALERT_WEBHOOK_URL: "ftp://example.org/hook" },
      'FOOBAR_ALERT_WEBHOOK_URL must be an http:// or https:// URL such as https://alerts.example.com/hook, got "ftp://example.org/hook"',
    ],
    [{ FOOBAR_ALERT_5XX_PERCENT: "0" }, 'FOOBAR_ALERT_5XX_PERCENT must be a whole number from 1 to 100, got "0"'],
    [
      { FOOBAR_MONITORING: "false", FOOBAR_ALERT_WEBHOOK_URL: "https://example.org/hook" },
      "FOOBAR_ALERT_WEBHOOK_URL is set but FOOBAR_MONITORING=false: unset FOOBAR_ALERT_WEBHOOK_URL, or turn the monitoring server on",
    ],
    [
      { FOOBAR_ALERT_SMTP_FROM: "am@example.org" },
      "FOOBAR_ALERT_SMTP_FROM is set but FOOBAR_ALERT_SMTP_SMARTHOST is not: set the relay, or unset FOOBAR_ALERT_SMTP_FROM",
    ],
    [
      { FOOBAR_ALERT_SMTP_SMARTHOST: "smtp.example.org:587", FOOBAR_ALERT_EMAILS: "ops@example.org" },
      "FOOBAR_ALERT_SMTP_FROM must be set when FOOBAR_ALERT_SMTP_SMARTHOST is set: the address Alertmanager's e-mail comes from",
    ],
    [
      { FOOBAR_ALERT_SMTP_SMARTHOST: "smtp.example.org:587", FOOBAR_ALERT_SMTP_FROM: "am@example.org" },
      "FOOBAR_ALERT_EMAILS must be set when FOOBAR_ALERT_SMTP_SMARTHOST is set: nobody would receive the e-mail",
    ],
    [
      { FOOBAR_ALERT_SMTP_SMARTHOST: "smtp.example.org" },
      'FOOBAR_ALERT_SMTP_SMARTHOST must be host:port of an SMTP relay such as smtp.sendgrid.net:587, got "smtp.example.org"',
    ],
  ])("throws for %p, in one line naming the variable, the value and what is accepted", (env, message) => {
    expect(() => loadSettings(env)).toThrow(new SettingsError(message));
  });
});

describe("cdktf synth with a bad setting", () => {
  const projectDir = path.resolve(__dirname, "..");

  // Every bad value of issue 12's list, and a few more.
  const bigCaFile = path.join(path.dirname(caFile), "bundle.pem");
  // Random bodies: user-data is compressed, and 200 copies of one certificate would pack into almost nothing.
  const randomCertificate = () => fs.readFileSync(caFile, "utf8").replace("MIIB", randomBytes(750).toString("base64"));
  fs.writeFileSync(bigCaFile, Array.from({ length: 200 }, randomCertificate).join(""));
  const appWithLink = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-app-link-"));
  fs.writeFileSync(path.join(appWithLink, "app.py"), "print('hi')\n");
  fs.symlinkSync("app.py", path.join(appWithLink, "link.py"));

  const badSettings: [string, string][] = [
    ["FOOBAR_HTTPS", ""],
    ["FOOBAR_PROJECT", ""],
    ["FOOBAR_DOMAIN", " "],
    ["FOOBAR_APEX_RECORD", ""],
    ["FOOBAR_DNS_TTL", ""],
    ["FOOBAR_ACME_EMAIL", ""],
    ["FOOBAR_WEBSERVERS", "3"],
    ["FOOBAR_ADMIN_CIDR", "203.0.113.7/32"],
    ["FOOBAR_SSH_KEY", "12345"],
    ["FOOBAR_HTTP", "false"],
    ["FOOBAR_ADMIN_CIDRS", "0.0.0.0/00"],
    ["FOOBAR_ADMIN_CIDRS", "::/000"],
    ["FOOBAR_ADMIN_CIDRS", "0.0.0.0/1,128.0.0.0/1"],
    ["FOOBAR_ADMIN_CIDRS", "203.0.113.7/24"],
    ["FOOBAR_ADMIN_CIDRS", ":::::/64"],
    ["FOOBAR_ACME_CA_FILE", bigCaFile],
    ["FOOBAR_APP_DIR", appWithLink],
    ["FOOBAR_APP_DIR", "/nonexistent/app"],
    ["FOOBAR_REGION", "mars1"],
    ["FOOBAR_WEB_SERVERS", "0"],
  ];

  /** What the rule looks at: the exit status, stderr's lines, whether an output folder was left. */
  const outcome = (run: SynthRun) => ({ status: run.status, stderr: run.stderr.trim().split("\n"), wroteOutput: run.wroteOutput });
  const stoppedNaming = (variable: string) => ({
    status: 1,
    stderr: [expect.stringMatching(new RegExp(`^error: .*${variable}`))],
    wroteOutput: false,
  });

  // Each value through main.ts's own code (synthesize), in this process.
  test.each(badSettings)("stops with one line naming %s, a non-zero exit and nothing written, for %p", (variable, value) => {
    expect(outcome(synthInProcess({ [variable]: value }))).toEqual(stoppedNaming(variable));
  });

  // And main.ts as its own process, as `npx cdktf synth` runs it (process.exit, stderr), once for
  // each place a bad setting can be found: before the app exists, and while it builds the stack.
  test.concurrent.each([
    ["FOOBAR_WEB_SERVERS", "0", "reading the settings"],
    ["FOOBAR_APP_DIR", appWithLink, "reading the application files"],
    ["FOOBAR_ACME_CA_FILE", bigCaFile, "building a server's user-data"],
  ])("as its own process, stops with one line naming %s, exit 1 and nothing written, for %p (found while %s)", async (variable, value) => {
    expect(outcome(await synthCli({ [variable]: value }))).toEqual(stoppedNaming(variable));
  });

  test("succeeds without a DigitalOcean token", () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("FOOBAR_")));
    delete env.DIGITALOCEAN_TOKEN;
    delete env.DIGITALOCEAN_ACCESS_TOKEN;
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-synth-"));
    execFileSync(process.execPath, ["-r", "ts-node/register/transpile-only", "main.ts"], {
      cwd: projectDir,
      env: { ...env, CDKTF_OUTDIR: outdir },
    });
    expect(fs.existsSync(path.join(outdir, "stacks", "foobar", "cdk.tf.json"))).toBe(true);
  });
});

describe("the README's settings table", () => {
  test("is the one generated from the declaration in settings/declaration.ts", () => {
    const readme = fs.readFileSync(path.resolve(__dirname, "..", "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("\n## Settings\n"), readme.indexOf("\n## ", readme.indexOf("\n## Settings\n") + 1));
    const table = section
      .split("\n")
      .filter((line) => line.startsWith("|"))
      .join("\n");
    // On a difference, paste settingsTable()'s output into the README.
    expect(table).toBe(settingsTable());
  });
});

describe("FOOBAR_DB_PRIMARY", () => {
  test("names one of the web servers; any other is one line naming the range", () => {
    expect(loadSettings({ FOOBAR_DB_PRIMARY: "web-02" }).databasePrimary).toBe("web-02");
    expect(() => loadSettings({ FOOBAR_DB_PRIMARY: "web-03" })).toThrow(
      /^FOOBAR_DB_PRIMARY must name one of the 2 web servers \(web-01 to web-02\), got "web-03"$/,
    );
    expect(() => loadSettings({ FOOBAR_DB_PRIMARY: "db-1" })).toThrow(
      /^FOOBAR_DB_PRIMARY must be a web server's name such as web-01, got "db-1"$/,
    );
  });
});
