/**
 * DigitalOcean block storage volumes, emulated: one sparse file per volume
 * behind a loop device, handed to the droplet it is attached to at
 * `/dev/disk/by-id/scsi-0DO_Volume_<name>`, where DigitalOcean puts it.
 *
 * A volume belongs to the lab, not to a droplet: it survives the droplet's
 * replacement (`apply`) and goes only with `down`. Its blocks start out zero,
 * like a new volume's, so the droplet decides whether to format it.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { volumeDevicePath } from "../../cloud-init/volume";
import { log, run, tryRun } from "../host/shell";
import { LabState, saveState } from "../host/state";
import { stateDir } from "../settings";
import type { LabVolume } from "./terraform";

/**
 * How big a lab volume's file may grow, in GiB, whatever the stack asks for:
 * the file is sparse, so only what the droplet writes takes space.
 */
export const LAB_VOLUME_MAX_GIB = 10;

/** Creates the volume's file and loop device, once; a volume that exists is kept as it is. */
export function createVolume(state: LabState, volume: LabVolume): string {
  state.volumes ??= {};
  const existing = state.volumes[volume.name];
  if (existing?.loop && fs.existsSync(existing.file)) return existing.loop;
  const dir = path.join(stateDir(), "volumes");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${volume.name}.img`);
  state.volumes[volume.name] = { file };
  saveState(state);
  const gib = Math.min(volume.sizeGib, LAB_VOLUME_MAX_GIB);
  fs.writeFileSync(file, "");
  fs.truncateSync(file, gib * 1024 ** 3);
  const loop = run("losetup", ["--find", "--show", file]).trim();
  state.volumes[volume.name] = { file, loop };
  saveState(state);
  log(`volume ${volume.name}: ${gib} GiB sparse on ${loop}`);
  return loop;
}

/** systemd-nspawn options that give a droplet its attached volumes where DigitalOcean would. */
export function volumeBinds(state: LabState, volumeNames: readonly string[]): string[] {
  return volumeNames.map((name) => {
    const loop = state.volumes?.[name]?.loop;
    if (!loop) throw new Error(`volume ${name} has no loop device: it was not created`);
    return `--bind=${loop}:${volumeDevicePath(name)}`;
  });
}

/** Detaches every volume's loop device and deletes its file; returns what it removed. */
export function teardownVolumes(state: LabState): string[] {
  const removed: string[] = [];
  for (const [name, volume] of Object.entries(state.volumes ?? {})) {
    if (volume.loop && tryRun("losetup", ["--detach", volume.loop]).status === 0)
      removed.push(`loop device ${volume.loop} (volume ${name})`);
    if (fs.existsSync(volume.file)) {
      fs.rmSync(volume.file);
      removed.push(`volume file ${volume.file}`);
    }
  }
  fs.rmSync(path.join(stateDir(), "volumes"), { recursive: true, force: true });
  state.volumes = {};
  saveState(state);
  return removed;
}
