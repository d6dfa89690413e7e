import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { packRelease, Release, rollout, RolloutTarget, shellQuote } from "../../tools/rollout";

const release: Release = {
  files: [
    { relativePath: "run.sh", content: "#!/bin/sh\necho hi\n", executable: true },
    { relativePath: "static/index.html", content: "<p>v2</p>\n" },
    { relativePath: "logo.bin", content: Buffer.from([0, 255, 1]).toString("base64"), encoding: "b64" },
  ],
  command: "/srv/foobar/app/run.sh",
};

describe("npm run rollout", () => {
  test("quotes any text as one shell argument", () => {
    const result = spawnSync("sh", ["-c", `printf %s ${shellQuote('it\'s $HOME `x` "y"')}`], { encoding: "utf8" });
    expect(result.stdout).toBe('it\'s $HOME `x` "y"');
  });

  test("packs the files as they are (modes, binary content) and the unit with the command", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollout-test-"));
    spawnSync("tar", ["-xz", "-C", dir], { input: Buffer.from(packRelease(release), "base64") });
    expect(fs.statSync(path.join(dir, "app/run.sh")).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(dir, "app/static/index.html")).mode & 0o777).toBe(0o644);
    expect([...fs.readFileSync(path.join(dir, "app/logo.bin"))]).toEqual([0, 255, 1]);
    expect(fs.readFileSync(path.join(dir, "unit/foobar-app.service"), "utf8")).toContain("ExecStart=/srv/foobar/app/run.sh\n");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A pretend deployment: HAProxy's state per server, every command recorded. */
  function fakeTarget(installFailsOn?: string) {
    const calls: string[] = [];
    const state: Record<string, string> = { "web-01": "UP", "web-02": "UP" };
    const target: RolloutTarget = {
      loadBalancers: ["lb"],
      webServers: [
        { name: "web-01", host: "w1" },
        { name: "web-02", host: "w2" },
      ],
      run: (host, script) => {
        const set = /set server web_servers\/(web-\d+) state (\w+)/.exec(script);
        if (set) {
          calls.push(`${set[1]} ${set[2]}`);
          state[set[1]!] = set[2] === "drain" ? "DRAIN" : "UP";
          return { status: 0, stdout: "", stderr: "" };
        }
        if (script.includes("show stat")) {
          const rows = Object.entries(state).map(([name, s]) => ["web_servers", name, "", "", "0", ...Array(12).fill(""), s].join(","));
          return { status: 0, stdout: rows.join("\n"), stderr: "" };
        }
        if (script.includes("tar -xz")) {
          calls.push(`install on ${host}`);
          return host === installFailsOn
            ? { status: 1, stdout: "", stderr: "the application did not answer /health within 90 s" }
            : { status: 0, stdout: "healthy\n", stderr: "" };
        }
        return { status: 0, stdout: "", stderr: "" };
      },
    };
    return { target, calls };
  }

  test("takes one server at a time out of rotation, installs, and puts it back before the next", async () => {
    const { target, calls } = fakeTarget();
    await rollout(target, release);
    expect(calls).toEqual(["web-01 drain", "install on w1", "web-01 ready", "web-02 drain", "install on w2", "web-02 ready"]);
  });

  test("stops at the first server that does not come back, leaving it drained and the next untouched", async () => {
    const { target, calls } = fakeTarget("w1");
    await expect(rollout(target, release)).rejects.toThrow(
      "rollout stopped at web-01 (left drained, the others untouched): the application did not answer /health within 90 s",
    );
    expect(calls).toEqual(["web-01 drain", "install on w1"]);
  });

  test("refuses with one line when it cannot reach the load balancer", async () => {
    const target: RolloutTarget = {
      loadBalancers: ["203.0.113.10"],
      webServers: [],
      run: () => ({ status: 255, stdout: "", stderr: "ssh: connect to host 203.0.113.10 port 22: Connection timed out\n" }),
    };
    await expect(rollout(target, release)).rejects.toThrow(
      /^rollout: cannot reach the load balancer \(203\.0\.113\.10\) over SSH as root: ssh: connect to host 203\.0\.113\.10 port 22: Connection timed out$/,
    );
  });
});
