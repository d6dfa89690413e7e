/**
 * Synthesizing the stack in-process, the way `main.ts` does, with the lab's
 * few settings on top of the operator's `FOOBAR_*` environment.
 *
 * The lab always boots the code as it is now: there is no stale
 * `cdktf.out` to forget to refresh.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { App } from "cdktf";

import { FoobarStack } from "../../constructs";
import { loadSettings, SETTINGS } from "../../settings";
import type { TerraformJson } from "../../tools/changes";
import { CLIENT_ADDRESS } from "../settings";
import { alertWebhookUrl } from "./alert-receiver";

/** The backup bucket of every lab. */
export const LAB_BACKUP_BUCKET = "foobar-lab-backups";

/** The stack's id, as in `main.ts`: `<outdir>/stacks/foobar/cdk.tf.json`. */
export const STACK_NAME = "foobar";

type Environment = Readonly<Record<string, string | undefined>>;

/**
 * The settings only the lab can decide, as environment variables: they win
 * over the operator's; every other `FOOBAR_*` variable flows through.
 *
 * @param acmeDirectoryUrl the lab pebble's directory.
 * @param acmeCaFile PEM of the CA that signed pebble's HTTPS certificate.
 * @param operatorAdminCidrs FOOBAR_ADMIN_CIDRS as the settings have it: SSH is allowed from there too.
 * @param operatorMonitoring FOOBAR_MONITORING as the settings have it: unless "false", mon-01's
 *   Alertmanager posts to the lab's alert receiver (alert-receiver.ts).
 */
export function labOverrides(
  acmeDirectoryUrl: string,
  acmeCaFile: string,
  failoverToken: string,
  backupRecipient?: string,
  operatorAdminCidrs?: string,
  operatorMonitoring?: string,
): Record<string, string> {
  return {
    // Backups on, to the lab's Spaces (spaces.ts), encrypted to an identity the lab made (backup-identity.ts).
    ...(backupRecipient ? { FOOBAR_BACKUP_BUCKET: LAB_BACKUP_BUCKET, FOOBAR_BACKUP_RECIPIENT: backupRecipient } : {}),
    FOOBAR_ACME_DIRECTORY_URL: acmeDirectoryUrl,
    FOOBAR_ACME_CA_FILE: acmeCaFile,
    // SSH from the client namespace, the lab's stand-in for the admin's machine, and from what the settings add.
    FOOBAR_ADMIN_CIDRS: [`${CLIENT_ADDRESS}/32`, ...(operatorAdminCidrs ? [operatorAdminCidrs] : [])].join(","),
    // The token the lab's API emulator accepts; used only with FOOBAR_LOAD_BALANCERS=2.
    [SETTINGS.failoverToken.variable]: failoverToken,
    // Every alert and resolution to the lab's receiver; the setting is refused without the monitoring server.
    ...(operatorMonitoring !== "false" ? { [SETTINGS.alertWebhookUrl.variable]: alertWebhookUrl() } : {}),
  };
}

/** The overrides as a log line: secrets by name only. */
export function describeOverrides(overrides: Record<string, string>): string {
  const secret = new Set(
    Object.values(SETTINGS)
      .filter((d) => d.secret)
      .map((d) => d.variable),
  );
  return Object.entries(overrides)
    .map(([name, value]) => (secret.has(name) ? `${name}=(a lab token)` : `${name}=${value}`))
    .join(" ");
}

/** A token shaped like DigitalOcean's, made per lab: the API emulator accepts this one only. */
export function makeLabToken(): string {
  return `dop_v1_${randomBytes(32).toString("hex")}`;
}

/**
 * Synthesizes the stack into `outdir` (emptied first) and returns its Terraform JSON.
 *
 * @throws SettingsError for a bad `FOOBAR_*` value, like `npx cdktf synth` would.
 */
export function synthesizeStack(outdir: string, env: Environment, overrides: Record<string, string>): TerraformJson {
  fs.rmSync(outdir, { recursive: true, force: true });
  fs.mkdirSync(outdir, { recursive: true });
  const app = new App({ outdir });
  new FoobarStack(app, STACK_NAME, loadSettings({ ...env, ...overrides }));
  app.synth();
  const file = path.join(outdir, "stacks", STACK_NAME, "cdk.tf.json");
  return JSON.parse(fs.readFileSync(file, "utf8")) as TerraformJson;
}
