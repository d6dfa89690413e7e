/**
 * Only root reaches the metadata service.
 *
 * DigitalOcean serves every droplet's user-data, which holds this stack's
 * generated passwords, at `http://169.254.169.254/metadata/v1/user-data` to
 * any process on the droplet, without authentication. An nftables table of
 * our own rejects every packet to that address from a socket not owned by
 * root or by DigitalOcean's metrics agent (`do-agent`, which fetches its
 * token there as its own user): the application's user, or anything that
 * tricks the application into fetching a URL, is refused.
 *
 * The same idempotent script runs three times: from cloud-init's `bootcmd`
 * on every boot (before `write_files`, packages and every service on the
 * first boot), as a oneshot unit early on every boot (so the rule holds even
 * if cloud-init is later disabled), and from `runcmd`, which enables that
 * unit and lets in do-agent, installed by DigitalOcean's vendor-data during
 * the first boot. It leaves ufw's tables alone.
 *
 * It also keeps cloud-init's own copies of the user-data root-only: cloud-init
 * writes `user-data.txt`, `cloud-config.txt` and the rest 0600 and the cached
 * datasource 0400 under `/var/lib/cloud/instances`, and the folder is made
 * 0700 besides; `/run/cloud-init/combined-cloud-config.json` (cloud-init 23.4
 * and later), which holds the merged configuration and so every `write_files`
 * content, is made 0600. `/run/cloud-init/instance-data.json` stays
 * world-readable: DigitalOcean's datasource keeps the user-data out of it.
 */
import { WriteFile } from "./cloud-config";

/** The metadata service's address on every droplet. */
export const METADATA_ADDRESS = "169.254.169.254";

/** Names the lab's checks and an operator look for. */
export const METADATA_GUARD = {
  /** nftables table (family `inet`) holding the rule. */
  table: "foobar_metadata",
  /** Set of the user ids allowed through: root, and do-agent's once it exists. */
  allowedSet: "allowed_uids",
  chain: "output",
  script: "/usr/local/sbin/foobar-metadata-guard",
  unitName: "foobar-metadata-guard.service",
  unitPath: "/etc/systemd/system/foobar-metadata-guard.service",
  /** DigitalOcean's metrics agent's user; it reads its token from the metadata service. */
  metricsAgentUser: "do-agent",
} as const;

/** Where cloud-init keeps copies of the user-data, made root-only by the guard. */
export const CLOUD_INIT_COPIES = {
  instancesFolder: "/var/lib/cloud/instances",
  combinedConfig: "/run/cloud-init/combined-cloud-config.json",
} as const;

const g = METADATA_GUARD;

/**
 * The nftables commands: `add` leaves what exists (and do-agent's id in the
 * set) as it is; the chain is flushed so its one rule is never doubled.
 */
export const METADATA_GUARD_RULESET = [
  `add table inet ${g.table}`,
  `add set inet ${g.table} ${g.allowedSet} { type uid; }`,
  `add element inet ${g.table} ${g.allowedSet} { 0 }`,
  `add chain inet ${g.table} ${g.chain} { type filter hook output priority 0; policy accept; }`,
  `flush chain inet ${g.table} ${g.chain}`,
  `add rule inet ${g.table} ${g.chain} ip daddr ${METADATA_ADDRESS} meta skuid != @${g.allowedSet} counter reject`,
].join("\n");

/** The guard's script: idempotent, POSIX sh. */
export const METADATA_GUARD_SCRIPT = [
  "#!/bin/sh",
  "# Managed by cloud-init (foobar): only root and DigitalOcean's metrics agent reach the",
  `# metadata service at ${METADATA_ADDRESS}, which serves this droplet's user-data and its secrets.`,
  "set -eu",
  "nft -f - <<'EOF'",
  METADATA_GUARD_RULESET,
  "EOF",
  `if uid=$(id -u ${g.metricsAgentUser} 2>/dev/null); then`,
  `    nft add element inet ${g.table} ${g.allowedSet} "{ $uid }"`,
  "fi",
  "# cloud-init's copies of the user-data: root only.",
  `chmod 0700 ${CLOUD_INIT_COPIES.instancesFolder}`,
  `if [ -e ${CLOUD_INIT_COPIES.combinedConfig} ]; then chmod 0600 ${CLOUD_INIT_COPIES.combinedConfig}; fi`,
  "",
].join("\n");

/**
 * The unit that applies the guard on every boot, before the network is
 * configured and before any ordinary service.
 */
export const METADATA_GUARD_UNIT = [
  "# Managed by cloud-init (foobar): edit the CDKTF stack, not this file.",
  "[Unit]",
  "Description=Only root reaches the metadata service (foobar)",
  "DefaultDependencies=no",
  "After=local-fs.target",
  "Before=network-pre.target sysinit.target shutdown.target",
  "Wants=network-pre.target",
  "Conflicts=shutdown.target",
  "",
  "[Service]",
  "Type=oneshot",
  "RemainAfterExit=yes",
  `ExecStart=${g.script}`,
  "",
  "[Install]",
  "WantedBy=sysinit.target",
  "",
].join("\n");

/** What every droplet's cloud-config gets for the guard. */
export interface MetadataGuard {
  /** Runs the script inline: on the first boot, bootcmd runs before write_files. */
  readonly bootcmd: readonly (readonly string[])[];
  readonly packages: readonly string[];
  readonly writeFiles: readonly WriteFile[];
  /** First in runcmd: enables the unit and lets do-agent in. */
  readonly runcmd: readonly (readonly string[])[];
}

/** The guard's parts of a droplet's cloud-config. */
export function metadataGuard(): MetadataGuard {
  return {
    bootcmd: [["sh", "-c", METADATA_GUARD_SCRIPT]],
    packages: ["nftables"],
    writeFiles: [
      { path: g.script, permissions: "0755", content: METADATA_GUARD_SCRIPT },
      { path: g.unitPath, content: METADATA_GUARD_UNIT },
    ],
    runcmd: [
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", g.unitName],
      ["systemctl", "restart", g.unitName],
    ],
  };
}
