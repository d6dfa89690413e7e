/**
 * Block storage volumes on a droplet: data that outlives the droplet.
 *
 * DigitalOcean attaches a volume as a SCSI disk and names it
 * `/dev/disk/by-id/scsi-0DO_Volume_<volume name>`. A volume is formatted only
 * when it holds no filesystem at all (`blkid` finds nothing), never otherwise:
 * a replaced droplet mounts its predecessor's data as it is. One script does
 * it, from `bootcmd` on the first boot (before packages install onto the
 * mount point) and from a unit on every later boot (before the services that
 * use the data).
 */
import { WriteFile } from "./cloud-config";

/** Where DigitalOcean exposes an attached volume. */
export function volumeDevicePath(volumeName: string): string {
  return `/dev/disk/by-id/scsi-0DO_Volume_${volumeName}`;
}

export const VOLUME_SCRIPT_PATH = "/usr/local/sbin/foobar-mount-volume";

/** Seconds the script waits for an attached volume's device to appear. */
export const VOLUME_WAIT_SECONDS = 300;

/** Where a volume itself is mounted: `/mnt/<label>`, DigitalOcean's convention. */
export function volumeRoot(label: string): string {
  return `/mnt/${label}`;
}

/**
 * `foobar-mount-volume DEVICE MOUNT_POINT LABEL`: waits for the device,
 * formats it ext4 only if it holds no filesystem, mounts it on `/mnt/LABEL`
 * and binds its `data` folder onto MOUNT_POINT. Idempotent.
 *
 * The data lives in a folder of the volume, not at its root, because a new
 * ext4 filesystem holds `lost+found`, and `mysqld --initialize` refuses a
 * data directory that is not empty.
 */
export const VOLUME_SCRIPT = [
  "#!/bin/sh",
  "# Managed by cloud-init (foobar): mount a DigitalOcean volume, formatting it only when it is blank.",
  "set -eu",
  "device=$1 mount_point=$2 label=$3",
  "root=/mnt/$label",
  'log() { echo "foobar-mount-volume: $*"; }',
  `waited=0`,
  'until [ -b "$device" ]; do',
  `  if [ "$waited" -ge ${VOLUME_WAIT_SECONDS} ]; then log "$device did not appear within ${VOLUME_WAIT_SECONDS} s"; exit 1; fi`,
  "  sleep 1",
  "  waited=$((waited + 1))",
  "done",
  'if ! mountpoint -q "$root"; then',
  "  # blkid exits 2 when it finds no filesystem signature at all; anything else is left alone.",
  '  status=0; blkid -p "$device" >/dev/null 2>&1 || status=$?',
  '  if [ "$status" -eq 2 ]; then',
  '    log "$device holds no filesystem: formatting it (ext4, label $label)"',
  '    mkfs.ext4 -q -L "$label" "$device"',
  '  elif [ "$status" -ne 0 ]; then',
  '    log "blkid could not read $device (exit $status): not formatting it"; exit 1',
  "  else",
  '    log "$device holds a filesystem: mounting it as it is"',
  "  fi",
  '  mkdir -p "$root"',
  '  mount -o defaults,noatime,discard "$device" "$root"',
  "fi",
  'mkdir -p "$root/data" "$mount_point"',
  'if ! mountpoint -q "$mount_point"; then mount --bind "$root/data" "$mount_point"; fi',
  'log "$device mounted on $root, its data on $mount_point"',
  "",
].join("\n");

/** One volume mounted on a droplet. */
export interface VolumeMount {
  /** The DigitalOcean volume's name. */
  readonly volumeName: string;
  /** Where it is mounted, such as `/var/lib/mysql`. */
  readonly mountPoint: string;
  /** The filesystem label given when it is formatted (at most 16 characters). */
  readonly label: string;
  /** The units that must not start before it is mounted, such as `mysql.service`. */
  readonly requiredBy: readonly string[];
}

/** The unit that mounts a volume on every boot: `foobar-volume-<label>.service`. */
export function volumeUnitName(mount: VolumeMount): string {
  return `foobar-volume-${mount.label}.service`;
}

/** What a droplet's cloud-config gets for its volumes. */
export interface VolumeParts {
  readonly bootcmd: readonly (readonly string[])[];
  readonly writeFiles: readonly WriteFile[];
  readonly runcmd: readonly (readonly string[])[];
}

/**
 * The cloud-config parts that mount `mounts` before anything is installed on
 * them, and again on every boot before the units that need them.
 */
export function volumeParts(mounts: readonly VolumeMount[]): VolumeParts {
  if (mounts.length === 0) return { bootcmd: [], writeFiles: [], runcmd: [] };
  const args = (mount: VolumeMount) => [volumeDevicePath(mount.volumeName), mount.mountPoint, mount.label];
  return {
    // bootcmd runs before write_files on the first boot: the script inline.
    bootcmd: mounts.map((mount) => ["sh", "-c", VOLUME_SCRIPT, "foobar-mount-volume", ...args(mount)]),
    writeFiles: [
      { path: VOLUME_SCRIPT_PATH, permissions: "0755", content: VOLUME_SCRIPT },
      ...mounts.flatMap((mount): WriteFile[] => [
        {
          path: `/etc/systemd/system/${volumeUnitName(mount)}`,
          content: [
            "# Managed by cloud-init (foobar): edit the CDKTF stack, not this file.",
            "[Unit]",
            `Description=Mount the DigitalOcean volume ${mount.volumeName} on ${mount.mountPoint}`,
            "DefaultDependencies=no",
            "After=local-fs.target",
            `Before=${mount.requiredBy.join(" ")}`,
            "",
            "[Service]",
            "Type=oneshot",
            "RemainAfterExit=yes",
            `ExecStart=${VOLUME_SCRIPT_PATH} ${args(mount).join(" ")}`,
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
          ].join("\n"),
        },
        // Never start on an empty folder of the droplet's own disk.
        ...mount.requiredBy.map((unit) => ({
          path: `/etc/systemd/system/${unit}.d/foobar-volume.conf`,
          content: [
            "# Managed by cloud-init (foobar): the data lives on a volume.",
            "[Unit]",
            `Requires=${volumeUnitName(mount)}`,
            `After=${volumeUnitName(mount)}`,
            "",
          ].join("\n"),
        })),
      ]),
    ],
    runcmd: [["systemctl", "daemon-reload"], ...mounts.map((mount) => ["systemctl", "enable", volumeUnitName(mount)])],
  };
}
