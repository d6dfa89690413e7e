import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { cgroupHierarchies, dropletCgroupDirs, inCgroups, LAB_CGROUP } from "../../lab/host/cgroups";

// Read off this project's CI machine: a hybrid host (cgroup v1 controllers, a
// named systemd hierarchy, and the unified hierarchy beside them).
const MOUNTINFO = [
  "30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755",
  "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate",
  "32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,xattr,name=systemd",
  "33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
  "35 24 0:31 / /proc rw - proc proc rw",
].join("\n");
const OWN = ["4:memory:/process_api/d0fd", "3:cpu,cpuacct:/", "2:name=systemd:/", "0::/"].join("\n");

describe("per-droplet cgroups", () => {
  const hierarchies = cgroupHierarchies(MOUNTINFO, OWN);

  test("every mounted hierarchy is found, v1 and v2, with the lab's own place in it", () => {
    expect(hierarchies).toEqual([
      { mountPoint: "/sys/fs/cgroup/unified", key: "0::", ownPath: "/" },
      { mountPoint: "/sys/fs/cgroup/systemd", key: "name=systemd", ownPath: "/" },
      { mountPoint: "/sys/fs/cgroup/memory", key: "memory", ownPath: "/process_api/d0fd" },
      { mountPoint: "/sys/fs/cgroup/cpu,cpuacct", key: "cpu,cpuacct", ownPath: "/" },
    ]);
  });

  test("a droplet's cgroups sit under the lab's own cgroup, so the host's limits on the lab still apply", () => {
    expect(dropletCgroupDirs("web-01", hierarchies)).toEqual([
      `/sys/fs/cgroup/unified/${LAB_CGROUP}/web-01`,
      `/sys/fs/cgroup/systemd/${LAB_CGROUP}/web-01`,
      `/sys/fs/cgroup/memory/process_api/d0fd/${LAB_CGROUP}/web-01`,
      `/sys/fs/cgroup/cpu,cpuacct/${LAB_CGROUP}/web-01`,
    ]);
  });

  test("no two droplets ever get the same cgroup", () => {
    const web01 = dropletCgroupDirs("web-01", hierarchies);
    const web02 = dropletCgroupDirs("web-02", hierarchies);
    expect(web01.filter((dir) => web02.includes(dir))).toEqual([]);
  });

  test("a pure cgroup v2 host gives one hierarchy", () => {
    const unifiedOnly = cgroupHierarchies(
      "31 24 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate",
      "0::/user.slice/lab.scope",
    );
    expect(unifiedOnly).toEqual([{ mountPoint: "/sys/fs/cgroup", key: "0::", ownPath: "/user.slice/lab.scope" }]);
  });

  test("the wrapper writes its own PID into every cgroup.procs before it execs the command, keeping its PID", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cgroups-"));
    const procs = [path.join(dir, "a procs"), path.join(dir, "b")];
    const [cmd, ...args] = inCgroups(procs, ["sh", "-c", "echo $$"]);
    const result = spawnSync(cmd!, args, { encoding: "utf8" });
    expect(result.status).toBe(0);
    const execedPid = result.stdout.trim();
    for (const file of procs) expect(fs.readFileSync(file, "utf8").trim()).toBe(execedPid);
  });

  test("the wrapper refuses to start the command when it cannot join a cgroup", () => {
    const [cmd, ...args] = inCgroups(["/nonexistent/dir/cgroup.procs"], ["echo", "started anyway"]);
    const result = spawnSync(cmd!, args, { encoding: "utf8" });
    expect(result.status).toBe(97);
    expect(result.stdout).toBe("");
  });
});
