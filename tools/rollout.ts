/**
 * `npm run rollout [-- <stack>]`: takes the application (FOOBAR_APP_DIR and
 * FOOBAR_APP_COMMAND, as the stack synthesizes them) to every web server,
 * one at a time, without replacing any droplet:
 *
 * 1. drain the server in HAProxy (no new requests; those in flight finish);
 * 2. unpack the release next to the running one, swap them, install the
 *    unit, restart the application;
 * 3. wait until the application answers its health check on the server;
 * 4. put the server back in HAProxy and wait until HAProxy sees it UP.
 *
 * It reaches the droplets as an operator does, over SSH as root from a
 * machine in FOOBAR_ADMIN_CIDRS with a key from FOOBAR_SSH_KEYS, and stops at
 * the first server that does not come back healthy, leaving it drained and
 * the others untouched. The lab runs the same code (`lab.rollout`).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { APP, DEFAULT_APP_COMMAND, renderAppUnit } from "../cloud-init/app";
import { AppFile } from "../cloud-init/user-data";
import { readAppFiles, SAMPLE_APP_DIR } from "../constructs/app-files";
import { loadStacks } from "../environments";
import { SettingsError } from "../settings";

/** What a command on a droplet returned. */
export interface RemoteResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** How the rollout reaches the droplets. */
export interface RolloutTarget {
  /** The load balancers' addresses as the transport reaches them: one, or both of a pair (each drains and readmits). */
  readonly loadBalancers: readonly string[];
  /** Web servers in order: their HAProxy server name (`web-01`) and address. */
  readonly webServers: readonly { readonly name: string; readonly host: string }[];
  /** Runs a bash script as root on `host`, `input` on its stdin. */
  run(host: string, script: string, input?: string): RemoteResult;
}

/** A release: the application's files and the command that serves them. */
export interface Release {
  readonly files: readonly AppFile[];
  readonly command: string;
}

/** The HAProxy backend that holds the web servers (haproxy.ts). */
export const BACKEND = "web_servers";
/** How long a server may take to become healthy again, in seconds. */
export const HEALTHY_WITHIN_SECONDS = 90;

/**
 * A web server droplet's server name in HAProxy: its slot label, `web-01`
 * also for `foobar-staging-web-01`; undefined for a droplet that is no web server.
 */
export function haproxyServerName(dropletName: string): string | undefined {
  return /web-\d+$/.exec(dropletName)?.[0];
}

/** `'it'\''s'`: one argument for a POSIX shell, whatever it holds. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A script that sends one command to HAProxy's admin socket and prints the answer. */
export function haproxyCommand(command: string): string {
  const python = [
    "import socket, sys",
    "s = socket.socket(socket.AF_UNIX)",
    "s.connect('/run/haproxy/admin.sock')",
    "s.sendall((sys.argv[1] + '\\n').encode())",
    "print(s.makefile().read(), end='')",
  ].join("; ");
  return `python3 -c ${shellQuote(python)} ${shellQuote(command)}`;
}

/** The release as a gzipped tar, base64: `app/` (the files) and `unit/` (the service). */
export function packRelease(release: Release): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-release-"));
  try {
    for (const file of release.files) {
      const target = path.join(dir, "app", file.relativePath);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, file.encoding === "b64" ? Buffer.from(file.content, "base64") : file.content, {
        mode: file.executable ? 0o755 : 0o644,
      });
    }
    fs.mkdirSync(path.join(dir, "unit"));
    fs.writeFileSync(path.join(dir, "unit", path.basename(APP.unitPath)), renderAppUnit({ command: release.command }));
    const tar = spawnSync("tar", ["-C", dir, "--owner=0", "--group=0", "--numeric-owner", "-czf", "-", "app", "unit"], {
      maxBuffer: 256 * 1024 * 1024,
    });
    if (tar.status !== 0) throw new Error(`rollout: tar failed: ${tar.stderr.toString().trim()}`);
    return tar.stdout.toString("base64");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Installs the release on a web server and waits until the application answers its health check. */
export function installScript(): string {
  const live = APP.directory;
  return [
    "set -euo pipefail",
    `live=${live}; next=${live}.next; previous=${live}.previous`,
    'rm -rf "$next" "$previous"; mkdir -p "$next"',
    'base64 -d | tar -xz -C "$next"',
    `install -m 0644 "$next/unit/${path.basename(APP.unitPath)}" ${APP.unitPath}`,
    // Two renames: the server is drained, so nobody sees the moment between them.
    'mv "$live" "$previous"; mv "$next/app" "$live"; rm -rf "$next" "$previous"',
    "systemctl daemon-reload",
    `systemctl restart ${APP.unitName}`,
    `for _ in $(seq 1 ${HEALTHY_WITHIN_SECONDS}); do`,
    `  if curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:${APP.port}${APP.healthPath}; then echo healthy; exit 0; fi`,
    "  sleep 1",
    "done",
    `echo "the application did not answer ${APP.healthPath} within ${HEALTHY_WITHIN_SECONDS} s" >&2`,
    "exit 1",
  ].join("\n");
}

/** One load balancer's HAProxy view of one server: `UP`, `DOWN`, `MAINT`, …, and its current sessions. */
function serverState(target: RolloutTarget, loadBalancer: string, name: string): { status: string; sessions: number } {
  const result = target.run(loadBalancer, haproxyCommand("show stat"));
  if (result.status !== 0)
    throw new Error(`cannot read HAProxy's state on the load balancer (${loadBalancer}): ${(result.stderr || result.stdout).trim()}`);
  const row = result.stdout
    .split("\n")
    .map((line) => line.split(","))
    .find((fields) => fields[0] === BACKEND && fields[1] === name);
  if (!row) throw new Error(`HAProxy has no server ${BACKEND}/${name}`);
  return { status: row[17] ?? "", sessions: Number(row[4] ?? 0) };
}

/** Polls `probe` every half second until it returns a value; throws `<what> not within <seconds> s`. */
export async function until<T>(what: string, seconds: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not within ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Stops new requests to a web server on every load balancer, and waits until those in flight finish. */
export async function drainServer(target: RolloutTarget, name: string): Promise<void> {
  for (const lb of target.loadBalancers) {
    const drain = target.run(lb, haproxyCommand(`set server ${BACKEND}/${name} state drain`));
    if (drain.status !== 0 || drain.stdout.trim() !== "")
      throw new Error(`HAProxy on ${lb} did not drain ${name}: ${(drain.stdout + drain.stderr).trim()}`);
  }
  await until(`${name}'s requests in flight finishing`, 30, () =>
    target.loadBalancers.every((lb) => serverState(target, lb, name).sessions === 0) ? true : undefined,
  );
}

/** Puts a web server back in rotation on every load balancer, and waits until each sees it UP. */
export async function readmitServer(target: RolloutTarget, name: string): Promise<void> {
  for (const lb of target.loadBalancers) {
    const ready = target.run(lb, haproxyCommand(`set server ${BACKEND}/${name} state ready`));
    if (ready.status !== 0) throw new Error(`HAProxy on ${lb} did not take ${name} back: ${(ready.stdout + ready.stderr).trim()}`);
  }
  await until(`${name} UP in HAProxy`, HEALTHY_WITHIN_SECONDS, () =>
    target.loadBalancers.every((lb) => serverState(target, lb, name).status === "UP") ? true : undefined,
  );
}

/**
 * Rolls `release` out to every web server in turn; resolves with one line
 * per server, throws at the first one that fails (left drained).
 */
export async function rollout(target: RolloutTarget, release: Release, progress: (line: string) => void = () => {}): Promise<string[]> {
  const packed = packRelease(release);
  for (const lb of target.loadBalancers) {
    const reach = target.run(lb, "true");
    if (reach.status !== 0) {
      throw new Error(
        `rollout: cannot reach the load balancer (${lb}) over SSH as root: ${(reach.stderr || reach.stdout).trim().split("\n").pop()}`,
      );
    }
  }
  const done: string[] = [];
  for (const web of target.webServers) {
    const started = Date.now();
    try {
      await drainServer(target, web.name);
    } catch (error) {
      throw new Error(`rollout: ${(error as Error).message}`, { cause: error });
    }
    progress(`${web.name}: drained`);
    const install = target.run(web.host, installScript(), packed);
    if (install.status !== 0) {
      throw new Error(
        `rollout stopped at ${web.name} (left drained, the others untouched): ${(install.stderr || install.stdout).trim().split("\n").pop()}`,
      );
    }
    progress(`${web.name}: installed, the application answers`);
    try {
      await readmitServer(target, web.name);
    } catch (error) {
      throw new Error(`rollout: ${(error as Error).message}`, { cause: error });
    }
    const line = `${web.name}: new release serving, back in rotation after ${((Date.now() - started) / 1000).toFixed(1)} s`;
    progress(line);
    done.push(line);
  }
  return done;
}

/** The release the settings describe: the application folder's files and command. */
export function releaseFromSettings(settings: { readonly appDir?: string; readonly appCommand?: string }): Release {
  return { files: readAppFiles(settings.appDir ?? SAMPLE_APP_DIR), command: settings.appCommand ?? DEFAULT_APP_COMMAND };
}

/** Over SSH from this machine: `ssh root@<address> bash -c '<script>'`. */
function sshTarget(loadBalancers: readonly string[], webServers: RolloutTarget["webServers"]): RolloutTarget {
  return {
    loadBalancers,
    webServers,
    run: (host, script, input) => sshRun(host, script, input),
  };
}

/**
 * Runs a bash script as root on `host` over SSH from the operator's machine, `input` on its stdin;
 * `options` are more `-o` settings. Never throws on a non-zero exit.
 */
export function sshRun(host: string, script: string, input?: string, options: readonly string[] = []): RemoteResult {
  const settings = ["BatchMode=yes", "ConnectTimeout=10", ...options].flatMap((o) => ["-o", o]);
  const result = spawnSync("ssh", [...settings, `root@${host}`, `bash -c ${shellQuote(script)}`], {
    input,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status ?? 255, stdout: result.stdout ?? "", stderr: result.stderr ?? result.error?.message ?? "" };
}

/** The stack's droplets as Terraform's state has them (`terraform output -json servers`), by name. */
export function serversFromState(stackName: string): Record<string, { role: string; public_ipv4: string }> {
  const dir = path.join("cdktf.out", "stacks", stackName);
  const output = spawnSync("terraform", [`-chdir=${dir}`, "output", "-json", "servers"], { encoding: "utf8" });
  if (output.status !== 0) {
    throw new SettingsError(
      `the servers come from Terraform's state: \`terraform -chdir=${dir} output -json servers\` failed (deploy first, with the same settings): ${(output.stderr || "").trim().split("\n").pop()}`,
    );
  }
  return JSON.parse(output.stdout) as Record<string, { role: string; public_ipv4: string }>;
}

async function main(args: readonly string[]): Promise<number> {
  try {
    const stacks = loadStacks(process.env);
    const stack = args[0] ? stacks.find((s) => s.name === args[0]) : stacks.length === 1 ? stacks[0] : undefined;
    if (!stack)
      throw new SettingsError(`rollout needs one of the stacks: ${stacks.map((s) => s.name).join(", ")} (npm run rollout -- <stack>)`);
    const servers = serversFromState(stack.name);
    const lbs = Object.values(servers)
      .filter((s) => s.role === "load-balancer")
      .map((s) => s.public_ipv4);
    const webs = Object.entries(servers)
      .filter(([name, s]) => s.role.startsWith("web") && haproxyServerName(name) !== undefined)
      .map(([name, s]) => ({ name: haproxyServerName(name)!, host: s.public_ipv4 }));
    if (lbs.length === 0 || webs.length === 0) throw new SettingsError("rollout: the state has no load balancer or no web server");
    const lines = await rollout(sshTarget(lbs, webs), releaseFromSettings(stack.settings), (line) => console.log(`rollout: ${line}`));
    console.log(`rollout: done, ${lines.length} web server(s) on the new release`);
    return 0;
  } catch (error) {
    if (error instanceof SettingsError || (error instanceof Error && error.message.startsWith("rollout"))) {
      console.error(error.message.startsWith("rollout") ? error.message : `error: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`rollout: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
