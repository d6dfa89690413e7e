/**
 * The lab network: namespaces, veths, two bridges, the host guard routes.
 *
 *   host ── lab-up (198.51.100.1, apt proxy)
 *              │ veth
 *   lab-sw:  br-pub ──────┬───────────────┬──────────────┐          br-vpc ──────────┐
 *              │ veth     │ veth          │ veth         │ veth        │ veth        │ veth
 *   lab-client eth0 .2   lab-acme eth0 .3  lab-lb-01 eth0 .10   lab-web-01 eth0 .11  (eth1s)
 *                                               eth1 10.10.10.2       eth1 10.10.10.3
 *
 * Droplet, client and ACME namespaces have no default route: they reach each
 * other and the apt proxy, nothing else. The host gets guard routes for the whole lab
 * address space before any link exists, so no packet to a lab address can
 * leave through the host's default gateway.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { dropletLinkLocal, METADATA_ADDRESS, METADATA_SWITCH_TABLE, renderMetadataSwitchRules } from "../emulations/metadata";
import { LabDroplet, LabRecord } from "../emulations/terraform";
import {
  ACME_ADDRESS,
  ACME_NS,
  API_ADDRESS,
  API_NS,
  CLIENT_ADDRESS,
  CLIENT_NS,
  DNS_ADDRESS,
  DNS_NS,
  dropletNamespace,
  dropletSlot,
  GUARD_ROUTE_METRIC,
  HOOKS_ADDRESS,
  HOOKS_NS,
  METADATA_NS,
  PUBLIC_BRIDGE,
  PUBLIC_RANGE,
  SPACES_ADDRESS,
  SPACES_NS,
  stateDir,
  SWITCH_NS,
  UPLINK_ADDRESS,
  UPLINK_LINK,
  UPLINK_PORT,
  VPC_BRIDGE,
} from "../settings";
import { rangesOverlap } from "./addresses";
import { run, tryRun } from "./shell";
import { LabState, remember, saveState } from "./state";

const NETNS_ETC = "/etc/netns";

/**
 * Routes the whole lab address space to nowhere on the host (`unreachable`,
 * at a high metric so the uplink's own connected route wins while it exists).
 *
 * @throws Error when a lab range overlaps a network the host already uses.
 */
export function addGuardRoutes(state: LabState, ranges: readonly string[]): void {
  const hostRoutes = JSON.parse(run("ip", ["-j", "-4", "route", "show", "table", "all"])) as {
    dst: string;
    dev?: string;
    metric?: number;
    table?: string;
  }[];
  for (const range of ranges) {
    for (const route of hostRoutes) {
      if (route.dst === "default" || route.table === "local") continue;
      const ours = route.dev === UPLINK_LINK || route.metric === GUARD_ROUTE_METRIC;
      const dst = route.dst.includes("/") ? route.dst : `${route.dst}/32`;
      if (!ours && rangesOverlap(dst, range)) {
        throw new Error(`lab range ${range} overlaps the host's route to ${route.dst}: refusing to touch host routing`);
      }
    }
  }
  for (const cidr of ranges) {
    remember(state, state.guardRoutes, { cidr, metric: GUARD_ROUTE_METRIC });
    run("ip", ["route", "replace", "unreachable", cidr, "metric", String(GUARD_ROUTE_METRIC)]);
  }
}

/** Creates the switch namespace with its two bridges, and the host's uplink into the public bridge. */
export function createSwitch(state: LabState): void {
  addNamespace(state, SWITCH_NS);
  // The switch is layer 2 only: no IPv6 chatter from its bridges.
  run("ip", ["netns", "exec", SWITCH_NS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
  for (const bridge of [PUBLIC_BRIDGE, VPC_BRIDGE]) {
    run("ip", ["-n", SWITCH_NS, "link", "add", bridge, "type", "bridge"]);
    run("ip", ["-n", SWITCH_NS, "link", "set", bridge, "up"]);
  }
  remember(state, state.hostLinks, UPLINK_LINK);
  run("ip", ["link", "add", UPLINK_LINK, "type", "veth", "peer", "name", UPLINK_PORT, "netns", SWITCH_NS]);
  run("ip", ["-n", SWITCH_NS, "link", "set", UPLINK_PORT, "master", PUBLIC_BRIDGE, "up"]);
  // The host never routes for the lab (a container could add a default route
  // via the uplink): no forwarding from this link, and no IPv6 on it.
  run("sysctl", ["-qw", `net.ipv4.conf.${UPLINK_LINK}.forwarding=0`, `net.ipv6.conf.${UPLINK_LINK}.disable_ipv6=1`]);
  run("ip", ["addr", "add", `${UPLINK_ADDRESS}/${prefixOf(PUBLIC_RANGE)}`, "dev", UPLINK_LINK]);
  run("ip", ["link", "set", UPLINK_LINK, "up"]);
}

/** Creates a droplet's namespace with `eth0` (public) and `eth1` (VPC), addresses set from the host. */
export function addDropletNetwork(state: LabState, droplet: LabDroplet, vpcRange: string): string {
  const ns = dropletNamespace(droplet.name);
  const slot = dropletSlot(droplet.name);
  addNamespace(state, ns);
  const [publicPort, vpcPort] = switchPorts(slot);
  plug(ns, "eth0", publicPort, PUBLIC_BRIDGE, `${droplet.publicIpv4}/${prefixOf(PUBLIC_RANGE)}`);
  plug(ns, "eth1", vpcPort, VPC_BRIDGE, `${droplet.privateIpv4}/${prefixOf(vpcRange)}`);
  // DigitalOcean's metadata service is on-link from eth0.
  run("ip", ["-n", ns, "addr", "add", `${dropletLinkLocal(slot)}/16`, "dev", "eth0"]);
  return ns;
}

/**
 * Creates the metadata service's namespace on the public bridge, and the
 * switch rules that keep link-local traffic between each droplet (from its
 * own address) and the service.
 */
export function addMetadataHost(state: LabState, dropletNames: readonly string[]): void {
  addNamespace(state, METADATA_NS);
  plug(METADATA_NS, "eth0", "pub-meta", PUBLIC_BRIDGE, `${METADATA_ADDRESS}/16`);
  applyMetadataSwitchRules(dropletNames);
}

/** (Re)writes the switch rules that keep each droplet's link-local traffic to its own address. */
export function applyMetadataSwitchRules(dropletNames: readonly string[]): void {
  const ports = dropletNames.map(dropletSlot).map((slot) => ({ port: switchPorts(slot)[0], linkLocal: dropletLinkLocal(slot) }));
  // `table X` then `delete table X`: the delete succeeds whether or not X exists.
  const reset = `table bridge ${METADATA_SWITCH_TABLE}\ndelete table bridge ${METADATA_SWITCH_TABLE}\n`;
  run("ip", ["netns", "exec", SWITCH_NS, "nft", "-f", "-"], { input: reset + renderMetadataSwitchRules(METADATA_SWITCH_TABLE, ports) });
}

/** Deletes a droplet's namespace (its veths go with it); returns what it removed. */
export function removeDropletNetwork(state: LabState, dropletName: string): string[] {
  const ns = dropletNamespace(dropletName);
  state.namespaces = state.namespaces.filter((name) => name !== ns);
  saveState(state);
  // The switch's ends first, at once: the kernel frees a deleted namespace's links later, and a droplet of the
  // same name created meanwhile (a replacement) would find its ports still taken.
  for (const port of switchPorts(dropletSlot(dropletName))) tryRun("ip", ["-n", SWITCH_NS, "link", "del", port]);
  return listNamespaces().includes(ns) && tryRun("ip", ["netns", "del", ns]).status === 0 ? [`namespace ${ns}`] : [];
}

/** Rewrites the client's hosts file after the stack's records changed. */
export function updateClientHosts(records: readonly LabRecord[]): void {
  fs.writeFileSync(path.join(NETNS_ETC, CLIENT_NS, "hosts"), renderClientHosts(records));
}

/** The switch-side ends of a droplet's `eth0` and `eth1` (in `lab-sw`), by its slot ({@link dropletSlot}). */
export function switchPorts(index: number): [string, string] {
  return [`pub${index}`, `vpc${index}`];
}

/**
 * Creates the client namespace on the public bridge, with a hosts file that
 * resolves the stack's A records (what DigitalOcean DNS would answer).
 */
export function addClient(state: LabState, records: readonly LabRecord[]): void {
  addNamespace(state, CLIENT_NS);
  plug(CLIENT_NS, "eth0", "pub-client", PUBLIC_BRIDGE, `${CLIENT_ADDRESS}/${prefixOf(PUBLIC_RANGE)}`);
  writeNetnsEtc(state, CLIENT_NS, renderClientHosts(records));
}

/**
 * Creates the ACME CA's namespace on the public bridge, outside every cloud
 * firewall (like a CA on the internet). Pebble resolves names through its own
 * `-dnsserver`; anything else in there resolves nothing.
 */
export function addAcmeHost(state: LabState): void {
  addNamespace(state, ACME_NS);
  plug(ACME_NS, "eth0", "pub-acme", PUBLIC_BRIDGE, `${ACME_ADDRESS}/${prefixOf(PUBLIC_RANGE)}`);
  writeNetnsEtc(state, ACME_NS, renderClientHosts([]));
}

/** Creates the namespace of DigitalOcean's API, emulated (api.ts), on the public bridge. */
export function addApiHost(state: LabState): void {
  addNamespace(state, API_NS);
  plug(API_NS, "eth0", "pub-api", PUBLIC_BRIDGE, `${API_ADDRESS}/${prefixOf(PUBLIC_RANGE)}`);
}

/** Creates the namespace of DigitalOcean Spaces, emulated (spaces.ts), on the public bridge. */
export function addSpacesHost(state: LabState): void {
  addNamespace(state, SPACES_NS);
  plug(SPACES_NS, "eth0", "pub-spaces", PUBLIC_BRIDGE, `${SPACES_ADDRESS}/${prefixOf(PUBLIC_RANGE)}`);
}

/**
 * Creates the namespace of the operator's alert webhook, emulated
 * (alert-receiver.ts), on the public bridge: outside every cloud firewall,
 * like a service on the internet that mon-01's Alertmanager posts to.
 */
export function addHooksHost(state: LabState): void {
  addNamespace(state, HOOKS_NS);
  plug(HOOKS_NS, "eth0", "pub-hooks", PUBLIC_BRIDGE, `${HOOKS_ADDRESS}/${prefixOf(PUBLIC_RANGE)}`);
}

/** Creates the namespace of the lab's DNS (DigitalOcean's resolver) on the public bridge. */
export function addDnsHost(state: LabState): void {
  addNamespace(state, DNS_NS);
  plug(DNS_NS, "eth0", "pub-dns", PUBLIC_BRIDGE, `${DNS_ADDRESS}/${prefixOf(PUBLIC_RANGE)}`);
}

/** Which droplet holds each reserved IP right now (`ip` → droplet name): what DigitalOcean's network does, for the metadata service and the checks. */
export function reservedIpHoldersFile(): string {
  return path.join(stateDir(), "reserved-ips.json");
}

/** The holder of every reserved IP the lab has moved; an unassigned address is absent. */
export function reservedIpHolders(): Record<string, string> {
  try {
    return JSON.parse(fs.readFileSync(reservedIpHoldersFile(), "utf8")) as Record<string, string>;
  } catch {
    return {};
  }
}

/**
 * Moves a reserved IP to a droplet (or nowhere): the address is taken off
 * every other namespace and added to the droplet's public interface, every
 * lab namespace forgets where it was, and the holders file says so
 * (DigitalOcean's network does the same behind the API). Unlike on
 * DigitalOcean, where the droplet receives it through its anchor address,
 * the droplet sees the address on its own `eth0`.
 */
export function moveReservedIp(namespaces: readonly string[], ip: string, dropletName: string | undefined): void {
  const hosts = namespaces.filter((ns) => ns !== SWITCH_NS);
  const owner = dropletName === undefined ? undefined : dropletNamespace(dropletName);
  const holds = (ns: string) => tryRun("ip", ["-n", ns, "-4", "-o", "addr", "show", "to", `${ip}/32`]).stdout.trim() !== "";
  // In this order: off the old holder, onto the new one, and only then every
  // neighbour cache flushed. Flushing a client's cache while the old holder
  // still has the address lets the client learn the old holder's MAC again,
  // and it then sends to a droplet that no longer has the address until that
  // entry expires (seen after a split brain: the site timed out for tens of seconds).
  for (const ns of hosts) if (ns !== owner && holds(ns)) run("ip", ["-n", ns, "addr", "del", `${ip}/32`, "dev", "eth0"]);
  if (owner !== undefined && hosts.includes(owner) && !holds(owner)) run("ip", ["-n", owner, "addr", "add", `${ip}/32`, "dev", "eth0"]);
  for (const ns of hosts) tryRun("ip", ["-n", ns, "neigh", "flush", "to", ip]);
  const holders = reservedIpHolders();
  if (dropletName === undefined) delete holders[ip];
  else holders[ip] = dropletName;
  const next = `${reservedIpHoldersFile()}.${process.pid}`;
  fs.writeFileSync(next, JSON.stringify(holders) + "\n", { mode: 0o644 });
  fs.renameSync(next, reservedIpHoldersFile());
}

/** Moves a reserved IP to a droplet of the running lab, at once (the API emulator adds the delay). */
export function assignReservedIp(state: LabState, ip: string, dropletName: string): void {
  moveReservedIp(state.namespaces, ip, dropletName);
}

/** The client's hosts file: one line per A record. */
export function renderClientHosts(records: readonly LabRecord[]): string {
  const lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"];
  for (const record of records) {
    if (record.type === "A") lines.push(`${record.value} ${record.fqdn}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * Loads an nftables ruleset into a namespace, from outside the container's
 * view. Once a droplet runs (`init`, its init's host PID), its own nft does
 * it, in the droplet's network and mount namespaces only; while it is powered
 * off, its own nft from its disk (`rootfs`) does, in its network namespace:
 * the host's nft (Debian 12's 1.0.6) segfaults reading a ruleset that the
 * droplet's newer nft and ufw wrote there.
 */
export function applyNftables(ns: string, ruleset: string, init?: number, rootfs?: string): void {
  if (init !== undefined) run("nsenter", ["-t", String(init), "-n", "-m", "--", "nft", "-f", "-"], { input: ruleset });
  else if (rootfs !== undefined && fs.existsSync(path.join(rootfs, "usr/sbin/nft"))) {
    run("ip", ["netns", "exec", ns, "chroot", rootfs, "nft", "-f", "-"], { input: ruleset });
  } else run("ip", ["netns", "exec", ns, "nft", "-f", "-"], { input: ruleset });
}

/** Whether the namespace still has the given inet table. */
export function hasNftTable(ns: string, table: string): boolean {
  return tryRun("ip", ["netns", "exec", ns, "nft", "list", "table", "inet", table]).status === 0;
}

/** Deletes the lab's namespaces, host links, netns files and guard routes; returns what it removed. */
export function teardownNetwork(state: LabState): string[] {
  const removed: string[] = [];
  const existing = listNamespaces();
  // Droplets and client first, the switch last (deleting a namespace deletes its veths).
  for (const ns of [...state.namespaces].reverse()) {
    if (existing.includes(ns) && tryRun("ip", ["netns", "del", ns]).status === 0) removed.push(`namespace ${ns}`);
  }
  state.namespaces = [];
  saveState(state);
  for (const link of state.hostLinks) {
    // Usually already gone with the switch namespace (its veth peer), possibly a moment later.
    if (tryRun("ip", ["link", "del", link]).status === 0) removed.push(`link ${link}`);
  }
  state.hostLinks = [];
  for (const dir of state.netnsEtcDirs) {
    if (fs.existsSync(dir)) {
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    }
  }
  state.netnsEtcDirs = [];
  saveState(state);
  // Guard routes go last: only now is nothing of the lab left to send packets to.
  for (const route of state.guardRoutes) {
    const args = ["route", "del", "unreachable", route.cidr, "metric", String(route.metric)];
    if (tryRun("ip", args).status === 0) removed.push(`route unreachable ${route.cidr}`);
  }
  state.guardRoutes = [];
  saveState(state);
  return removed;
}

export function listNamespaces(): string[] {
  return run("ip", ["netns", "list"])
    .split("\n")
    .map((line) => line.split(" ")[0]!)
    .filter((name) => name !== "");
}

/** `/etc/netns/<ns>`: `ip netns exec` bind-mounts these over /etc/hosts and /etc/resolv.conf. */
function writeNetnsEtc(state: LabState, ns: string, hosts: string): void {
  const etc = path.join(NETNS_ETC, ns);
  remember(state, state.netnsEtcDirs, etc);
  fs.mkdirSync(etc, { recursive: true });
  fs.writeFileSync(path.join(etc, "hosts"), hosts);
  // No DNS server in the lab: names outside the hosts file fail on loopback, never reach the host's resolver.
  fs.writeFileSync(path.join(etc, "resolv.conf"), "nameserver 127.0.0.1\n");
}

function addNamespace(state: LabState, ns: string): void {
  if (listNamespaces().includes(ns)) {
    throw new Error(`network namespace ${ns} already exists: run \`npm run lab:down\` first`);
  }
  remember(state, state.namespaces, ns);
  run("ip", ["netns", "add", ns]);
  run("ip", ["-n", ns, "link", "set", "lo", "up"]);
}

/** A veth from `ns` (named `inside`) to a bridge in the switch namespace, with an address. */
function plug(ns: string, inside: string, outside: string, bridge: string, cidr: string): void {
  // Created inside the namespaces directly: the link never exists in the host namespace.
  run("ip", ["-n", ns, "link", "add", inside, "type", "veth", "peer", "name", outside, "netns", SWITCH_NS]);
  run("ip", ["-n", SWITCH_NS, "link", "set", outside, "master", bridge, "up"]);
  run("ip", ["-n", ns, "addr", "add", cidr, "dev", inside]);
  run("ip", ["-n", ns, "link", "set", inside, "up"]);
}

function prefixOf(cidr: string): string {
  return cidr.split("/")[1]!;
}
