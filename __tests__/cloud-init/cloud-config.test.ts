import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";

import * as YAML from "yaml";

import { escapeTerraformTemplate, filesRunAtBoot, parseUserData, renderCloudConfig, writeAndRun } from "../../cloud-init/cloud-config";

describe("renderCloudConfig", () => {
  const config = renderCloudConfig({
    hostname: "web-01",
    packages: ["nginx"],
    systemUsers: [{ name: "foobar-app", homedir: "/srv/foobar/app" }],
    writeFiles: [
      { path: "/etc/a", content: "a\n" },
      { path: "/etc/secret", content: "s\n", owner: "foobar-app:foobar-app", permissions: "0600", defer: true },
    ],
    runcmd: [["systemctl", "restart", "nginx.service"]],
  });
  const document = parseUserData(config);

  test("is the document cloud-init reads", () => {
    expect(document.hostname).toBe("web-01");
    expect(document.package_update).toBe(true);
    expect(document.packages).toEqual(["nginx"]);
  });

  test("keeps the image's default user and adds service users without login", () => {
    expect(document.users).toEqual([
      "default",
      expect.objectContaining({ name: "foobar-app", system: true, shell: "/usr/sbin/nologin", lock_passwd: true }),
    ]);
  });

  test("files default to root:root 0644 and keep explicit owners, modes and defer", () => {
    expect(document.write_files).toEqual([
      { path: "/etc/a", content: "a\n", owner: "root:root", permissions: "0644" },
      { path: "/etc/secret", content: "s\n", owner: "foobar-app:foobar-app", permissions: "0600", defer: true },
    ]);
  });

  test("runcmd stops at the first failing command", () => {
    expect(document.runcmd).toEqual(["set -e", ["systemctl", "restart", "nginx.service"]]);
  });

  test("long lines are never folded", () => {
    const long = "x".repeat(500);
    const text = renderCloudConfig({ hostname: "h", packages: [], writeFiles: [], runcmd: [["echo", long]] });
    expect(text).toContain(long);
  });

  describe("is packed: what holds no Terraform reference travels gzipped, in a second part cloud-init merges", () => {
    const script = "#!/bin/sh\n" + "echo 'the same line, again and again'\n".repeat(40);
    const reference = "PASSWORD=${TfToken[TOKEN.12]}\n" + "X=1\n".repeat(40);
    const userData = renderCloudConfig({
      hostname: "h",
      packages: ["nginx"],
      writeFiles: [
        { path: "/script", content: script },
        { path: "/env", content: reference },
      ],
      runcmd: [["echo", "${TfToken[TOKEN.13]}"]],
    });
    const [plainPart, packedPart] = userData.split(/^--==foobar-user-data==$/m).slice(1, 3);

    test("a MIME message of two parts: plain cloud-config, then gzip in base64", () => {
      expect(userData.split("\n").slice(0, 2)).toEqual([
        'Content-Type: multipart/mixed; boundary="==foobar-user-data=="',
        "MIME-Version: 1.0",
      ]);
      expect(plainPart).toMatch(/^\nContent-Type: text\/cloud-config; charset="utf-8"\n[^]*\n\n#cloud-config\n/);
      expect(packedPart).toMatch(/^\nContent-Type: application\/gzip\nContent-Transfer-Encoding: base64\n\n/);
      expect(userData.endsWith("--==foobar-user-data==--\n")).toBe(true);
    });

    test("Terraform sees every reference: the file and the command that hold one are in the plain part", () => {
      expect(plainPart).toContain("PASSWORD=${TfToken[TOKEN.12]}");
      expect(plainPart).toContain("${TfToken[TOKEN.13]}");
      expect(plainPart).not.toContain("again and again");
    });

    test("the packed part says how cloud-init merges it: its files appended to the first part's", () => {
      const packed = gunzipSync(Buffer.from(packedPart!.split("\n\n")[1]!, "base64")).toString("utf8");
      expect(packed.startsWith("#cloud-config\n")).toBe(true);
      expect(YAML.parse(packed)).toEqual(
        expect.objectContaining({ merge_how: "list(append)+dict(no_replace,recurse_list)+str()", packages: ["nginx"] }),
      );
    });

    test("merged, every file is there once, as text", () => {
      const merged = parseUserData(userData);
      expect(merged.write_files!.map((file) => [file.path, file.content])).toEqual([
        ["/env", reference],
        ["/script", script],
      ]);
      expect(merged.merge_how).toBeUndefined();
    });

    test("without anything to pack, the plain document alone", () => {
      const plain = renderCloudConfig({ hostname: "h", packages: [], writeFiles: [{ path: "/env", content: reference }], runcmd: [] });
      expect(plain.startsWith("#cloud-config\n")).toBe(true);
    });
  });
});

describe("writeAndRun: a script bootcmd needs, carried once", () => {
  test("sh writes the file with its mode, runs it with the arguments, and writes the same bytes again on the next boot", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-write-and-run-"));
    const script = `#!/bin/sh\necho "ran $0 with $# arguments: $1 / $2"\n`;
    const argv = writeAndRun({ path: path.join(dir, "hello"), permissions: "0750", content: script }, ["a b", "c"]);
    for (const boot of [1, 2]) {
      const run = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
      expect({ boot, status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({
        boot,
        status: 0,
        stdout: `ran ${path.join(dir, "hello")} with 2 arguments: a b / c\n`,
        stderr: "",
      });
      expect(fs.readFileSync(path.join(dir, "hello"), "utf8")).toBe(script);
      expect(fs.statSync(path.join(dir, "hello")).mode & 0o777).toBe(0o750);
    }
    expect(fs.readdirSync(dir)).toEqual(["hello"]);
    expect(filesRunAtBoot([argv])).toEqual([{ path: path.join(dir, "hello"), content: script }]);
  });

  test("fails the boot when the file cannot be written (the check can fail)", () => {
    const argv = writeAndRun({ path: "/nonexistent-dir/hello", permissions: "0755", content: "#!/bin/sh\ntrue\n" });
    expect(spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" }).status).not.toBe(0);
  });
});

describe("escapeTerraformTemplate", () => {
  test("shell ${VAR} and HAProxy %{...} survive Terraform as literal text", () => {
    expect(escapeTerraformTemplate('echo "${HOME}" %{+Q}r')).toBe('echo "$${HOME}" %%{+Q}r');
  });

  test("cdktf tokens are left alone so they become references", () => {
    expect(escapeTerraformTemplate("host=${TfToken[TOKEN.12]} x=${X}")).toBe("host=${TfToken[TOKEN.12]} x=$${X}");
  });

  test("plain $VAR needs no escape", () => {
    expect(escapeTerraformTemplate("echo $HOME")).toBe("echo $HOME");
  });
});
