import { App } from "cdktf";
import { FoobarStack } from "./constructs";
import { loadSettings, SettingsError } from "./settings";

/** Name of the stack: `cdktf.out/stacks/foobar/cdk.tf.json`. */
export const STACK_NAME = "foobar";

try {
  const settings = loadSettings(process.env);
  const app = new App();
  new FoobarStack(app, STACK_NAME, settings);
  app.synth();
} catch (error) {
  // A bad setting is the operator's to fix: one line, no stack trace.
  if (error instanceof SettingsError) {
    console.error(`error: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
