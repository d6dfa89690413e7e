import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import * as files from "../../cloud-init/files";
import { DROPLET_FILES_ROOT, dropletFile } from "../../cloud-init/files";
import { metadataGuardRuleset } from "../../cloud-init/metadata-guard";
import { synthStack } from "../helpers";

describe("files kept in the tree that mirrors the droplet", () => {
  const dir = path.join(DROPLET_FILES_ROOT, "tmp-test");
  beforeAll(() => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "script"), "path=@@WHERE@@\nagain=@@WHERE@@\n");
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("a file is read from the place it lands on the droplet, its placeholders filled", () => {
    expect(dropletFile("/tmp-test/script", { WHERE: "/etc/x" })).toBe("path=/etc/x\nagain=/etc/x\n");
  });

  test("a placeholder without a value is an error naming the file and the placeholder", () => {
    expect(() => dropletFile("/tmp-test/script")).toThrow(/tmp-test\/script: placeholder @@WHERE@@ has no value/);
  });

  test("a value no placeholder takes is an error too", () => {
    expect(() => dropletFile("/tmp-test/script", { WHERE: "/etc/x", OTHER: "y" })).toThrow(/no placeholder for @@OTHER@@/);
  });
});

/** Every file of the tree, as the path it lands at (`/usr/local/sbin/…`). */
function treeFiles(root: string, under = "/"): string[] {
  return (
    fs
      .readdirSync(path.join(root, under), { withFileTypes: true })
      // Python's bytecode cache (git ignores it) is not part of the tree.
      .filter((entry) => entry.name !== "__pycache__")
      .flatMap((entry) => {
        const file = path.posix.join(under, entry.name);
        return entry.isDirectory() ? treeFiles(root, file) : [file];
      })
      .sort()
  );
}

/** The shell scripts of a tree, found by their shebang. */
function shellScripts(root: string): string[] {
  return treeFiles(root).filter((file) => /^#!\/bin\/(ba)?sh\n/.test(fs.readFileSync(path.join(root, file), "utf8")));
}

/** Runs a checker; a missing tool fails the test, as in static-checks. */
function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.error) throw new Error(`${command} could not run (${result.error.message}): install it (see .ci/run)`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("shellcheck on the scripts as files, placeholders in place", () => {
  const scripts = shellScripts(DROPLET_FILES_ROOT);

  test("finds the scripts by their shebang, bash and sh", () => {
    expect(scripts).toEqual(
      expect.arrayContaining([
        "/usr/local/sbin/foobar-vrrp-link",
        "/usr/local/sbin/foobar-mount-volume",
        "/usr/local/sbin/foobar-metadata-guard",
      ]),
    );
    expect(scripts).not.toContain("/usr/local/sbin/foobar-db-agent");
  });

  test.each(scripts)("finds nothing to fix in %s", (script) => {
    const result = run("shellcheck", ["--severity=style", path.join(DROPLET_FILES_ROOT, script)]);
    expect(result.output).toBe("");
    expect(result.status).toBe(0);
  });

  test("reports a real mistake (the check can fail)", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-files-"));
    try {
      fs.mkdirSync(path.join(root, "sbin"));
      fs.writeFileSync(path.join(root, "sbin", "broken"), '#!/bin/bash\nDIR="@@DIR@@"\nrm -rf $DIR/*\n');
      expect(shellScripts(root)).toEqual(["/sbin/broken"]);
      expect(run("shellcheck", [path.join(root, "sbin", "broken")]).status).not.toBe(0);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("nft -c on the rulesets, their names filled", () => {
  // An nftables name cannot hold a placeholder, so nft checks each ruleset as its renderer fills it.
  const rulesets: Record<string, () => string> = { "/usr/local/sbin/foobar-metadata-guard.nft": metadataGuardRuleset };
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-nft-"));
  afterAll(() => fs.rmSync(workdir, { recursive: true, force: true }));
  const nftCheck = (text: string) => {
    const file = path.join(workdir, "ruleset.nft");
    fs.writeFileSync(file, text);
    return run("nft", ["-c", "-f", file]);
  };

  test("every nftables file of the tree has its renderer here", () => {
    expect(treeFiles(DROPLET_FILES_ROOT).filter((file) => file.endsWith(".nft"))).toEqual(Object.keys(rulesets));
  });

  // nft checks a ruleset against the kernel without applying it: root (or CAP_NET_ADMIN) needed, as in .ci/run.
  test.each(Object.entries(rulesets))("nft -c accepts %s", (_file, render) => {
    const result = nftCheck(render());
    expect(result.output).toBe("");
    expect(result.status).toBe(0);
  });

  test("nft -c rejects the file as stored, its placeholders unfilled (the check can fail)", () => {
    const stored = fs.readFileSync(path.join(DROPLET_FILES_ROOT, "usr/local/sbin/foobar-metadata-guard.nft"), "utf8");
    expect(nftCheck(stored).status).not.toBe(0);
  });
});

describe("the tree holds no file the stack does not use", () => {
  test("every file of the tree is read by a renderer of the stack", () => {
    const read = new Set<string>();
    const readFile = files.dropletFile;
    const spy = jest.spyOn(files, "dropletFile").mockImplementation((dropletPath, values) => {
      read.add(dropletPath);
      return readFile(dropletPath, values);
    });
    try {
      // Volumes, web servers with backups, and a pair of load balancers with HTTPS: every renderer runs.
      synthStack({
        loadBalancers: 2,
        failoverToken: `dop_v1_${"0123456789abcdef".repeat(4)}`,
        backupBucket: "foobar-backups",
        backupRecipient: `age1${"q".repeat(58)}`,
        backupRegion: "nyc3",
      });
    } finally {
      spy.mockRestore();
    }
    expect(read.size).toBeGreaterThan(0);
    expect(treeFiles(DROPLET_FILES_ROOT).filter((file) => !read.has(file))).toEqual([]);
  });
});
