/**
 * The lab's fixed names, address plan and the environment overrides.
 *
 * Address plan (all IPv4, all inside namespaces the lab creates):
 * - the VPC range comes from the stack's `digitalocean_vpc.ip_range`; droplets get
 *   addresses from its third host address on (the first two are the network's
 *   gateway-ish addresses on DigitalOcean and are never handed out here);
 * - the fake public range is 198.51.100.0/24 (TEST-NET-2, RFC 5737: reserved for
 *   documentation, never routed on the internet), laid out as
 *   .1 the host's end of the uplink (where the apt proxy listens),
 *   .2 the `lab-client` namespace, .3 the `lab-acme` namespace (the lab's ACME
 *   CA), .4 the `lab-dns` namespace (DigitalOcean's resolvers and DNS zone),
 *   .5 the `lab-api` namespace (DigitalOcean's API), .6 the `lab-spaces`
 *   namespace (DigitalOcean Spaces, when the stack has a backup bucket),
 *   .7 the `lab-hooks` namespace (the operator's alert webhook, which
 *   Alertmanager on mon-01 posts to), .10 and up the droplets' `eth0`,
 *   .200 and up the reserved IPs;
 * - link-local: the metadata service at 169.254.169.254 (namespace `lab-meta`),
 *   and one address per droplet on its `eth0` from 169.254.0.0/24 (metadata.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { MAX_LOAD_BALANCERS, MAX_WEB_SERVERS } from "../settings";

/** The fake public range, standing in for DigitalOcean's public IPv4 space. */
export const PUBLIC_RANGE = "198.51.100.0/24";
/** Host end of the uplink veth into the lab switch: the apt proxy binds here. */
export const UPLINK_ADDRESS = "198.51.100.1";
/** The client namespace the tests talk from. */
export const CLIENT_ADDRESS = "198.51.100.2";
/** The ACME CA's namespace: pebble's directory listens here, on port 443. */
export const ACME_ADDRESS = "198.51.100.3";
/** DigitalOcean's resolver, emulated (dns.ts): what every droplet's resolv.conf names. */
export const DNS_ADDRESS = "198.51.100.4";
/** DigitalOcean's API, emulated (api.ts): what api.digitalocean.com resolves to in the lab. */
export const API_ADDRESS = "198.51.100.5";
/** DigitalOcean Spaces, emulated (spaces.ts): what `<region>.digitaloceanspaces.com` and the bucket's name resolve to in the lab. */
export const SPACES_ADDRESS = "198.51.100.6";
/** The operator's alert webhook, emulated (alert-receiver.ts): `FOOBAR_ALERT_WEBHOOK_URL` points here, on port 80. */
export const HOOKS_ADDRESS = "198.51.100.7";
/** First public address handed to a droplet. */
export const FIRST_DROPLET_PUBLIC_HOST = 10;
/** First public address handed to a reserved IP. */
export const FIRST_RESERVED_IP_HOST = 200;
/** First host number inside the VPC range handed to a droplet (.0 network, .1 gateway). */
export const FIRST_DROPLET_PRIVATE_HOST = 2;

export const APT_PROXY_PORT = 3142;

/** Namespace names. Droplet namespaces are `lab-<droplet name>`. */
export const SWITCH_NS = "lab-sw";
export const CLIENT_NS = "lab-client";
export const ACME_NS = "lab-acme";
/** DigitalOcean's DNS, emulated (see dns.ts). */
export const DNS_NS = "lab-dns";
/** DigitalOcean's API, emulated (see api.ts). */
export const API_NS = "lab-api";
/** DigitalOcean Spaces, emulated (see spaces.ts). */
export const SPACES_NS = "lab-spaces";
/** The operator's alert webhook, emulated (see alert-receiver.ts). */
export const HOOKS_NS = "lab-hooks";
/** DigitalOcean's metadata service, emulated (see metadata.ts). */
export const METADATA_NS = "lab-meta";
export const DROPLET_NS_PREFIX = "lab-";
/** Bridges inside the switch namespace: one per network, like a droplet's two NICs. */
export const PUBLIC_BRIDGE = "br-pub";
export const VPC_BRIDGE = "br-vpc";
/** Host-side end of the uplink veth. */
export const UPLINK_LINK = "lab-up";
/** Switch-side end of the uplink veth, on the public bridge. */
export const UPLINK_PORT = "up-pub";

/**
 * Metric of the guard routes that cover the whole lab address space on the host.
 * Higher than the kernel's connected route on the uplink (metric 0), so the
 * uplink wins while it exists and the guard catches everything else.
 */
export const GUARD_ROUTE_METRIC = 4242;

/** nftables table holding the emulated DigitalOcean cloud firewall in each droplet namespace. */
export const FIREWALL_TABLE = "do_cloud_firewall";

export const DEBIAN_SUITE = "sid";

/** Where the host's apt sources live: one-line `.list` files and deb822 `.sources` files. */
const APT_SOURCES = ["/etc/apt/sources.list", "/etc/apt/sources.list.d"];

/**
 * The Debian mirror in apt sources (one-line or deb822): the first `deb`
 * source that is Debian's archive itself, not its security archive; a user
 * behind a local mirror gets the lab from it too. Undefined when there is none.
 */
export function mirrorFromAptSources(files: readonly { name: string; text: string }[]): string | undefined {
  const uris: string[] = [];
  for (const file of files) {
    if (file.name.endsWith(".sources")) {
      for (const stanza of file.text.split(/\n\s*\n/)) {
        const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, "mi").exec(stanza)?.[1]?.trim();
        if (field("Enabled") === "no" || !field("Types")?.split(/\s+/).includes("deb")) continue;
        uris.push(...(field("URIs") ?? "").split(/\s+/).filter(Boolean));
      }
    } else if (file.name.endsWith(".list") || file.name === "sources.list") {
      for (const line of file.text.split("\n")) {
        const uri = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line.trim())?.[1];
        if (uri) uris.push(uri);
      }
    }
  }
  return uris.map((uri) => uri.replace(/\/+$/, "")).find((uri) => /\/debian$/.test(uri));
}

/**
 * The mirror the lab's base and its droplets install from: `FOOBAR_LAB_DEBIAN_MIRROR`,
 * else the host's own apt sources.
 *
 * @throws Error in one line when neither names one.
 */
export function debianMirror(): string {
  const chosen = process.env.FOOBAR_LAB_DEBIAN_MIRROR?.trim();
  if (chosen) return chosen.replace(/\/+$/, "");
  const files: { name: string; text: string }[] = [];
  for (const source of APT_SOURCES) {
    if (!fs.existsSync(source)) continue;
    if (fs.statSync(source).isDirectory()) {
      for (const name of fs.readdirSync(source).sort()) files.push({ name, text: fs.readFileSync(path.join(source, name), "utf8") });
    } else {
      files.push({ name: path.basename(source), text: fs.readFileSync(source, "utf8") });
    }
  }
  const mirror = mirrorFromAptSources(files);
  if (!mirror)
    throw new Error(
      `the lab needs a Debian mirror: none found in ${APT_SOURCES.join(", ")}; set FOOBAR_LAB_DEBIAN_MIRROR (for example http://deb.debian.org/debian)`,
    );
  return mirror;
}

/** Directory of the lab's persistent cache (base rootfs, apt-cacher-ng packages). */
export function cacheDir(): string {
  return process.env.FOOBAR_LAB_CACHE || "/var/cache/foobar-lab";
}

/** Directory of one lab run's state (overlays, state file, logs). */
export function stateDir(): string {
  return process.env.FOOBAR_LAB_STATE || "/run/foobar-lab";
}

export function stateFile(): string {
  return path.join(stateDir(), "state.json");
}

/** How long to wait for every droplet's cloud-init to finish, in seconds. */
export function bootTimeoutSeconds(): number {
  const raw = process.env.FOOBAR_LAB_BOOT_TIMEOUT;
  if (raw === undefined || raw === "") return 15 * 60;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`FOOBAR_LAB_BOOT_TIMEOUT must be a whole number of seconds, got "${raw}"`);
  }
  return value;
}

/**
 * A droplet's slot on the lab's switch (its ports and its link-local
 * address), from its name: lb-01, lb-02, then web-01 to web-10, then mon-01.
 * A droplet keeps its slot whatever else joins or leaves the stack, so adding
 * lb-02 never moves web-01's wiring.
 *
 * @throws Error for a name that is no load balancer, web server or monitoring slot.
 */
export function dropletSlot(dropletName: string): number {
  const match = /(lb|web|mon)-(\d+)$/.exec(dropletName);
  const n = Number(match?.[2]);
  if (match?.[1] === "lb" && n >= 1 && n <= MAX_LOAD_BALANCERS) return n - 1;
  if (match?.[1] === "web" && n >= 1 && n <= MAX_WEB_SERVERS) return MAX_LOAD_BALANCERS + n - 1;
  if (match?.[1] === "mon" && n === 1) return MAX_LOAD_BALANCERS + MAX_WEB_SERVERS;
  throw new Error(
    `the lab has no switch slot for droplet "${dropletName}": it boots lb-01 to lb-${String(MAX_LOAD_BALANCERS).padStart(2, "0")} and web-01 to web-${MAX_WEB_SERVERS}, and mon-01`,
  );
}

/** The namespace of a droplet. */
export function dropletNamespace(dropletName: string): string {
  return DROPLET_NS_PREFIX + dropletName;
}

/**
 * The pair configuration's settings (`npm run test:lab`'s second lab): two
 * load balancers, and SSH allowed from the API emulator's namespace as well
 * as the client's (a range the deploy checks remove).
 */
export const PAIR_SETTINGS: Readonly<Record<string, string>> = { FOOBAR_LOAD_BALANCERS: "2", FOOBAR_ADMIN_CIDRS: `${API_ADDRESS}/32` };
