import * as fs from "node:fs";
import * as path from "node:path";

import { BACKUP, backupParts, backupWorkDir, spacesEndpoint } from "../../cloud-init/backup";
import { DROPLET_FILES_ROOT } from "../../cloud-init/files";
import { FORCE_PROMOTE_FLAG_PATH, REBUILD_FLAG_PATH } from "../../cloud-init/mysql";
import { renderNginxSite } from "../../cloud-init/nginx";

const INPUT = {
  bucket: "foobar-backups",
  region: "ams3",
  recipient: `age1${"q".repeat(58)}`,
  accessKeyId: "${digitalocean_spaces_key.backups.access_key}",
  secretAccessKey: "${digitalocean_spaces_key.backups.secret_key}",
  everyHours: 6,
};
const CONTEXT = {
  volumeLabel: "mysql",
  setupEnvironment: "/etc/foobar/mysql-setup.env",
  agentEnvironment: "/etc/foobar/db-agent.env",
  addressEnvironment: "/etc/foobar/private-address.env",
  agentUnit: "foobar-db-agent.service",
};
const parts = backupParts(INPUT, CONTEXT);
const file = (p: string) => parts.writeFiles.find((f) => f.path === p);

describe("a web server's backups", () => {
  test("rclone's remote is the region's Spaces endpoint with the bucket-scoped key, in a root-only file", () => {
    const env = file(BACKUP.environment)!;
    expect(env.permissions).toBe("0600");
    expect(env.content).toContain(`RCLONE_CONFIG_SPACES_ENDPOINT=https://${spacesEndpoint("ams3")}`);
    expect(env.content).toContain("RCLONE_CONFIG_SPACES_ACCESS_KEY_ID=${digitalocean_spaces_key.backups.access_key}");
    expect(env.content).toContain("RCLONE_CONFIG_SPACES_SECRET_ACCESS_KEY=${digitalocean_spaces_key.backups.secret_key}");
    expect(env.content).toContain(`BACKUP_RECIPIENT=${INPUT.recipient}`);
  });

  test("everything is encrypted on the droplet to the recipient, and no identity is ever written to it", () => {
    const script = file(BACKUP.script)!.content;
    expect(script).toContain('age -r "$2" | rclone rcat "$3"');
    expect(script).toContain('age -r "$1" "$2" | rclone rcat "$3"');
    for (const f of parts.writeFiles) expect(f.content).not.toMatch(/AGE-SECRET-KEY|age -d|--decrypt/);
  });

  test("clones and set-aside data go to a folder of the MySQL volume, which the AppArmor rule opens to mysqld", () => {
    expect(backupWorkDir("mysql")).toBe("/mnt/mysql/backup");
    expect(file(BACKUP.apparmorLocal)!.content).toContain("/mnt/mysql/backup/** rwk,");
    expect(file(BACKUP.script)!.content).toContain('WORK_DIR = "/mnt/mysql/backup"');
  });

  test("base backups every everyHours; the archiver and the timer start after the agent", () => {
    expect(file(`/etc/systemd/system/${BACKUP.baseTimer}`)!.content).toContain("OnUnitActiveSec=6h");
    expect(parts.runcmd).toEqual([["systemctl", "enable", "--now", BACKUP.archiveUnit, BACKUP.baseTimer]]);
    expect(parts.packages).toEqual(["age", "rclone"]);
  });

  test("the restore steps use the agent's own consent files, which db_decisions.py declares the same", () => {
    const decisions = fs.readFileSync(path.join(DROPLET_FILES_ROOT, "usr/local/lib/foobar/db_decisions.py"), "utf8");
    expect(decisions).toContain(`REBUILD_FLAG = "${REBUILD_FLAG_PATH}"`);
    expect(decisions).toContain(`FORCE_PROMOTE_FLAG = "${FORCE_PROMOTE_FLAG_PATH}"`);
    const restore = file(BACKUP.restoreScript)!.content;
    expect(restore).toContain(`touch ${FORCE_PROMOTE_FLAG_PATH}`);
    expect(restore).toContain(`touch ${REBUILD_FLAG_PATH}`);
    expect(restore).toContain("units=(foobar-db-agent.service foobar-backup-archive.service foobar-backup-base.timer)");
  });

  test("Nginx serves the status file at /backup-status, uncached, only when backups are on", () => {
    const site = {
      serverName: "web-01",
      listenSnippet: "/s",
      port: 80,
      siteHostNames: ["www.foobar.com"],
      staticRoot: "/srv",
      appPort: 8000,
    };
    expect(renderNginxSite(site)).not.toContain("backup-status");
    const on = renderNginxSite({ ...site, backupStatus: { path: BACKUP.statusPath, file: BACKUP.status } });
    expect(on).toContain(`location = /backup-status {\n        alias ${BACKUP.status};`);
    expect(on).toContain('add_header Cache-Control "no-store" always;');
  });

  test("foobar-backup is Python that compiles", () => {
    const { spawnSync } = jest.requireActual<typeof import("node:child_process")>("node:child_process");
    const source = file(BACKUP.script)!.content;
    const run = spawnSync("python3", ["-c", "import sys; compile(sys.stdin.read(), 'foobar-backup', 'exec')"], {
      input: source,
      encoding: "utf8",
    });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
  });
});
