/**
 * Backups of the MySQL data to a Spaces bucket, encrypted on the droplet to
 * the operator's age recipient (docs/database.md, "Backups"):
 *
 * - `foobar-backup base` (a timer, every `everyHours`): a base backup, a
 *   `CLONE LOCAL` copy taken on the first replica that receives and applies
 *   (the primary when none does), compressed, encrypted and uploaded;
 * - `foobar-backup archive` (a service on every web server): while its
 *   server is the writable primary, rotates the binary log every 30 s and
 *   uploads every closed one, so it follows a promotion by itself;
 * - `foobar-restore`: the droplet's steps of `npm run restore`.
 *
 * Both use rclone's remote `spaces`, configured from a root-only environment
 * file that holds the bucket-scoped key.
 */
import * as path from "node:path";

import { WriteFile } from "./cloud-config";
import { renderEnvironmentFile } from "./environment-file";
import { dropletFile } from "./files";
import { FORCE_PROMOTE_FLAG_PATH, REBUILD_FLAG_PATH } from "./mysql";
import { volumeRoot } from "./volume";

/** What a web server needs to back its database up. */
export interface BackupInput {
  /** The Spaces bucket the stack created for backups. */
  readonly bucket: string;
  /** Its Spaces region, such as `nyc3`: the endpoint is `https://<region>.digitaloceanspaces.com`. */
  readonly region: string;
  /** The age recipient (`age1…`) every backup is encrypted to; its identity never reaches a droplet. */
  readonly recipient: string;
  /** Terraform token of the bucket-scoped Spaces key's access key id. */
  readonly accessKeyId: string;
  /** Terraform token of the bucket-scoped Spaces key's secret. */
  readonly secretAccessKey: string;
  /** Hours between base backups. */
  readonly everyHours: number;
}

/** The S3 endpoint of a Spaces region, without scheme. */
export function spacesEndpoint(region: string): string {
  return `${region}.digitaloceanspaces.com`;
}

export const BACKUP = {
  script: "/usr/local/sbin/foobar-backup",
  restoreScript: "/usr/local/sbin/foobar-restore",
  /** Root only: the bucket, the recipient and the key, as rclone's environment. */
  environment: "/etc/foobar/backup.env",
  /** World-readable: the ages of the newest backups and the last errors (Nginx serves it at `statusPath`). */
  status: "/var/lib/foobar/backup-status.json",
  statusPath: "/backup-status",
  archiveUnit: "foobar-backup-archive.service",
  baseUnit: "foobar-backup-base.service",
  baseTimer: "foobar-backup-base.timer",
  /** Ubuntu's AppArmor profile for mysqld includes this file. */
  apparmorLocal: "/etc/apparmor.d/local/usr.sbin.mysqld",
} as const;

/** The folder on the MySQL volume where clones, restores and set-aside data directories go: `/mnt/<label>/backup`. */
export function backupWorkDir(volumeLabel: string): string {
  return path.posix.join(volumeRoot(volumeLabel), "backup");
}

/** What `backupParts` needs besides the input: the files it shares with the database agent. */
export interface BackupContext {
  readonly volumeLabel: string;
  readonly setupEnvironment: string;
  readonly agentEnvironment: string;
  readonly addressEnvironment: string;
  readonly agentUnit: string;
}

/** The packages, files and commands that back a web server's database up. */
export function backupParts(input: BackupInput, context: BackupContext) {
  const workDir = backupWorkDir(context.volumeLabel);
  const unitPath = (unit: string) => `/etc/systemd/system/${unit}`;
  const writeFiles: WriteFile[] = [
    {
      path: BACKUP.environment,
      permissions: "0600",
      content: renderEnvironmentFile({
        BACKUP_BUCKET: input.bucket,
        BACKUP_RECIPIENT: input.recipient,
        RCLONE_CONFIG_SPACES_TYPE: "s3",
        RCLONE_CONFIG_SPACES_PROVIDER: "DigitalOcean",
        RCLONE_CONFIG_SPACES_ENDPOINT: `https://${spacesEndpoint(input.region)}`,
        RCLONE_CONFIG_SPACES_ACCESS_KEY_ID: input.accessKeyId,
        RCLONE_CONFIG_SPACES_SECRET_ACCESS_KEY: input.secretAccessKey,
        // Errors only: the cause of a failure is then the last line it prints (no notice about a config file).
        RCLONE_LOG_LEVEL: "ERROR",
      }),
    },
    {
      path: BACKUP.script,
      permissions: "0700",
      content: dropletFile(BACKUP.script, {
        BACKUP_ENVIRONMENT: BACKUP.environment,
        SETUP_ENVIRONMENT: context.setupEnvironment,
        AGENT_ENVIRONMENT: context.agentEnvironment,
        ADDRESS_ENVIRONMENT: context.addressEnvironment,
        WORK_DIR: workDir,
        STATUS_FILE: BACKUP.status,
      }),
    },
    {
      path: BACKUP.restoreScript,
      permissions: "0700",
      content: dropletFile(BACKUP.restoreScript, {
        BACKUP_ENVIRONMENT: BACKUP.environment,
        WORK_DIR: workDir,
        UNITS: [context.agentUnit, BACKUP.archiveUnit, BACKUP.baseTimer].join(" "),
        BASE_UNIT: BACKUP.baseUnit,
        FORCE_PROMOTE_FLAG: FORCE_PROMOTE_FLAG_PATH,
        REBUILD_FLAG: REBUILD_FLAG_PATH,
        BACKUP_SCRIPT: BACKUP.script,
      }),
    },
    { path: BACKUP.apparmorLocal, content: dropletFile(BACKUP.apparmorLocal, { WORK_DIR: workDir }) },
    { path: unitPath(BACKUP.archiveUnit), content: dropletFile(unitPath(BACKUP.archiveUnit)) },
    { path: unitPath(BACKUP.baseUnit), content: dropletFile(unitPath(BACKUP.baseUnit)) },
    { path: unitPath(BACKUP.baseTimer), content: dropletFile(unitPath(BACKUP.baseTimer), { EVERY_HOURS: String(input.everyHours) }) },
  ];
  return {
    packages: ["age", "rclone"],
    writeFiles,
    /** After the database agent started. */
    runcmd: [["systemctl", "enable", "--now", BACKUP.archiveUnit, BACKUP.baseTimer]],
  };
}
