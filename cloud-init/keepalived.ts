/**
 * The load balancer pair: keepalived elects a master between lb-01 and
 * lb-02, and the master takes the site's reserved IP through DigitalOcean's
 * API.
 *
 * Why VRRP runs inside a VXLAN tunnel: VRRP is IP protocol 112, and
 * DigitalOcean's cloud firewalls accept rules for `tcp`, `udp` and `icmp`
 * only, drop whatever no rule allows, and filter VPC traffic too
 * (https://docs.digitalocean.com/products/networking/firewalls/). keepalived
 * speaks VRRP over IP only. So each load balancer has a point-to-point VXLAN
 * link to its peer (UDP 4789 on the private interface, which a firewall rule
 * can allow between the two load balancers and nobody else), and keepalived
 * sends its unicast, password-authenticated adverts across it.
 *
 * Who takes the reserved IP, and when (the rule that keeps it on exactly one
 * healthy load balancer, including in a split brain where both are master):
 * - while master, a load balancer makes sure the address is on itself, and
 *   claims it otherwise (claimScript): the master holds the address, as
 *   with any keepalived virtual address, even when the backup won the
 *   address first (Terraform places it on lb-01, and lb-02 may win the first
 *   election while lb-01 still waits for its certificate);
 * - the second load balancer stops claiming once the address is taken from
 *   it during its term: cut apart, both are master, but only the preferred
 *   one (lb-01) keeps claiming, so the address settles instead of bouncing;
 * - both start as BACKUP with `nopreempt`: a load balancer that comes back
 *   never takes the master role (and the address) from a healthy peer.
 */
import { WriteFile } from "./cloud-config";
import { renderEnvironmentFile } from "./environment-file";
import { dropletFile } from "./files";
import { LOAD_BALANCER_HEALTH_PATH } from "./haproxy";
import { PRIVATE_ADDRESS_PATHS } from "./private-address";

/** keepalived's adverts travel inside this VXLAN link between the two load balancers. */
export const VRRP_LINK = {
  name: "vrrp0",
  /** VXLAN network id: one link, one pair. */
  vni: 112,
  /** IANA's VXLAN port; the cloud firewall allows it between the load balancers only. */
  udpPort: 4789,
  /** Link-local /30 inside the tunnel: never routed, never clashes with the VPC. */
  network: "169.254.112.0/30",
} as const;

/** The tunnel address of load balancer `index` (1 or 2). */
export function vrrpLinkAddress(index: number): string {
  return `169.254.112.${index}`;
}

/** Where the pieces live on a load balancer of a pair. */
export const FAILOVER_PATHS = {
  configFile: "/etc/keepalived/keepalived.conf",
  environment: "/etc/foobar/failover.env",
  /** The API token: root only, read by the claim script alone. */
  tokenFile: "/etc/foobar/failover-token",
  linkScript: "/usr/local/sbin/foobar-vrrp-link",
  linkUnit: "foobar-vrrp-link.service",
  linkUnitPath: "/etc/systemd/system/foobar-vrrp-link.service",
  linkTimer: "foobar-vrrp-link.timer",
  linkTimerPath: "/etc/systemd/system/foobar-vrrp-link.timer",
  healthScript: "/usr/local/sbin/foobar-lb-healthy",
  notifyScript: "/usr/local/sbin/foobar-vrrp-notify",
  claimScript: "/usr/local/sbin/foobar-reserved-ip",
  claimUnit: "foobar-reserved-ip.service",
  claimUnitPath: "/etc/systemd/system/foobar-reserved-ip.service",
  keepalivedDropIn: "/etc/systemd/system/keepalived.service.d/foobar.conf",
  /** `MASTER|BACKUP|FAULT|STOP <ISO time>`, written by the notify script. */
  stateFile: "/run/foobar/vrrp-state",
} as const;

/** keepalived's timing: adverts every second; a backup takes over after about 3.6 s of silence. */
export const VRRP_TIMING = {
  advertSeconds: 1,
  /** Health script: every second, 2 failures to give up the master role, 2 successes to be eligible again. */
  checkIntervalSeconds: 1,
  fall: 2,
  rise: 2,
} as const;

/** Priorities: the first load balancer is preferred when both start or are cut apart. */
export function vrrpPriority(index: number): number {
  return index === 1 ? 150 : 100;
}

/** DigitalOcean's API, as the claim script calls it. */
export const DIGITALOCEAN_API = "https://api.digitalocean.com";
/** The droplet metadata service. */
export const METADATA_URL = "http://169.254.169.254/metadata/v1";

export interface FailoverInput {
  /** 1 or 2: which load balancer of the pair this is. */
  readonly index: 1 | 2;
  /** This load balancer's droplet name, keepalived's router id. */
  readonly hostname: string;
  /** DNS name of the peer's private address, resolved at run time. */
  readonly peerHost: string;
  /** DNS name that resolves to the site's reserved IP, resolved at run time. */
  readonly reservedIpHost: string;
  /** Terraform reference of the shared VRRP password (8 characters: VRRPv2's limit). */
  readonly vrrpPassword: string;
  /** Terraform reference of the sensitive `failover_token` variable. */
  readonly apiToken: string;
  /** Path of the certificate HAProxy must hold before this load balancer may be master. @default - none (plain HTTP) */
  readonly requiredCertificate?: string;
}

/** keepalived.conf: one VRRP instance, unicast to the peer across the tunnel, no virtual address (the API moves the reserved IP). */
export function renderKeepalivedConfig(input: FailoverInput): string {
  const peer = input.index === 1 ? 2 : 1;
  return [
    "# Managed by cloud-init (foobar): edit the CDKTF stack, not this file.",
    "global_defs {",
    `    router_id ${input.hostname}`,
    "    script_user root",
    "    enable_script_security",
    "}",
    "",
    "vrrp_script load_balancer_healthy {",
    `    script "${FAILOVER_PATHS.healthScript}"`,
    `    interval ${VRRP_TIMING.checkIntervalSeconds}`,
    "    timeout 2",
    `    fall ${VRRP_TIMING.fall}`,
    `    rise ${VRRP_TIMING.rise}`,
    "}",
    "",
    "vrrp_instance site {",
    // Both BACKUP with nopreempt: a returning load balancer never takes over from a healthy master.
    "    state BACKUP",
    "    nopreempt",
    `    interface ${VRRP_LINK.name}`,
    `    virtual_router_id ${VRRP_LINK.vni}`,
    `    priority ${vrrpPriority(input.index)}`,
    `    advert_int ${VRRP_TIMING.advertSeconds}`,
    `    unicast_src_ip ${vrrpLinkAddress(input.index)}`,
    "    unicast_peer {",
    `        ${vrrpLinkAddress(peer)}`,
    "    }",
    "    authentication {",
    "        auth_type PASS",
    `        auth_pass ${input.vrrpPassword}`,
    "    }",
    "    track_script {",
    "        load_balancer_healthy",
    "    }",
    `    notify "${FAILOVER_PATHS.notifyScript}"`,
    "}",
    "",
  ].join("\n");
}

/**
 * Brings the tunnel up (idempotent), pointing it at the peer's current
 * private address; the timer re-runs it
 * (`cloud-init/files/usr/local/sbin/foobar-vrrp-link`). It reads the address
 * as `PRIVATE_ADDRESS_VARIABLE` names it, written inside a parameter
 * expansion where no placeholder can stand: a test holds the two together.
 */
export function vrrpLinkScript(): string {
  return dropletFile(FAILOVER_PATHS.linkScript, {
    FAILOVER_ENVIRONMENT: FAILOVER_PATHS.environment,
    ADDRESS_ENVIRONMENT: PRIVATE_ADDRESS_PATHS.addressEnvironment,
    LINK: VRRP_LINK.name,
    VNI: String(VRRP_LINK.vni),
    UDP_PORT: String(VRRP_LINK.udpPort),
  });
}

/**
 * keepalived's health script (`cloud-init/files/usr/local/sbin/foobar-lb-healthy`):
 * HAProxy answers on the public frontend and, with HTTPS, holds the
 * certificate the ACME CA issued (a load balancer still on its self-signed
 * placeholder must not take the site).
 */
export function renderHealthScript(requiredCertificate?: string): string {
  const script = dropletFile(FAILOVER_PATHS.healthScript, { HEALTH_PATH: LOAD_BALANCER_HEALTH_PATH });
  if (!requiredCertificate) return script;
  // The one line that depends on the input: the certificate, checked before HAProxy is asked.
  return script.replace(/^exec curl /m, (probe) => `[ -s ${requiredCertificate} ] || exit 1\n${probe}`);
}

/**
 * keepalived's notify script (`cloud-init/files/usr/local/sbin/foobar-vrrp-notify`):
 * records the state, starts or stops the claim service. Must return at once.
 */
export function notifyScript(): string {
  return dropletFile(FAILOVER_PATHS.notifyScript, { STATE_FILE: FAILOVER_PATHS.stateFile, CLAIM_UNIT: FAILOVER_PATHS.claimUnit });
}

/**
 * Holds the reserved IP while this load balancer is master
 * (`cloud-init/files/usr/local/sbin/foobar-reserved-ip`; keepalived's notify
 * script starts it on MASTER and stops it on anything else). Every 2
 * seconds: nothing to do if the address is active here; else assign it here
 * through the API.
 *
 * `yield` (the second load balancer): once the address has been taken from
 * it while it is master, it stops claiming until its next election. Cut off
 * from each other, both load balancers are master and neither hears the
 * other's health checks, so without this they would take the address from
 * each other forever; with it, the preferred one keeps it.
 *
 * Every API attempt is logged (never the token); 429, 5xx and network errors
 * back off from 1 s to 30 s; any other 4xx stops the service at once, since
 * retrying cannot fix a bad token or address.
 */
export function claimScript(): string {
  return dropletFile(FAILOVER_PATHS.claimScript, {
    FAILOVER_ENVIRONMENT: FAILOVER_PATHS.environment,
    METADATA_URL,
    TOKEN_FILE: FAILOVER_PATHS.tokenFile,
    DIGITALOCEAN_API,
  });
}

export function renderFailoverEnvironment(input: FailoverInput): string {
  return renderEnvironmentFile({
    PEER_HOST: input.peerHost,
    RESERVED_IP_HOST: input.reservedIpHost,
    LINK_ADDRESS: vrrpLinkAddress(input.index),
  });
}

/** The files of one load balancer of a pair (write them after the keepalived package, `defer`). */
export function failoverFiles(input: FailoverInput): WriteFile[] {
  // lb-01 always holds the address while master; lb-02 yields it once it is taken away (see claimScript).
  const mode = input.index === 1 ? "hold" : "yield";
  return [
    { path: FAILOVER_PATHS.environment, content: renderFailoverEnvironment(input) },
    { path: FAILOVER_PATHS.tokenFile, permissions: "0600", content: `${input.apiToken}\n` },
    { path: FAILOVER_PATHS.linkScript, permissions: "0755", content: vrrpLinkScript() },
    {
      path: FAILOVER_PATHS.linkUnitPath,
      content: dropletFile(FAILOVER_PATHS.linkUnitPath, {
        BIND_ADDRESSES_SCRIPT: PRIVATE_ADDRESS_PATHS.script,
        LINK_SCRIPT: FAILOVER_PATHS.linkScript,
      }),
    },
    // A replaced peer has a new private address: follow it.
    { path: FAILOVER_PATHS.linkTimerPath, content: dropletFile(FAILOVER_PATHS.linkTimerPath) },
    { path: FAILOVER_PATHS.healthScript, permissions: "0755", content: renderHealthScript(input.requiredCertificate) },
    { path: FAILOVER_PATHS.notifyScript, permissions: "0755", content: notifyScript() },
    { path: FAILOVER_PATHS.claimScript, permissions: "0755", content: claimScript() },
    {
      path: FAILOVER_PATHS.claimUnitPath,
      content: dropletFile(FAILOVER_PATHS.claimUnitPath, { CLAIM_SCRIPT: FAILOVER_PATHS.claimScript, MODE: mode }),
    },
    {
      path: FAILOVER_PATHS.keepalivedDropIn,
      content: dropletFile(FAILOVER_PATHS.keepalivedDropIn, { LINK_UNIT: FAILOVER_PATHS.linkUnit }),
    },
    { path: FAILOVER_PATHS.configFile, permissions: "0600", defer: true, content: renderKeepalivedConfig(input) },
  ];
}

/** runcmd lines that start the pair's pieces, after HAProxy is up. */
export function failoverRuncmd(): string[][] {
  return [
    ["systemctl", "daemon-reload"],
    ["systemctl", "enable", "--now", FAILOVER_PATHS.linkUnit],
    ["systemctl", "enable", "--now", FAILOVER_PATHS.linkTimer],
    ["systemctl", "enable", "keepalived.service"],
    ["systemctl", "restart", "keepalived.service"],
  ];
}
