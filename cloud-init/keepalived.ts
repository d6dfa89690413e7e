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
 *   claims it otherwise (CLAIM_SCRIPT): the master holds the address, as
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
import { LOAD_BALANCER_HEALTH_PATH } from "./haproxy";
import { PRIVATE_ADDRESS_PATHS, PRIVATE_ADDRESS_VARIABLE } from "./private-address";

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

/** Brings the tunnel up (idempotent), pointing it at the peer's current private address; the timer re-runs it. */
export const VRRP_LINK_SCRIPT =
  [
    "#!/bin/bash",
    "# Managed by cloud-init (foobar): the VXLAN link keepalived talks to the peer over.",
    "set -euo pipefail",
    "# shellcheck source=/dev/null  # written by cloud-init",
    `. ${FAILOVER_PATHS.environment}`,
    "# shellcheck source=/dev/null  # written by foobar-bind-addresses",
    `. ${PRIVATE_ADDRESS_PATHS.addressEnvironment}`,
    `own=\${${PRIVATE_ADDRESS_VARIABLE}:?no private address}`,
    "peer=''",
    "# The peer's record may not exist yet on a first boot: wait for it.",
    "for _ in $(seq 1 60); do",
    '  peer=$(getent ahostsv4 "$PEER_HOST" | awk \'NR == 1 { print $1 }\') && [ -n "$peer" ] && break',
    "  sleep 2",
    "done",
    'if [ -z "$peer" ]; then echo "foobar-vrrp-link: $PEER_HOST does not resolve" >&2; exit 1; fi',
    "device=$(ip -4 -o addr show to \"$own/32\" | awk 'NR == 1 { print $2 }')",
    `if ! ip link show ${VRRP_LINK.name} >/dev/null 2>&1; then`,
    `  ip link add ${VRRP_LINK.name} type vxlan id ${VRRP_LINK.vni} local "$own" dev "$device" dstport ${VRRP_LINK.udpPort} nolearning`,
    `  ip addr add "$LINK_ADDRESS/30" dev ${VRRP_LINK.name}`,
    `  ip link set ${VRRP_LINK.name} up`,
    `  echo "foobar-vrrp-link: ${VRRP_LINK.name} up from $own"`,
    "fi",
    `current=$(bridge fdb show dev ${VRRP_LINK.name} | awk '$1 == "00:00:00:00:00:00" { for (i = 1; i < NF; i++) if ($i == "dst") print $(i + 1) }')`,
    'if [ "$current" != "$peer" ]; then',
    `  if [ -n "$current" ]; then bridge fdb del 00:00:00:00:00:00 dev ${VRRP_LINK.name} dst "$current"; fi`,
    `  bridge fdb append 00:00:00:00:00:00 dev ${VRRP_LINK.name} dst "$peer"`,
    '  echo "foobar-vrrp-link: peer $PEER_HOST is at $peer${current:+ (was $current)}"',
    "fi",
  ].join("\n") + "\n";

/**
 * keepalived's health script: HAProxy answers on the public frontend and,
 * with HTTPS, holds the certificate the ACME CA issued (a load balancer still
 * on its self-signed placeholder must not take the site).
 */
export function renderHealthScript(requiredCertificate?: string): string {
  return (
    [
      "#!/bin/bash",
      "# Managed by cloud-init (foobar): may this load balancer be master?",
      "set -euo pipefail",
      ...(requiredCertificate ? [`[ -s ${requiredCertificate} ] || exit 1`] : []),
      `exec curl -fsS -o /dev/null --max-time 1 http://127.0.0.1${LOAD_BALANCER_HEALTH_PATH}`,
    ].join("\n") + "\n"
  );
}

/** keepalived's notify script: records the state, starts or stops the claim service. Must return at once. */
export const NOTIFY_SCRIPT =
  [
    "#!/bin/bash",
    "# Managed by cloud-init (foobar): keepalived calls this on every VRRP state change.",
    "# Arguments: INSTANCE|GROUP, the instance's name, MASTER|BACKUP|FAULT|STOP, priority.",
    "set -uo pipefail",
    "state=${3:-UNKNOWN}",
    `mkdir -p "$(dirname ${FAILOVER_PATHS.stateFile})"`,
    `printf '%s %s\\n' "$state" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > ${FAILOVER_PATHS.stateFile}`,
    'logger -t foobar-vrrp "VRRP instance ${2:-?} is now $state"',
    'case "$state" in',
    `  MASTER) systemctl restart --no-block ${FAILOVER_PATHS.claimUnit} ;;`,
    `  *) systemctl stop --no-block ${FAILOVER_PATHS.claimUnit} ;;`,
    "esac",
    "exit 0",
  ].join("\n") + "\n";

/**
 * Holds the reserved IP while this load balancer is master (keepalived's
 * notify script starts it on MASTER and stops it on anything else). Every 2
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
export const CLAIM_SCRIPT =
  [
    "#!/bin/bash",
    "# Managed by cloud-init (foobar): keep the site's reserved IP on this load balancer while it is master.",
    "set -uo pipefail",
    "# shellcheck source=/dev/null  # written by cloud-init",
    `. ${FAILOVER_PATHS.environment}`,
    "mode=${1:-hold}",
    'log() { echo "foobar-reserved-ip: $*"; }',
    `metadata() { curl -fsS --max-time 2 "${METADATA_URL}/$1"; }`,
    "",
    "droplet_id=''",
    "until droplet_id=$(metadata id) && [ -n \"$droplet_id\" ]; do log 'waiting for the metadata service'; sleep 1; done",
    "reserved_ip=''",
    'until reserved_ip=$(getent ahostsv4 "$RESERVED_IP_HOST" | awk \'NR == 1 { print $1 }\') && [ -n "$reserved_ip" ]; do',
    '  log "waiting for $RESERVED_IP_HOST to resolve"; sleep 1',
    "done",
    "",
    'held_here() { [ "$(metadata reserved_ip/ipv4/active 2>/dev/null)" = true ]; }',
    "",
    "assign() {",
    "  local attempt=1 delay=1 status",
    "  while true; do",
    '    log "attempt $attempt: assign $reserved_ip to droplet $droplet_id"',
    "    # The token goes to curl on stdin, never on a command line or in a log.",
    `    status=$(printf 'header = "Authorization: Bearer %s"\\n' "$(cat ${FAILOVER_PATHS.tokenFile})" | curl -sS -K - \\`,
    "      -o /run/foobar/reserved-ip-answer.json -w '%{http_code}' --max-time 10 \\",
    "      -X POST -H 'Content-Type: application/json' \\",
    '      -d "{\\"type\\":\\"assign\\",\\"droplet_id\\":$droplet_id}" \\',
    `      "${DIGITALOCEAN_API}/v2/reserved_ips/$reserved_ip/actions") || status=000`,
    '    case "$status" in',
    '      2??) log "attempt $attempt: accepted ($status)"; break ;;',
    '      429|5??|000) log "attempt $attempt: failed ($status), retrying in ${delay}s" ;;',
    '      *) log "attempt $attempt: refused ($status): $(head -c 300 /run/foobar/reserved-ip-answer.json 2>/dev/null); not retrying"; return 1 ;;',
    "    esac",
    '    sleep "$delay"; attempt=$((attempt + 1)); delay=$((delay * 2 > 30 ? 30 : delay * 2))',
    "  done",
    "  for _ in $(seq 1 120); do",
    '    if held_here; then log "$reserved_ip is active here"; return 0; fi',
    "    sleep 0.5",
    "  done",
    '  log "$reserved_ip is still not active here 60 s after the API accepted"',
    "  return 1",
    "}",
    "",
    "mkdir -p /run/foobar",
    "had=false",
    "while true; do",
    "  if held_here; then",
    "    had=true",
    '  elif [ "$had" = true ] && [ "$mode" = yield ]; then',
    '    log "$reserved_ip was moved away while this load balancer was master: yielding it until the next election"',
    "    exit 0",
    "  else",
    "    assign || exit 1",
    "    had=true",
    "  fi",
    "  sleep 2",
    "done",
  ].join("\n") + "\n";

export function renderFailoverEnvironment(input: FailoverInput): string {
  return renderEnvironmentFile({
    PEER_HOST: input.peerHost,
    RESERVED_IP_HOST: input.reservedIpHost,
    LINK_ADDRESS: vrrpLinkAddress(input.index),
  });
}

/** The files of one load balancer of a pair (write them after the keepalived package, `defer`). */
export function failoverFiles(input: FailoverInput): WriteFile[] {
  // lb-01 always holds the address while master; lb-02 yields it once it is taken away (see CLAIM_SCRIPT).
  const mode = input.index === 1 ? "hold" : "yield";
  return [
    { path: FAILOVER_PATHS.environment, content: renderFailoverEnvironment(input) },
    { path: FAILOVER_PATHS.tokenFile, permissions: "0600", content: `${input.apiToken}\n` },
    { path: FAILOVER_PATHS.linkScript, permissions: "0755", content: VRRP_LINK_SCRIPT },
    {
      path: FAILOVER_PATHS.linkUnitPath,
      content: [
        "# Managed by cloud-init (foobar).",
        "[Unit]",
        "Description=VXLAN link to the peer load balancer, for keepalived",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        `ExecStartPre=${PRIVATE_ADDRESS_PATHS.script}`,
        `ExecStart=${FAILOVER_PATHS.linkScript}`,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
      ].join("\n"),
    },
    {
      // A replaced peer has a new private address: follow it.
      path: FAILOVER_PATHS.linkTimerPath,
      content: [
        "# Managed by cloud-init (foobar).",
        "[Unit]",
        "Description=Follow the peer load balancer's private address",
        "",
        "[Timer]",
        "OnActiveSec=30s",
        "OnUnitActiveSec=30s",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
      ].join("\n"),
    },
    { path: FAILOVER_PATHS.healthScript, permissions: "0755", content: renderHealthScript(input.requiredCertificate) },
    { path: FAILOVER_PATHS.notifyScript, permissions: "0755", content: NOTIFY_SCRIPT },
    { path: FAILOVER_PATHS.claimScript, permissions: "0755", content: CLAIM_SCRIPT },
    {
      path: FAILOVER_PATHS.claimUnitPath,
      content: [
        "# Managed by cloud-init (foobar): started and stopped by keepalived's notify script.",
        "[Unit]",
        "Description=Assign the site's reserved IP to this load balancer",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        `ExecStart=${FAILOVER_PATHS.claimScript} ${mode}`,
        "",
      ].join("\n"),
    },
    {
      path: FAILOVER_PATHS.keepalivedDropIn,
      content: [
        "# Managed by cloud-init (foobar): VRRP runs across the tunnel, and judges HAProxy.",
        "[Unit]",
        `Wants=${FAILOVER_PATHS.linkUnit}`,
        `After=${FAILOVER_PATHS.linkUnit} haproxy.service`,
        "",
      ].join("\n"),
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
