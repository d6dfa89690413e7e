/**
 * DigitalOcean cloud firewalls as nftables rulesets, one per droplet namespace.
 *
 * DigitalOcean semantics, emulated:
 * - a droplet with at least one firewall drops every inbound and outbound
 *   packet that no rule allows; a droplet with none allows everything;
 * - several firewalls on one droplet: the union of their rules;
 * - firewalls are stateful: return traffic of an allowed connection passes;
 * - rules apply to the public and the private interface alike, and to
 *   nothing else: DigitalOcean's firewall sits outside the droplet and sees
 *   only what crosses its NICs (a tunnel's inner packets, on an interface the
 *   droplet makes, are the droplet's own business, for its host firewall);
 * - a tag or droplet id as source/destination means those droplets' public
 *   and private addresses;
 * - loopback is never filtered.
 *
 * The lab applies the ruleset from the host (`ip netns exec NS nft -f -`)
 * before the container boots, like DigitalOcean's firewall sits outside the
 * droplet.
 */
import type { LabDroplet, LabFirewall, LabFirewallRule, LabStack } from "./terraform";

/** A droplet's NICs in the lab (network.ts): the public `eth0` and the VPC's `eth1`. */
export const DROPLET_NICS = ["eth0", "eth1"] as const;

/** Where the droplets' only lab-only destination, the apt proxy, listens. */
export interface LabOnlyAllowance {
  readonly aptProxyAddress: string;
  readonly aptProxyPort: number;
}

/** The firewalls that apply to a droplet, by its tags or its id. */
export function firewallsFor(stack: LabStack, droplet: LabDroplet): LabFirewall[] {
  return stack.firewalls.filter((fw) => fw.dropletIds.includes(droplet.id) || fw.tags.some((tag) => droplet.tags.includes(tag)));
}

/**
 * The nftables ruleset (for `nft -f -`) of one droplet's namespace.
 *
 * The text first deletes the table, so applying it again replaces the rules.
 *
 * @throws Error on a port range or droplet id the lab cannot translate.
 */
export function renderFirewall(stack: LabStack, droplet: LabDroplet, table: string, labOnly: LabOnlyAllowance): string {
  const firewalls = firewallsFor(stack, droplet);
  // `table X` then `delete table X` makes the delete succeed whether or not X exists.
  const lines = [`table inet ${table}`, `delete table inet ${table}`];
  if (firewalls.length === 0) {
    lines.push(`# ${droplet.name}: no cloud firewall applies, all traffic allowed`);
    return lines.join("\n") + "\n";
  }
  lines.push(
    `# ${droplet.name}: ${firewalls.map((fw) => comment(fw.name)).join(", ")}`,
    `table inet ${table} {`,
    "  chain inbound {",
    "    type filter hook input priority filter; policy drop;",
    `    iifname != { ${DROPLET_NICS.map((nic) => `"${nic}"`).join(", ")} } accept`,
    "    ct state established,related accept",
  );
  for (const fw of firewalls) {
    for (const rule of fw.inbound) lines.push(...ruleLines(stack, fw, rule, "inbound"));
  }
  lines.push(
    "  }",
    "  chain outbound {",
    "    type filter hook output priority filter; policy drop;",
    `    oifname != { ${DROPLET_NICS.map((nic) => `"${nic}"`).join(", ")} } accept`,
    "    ct state established,related accept",
    // Lab only: droplets get their packages from the lab's apt-cacher-ng instead
    // of the internet, whatever the firewall says. Nothing else is exempt.
    "    # lab only: the apt proxy",
    `    ip daddr ${labOnly.aptProxyAddress} tcp dport ${labOnly.aptProxyPort} accept`,
  );
  for (const fw of firewalls) {
    for (const rule of fw.outbound) lines.push(...ruleLines(stack, fw, rule, "outbound"));
  }
  lines.push("  }", "}");
  return lines.join("\n") + "\n";
}

function ruleLines(stack: LabStack, fw: LabFirewall, rule: LabFirewallRule, direction: "inbound" | "outbound"): string[] {
  const peer = direction === "inbound" ? "saddr" : "daddr";
  const ports = portMatch(rule, fw);
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const address of rule.addresses) (address.includes(":") ? v6 : v4).add(address);
  for (const tag of rule.tags) {
    for (const d of stack.droplets.filter((d) => d.tags.includes(tag))) {
      v4.add(d.publicIpv4);
      v4.add(d.privateIpv4);
    }
  }
  for (const id of rule.dropletIds) {
    const d = stack.droplets.find((candidate) => candidate.id === id);
    if (!d) throw new Error(`${fw.address} refers to droplet id ${id}, which is not a droplet of the stack`);
    v4.add(d.publicIpv4);
    v4.add(d.privateIpv4);
  }
  const lines = [`    # ${comment(fw.name)} ${direction} ${rule.protocol} ${rule.portRange ?? "all"}`];
  if (v4.size > 0) {
    const match = v4.has("0.0.0.0/0") ? "meta nfproto ipv4" : `ip ${peer} { ${[...v4].join(", ")} }`;
    const proto = rule.protocol === "icmp" ? "meta l4proto icmp" : ports;
    lines.push(`    ${match} ${proto} accept`);
  }
  if (v6.size > 0) {
    const match = v6.has("::/0") ? "meta nfproto ipv6" : `ip6 ${peer} { ${[...v6].join(", ")} }`;
    const proto = rule.protocol === "icmp" ? "meta l4proto ipv6-icmp" : ports;
    lines.push(`    ${match} ${proto} accept`);
  }
  if (v4.size === 0 && v6.size === 0) lines.push("    # (no address, tag or droplet matches: the rule allows nothing)");
  return lines;
}

/** The nft match for a tcp/udp rule's ports; all ports when the range covers them all. */
function portMatch(rule: LabFirewallRule, fw: LabFirewall): string {
  const range = rule.portRange?.trim();
  if (rule.protocol === "icmp") return "";
  if (range === undefined || range === "" || range === "all" || range === "0" || range === "1-65535") {
    return `meta l4proto ${rule.protocol}`;
  }
  const match = /^(\d+)(?:-(\d+))?$/.exec(range);
  const low = Number(match?.[1]);
  const high = Number(match?.[2] ?? match?.[1]);
  if (!match || low < 1 || high > 65535 || low > high) {
    throw new Error(`${fw.address}: port_range must be "N", "N-M" (1-65535) or "all", got "${rule.portRange}"`);
  }
  return `${rule.protocol} dport ${low === high ? low : `${low}-${high}`}`;
}

/** A name made safe for an nft comment line. */
function comment(text: string): string {
  return text.replace(/[\r\n]+/g, " ");
}
