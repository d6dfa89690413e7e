/**
 * The lab's apt proxy: an apt-cacher-ng process of our own on the host end of
 * the uplink, with a private copy of the config.
 *
 * Droplets have no route off the lab; their `packages:` come through here. The
 * package cache lives in the lab cache root, so packages are downloaded once
 * across runs.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { APT_PROXY_PORT, cacheDir, debianMirror, stateDir, UPLINK_ADDRESS } from "../settings";
import { processName, stopProcess } from "./processes";
import { log, run, sleep, tail, tryRun } from "./shell";
import { LabState, saveState } from "./state";

const SYSTEM_CONF = "/etc/apt-cacher-ng";
const USER = "apt-cacher-ng";

/** Starts apt-cacher-ng bound to the uplink address; records its PID in the state. */
export async function startAptProxy(state: LabState): Promise<void> {
  const dir = path.join(stateDir(), "apt-cacher-ng");
  const conf = path.join(dir, "conf");
  const logs = path.join(dir, "log");
  const cache = path.join(cacheDir(), "apt-cacher-ng");
  state.proxy = { dir };
  saveState(state);
  fs.mkdirSync(conf, { recursive: true });
  fs.mkdirSync(logs, { recursive: true });
  fs.mkdirSync(cache, { recursive: true });
  for (const entry of fs.readdirSync(SYSTEM_CONF)) {
    const source = path.join(SYSTEM_CONF, entry);
    if (fs.statSync(source).isFile()) fs.copyFileSync(source, path.join(conf, entry));
  }
  // The host's own mirror (lab/settings.ts): apt-cacher-ng's stock backend list names mirrors this host may not reach.
  fs.writeFileSync(path.join(conf, "backends_debian"), `${debianMirror()}/\n`);
  run("chown", ["-R", `${USER}:${USER}`, dir, cache]);

  const out = fs.openSync(path.join(logs, "stdout.log"), "a");
  // setpriv execs, so the PID we get is apt-cacher-ng's own; it runs as its own user.
  const child = spawn(
    "setpriv",
    [
      `--reuid=${USER}`,
      `--regid=${USER}`,
      "--init-groups",
      "--",
      "/usr/sbin/apt-cacher-ng",
      "-c",
      conf,
      "ForeGround=1",
      `BindAddress=${UPLINK_ADDRESS}`,
      `Port=${APT_PROXY_PORT}`,
      `CacheDir=${cache}`,
      `LogDir=${logs}`,
      `PidFile=${path.join(dir, "pid")}`,
      `SocketPath=${path.join(dir, "socket")}`,
    ],
    { detached: true, stdio: ["ignore", out, out] },
  );
  fs.closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error("could not start apt-cacher-ng");
  state.proxy = { dir, pid: child.pid };
  saveState(state);

  // Ready when it listens (checked with ss: no traffic sent).
  for (let i = 0; i < 50; i++) {
    const listening = tryRun("ss", ["-Hltn", `src ${UPLINK_ADDRESS}:${APT_PROXY_PORT}`]).stdout.trim() !== "";
    if (listening) {
      log(`apt proxy: apt-cacher-ng pid ${child.pid} on ${UPLINK_ADDRESS}:${APT_PROXY_PORT}, cache ${cache}`);
      return;
    }
    if (processName(child.pid) === undefined) break;
    await sleep(200);
  }
  const output = fs.readFileSync(path.join(logs, "stdout.log"), "utf8");
  throw new Error(`apt-cacher-ng did not start listening on ${UPLINK_ADDRESS}:${APT_PROXY_PORT}:\n${tail(output, 10)}`);
}

/** Stops the apt-cacher-ng this lab started (by its recorded PID only); returns what it did. */
export async function stopAptProxy(state: LabState): Promise<string[]> {
  const removed: string[] = [];
  const pid = state.proxy?.pid;
  if (pid !== undefined && (await stopProcess(pid, "apt-cacher-ng", 10_000))) {
    removed.push(`apt-cacher-ng pid ${pid}`);
  }
  if (state.proxy) {
    fs.rmSync(state.proxy.dir, { recursive: true, force: true });
  }
  state.proxy = undefined;
  saveState(state);
  return removed;
}
