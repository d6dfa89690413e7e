/**
 * How long the lab's long steps took, kept in the lab cache (timings.json)
 * across runs so that `npm run bench` can report the last cold `up`, warm
 * `up` and warm `test:lab` beside what it measures itself.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { cacheDir } from "../settings";

export type TimingName = "cold up" | "warm up" | "warm test:lab";

export interface Timing {
  readonly seconds: number;
  /** ISO time the step ended. */
  readonly at: string;
}

function timingsFile(): string {
  return path.join(cacheDir(), "timings.json");
}

/** Every timing recorded so far, by name (the last of each). */
export function readTimings(): Partial<Record<TimingName, Timing>> {
  try {
    return JSON.parse(fs.readFileSync(timingsFile(), "utf8")) as Partial<Record<TimingName, Timing>>;
  } catch {
    return {};
  }
}

/** Records how long `name` took, replacing the one before. */
export function recordTiming(name: TimingName, seconds: number): void {
  const timings = { ...readTimings(), [name]: { seconds: Math.round(seconds), at: new Date().toISOString() } };
  fs.mkdirSync(cacheDir(), { recursive: true });
  fs.writeFileSync(timingsFile(), JSON.stringify(timings, null, 2) + "\n");
}
