/**
 * The table of changes in docs/day-two.md: every stack setting changed once
 * from its default, what Terraform does to the resources (the planner,
 * changes.ts), what that costs with `cdktf deploy` (everything at once), and
 * what `npm run deploy` does instead (deploy-plan.ts: one droplet at a time).
 *
 * `npm run -s changes` prints it; a test keeps the docs equal to it.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { planChanges, protectedVolumesAtRisk, summarizeChanges, TerraformJson } from "./changes";
import { outdatedDroplets, planDeploy, summarizeDeploy } from "./deploy-plan";

/** A well-formed age recipient for the table's backup row (no one holds its identity). */
const SAMPLE_AGE_RECIPIENT = `age1${"q".repeat(58)}`;

/** What the table says of a setting that only the user-data carries. */
const USER_DATA_ONLY = "user-data only: new droplets get it; an existing one only when you replace it (`-replace`, see the runbook)";

/** One row of the table of changes: a setting changed from its default. */
export interface SampleChange {
  /** The settings deployed before the change. @default - the defaults */
  readonly from?: Readonly<Record<string, string>>;
  /** The variables set (one, or a pair that only works together). */
  readonly variables: Readonly<Record<string, string>>;
  /** Said in the last column, for what no resource shows. @default - none */
  readonly note?: string;
}

/**
 * Every stack setting changed once from its default, as the table of changes
 * shows it, and the removals that start from a bigger stack.
 * `FOOBAR_APP_DIR` points at the test fixture of an operator's own application.
 */
export const SAMPLE_CHANGES: readonly SampleChange[] = [
  { variables: { FOOBAR_PROJECT: "shop" } },
  { variables: { FOOBAR_DOMAIN: "example.org" } },
  { variables: { FOOBAR_HOST_NAME: "shop" } },
  { variables: { FOOBAR_APEX_RECORD: "true" } },
  { variables: { FOOBAR_DNS_TTL: "60" } },
  { variables: { FOOBAR_REGION: "ams3" } },
  { variables: { FOOBAR_VPC_IP_RANGE: "10.20.0.0/24" } },
  { variables: { FOOBAR_WEB_SERVERS: "3" } },
  { variables: { FOOBAR_WEB_SERVERS: "1" } },
  { from: { FOOBAR_WEB_SERVERS: "3" }, variables: { FOOBAR_WEB_SERVERS: "2" } },
  {
    variables: { FOOBAR_LOAD_BALANCERS: "2" },
    note: "the address stays on lb-01; lb-02 can become master once it has its certificate, which it gets through lb-01 once lb-01 runs the pair's configuration (replace lb-01 afterwards, see the runbook)",
  },
  {
    from: { FOOBAR_LOAD_BALANCERS: "2" },
    variables: { FOOBAR_LOAD_BALANCERS: "1" },
    note: "the address is assigned to lb-01 (where the pair's master already holds it)",
  },
  { variables: { FOOBAR_DB_PRIMARY: "web-02" }, note: "a promotion: see the runbook" },
  { variables: { FOOBAR_IMAGE: "ubuntu-26-04-x64" } },
  {
    variables: { FOOBAR_SIZE: "s-2vcpu-4gb" },
    note: "every droplet is powered off, resized and powered on, all at once: the site is down meanwhile",
  },
  {
    variables: { FOOBAR_ADMIN_CIDRS: "203.0.113.7/32" },
    note: "the cloud firewalls change at once; ufw on existing droplets keeps its old rules (new droplets get the new ones)",
  },
  { variables: { FOOBAR_SSH_KEYS: "12345678" }, note: "new droplets only: add the key to existing ones by hand" },
  { variables: { FOOBAR_DB_VOLUME_SIZE: "20" }, note: "the volumes grow in place; grow the filesystem with `resize2fs`" },
  { variables: { FOOBAR_ALLOW_DATA_LOSS: "true" }, note: "no resource changes: Terraform may delete the volumes from now on" },
  { variables: { FOOBAR_REPLICA_MAX_LAG: "30" }, note: USER_DATA_ONLY },
  {
    variables: { FOOBAR_APP_DIR: "__tests__/constructs/fixtures/own-app" },
    note: "`npm run rollout` takes it to every web server, one at a time",
  },
  {
    variables: { FOOBAR_APP_COMMAND: "/usr/bin/gunicorn --bind 127.0.0.1:8000 --workers 4 foobar_app:application" },
    note: "`npm run rollout` takes it to every web server, one at a time",
  },
  { variables: { FOOBAR_HTTPS: "false" }, note: USER_DATA_ONLY },
  { variables: { FOOBAR_ACME_DIRECTORY_URL: "https://acme-staging-v02.api.letsencrypt.org/directory" }, note: USER_DATA_ONLY },
  { variables: { FOOBAR_ACME_EMAIL: "ops@foobar.com" }, note: USER_DATA_ONLY },
  { variables: { FOOBAR_HSTS_MAX_AGE: "600" }, note: USER_DATA_ONLY },
  { variables: { FOOBAR_ALERT_EMAILS: "ops@foobar.com" } },
  { variables: { FOOBAR_STATE_BUCKET: "foobar-state" }, note: "no resource changes: the state moves (`terraform init -migrate-state`)" },
  {
    variables: { FOOBAR_BACKUP_BUCKET: "foobar-backups", FOOBAR_BACKUP_RECIPIENT: SAMPLE_AGE_RECIPIENT },
    note:
      "Terraform needs `SPACES_ACCESS_KEY_ID`/`SPACES_SECRET_ACCESS_KEY`; the web servers learn of the bucket from their user-data: " +
      USER_DATA_ONLY,
  },
];

/**
 * A pair of load balancers is synthesized only with its API token set; the
 * token is not in the synthesized configuration (Terraform takes it as a
 * variable), so any well-formed one plans the same.
 */
const SYNTHESIS_ONLY_TOKEN = `dop_v1_${"0".repeat(64)}`;

/** The variables a row's synthesis needs: its settings, and a token where it has a pair. */
export function synthesisVariables(variables: Readonly<Record<string, string>>): Record<string, string> {
  return Number(variables.FOOBAR_LOAD_BALANCERS ?? 1) > 1
    ? { FOOBAR_FAILOVER_TOKEN: SYNTHESIS_ONLY_TOKEN, ...variables }
    : { ...variables };
}

/** What `npm run deploy` does with a row's change, web-01 the primary and, in a running pair, lb-01 its master (the defaults). */
function deployCell(before: TerraformJson, after: TerraformJson): string {
  const running = Object.values(before.resource?.digitalocean_droplet ?? {}).map((config) => String(config.name));
  const changes = planChanges(before, after, outdatedDroplets(before, after));
  const roles = { primary: "web-01", ...(running.includes("lb-02") ? { masterLoadBalancer: "lb-01" } : {}) };
  return summarizeDeploy(planDeploy(after, changes, roles), protectedVolumesAtRisk(before, changes));
}

/** The table of changes (docs/day-two.md), from two syntheses per row: the settings before (the defaults, or the row's `from`) and after. */
export function changesTable(synth: (variables: Readonly<Record<string, string>>) => TerraformJson): string {
  const defaults = synth({});
  const cell = (items: readonly string[]) => (items.length > 0 ? items.join(", ") : "—");
  const settings = (variables: Readonly<Record<string, string>>) =>
    Object.entries(variables)
      .map(([name, value]) => `\`${name}=${value}\``)
      .join(" + ");
  const rows = SAMPLE_CHANGES.map((sample) => {
    const before = sample.from ? synth(synthesisVariables(sample.from)) : defaults;
    const after = synth(synthesisVariables({ ...sample.from, ...sample.variables }));
    const summary = summarizeChanges(before, after);
    const setting = sample.from ? `${settings(sample.from)} → ${settings(sample.variables)}` : settings(sample.variables);
    const touched = summary.replaced.length + summary.updated.length + summary.created.length + summary.deleted.length > 0;
    const costs = [...summary.costs, ...(sample.note ? [sample.note] : [])];
    if (costs.length === 0 && touched) costs.push("nothing: no data, address or certificate at stake, no downtime");
    const cells = [
      setting,
      cell(summary.replaced),
      cell(summary.updated),
      cell([...summary.created.map((c) => `+ ${c}`), ...summary.deleted.map((d) => `− ${d}`)]),
      cell(costs),
      deployCell(before, after),
    ];
    return `| ${cells.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
  });
  return [
    "| Change | Replaced | Updated in place | Created (+) / deleted (−) | What `cdktf deploy` costs (all at once) | What `npm run deploy` does |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

// `npm run -s changes`: print the table for docs/day-two.md.
if (require.main === module) {
  // Loaded only here: the planner itself (what the tests and the lab import) needs no synthesis.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { synthesizeStack } = require("../lab/emulations/synth") as typeof import("../lab/emulations/synth");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-changes-"));
  try {
    console.log(changesTable((variables) => synthesizeStack(path.join(dir, "out"), variables, {}) as TerraformJson));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
