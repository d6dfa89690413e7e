// Brings the types of cdktf's jest matchers; __tests__/setup.ts registers them.
import "cdktf/lib/testing/adapters/jest";

import { Firewall } from "@cdktf/provider-digitalocean/lib/firewall";
import { Testing } from "cdktf";

import { HostFirewallRule } from "../../cloud-init/hardening";
import { PROMETHEUS_PORTS } from "../../cloud-init/prometheus";
import { Firewalls, Network, RoleTags } from "../../constructs";
import { EXPORTER_PORTS, loadBalancerHostFirewall, monitoringServerHostFirewall, webServerHostFirewall } from "../../constructs/firewalls";

function synthFirewalls(adminCidrs?: string[], monitoring?: boolean) {
  return Testing.synthScope((scope) => {
    const network = new Network(scope, "network", { project: "foobar", region: "nyc3", ipRange: "10.10.10.0/24" });
    const tags = new RoleTags(scope, "tags", { project: "foobar" });
    new Firewalls(scope, "firewalls", { project: "foobar", network, tags, adminCidrs, monitoring });
  });
}

const MONITORING_TAG = "${digitalocean_tag.tags_monitoring_87C6A1EF.name}";
const EVERY_EXPORTER_PORT = [...new Set(Object.values(EXPORTER_PORTS).flat())];

describe("Firewalls", () => {
  const synthesized = synthFirewalls();

  test("the load balancer accepts HTTP and HTTPS from anywhere", () => {
    expect(synthesized).toHaveResourceWithProperties(Firewall, {
      name: "foobar-lb",
      inbound_rule: expect.arrayContaining([
        { protocol: "tcp", port_range: "80", source_addresses: ["0.0.0.0/0", "::/0"] },
        { protocol: "tcp", port_range: "443", source_addresses: ["0.0.0.0/0", "::/0"] },
      ]),
    });
  });

  test("web servers accept HTTP only from the load balancer's tag and MySQL only from web servers", () => {
    expect(synthesized).toHaveResourceWithProperties(Firewall, {
      name: "foobar-web",
      inbound_rule: [
        { protocol: "tcp", port_range: "80", source_tags: ["${digitalocean_tag.tags_lb_A0794F96.name}"] },
        { protocol: "tcp", port_range: "3306", source_tags: ["${digitalocean_tag.tags_web_73171873.name}"] },
      ],
    });
  });

  test("outbound is limited to DNS, HTTP/HTTPS, NTP and the VPC, with full ranges as 1-65535", () => {
    expect(synthesized).toHaveResourceWithProperties(Firewall, {
      name: "foobar-web",
      outbound_rule: expect.arrayContaining([
        { protocol: "udp", port_range: "53", destination_addresses: ["0.0.0.0/0", "::/0"] },
        { protocol: "udp", port_range: "123", destination_addresses: ["0.0.0.0/0", "::/0"] },
        { protocol: "tcp", port_range: "1-65535", destination_addresses: ["10.10.10.0/24"] },
      ]),
    });
  });

  test("with admin CIDRs, SSH is open to them alone on every tier", () => {
    const withAdmins = synthFirewalls(["203.0.113.7/32"]);
    for (const name of ["foobar-lb", "foobar-web"]) {
      expect(withAdmins).toHaveResourceWithProperties(Firewall, {
        name,
        inbound_rule: expect.arrayContaining([{ protocol: "tcp", port_range: "22", source_addresses: ["203.0.113.7/32"] }]),
      });
    }
  });

  test("without a monitoring server there is no monitoring firewall and no exporter port is open", () => {
    const parsed = JSON.parse(synthesized);
    const firewalls = Object.values(parsed.resource.digitalocean_firewall) as { name: string; inbound_rule: { port_range?: string }[] }[];
    expect(firewalls.map((f) => f.name).sort()).toEqual(["foobar-lb", "foobar-web"]);
    for (const f of firewalls) {
      for (const port of EVERY_EXPORTER_PORT) expect(f.inbound_rule.map((r) => r.port_range)).not.toContain(String(port));
    }
  });
});

describe("Firewalls with a monitoring server", () => {
  const synthesized = synthFirewalls(["203.0.113.7/32"], true);
  const scraped = (ports: readonly number[]) =>
    ports.map((port) => ({ protocol: "tcp", port_range: String(port), source_tags: [MONITORING_TAG] }));

  test("each tier's exporters answer the monitoring tag only", () => {
    expect(synthesized).toHaveResourceWithProperties(Firewall, {
      name: "foobar-lb",
      inbound_rule: expect.arrayContaining(scraped(EXPORTER_PORTS.loadBalancer)),
    });
    expect(synthesized).toHaveResourceWithProperties(Firewall, {
      name: "foobar-web",
      inbound_rule: [
        { protocol: "tcp", port_range: "80", source_tags: ["${digitalocean_tag.tags_lb_A0794F96.name}"] },
        { protocol: "tcp", port_range: "3306", source_tags: ["${digitalocean_tag.tags_web_73171873.name}"] },
        ...scraped(EXPORTER_PORTS.web),
        { protocol: "tcp", port_range: "22", source_addresses: ["203.0.113.7/32"] },
      ],
    });
  });

  test("the monitoring firewall, on the monitoring tag, lets the VPC reach Prometheus and the admins SSH, nothing more", () => {
    expect(synthesized).toHaveResourceWithProperties(Firewall, {
      name: "foobar-monitoring",
      tags: [MONITORING_TAG],
      inbound_rule: [
        { protocol: "tcp", port_range: String(PROMETHEUS_PORTS.prometheus), source_addresses: ["10.10.10.0/24"] },
        ...scraped(EXPORTER_PORTS.monitoring),
        { protocol: "tcp", port_range: "22", source_addresses: ["203.0.113.7/32"] },
      ],
    });
  });
});

describe("host firewalls (ufw) and the exporters", () => {
  const options = { vpcIpRange: "10.10.10.0/24", adminCidrs: [] };
  const exporterRules = (rules: readonly HostFirewallRule[]) =>
    rules.filter((r) => r.port !== undefined && EVERY_EXPORTER_PORT.includes(r.port as never)).map((r) => [r.port, r.from]);

  test("a monitored tier lets its exporter ports in from the VPC range only", () => {
    expect(exporterRules(loadBalancerHostFirewall({ ...options, monitoring: true }))).toEqual(
      EXPORTER_PORTS.loadBalancer.map((port) => [port, ["10.10.10.0/24"]]),
    );
    expect(exporterRules(webServerHostFirewall({ ...options, monitoring: true }))).toEqual(
      EXPORTER_PORTS.web.map((port) => [port, ["10.10.10.0/24"]]),
    );
  });

  test("a tier nobody scrapes opens no exporter port", () => {
    expect(exporterRules(loadBalancerHostFirewall(options))).toEqual([]);
    expect(exporterRules(webServerHostFirewall(options))).toEqual([]);
  });

  test("mon-01 lets Prometheus and its own node exporter in from the VPC range only", () => {
    expect(monitoringServerHostFirewall(options).map((r) => [r.port, r.from])).toEqual([
      [PROMETHEUS_PORTS.prometheus, ["10.10.10.0/24"]],
      [PROMETHEUS_PORTS.node, ["10.10.10.0/24"]],
    ]);
  });
});
