/**
 * One cgroup subtree per droplet, in every cgroup hierarchy the host has.
 *
 * Why: systemd-nspawn with `--keep-unit --register=no` puts the container in a
 * `payload` child of *its own* cgroup. Started from the same cgroup, every
 * droplet got the same `/payload`, so every droplet's systemd believed it owned
 * the same `/payload/system.slice/<unit>` cgroups: a stop or a SIGKILL
 * (`cgroup.kill`) of a unit in one droplet reached the same unit in the others,
 * and a unit's stop waited for processes of other droplets to leave "its"
 * cgroup. Each droplet's nspawn is therefore started inside a cgroup of its own,
 * `<the lab's own cgroup>/foobar-lab/<droplet>`, created before it starts and
 * removed by `down`. Nested under the lab's own cgroup so that any limit the
 * host put on the lab (a memory cgroup, say) still applies to its droplets.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { LabState, remember, saveState } from "./state";

const CGROUP_ROOT = "/sys/fs/cgroup";
/** The lab's directory in each hierarchy, under the lab process's own cgroup. */
export const LAB_CGROUP = "foobar-lab";

/** A mounted cgroup hierarchy and where the current process sits in it. */
export interface CgroupHierarchy {
  /** Mount point, such as `/sys/fs/cgroup/memory` or `/sys/fs/cgroup/unified`. */
  readonly mountPoint: string;
  /** `0::` for the unified hierarchy, else the v1 controllers (`memory`, `name=systemd`, …). */
  readonly key: string;
  /** This process's cgroup in it, such as `/` or `/process_api/d0fd…`. */
  readonly ownPath: string;
}

/**
 * Every cgroup hierarchy mounted under /sys/fs/cgroup (v1 and v2), with this
 * process's place in each, from /proc/self/mountinfo and /proc/self/cgroup.
 */
export function cgroupHierarchies(
  mountinfo = fs.readFileSync("/proc/self/mountinfo", "utf8"),
  ownCgroups = fs.readFileSync("/proc/self/cgroup", "utf8"),
): CgroupHierarchy[] {
  // /proc/self/cgroup lines: "ID:controllers:path"; the unified one is "0::path".
  const own = new Map<string, string>();
  for (const line of ownCgroups.split("\n").filter(Boolean)) {
    const [, controllers, ...rest] = line.split(":");
    own.set(controllers === "" ? "0::" : controllers!, rest.join(":"));
  }
  const hierarchies: CgroupHierarchy[] = [];
  for (const line of mountinfo.split("\n").filter(Boolean)) {
    // "... mountpoint options - fstype source superoptions"
    const [before, after] = line.split(" - ");
    const [fstype, , superOptions] = (after ?? "").split(" ");
    const mountPoint = (before ?? "").split(" ")[4] ?? "";
    if (!mountPoint.startsWith(CGROUP_ROOT) || (fstype !== "cgroup" && fstype !== "cgroup2")) continue;
    // For v1 the controllers are the super options minus the generic ones, in
    // the kernel's order, which is the order /proc/self/cgroup uses too.
    const key =
      fstype === "cgroup2"
        ? "0::"
        : (superOptions ?? "")
            .split(",")
            .filter(
              (option) =>
                !["rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children", "xattr"].includes(option) &&
                !option.startsWith("release_agent="),
            )
            .join(",");
    const ownPath = own.get(key);
    if (ownPath === undefined) continue;
    hierarchies.push({ mountPoint, key, ownPath });
  }
  return hierarchies;
}

/** The cgroup directories of one droplet, one per hierarchy (created by {@link createDropletCgroups}). */
export function dropletCgroupDirs(name: string, hierarchies = cgroupHierarchies()): string[] {
  return hierarchies.map((h) => path.join(h.mountPoint, h.ownPath, LAB_CGROUP, name));
}

/**
 * Creates the droplet's cgroup in every hierarchy, recording each in the state
 * before it exists (so `down` removes it even after a crash).
 *
 * @returns the `cgroup.procs` files to put the droplet's nspawn process in.
 */
export function createDropletCgroups(state: LabState, name: string): string[] {
  const dirs = dropletCgroupDirs(name);
  if (dirs.length === 0) throw new Error(`no cgroup hierarchy found under ${CGROUP_ROOT}`);
  for (const dir of dirs) {
    if (fs.existsSync(dir)) {
      throw new Error(`cgroup ${dir} already exists: another lab is up, or run \`npm run lab:down\` first`);
    }
    remember(state, state.cgroups, dir);
    makeCgroup(path.dirname(dir));
    makeCgroup(dir);
  }
  return dirs.map((dir) => path.join(dir, "cgroup.procs"));
}

/**
 * Creates one cgroup directory (if missing) below an existing one. A new v1
 * cpuset starts with no CPUs and no memory nodes and refuses every task, so
 * it gets its parent's.
 */
function makeCgroup(dir: string): void {
  if (fs.existsSync(dir)) return;
  fs.mkdirSync(dir);
  for (const file of ["cpuset.cpus", "cpuset.mems"]) {
    const inherited = path.join(path.dirname(dir), file);
    if (fs.existsSync(inherited)) fs.writeFileSync(path.join(dir, file), fs.readFileSync(inherited, "utf8").trim() || "\n");
  }
}

/**
 * The command line that starts `cmd` inside the given cgroups: a shell moves
 * itself into each `cgroup.procs`, then execs the command, so the command is
 * in place before it creates any child (and keeps the shell's PID).
 */
export function inCgroups(procsFiles: readonly string[], cmd: readonly string[]): string[] {
  const script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"';
  return ["sh", "-c", script, "sh", ...procsFiles, "--", ...cmd];
}

/** PIDs (as the host sees them) still in a cgroup directory or any cgroup below it. */
export function pidsUnder(dir: string): number[] {
  if (!fs.existsSync(dir)) return [];
  const pids: number[] = [];
  const walk = (current: string): void => {
    const procs = path.join(current, "cgroup.procs");
    if (fs.existsSync(procs)) {
      pids.push(...fs.readFileSync(procs, "utf8").split("\n").filter(Boolean).map(Number));
    }
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(path.join(current, entry.name));
    }
  };
  walk(dir);
  return pids;
}

/**
 * SIGKILLs every process left in a droplet's cgroup subtree: only ever a
 * cgroup the lab created for that droplet, so nothing else can be hit.
 * Uses the unified hierarchy's `cgroup.kill` where the kernel has it.
 */
export function killCgroup(dir: string): number {
  const left = pidsUnder(dir);
  if (left.length === 0) return 0;
  const killFile = path.join(dir, "cgroup.kill");
  if (fs.existsSync(killFile)) {
    fs.writeFileSync(killFile, "1");
  } else {
    for (const pid of left) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
  }
  return left.length;
}

/** Removes a cgroup directory and its children, deepest first; throws if processes remain in it. */
export function removeCgroup(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroup(path.join(dir, entry.name));
  }
  // A cgroup directory holds only kernel files: rmdir is how it is deleted.
  fs.rmdirSync(dir);
}

/** Removes one powered-off droplet's cgroups (killing what is left in them first); returns what it removed. */
export async function removeDropletCgroups(state: LabState, name: string, settle: () => Promise<void>): Promise<string[]> {
  const mine = new Set(dropletCgroupDirs(name));
  const others = state.cgroups.filter((dir) => !mine.has(dir));
  const own = { ...state, cgroups: state.cgroups.filter((dir) => mine.has(dir)) };
  const removed = await teardownCgroups(own, settle, false);
  state.cgroups = others;
  saveState(state);
  return removed;
}

/**
 * Removes every droplet cgroup the state records (killing what is left in
 * them first), then the lab's now empty `foobar-lab` parents.
 *
 * @returns what it removed, for `down`'s report.
 */
export async function teardownCgroups(state: LabState, settle: () => Promise<void>, removeParents = true): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of state.cgroups) {
    if (!fs.existsSync(dir)) continue;
    const killed = killCgroup(dir);
    if (killed > 0) removed.push(`${killed} process(es) left in ${dir} (SIGKILL)`);
    // A killed process leaves its cgroup a moment after the signal.
    for (let attempt = 1; ; attempt++) {
      try {
        removeCgroup(dir);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EBUSY" || attempt >= 20) throw error;
        await settle();
      }
    }
    removed.push(`cgroup ${dir}`);
  }
  for (const parent of removeParents ? new Set(state.cgroups.map((dir) => path.dirname(dir))) : []) {
    if (
      path.basename(parent) === LAB_CGROUP &&
      fs.existsSync(parent) &&
      !fs.readdirSync(parent, { withFileTypes: true }).some((e) => e.isDirectory())
    ) {
      fs.rmdirSync(parent);
    }
  }
  state.cgroups = [];
  return removed;
}
