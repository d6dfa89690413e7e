// Brings the types of cdktf's jest matchers; __tests__/setup.ts registers them.
import "cdktf/lib/testing/adapters/jest";

import { Firewall } from "@cdktf/provider-digitalocean/lib/firewall";
import { Testing } from "cdktf";

import { Firewalls, Network, RoleTags } from "../../constructs";

function synthFirewalls(adminCidrs?: string[]) {
  return Testing.synthScope((scope) => {
    const network = new Network(scope, "network", { project: "foobar", region: "nyc3", ipRange: "10.10.10.0/24" });
    const tags = new RoleTags(scope, "tags", { project: "foobar" });
    new Firewalls(scope, "firewalls", { project: "foobar", network, tags, adminCidrs });
  });
}

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
});
