/**
 * Property-based tests of the settings loader (fast-check): generated
 * environments, good and bad, thousands of them.
 */
import * as fc from "fast-check";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import {
  DIGITALOCEAN_REGIONS,
  loadSettings,
  MAX_WEB_SERVERS,
  SETTINGS,
  Settings,
  SettingsError,
  SPACES_REGIONS,
  SUPPORTED_IMAGES,
} from "../settings";
import { droplet, fileAt, parseCloudConfig, resourcesOf, synthInProcess, synthStack } from "./helpers";

/** Cases run, by property, printed at the end. */
const ran: Record<string, number> = {};
const count = (name: string) => (ran[name] = (ran[name] ?? 0) + 1);
afterAll(() => {
  const total = Object.values(ran).reduce((a, b) => a + b, 0);
  console.log(
    `fast-check ran ${total} generated cases: ${Object.entries(ran)
      .map(([name, n]) => `${name} ${n}`)
      .join(", ")}`,
  );
});

const VARIABLES = Object.values(SETTINGS).map((declaration) => declaration.variable);

const caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "foobar-ca-")), "ca.pem");
fs.writeFileSync(caFile, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");

/** A generated variable: its text, and the value the loader must make of it. */
type Generated<T> = fc.Arbitrary<{ readonly text: string; readonly value: T }>;
const same = (arbitrary: fc.Arbitrary<string>): Generated<string> => arbitrary.map((text) => ({ text, value: text }));
/** Operators' spacing around a value is forgiven. */
const padded = <T>(generated: Generated<T>): Generated<T> =>
  fc.tuple(generated, fc.constantFrom("", " ", "  "), fc.constantFrom("", " ", "\t")).map(([g, before, after]) => ({
    text: before + g.text + after,
    value: g.value,
  }));
const wholeNumber = (min: number, max: number): Generated<number> => fc.integer({ min, max }).map((n) => ({ text: String(n), value: n }));
const flag: Generated<boolean> = fc
  .constantFrom("true", "false", "TRUE", "False")
  .map((text) => ({ text, value: text.toLowerCase() === "true" }));
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const domain = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.stringMatching(/^[a-z]{2,6}$/))
  .map(([labels, tld]) => [...labels, tld].join("."));
const email = fc
  .tuple(fc.stringMatching(/^[a-z0-9]([a-z0-9._+-]{0,8}[a-z0-9])?$/), domain)
  .filter(([local]) => !local.includes(".."))
  .map(([local, d]) => `${local}@${d}`);
const listOf = <T>(item: Generated<T>): Generated<readonly T[]> =>
  fc
    .array(item, { minLength: 1, maxLength: 4 })
    .map((items) => ({ text: items.map((i) => i.text).join(", "), value: items.map((i) => i.value) }));

/** An IPv4 network with the given prefixes, host bits clear. */
function ipv4Network(prefixes: { min: number; max: number }, first?: fc.Arbitrary<number>): Generated<string> {
  return fc
    .tuple(first ?? fc.integer({ min: 1, max: 223 }), fc.integer({ min: 0, max: 2 ** 24 - 1 }), fc.integer(prefixes))
    .map(([a, rest, prefix]) => {
      const address = a * 2 ** 24 + rest;
      const size = 2 ** (32 - prefix);
      const network = address - (address % size);
      const text = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join(".") + `/${prefix}`;
      return { text, value: text };
    });
}
const vpcRange: Generated<string> = fc.oneof(
  ipv4Network({ min: 16, max: 28 }, fc.constant(10)),
  ipv4Network({ min: 16, max: 28 }, fc.constant(172)).filter((g) => /^172\.(1[6-9]|2\d|3[01])\./.test(g.text)),
  ipv4Network({ min: 16, max: 28 }, fc.constant(192)).filter((g) => g.text.startsWith("192.168.")),
);

/**
 * Good values for every setting the generator varies. Narrow admin CIDRs
 * only (at most four /10s: never more than a /8), so no opt-in is needed.
 */
const GOOD: { readonly [K in keyof Settings]?: Generated<Settings[K]> } = {
  project: same(fc.stringMatching(/^[a-z][a-z0-9-]{1,30}$/)),
  domain: same(domain),
  hostName: same(label),
  apexRecord: flag,
  dnsTtl: padded(wholeNumber(30, 86400)),
  region: same(fc.constantFrom(...DIGITALOCEAN_REGIONS)),
  vpcIpRange: vpcRange,
  webServers: padded(wholeNumber(1, MAX_WEB_SERVERS)),
  image: same(fc.constantFrom(...SUPPORTED_IMAGES)),
  size: same(fc.constantFrom("s-1vcpu-2gb", "s-2vcpu-4gb", "c-2")),
  adminCidrs: listOf(ipv4Network({ min: 10, max: 32 })),
  allowSshFromAnywhere: flag,
  sshKeys: listOf(same(fc.stringMatching(/^[1-9]\d{0,8}$/))),
  replicaMaxLagSeconds: wholeNumber(1, 3600),
  databaseVolumeGib: wholeNumber(1, 16_384),
  allowDataLoss: flag,
  appCommand: same(fc.constantFrom("/usr/bin/gunicorn --bind 127.0.0.1:8000 wsgi:app", "/usr/bin/python3 -m http.server 8000")),
  https: flag,
  acmeDirectoryUrl: same(
    fc.constantFrom(
      "https://acme-staging-v02.api.letsencrypt.org/directory",
      "https://198.51.100.3/dir",
      "https://acme.example.org:14000/dir",
    ),
  ),
  acmeEmail: same(email),
  acmeCaFile: same(fc.constant(caFile)),
  hstsMaxAgeSeconds: wholeNumber(0, 63_072_000),
  alertEmails: listOf(same(email)),
  alertCpuPercent: wholeNumber(1, 100),
  alertMemoryPercent: wholeNumber(1, 100),
  alertDiskPercent: wholeNumber(1, 100),
  alertLatencyMs: wholeNumber(100, 30_000),
  alertCertExpiryDays: wholeNumber(1, 60),
  // The monitoring server is on by default; FOOBAR_MONITORING=false with any of these is an error, not a good environment.
  monitoringSize: same(fc.constantFrom("s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-4gb")),
  monitoringVolumeGib: wholeNumber(1, 16_384),
  alertWebhookUrl: same(fc.constantFrom("https://alerts.example.org/hook", "http://10.0.0.9:9000/alerts")),
  alert5xxPercent: wholeNumber(1, 100),
  stateBucket: same(fc.stringMatching(/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/)),
  stateRegion: same(fc.constantFrom(...SPACES_REGIONS)),
  stateLocking: flag,
};

/** A good environment: any subset of the settings, each with a good value, and what the loader must make of it. */
const goodEnvironment = fc
  .record(
    Object.fromEntries(
      Object.entries(GOOD).map(([key, generated]) => [key, fc.option(generated as Generated<unknown>, { nil: undefined })]),
    ) as {
      [K in keyof Settings]: fc.Arbitrary<{ text: string; value: unknown } | undefined>;
    },
  )
  .chain((picked) =>
    fc.option(fc.constant({ url: "https://hooks.slack.com/services/T0/B0/XYZ", channel: "#ops" }), { nil: undefined }).map((slack) => {
      const env: Record<string, string> = {};
      const expected: Record<string, unknown> = {};
      for (const [key, generated] of Object.entries(picked)) {
        if (generated === undefined) continue;
        env[SETTINGS[key as keyof typeof SETTINGS].variable] = generated.text;
        expected[key] = generated.value;
      }
      if (slack) {
        env.FOOBAR_ALERT_SLACK_WEBHOOK_URL = slack.url;
        env.FOOBAR_ALERT_SLACK_CHANNEL = slack.channel;
        expected.alertSlackWebhookUrl = slack.url;
        expected.alertSlackChannel = slack.channel;
      }
      return { env, expected };
    }),
  );

/** Text an operator might put in any variable, from sensible to hostile. */
const anyText = fc.oneof(
  fc.constantFrom(
    "",
    " ",
    "\t",
    "\n",
    "true",
    "false",
    "0",
    "1",
    "-1",
    "yes",
    "0.0.0.0/0",
    "0.0.0.0/00",
    "::/0",
    ":::::/64",
    "10.0.0.1/24",
    "a,,b",
    "x@y",
    "https://",
    "/nonexistent",
    "null",
    "undefined",
    "NaN",
    "1e3",
    "٣",
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.stringMatching(/^[0-9a-f:./, ]{0,40}$/),
);

/** Any environment: known variables with any text, unknown FOOBAR_ names, the lab's, others. */
const anyEnvironment = fc.dictionary(
  fc.oneof(
    fc.constantFrom(...VARIABLES),
    fc.constantFrom(...VARIABLES).map((v) => v.slice(0, -1)),
    fc.stringMatching(/^FOOBAR_[A-Z_]{0,20}$/),
    fc.stringMatching(/^FOOBAR_LAB_[A-Z_]{0,10}$/),
    fc.constantFrom("DIGITALOCEAN_TOKEN", "FOOBARX", "foobar_https"),
  ),
  anyText,
  { maxKeys: 6 },
);

describe("the settings loader (property-based)", () => {
  test("never throws anything but a one-line SettingsError naming a variable that is set (3000 generated environments)", () => {
    fc.assert(
      fc.property(anyEnvironment, (env) => {
        count("any environment");
        try {
          loadSettings(env);
        } catch (error) {
          expect(error).toBeInstanceOf(SettingsError);
          const message = (error as Error).message;
          expect(message).not.toMatch(/[\n\r]/);
          const named = /^(FOOBAR_[A-Z0-9_]*) /.exec(message)?.[1];
          expect(named).toBeDefined();
          // The variable named is one that is set, or (for a pair) the missing half of one that is set.
          expect(Object.keys(env).some((name) => name === named || message.includes(name))).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });

  test("every good value round-trips into the settings (1500 generated environments)", () => {
    fc.assert(
      fc.property(goodEnvironment, ({ env, expected }) => {
        count("good environment");
        const settings = loadSettings(env);
        expect(settings).toEqual(expect.objectContaining(expected));
        if (env.FOOBAR_ACME_EMAIL === undefined) expect(settings.acmeEmail).toBe(`webmaster@${settings.domain}`);
      }),
      { numRuns: 1500 },
    );
  });

  test("any one variable set but blank is an error naming it (500 generated environments)", () => {
    fc.assert(
      fc.property(goodEnvironment, fc.constantFrom(...VARIABLES), fc.constantFrom("", " ", "\t", " \n "), ({ env }, variable, blank) => {
        count("blank variable");
        expect(() => loadSettings({ ...env, [variable]: blank })).toThrow(`${variable} is set but empty: unset it to take the default`);
      }),
      { numRuns: 500 },
    );
  });

  test("admin CIDRs covering more than a /8 are refused without the opt-in and kept with it (500 generated lists)", () => {
    const wide = fc.array(ipv4Network({ min: 0, max: 12 }), { minLength: 1, maxLength: 4 }).filter((cidrs) => {
      // Independent count: mark every /12 block the networks touch, at /12 granularity (all prefixes here are ≤ 12).
      const blocks = new Set<number>();
      for (const { text } of cidrs) {
        const [address, prefix] = text.split("/");
        const start = address.split(".").reduce((n, octet) => n * 256 + Number(octet), 0) / 2 ** 20;
        for (let b = start; b < start + 2 ** (12 - Number(prefix)); b++) blocks.add(b);
      }
      return blocks.size > 16;
    });
    fc.assert(
      fc.property(wide, (cidrs) => {
        count("wide admin CIDRs");
        const text = cidrs.map((c) => c.text).join(",");
        expect(() => loadSettings({ FOOBAR_ADMIN_CIDRS: text })).toThrow(
          /^FOOBAR_ADMIN_CIDRS must cover at most a \/8 .* without FOOBAR_ALLOW_SSH_FROM_ANYWHERE=true/,
        );
        expect(loadSettings({ FOOBAR_ADMIN_CIDRS: text, FOOBAR_ALLOW_SSH_FROM_ANYWHERE: "true" }).adminCidrs).toEqual(
          cidrs.map((c) => c.text),
        );
      }),
      { numRuns: 500 },
    );
  });

  test("an address with host bits set is refused with the network it meant (300 generated addresses)", () => {
    fc.assert(
      fc.property(ipv4Network({ min: 8, max: 31 }), fc.integer({ min: 1, max: 255 }), (network, host) => {
        count("host bits");
        const [address, prefix] = network.text.split("/");
        const octets = address.split(".").map(Number);
        octets[3] = (octets[3] | (host % 2 ** (32 - Number(prefix)) || 1)) % 256;
        const wrong = `${octets.join(".")}/${prefix}`;
        fc.pre(wrong !== network.text);
        expect(() => loadSettings({ FOOBAR_ADMIN_CIDRS: wrong })).toThrow(`host bits are set, the network is ${network.text}`);
      }),
      { numRuns: 300 },
    );
  });

  test("every good environment round-trips into the synthesized stack (40 generated stacks)", () => {
    fc.assert(
      fc.property(goodEnvironment, ({ env }) => {
        count("synthesized stack");
        const settings = loadSettings(env);
        const stack = synthStack(settings);
        const droplets = resourcesOf(stack, "digitalocean_droplet");
        expect(droplets.filter((d) => d.name.startsWith("web-"))).toHaveLength(settings.webServers);
        for (const d of droplets) {
          const size = d.name === "mon-01" ? settings.monitoringSize : settings.size;
          expect(d).toEqual(expect.objectContaining({ region: settings.region, image: settings.image, size }));
          if (settings.sshKeys.length) expect(d.ssh_keys).toEqual(settings.sshKeys);
        }
        expect(resourcesOf(stack, "digitalocean_vpc")[0]).toEqual(
          expect.objectContaining({ ip_range: settings.vpcIpRange, region: settings.region }),
        );
        expect(resourcesOf(stack, "digitalocean_domain")[0].name).toBe(settings.domain);
        const records = resourcesOf(stack, "digitalocean_record").filter((r) => !r.name.endsWith(".internal"));
        expect(records.map((r) => r.name).sort()).toEqual(settings.apexRecord ? ["@", settings.hostName].sort() : [settings.hostName]);
        for (const record of records) expect(record.ttl).toBe(settings.dnsTtl);
        const mysqlVolumes = resourcesOf(stack, "digitalocean_volume").filter((v) => v.name.endsWith("-mysql"));
        expect(mysqlVolumes).toHaveLength(settings.webServers);
        for (const volume of resourcesOf(stack, "digitalocean_volume")) {
          expect(volume.lifecycle.prevent_destroy).toBe(!settings.allowDataLoss);
          if (volume.name.endsWith("-mysql")) expect(volume.size).toBe(settings.databaseVolumeGib);
        }
        expect(resourcesOf(stack, "digitalocean_project")[0].name).toBe(settings.project);
        const backend = stack.terraform.backend?.s3;
        expect(backend === undefined).toBe(settings.stateBucket === undefined);
        if (backend) {
          expect(backend).toEqual(
            expect.objectContaining({
              bucket: settings.stateBucket,
              endpoints: { s3: `https://${settings.stateRegion}.digitaloceanspaces.com` },
            }),
          );
          expect(backend.use_lockfile).toBe(settings.stateLocking ? true : undefined);
        }
        const lbFirewall = resourcesOf(stack, "digitalocean_firewall").find((f) => f.name === `${settings.project}-lb`)!;
        const ports = lbFirewall.inbound_rule.map((r: { port_range: string }) => r.port_range);
        expect(ports.includes("443")).toBe(settings.https);
        const ssh = lbFirewall.inbound_rule.filter((r: { port_range: string }) => r.port_range === "22");
        expect(ssh.flatMap((r: { source_addresses: string[] }) => r.source_addresses)).toEqual(settings.adminCidrs);
        const lb = parseCloudConfig(droplet(stack, "lb-01").user_data);
        if (settings.https) {
          const unit = fileAt(lb, "/etc/systemd/system/foobar-certificate.service");
          expect(unit).toContain(`--server ${settings.acmeDirectoryUrl}`);
          expect(unit).toContain(`--email ${settings.acmeEmail}`);
          expect(fileAt(lb, "/etc/haproxy/haproxy.cfg")).toContain(`"max-age=${settings.hstsMaxAgeSeconds}"`);
        }
        const web = parseCloudConfig(droplet(stack, "web-01").user_data);
        expect(fileAt(web, "/etc/foobar/app.env")).toContain(`FOOBAR_REPLICA_MAX_LAG=${settings.replicaMaxLagSeconds}\n`);
        if (settings.appCommand)
          expect(fileAt(web, "/etc/systemd/system/foobar-app.service")).toContain(`ExecStart=${settings.appCommand}\n`);
        const alerts = resourcesOf(stack, "digitalocean_monitor_alert");
        const alerting = settings.alertEmails.length > 0 || settings.alertSlackWebhookUrl !== undefined;
        expect(alerts.length > 0).toBe(alerting);
        if (alerting) {
          const values = alerts.map((a) => a.value);
          expect(values).toEqual(
            expect.arrayContaining([settings.alertCpuPercent, settings.alertMemoryPercent, settings.alertDiskPercent]),
          );
          if (settings.alertEmails.length) expect(alerts[0].alerts.email).toEqual(settings.alertEmails);
        }
      }),
      { numRuns: 40 },
    );
  });
});

/**
 * Generated bad environments through main.ts's own synthesize, in this
 * process: one line, exit 1, no cdktf.out. (settings.test.ts also runs
 * main.ts as its own process, for a bad value found in each place.)
 */
describe("main.ts with generated bad environments", () => {
  const badEnvironment = anyEnvironment.filter((env) => {
    // A process's environment cannot hold NUL bytes.
    if (Object.values(env).some((value) => value.includes("\0"))) return false;
    try {
      loadSettings(env);
      return false;
    } catch {
      return true;
    }
  });

  test("exits 1 with one line and writes no cdktf.out (200 generated environments)", () => {
    fc.assert(
      fc.property(badEnvironment, (env) => {
        count("bad environment synthesized");
        const result = synthInProcess(env);
        expect(result.status).toBe(1);
        expect(result.stderr.trim().split("\n")).toHaveLength(1);
        expect(result.stderr).toMatch(/^error: FOOBAR_/);
        expect(result.wroteOutput).toBe(false);
        fs.rmSync(path.dirname(result.outdir), { recursive: true });
      }),
      { numRuns: 200 },
    );
  });
});
