import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { quietEnvironment } from "../../tools/cli";

const ROOT = path.resolve(__dirname, "..", "..");

/** Runs an npm script the way an operator does, with `env` over this process's environment minus every FOOBAR_* variable. */
function npmRun(args: readonly string[], env: Record<string, string>): Promise<{ status: number; stdout: string; stderr: string }> {
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("FOOBAR_")));
  return new Promise((resolve) => {
    execFile("npm", args, { cwd: ROOT, env: { ...baseEnv, ...env }, encoding: "utf8" }, (error, stdout, stderr) =>
      resolve({ status: error ? (error.code as number) : 0, stdout, stderr }),
    );
  });
}

/** Output lines that are not npm's own complaints about this machine's user configuration. */
const lines = (text: string) => text.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("npm warn Unknown "));

describe("the quiet CLI (npm run -s synth, npm run -s cdktf -- <command>)", () => {
  test("a bad setting is its one line on stderr, nothing on stdout, exit 1, and cdktf never starts", async () => {
    const outdir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "foobar-cli-")), "cdktf.out");
    const run = await npmRun(["run", "-s", "synth"], { FOOBAR_WEB_SERVERS: "0", CDKTF_OUTDIR: outdir });
    expect(run.status).toBe(1);
    expect(lines(run.stdout)).toEqual([]);
    expect(lines(run.stderr)).toEqual(['error: FOOBAR_WEB_SERVERS must be a whole number from 1 to 10, got "0"']);
    expect(fs.existsSync(outdir)).toBe(false);
  });

  test("cdktf runs without HashiCorp's checkpoint and without a missing CLI configuration", () => {
    const env = quietEnvironment({ TF_CLI_CONFIG_FILE: "/nonexistent/.terraformrc" }, "/tmp/empty");
    expect(env).toEqual(expect.objectContaining({ CHECKPOINT_DISABLE: "1", TF_CLI_CONFIG_FILE: "/tmp/empty" }));
    expect(quietEnvironment({ TF_CLI_CONFIG_FILE: __filename }, "/tmp/empty").TF_CLI_CONFIG_FILE).toBe(__filename);
    expect(quietEnvironment({}, "/tmp/empty").TF_CLI_CONFIG_FILE).toBeUndefined();
  });

  test("Spaces keys under DigitalOcean's names reach the S3 backend as AWS_*, never over AWS_* already set", () => {
    const spaces = { SPACES_ACCESS_KEY_ID: "DO00EXAMPLE", SPACES_SECRET_ACCESS_KEY: "secret" };
    expect(quietEnvironment(spaces, "/tmp/empty")).toEqual(
      expect.objectContaining({ AWS_ACCESS_KEY_ID: "DO00EXAMPLE", AWS_SECRET_ACCESS_KEY: "secret" }),
    );
    expect(quietEnvironment({ ...spaces, AWS_ACCESS_KEY_ID: "mine" }, "/tmp/empty").AWS_ACCESS_KEY_ID).toBe("mine");
  });
});

describe("plain `npx cdktf synth`", () => {
  /** cdktf's own progress display: a spinner frame ("⠋  Synthesizing"), redrawn in place on a terminal. */
  const progress = /^[\u2800-\u28ff]\s+(Starting|Synthesizing)/;
  // eslint-disable-next-line no-control-regex
  const withoutEscapes = (text: string) => text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, "");

  test("a bad setting is its one line and one line of context from cdktf, exit 1, and no stack left to deploy", async () => {
    const outdir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "foobar-cdktf-")), "cdktf.out");
    const baseEnv = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith("FOOBAR_") && name !== "TF_CLI_CONFIG_FILE" && name !== "CI"),
    );
    const run = await new Promise<{ status: number; output: string }>((resolve) => {
      execFile(
        path.join(ROOT, "node_modules", ".bin", "cdktf"),
        ["synth", "--output", outdir],
        { cwd: ROOT, env: { ...baseEnv, CHECKPOINT_DISABLE: "1", FOOBAR_WEB_SERVERS: "0" }, encoding: "utf8" },
        (error, stdout, stderr) => resolve({ status: error ? (error.code as number) : 0, output: stdout + stderr }),
      );
    });
    expect(run.status).toBe(1);
    const shown = withoutEscapes(run.output)
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !progress.test(line));
    expect(shown).toEqual([
      'ERROR [settings]: FOOBAR_WEB_SERVERS must be a whole number from 1 to 10, got "0"',
      "Error: While synthesizing one or more error annotations have been encountered. Please check the log output above.",
    ]);
    expect(fs.readdirSync(path.join(outdir, "stacks"))).toEqual(["settings"]);
  }, 120_000);
});
