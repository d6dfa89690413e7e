import { Annotations, App, TerraformStack } from "cdktf";
import * as fs from "fs";

import { FoobarStack } from "./constructs";
import { loadStacks } from "./environments";
import { Environment, SettingsError } from "./settings";

/**
 * Under the cdktf CLI (`npx cdktf synth|diff|deploy`, which sets this variable
 * for the app it runs), a bad setting is reported the way cdktf reports a
 * construct's validation error: as an error annotation, which the CLI prints
 * as one line (`ERROR [settings]: …`) and then fails with one line of its own.
 * A failed app would instead be wrapped in the CLI's multi-line error report.
 * The output folder then holds only this failed synthesis (cdktf removes the
 * stacks it no longer sees), so nothing stale can be deployed.
 */
function reportToCdktfCli(error: SettingsError, outdir: string): void {
  const app = new App({ outdir, context: { "@cdktf/disable_stack_trace_in_metadata": true } });
  Annotations.of(new TerraformStack(app, "settings")).addError(error.message);
  app.synth();
}

/**
 * What this app does when run (`node -r ts-node/register/transpile-only main.ts`,
 * cdktf.json's `app`), with `env` as its environment: synthesizes one stack,
 * `foobar`, or one per environment (environments.ts) into `CDKTF_OUTDIR`.
 *
 * Returns the exit status. Run directly (tests, `npm run -s synth`'s check), a
 * bad setting is one line on stderr (`printError`), status 1, and nothing
 * written. Any other error is thrown.
 */
export function synthesize(env: Environment, printError: (line: string) => void = console.error): number {
  // cdktf's App creates its output folder as soon as it exists; remember
  // whether it was there so a failed synthesis leaves nothing behind.
  const outdir = env.CDKTF_OUTDIR ?? "cdktf.out";
  const outdirExisted = fs.existsSync(outdir);
  try {
    const stacks = loadStacks(env);
    const app = new App({ outdir });
    for (const stack of stacks) new FoobarStack(app, stack.name, stack.settings);
    app.synth();
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    if (env.CDKTF_CONTINUE_SYNTH_ON_ERROR_ANNOTATIONS !== undefined) {
      reportToCdktfCli(error, outdir);
    } else {
      if (!outdirExisted) fs.rmSync(outdir, { recursive: true, force: true });
      printError(`error: ${error.message}`);
      return 1;
    }
  }
  return 0;
}

if (require.main === module) {
  const status = synthesize(process.env);
  if (status !== 0) process.exit(status);
}
