/**
 * Which stacks the app synthesizes, and each one's settings.
 *
 * Without `FOOBAR_ENVIRONMENTS` there is one stack, `foobar`, configured by
 * the shell's `FOOBAR_*` variables, exactly as before environments existed.
 *
 * With `FOOBAR_ENVIRONMENTS=staging,production` there is one stack per name,
 * `<project>-<name>`, and each takes its settings from `<name>.env` in
 * `FOOBAR_ENVIRONMENTS_DIR` and from nowhere else: what production is can be
 * read in one reviewed file, never the accident of a variable left in a shell.
 * A stack setting in the shell is then an error, and so is anything in a file
 * that is not a `FOOBAR_*` stack setting (credentials stay in the shell).
 */
import * as fs from "node:fs";
import * as path from "node:path";

import * as ipaddr from "ipaddr.js";

import {
  Environment,
  LAB_VARIABLE_PREFIX,
  loadSettings,
  parseVariable,
  quoted,
  rejectUnknownVariables,
  SETTINGS,
  Settings,
  SettingsError,
  VARIABLE_PREFIX,
} from "./settings";

/** The single stack's name when no environment is configured: `cdktf.out/stacks/foobar/`, `terraform.foobar.tfstate`. */
export const DEFAULT_STACK_NAME = "foobar";

/** One stack the app synthesizes. */
export interface StackPlan {
  /** The stack's name: `foobar`, or `<project>-<environment>`. */
  readonly name: string;
  readonly settings: Settings;
}

/** The variables only the shell may set: they choose the stacks. */
const APP_VARIABLES = new Set(
  Object.values(SETTINGS)
    .filter((declaration) => declaration.scope === "app")
    .map((declaration) => declaration.variable),
);

/**
 * Reads one environment file: `NAME=value` lines, `#` comments and blank
 * lines; a value may be wrapped in one pair of single or double quotes.
 *
 * @throws SettingsError naming the file and line of anything else.
 */
export function readEnvironmentFile(file: string): Record<string, string> {
  const variables: Record<string, string> = {};
  fs.readFileSync(file, "utf8")
    .split(/\r?\n/)
    .forEach((line, index) => {
      const where = `${file} line ${index + 1}`;
      if (/^\s*(#|$)/.test(line)) return;
      const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (!match) throw new SettingsError(`${where} must be NAME=value, a # comment or blank, got ${quoted(line)}`);
      const [, name, raw] = match;
      if (!name.startsWith(VARIABLE_PREFIX) || name.startsWith(LAB_VARIABLE_PREFIX) || APP_VARIABLES.has(name)) {
        throw new SettingsError(
          `${where} sets ${name}: an environment file holds FOOBAR_* stack settings only ` +
            `(credentials and ${[...APP_VARIABLES].join(", ")} stay in the shell)`,
        );
      }
      if (name in variables) throw new SettingsError(`${where} sets ${name} a second time`);
      const quotedValue = /^(["'])(.*)\1$/.exec(raw.trim());
      variables[name] = quotedValue ? quotedValue[2] : raw;
    });
  return variables;
}

/** Throws when two environments would claim the same DigitalOcean resources. */
function rejectSharedResources(stacks: readonly StackPlan[], dir: string): void {
  const v = { domain: SETTINGS.domain.variable, vpc: SETTINGS.vpcIpRange.variable };
  stacks.forEach((stack, i) => {
    for (const other of stacks.slice(0, i)) {
      const [a, b] = [other.settings.environment, stack.settings.environment];
      if (stack.settings.domain === other.settings.domain) {
        throw new SettingsError(
          `${v.domain} is ${quoted(stack.settings.domain)} in both ${a} and ${b}: a DigitalOcean zone exists once, ` +
            `give each environment its own domain in ${dir}/<name>.env`,
        );
      }
      const ranges = [other, stack].map((s) => ipaddr.IPv4.parseCIDR(s.settings.vpcIpRange));
      if (ranges[0][0].match(ranges[1]) || ranges[1][0].match(ranges[0])) {
        throw new SettingsError(
          `${v.vpc} of ${b} (${stack.settings.vpcIpRange}) overlaps ${a}'s (${other.settings.vpcIpRange}): ` +
            `give each environment its own range in ${dir}/<name>.env`,
        );
      }
    }
  });
}

/**
 * The stacks to synthesize from `env` (the shell).
 *
 * @throws SettingsError with a one-line message for the first problem.
 */
export function loadStacks(env: Environment = process.env): StackPlan[] {
  rejectUnknownVariables(env);
  const names = parseVariable(SETTINGS.environments, env[SETTINGS.environments.variable]);
  if (names.length === 0) return [{ name: DEFAULT_STACK_NAME, settings: loadSettings(env) }];

  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate) throw new SettingsError(`${SETTINGS.environments.variable} names ${quoted(duplicate)} twice`);
  const inShell = Object.keys(env)
    .filter((name) => name.startsWith(VARIABLE_PREFIX) && !name.startsWith(LAB_VARIABLE_PREFIX) && !APP_VARIABLES.has(name))
    .sort();
  if (inShell.length > 0) {
    throw new SettingsError(
      `${inShell[0]} is set in the shell, but with ${SETTINGS.environments.variable} every stack setting comes ` +
        `from its environment's file: move it into each <name>.env that needs it`,
    );
  }

  const dir = parseVariable(SETTINGS.environmentsDir, env[SETTINGS.environmentsDir.variable]);
  const stacks = names.map((environment): StackPlan => {
    const file = path.join(dir, `${environment}.env`);
    if (!fs.existsSync(file)) {
      throw new SettingsError(
        `${SETTINGS.environments.variable} names ${quoted(environment)}, but ${file} does not exist: ` +
          `create it with that environment's FOOBAR_* settings`,
      );
    }
    let settings: Settings;
    try {
      settings = { ...loadSettings(readEnvironmentFile(file)), environment };
    } catch (error) {
      if (error instanceof SettingsError && !error.message.startsWith(file)) throw new SettingsError(`${file}: ${error.message}`);
      throw error;
    }
    return { name: `${settings.project}-${environment}`, settings };
  });
  rejectSharedResources(stacks, dir);
  return stacks;
}
