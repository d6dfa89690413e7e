/**
 * Reading the settings from the environment, and the README's settings table,
 * both from the one declaration (`declaration.ts`).
 */

import { parseDropletName, webServerName } from "../names";
import {
  Environment,
  FAILOVER_TOKEN_TERRAFORM_VARIABLE,
  LAB_VARIABLE_PREFIX,
  MAX_ADMIN_ADDRESSES,
  quoted,
  SETTING_VARIABLES,
  SETTINGS,
  Settings,
  SettingsError,
  SPACES_REGIONS,
  VARIABLE_PREFIX,
} from "./declaration";
import { addressesCovered, Declaration, Rejected } from "./value-types";

/** What a declaration accepts, in its own words or its type's. */
function acceptedOf(declaration: Declaration<unknown>): string {
  return declaration.accepted ?? declaration.valueType.accepted;
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** The declared variable closest to `name`: one it begins, else the fewest edits away. */
export function closestVariable(name: string): string {
  const variables = Object.values(SETTING_VARIABLES);
  return (
    variables.find((variable) => variable.startsWith(name)) ??
    variables.reduce((best, variable) => (editDistance(name, variable) < editDistance(name, best) ? variable : best))
  );
}

/** Stops on the first `FOOBAR_*` variable that is neither a setting nor the lab's. */
export function rejectUnknownVariables(env: Environment): void {
  const known = new Set(Object.values(SETTING_VARIABLES));
  const unknown = Object.keys(env)
    .filter((name) => name.startsWith(VARIABLE_PREFIX) && !name.startsWith(LAB_VARIABLE_PREFIX) && !known.has(name))
    .sort();
  if (unknown.length > 0) {
    throw new SettingsError(
      `${unknown[0]} is not a setting: did you mean ${closestVariable(unknown[0])}? (see the README's settings table)`,
    );
  }
}

/** Parses one variable: the default when unset, an error when blank or not accepted. */
export function parseVariable<T>(declaration: Declaration<T>, raw: string | undefined): T {
  if (raw === undefined) return declaration.default;
  const variable = declaration.variable;
  if (raw.trim() === "") {
    const fallback = declaration.defaultText ?? defaultText(declaration.default);
    throw new SettingsError(`${variable} is set but empty: unset it to take the default (${fallback.replace(/`/g, "")})`);
  }
  try {
    return declaration.valueType.parse(raw.trim());
  } catch (error) {
    if (!(error instanceof Rejected)) throw error;
    const detail = error.detail ? `: ${error.detail}` : "";
    // A secret is never repeated, not even in an error.
    const got = declaration.secret ? `a value of ${raw.trim().length} characters` : quoted(error.got ?? raw);
    throw new SettingsError(`${variable} must be ${acceptedOf(declaration)}, got ${got}${detail}`);
  }
}

/**
 * Reads the settings from `env` over the defaults and validates them.
 *
 * @throws SettingsError with a one-line message for the first bad value.
 */
export function loadSettings(env: Environment = process.env): Settings {
  rejectUnknownVariables(env);
  const parsed = Object.fromEntries(
    Object.entries(SETTINGS).map(([key, declaration]) => [
      key,
      parseVariable(declaration as Declaration<unknown>, env[declaration.variable]),
    ]),
  ) as { -readonly [K in keyof Settings]: Settings[K] };
  const v = SETTING_VARIABLES;

  // The RFC 2142 mailbox of the zone, unless the operator names one.
  if (env[v.acmeEmail] === undefined) parsed.acmeEmail = `webmaster@${parsed.domain}`;

  const covered = addressesCovered(parsed.adminCidrs);
  if (covered > MAX_ADMIN_ADDRESSES && !parsed.allowSshFromAnywhere) {
    throw new SettingsError(
      `${v.adminCidrs} must cover at most a /8 (${MAX_ADMIN_ADDRESSES} addresses) without ` +
        `${v.allowSshFromAnywhere}=true, got ${quoted(parsed.adminCidrs.join(","))}: ${covered} addresses` +
        (covered === 2 ** 32 ? ", the whole internet" : ""),
    );
  }

  if ((parsed.alertSlackWebhookUrl === undefined) !== (parsed.alertSlackChannel === undefined)) {
    const [missing, present] =
      parsed.alertSlackWebhookUrl === undefined
        ? [v.alertSlackWebhookUrl, v.alertSlackChannel]
        : [v.alertSlackChannel, v.alertSlackWebhookUrl];
    throw new SettingsError(`${missing} must be set as well when ${present} is set`);
  }

  const primaryIndex = parseDropletName(parsed.databasePrimary)!.index;
  if (primaryIndex < 1 || primaryIndex > parsed.webServers) {
    throw new SettingsError(
      `${v.databasePrimary} must name one of the ${parsed.webServers} web servers (${webServerName(1)} to ${webServerName(parsed.webServers)}), ` +
        `got ${quoted(parsed.databasePrimary)}`,
    );
  }

  // Terraform reads the token from TF_VAR_failover_token: either name will do, but not two different values.
  const terraformToken = env[FAILOVER_TOKEN_TERRAFORM_VARIABLE];
  if (terraformToken !== undefined) {
    const fromTerraform = parseVariable({ ...SETTINGS.failoverToken, variable: FAILOVER_TOKEN_TERRAFORM_VARIABLE }, terraformToken);
    if (parsed.failoverToken !== undefined && parsed.failoverToken !== fromTerraform) {
      throw new SettingsError(`${v.failoverToken} and ${FAILOVER_TOKEN_TERRAFORM_VARIABLE} are both set, to different tokens: set one`);
    }
    parsed.failoverToken = fromTerraform;
  }
  if (parsed.loadBalancers > 1 && parsed.failoverToken === undefined) {
    throw new SettingsError(
      `${v.failoverToken} must be set when ${v.loadBalancers}=${parsed.loadBalancers}: the load balancers assign the reserved IP with it ` +
        "(a DigitalOcean token with the custom scope reserved_ip:update)",
    );
  }

  checkBackups(env, parsed);
  checkMonitoring(env, parsed);

  if (env[v.environmentsDir] !== undefined && parsed.environments.length === 0) {
    throw new SettingsError(`${v.environments} must be set as well when ${v.environmentsDir} is set`);
  }
  return parsed;
}

/**
 * The backup settings together: every `FOOBAR_BACKUP_*` needs the bucket, the
 * bucket needs a recipient and a Spaces region, and is not the state's.
 * Resolves the region's default (`FOOBAR_REGION`) in `parsed`.
 */
function checkBackups(env: Environment, parsed: { -readonly [K in keyof Settings]: Settings[K] }): void {
  const v = SETTING_VARIABLES;
  if (parsed.backupBucket === undefined) {
    const stray = [v.backupRecipient, v.backupRegion, v.backupRetentionDays, v.backupEveryHours].find((name) => env[name] !== undefined);
    if (stray)
      throw new SettingsError(`${stray} is set but ${v.backupBucket} is not: set ${v.backupBucket} to turn backups on, or unset ${stray}`);
    return;
  }
  if (parsed.backupBucket === parsed.stateBucket) {
    throw new SettingsError(
      `${v.backupBucket} must differ from ${v.stateBucket}, both are ${quoted(parsed.backupBucket)}: ` +
        "a web server's key may overwrite and delete anything in the backup bucket",
    );
  }
  if (parsed.backupRecipient === undefined) {
    throw new SettingsError(
      `${v.backupRecipient} must be set when ${v.backupBucket} is set: run \`age-keygen -o backup-identity.txt\`, ` +
        "set this to the public key it prints (age1…), and keep the identity file yourself, off the droplets",
    );
  }
  if (parsed.backupRegion === undefined) {
    if (!(SPACES_REGIONS as readonly string[]).includes(parsed.region)) {
      throw new SettingsError(
        `${v.backupRegion} must be set when ${v.backupBucket} is set and ${v.region} is ${quoted(parsed.region)}, ` +
          `which has no Spaces: one of ${SPACES_REGIONS.join(", ")}`,
      );
    }
    parsed.backupRegion = parsed.region;
  }
}

/**
 * The monitoring server's settings together: none without the server, and
 * Alertmanager's e-mail needs a relay, a sender and someone to write to.
 */
function checkMonitoring(env: Environment, parsed: Settings): void {
  const v = SETTING_VARIABLES;
  if (!parsed.monitoring) {
    const stray = [
      v.monitoringSize,
      v.monitoringVolumeGib,
      v.alertWebhookUrl,
      v.alertSmtpSmarthost,
      v.alertSmtpFrom,
      v.alertSmtpUsername,
      v.alert5xxPercent,
    ].find((name) => env[name] !== undefined);
    if (stray) throw new SettingsError(`${stray} is set but ${v.monitoring}=false: unset ${stray}, or turn the monitoring server on`);
    return;
  }
  if (parsed.alertSmtpSmarthost === undefined) {
    const stray = [v.alertSmtpFrom, v.alertSmtpUsername].find((name) => env[name] !== undefined);
    if (stray) throw new SettingsError(`${stray} is set but ${v.alertSmtpSmarthost} is not: set the relay, or unset ${stray}`);
    return;
  }
  if (parsed.alertSmtpFrom === undefined)
    throw new SettingsError(
      `${v.alertSmtpFrom} must be set when ${v.alertSmtpSmarthost} is set: the address Alertmanager's e-mail comes from`,
    );
  if (parsed.alertEmails.length === 0)
    throw new SettingsError(`${v.alertEmails} must be set when ${v.alertSmtpSmarthost} is set: nobody would receive the e-mail`);
}

/** A default as the README shows it. */
function defaultText(value: unknown): string {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return "none";
  return `\`${String(value)}\``;
}

/**
 * The README's settings table, generated from `SETTINGS`; a test keeps the
 * README equal to it.
 */
export function settingsTable(): string {
  const escape = (cell: string) => cell.replace(/\|/g, "\\|");
  const rows = Object.values(SETTINGS).map((declaration: Declaration<unknown>) =>
    [
      `\`${declaration.variable}\``,
      declaration.valueType.type,
      declaration.defaultText ?? defaultText(declaration.default),
      acceptedOf(declaration),
      declaration.description,
    ]
      .map(escape)
      .join(" | "),
  );
  return [
    "| Variable | Type | Default | Accepted | What it sets |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((row) => `| ${row} |`),
  ].join("\n");
}
