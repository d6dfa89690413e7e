import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { gunzipSync, gzipSync } from "zlib";

import { CERTIFICATE_PATHS } from "../cloud-init/certificate";
import { filesRunAtBoot, parseUserData } from "../cloud-init/cloud-config";
import { FAILOVER_PATHS, VRRP_LINK } from "../cloud-init/keepalived";
import { METADATA_GUARD } from "../cloud-init/metadata-guard";
import { resolveStack } from "../lab/emulations/terraform";
import { labComputedValues } from "../lab/lab";
import { installScript } from "../tools/rollout";
import { droplet, parseCloudConfig, scratchFolder, StackJson, synthStack } from "./helpers";

/**
 * Every generated artifact is checked by the real tool that will read it:
 * cloud-init, HAProxy, Nginx and ShellCheck. The tools are Debian packages
 * that .ci/run installs; a missing tool fails these tests, it never skips them.
 */
function run(command: string, args: string[], options: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", ...options });
  if (result.error) throw new Error(`${command} could not run (${result.error.message}): install it (see .ci/run)`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** A value computed the first time it is asked for, then kept. */
function once<T>(compute: () => T): () => T {
  let value: { readonly it: T } | undefined;
  return () => (value ??= { it: compute() }).it;
}

/**
 * `check`, run once per distinct input. Many rendered files are byte-identical
 * across the five configurations (every droplet's metadata guard, most
 * scripts): each distinct input is checked once, by the same tool with the
 * same arguments, and every test that renders it asserts on that verdict. The
 * tools are deterministic: it is the verdict each test would get on its own.
 */
function oncePerInput<T>(check: (input: string) => T): (input: string) => T {
  const verdicts = new Map<string, T>();
  return (input) => {
    if (!verdicts.has(input)) verdicts.set(input, check(input));
    return verdicts.get(input)!;
  };
}

/** A file name for a distinct input. */
const digest = (content: string) => createHash("sha256").update(content).digest("hex").slice(0, 16);

const { dir: workdir, write: writeTemp } = scratchFolder("foobar-static-");

// A CA for lb-01 to trust, as the lab passes one (cloud-init's ca_certs module).
const trustedCaFile = writeTemp("trusted-ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");

const stacks: Record<string, StackJson> = {
  defaults: synthStack(),
  "three web servers, apex, trusted CA": synthStack({ webServers: 3, apexRecord: true, acmeCaFile: trustedCaFile }),
  "HTTPS off": synthStack({ https: false }),
  "two load balancers": synthStack({ loadBalancers: 2, failoverToken: `dop_v1_${"0123456789abcdef".repeat(4)}` }),
  "two load balancers, HTTPS off": synthStack({ loadBalancers: 2, failoverToken: `dop_v1_${"0123456789abcdef".repeat(4)}`, https: false }),
};

/** Every droplet's user-data as the droplet receives it, resolved as the lab (and Terraform) would. */
const userData = Object.entries(stacks).flatMap(([stackName, stack]) =>
  resolveStack(stack, labComputedValues()).droplets.map((d) => ({
    label: `${stackName}: ${d.name}`,
    name: d.name,
    text: d.userData,
  })),
);

/**
 * `cloud-init schema --config-file <file>` for each file: its exit status and
 * output (stdout and stderr). All in one Python process, the interpreter of
 * the `cloud-init` program on PATH, which calls cloud-init's own command-line
 * entry point once per file with those arguments: starting Python and loading
 * cloud-init take half a second, checking a file a few milliseconds.
 */
function cloudInitSchema(files: readonly string[]): { status: number; output: string }[] {
  const found = run("sh", ["-c", "command -v cloud-init"]);
  if (found.status !== 0) throw new Error("cloud-init is not on PATH: install it (see .ci/run)");
  const shebang = /^#!(.+)/.exec(fs.readFileSync(found.output.trim(), "utf8"))![1].trim().split(/\s+/);
  const driver = [
    "import contextlib, io, json, sys, traceback",
    "from cloudinit.cmd.main import main",
    "def schema(path):",
    "    output = io.StringIO()",
    "    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):",
    "        try:",
    '            code = main(["cloud-init", "schema", "--config-file", path])',
    "        except SystemExit as exit:",
    "            code = exit.code",
    "        except Exception:",
    "            traceback.print_exc()",
    "            code = 1",
    "        if code is not None and not isinstance(code, int):  # as sys.exit(code) does",
    "            print(code, file=sys.stderr)",
    "            code = 1",
    '    return {"status": code or 0, "output": output.getvalue()}',
    "results = [schema(path) for path in sys.argv[2:]]",
    'with open(sys.argv[1], "w") as out:',
    "    json.dump(results, out)",
  ].join("\n");
  const resultsFile = path.join(workdir, `cloud-init-schema-${digest(files.join("\n"))}.json`);
  const result = run(shebang[0], [...shebang.slice(1), "-c", driver, resultsFile, ...files]);
  if (result.status !== 0) throw new Error(`cloud-init schema could not run: ${result.output}`);
  return JSON.parse(fs.readFileSync(resultsFile, "utf8"));
}

/**
 * What cloud-init's own code makes of each user-data (merge_user_data.py, run
 * with cloud-init's Python): the parts merged as at boot, one document each.
 */
function mergedByCloudInit(texts: readonly string[]): Record<string, unknown>[] {
  const found = run("sh", ["-c", "command -v cloud-init"]);
  const shebang = /^#!(.+)/.exec(fs.readFileSync(found.output.trim(), "utf8"))![1].trim().split(/\s+/);
  const files = texts.map((text) => writeTemp(`user-data-${digest(text)}.mime`, text));
  const script = path.join(__dirname, "cloud-init", "python", "merge_user_data.py");
  const result = spawnSync(shebang[0]!, [...shebang.slice(1), script, ...files], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`merge_user_data.py failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

describe("cloud-init schema", () => {
  // cloud-init's own code merges the parts; what it makes is what parseUserData says, and valid.
  const merged = once(() => mergedByCloudInit(userData.map((u) => u.text)));
  const badFile = writeTemp("bad.yaml", "#cloud-config\npackages: 5\nruncmd: {a: 1}\n");
  const files = once(() =>
    merged().map((document, i) =>
      writeTemp(`${userData[i]!.label.replace(/\W+/g, "-")}.yaml`, `#cloud-config\n${JSON.stringify(document)}\n`),
    ),
  );
  // The wrongly typed document first: each file after it is judged on its own.
  const verdicts = once(() => cloudInitSchema([badFile, ...files()]));

  test.each(userData.map((u, i) => [u.label, i]))(
    "merges the parts of the user-data of %s as meant, into a valid cloud-config",
    (_label, i) => {
      expect(merged()[i]).toEqual(JSON.parse(JSON.stringify(parseUserData(userData[i]!.text))));
      const result = verdicts()[i + 1];
      expect(result.output).toMatch(/Valid (schema|cloud-config)/);
      expect(result.status).toBe(0);
    },
  );

  test("the merge can fail: a packed part without merge_how replaces the first part's files", () => {
    const u = userData.find((x) => x.name === "web-01")!;
    const [, packedPart] = u.text.split(/^--==foobar-user-data==$/m).slice(1, 3);
    const packed = gunzipSync(Buffer.from(packedPart!.split("\n\n")[1]!, "base64"))
      .toString("utf8")
      .replace(/^merge_how: .*\n/m, "");
    const broken = u.text.replace(packedPart!.split("\n\n")[1]!, gzipSync(packed).toString("base64") + "\n");
    expect((mergedByCloudInit([broken])[0]!.write_files as unknown[]).length).toBeLessThan(parseUserData(u.text).write_files!.length);
  });

  test("rejects a document with a wrongly typed module (the check can fail)", () => {
    expect(verdicts()[0].status).not.toBe(0);
  });

  test("judges each file as the cloud-init command itself does (the bad one, the first and the last)", () => {
    for (const i of [0, 1, files().length]) {
      expect(verdicts()[i]).toEqual(run("cloud-init", ["schema", "--config-file", [badFile, ...files()][i]!]));
    }
  });

  test("checks a user-data with a CA to trust too", () => {
    expect(userData.filter((u) => u.name === "lb-01" && parseUserData(u.text).ca_certs !== undefined)).toHaveLength(1);
  });
});

describe("haproxy -c", () => {
  const configs = userData.filter((u) => u.name.startsWith("lb-"));
  // What boot provides: the certificate (here a throwaway self-signed one)
  // and the variables of the haproxy.service drop-in.
  const certificate = path.join(workdir, "site.pem");
  beforeAll(() => {
    const key = path.join(workdir, "site-key.pem");
    const cert = path.join(workdir, "site-cert.pem");
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=www.foobar.com", "-keyout", key, "-out", cert],
      { stdio: "ignore" },
    );
    fs.writeFileSync(certificate, fs.readFileSync(cert, "utf8") + fs.readFileSync(key, "utf8"));
  });
  const bootEnvironment = { ...process.env, PRIVATE_ADDRESS: "10.10.10.2", STATS_PASSWORD: "dummy-for-haproxy-c" };

  const haproxyConfig = (u: { text: string }) =>
    parseCloudConfig(u.text).write_files.find((f) => f.path === "/etc/haproxy/haproxy.cfg")!.content;

  /**
   * `haproxy -c`, in a fresh network namespace (as nginx and keepalived below)
   * in which this machine's name servers are local addresses that answer
   * nothing: the resolvers section still gets its sockets, and every name
   * fails to resolve at once. The web servers' names fail on the host network
   * too (they resolve only in the deployed stack's zone), but there each run
   * waited 5 s whenever this machine's DNS dropped one of its 20 queries.
   */
  function haproxyCheck(config: string, env: NodeJS.ProcessEnv) {
    const file = writeTemp(`haproxy-${digest(config)}.cfg`, config.replace(CERTIFICATE_PATHS.haproxyPem, certificate));
    const script = [
      "set -e",
      "ip link set lo up",
      `for nameserver in $(awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf); do ip addr add "$nameserver" dev lo; done`,
      `haproxy -c -f ${file}`,
    ].join("\n");
    return run("unshare", ["--net", "sh", "-c", script], { env });
  }
  const haproxyAtBoot = oncePerInput((config) => haproxyCheck(config, bootEnvironment));

  test.each(configs.map((u) => [u.label, u]))("accepts the HAProxy configuration of %s", (_label, u) => {
    const result = haproxyAtBoot(haproxyConfig(u));
    // Only the web servers' internal names may fail to resolve here (they exist
    // in the stack's DNS zone once deployed); any other warning fails.
    const unresolved =
      /^\[WARNING\].*'server (web_servers\/web|acme_challenge\/lb)-\d+' : could not resolve address '(web|lb)-\d+\.internal\.[a-z.]+', disabling server\.$/;
    const warnings = result.output
      .split("\n")
      .filter((line) => /\[WARNING\]|\[ALERT\]/.test(line) && !unresolved.test(line.replace(/\s+\(\d+\) : config : \[[^\]]+\] :/, "")));
    expect(warnings).toEqual([]);
    expect(result.status).toBe(0);
  });

  test("checks the TLS configuration too, and a pair's ACME routing", () => {
    expect(configs.filter((u) => /bind :443 ssl crt/.test(haproxyConfig(u)))).toHaveLength(4);
    expect(configs.filter((u) => /frontend acme_from_peer/.test(haproxyConfig(u)))).toHaveLength(2);
  });

  test("checks HAProxy's Prometheus exporter frontend too, on every load balancer", () => {
    expect(configs.filter((u) => /frontend prometheus/.test(haproxyConfig(u)))).toHaveLength(configs.length);
  });

  test("refuses the configuration when boot did not provide the stats address and password", () => {
    const result = haproxyCheck(haproxyConfig(configs[0]), { PATH: process.env.PATH });
    expect(result.output).toContain("PRIVATE_ADDRESS and STATS_PASSWORD must be set");
    expect(result.status).not.toBe(0);
  });

  test("rejects a broken configuration (the check can fail)", () => {
    expect(haproxyCheck("defaults\n    mode http\nbackend b\n    balance nosuchalgo\n", bootEnvironment).status).not.toBe(0);
  });
});

describe("keepalived --config-test", () => {
  const pairs = userData.filter((u) => parseCloudConfig(u.text).write_files.some((f) => f.path === FAILOVER_PATHS.configFile));
  const script = writeTemp("ok.sh", "#!/bin/bash\nexit 0\n");
  /**
   * Tests a configuration in fresh network and mount namespaces: with the
   * tunnel interface it names, and its scripts where it expects them (root's,
   * not writable by others, as keepalived's script security requires).
   */
  function keepalivedCheck(config: string) {
    const file = writeTemp(`keepalived-${Math.random().toString(36).slice(2)}.conf`, config);
    const install = [FAILOVER_PATHS.healthScript, FAILOVER_PATHS.notifyScript].map((p) => `install -m 0755 ${script} ${p}`).join(" && ");
    const result = run("unshare", [
      "--mount",
      "--net",
      "sh",
      "-c",
      `mount -t tmpfs none /usr/local/sbin && ${install} && ` +
        `ip link add ${VRRP_LINK.name} type vxlan id ${VRRP_LINK.vni} dstport ${VRRP_LINK.udpPort} local 127.0.0.1 && ` +
        `keepalived --config-test -f ${file} -l`,
    ]);
    // Intended: the API moves the reserved IP, keepalived holds no address.
    return result.output.split("\n").filter((line) => line.trim() !== "" && !/No VIP specified/.test(line));
  }
  const password = (text: string) => text.replace(/auth_pass \S+/, "auth_pass abcd1234");
  const keepalivedFindings = oncePerInput(keepalivedCheck);

  test("checks both load balancers of each pair", () => {
    expect(pairs.map((u) => u.name).sort()).toEqual(["lb-01", "lb-01", "lb-02", "lb-02"]);
  });

  test.each(pairs.map((u) => [u.label, u]))("accepts the keepalived configuration of %s", (_label, u) => {
    const config = parseCloudConfig(u.text).write_files.find((f) => f.path === FAILOVER_PATHS.configFile)!.content;
    expect(keepalivedFindings(password(config))).toEqual([]);
  });

  test("rejects a broken configuration (the check can fail)", () => {
    const config = parseCloudConfig(pairs[0]!.text).write_files.find((f) => f.path === FAILOVER_PATHS.configFile)!.content;
    expect(keepalivedCheck(password(config).replace("auth_type PASS", "auth_type NOSUCH"))).not.toEqual([]);
  });
});

describe("nginx -t", () => {
  const sites = userData.filter((u) => u.name.startsWith("web-"));

  /** Tests a site inside a fresh network namespace, so its listen sockets touch nothing on the host. */
  function nginxTest(site: string, listen: string) {
    const dir = fs.mkdtempSync(path.join(workdir, "nginx-"));
    const snippet = writeTemp(`${path.basename(dir)}/listen.conf`, listen);
    // The only change to the site: the snippet that boot writes to /etc/nginx/snippets is read from here.
    const sitePath = writeTemp(`${path.basename(dir)}/site.conf`, site.replace("/etc/nginx/snippets/foobar-listen.conf", snippet));
    const conf = writeTemp(
      `${path.basename(dir)}/nginx.conf`,
      [
        `pid ${dir}/nginx.pid;`,
        "events {}",
        "http {",
        "    include /etc/nginx/mime.types;",
        `    access_log off;`,
        `    client_body_temp_path ${dir}/body;`,
        `    proxy_temp_path ${dir}/proxy;`,
        `    fastcgi_temp_path ${dir}/fastcgi;`,
        `    uwsgi_temp_path ${dir}/uwsgi;`,
        `    scgi_temp_path ${dir}/scgi;`,
        `    include ${sitePath};`,
        "}",
      ].join("\n"),
    );
    const script = [
      "set -e",
      "ip link set lo up",
      // The private address Nginx binds, as boot would find it on the droplet.
      "ip addr add 10.10.10.11/32 dev lo",
      `nginx -t -p ${dir} -e stderr -c ${conf}`,
    ].join("\n");
    return run("unshare", ["--net", "bash", "-c", script]);
  }

  const nginxAtBoot = oncePerInput((site) => nginxTest(site, "listen 10.10.10.11:80 default_server;\n"));

  test.each(sites.map((u) => [u.label, u]))("accepts the Nginx site of %s", (_label, u) => {
    const site = parseCloudConfig(u.text).write_files.find((f) => f.path === "/etc/nginx/sites-available/foobar")!.content;
    const result = nginxAtBoot(site);
    expect(result.output).toContain("test is successful");
    expect(result.status).toBe(0);
  });

  test("checks the Nginx exporter's stub_status server too, on every web server", () => {
    const site = (u: { text: string }) =>
      parseCloudConfig(u.text).write_files.find((f) => f.path === "/etc/nginx/sites-available/foobar")!.content;
    expect(sites.filter((u) => /stub_status;/.test(site(u)))).toHaveLength(sites.length);
  });

  test("rejects a broken site (the check can fail)", () => {
    expect(nginxTest("server { listen 127.0.0.1:80; no_such_directive on; }\n", "").status).not.toBe(0);
  });
});

describe("promtool and amtool", () => {
  const monitors = userData.filter((u) => u.name === "mon-01");
  const file = (u: { text: string }, at: string) => parseCloudConfig(u.text).write_files.find((f) => f.path === at)!.content;

  test("checks mon-01 in every configuration", () => {
    expect(monitors).toHaveLength(Object.keys(stacks).length);
  });

  test.each(monitors.map((u) => [u.label, u]))("promtool accepts the prometheus.yml and alert rules of %s", (_label, u) => {
    const dir = `promtool-${digest(u.text)}`;
    const rules = file(u, "/etc/prometheus/rules/foobar.yml");
    // The only change: the rules file it names is read from here.
    writeTemp(`${dir}/rules/foobar.yml`, rules);
    const config = writeTemp(
      `${dir}/prometheus.yml`,
      file(u, "/etc/prometheus/prometheus.yml").replace("/etc/prometheus/rules/", "rules/"),
    );
    const result = run("promtool", ["check", "config", config]);
    expect(result.output).toContain("SUCCESS");
    expect(result.status).toBe(0);
  });

  test.each(monitors.map((u) => [u.label, u]))("amtool accepts the alertmanager.yml of %s", (_label, u) => {
    const config = file(u, "/etc/prometheus/alertmanager.yml");
    const result = run("amtool", ["check-config", writeTemp(`amtool-${digest(config)}.yml`, config)]);
    expect(result.output).toContain("SUCCESS");
    expect(result.status).toBe(0);
  });
});

/** A runcmd list as cloud-init writes it to its script: strings as they are, lists shell-quoted. */
function runcmdScript(runcmd: (string | string[])[]): string {
  const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;
  return ["#!/bin/sh", ...runcmd.map((item) => (typeof item === "string" ? item : item.map(quote).join(" ")))].join("\n") + "\n";
}

/**
 * ShellCheck over many scripts in one run, with each script's findings (gcc
 * format: `<file>:<line>:<column>: <level>: <message> [SC<code>]`). Every line
 * of its output must be some script's finding, and its exit status must say
 * whether there was any, or every script's check fails.
 */
function shellcheck(scripts: readonly string[]): Map<string, string[]> {
  const files = new Map(scripts.map((script) => [script, writeTemp(`shellcheck/${digest(script)}`, script)]));
  const result = run("shellcheck", ["--severity=style", "--format=gcc", ...files.values()]);
  const lines = result.output.split("\n").filter((line) => line !== "");
  const of = (file: string) => lines.filter((line) => line.startsWith(`${file}:`));
  const attributed = [...files.values()].reduce((n, file) => n + of(file).length, 0);
  if (attributed !== lines.length || (result.status === 0) !== (lines.length === 0)) {
    throw new Error(`shellcheck exited ${result.status} with output that is not findings:\n${result.output}`);
  }
  return new Map([...files].map(([script, file]) => [script, of(file)]));
}

describe("shellcheck", () => {
  const scripts = [
    ...userData.flatMap((u) => {
      const config = parseCloudConfig(u.text);
      const bootcmd = (config.bootcmd ?? []) as string[][];
      return [
        ...[...config.write_files, ...filesRunAtBoot(bootcmd)]
          .filter((f) => f.content.startsWith("#!/bin/"))
          .map((f) => ({ label: `${u.label} ${f.path}`, content: f.content })),
        { label: `${u.label} runcmd`, content: runcmdScript(config.runcmd) },
        // The commands themselves (sh -c '…'): writeAndRun's, for one.
        ...bootcmd
          .filter((argv) => argv[0] === "sh" && argv[1] === "-c")
          .map((argv, i) => ({ label: `${u.label} bootcmd ${i + 1}`, content: `#!/bin/sh\n${argv[2]}\n` })),
      ];
    }),
    // What `npm run rollout` runs on a web server over SSH.
    { label: "rollout's install script", content: `#!/bin/bash\n${installScript()}\n` },
  ];

  test("finds the scripts to check", () => {
    expect(scripts.filter((s) => s.label.includes("foobar-mysql-setup")).length).toBeGreaterThan(0);
    expect(scripts.filter((s) => s.label.includes("foobar-bind-addresses")).length).toBeGreaterThan(0);
    expect(scripts.filter((s) => s.label.includes("foobar-install-certificate")).length).toBeGreaterThan(0);
    expect(scripts.filter((s) => s.label.includes("foobar-placeholder-certificate")).length).toBeGreaterThan(0);
    expect(scripts.filter((s) => s.label.includes("foobar-mount-volume")).length).toBeGreaterThan(0);
    expect(scripts.filter((s) => s.label.includes("foobar-metadata-guard")).length).toBeGreaterThan(0);
    expect(scripts.filter((s) => s.label.includes("bootcmd")).length).toBeGreaterThan(0);
  });

  // One run over every distinct script.
  const findings = once(() => shellcheck(scripts.map((s) => s.content)));

  test.each(scripts.map((s) => [s.label, s]))("finds nothing to fix in %s", (_label, s) => {
    expect(findings().get(s.content)).toEqual([]);
  });

  test("reports a real mistake (the check can fail), as that script's finding only", () => {
    const mistake = "#!/bin/bash\nrm -rf $DIR/*\n";
    const found = shellcheck([mistake, scripts[0].content]);
    expect(found.get(mistake)).not.toEqual([]);
    expect(found.get(scripts[0].content)).toEqual([]);
  });
});

describe("the metadata guard", () => {
  const guards = userData.map((u) => {
    const config = parseCloudConfig(u.text);
    const script = filesRunAtBoot((config.bootcmd ?? []) as string[][]).find((f) => f.path === METADATA_GUARD.script)!.content;
    const unit = config.write_files.find((f) => f.path === METADATA_GUARD.unitPath)!.content;
    return { label: u.label, script, unit };
  });

  // nft checks a ruleset against the kernel without applying it: root (or CAP_NET_ADMIN) needed, as in .ci/run.
  const nftCheck = oncePerInput((ruleset) => run("nft", ["-c", "-f", writeTemp(`nft-${digest(ruleset)}.nft`, ruleset + "\n")]));

  test.each(guards.map((g) => [g.label, g]))("nft -c accepts the ruleset of %s", (_label, g) => {
    const ruleset = /<<'EOF'\n([\s\S]*?)\nEOF\n/.exec(g.script)![1];
    const result = nftCheck(ruleset);
    expect(result.output).toBe("");
    expect(result.status).toBe(0);
  });

  test("nft -c rejects a broken ruleset (the check can fail)", () => {
    expect(
      run("nft", ["-c", "-f", writeTemp("broken.nft", "add rule inet nosuchtable output meta skuid != @nosuchset reject\n")]).status,
    ).not.toBe(0);
  });

  const verifyUnit = oncePerInput((text) => {
    // The only change: ExecStart runs a stand-in here, the script lives on the droplet.
    const standIn = writeTemp("foobar-metadata-guard", "#!/bin/sh\n");
    fs.chmodSync(standIn, 0o755);
    const unit = writeTemp(`unit-${digest(text)}/${METADATA_GUARD.unitName}`, text.replace(METADATA_GUARD.script, standIn));
    return run("systemd-analyze", ["verify", unit]);
  });

  test.each(guards.map((g) => [g.label, g]))("systemd-analyze verify accepts the unit of %s", (_label, g) => {
    const result = verifyUnit(g.unit);
    expect(result.output).toBe("");
    expect(result.status).toBe(0);
  });
});

describe("the sample application", () => {
  test("compiles with the system's Python 3", () => {
    const source = path.resolve(__dirname, "..", "app", "foobar_app.py");
    expect(() => execFileSync("python3", ["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())", source])).not.toThrow();
  });

  test("every droplet is checked", () => {
    expect(userData.map((u) => u.name).sort()).toEqual([
      ...Array(5).fill("lb-01"),
      ...Array(2).fill("lb-02"),
      ...Array(5).fill("mon-01"),
      ...Array(5).fill("web-01"),
      ...Array(5).fill("web-02"),
      "web-03",
    ]);
    expect(droplet(stacks.defaults, "web-01")).toBeDefined();
  });
});
