/**
 * DigitalOcean's droplet metadata service, emulated for the lab: the part of
 * https://docs.digitalocean.com/reference/api/metadata/ that a droplet reads,
 * at `http://169.254.169.254/metadata/v1/…`.
 *
 * One server (lab/metadata-server.ts, as `nobody`) in its own namespace
 * (`lab-meta`) on the public bridge. Each droplet has a link-local address of
 * its own on `eth0`, and the server answers each source address with that
 * droplet's metadata, as DigitalOcean answers each droplet with its own. The
 * lab switch drops metadata traffic from a droplet's port unless it comes from
 * that droplet's own link-local address, so no droplet can ask as another, and
 * keeps link-local traffic away from the host's uplink (the host reaches its
 * own, real, metadata service at the same address).
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { METADATA_ADDRESS } from "../../cloud-init/metadata-guard";
import { NOBODY_ID, spawnUnprivileged, stopServer, waitUntilServing } from "../host/processes";
import { log, run, tryRun } from "../host/shell";
import { LabState, saveState } from "../host/state";
import { dropletSlot, METADATA_NS, stateDir, UPLINK_PORT } from "../settings";
import type { LabDroplet, LabStack } from "./terraform";

/** DigitalOcean's metadata address (the stack's guard and the lab agree on it). */
export { METADATA_ADDRESS };
export const METADATA_PORT = 80;
/** The droplets' link-local addresses on eth0 come from here (the metadata address is outside it). */
export const LINK_LOCAL_RANGE = "169.254.0.0/24";

/** A droplet's link-local address on eth0, by its slot (`dropletSlot`). */
export function dropletLinkLocal(index: number): string {
  return `169.254.0.${10 + index}`;
}

/** Text leaves and nested indexes, as the service lays them out under /metadata/v1/. */
export interface MetadataTree {
  readonly [key: string]: string | MetadataTree;
}

/** One droplet's metadata: the tree behind /metadata/v1/ and the document /metadata/v1.json returns. */
export interface DropletMetadata {
  readonly tree: MetadataTree;
  readonly json: Record<string, unknown>;
}

/** `24` → `255.255.255.0`. */
function netmask(prefix: number): string {
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((shift) => (mask >>> shift) & 255).join(".");
}

/**
 * What DigitalOcean's metadata service tells a droplet about itself, from the
 * resolved stack. The lab has no gateway and no SSH keys of its own, so those
 * fields are absent or empty; reserved IPs are inactive here, and
 * `withReservedIp` adds the one a droplet holds.
 */
export function dropletMetadata(stack: LabStack, droplet: LabDroplet, publicPrefix: number): DropletMetadata {
  const vpcPrefix = Number(stack.vpc.ipRange.split("/")[1]);
  const iface = (address: string, prefix: number) => ({ ipv4: { address, netmask: netmask(prefix) } });
  const tree: MetadataTree = {
    id: droplet.id,
    hostname: droplet.name,
    "user-data": droplet.userData,
    "vendor-data": "",
    "public-keys": "",
    region: droplet.region,
    interfaces: {
      public: { "0": { ...iface(droplet.publicIpv4, publicPrefix), type: "public" } },
      private: { "0": { ...iface(droplet.privateIpv4, vpcPrefix), type: "private" } },
    },
    dns: { nameservers: "" },
    floating_ip: { ipv4: { active: "false" } },
    reserved_ip: { ipv4: { active: "false" } },
    tags: Object.fromEntries(droplet.tags.map((tag) => [tag, tag])),
    features: { dhcp_enabled: "false" },
  };
  const jsonInterface = (address: string, prefix: number, type: string) => ({
    ipv4: { ip_address: address, netmask: netmask(prefix) },
    type,
  });
  const json = {
    droplet_id: Number(droplet.id),
    hostname: droplet.name,
    user_data: droplet.userData,
    vendor_data: "",
    public_keys: [],
    region: droplet.region,
    interfaces: {
      public: [jsonInterface(droplet.publicIpv4, publicPrefix, "public")],
      private: [jsonInterface(droplet.privateIpv4, vpcPrefix, "private")],
    },
    floating_ip: { ipv4: { active: false } },
    reserved_ip: { ipv4: { active: false } },
    dns: { nameservers: [] },
    tags: [...droplet.tags],
    features: { dhcp_enabled: false },
  };
  return { tree, json };
}

/**
 * A droplet's metadata with the reserved IP it holds right now (DigitalOcean
 * reports `reserved_ip/ipv4/active` and, when active, `ip_address`; the
 * older `floating_ip` says the same).
 */
export function withReservedIp(metadata: DropletMetadata, ip: string | undefined): DropletMetadata {
  if (ip === undefined) return metadata;
  const leaf = { ipv4: { active: "true", ip_address: ip } };
  const json = { ipv4: { active: true, ip_address: ip } };
  return {
    tree: { ...metadata.tree, floating_ip: leaf, reserved_ip: leaf },
    json: { ...metadata.json, floating_ip: json, reserved_ip: json },
  };
}

/** An HTTP answer of the metadata service. */
export interface MetadataAnswer {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string>;
}

const text = (status: number, body: string, headers: Record<string, string> = {}): MetadataAnswer => ({
  status,
  body,
  headers: { "Content-Type": "text/plain; charset=utf-8", ...headers },
});

/**
 * How the service answers `GET <urlPath>` for one droplet: a leaf's text, an
 * index (one entry a line, nested indexes with a trailing slash), the whole
 * document at /metadata/v1.json, 301 to the slashed URL for an index asked
 * without its slash, 404 for anything else.
 */
export function metadataAnswer(metadata: DropletMetadata, method: string, urlPath: string): MetadataAnswer {
  if (method !== "GET" && method !== "HEAD") return text(405, "method not allowed\n", { Allow: "GET, HEAD" });
  const pathname = urlPath.split("?")[0] ?? "";
  if (pathname === "/metadata/v1.json") {
    return { status: 200, body: JSON.stringify(metadata.json), headers: { "Content-Type": "application/json" } };
  }
  const prefix = "/metadata/v1";
  if (pathname !== prefix && !pathname.startsWith(`${prefix}/`)) return text(404, "not found\n");
  const slashed = pathname.endsWith("/");
  const parts = pathname.slice(prefix.length).split("/").filter(Boolean);
  let node: string | MetadataTree = metadata.tree;
  for (const part of parts) {
    if (typeof node === "string" || !Object.prototype.hasOwnProperty.call(node, part)) return text(404, "not found\n");
    node = node[part]!;
  }
  if (typeof node === "string") return slashed ? text(404, "not found\n") : text(200, node);
  if (!slashed) return text(301, "", { Location: `${pathname}/` });
  const index = Object.entries(node).map(([key, value]) => (typeof value === "string" ? key : `${key}/`));
  return text(200, index.join("\n"));
}

/** What the metadata server reads: each droplet's metadata by its link-local address. */
export interface MetadataServerConfig {
  readonly address: string;
  readonly port: number;
  readonly byAddress: Record<string, DropletMetadata>;
}

/**
 * The lab switch's rules for link-local traffic (bridge family, in `lab-sw`):
 * a droplet's port carries metadata requests only from that droplet's own
 * link-local address, link-local traffic goes nowhere but to and from the
 * metadata service, and never through the host's uplink.
 */
export function renderMetadataSwitchRules(table: string, dropletPorts: readonly { port: string; linkLocal: string }[]): string {
  return [
    `table bridge ${table} {`,
    "  chain forward {",
    "    type filter hook forward priority -100; policy accept;",
    `    iifname "${UPLINK_PORT}" ip saddr 169.254.0.0/16 drop`,
    `    oifname "${UPLINK_PORT}" ip daddr 169.254.0.0/16 drop`,
    ...dropletPorts.map(({ port, linkLocal }) => `    iifname "${port}" ip daddr ${METADATA_ADDRESS} ip saddr != ${linkLocal} drop`),
    `    ip daddr 169.254.0.0/16 ip daddr != ${METADATA_ADDRESS} ip saddr != ${METADATA_ADDRESS} drop`,
    "  }",
    "}",
    "",
  ].join("\n");
}

/** The bridge table in `lab-sw` holding {@link renderMetadataSwitchRules}. */
export const METADATA_SWITCH_TABLE = "lab_metadata";

/**
 * Writes every droplet's metadata for the server (readable by `nobody` only:
 * it holds every droplet's user-data) and starts the server in `lab-meta`.
 */
export async function startMetadata(state: LabState, stack: LabStack, publicPrefix: number): Promise<void> {
  const dir = path.join(stateDir(), "metadata");
  state.metadata = { dir };
  saveState(state);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chownSync(dir, NOBODY_ID, NOBODY_ID);
  const config: MetadataServerConfig = {
    address: METADATA_ADDRESS,
    port: METADATA_PORT,
    byAddress: Object.fromEntries(
      stack.droplets.map((droplet) => [dropletLinkLocal(dropletSlot(droplet.name)), dropletMetadata(stack, droplet, publicPrefix)]),
    ),
  };
  const configFile = path.join(dir, "config.json");
  fs.writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
  fs.chownSync(configFile, NOBODY_ID, NOBODY_ID);
  // Only inside lab-meta: lets `nobody` bind port 80 there.
  run("ip", ["netns", "exec", METADATA_NS, "sysctl", "-qw", `net.ipv4.ip_unprivileged_port_start=${METADATA_PORT}`]);
  const logFile = path.join(dir, "requests.log");
  const server = path.join(__dirname, "metadata-server.ts");
  const tsNode = require.resolve("ts-node/register/transpile-only");
  state.metadata.pid = spawnUnprivileged(METADATA_NS, process.execPath, ["-r", tsNode, server, configFile], {}, logFile);
  saveState(state);
  await waitUntilServing(
    METADATA_NS,
    "the metadata service",
    state.metadata.pid,
    "node",
    logFile,
    () => tryRun("ip", ["netns", "exec", METADATA_NS, "ss", "-Hltn", `src ${METADATA_ADDRESS}:${METADATA_PORT}`]).stdout.trim() !== "",
  );
  log(
    `metadata: http://${METADATA_ADDRESS}/metadata/v1/ for ${stack.droplets.length} droplet(s), pid ${state.metadata.pid} in ${METADATA_NS}`,
  );
}

/** Stops the metadata server (by its recorded PID) and deletes its files; returns what it did. */
export async function stopMetadata(state: LabState): Promise<string[]> {
  const removed = await stopServer(state.metadata, "node", "metadata service");
  state.metadata = undefined;
  saveState(state);
  return removed;
}
