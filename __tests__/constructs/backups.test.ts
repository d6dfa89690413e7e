import { AnnotationMetadataEntryType, TerraformOutput, Testing } from "cdktf";
import * as fs from "fs";
import * as path from "path";

import { Backups, FoobarStack } from "../../constructs";
import { DEFAULT_SETTINGS, Settings } from "../../settings";
import { addressOf, resourcesOf, synthInProcess, synthStack } from "../helpers";

/** A well-formed age recipient (nobody holds its identity). */
const RECIPIENT = `age1${"q".repeat(58)}`;
const ON: Partial<Settings> = { backupBucket: "foobar-backups", backupRecipient: RECIPIENT, backupRegion: "ams3", backupRetentionDays: 14 };

describe("backups, Terraform side (FOOBAR_BACKUP_BUCKET)", () => {
  const stack = synthStack(ON);
  const [bucket] = resourcesOf(stack, "digitalocean_spaces_bucket");
  const [key] = resourcesOf(stack, "digitalocean_spaces_key");

  test("the bucket is private, versioned, never emptied by Terraform and protected from destroy like the volumes", () => {
    expect(resourcesOf(stack, "digitalocean_spaces_bucket")).toHaveLength(1);
    expect(bucket).toEqual(
      expect.objectContaining({
        name: "foobar-backups",
        region: "ams3",
        acl: "private",
        force_destroy: false,
        versioning: { enabled: true },
        lifecycle: { prevent_destroy: true },
      }),
    );
  });

  test("objects and their noncurrent versions expire after the retention days; incomplete uploads are aborted after a day", () => {
    expect(bucket.lifecycle_rule).toEqual([
      expect.objectContaining({
        enabled: true,
        expiration: { days: 14 },
        noncurrent_version_expiration: { days: 14 },
        abort_incomplete_multipart_upload_days: 1,
      }),
    ]);
    expect(bucket.lifecycle_rule[0].prefix).toBeUndefined();
  });

  test("the key's one grant is readwrite on exactly that bucket", () => {
    expect(resourcesOf(stack, "digitalocean_spaces_key")).toHaveLength(1);
    expect(key.name).toBe("foobar-backups");
    expect(key.grant).toEqual([{ bucket: `\${${addressOf(stack, "digitalocean_spaces_bucket", bucket)}.name}`, permission: "readwrite" }]);
  });

  test("FOOBAR_ALLOW_DATA_LOSS=true is the only way to let Terraform delete the bucket, and even then only empty", () => {
    const [loose] = resourcesOf(synthStack({ ...ON, allowDataLoss: true }), "digitalocean_spaces_bucket");
    expect(loose).toEqual(expect.objectContaining({ lifecycle: { prevent_destroy: false }, force_destroy: false }));
  });

  test("outputs the bucket, its region and its endpoint, and never the key", () => {
    expect(stack.output.backup_bucket.value).toBe(`\${${addressOf(stack, "digitalocean_spaces_bucket", bucket)}.name}`);
    expect(stack.output.backup_region.value).toBe("ams3");
    expect(stack.output.backup_endpoint.value).toBe("https://ams3.digitaloceanspaces.com");
    expect(JSON.stringify(stack.output)).not.toMatch(/access_key|secret_key/);
  });

  test("the bucket is in the DigitalOcean project", () => {
    const [project] = resourcesOf(stack, "digitalocean_project");
    expect(project.resources).toContain(`\${${addressOf(stack, "digitalocean_spaces_bucket", bucket)}.urn}`);
  });

  test("the provider gets no Spaces credentials: Terraform reads SPACES_ACCESS_KEY_ID/SPACES_SECRET_ACCESS_KEY at deploy time", () => {
    expect(JSON.stringify(stack.provider)).not.toMatch(/spaces_access_id|spaces_secret_key/);
  });

  test("every web server gets the bucket, the recipient and the key as references, only when backups are on", () => {
    const app = Testing.app();
    const on = new FoobarStack(app, "on", { ...DEFAULT_SETTINGS, ...ON, webServers: 3 });
    expect(on.webServers).toHaveLength(3);
    for (const web of on.webServers) {
      expect(web.backup).toEqual({
        bucket: "foobar-backups",
        region: "ams3",
        recipient: RECIPIENT,
        accessKeyId: on.backups!.accessKeyId,
        secretAccessKey: on.backups!.secretAccessKey,
        everyHours: 24,
      });
    }
    const off = new FoobarStack(app, "off", DEFAULT_SETTINGS);
    expect(off.backups).toBeUndefined();
    for (const web of off.webServers) expect(web.backup).toBeUndefined();
  });

  test("the key's tokens are its access_key and secret_key", () => {
    const app = Testing.app();
    const on = new FoobarStack(app, "on", { ...DEFAULT_SETTINGS, ...ON });
    new TerraformOutput(on, "probe", { value: [on.backups!.accessKeyId, on.backups!.secretAccessKey], sensitive: true });
    const { output } = JSON.parse(Testing.synth(on)) as { output: Record<string, { value: string[] }> };
    expect(output.probe.value).toEqual([
      expect.stringMatching(/^\$\{digitalocean_spaces_key\.backups_key_\w+\.access_key\}$/),
      expect.stringMatching(/^\$\{digitalocean_spaces_key\.backups_key_\w+\.secret_key\}$/),
    ]);
  });

  test("a bucket name or region the construct cannot use stops it before any resource exists", () => {
    const app = Testing.app();
    const scope = new FoobarStack(app, "s", DEFAULT_SETTINGS);
    expect(() => new Backups(scope, "b1", { bucket: "Bad_Name", region: "nyc3", keyName: "k" })).toThrow(
      /^FOOBAR_BACKUP_BUCKET must be a Spaces bucket name.*, got "Bad_Name"$/,
    );
    expect(() => new Backups(scope, "b2", { bucket: "good-name", region: "nyc1", keyName: "k" })).toThrow(
      /^FOOBAR_BACKUP_REGION must be one of .*, got "nyc1"$/,
    );
  });
});

describe("without FOOBAR_BACKUP_BUCKET", () => {
  const stack = synthStack();

  test("there is no bucket, no key and no backup output", () => {
    expect(resourcesOf(stack, "digitalocean_spaces_bucket")).toEqual([]);
    expect(resourcesOf(stack, "digitalocean_spaces_key")).toEqual([]);
    expect(Object.keys(stack.output).filter((name) => name.startsWith("backup"))).toEqual([]);
  });

  test("a bucket that leaves the configuration is forgotten, not destroyed, unless FOOBAR_ALLOW_DATA_LOSS=true", () => {
    const forgotten = (s: typeof stack) =>
      ((s.removed ?? []) as { from: string }[]).filter((block) => block.from.startsWith("digitalocean_spaces_bucket."));
    const on = synthStack(ON);
    const address = addressOf(on, "digitalocean_spaces_bucket", resourcesOf(on, "digitalocean_spaces_bucket")[0]);
    expect(forgotten(stack)).toEqual([{ from: address, lifecycle: { destroy: false } }]);
    expect(forgotten(synthStack({ allowDataLoss: true }))).toEqual([]);
    expect(forgotten(on)).toEqual([]);
  });
});

describe("what synthesis says about backups", () => {
  /** The annotations cdktf's CLI prints after `npx cdktf synth`, from the manifest main.ts wrote. */
  const annotations = (env: Record<string, string>) => {
    const run = synthInProcess(env);
    expect(run.status).toBe(0);
    const manifest = JSON.parse(fs.readFileSync(path.join(run.outdir, "manifest.json"), "utf8"));
    fs.rmSync(path.dirname(run.outdir), { recursive: true, force: true });
    return Object.values(manifest.stacks).flatMap((s: any) => s.annotations.map((a: any) => [a.level, a.message]));
  };

  test("without a bucket: one warning that there are no backups and why it matters", () => {
    expect(annotations({})).toEqual([
      [
        AnnotationMetadataEntryType.WARN,
        'no backups: FOOBAR_BACKUP_BUCKET is not set, so a deleted row or a lost volume cannot be recovered (docs/database.md, "Backups")',
      ],
    ]);
  });

  test("with a bucket: one line naming the bucket and its region", () => {
    expect(annotations({ FOOBAR_BACKUP_BUCKET: "foobar-backups", FOOBAR_BACKUP_RECIPIENT: RECIPIENT })).toEqual([
      [AnnotationMetadataEntryType.INFO, expect.stringMatching(/^backups: .*Spaces bucket foobar-backups \(nyc3\)/)],
    ]);
  });
});
