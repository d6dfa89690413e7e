/**
 * `npm run restore -- --list [<stack>]` and
 * `npm run restore -- --to <time|latest> --identity <file> [--yes] [<stack>]`:
 * brings the database back to a point in time from the backup bucket.
 *
 * The operator's machine decrypts: every object comes from the bucket
 * through the named primary (`foobar-restore fetch`, over SSH, still
 * encrypted), through `age -d` here, and back to it (`foobar-restore
 * stage-*`), so the identity never leaves this machine. In order:
 *
 * 1. check the identity against the stack's recipient, and lock (one restore at a time);
 * 2. plan (tools/backup-plan.ts) and stage the binary logs: the site is untouched so far;
 * 3. show the plan and the last transaction it will replay, and ask;
 * 4. stage the base backup; freeze every web server (agent and backups stopped, MySQL read-only);
 * 5. on the primary: set the data directory aside, put the base in, replay the logs to the time;
 * 6. the primary's agent promotes it by force, every other server's rebuilds it with CLONE;
 * 7. mark the restore in the bucket (a new timeline) and take a base backup of the restored data.
 *
 * The lab runs the same code (`lab.restore`).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as readline from "node:readline/promises";

import { loadStacks } from "../environments";
import { SettingsError } from "../settings";
import { BucketObject, describePlan, formatStamp, planRestore, readBucket, RestorePlanError, timelines } from "./backup-plan";
import { haproxyServerName, RemoteResult, serversFromState, shellQuote } from "./rollout";

/** How the restore reaches the web servers. */
export interface RestoreTarget {
  /** The web servers by label (`web-01`); `primary` is the one `FOOBAR_DB_PRIMARY` names. */
  readonly webServers: readonly string[];
  readonly primary: string;
  /** Runs a bash script as root on a web server. */
  run(name: string, script: string): RemoteResult;
  /** The command line that runs `script` as root on a web server (its stdin and stdout are the pipe's). */
  command(name: string, script: string): readonly string[];
}

export interface RestoreOptions {
  readonly until: Date | "latest";
  /** The age identity file (`AGE-SECRET-KEY-1…`), on this machine. */
  readonly identity: string;
  /** Ask nothing. */
  readonly yes: boolean;
  /** Asks the operator to go on; resolves true for yes. */
  readonly confirm?: (question: string) => Promise<boolean>;
  readonly progress: (line: string) => void;
}

/** Thrown for a restore that stops: one line saying why; the site is as the last line printed says. */
export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RestoreError";
  }
}

const STEP = "/usr/local/sbin/foobar-restore";

function step(target: RestoreTarget, name: string, args: string, what: string): string {
  const result = target.run(name, `${STEP} ${args}`);
  if (result.status !== 0) {
    throw new RestoreError(
      `${what} on ${name} failed: ${(result.stderr || result.stdout).trim().split("\n").pop() ?? `exit ${result.status}`}`,
    );
  }
  return result.stdout;
}

/** Reads the bucket's listing through a web server. */
export function listBucket(target: RestoreTarget): BucketObject[] {
  const out = step(target, target.primary, "list", "listing the backup bucket");
  return JSON.parse(out) as BucketObject[];
}

/** `--list`: the recovery window of every history in the bucket, newest last, and the bases. */
export function describeBucket(objects: readonly BucketObject[], now: Date): string[] {
  const contents = readBucket(objects);
  const age = (date?: Date) => (date ? `${Math.round((now.getTime() - date.getTime()) / 1000)} s ago` : "never");
  const lines: string[] = [];
  timelines(contents).forEach((t, index, all) => {
    const name = index === all.length - 1 ? "current history" : `history ${index + 1} (before a restore)`;
    lines.push(
      t.oldest
        ? `${name}: restorable from ${t.oldest.toISOString()} to ${t.newest!.toISOString()}`
        : `${name}: not restorable (no base backup yet)`,
    );
  });
  const current = timelines(contents).pop()!;
  const newestBase = current.bases[current.bases.length - 1];
  const newestLog = current.binlogs[current.binlogs.length - 1];
  lines.push(`newest base backup: ${newestBase ? `${newestBase.key}, finished ${age(newestBase.finished)}` : "none"}`);
  lines.push(`newest archived binary log: ${newestLog ? `${newestLog.key}, closed ${age(newestLog.closed)}` : "none"}`);
  lines.push(`base backups: ${contents.bases.length}, binary logs: ${contents.binlogs.length}, restores: ${contents.restores.length}`);
  if (contents.unknown.length) lines.push(`objects not made by this stack: ${contents.unknown.length} (left alone)`);
  return lines;
}

/** Streams one object from the bucket, decrypted here, into a staging step on `host`. */
function stage(target: RestoreTarget, host: string, identity: string, key: string, into: string): void {
  const source = target
    .command(host, `${STEP} fetch ${shellQuote(key)}`)
    .map(shellQuote)
    .join(" ");
  const sink = target.command(host, `${STEP} ${into}`).map(shellQuote).join(" ");
  const result = spawnSync("bash", ["-o", "pipefail", "-c", `${source} | age -d -i ${shellQuote(identity)} | ${sink}`], {
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.status !== 0) {
    // The first line that says what went wrong (age adds a line asking for reports after its error).
    const lines = (result.stderr || "").trim().split("\n").filter(Boolean);
    const cause = lines.find((line) => /error/i.test(line)) ?? lines.pop() ?? `exit ${result.status}`;
    throw new RestoreError(`could not fetch, decrypt and stage ${key}: ${cause}`);
  }
}

async function waitFor(what: string, seconds: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!check()) {
    if (Date.now() > deadline) throw new RestoreError(`${what} did not happen within ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

const sqlValue = (target: RestoreTarget, name: string, query: string) =>
  target.run(name, `mysql --batch --skip-column-names --execute=${shellQuote(query)}`).stdout.trim();

/** The recipient an identity file decrypts for, or a RestoreError saying what is wrong with it. */
export function identityRecipient(identity: string): string {
  if (!fs.existsSync(identity)) throw new RestoreError(`the identity file ${identity} does not exist`);
  const result = spawnSync("age-keygen", ["-y", identity], { encoding: "utf8" });
  if (result.error) throw new RestoreError(`age-keygen is needed to read the identity (apt install age): ${result.error.message}`);
  if (result.status !== 0) throw new RestoreError(`${identity} is not an age identity file: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** What every restore does first, on `host`, before anything changes: the identity, the lock, the plan, the logs staged. */
async function prepare(target: RestoreTarget, host: string, options: RestoreOptions) {
  const say = options.progress;
  const recipient = identityRecipient(options.identity);
  const theirs = step(target, host, "recipient", "reading the stack's recipient").trim();
  if (recipient !== theirs) {
    throw new RestoreError(`the identity ${options.identity} is for ${recipient}, but the backups are encrypted to ${theirs}`);
  }
  const id = `${formatStamp(new Date())}-${process.pid}`;
  step(target, host, `lock ${id}`, "taking the restore lock");
  try {
    const plan = planRestore(readBucket(listBucket(target)), options.until);
    const running = sqlValue(target, host, "SELECT VERSION()").split("-")[0] ?? "";
    const series = (version: string) => version.split(".").slice(0, 2).join(".");
    if (series(running) !== series(plan.base.mysqlVersion)) {
      throw new RestoreError(
        `the base backup is from MySQL ${plan.base.mysqlVersion}, ${host} runs ${running}: restore onto a ${series(plan.base.mysqlVersion)} server`,
      );
    }
    for (const line of describePlan(plan)) say(line);
    for (const binlog of plan.binlogs) {
      stage(target, host, options.identity, binlog.key, `stage-binlog ${id} ${shellQuote(binlog.key.replace(/\//g, "_"))}`);
    }
    const until = plan.until === "latest" ? "latest" : plan.until.toISOString();
    say(`last transaction replayed: ${step(target, host, `last ${id} ${until}`, "reading the last transaction").trim()}`);
    return { id, plan, until, unlock: () => target.run(host, `${STEP} unlock ${id}`) };
  } catch (error) {
    target.run(host, `${STEP} unlock ${id}`);
    throw error;
  }
}

/** Runs a whole restore; returns the figures (seconds). */
export async function restore(target: RestoreTarget, options: RestoreOptions): Promise<Record<string, number>> {
  const say = options.progress;
  let started = Date.now();
  const { id, plan, until, unlock } = await prepare(target, target.primary, options);
  try {
    const question = `restore ${target.webServers.join(", ")} to this point? The site is read-only until it is done`;
    if (!options.yes && !(await (options.confirm ?? (() => Promise.resolve(false)))(question))) {
      throw new RestoreError("not confirmed: nothing changed (the staged files are on the primary's volume)");
    }
    const figures: Record<string, number> = {};
    stage(target, target.primary, options.identity, plan.base.key, `stage-base ${id}`);
    figures.stageSeconds = (Date.now() - started) / 1000;
    say(`staged on ${target.primary} in ${figures.stageSeconds.toFixed(1)} s`);

    started = Date.now();
    const frozen = new Date();
    for (const name of target.webServers) step(target, name, "freeze", "freezing");
    say(`froze ${target.webServers.join(", ")}: the site is read-only`);
    say(step(target, target.primary, `swap ${id}`, "putting the base backup in place").trim() || "the base backup is in place");
    step(target, target.primary, `replay ${id} ${until}`, "replaying the binary logs");
    figures.replaySeconds = (Date.now() - started) / 1000;
    say(`restored ${target.primary}: ${sqlValue(target, target.primary, "SELECT REPLACE(@@GLOBAL.gtid_executed, '\\n', '')")}`);
    step(target, target.primary, "primary", "starting the primary's agent");
    await waitFor(
      `${target.primary} becoming writable`,
      120,
      () => sqlValue(target, target.primary, "SELECT @@GLOBAL.super_read_only") === "0",
    );
    figures.writableSeconds = (Date.now() - started) / 1000;
    say(`${target.primary} is the writable primary, ${figures.writableSeconds.toFixed(1)} s after the freeze`);
    const others = target.webServers.filter((name) => name !== target.primary);
    for (const name of others) step(target, name, "rebuild", "starting the rebuild");
    for (const name of others) {
      await waitFor(
        `${name} rebuilding and replicating`,
        1800,
        () => sqlValue(target, name, "SELECT GROUP_CONCAT(SERVICE_STATE) FROM performance_schema.replication_applier_status") === "ON",
      );
      say(`${name} rebuilt from ${target.primary} and replicating`);
    }
    figures.rebuiltSeconds = (Date.now() - started) / 1000;
    step(target, target.primary, `mark ${formatStamp(frozen)}--${formatStamp(new Date())}`, "marking the restore in the bucket");
    step(target, target.primary, "base", "starting a base backup of the restored data");
    say(
      `done in ${figures.rebuiltSeconds.toFixed(1)} s from the freeze; a base backup of the restored data is being taken on ${target.primary}`,
    );
    return figures;
  } finally {
    unlock();
  }
}

/**
 * A restore beside the site: the base and the logs to the time, in a scratch MySQL on a replica (the primary when
 * there is none), on its own socket; the site is never touched. Returns where it is.
 */
export async function restoreBeside(target: RestoreTarget, options: RestoreOptions): Promise<{ host: string; socket: string; id: string }> {
  const host = target.webServers.find((name) => name !== target.primary) ?? target.primary;
  const { id, plan, until, unlock } = await prepare(target, host, options);
  try {
    stage(target, host, options.identity, plan.base.key, `stage-base ${id}`);
    const socket = step(target, host, `beside ${id} ${until}`, "starting the scratch MySQL").trim().split("\n").pop()!;
    options.progress(`a scratch MySQL on ${host} holds the data as of ${until}: \`mysql --socket=${socket} foobar\` there (as root)`);
    options.progress(`when done: \`${STEP} beside-stop ${id}\` on ${host}; its files stay in ${socket.replace(/\/run\/mysqld.sock$/, "")}`);
    return { host, socket, id };
  } finally {
    unlock();
  }
}

/** The command-line arguments: `--list`, or `--to <time|latest>` with `--identity <file>`, `--yes`; and a stack. */
export interface RestoreArguments {
  list: boolean;
  beside: boolean;
  until?: Date | "latest";
  identity?: string;
  yes: boolean;
  stack?: string;
}

export function parseArguments(args: readonly string[]): RestoreArguments {
  const parsed: RestoreArguments = { list: false, beside: false, yes: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--list") parsed.list = true;
    else if (arg === "--yes") parsed.yes = true;
    else if (arg === "--beside") parsed.beside = true;
    else if (arg === "--to" || arg === "--identity") {
      const value = args[++i];
      if (value === undefined) throw new RestoreError(`${arg} needs a value`);
      if (arg === "--identity") parsed.identity = value;
      else if (value === "latest") parsed.until = "latest";
      else {
        const time = /Z$|[+-]\d{2}:\d{2}$/.test(value) ? new Date(value) : new Date(NaN);
        if (Number.isNaN(time.getTime()))
          throw new RestoreError(`--to takes a time with its zone, such as 2026-12-02T10:03:00Z, or latest; got "${value}"`);
        parsed.until = time;
      }
    } else if (arg.startsWith("--"))
      throw new RestoreError(`unknown option ${arg} (restore takes --list, --to, --identity, --yes, --beside)`);
    else if (parsed.stack === undefined) parsed.stack = arg;
    else throw new RestoreError(`one stack at most, got ${parsed.stack} and ${arg}`);
  }
  if (!parsed.list && parsed.until === undefined)
    throw new RestoreError('restore needs --list, or --to <time|latest> (see docs/database.md, "Backups")');
  return parsed;
}

/** Over SSH from this machine: `ssh root@<address> bash -c '<script>'`. */
function sshTarget(webServers: readonly { name: string; host: string }[], primary: string): RestoreTarget {
  const hostOf = (name: string) => webServers.find((w) => w.name === name)!.host;
  const command = (name: string, script: string) => [
    "ssh",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    `root@${hostOf(name)}`,
    `bash -c ${shellQuote(script)}`,
  ];
  return {
    webServers: webServers.map((w) => w.name),
    primary,
    command,
    run: (name, script) => {
      const [program, ...args] = command(name, script);
      const result = spawnSync(program!, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
      return { status: result.status ?? 255, stdout: result.stdout ?? "", stderr: result.stderr ?? result.error?.message ?? "" };
    },
  };
}

/** Runs the command line against `target`: what `npm run restore` and the lab share. */
export async function restoreCommand(target: RestoreTarget, args: readonly string[], progress: (line: string) => void): Promise<number> {
  const parsed = parseArguments(args);
  if (parsed.list) {
    for (const line of describeBucket(listBucket(target), new Date())) progress(line);
    return 0;
  }
  let identity = parsed.identity;
  if (identity === undefined) {
    if (!process.stdin.isTTY)
      throw new RestoreError("--identity <file> is needed (the age identity whose recipient the backups are encrypted to)");
    const prompt = readline.createInterface({ input: process.stdin, output: process.stdout });
    identity = (await prompt.question("age identity file: ")).trim();
    prompt.close();
  }
  const confirm = async (question: string) => {
    if (!process.stdin.isTTY) return false;
    const prompt = readline.createInterface({ input: process.stdin, output: process.stdout });
    const answer = await prompt.question(`${question} [type yes] `);
    prompt.close();
    return answer.trim() === "yes";
  };
  const options = { until: parsed.until!, identity, yes: parsed.yes, confirm, progress };
  if (parsed.beside) await restoreBeside(target, options);
  else await restore(target, options);
  return 0;
}

async function main(args: readonly string[]): Promise<number> {
  const parsed = parseArguments(args);
  const stacks = loadStacks(process.env);
  const stack = parsed.stack ? stacks.find((s) => s.name === parsed.stack) : stacks.length === 1 ? stacks[0] : undefined;
  if (!stack)
    throw new SettingsError(`restore needs one of the stacks: ${stacks.map((s) => s.name).join(", ")} (npm run restore -- --list <stack>)`);
  if ((stack.settings as { backupBucket?: string }).backupBucket === undefined)
    throw new SettingsError(`the stack ${stack.name} has no backups (FOOBAR_BACKUP_BUCKET is not set)`);
  const servers = serversFromState(stack.name);
  const webs = Object.entries(servers)
    .filter(([name, s]) => s.role.startsWith("web") && haproxyServerName(name) !== undefined)
    .map(([name, s]) => ({ name: haproxyServerName(name)!, host: s.public_ipv4 }));
  const primary = haproxyServerName(stack.settings.databasePrimary) ?? stack.settings.databasePrimary;
  if (!webs.some((w) => w.name === primary)) throw new SettingsError(`restore: the state has no web server ${primary} (FOOBAR_DB_PRIMARY)`);
  return restoreCommand(sshTarget(webs, primary), args, (line) => console.log(`restore: ${line}`));
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const known = error instanceof RestoreError || error instanceof RestorePlanError || error instanceof SettingsError;
      console.error(known ? `restore: ${(error as Error).message}` : error);
      process.exit(1);
    },
  );
}
