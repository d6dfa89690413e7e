import { droplet, fileAt, parseCloudConfig, resourcesOf, StackJson, synthStack } from "./helpers";

/** The tag names a firewall targets, resolved from its references. */
function targetTags(stack: StackJson, firewall: Record<string, any>): string[] {
  return (firewall.tags as string[]).map((reference) => {
    const [, name] = /^\$\{digitalocean_tag\.([\w-]+)\.name\}$/.exec(reference)!;
    return stack.resource.digitalocean_tag[name].name;
  });
}

function inboundRules(stack: StackJson, tag: string): Record<string, any>[] {
  return resourcesOf(stack, "digitalocean_firewall")
    .filter((firewall) => targetTags(stack, firewall).includes(tag))
    .flatMap((firewall) => firewall.inbound_rule as Record<string, any>[]);
}

function portInRange(port: number, range: string): boolean {
  const [low, high] = range.split("-").map(Number);
  return port >= low && port <= (high ?? low);
}

function rulesAllowing(rules: Record<string, any>[], port: number) {
  return rules.filter((rule) => rule.protocol === "tcp" && portInRange(port, rule.port_range));
}

const stacks = {
  defaults: synthStack(),
  threeWebServers: synthStack({ webServers: 3 }),
  withAdmins: synthStack({ adminCidrs: ["203.0.113.7/32"] }),
};

describe.each(Object.entries(stacks))("policy (%s)", (_name, stack) => {
  test("every droplet is covered by a cloud firewall", () => {
    const firewalled = new Set(resourcesOf(stack, "digitalocean_firewall").flatMap((f) => targetTags(stack, f)));
    for (const d of resourcesOf(stack, "digitalocean_droplet")) {
      const tagNames = (d.tags as string[]).map((ref) => stack.resource.digitalocean_tag[/\.([\w-]+)\.name/.exec(ref)![1]].name);
      expect(tagNames.some((tag) => firewalled.has(tag))).toBe(true);
    }
  });

  test("MySQL is never reachable from the internet, only from web servers", () => {
    for (const tag of ["foobar-lb", "foobar-web"]) {
      for (const rule of rulesAllowing(inboundRules(stack, tag), 3306)) {
        expect(rule.source_addresses ?? []).toEqual([]);
        expect(rule.source_tags).toEqual([expect.stringMatching(/digitalocean_tag\.tags_web_/)]);
      }
    }
  });

  test("web servers are never reachable from the internet: HTTP only from the load balancer", () => {
    for (const rule of inboundRules(stack, "foobar-web")) {
      for (const address of rule.source_addresses ?? []) expect(address).not.toMatch(/\/0$/);
    }
    const http = rulesAllowing(inboundRules(stack, "foobar-web"), 80);
    expect(http).toEqual([expect.objectContaining({ source_tags: [expect.stringMatching(/digitalocean_tag\.tags_lb_/)] })]);
  });

  test("SSH is never open to the world, and closed entirely without admin CIDRs", () => {
    for (const tag of ["foobar-lb", "foobar-web"]) {
      const ssh = rulesAllowing(inboundRules(stack, tag), 22);
      if (stack === stacks.withAdmins) expect(ssh).toEqual([expect.objectContaining({ source_addresses: ["203.0.113.7/32"] })]);
      else expect(ssh).toEqual([]);
    }
  });

  test('full port ranges are written "1-65535", never "all"', () => {
    for (const firewall of resourcesOf(stack, "digitalocean_firewall")) {
      for (const rule of [...firewall.inbound_rule, ...firewall.outbound_rule]) expect(rule.port_range).not.toBe("all");
    }
  });

  test("nothing in the synthesized stack holds a password: only references to generated ones", () => {
    const text = JSON.stringify(stack);
    expect(text).not.toMatch(/PASSWORD=(?!\$\{random_password\.)/);
    for (const output of Object.values(stack.output)) {
      if (JSON.stringify(output.value).includes("random_password")) expect(output.sensitive).toBe(true);
    }
  });

  test("secret files on the web servers are readable by their owner alone", () => {
    const web = parseCloudConfig(droplet(stack, "web-01").user_data);
    for (const path of ["/etc/foobar/mysql-setup.env", "/etc/foobar/app.env"]) {
      const file = web.write_files.find((f) => f.path === path)!;
      expect(file.permissions).toBe("0600");
    }
    expect(web.write_files.find((f) => f.path === "/etc/foobar/app.env")!.owner).toBe("foobar-app:foobar-app");
    expect(fileAt(web, "/etc/systemd/system/foobar-app.service")).toContain("User=foobar-app");
  });
});
