import { EXPORTER_PACKAGES } from "../../cloud-init/exporters";
import { PROMETHEUS_PORTS } from "../../cloud-init/prometheus";
import { EXPORTER_PORTS } from "../../constructs/firewalls";
import { MONITORING_SERVER_NAME } from "../../names";
import { DEFAULT_SETTINGS, MAX_LOAD_BALANCERS, MAX_WEB_SERVERS } from "../../settings";
import { RemovedBlock } from "../../tools/changes";
import { addressOf, droplet, fileAt, parseCloudConfig, resourcesOf, StackJson, synthStack } from "../helpers";

const VPC_RANGE = DEFAULT_SETTINGS.vpcIpRange;
const EVERY_EXPORTER_PORT = [...new Set(Object.values(EXPORTER_PORTS).flat())];

const stack = synthStack();
const off = synthStack({ monitoring: false });

/** The firewall named `name` (foobar-lb, foobar-web, foobar-monitoring), or undefined. */
const firewall = (s: StackJson, name: string) => resourcesOf(s, "digitalocean_firewall").find((f) => f.name === name);

/** `${digitalocean_tag.….name}`: how a firewall or droplet refers to the tag named `name`. */
function tagReference(s: StackJson, name: string): string {
  const tag = resourcesOf(s, "digitalocean_tag").find((t) => t.name === name);
  if (!tag) throw new Error(`no tag named ${name}`);
  return `\${${addressOf(s, "digitalocean_tag", tag)}.name}`;
}

type InboundRule = { protocol: string; port_range?: string; source_addresses?: string[]; source_tags?: string[] };

/** Whether an inbound rule's port range (`9100`, `1-65535`) lets `port` in. */
function opens(rule: { protocol: string; port_range?: string }, port: number): boolean {
  if (rule.protocol !== "tcp" || rule.port_range === undefined) return false;
  const [low, high = low] = rule.port_range.split("-").map(Number);
  return port >= low! && port <= high!;
}

/** The ports ufw allows on a droplet, with the source of each rule. */
function ufwAllows(s: StackJson, name: string): { port: number; from: string }[] {
  return parseCloudConfig(droplet(s, name).user_data)
    .runcmd.filter((c): c is string[] => Array.isArray(c) && c[0] === "ufw" && c[1] === "allow")
    .map((c) => ({ port: Number(c[c.indexOf("port") + 1]), from: c[c.indexOf("from") + 1]! }));
}

describe("mon-01, the monitoring server (FOOBAR_MONITORING, on by default)", () => {
  test("exists by default, of size FOOBAR_MONITORING_SIZE, in the VPC like every droplet", () => {
    expect(DEFAULT_SETTINGS.monitoring).toBe(true);
    const mon = droplet(stack, MONITORING_SERVER_NAME);
    expect(MONITORING_SERVER_NAME).toBe("mon-01");
    expect(mon.size).toBe(DEFAULT_SETTINGS.monitoringSize);
    expect(mon.vpc_uuid).toBe(droplet(stack, "lb-01").vpc_uuid);
    expect(droplet(synthStack({ monitoringSize: "s-2vcpu-4gb" }), "mon-01").size).toBe("s-2vcpu-4gb");
  });

  test("is tagged with the project and the monitoring role only", () => {
    expect(droplet(stack, "mon-01").tags).toEqual([tagReference(stack, "foobar"), tagReference(stack, "foobar-monitoring")]);
  });

  test("keeps Prometheus' data on mon-01-prometheus, FOOBAR_MONITORING_VOLUME_SIZE GiB, attached at creation and never destroyed by Terraform", () => {
    const volume = resourcesOf(stack, "digitalocean_volume").find((v) => v.name === "mon-01-prometheus")!;
    expect(volume).toEqual(
      expect.objectContaining({ region: "nyc3", size: DEFAULT_SETTINGS.monitoringVolumeGib, lifecycle: { prevent_destroy: true } }),
    );
    expect(droplet(stack, "mon-01").volume_ids).toEqual([`\${${addressOf(stack, "digitalocean_volume", volume)}.id}`]);
    const config = parseCloudConfig(droplet(stack, "mon-01").user_data);
    expect(JSON.stringify(config.bootcmd)).toContain("/dev/disk/by-id/scsi-0DO_Volume_mon-01-prometheus");
    expect(JSON.stringify(config.bootcmd)).toContain("/var/lib/prometheus");
    const [project] = resourcesOf(stack, "digitalocean_project");
    expect(project.resources).toContain(`\${${addressOf(stack, "digitalocean_volume", volume)}.urn}`);
  });

  test("the volume's size is a setting, and only FOOBAR_ALLOW_DATA_LOSS=true lets Terraform delete it", () => {
    const bigger = synthStack({ monitoringVolumeGib: 25 });
    expect(resourcesOf(bigger, "digitalocean_volume").find((v) => v.name === "mon-01-prometheus")!.size).toBe(25);
    const lossy = synthStack({ allowDataLoss: true });
    expect(resourcesOf(lossy, "digitalocean_volume").find((v) => v.name === "mon-01-prometheus")!.lifecycle).toEqual({
      prevent_destroy: false,
    });
  });

  test("its user-data names no other droplet's address: Prometheus finds every slot by its internal name", () => {
    const userData = String(droplet(stack, "mon-01").user_data);
    expect(userData).not.toContain("${digitalocean_droplet.");
    const prometheus = fileAt(parseCloudConfig(userData), "/etc/prometheus/prometheus.yml");
    for (let i = 1; i <= MAX_LOAD_BALANCERS; i++) expect(prometheus).toContain(`lb-0${i}.internal.foobar.com`);
    for (const name of ["web-01", `web-${String(MAX_WEB_SERVERS).padStart(2, "0")}`, "mon-01"]) {
      expect(prometheus).toContain(`${name}.internal.foobar.com`);
    }
  });

  test("its user-data is the same whatever the number of web servers or load balancers", () => {
    const bigger = synthStack({ webServers: 3 });
    expect(droplet(bigger, "mon-01").user_data).toBe(droplet(stack, "mon-01").user_data);
  });

  test("its user-data keeps Prometheus' and Alertmanager's templates from Terraform: no bare %{ or ${ but references", () => {
    const userData = String(droplet(stack, "mon-01").user_data);
    expect(userData).not.toMatch(/(?<!%)%\{/);
    expect(userData).not.toMatch(/(?<!\$)\$\{(?![a-z_]+\.[\w-]+\.[a-z0-9_]+\})/);
  });

  test("the UI password is generated, reaches mon-01 as a reference, and is a sensitive output; the URL is the private address", () => {
    expect(stack.output.prometheus_password.sensitive).toBe(true);
    expect(stack.output.prometheus_password.value).toMatch(/^\$\{random_password\.[\w-]+\.result\}$/);
    expect(String(droplet(stack, "mon-01").user_data)).toContain(stack.output.prometheus_password.value as string);
    const mon = addressOf(stack, "digitalocean_droplet", droplet(stack, "mon-01"));
    expect(stack.output.prometheus_url.value).toBe(`http://\${${mon}.ipv4_address_private}:${PROMETHEUS_PORTS.prometheus}/`);
    expect(stack.output.prometheus_url.sensitive).toBeUndefined();
  });

  test("is published as mon-01.internal, and every load balancer as lb-NN.internal, so Prometheus finds them", () => {
    const records = resourcesOf(stack, "digitalocean_record").filter((r) => r.name.endsWith(".internal"));
    const ref = (name: string) => `\${${addressOf(stack, "digitalocean_droplet", droplet(stack, name))}.ipv4_address_private}`;
    expect(records).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "mon-01.internal", type: "A", value: ref("mon-01") }),
        expect.objectContaining({ name: "lb-01.internal", type: "A", value: ref("lb-01") }),
      ]),
    );
  });
});

describe("the exporters answer mon-01 only", () => {
  const monitoringTag = tagReference(stack, "foobar-monitoring");

  test.each([
    ["foobar-lb", EXPORTER_PORTS.loadBalancer],
    ["foobar-web", EXPORTER_PORTS.web],
    ["foobar-monitoring", EXPORTER_PORTS.monitoring],
  ])("%s lets the monitoring tag, and nothing else, reach its exporters", (name, ports) => {
    const rules: InboundRule[] = firewall(stack, name)!.inbound_rule;
    for (const port of ports) {
      expect(rules.filter((r) => opens(r, port))).toEqual([{ protocol: "tcp", port_range: String(port), source_tags: [monitoringTag] }]);
    }
  });

  test("no firewall opens an exporter port to any address, nor to any tag but the monitoring one", () => {
    for (const f of resourcesOf(stack, "digitalocean_firewall")) {
      for (const rule of f.inbound_rule as InboundRule[]) {
        if (!EVERY_EXPORTER_PORT.some((port) => opens(rule, port))) continue;
        expect(rule.source_addresses).toBeUndefined();
        expect(rule.source_tags).toEqual([monitoringTag]);
      }
    }
  });

  test("the monitoring firewall applies to the monitoring tag, and lets only the VPC reach Prometheus (9090)", () => {
    const monitoring = firewall(stack, "foobar-monitoring")!;
    expect(monitoring.tags).toEqual([monitoringTag]);
    expect((monitoring.inbound_rule as InboundRule[]).filter((r) => opens(r, PROMETHEUS_PORTS.prometheus))).toEqual([
      { protocol: "tcp", port_range: String(PROMETHEUS_PORTS.prometheus), source_addresses: [VPC_RANGE] },
    ]);
    for (const f of resourcesOf(stack, "digitalocean_firewall").filter((f) => f.name !== "foobar-monitoring")) {
      expect((f.inbound_rule as InboundRule[]).filter((r) => opens(r, PROMETHEUS_PORTS.prometheus))).toEqual([]);
    }
  });

  test.each([
    ["lb-01", EXPORTER_PORTS.loadBalancer],
    ["web-01", EXPORTER_PORTS.web],
    ["mon-01", EXPORTER_PORTS.monitoring],
  ])("ufw on %s lets the exporter ports in from the VPC range only", (name, ports) => {
    const allows = ufwAllows(stack, name);
    for (const port of ports) expect(allows.filter((a) => a.port === port)).toEqual([{ port, from: VPC_RANGE }]);
  });

  test("ufw on mon-01 lets Prometheus (9090) in from the VPC range only", () => {
    expect(ufwAllows(stack, "mon-01").filter((a) => a.port === PROMETHEUS_PORTS.prometheus)).toEqual([
      { port: PROMETHEUS_PORTS.prometheus, from: VPC_RANGE },
    ]);
  });

  test("the load balancers and web servers run their exporters", () => {
    expect(parseCloudConfig(droplet(stack, "lb-01").user_data).packages).toContain(EXPORTER_PACKAGES.node);
    expect(fileAt(parseCloudConfig(droplet(stack, "lb-01").user_data), "/etc/haproxy/haproxy.cfg")).toContain(
      `:${PROMETHEUS_PORTS.haproxy}"`,
    );
    expect(parseCloudConfig(droplet(stack, "web-01").user_data).packages).toEqual(expect.arrayContaining(Object.values(EXPORTER_PACKAGES)));
  });
});

describe("with an SMTP relay (FOOBAR_ALERT_SMTP_SMARTHOST)", () => {
  test("mon-01's cloud firewall lets Alertmanager reach the relay's port", () => {
    const smtp = synthStack({
      alertEmails: ["ops@foobar.com"],
      alertSmtpSmarthost: "smtp.sendgrid.net:587",
      alertSmtpFrom: "alerts@foobar.com",
    });
    // The relay is on the internet: a rule to the VPC range does not reach it.
    const outbound: { protocol: string; port_range?: string; destination_addresses?: string[] }[] = firewall(
      smtp,
      "foobar-monitoring",
    )!.outbound_rule;
    const toInternet = outbound.filter((r) => r.destination_addresses?.includes("0.0.0.0/0"));
    expect(toInternet.filter((r) => opens(r, 587))).not.toEqual([]);
  });
});

describe("with FOOBAR_MONITORING=false", () => {
  test("there is no mon-01, no monitoring firewall, and no Prometheus output", () => {
    expect(resourcesOf(off, "digitalocean_droplet").map((d) => d.name)).not.toContain("mon-01");
    expect(firewall(off, "foobar-monitoring")).toBeUndefined();
    expect(resourcesOf(off, "digitalocean_volume").map((v) => v.name)).not.toContain("mon-01-prometheus");
    expect(Object.keys(off.output)).not.toEqual(expect.arrayContaining(["prometheus_url"]));
    expect(Object.keys(off.output)).not.toEqual(expect.arrayContaining(["prometheus_password"]));
    expect(Object.keys(off.output.servers.value as object)).not.toContain("mon-01");
  });

  test("no firewall rule and no ufw rule names an exporter port", () => {
    for (const f of resourcesOf(off, "digitalocean_firewall")) {
      for (const port of EVERY_EXPORTER_PORT) expect((f.inbound_rule as InboundRule[]).filter((r) => opens(r, port))).toEqual([]);
    }
    for (const name of ["lb-01", "web-01", "web-02"]) {
      expect(ufwAllows(off, name).filter((a) => EVERY_EXPORTER_PORT.includes(a.port as never))).toEqual([]);
    }
  });

  test("the load balancers and web servers run no exporter", () => {
    for (const name of ["lb-01", "web-01", "web-02"]) {
      const config = parseCloudConfig(droplet(off, name).user_data);
      expect(config.packages.filter((p) => p.startsWith("prometheus"))).toEqual([]);
      expect(config.write_files.map((f) => f.path).filter((p) => /prometheus|foobar-metrics|exporter/.test(p))).toEqual([]);
      expect(JSON.stringify(config.runcmd)).not.toMatch(/exporter|foobar-metrics/);
    }
    expect(fileAt(parseCloudConfig(droplet(off, "lb-01").user_data), "/etc/haproxy/haproxy.cfg")).not.toContain("prometheus");
    expect(fileAt(parseCloudConfig(droplet(off, "web-01").user_data), "/etc/nginx/sites-available/foobar")).not.toContain("stub_status");
  });

  test("a single load balancer and mon-01 get no internal record", () => {
    const names = resourcesOf(off, "digitalocean_record").map((r) => r.name);
    expect(names).not.toContain("lb-01.internal");
    expect(names).not.toContain("mon-01.internal");
  });

  test("a removed block forgets mon-01's volume, at the address it had, and does not destroy it", () => {
    const volume = resourcesOf(stack, "digitalocean_volume").find((v) => v.name === "mon-01-prometheus")!;
    const blocks = (off.removed ?? []) as RemovedBlock[];
    expect(blocks.filter((b) => b.from === addressOf(stack, "digitalocean_volume", volume))).toEqual([
      expect.objectContaining({ lifecycle: { destroy: false } }),
    ]);
  });

  test("with FOOBAR_ALLOW_DATA_LOSS=true, mon-01's volume is not kept: no removed block", () => {
    const lossy = synthStack({ monitoring: false, allowDataLoss: true });
    expect(((lossy.removed ?? []) as RemovedBlock[]).map((b) => b.from).filter((from) => from.includes("mon-01"))).toEqual([]);
  });

  test("the droplets are lb-01 and the web servers, as before monitoring", () => {
    expect(
      resourcesOf(off, "digitalocean_droplet")
        .map((d) => d.name)
        .sort(),
    ).toEqual(["lb-01", "web-01", "web-02"]);
  });
});
