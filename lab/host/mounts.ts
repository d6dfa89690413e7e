/**
 * Reading and undoing mounts safely.
 *
 * The lab bind-mounts /dev into a rootfs while building it and mounts one
 * overlay per droplet; deleting a directory with a live mount under it would
 * delete host files. So every recursive delete here first checks /proc/mounts
 * and uses `rm --one-file-system`.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { run, tryRun } from "./shell";

/** Mount points at or below `dir`, deepest first (the order to unmount them in). */
export function mountsUnder(dir: string): string[] {
  const root = path.resolve(dir);
  const points = fs
    .readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[1])
    .filter((p): p is string => p !== undefined && p !== "")
    // /proc/mounts escapes spaces and friends as octal.
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((p) => p === root || p.startsWith(root + "/"));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or below `dir`; returns what it unmounted. */
export function unmountAll(dir: string): string[] {
  const done: string[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return done;
    for (const point of points) {
      if (tryRun("umount", [point]).status !== 0) {
        // Busy (a process still has a file open): detach it so the tree can go.
        tryRun("umount", ["-l", point]);
      }
      done.push(point);
    }
  }
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`could not unmount: ${left.join(", ")}`);
  return done;
}

/**
 * Deletes a directory tree, refusing if anything is still mounted below it.
 *
 * @throws Error when a mount is still present under `dir`.
 */
export function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`refusing to delete ${dir}: still mounted: ${left.join(", ")}`);
  run("rm", ["-rf", "--one-file-system", "--", dir]);
}
