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
import { writeAndRun, WriteFile } from "./cloud-config";
import { dropletFile } from "./files";

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
 * The ruleset (`cloud-init/files/usr/local/sbin/foobar-metadata-guard.nft`):
 * its own file so that it reads, and is checked (`nft -c`, once its names are
 * filled), as nftables. It lies beside the script, which embeds it in a
 * here-document, and is never written to the droplet on its own: on the
 * first boot bootcmd runs the script before write_files writes anything.
 */
const RULESET_FILE = `${g.script}.nft`;

/**
 * The nftables commands: `add` leaves what exists (and do-agent's id in the
 * set) as it is; the chain is flushed so its one rule is never doubled.
 */
export function metadataGuardRuleset(): string {
  return dropletFile(RULESET_FILE, { TABLE: g.table, ALLOWED_SET: g.allowedSet, CHAIN: g.chain, METADATA_ADDRESS });
}

/** The guard's script (`cloud-init/files/usr/local/sbin/foobar-metadata-guard`): idempotent, POSIX sh. */
export function metadataGuardScript(): string {
  return dropletFile(g.script, {
    METADATA_ADDRESS,
    // Inside the script's here-document, whose EOF line follows: without the ruleset's last line end.
    RULESET: metadataGuardRuleset().replace(/\n$/, ""),
    METRICS_AGENT_USER: g.metricsAgentUser,
    TABLE: g.table,
    ALLOWED_SET: g.allowedSet,
    INSTANCES_FOLDER: CLOUD_INIT_COPIES.instancesFolder,
    COMBINED_CONFIG: CLOUD_INIT_COPIES.combinedConfig,
  });
}

/**
 * The unit that applies the guard on every boot, before the network is
 * configured and before any ordinary service
 * (`cloud-init/files/etc/systemd/system/foobar-metadata-guard.service`).
 */
export function metadataGuardUnit(): string {
  return dropletFile(g.unitPath, { SCRIPT: g.script });
}

/** What every droplet's cloud-config gets for the guard. */
export interface MetadataGuard {
  /** Writes the script and runs it: on the first boot, bootcmd runs before write_files. */
  readonly bootcmd: readonly (readonly string[])[];
  readonly packages: readonly string[];
  readonly writeFiles: readonly WriteFile[];
  /** First in runcmd: enables the unit and lets do-agent in. */
  readonly runcmd: readonly (readonly string[])[];
}

/** The guard's parts of a droplet's cloud-config. */
export function metadataGuard(): MetadataGuard {
  return {
    // Written by bootcmd (on the first boot it runs before write_files), where the unit finds it.
    bootcmd: [writeAndRun({ path: g.script, permissions: "0755", content: metadataGuardScript() })],
    packages: ["nftables"],
    writeFiles: [{ path: g.unitPath, content: metadataGuardUnit() }],
    runcmd: [
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", g.unitName],
      ["systemctl", "restart", g.unitName],
    ],
  };
}
