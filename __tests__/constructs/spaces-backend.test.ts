import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

import { TERRAFORM_VERSION_FOR_SPACES } from "../../constructs";
import { synthCli, synthStack } from "../helpers";

const SPACES = { stateBucket: "foobar-terraform-state", stateRegion: "fra1" };

/**
 * The S3 backend's arguments this project may use, as Terraform's S3
 * backend documents them (Terraform 1.11).
 *
 * @see https://developer.hashicorp.com/terraform/language/backend/s3
 */
const S3_BACKEND_ARGUMENTS = new Set([
  "bucket",
  "key",
  "region",
  "endpoints",
  "skip_credentials_validation",
  "skip_requesting_account_id",
  "skip_metadata_api_check",
  "skip_region_validation",
  "skip_s3_checksum",
  "use_lockfile",
  "use_path_style",
]);

describe("the state backend", () => {
  test("without a bucket there is no backend block: cdktf keeps the state in terraform.<stack>.tfstate", () => {
    expect(synthStack().terraform.backend).toBeUndefined();
  });

  test("with a bucket it is the S3 backend at the Spaces endpoint, locked by a lock file, as DigitalOcean's guide sets it", () => {
    const stack = synthStack(SPACES);
    expect(stack.terraform.backend).toEqual({
      s3: {
        bucket: "foobar-terraform-state",
        key: "test/terraform.tfstate",
        region: "us-east-1",
        endpoints: { s3: "https://fra1.digitaloceanspaces.com" },
        skip_credentials_validation: true,
        skip_requesting_account_id: true,
        skip_metadata_api_check: true,
        skip_region_validation: true,
        skip_s3_checksum: true,
        use_lockfile: true,
      },
    });
    expect(stack.terraform.required_version).toBe(TERRAFORM_VERSION_FOR_SPACES);
    for (const argument of Object.keys(stack.terraform.backend.s3)) expect(S3_BACKEND_ARGUMENTS).toContain(argument);
  });

  test("FOOBAR_STATE_LOCKING=false leaves the lock file out", () => {
    expect(synthStack({ ...SPACES, stateLocking: false }).terraform.backend.s3.use_lockfile).toBeUndefined();
  });

  test("credentials in the shell never reach cdktf.out: two environments, their state keys, no secret anywhere", async () => {
    const secrets = {
      AWS_ACCESS_KEY_ID: "AKIAFOOBAREXAMPLE01",
      AWS_SECRET_ACCESS_KEY: "aws-secret-never-written-0123456789",
      SPACES_ACCESS_KEY_ID: "DO00FOOBAREXAMPLE02",
      SPACES_SECRET_ACCESS_KEY: "spaces-secret-never-written-0123456789",
      DIGITALOCEAN_TOKEN: "dop_v1_token_never_written_0123456789",
    };
    const run = await synthCli({
      ...secrets,
      FOOBAR_ENVIRONMENTS: "staging,production",
      FOOBAR_ENVIRONMENTS_DIR: path.join(__dirname, "..", "fixtures", "environments"),
    });
    expect(run.stderr).toBe("");
    const stackJson = (name: string) => JSON.parse(fs.readFileSync(path.join(run.outdir, "stacks", name, "cdk.tf.json"), "utf8"));
    expect(fs.readdirSync(path.join(run.outdir, "stacks")).sort()).toEqual(["foobar-production", "foobar-staging"]);
    expect(stackJson("foobar-staging").terraform.backend.s3.key).toBe("foobar-staging/terraform.tfstate");
    expect(stackJson("foobar-production").terraform.backend.s3.key).toBe("foobar-production/terraform.tfstate");
    const files = fs.readdirSync(run.outdir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
    expect(files.length).toBeGreaterThan(2);
    for (const file of files) {
      const text = fs.readFileSync(path.join(file.parentPath, file.name), "utf8");
      for (const secret of Object.values(secrets)) expect(text.includes(secret)).toBe(false);
    }
  });
});

/** A program on PATH, or undefined. */
function which(program: string): string | undefined {
  const found = spawnSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() : undefined;
}
const terraform = which("terraform");
const moto = spawnSync("python3", ["-c", "import moto.server"]).status === 0;
const why = [terraform ? "" : "no terraform on PATH", moto ? "" : "no python3 moto (moto_server)"].filter(Boolean).join(", ");
if (why) console.warn(`skipping the real terraform init against an S3 server: ${why}`);

/**
 * The real thing, as far as this machine allows: Terraform's own S3 backend
 * talking to moto's S3 server (the endpoint is the only change, with path
 * style for a bare address), two working directories as two operators.
 */
(terraform && moto ? describe : describe.skip)("terraform with the synthesized backend block against an S3 server", () => {
  let server: ChildProcess;
  let endpoint: string;
  const bucket = SPACES.stateBucket;
  const key = "foobar/terraform.tfstate";
  const env = {
    ...process.env,
    CHECKPOINT_DISABLE: "1",
    TF_IN_AUTOMATION: "1",
    TF_CLI_CONFIG_FILE: "/dev/null",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
  };
  const laptops = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), "foobar-tf-")));

  function tf(dir: string, ...args: string[]): { status: number; output: string } {
    const run = spawnSync(terraform!, [...args, "-no-color"], { cwd: dir, env, encoding: "utf8" });
    return { status: run.status ?? 1, output: run.stdout + run.stderr };
  }
  /** Whether the bucket holds `name`: an anonymous GET gets 403 for a private object, 404 for none. */
  const exists = async (name: string) => (await fetch(`${endpoint}/${bucket}/${name}`)).status !== 404;

  beforeAll(async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    endpoint = `http://127.0.0.1:${port}`;
    server = spawn("python3", ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
    for (let i = 0; ; i++) {
      try {
        await fetch(endpoint);
        break;
      } catch (error) {
        if (i > 100) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const created = await fetch(`${endpoint}/${bucket}`, { method: "PUT" });
    if (created.status !== 200) throw new Error(`the S3 emulator did not create the bucket: ${created.status}`);

    const block = synthStack(SPACES).terraform.backend.s3;
    const config = {
      terraform: { backend: { s3: { ...block, key, endpoints: { s3: endpoint }, use_path_style: true } } },
      resource: { terraform_data: { probe: { input: "hello" } } },
    };
    for (const dir of laptops) fs.writeFileSync(path.join(dir, "main.tf.json"), JSON.stringify(config));
  });

  afterAll(() => {
    server?.kill();
  });

  test("init accepts every argument of the block, and apply writes the state into the bucket", async () => {
    const init = tf(laptops[0], "init", "-input=false");
    expect(init.output).toContain('Successfully configured the backend "s3"');
    expect(init.status).toBe(0);
    expect(tf(laptops[0], "apply", "-auto-approve", "-input=false").status).toBe(0);
    expect(await exists(key)).toBe(true);
  });

  test("a second operator's working directory sees the same state", () => {
    expect(tf(laptops[1], "init", "-input=false").status).toBe(0);
    expect(tf(laptops[1], "state", "list").output.trim()).toBe("terraform_data.probe");
  });

  test("while one operator holds the lock, the other's plan stops on the lock file (412, If-None-Match)", async () => {
    // `terraform console` holds the state lock for as long as it runs.
    const holder = spawn(terraform!, ["console", "-no-color"], { cwd: laptops[0], env, stdio: ["pipe", "ignore", "ignore"] });
    const exited = new Promise((r) => holder.on("exit", r));
    try {
      for (let i = 0; !(await exists(`${key}.tflock`)); i++) {
        if (i > 200) throw new Error("terraform console never took the lock");
        await new Promise((r) => setTimeout(r, 100));
      }
      const blocked = tf(laptops[1], "plan", "-input=false", "-lock-timeout=0s");
      expect(blocked.status).not.toBe(0);
      expect(blocked.output).toContain("Error acquiring the state lock");
      expect(blocked.output).toContain("StatusCode: 412");
    } finally {
      holder.stdin!.end();
      await exited;
    }
    expect(await exists(`${key}.tflock`)).toBe(false);
    expect(tf(laptops[1], "plan", "-input=false", "-lock-timeout=0s").status).toBe(0);
  });
});
