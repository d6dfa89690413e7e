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
import { writeAndRun, WriteFile } from "./cloud-config";
import { dropletFile } from "./files";

/** Where DigitalOcean exposes an attached volume. */
export function volumeDevicePath(volumeName: string): string {
  return `/dev/disk/by-id/scsi-0DO_Volume_${volumeName}`;
}

export const VOLUME_SCRIPT_PATH = "/usr/local/sbin/foobar-mount-volume";

/** Where a volume itself is mounted: `/mnt/<label>`, DigitalOcean's convention. */
export function volumeRoot(label: string): string {
  return `/mnt/${label}`;
}

/**
 * `foobar-mount-volume DEVICE MOUNT_POINT LABEL`
 * (`cloud-init/files/usr/local/sbin/foobar-mount-volume`): waits up to 300 s
 * for the device, formats it ext4 only if it holds no filesystem, mounts it on
 * `/mnt/LABEL` and binds its `data` folder onto MOUNT_POINT. Idempotent.
 *
 * The data lives in a folder of the volume, not at its root, because a new
 * ext4 filesystem holds `lost+found`, and `mysqld --initialize` refuses a
 * data directory that is not empty.
 */
export function volumeScript(): string {
  return dropletFile(VOLUME_SCRIPT_PATH);
}

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
  const script = volumeScript();
  const args = (mount: VolumeMount) => [volumeDevicePath(mount.volumeName), mount.mountPoint, mount.label];
  return {
    // bootcmd runs before write_files on the first boot: the first mount writes the script (where the units
    // find it on later boots) and runs it, the others run it.
    bootcmd: mounts.map((mount, i) =>
      i === 0
        ? writeAndRun({ path: VOLUME_SCRIPT_PATH, permissions: "0755", content: script }, args(mount))
        : [VOLUME_SCRIPT_PATH, ...args(mount)],
    ),
    writeFiles: [
      ...mounts.flatMap((mount): WriteFile[] => [
        {
          path: `/etc/systemd/system/${volumeUnitName(mount)}`,
          content: dropletFile("/etc/systemd/system/foobar-volume-@@LABEL@@.service", {
            VOLUME_NAME: mount.volumeName,
            MOUNT_POINT: mount.mountPoint,
            REQUIRED_BY: mount.requiredBy.join(" "),
            SCRIPT: VOLUME_SCRIPT_PATH,
            DEVICE: volumeDevicePath(mount.volumeName),
            LABEL: mount.label,
          }),
        },
        // Never start on an empty folder of the droplet's own disk.
        ...mount.requiredBy.map((unit) => ({
          path: `/etc/systemd/system/${unit}.d/foobar-volume.conf`,
          content: dropletFile("/etc/systemd/system/@@REQUIRED_UNIT@@.d/foobar-volume.conf", { VOLUME_UNIT: volumeUnitName(mount) }),
        })),
      ]),
    ],
    runcmd: [["systemctl", "daemon-reload"], ...mounts.map((mount) => ["systemctl", "enable", volumeUnitName(mount)])],
  };
}
