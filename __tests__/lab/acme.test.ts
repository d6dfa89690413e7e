import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { acmeDirectoryUrl, acmeFiles, challtestsrvArgs, renderPebbleConfig } from "../../lab/emulations/acme";
import { describeOverrides, labOverrides, makeLabToken, synthesizeStack } from "../../lab/emulations/synth";
import type { LabRecord, LabStack } from "../../lab/emulations/terraform";
import { siteAddress } from "../../lab/lab";
import { HOOKS_ADDRESS } from "../../lab/settings";
import { FAILOVER_TOKEN_PATTERN } from "../../settings";

describe("pebble's config", () => {
  const config = JSON.parse(renderPebbleConfig(acmeFiles("/run/foobar-lab/acme"))).pebble;

  test("the directory listens on the ACME address, port 443 (the only HTTPS port droplets may reach)", () => {
    expect(config.listenAddress).toBe("198.51.100.3:443");
    expect(acmeDirectoryUrl()).toBe("https://198.51.100.3/dir");
  });

  test("the management API, which hands out the issuing root, stays on loopback", () => {
    expect(config.managementListenAddress).toBe("127.0.0.1:15000");
  });

  test("it serves the listener certificate and validates on the standard ports", () => {
    expect(config).toMatchObject({
      certificate: "/run/foobar-lab/acme/listener.pem",
      privateKey: "/run/foobar-lab/acme/listener.key",
      httpPort: 80,
      tlsPort: 443,
      ocspResponderURL: "",
      externalAccountBindingRequired: false,
    });
  });
});

describe("challtestsrv's arguments", () => {
  const args = challtestsrvArgs("198.51.100.10");
  const value = (flag: string) => args[args.indexOf(flag) + 1];

  test("every A query gets the load balancer's address, AAAA queries nothing", () => {
    expect(value("-defaultIPv4")).toBe("198.51.100.10");
    expect(value("-defaultIPv6")).toBe("");
  });

  test("nothing listens outside loopback", () => {
    expect(value("-dns01")).toBe("127.0.0.1:8053");
    expect(value("-management")).toBe("127.0.0.1:8055");
    for (const flag of ["-http01", "-https01", "-tlsalpn01"]) expect(value(flag)).toBe("");
  });
});

describe("siteAddress", () => {
  const record = (name: string, value: string, type = "A"): LabRecord => ({
    address: `digitalocean_record.${name}`,
    domain: "foobar.com",
    type,
    name,
    fqdn: `${name}.foobar.com`,
    value,
  });
  const stack = (records: LabRecord[]): LabStack => ({
    vpc: { address: "digitalocean_vpc.net", name: "vpc", ipRange: "10.10.10.0/24" },
    droplets: [],
    firewalls: [],
    volumes: [],
    reservedIps: [],
    computed: {},
    records,
  });

  test("is the www A record's value", () => {
    expect(siteAddress(stack([record("@", "198.51.100.11"), record("www", "198.51.100.10")]))).toBe("198.51.100.10");
  });

  test("throws when the stack has no A record", () => {
    expect(() => siteAddress(stack([record("www", "lb.example.com.", "CNAME")]))).toThrow("no A record");
  });
});

describe("in-process synthesis with the lab's settings", () => {
  let dir: string;
  let caFile: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lab-synth-"));
    caFile = path.join(dir, "ca.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-noenc",
        "-keyout",
        path.join(dir, "ca.key"),
        "-out",
        caFile,
        "-days",
        "1",
        "-subj",
        "/CN=test CA",
      ],
      { stdio: "ignore" },
    );
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("the lab's overrides win, the operator's other settings flow through", () => {
    const operator = {
      FOOBAR_WEB_SERVERS: "3",
      FOOBAR_ADMIN_CIDRS: "203.0.113.7/32",
      FOOBAR_ACME_DIRECTORY_URL: "https://acme.example.com/dir",
    };
    const tf = synthesizeStack(path.join(dir, "out"), operator, labOverrides("https://198.51.100.3/dir", caFile, makeLabToken()));
    // lb-01, web-01 to web-03, and mon-01 (FOOBAR_MONITORING is on by default).
    expect(Object.keys(tf.resource?.digitalocean_droplet ?? {})).toHaveLength(5);
    const text = JSON.stringify(tf);
    expect(text).toContain("198.51.100.2/32");
    expect(text).not.toContain("203.0.113.7");
    expect(text).not.toContain("acme.example.com");
  });

  test("overrides only the ACME directory, its CA file, the admin CIDRs, the failover token and the alert webhook", () => {
    const token = makeLabToken();
    expect(labOverrides("https://198.51.100.3/dir", "/ca.pem", token)).toEqual({
      FOOBAR_ACME_DIRECTORY_URL: "https://198.51.100.3/dir",
      FOOBAR_ACME_CA_FILE: "/ca.pem",
      FOOBAR_ADMIN_CIDRS: "198.51.100.2/32",
      FOOBAR_FAILOVER_TOKEN: token,
      FOOBAR_ALERT_WEBHOOK_URL: "http://198.51.100.7/alerts",
    });
  });

  test("Alertmanager posts to the lab's alert receiver, unless the settings turn the monitoring server off (the webhook is refused then)", () => {
    const token = makeLabToken();
    expect(labOverrides("https://198.51.100.3/dir", "/ca.pem", token, undefined, undefined, "true").FOOBAR_ALERT_WEBHOOK_URL).toBe(
      `http://${HOOKS_ADDRESS}/alerts`,
    );
    expect(labOverrides("https://198.51.100.3/dir", "/ca.pem", token, undefined, undefined, "false")).not.toHaveProperty(
      "FOOBAR_ALERT_WEBHOOK_URL",
    );
  });

  test("the lab's token has DigitalOcean's shape, is new every time, and its log line never shows it", () => {
    const token = makeLabToken();
    expect(token).toMatch(FAILOVER_TOKEN_PATTERN);
    expect(makeLabToken()).not.toBe(token);
    const line = describeOverrides(labOverrides("https://198.51.100.3/dir", "/ca.pem", token));
    expect(line).not.toContain(token);
    expect(line).toContain("FOOBAR_FAILOVER_TOKEN=(a lab token)");
  });
});
