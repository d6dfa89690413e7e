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

  test("every secret file is owned by the user of what reads it, with mode 0600", () => {
    const secretFiles = (name: string) =>
      parseCloudConfig(droplet(stack, name).user_data).write_files.filter((f) => /PASSWORD=/.test(f.content));
    const owners = (name: string) => Object.fromEntries(secretFiles(name).map((f) => [f.path, `${f.owner} ${f.permissions}`]));
    // The setup script runs as root; systemd (root) reads HAProxy's file for the service.
    expect(owners("web-01")).toEqual({
      "/etc/foobar/mysql-setup.env": "root:root 0600",
      "/etc/foobar/app.env": "foobar-app:foobar-app 0600",
    });
    expect(owners("lb-01")).toEqual({ "/etc/haproxy/foobar-stats.env": "haproxy:haproxy 0600" });
    const web = parseCloudConfig(droplet(stack, "web-01").user_data);
    expect(fileAt(web, "/etc/systemd/system/foobar-app.service")).toContain("User=foobar-app");
  });

  test("no secret is ever on a command line, where cloud-init's logs and ps would show it", () => {
    for (const d of resourcesOf(stack, "digitalocean_droplet")) {
      const runcmd = JSON.stringify(parseCloudConfig(d.user_data).runcmd);
      expect(runcmd).not.toMatch(/random_password|PASSWORD/);
    }
  });

  test("every droplet is hardened: key-only SSH, unattended upgrades, a host firewall", () => {
    for (const d of resourcesOf(stack, "digitalocean_droplet")) {
      const config = parseCloudConfig(d.user_data);
      expect(config.ssh_pwauth).toBe(false);
      expect(fileAt(config, "/etc/ssh/sshd_config.d/10-foobar-hardening.conf")).toMatch(
        /^PasswordAuthentication no$[\s\S]*^PermitRootLogin prohibit-password$/m,
      );
      expect(fileAt(config, "/etc/apt/apt.conf.d/20auto-upgrades")).toContain('APT::Periodic::Unattended-Upgrade "1";');
      expect(config.packages).toEqual(expect.arrayContaining(["ufw", "unattended-upgrades"]));
      expect(config.runcmd).toContainEqual(["ufw", "--force", "enable"]);
      expect(config.runcmd).toContainEqual(["ufw", "default", "deny", "incoming"]);
    }
  });

  test("each host firewall allows exactly the ports its cloud firewall allows", () => {
    const ufwPorts = (name: string) =>
      parseCloudConfig(droplet(stack, name).user_data)
        .runcmd.filter((c): c is string[] => Array.isArray(c) && c[0] === "ufw" && c[1] === "allow")
        .map((c) => Number(c[c.indexOf("port") + 1]));
    const cloudPorts = (tag: string) => inboundRules(stack, tag).map((rule) => Number(rule.port_range));
    const unique = (ports: number[]) => [...new Set(ports)].sort((a, b) => a - b);
    expect(unique(ufwPorts("lb-01"))).toEqual(unique(cloudPorts("foobar-lb")));
    expect(unique(ufwPorts("web-01"))).toEqual(unique(cloudPorts("foobar-web")));
    expect(unique(ufwPorts("web-02"))).toEqual(unique(cloudPorts("foobar-web")));
  });

  test("the admin CIDRs' SSH rule is in place before ufw starts filtering", () => {
    for (const d of resourcesOf(stack, "digitalocean_droplet")) {
      const runcmd = parseCloudConfig(d.user_data).runcmd.map((c) => JSON.stringify(c));
      const enable = runcmd.indexOf(JSON.stringify(["ufw", "--force", "enable"]));
      const ssh = runcmd.findIndex((c) => c.includes('"port","22"'));
      if (stack === stacks.withAdmins) {
        expect(ssh).toBeGreaterThan(0);
        expect(ssh).toBeLessThan(enable);
        expect(runcmd[ssh]).toContain('"from","203.0.113.7/32"');
      } else {
        expect(ssh).toBe(-1);
      }
    }
  });
});
