import { filesRunAtBoot } from "../../cloud-init/cloud-config";
import { volumeDevicePath, volumeParts, volumeScript, volumeUnitName } from "../../cloud-init/volume";

const mount = { volumeName: "web-01-mysql", mountPoint: "/var/lib/mysql", label: "mysql", requiredBy: ["mysql.service"] };

describe("volumes on a droplet", () => {
  test("find the volume where DigitalOcean attaches it", () => {
    expect(volumeDevicePath("web-01-mysql")).toBe("/dev/disk/by-id/scsi-0DO_Volume_web-01-mysql");
  });

  test("format only a volume on which blkid finds no filesystem at all (exit 2), never one it cannot read", () => {
    const lines = volumeScript().split("\n");
    const format = lines.findIndex((l) => l.includes("mkfs.ext4"));
    expect(lines.slice(format - 3, format).join("\n")).toMatch(/blkid -p "\$device"[\s\S]*if \[ "\$status" -eq 2 \]; then/);
    expect(volumeScript()).toContain('elif [ "$status" -ne 0 ]; then');
    expect(volumeScript().match(/mkfs/g)).toHaveLength(1);
  });

  test("mount on the first boot before packages (bootcmd), and before the services that need it on every boot", () => {
    const parts = volumeParts([mount]);
    expect(parts.bootcmd).toHaveLength(1);
    expect(parts.bootcmd[0]!.slice(-3)).toEqual([volumeDevicePath("web-01-mysql"), "/var/lib/mysql", "mysql"]);
    expect(filesRunAtBoot(parts.bootcmd)).toEqual([{ path: "/usr/local/sbin/foobar-mount-volume", content: volumeScript() }]);
    expect(parts.writeFiles.map((file) => file.path)).not.toContain("/usr/local/sbin/foobar-mount-volume");
    const unit = parts.writeFiles.find((f) => f.path === `/etc/systemd/system/${volumeUnitName(mount)}`)!.content;
    expect(unit).toContain("Before=mysql.service");
    const dropIn = parts.writeFiles.find((f) => f.path === "/etc/systemd/system/mysql.service.d/foobar-volume.conf")!.content;
    expect(dropIn).toContain("Requires=foobar-volume-mysql.service");
    expect(parts.runcmd).toContainEqual(["systemctl", "enable", "foobar-volume-mysql.service"]);
  });

  test("a second volume runs the script the first one's command wrote", () => {
    const parts = volumeParts([
      mount,
      { ...mount, volumeName: "web-01-logs", mountPoint: "/var/log/foobar", label: "logs", requiredBy: [] },
    ]);
    expect(filesRunAtBoot(parts.bootcmd)).toHaveLength(1);
    expect(parts.bootcmd[1]).toEqual(["/usr/local/sbin/foobar-mount-volume", volumeDevicePath("web-01-logs"), "/var/log/foobar", "logs"]);
  });

  test("give nothing to a droplet without volumes", () => {
    expect(volumeParts([])).toEqual({ bootcmd: [], writeFiles: [], runcmd: [] });
  });
});
