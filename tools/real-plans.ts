/**
 * Checks the change planner (`changes.ts`) against real Terraform: for every
 * row of `SAMPLE_CHANGES`, a state matching the settings before is made up
 * without any API (REAL-TERRAFORM.md, section 5), the settings after are
 * planned against it, and the resources Terraform would touch are compared
 * with what `planChanges` predicts.
 *
 * `TF_CLI_CONFIG_FILE=<terraformrc> npm run -s real-plans [-- --keep]`, with
 * a terraformrc whose filesystem mirror holds the providers (built offline).
 * Exit 1: a row disagrees; 2: Terraform or the providers are missing.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { FAILOVER_TOKEN_TERRAFORM_VARIABLE } from "../settings";
import { ChangeAction, planChanges, protectedVolumesAtRisk, ResourceChange, TerraformJson } from "./changes";
import { SAMPLE_CHANGES, SampleChange } from "./changes-table";
import {
  mergePlan,
  PlanJson,
  prepareConfig,
  ProviderSchemas,
  recordRefresh,
  resourceChangesOf,
  stateDocument,
  StateResource,
} from "./terraform-state";

/** What real Terraform plans for one resource. */
export interface RealChange {
  readonly address: string;
  readonly action: ChangeAction;
  /** The attribute paths that force a replacement (`replace_paths`). */
  readonly replacePaths: readonly (readonly (string | number)[])[];
  /** Terraform's `action_reason`, such as `replace_because_cannot_update`. */
  readonly reason?: string;
}

/** One row's real plan: the changes, and the resources Terraform refused to destroy (`prevent_destroy`). */
export interface RealPlan {
  readonly changes: readonly RealChange[];
  /** Addresses named by "Instance cannot be destroyed" errors; the changes are then those planned without the flag. */
  readonly refused: readonly string[];
  /** Any other error of the plan, word for word. */
  readonly failure?: string;
}

/**
 * The planner's word for a plan's `actions`, or undefined when nothing
 * happens to the resource (no-op, or a data source read).
 *
 * @throws Error for a combination this stack never produces (`["create","forget"]`: a replacement under `destroy = false`).
 */
export function actionOf(actions: readonly string[]): ChangeAction | undefined {
  const key = actions.join(",");
  if (key === "no-op" || key === "read") return undefined;
  if (key === "delete,create" || key === "create,delete") return "replace";
  if (key === "create" || key === "delete" || key === "update" || key === "forget") return key;
  throw new Error(`unexpected plan actions [${key}]`);
}

/** The resource changes of a saved plan, with what forces each replacement. */
export function realChanges(plan: PlanJson): RealChange[] {
  return resourceChangesOf(plan)
    .flatMap((c): RealChange[] => {
      const action = actionOf(c.change.actions);
      return action ? [{ address: c.address, action, replacePaths: c.change.replace_paths ?? [], reason: c.action_reason }] : [];
    })
    .sort((a, b) => a.address.localeCompare(b.address));
}

/** One line of `terraform plan -json`: only the diagnostics are read. */
interface JsonLogLine {
  readonly type?: string;
  readonly diagnostic?: { readonly severity: string; readonly summary: string; readonly detail?: string };
}

/** The error diagnostics of `terraform plan -json`'s output, as `summary: detail`. */
export function planErrors(jsonLines: string): string[] {
  return jsonLines
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as JsonLogLine)
    .filter((line) => line.type === "diagnostic" && line.diagnostic?.severity === "error")
    .map((line) => `${line.diagnostic!.summary}: ${line.diagnostic!.detail ?? ""}`.replace(/\s+/g, " ").trim());
}

/** The addresses in "Instance cannot be destroyed" errors: the resources `prevent_destroy` protects from this plan. */
export function refusedAddresses(errors: readonly string[]): string[] {
  return errors
    .flatMap((error) => /^Instance cannot be destroyed: Resource (\S+) has lifecycle\.prevent_destroy set/.exec(error)?.[1] ?? [])
    .sort();
}

/** The `name` of each resource address in a configuration (the volume names `protectedVolumesAtRisk` returns). */
function namesOf(stack: TerraformJson, addresses: readonly string[]): string[] {
  return addresses.map((address) => {
    const [type, name] = [address.slice(0, address.indexOf(".")), address.slice(address.indexOf(".") + 1)];
    return String(stack.resource?.[type]?.[name]?.name ?? address);
  });
}

/**
 * Where the planner and Terraform differ for one row, in words (empty: they
 * agree): each address with a different action, each replacement whose
 * forcing attribute the planner does not name, and the volumes Terraform
 * refuses to destroy against those `protectedVolumesAtRisk` predicts.
 */
export function compareRow(before: TerraformJson, predicted: readonly ResourceChange[], real: RealPlan): string[] {
  if (real.failure !== undefined) return [`Terraform's plan failed: ${real.failure}`];
  const differences: string[] = [];
  const planned = new Map(predicted.map((c) => [c.address, c]));
  const actual = new Map(real.changes.map((c) => [c.address, c]));
  for (const address of [...new Set([...planned.keys(), ...actual.keys()])].sort()) {
    const mine = planned.get(address);
    const theirs = actual.get(address);
    const why = theirs?.reason ? ` (${theirs.reason})` : "";
    if (mine?.action !== theirs?.action) {
      differences.push(`${address}: planner ${mine?.action ?? "nothing"}, Terraform ${theirs?.action ?? "nothing"}${why}`);
    } else if (theirs?.action === "replace") {
      const unnamed = [...new Set(theirs.replacePaths.map((p) => String(p[0])))].filter((argument) => !mine!.arguments.includes(argument));
      if (unnamed.length > 0)
        differences.push(
          `${address}: Terraform replaces it for ${unnamed.join(", ")}, planner names ${mine!.arguments.join(", ") || "nothing"}`,
        );
    }
  }
  const expected = protectedVolumesAtRisk(before, predicted).sort();
  const refused = namesOf(before, real.refused).sort();
  if (expected.join() !== refused.join()) {
    differences.push(
      `Terraform refuses to destroy ${refused.join(", ") || "nothing"} (prevent_destroy), planner predicts ${expected.join(", ") || "nothing"}`,
    );
  }
  return differences;
}

/** How many resources a plan touches, per action. */
export function countActions(changes: readonly { readonly action: ChangeAction }[]): Record<ChangeAction, number> {
  const counts: Record<ChangeAction, number> = { create: 0, update: 0, replace: 0, delete: 0, forget: 0 };
  for (const change of changes) counts[change.action] += 1;
  return counts;
}

/** A row as the table of changes (docs/day-two.md) names it: `FOOBAR_X=1`, or `FOOBAR_X=3 → FOOBAR_X=2`. */
export function rowLabel(sample: SampleChange): string {
  const settings = (variables: Readonly<Record<string, string>>) =>
    Object.entries(variables)
      .map(([name, value]) => `${name}=${value}`)
      .join(" + ");
  return sample.from ? `${settings(sample.from)} → ${settings(sample.variables)}` : settings(sample.variables);
}

/** One row's outcome, for the report. */
export interface RowResult {
  readonly label: string;
  readonly real: RealPlan;
  readonly differences: readonly string[];
}

/** What the docs' block says about one run. */
export interface RunSummary {
  /** `YYYY-MM-DD` */
  readonly date: string;
  readonly terraformVersion: string;
  /** `registry.terraform.io/digitalocean/digitalocean` → `2.71.0`, as `terraform version -json` selects them. */
  readonly providers: Readonly<Record<string, string>>;
  readonly rows: readonly RowResult[];
}

/** The markdown block for the docs: when, with what, how many rows agree, and what Terraform planned per row. */
export function markdownReport(run: RunSummary): string {
  const providers = Object.entries(run.providers).map(
    ([source, version]) => `${source.replace(/^registry\.terraform\.io\//, "")} ${version}`,
  );
  const agreeing = run.rows.filter((row) => row.differences.length === 0).length;
  const digitalocean = run.providers["registry.terraform.io/digitalocean/digitalocean"] ?? "?";
  const cell = (row: RowResult) => {
    const refused =
      row.real.refused.length > 0 ? `stops: prevent_destroy on ${row.real.refused.length} volume(s) (counts: the plan without it); ` : "";
    return `${refused}${row.differences.length === 0 ? "agrees" : `**differs**: ${row.differences.join("; ")}`}`.replace(/\|/g, "\\|");
  };
  return [
    `Checked on ${run.date} with Terraform ${run.terraformVersion}, ${providers.join(", ")}: providers built from source,`,
    "each state made up without any API (REAL-TERRAFORM.md, section 5), each row planned with `-refresh=false`.",
    "",
    "```sh",
    "TF_CLI_CONFIG_FILE=<terraformrc of the provider version> npm run -s real-plans",
    "```",
    "",
    `**${agreeing} of ${run.rows.length} rows agree** with digitalocean/digitalocean ${digitalocean}.`,
    "",
    "| Change | Create | Update | Replace | Delete | Forget | Terraform and the planner |",
    "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ...run.rows.map((row) => {
      const n = countActions(row.real.changes);
      return `| \`${row.label.replace(/\|/g, "\\|")}\` | ${n.create} | ${n.update} | ${n.replace} | ${n.delete} | ${n.forget} | ${cell(row)} |`;
    }),
  ].join("\n");
}

// ---- Running Terraform -------------------------------------------------------------------------

/** Thrown when Terraform or the providers are missing: exit code 2. */
class MissingTools extends Error {}

/** What every Terraform call gets: tokens shaped like DigitalOcean's, and an API URL where nothing answers. */
const NO_API_ENVIRONMENT = {
  CHECKPOINT_DISABLE: "1",
  DIGITALOCEAN_TOKEN: `dop_v1_${"0".repeat(64)}`,
  // A closed local port: a provider that tried to call DigitalOcean fails here instead.
  DIGITALOCEAN_API_URL: "http://127.0.0.1:9",
  [FAILOVER_TOKEN_TERRAFORM_VARIABLE]: `dop_v1_${"f".repeat(64)}`,
  TF_IN_AUTOMATION: "1",
};

/** Only what Terraform needs from the caller's environment: no token or TF_VAR_* of the operator's reaches it. */
function terraformEnvironment(): Record<string, string> {
  const kept = ["PATH", "HOME", "TMPDIR", "LANG", "TF_CLI_CONFIG_FILE"].filter((name) => process.env[name] !== undefined);
  return { ...Object.fromEntries(kept.map((name) => [name, process.env[name]!])), ...NO_API_ENVIRONMENT };
}

/** Runs `terraform <args>` in `dir`; a non-zero exit is the caller's to judge. */
function terraform(dir: string, args: readonly string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync("terraform", args, { cwd: dir, env: terraformEnvironment(), encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
  if (result.error) throw new MissingTools(`terraform could not run (${result.error.message}): install Terraform 1.7 or later`);
  return { status: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

/** Writes a configuration into `dir` (created if needed) and runs `terraform init`. */
function initFolder(dir: string, config: TerraformJson): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "cdk.tf.json"), JSON.stringify(config, null, 2));
  const init = terraform(dir, ["init", "-input=false", "-no-color"]);
  if (init.status !== 0) {
    const why = /Error: (.*)/.exec(init.stderr)?.[1] ?? init.stderr.trim();
    throw new MissingTools(
      `terraform init failed (${why}): set TF_CLI_CONFIG_FILE to a terraformrc whose filesystem mirror holds digitalocean/digitalocean and hashicorp/random 3.7.2 (REAL-TERRAFORM.md)`,
    );
  }
}

/** Replaces the configuration of an initialised folder (same providers: no new `init`). */
function rewriteConfig(dir: string, config: TerraformJson): void {
  fs.writeFileSync(path.join(dir, "cdk.tf.json"), JSON.stringify(config, null, 2));
}

/** Plans the folder's configuration against its state: the saved plan as JSON, or the errors. */
function plan(dir: string): { plan?: PlanJson; errors: string[] } {
  const planned = terraform(dir, ["plan", "-refresh=false", "-lock=false", "-out=tfplan", "-input=false", "-json"]);
  if (planned.status !== 0) {
    const errors = planErrors(planned.stdout);
    return { errors: errors.length > 0 ? errors : [planned.stderr.trim()] };
  }
  const shown = terraform(dir, ["show", "-json", "tfplan"]);
  if (shown.status !== 0) throw new Error(`terraform show failed in ${dir}: ${shown.stderr.trim()}`);
  return { plan: JSON.parse(shown.stdout) as PlanJson, errors: [] };
}

function planOrThrow(dir: string, what: string): PlanJson {
  const result = plan(dir);
  if (!result.plan) throw new Error(`${what}: terraform plan failed: ${result.errors.join("; ")}`);
  return result.plan;
}

function writeState(dir: string, state: ReadonlyMap<string, StateResource>, terraformVersion: string, lineage: string): void {
  fs.writeFileSync(path.join(dir, "terraform.tfstate"), JSON.stringify(stateDocument(state, terraformVersion, lineage), null, 2));
}

/** Enough for the known cases (two rounds); more means the state does not converge. */
const MAX_ROUNDS = 8;

/**
 * A state matching `stack`, built in `dir`: planned from nothing with the
 * lifecycle arguments stripped (every argument then has its planned value),
 * unknowns made up, then re-planned and merged until the configuration, with
 * its lifecycle intact, plans no change against it.
 *
 * Merging from the stripped configuration too resolves what `ignore_changes`
 * would hide: a pair's reserved IP records the droplet it was created on.
 */
function buildState(
  dir: string,
  stack: TerraformJson,
  version: string,
  schemas: ProviderSchemas,
): { state: Map<string, StateResource>; changesPerRound: number[] } {
  const stripped = prepareConfig(stack, version, ["ignore_changes", "prevent_destroy"]);
  const intact = prepareConfig(stack, version);
  let counter = 0;
  const next = () => ++counter;
  initFolder(dir, stripped);
  const first = planOrThrow(dir, "the plan from nothing");
  const lineage = randomUUID();
  let state = mergePlan(new Map(), first, schemas, next);
  const changesPerRound: number[] = [];
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    state = recordRefresh(state);
    writeState(dir, state, first.terraform_version, lineage);
    const again = planOrThrow(dir, `round ${round}`);
    changesPerRound.push(resourceChangesOf(again).length);
    if (resourceChangesOf(again).length > 0) {
      state = mergePlan(state, again, schemas, next);
      continue;
    }
    rewriteConfig(dir, intact);
    const check = planOrThrow(dir, `round ${round} (lifecycle intact)`);
    if (resourceChangesOf(check).length === 0) return { state, changesPerRound };
    changesPerRound.push(resourceChangesOf(check).length);
    state = mergePlan(state, check, schemas, next);
    rewriteConfig(dir, stripped);
  }
  throw new Error(`the made-up state in ${dir} still plans changes after ${MAX_ROUNDS} rounds (--keep keeps it)`);
}

/** Plans B in its own folder against A's state; a `prevent_destroy` refusal is re-planned without the flag to see the rest. */
function planRow(dir: string, after: TerraformJson, version: string, stateFile: string): RealPlan {
  initFolder(dir, prepareConfig(after, version));
  fs.copyFileSync(stateFile, path.join(dir, "terraform.tfstate"));
  const first = plan(dir);
  if (first.plan) return { changes: realChanges(first.plan), refused: [] };
  const refused = refusedAddresses(first.errors);
  if (refused.length === 0 || refused.length !== first.errors.length) return { changes: [], refused: [], failure: first.errors.join("; ") };
  rewriteConfig(dir, prepareConfig(after, version, ["prevent_destroy"]));
  const unprotected = plan(dir);
  if (!unprotected.plan) return { changes: [], refused, failure: unprotected.errors.join("; ") };
  return { changes: realChanges(unprotected.plan), refused };
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** What the probe folder tells: the versions `terraform init` selected and the providers' schemas. */
interface Providers {
  readonly terraformVersion: string;
  /** `registry.terraform.io/digitalocean/digitalocean` → `2.71.0` */
  readonly providers: Record<string, string>;
  readonly schemas: ProviderSchemas;
}

/** Initialises `dir` with the stack's own version constraint: whichever version the mirror holds is the one under test. */
function probeProviders(dir: string, stack: TerraformJson): Providers {
  initFolder(dir, prepareConfig(stack, undefined));
  const shown = JSON.parse(terraform(dir, ["version", "-json"]).stdout) as {
    terraform_version: string;
    provider_selections: Record<string, string>;
  };
  const schemas = JSON.parse(terraform(dir, ["providers", "schema", "-json"]).stdout) as ProviderSchemas;
  return { terraformVersion: shown.terraform_version, providers: shown.provider_selections, schemas };
}

/** Synthesizes the stack from FOOBAR_* variables into `outdir`, from the repository (FOOBAR_APP_DIR is relative to it). */
function synthesizer(outdir: string): (variables: Readonly<Record<string, string>>) => TerraformJson {
  process.chdir(path.resolve(__dirname, ".."));
  // Required here, not imported: the tests of the pure parts above need not load every construct.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { synthesizeStack } = require("../lab/emulations/synth") as typeof import("../lab/emulations/synth");
  // A pair's synthesis needs the failover token; Terraform gets the same one as TF_VAR_failover_token.
  const token = { [FAILOVER_TOKEN_TERRAFORM_VARIABLE]: NO_API_ENVIRONMENT[FAILOVER_TOKEN_TERRAFORM_VARIABLE] };
  return (variables) => synthesizeStack(outdir, { ...variables, ...token }, {}) as TerraformJson;
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(0)} s`;

/** Builds the state for `stack` in `dir` and says how it converged. */
function stateFor(dir: string, stack: TerraformJson, label: string, version: string, schemas: ProviderSchemas): string {
  const started = Date.now();
  const built = buildState(dir, stack, version, schemas);
  const rounds = built.changesPerRound;
  log(
    `state for ${label}: ${built.state.size} resources; A → A plans no change after ${rounds.filter((n) => n > 0).length} merge round(s) ` +
      `(resources changed per re-plan: ${rounds.join(", ")}; ${seconds(started)})`,
  );
  return path.join(dir, "terraform.tfstate");
}

function run(root: string): RowResult[] {
  const terraformrc = process.env.TF_CLI_CONFIG_FILE;
  if (!terraformrc || !fs.existsSync(terraformrc))
    throw new MissingTools(
      "set TF_CLI_CONFIG_FILE to a terraformrc whose filesystem mirror holds digitalocean/digitalocean and hashicorp/random 3.7.2 (REAL-TERRAFORM.md)",
    );
  const synth = synthesizer(path.join(root, "synth"));
  const { terraformVersion, providers, schemas } = probeProviders(path.join(root, "probe"), synth({}));
  const version = providers["registry.terraform.io/digitalocean/digitalocean"]!;
  log(`Terraform ${terraformVersion}, digitalocean/digitalocean ${version}: ${SAMPLE_CHANGES.length} rows, in ${root}`);

  // One state per distinct `from`: most rows start from the defaults.
  const states = new Map<string, { stack: TerraformJson; file: string }>();
  const rows: RowResult[] = [];
  for (const [i, sample] of SAMPLE_CHANGES.entries()) {
    const key = JSON.stringify(sample.from ?? {});
    if (!states.has(key)) {
      const stack = synth(sample.from ?? {});
      const label = sample.from ? rowLabel({ variables: sample.from }) : "the defaults";
      states.set(key, { stack, file: stateFor(path.join(root, `state-${states.size + 1}`), stack, label, version, schemas) });
    }
    const before = states.get(key)!;
    const label = rowLabel(sample);
    log(`row ${i + 1}/${SAMPLE_CHANGES.length}: ${label}`);
    const after = synth({ ...sample.from, ...sample.variables });
    const real = planRow(path.join(root, `row-${String(i + 1).padStart(2, "0")}`), after, version, before.file);
    const differences = compareRow(before.stack, planChanges(before.stack, after), real);
    rows.push({ label, real, differences });
    console.log(`${String(i + 1).padStart(2)}. ${label}: ${differences.length === 0 ? "agree" : differences.join("; ")}`);
  }
  console.log(`\n${markdownReport({ date: new Date().toISOString().slice(0, 10), terraformVersion, providers, rows })}`);
  return rows;
}

function main(): void {
  const keep = process.argv.includes("--keep");
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "real-plans-"));
  const started = Date.now();
  let code: number;
  try {
    const rows = run(root);
    const disagreeing = rows.filter((row) => row.differences.length > 0).length;
    log(
      disagreeing === 0
        ? `all ${rows.length} rows agree (${seconds(started)})`
        : `${disagreeing} of ${rows.length} rows disagree (${seconds(started)})`,
    );
    code = disagreeing === 0 ? 0 : 1;
  } catch (error) {
    code = error instanceof MissingTools ? 2 : 1;
    log(`real-plans: ${(error as Error).message}`);
  } finally {
    if (keep) log(`kept ${root}`);
    else fs.rmSync(root, { recursive: true, force: true });
  }
  process.exit(code);
}

if (require.main === module) main();
