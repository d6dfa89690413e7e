import { Testing } from "cdktf";
import * as YAML from "yaml";
import { FoobarStack } from "../constructs";
import { DEFAULT_SETTINGS, Settings } from "../settings";

/** The synthesized Terraform JSON of a whole stack. */
export interface StackJson {
  readonly terraform: Record<string, any>;
  readonly resource: Record<string, Record<string, Record<string, any>>>;
  readonly output: Record<string, { value: unknown; sensitive?: boolean }>;
  readonly [key: string]: unknown;
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

export function parseCloudConfig(userData: string): ParsedCloudConfig {
  expect(userData.startsWith("#cloud-config\n")).toBe(true);
  return YAML.parse(userData) as ParsedCloudConfig;
}

/** The content of the file written at `path`; fails the test if there is none. */
export function fileAt(config: ParsedCloudConfig, path: string): string {
  const file = config.write_files.find((f) => f.path === path);
  if (!file) throw new Error(`user-data writes no ${path}; it writes ${config.write_files.map((f) => f.path).join(", ")}`);
  return file.content;
}
