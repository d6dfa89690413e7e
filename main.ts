import { Annotations, App, TerraformStack } from "cdktf";
import * as fs from "fs";

import { FoobarStack } from "./constructs";
import { loadStacks } from "./environments";
import { SettingsError } from "./settings";

// cdktf's App creates its output folder as soon as it exists; remember
// whether it was there so a failed synthesis leaves nothing behind.
const outdir = process.env.CDKTF_OUTDIR ?? "cdktf.out";
const outdirExisted = fs.existsSync(outdir);

/**
 * Under the cdktf CLI (`npx cdktf synth|diff|deploy`, which sets this variable
 * for the app it runs), a bad setting is reported the way cdktf reports a
 * construct's validation error: as an error annotation, which the CLI prints
 * as one line (`ERROR [settings]: …`) and then fails with one line of its own.
 * A failed app would instead be wrapped in the CLI's multi-line error report.
 * The output folder then holds only this failed synthesis (cdktf removes the
 * stacks it no longer sees), so nothing stale can be deployed.
 */
function reportToCdktfCli(error: SettingsError): void {
  const app = new App({ context: { "@cdktf/disable_stack_trace_in_metadata": true } });
  Annotations.of(new TerraformStack(app, "settings")).addError(error.message);
  app.synth();
}

try {
  // One stack, `foobar`, or one per environment (environments.ts).
  const stacks = loadStacks(process.env);
  const app = new App();
  for (const stack of stacks) new FoobarStack(app, stack.name, stack.settings);
  app.synth();
} catch (error) {
  if (!(error instanceof SettingsError)) throw error;
  if (process.env.CDKTF_CONTINUE_SYNTH_ON_ERROR_ANNOTATIONS !== undefined) {
    reportToCdktfCli(error);
  } else {
    // Run directly (tests, `npm run -s synth`'s check): one line, exit 1, nothing written.
    if (!outdirExisted) fs.rmSync(outdir, { recursive: true, force: true });
    console.error(`error: ${error.message}`);
    process.exit(1);
  }
}
