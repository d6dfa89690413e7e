import { spawnSync } from "child_process";

import { renderFirewall } from "../../lab/emulations/firewall";
import type { LabDroplet, LabFirewall, LabStack } from "../../lab/emulations/terraform";

const proxy = { aptProxyAddress: "198.51.100.1", aptProxyPort: 3142 };

function droplet(name: string, id: string, n: number, tags: string[]): LabDroplet {
  return {
    address: `digitalocean_droplet.${name}`,
    name,
    id,
    image: "debian-12-x64",
    size: "s-1vcpu-1gb",
    region: "nyc3",
    tags,
    publicIpv4: `198.51.100.${10 + n}`,
    privateIpv4: `10.10.10.${2 + n}`,
    userData: "",
    volumes: [],
    sshKeys: [],
  };
}

const lb = droplet("lb-01", "101", 0, ["foobar-lb"]);
const web = droplet("web-01", "102", 1, ["foobar-web"]);
const db = droplet("db-01", "103", 2, []);

const lbFirewall: LabFirewall = {
  address: "digitalocean_firewall.lb",
  name: "lb-fw",
  tags: ["foobar-lb"],
  dropletIds: [],
  inbound: [
    { protocol: "tcp", portRange: "80", addresses: ["0.0.0.0/0", "::/0"], tags: [], dropletIds: [] },
    { protocol: "icmp", addresses: ["0.0.0.0/0"], tags: [], dropletIds: [] },
  ],
  outbound: [{ protocol: "tcp", portRange: "80", addresses: [], tags: ["foobar-web"], dropletIds: [] }],
};
const webFirewall: LabFirewall = {
  address: "digitalocean_firewall.web",
  name: "web-fw",
  tags: [],
  dropletIds: ["102"],
  inbound: [{ protocol: "tcp", portRange: "8000-8080", addresses: [], tags: [], dropletIds: ["101"] }],
  outbound: [{ protocol: "udp", portRange: "1-65535", addresses: ["203.0.113.0/24"], tags: [], dropletIds: [] }],
};
const sshFirewall: LabFirewall = {
  address: "digitalocean_firewall.ssh",
  name: "ssh-fw",
  tags: ["foobar-lb", "foobar-web"],
  dropletIds: [],
  inbound: [{ protocol: "tcp", portRange: "22", addresses: ["192.0.2.7/32"], tags: [], dropletIds: [] }],
  outbound: [],
};
const stack: LabStack = {
  vpc: { address: "digitalocean_vpc.net", name: "vpc", ipRange: "10.10.10.0/24" },
  droplets: [lb, web, db],
  firewalls: [lbFirewall, webFirewall, sshFirewall],
  volumes: [],
  reservedIps: [],
  computed: {},
  records: [],
};

describe("renderFirewall", () => {
  test("a droplet with a firewall drops inbound and outbound on its NICs by default, keeping return traffic; loopback and tunnels inside the droplet are not its business", () => {
    const rules = renderFirewall(stack, lb, "do_cloud_firewall", proxy);
    expect(rules).toContain("type filter hook input priority filter; policy drop;");
    expect(rules).toContain("type filter hook output priority filter; policy drop;");
    expect(rules).toContain('iifname != { "eth0", "eth1" } accept');
    expect(rules).toContain('oifname != { "eth0", "eth1" } accept');
    expect(rules.match(/ct state established,related accept/g)).toHaveLength(2);
  });

  test("0.0.0.0/0 and ::/0 allow every IPv4 and IPv6 source on the port", () => {
    const rules = renderFirewall(stack, lb, "do_cloud_firewall", proxy);
    expect(rules).toContain("meta nfproto ipv4 tcp dport 80 accept");
    expect(rules).toContain("meta nfproto ipv6 tcp dport 80 accept");
    expect(rules).toContain("meta nfproto ipv4 meta l4proto icmp accept");
  });

  test("a tag or droplet id means that droplet's public and private addresses", () => {
    expect(renderFirewall(stack, lb, "t", proxy)).toContain("ip daddr { 198.51.100.11, 10.10.10.3 } tcp dport 80 accept");
    expect(renderFirewall(stack, web, "t", proxy)).toContain("ip saddr { 198.51.100.10, 10.10.10.2 } tcp dport 8000-8080 accept");
  });

  test("1-65535 means every port of the protocol", () => {
    expect(renderFirewall(stack, web, "t", proxy)).toContain("ip daddr { 203.0.113.0/24 } meta l4proto udp accept");
  });

  test("several firewalls on one droplet: the union of their rules", () => {
    const rules = renderFirewall(stack, web, "t", proxy);
    expect(rules).toContain("# web-01: web-fw, ssh-fw");
    expect(rules).toContain("ip saddr { 192.0.2.7/32 } tcp dport 22 accept");
  });

  test("the only lab-only exception is outbound TCP to the apt proxy", () => {
    const rules = renderFirewall(stack, lb, "t", proxy);
    expect(rules).toContain("ip daddr 198.51.100.1 tcp dport 3142 accept");
    expect(rules.match(/198\.51\.100\.1 /g)).toHaveLength(1);
  });

  test("a droplet no firewall applies to allows everything (no table)", () => {
    const rules = renderFirewall(stack, db, "t", proxy);
    expect(rules).toBe("table inet t\ndelete table inet t\n# db-01: no cloud firewall applies, all traffic allowed\n");
  });

  test("a port range the lab cannot translate names the firewall", () => {
    const bad: LabStack = {
      ...stack,
      firewalls: [{ ...lbFirewall, inbound: [{ protocol: "tcp", portRange: "http", addresses: ["0.0.0.0/0"], tags: [], dropletIds: [] }] }],
    };
    expect(() => renderFirewall(bad, lb, "t", proxy)).toThrow('digitalocean_firewall.lb: port_range must be "N", "N-M"');
  });

  // Real tool over imitation: nft itself parses the ruleset, in a throwaway network namespace.
  const canRunNft = process.getuid?.() === 0 && spawnSync("unshare", ["-n", "nft", "--version"]).status === 0;
  (canRunNft ? test : test.skip)("nft accepts every rendered ruleset", () => {
    for (const d of stack.droplets) {
      const ruleset = renderFirewall(stack, d, "do_cloud_firewall", proxy);
      const result = spawnSync("unshare", ["-n", "nft", "-c", "-f", "-"], { input: ruleset, encoding: "utf8" });
      // eslint-disable-next-line jest/no-standalone-expect -- inside a test chosen at load time (test or test.skip)
      expect({ droplet: d.name, stderr: result.stderr, status: result.status }).toEqual({ droplet: d.name, stderr: "", status: 0 });
    }
  });
});
