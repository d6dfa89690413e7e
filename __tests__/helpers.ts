import { Testing } from "cdktf";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { format } from "util";

import { filesRunAtBoot, parseUserData } from "../cloud-init/cloud-config";
import { FoobarStack } from "../constructs";
import { synthesize } from "../main";
import { DEFAULT_SETTINGS, loadSettings, Settings } from "../settings";
import { TerraformJson } from "../tools/changes";
import { synthesisVariables } from "../tools/changes-table";

/** The synthesized Terraform JSON of a whole stack, loosely typed for assertions. */
export interface StackJson extends TerraformJson {
  readonly terraform: Record<string, any>;
  readonly resource: Record<string, Record<string, Record<string, any>>>;
  readonly output: Record<string, { value: unknown; sensitive?: boolean }>;
  readonly [key: string]: unknown;
}

/** Freezes `value` and everything in it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/**
 * Synthesizes the stack from FOOBAR_* variables, as `npx cdktf synth` would.
 * Each set of variables is synthesized once per test file (the planner's tests
 * ask many times for the same stacks): a stack depends only on the variables
 * and the files they name, which no test changes. It is frozen, so a planner
 * that changed a stack would throw, not hand on a changed one.
 */
const synthesized = new Map<string, TerraformJson>();
export function synthFromVariables(variables: Readonly<Record<string, string>> = {}): TerraformJson {
  const env = synthesisVariables(variables);
  const key = JSON.stringify(Object.entries(env).sort());
  if (!synthesized.has(key)) {
    synthesized.set(key, deepFreeze(JSON.parse(Testing.synth(new FoobarStack(Testing.app(), "test", loadSettings(env)))) as TerraformJson));
  }
  return synthesized.get(key)!;
}

/** Synthesizes the whole stack with the defaults, changed by `changes`. */
export function synthStack(changes: Partial<Settings> = {}): StackJson {
  const app = Testing.app();
  const stack = new FoobarStack(app, "test", { ...DEFAULT_SETTINGS, ...changes });
  return JSON.parse(Testing.synth(stack)) as StackJson;
}

/** The resources of one type, as a list of their arguments. */
export function resourcesOf(stack: StackJson, type: string): Record<string, any>[] {
  return Object.values(stack.resource[type] ?? {});
}

/** The droplet named `name` (lb-01, web-01, …). */
export function droplet(stack: StackJson, name: string): Record<string, any> {
  const found = resourcesOf(stack, "digitalocean_droplet").find((d) => d.name === name);
  if (!found) throw new Error(`no droplet named ${name}`);
  return found;
}

/** The Terraform address (`type.name`) of the resource whose arguments are `resource`. */
export function addressOf(stack: StackJson, type: string, resource: Record<string, any>): string {
  const entry = Object.entries(stack.resource[type] ?? {}).find(([, value]) => value === resource);
  if (!entry) throw new Error(`resource not found in ${type}`);
  return `${type}.${entry[0]}`;
}

/** A parsed `#cloud-config` document. */
export interface ParsedCloudConfig {
  packages: string[];
  write_files: { path: string; content: string; owner: string; permissions: string; defer?: boolean; encoding?: string }[];
  runcmd: (string | string[])[];
  users: unknown[];
  [key: string]: unknown;
}

/** The document cloud-init reads: the parts of the user-data merged. */
export function parseCloudConfig(userData: string): ParsedCloudConfig {
  expect(userData.startsWith("#cloud-config\n") || userData.startsWith("Content-Type: multipart/mixed;")).toBe(true);
  return parseUserData(userData) as ParsedCloudConfig;
}

/**
 * The synthesized stack as a reviewer reads it: each droplet's user-data
 * parsed, its packed files unpacked to their text (a snapshot of gzip in
 * base64 would show nothing of what changed).
 */
export function reviewable(stack: StackJson): StackJson {
  const copy = JSON.parse(JSON.stringify(stack));
  for (const resource of Object.values(copy.resource?.digitalocean_droplet ?? {}) as { user_data: unknown }[]) {
    const config = parseCloudConfig(resource.user_data as string);
    // A script bootcmd writes and runs (writeAndRun): its text in place of its packed form.
    for (const argv of (config.bootcmd ?? []) as string[][]) {
      const [file] = filesRunAtBoot([argv]);
      if (file) argv[4] = file.content;
    }
    resource.user_data = config;
  }
  return copy;
}

/** The content of the file written at `path`; fails the test if there is none. */
export function fileAt(config: ParsedCloudConfig, path: string): string {
  const file = config.write_files.find((f) => f.path === path);
  if (!file) throw new Error(`user-data writes no ${path}; it writes ${config.write_files.map((f) => f.path).join(", ")}`);
  return file.content;
}

/** What `npx cdktf synth` did: its exit status, its stderr, whether it left an output folder. */
export interface SynthRun {
  readonly status: number;
  readonly stderr: string;
  readonly wroteOutput: boolean;
  /** The output folder it was given. */
  readonly outdir: string;
}

/** A fresh output folder for one synthesis, not yet created, and the environment it runs with. */
function synthRunEnvironment(env: Readonly<Record<string, string>>): { outdir: string; env: Record<string, string | undefined> } {
  const outdir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "foobar-synth-")), "cdktf.out");
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("FOOBAR_")));
  return { outdir, env: { ...baseEnv, ...env, CDKTF_OUTDIR: outdir } };
}

/**
 * Runs `main.ts` as `npx cdktf synth` does, with `env` over this process's
 * environment minus every `FOOBAR_*` variable (the operator's own settings
 * must not leak in), into a fresh output folder. Runs in the background, so
 * several overlap.
 */
export function synthCli(env: Readonly<Record<string, string>>): Promise<SynthRun> {
  const { outdir, env: childEnv } = synthRunEnvironment(env);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["-r", "ts-node/register/transpile-only", "main.ts"],
      { cwd: path.resolve(__dirname, ".."), env: childEnv, encoding: "utf8" },
      (error, _stdout, stderr) =>
        resolve({ status: error ? (error.code as number) : 0, stderr, wroteOutput: fs.existsSync(outdir), outdir }),
    );
  });
}

/**
 * The same run as `synthCli`, in this process: `main.ts`'s own `synthesize`,
 * the code its process runs, with the same environment and a fresh output
 * folder. Its stderr is everything written to stderr meanwhile: its one line,
 * and any warning (console.error, console.warn, process.stderr). What only
 * the process adds (`process.exit`, loading the app) `synthCli` proves.
 */
export function synthInProcess(env: Readonly<Record<string, string>>): SynthRun {
  const { outdir, env: runEnv } = synthRunEnvironment(env);
  const stderr: string[] = [];
  const print = (...args: unknown[]) => void stderr.push(`${format(...args)}\n`);
  const spies = [
    jest.spyOn(console, "error").mockImplementation(print),
    jest.spyOn(console, "warn").mockImplementation(print),
    jest.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => stderr.push(String(chunk)) > 0),
  ];
  let status: number;
  try {
    status = synthesize(runEnv);
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return { status, stderr: stderr.join(""), wroteOutput: fs.existsSync(outdir), outdir };
}

/**
 * A folder of this test file's own, removed after its tests: its path, and
 * `write(name, content)`, which writes a file in it (making its folders) and
 * returns the file's path.
 */
export function scratchFolder(prefix: string): { readonly dir: string; write(name: string, content: string): string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    write(name, content) {
      const file = path.join(dir, name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
      return file;
    },
  };
}
