import { gunzipSync } from "node:zlib";

import * as YAML from "yaml";

import { escapeTerraformTemplate, renderCloudConfig } from "../../cloud-init/cloud-config";

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
  const document = YAML.parse(config);

  test("starts with #cloud-config and parses back as YAML", () => {
    expect(config.startsWith("#cloud-config\n")).toBe(true);
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

  describe("files are packed (gzipped) when that is smaller and they hold no Terraform reference", () => {
    const script = "#!/bin/sh\n" + "echo 'the same line, again and again'\n".repeat(40);
    const reference = "PASSWORD=${TfToken[TOKEN.12]}\n" + "X=1\n".repeat(40);
    const files = YAML.parse(
      renderCloudConfig({
        hostname: "h",
        packages: [],
        writeFiles: [
          { path: "/script", content: script },
          { path: "/env", content: reference },
          { path: "/tiny", content: "a\n" },
        ],
        runcmd: [],
      }),
    ).write_files as { path: string; content: string; encoding?: string }[];
    const byPath = (path: string) => files.find((file) => file.path === path)!;

    test("a script that compresses is gzipped, and unpacks to the same text", () => {
      expect(byPath("/script").encoding).toBe("gz+b64");
      expect(gunzipSync(Buffer.from(byPath("/script").content, "base64")).toString("utf8")).toBe(script);
    });

    test("a file with a Terraform reference stays text (Terraform could not resolve it inside base64)", () => {
      expect(byPath("/env")).toEqual(expect.objectContaining({ content: reference }));
      expect(byPath("/env").encoding).toBeUndefined();
    });

    test("a file gzip would not shrink stays text", () => {
      expect(byPath("/tiny")).toEqual(expect.objectContaining({ content: "a\n" }));
    });
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
