/**
 * The admin's SSH key, emulated: DigitalOcean installs the account keys named
 * in a droplet's `ssh_keys` into root's `authorized_keys`; the lab makes one
 * key per `up`, installs it on every droplet the same way, and uses it from
 * the client namespace (the admin's machine, in FOOBAR_ADMIN_CIDRS).
 *
 * The lab's account has one more key, a colleague's, with the id
 * `LAB_ACCOUNT_KEY_ID`: a droplet gets it only when its `ssh_keys` name it
 * (`FOOBAR_SSH_KEYS`), as on DigitalOcean.
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

/** The id of the lab account's second SSH key (`FOOBAR_SSH_KEYS=<this>` names it). */
export const LAB_ACCOUNT_KEY_ID = "424242";

/** The private key of the lab account's second SSH key (a host path), made on first use. */
export function accountKeyFile(): string {
  const key = path.join(stateDir(), "ssh", "account_ed25519");
  if (!fs.existsSync(key)) {
    fs.mkdirSync(path.dirname(key), { recursive: true, mode: 0o700 });
    run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `foobar-lab-account-key-${LAB_ACCOUNT_KEY_ID}`, "-f", key]);
  }
  return key;
}

/**
 * Puts the admin key, and the account keys the droplet's `ssh_keys` name, into
 * root's `authorized_keys` on a droplet's disk, before it boots.
 */
export function installAdminKey(state: LabState, merged: string, sshKeys: readonly string[]): void {
  if (!state.adminKey) return;
  const ssh = path.join(merged, "root", ".ssh");
  fs.mkdirSync(ssh, { recursive: true, mode: 0o700 });
  const keys = [`${state.adminKey}.pub`, ...(sshKeys.includes(LAB_ACCOUNT_KEY_ID) ? [`${accountKeyFile()}.pub`] : [])];
  fs.writeFileSync(path.join(ssh, "authorized_keys"), keys.map((file) => fs.readFileSync(file, "utf8")).join(""), { mode: 0o600 });
}

/** The command line that runs a bash script as root on `address` over SSH from a lab namespace, with a private key. */
export function sshCommand(namespace: string, key: string, address: string, script: string): string[] {
  const options = ["BatchMode=yes", "StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR", "ConnectTimeout=5"];
  return [
    "ip",
    "netns",
    "exec",
    namespace,
    "ssh",
    "-i",
    key,
    ...options.flatMap((o) => ["-o", o]),
    `root@${address}`,
    `bash -c ${shellQuote(script)}`,
  ];
}

/** The command line that runs a bash script as root on `address` over SSH from the client namespace. */
export function sshFromClientCommand(state: LabState, address: string, script: string): string[] {
  if (!state.adminKey) throw new Error("the lab has no admin key");
  return sshCommand(CLIENT_NS, state.adminKey, address, script);
}

/** Runs a bash script as root on `address` over SSH from the client namespace. */
export function sshFromClient(state: LabState, address: string, script: string, input?: string): CommandResult {
  if (!state.adminKey) return { status: 255, stdout: "", stderr: "the lab has no admin key" };
  const [program, ...args] = sshFromClientCommand(state, address, script);
  return tryRun(program!, args, { input, timeoutMs: 300_000 });
}
