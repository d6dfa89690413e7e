import { App } from "cdktf";
import * as fs from "fs";
import { FoobarStack } from "./constructs";
import { loadStacks } from "./environments";
import { SettingsError } from "./settings";

// cdktf's App creates its output folder as soon as it exists; remember
// whether it was there so a failed synthesis leaves nothing behind.
const outdir = process.env.CDKTF_OUTDIR ?? "cdktf.out";
const outdirExisted = fs.existsSync(outdir);

try {
  // One stack, `foobar`, or one per environment (environments.ts).
  const stacks = loadStacks(process.env);
  const app = new App();
  for (const stack of stacks) new FoobarStack(app, stack.name, stack.settings);
  app.synth();
} catch (error) {
  // A bad setting is the operator's to fix: one line, no stack trace.
  if (error instanceof SettingsError) {
    if (!outdirExisted) fs.rmSync(outdir, { recursive: true, force: true });
    console.error(`error: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
