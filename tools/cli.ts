/**
 * cdktf, quietly: `npm run -s cdktf -- <command> [stack]` (`npm run -s synth` for short).
 *
 * 1. The settings are checked first, in this process: a bad one is its one
 *    line on stderr and exit 1, and cdktf never starts (`npx cdktf synth`
 *    would wrap the same line in its own error report).
 * 2. cdktf runs with `CHECKPOINT_DISABLE=1` (no HashiCorp version check) and,
 *    when `TF_CLI_CONFIG_FILE` names a file that does not exist, with an
 *    empty Terraform CLI configuration instead: Terraform would only warn
 *    about it, four times per command.
 * 3. Spaces keys exported under DigitalOcean's names (`SPACES_ACCESS_KEY_ID`,
 *    `SPACES_SECRET_ACCESS_KEY`) are passed to Terraform's S3 backend as the
 *    `AWS_*` variables it reads, unless those are set. Only the child process
 *    sees them; nothing is written anywhere.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { loadStacks } from "../environments";
import { Environment, SettingsError } from "../settings";

/** The environment cdktf and Terraform run with. */
export function quietEnvironment(env: Environment, emptyConfig: string): Record<string, string | undefined> {
  const quiet: Record<string, string | undefined> = { ...env, CHECKPOINT_DISABLE: env.CHECKPOINT_DISABLE ?? "1" };
  if (env.TF_CLI_CONFIG_FILE !== undefined && !fs.existsSync(env.TF_CLI_CONFIG_FILE)) quiet.TF_CLI_CONFIG_FILE = emptyConfig;
  quiet.AWS_ACCESS_KEY_ID ??= env.SPACES_ACCESS_KEY_ID;
  quiet.AWS_SECRET_ACCESS_KEY ??= env.SPACES_SECRET_ACCESS_KEY;
  return quiet;
}

function main(args: readonly string[]): number {
  try {
    loadStacks(process.env);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    console.error(`error: ${error.message}`);
    return 1;
  }
  const emptyConfig = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "foobar-terraformrc-")), "terraformrc");
  fs.writeFileSync(emptyConfig, "");
  const cdktf = path.join(__dirname, "..", "node_modules", ".bin", "cdktf");
  const result = spawnSync(cdktf, args, { stdio: "inherit", env: quietEnvironment(process.env, emptyConfig) });
  fs.rmSync(path.dirname(emptyConfig), { recursive: true, force: true });
  if (result.error) {
    console.error(`error: cannot run ${cdktf}: ${result.error.message} (run npm install first)`);
    return 1;
  }
  return result.status ?? 1;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
