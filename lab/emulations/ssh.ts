/**
 * The admin's SSH key, emulated: DigitalOcean installs the account keys named
 * in a droplet's `ssh_keys` into root's `authorized_keys`; the lab makes one
 * key per `up`, installs it on every droplet the same way, and uses it from
 * the client namespace (the admin's machine, in FOOBAR_ADMIN_CIDRS).
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { shellQuote } from "../../tools/rollout";
import { CommandResult, run, tryRun } from "../host/shell";
import { LabState, saveState } from "../host/state";
import { CLIENT_NS, stateDir } from "../settings";

/** Makes the lab's admin key pair once; returns its public key. */
export function createAdminKey(state: LabState): string {
  const dir = path.join(stateDir(), "ssh");
  const key = path.join(dir, "id_ed25519");
  if (!fs.existsSync(key)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "foobar-lab-admin", "-f", key]);
  }
  state.adminKey = key;
  saveState(state);
  return fs.readFileSync(`${key}.pub`, "utf8");
}

/** Puts the admin key into root's `authorized_keys` on a droplet's disk, before it boots. */
export function installAdminKey(state: LabState, merged: string): void {
  if (!state.adminKey) return;
  const ssh = path.join(merged, "root", ".ssh");
  fs.mkdirSync(ssh, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(ssh, "authorized_keys"), fs.readFileSync(`${state.adminKey}.pub`, "utf8"), { mode: 0o600 });
}

/** The command line that runs a bash script as root on `address` over SSH from the client namespace. */
export function sshFromClientCommand(state: LabState, address: string, script: string): string[] {
  if (!state.adminKey) throw new Error("the lab has no admin key");
  return [
    "ip",
    "netns",
    "exec",
    CLIENT_NS,
    "ssh",
    "-i",
    state.adminKey,
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=5",
    `root@${address}`,
    `bash -c ${shellQuote(script)}`,
  ];
}

/** Runs a bash script as root on `address` over SSH from the client namespace. */
export function sshFromClient(state: LabState, address: string, script: string, input?: string): CommandResult {
  if (!state.adminKey) return { status: 255, stdout: "", stderr: "the lab has no admin key" };
  const [program, ...args] = sshFromClientCommand(state, address, script);
  return tryRun(program!, args, { input, timeoutMs: 300_000 });
}
