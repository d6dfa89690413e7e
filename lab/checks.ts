/**
 * End-to-end checks run by `npm run test:lab` against the booted lab.
 *
 * A check returns a short evidence string when it passes and throws (with the
 * evidence of the failure) when it does not. Talk to the lab only through the
 * `Lab` handle: `lab.client([...])` for traffic (from the client namespace),
 * `lab.execIn(name, [...])` to look inside a droplet. Checks run in order and
 * may rely on the ones before them (the fault checks come last).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { userDataText } from "../cloud-init/cloud-config";
import { SAMPLE_APP_DIR } from "../constructs/app-files";
import { LAB_CGROUP } from "./cgroups";
import type { Lab } from "./lab";
import { METADATA_ADDRESS } from "./metadata";
import { BASE_MARKER } from "./rootfs";
import { ACME_NS, CLIENT_ADDRESS, CLIENT_NS } from "./settings";
import { CommandResult, sleep, tryRun } from "./shell";
import type { LabDroplet } from "./terraform";

export interface Check {
  /** A sentence stating the rule: printed as `PASS <name> — <evidence>`. */
  readonly name: string;
  run(lab: Lab): Promise<string>;
}

/** The load balancer and the web servers, by the names the stack gives them. */
export function roles(lab: Lab): { lb: LabDroplet; webs: LabDroplet[]; primary: LabDroplet; replicas: LabDroplet[] } {
  const lb = lab.stack.droplets.find((d) => d.name.startsWith("lb-"));
  const webs = lab.stack.droplets.filter((d) => d.name.startsWith("web-")).sort((a, b) => a.name.localeCompare(b.name));
  if (!lb || webs.length === 0) throw new Error("the stack has no lb-NN or no web-NN droplet");
  return { lb, webs, primary: webs[0], replicas: webs.slice(1) };
}

/** True when the stack's load balancer terminates HTTPS (FOOBAR_HTTPS, on by default). */
export function httpsOn(lab: Lab): boolean {
  return /bind :443 ssl/.test(userDataText(roles(lab).lb.userData));
}

/** The site's host name: `www.<domain>` if the stack has a www record, else the first A record's name. */
export function siteHost(lab: Lab): string {
  const records = lab.stack.records.filter((r) => r.type === "A");
  const www = records.find((r) => r.name === "www") ?? records[0];
  if (!www) throw new Error("the stack has no A record to reach the site by");
  return www.fqdn;
}

/** `https://www.<domain>/`, or `http://` when the stack serves plain HTTP. */
export function siteUrl(lab: Lab): string {
  return `${httpsOn(lab) ? "https" : "http"}://${siteHost(lab)}/`;
}

/**
 * A TLS handshake with lb-01 from the client namespace, by the site's name,
 * trusting only the lab ACME CA's root; `then` is a shell pipe stage for its output.
 */
function tlsHandshake(lab: Lab, options: string, then = "cat"): CommandResult {
  const { lb } = roles(lab);
  const connect = `openssl s_client -connect ${lb.publicIpv4}:443 -servername ${siteHost(lab)} -CAfile ${lab.acme.issuingRootFile}`;
  return lab.client(["sh", "-c", `echo | ${connect} ${options} | ${then}`], 15_000);
}

/** curl options that trust only the lab ACME CA's root: the placeholder certificate fails them. */
function trustLabCa(lab: Lab): string[] {
  return ["--cacert", lab.acme.issuingRootFile];
}

interface HttpAnswer {
  code: string;
  servedBy: string;
  body: string;
}

/** One request from the client namespace, by name. */
export function request(lab: Lab, url: string, extra: string[] = []): HttpAnswer {
  // The status and the served-by header come last, on a line of their own.
  const result = lab.client(
    ["curl", "-sS", "--max-time", "5", ...trustLabCa(lab), "-w", "\\n%{http_code} %header{x-served-by}", ...extra, url],
    15_000,
  );
  const lines = result.stdout.split("\n");
  const [code, servedBy] = (lines.pop() ?? "").split(" ");
  return { code: code || "000", servedBy: servedBy ?? "", body: lines.join("\n") };
}

/** Runs SQL as root inside a droplet (over its socket) and returns the output. */
export function sql(lab: Lab, droplet: string, statement: string, options: string[] = ["--batch", "--skip-column-names"]): string {
  const result = lab.execIn(droplet, ["mysql", ...options, "--execute", statement], 30_000);
  if (result.status !== 0) throw new Error(`${droplet}: mysql failed: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** SHOW REPLICA STATUS of a replica, as name → value. */
export function replicaStatus(lab: Lab, droplet: string): Record<string, string> {
  const text = sql(lab, droplet, "SHOW REPLICA STATUS", ["--vertical"]);
  return Object.fromEntries(
    text
      .split("\n")
      .map((line) => /^\s*(\w+): ?(.*)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]),
  );
}

type Origin = { client: true } | { droplet: string } | { namespace: string };

/** Runs a command in the client namespace, a droplet, or another lab namespace (such as lab-acme). */
function runFrom(lab: Lab, from: Origin, cmd: string[], timeoutMs: number) {
  if ("client" in from) return lab.client(cmd, timeoutMs);
  if ("droplet" in from) return lab.execIn(from.droplet, cmd, timeoutMs);
  return tryRun("ip", ["netns", "exec", from.namespace, ...cmd], { timeoutMs });
}

/** Tries a TCP connection from inside a namespace: "open", "refused" or "dropped" (timed out). */
function tcpFrom(lab: Lab, from: Origin, address: string, port: number): string {
  const probe = ["timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${address}/${port}`];
  const result = runFrom(lab, from, probe, 10_000);
  if (result.status === 0) return "open";
  if (result.status === 124) return "dropped";
  return /refused/i.test(result.stderr)
    ? "refused"
    : `failed (${
        result.stderr
          .trim()
          .split("\n")[0]
          .replace(/^bash: /, "") || result.status
      })`;
}

/** HAProxy's view of each backend server ("UP", "DOWN", …), read from its admin socket. */
export function backendStates(lab: Lab): Record<string, string> {
  const { lb } = roles(lab);
  const script = [
    "import socket",
    "s = socket.socket(socket.AF_UNIX)",
    "s.connect('/run/haproxy/admin.sock')",
    "s.sendall(b'show stat\\n')",
    "data = b''",
    "while True:",
    "    chunk = s.recv(65536)",
    "    if not chunk: break",
    "    data += chunk",
    "print(data.decode())",
  ].join("\n");
  const result = lab.execIn(lb.name, ["python3", "-c", script], 10_000);
  if (result.status !== 0) throw new Error(`HAProxy stats: ${result.stderr.trim()}`);
  const states: Record<string, string> = {};
  for (const line of result.stdout.split("\n")) {
    const fields = line.split(",");
    if (fields[0] === "web_servers" && !["FRONTEND", "BACKEND"].includes(fields[1])) states[fields[1]] = fields[17];
  }
  return states;
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  let last: unknown;
  while (Date.now() - start < timeoutMs) {
    try {
      const value = probe();
      if (value !== undefined) return { value, ms: Date.now() - start };
    } catch (error) {
      last = error;
    }
    await sleep(250);
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last error: ${(last as Error).message})` : ""}`);
}

/** Runs a bash loop in the client namespace until stopped; `stop` resolves with everything it printed. */
export function backgroundClient(script: string) {
  const child = spawn("ip", ["netns", "exec", CLIENT_NS, "bash", "-c", script], { stdio: ["ignore", "pipe", "ignore"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    /** Stops the loop (again: a no-op) and returns its output. */
    async stop(): Promise<string> {
      child.kill("SIGTERM");
      await exited;
      return output;
    },
  };
}

/**
 * Sends requests to the site from the client namespace, one after another,
 * until stopped; counts answers by status and by server.
 */
function continuousClient(lab: Lab, url: string) {
  const script = `while :; do curl -s -o /dev/null --max-time 3 --cacert '${lab.acme.issuingRootFile}' -D - -w 'code=%{http_code}\\n' '${url}' | tr -d '\\r' | grep -iE '^(x-served-by|code=)'; sleep 0.05; done`;
  const client = backgroundClient(script);
  return {
    /** Stops the client (again: a no-op) and counts its answers. */
    async stop() {
      const output = await client.stop();
      const codes = [...output.matchAll(/^code=(\d+)$/gm)].map((m) => m[1]!);
      const failedCodes = codes.filter((code) => code !== "200");
      const byStatus = new Map<string, number>();
      for (const code of failedCodes) byStatus.set(code, (byStatus.get(code) ?? 0) + 1);
      // "000" is curl's code for no answer at all (refused, reset, or its 3 s timeout).
      const detail = [...byStatus].map(([code, count]) => `${count}× ${code}`).join(", ");
      return { total: codes.length, failed: failedCodes.length, byStatus: detail ? ` (${detail})` : "" };
    },
  };
}

/** The host's view of a droplet init's cgroups, one `ID:controllers:path` line per hierarchy. */
function cgroupLines(lab: Lab, droplet: string): string[] {
  const init = lab.initPid(droplet);
  if (init === undefined) throw new Error(`${droplet} is not running`);
  return fs.readFileSync(`/proc/${init}/cgroup`, "utf8").split("\n").filter(Boolean);
}

interface UnitRun {
  state: string;
  mainPid: string;
  /** New on every start of the unit: tells a restart even when the PID number repeats. */
  invocation: string;
}

/** A unit's state, main PID and invocation id inside a droplet. */
function unitInvocation(lab: Lab, droplet: string, unit: string): UnitRun {
  const result = lab.execIn(droplet, ["systemctl", "show", "--property=ActiveState,MainPID,InvocationID", unit]);
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(result.stdout)?.[1] ?? "";
  return { state: value("ActiveState"), mainPid: value("MainPID"), invocation: value("InvocationID") };
}

/**
 * The stack's generated passwords, read from the root-only environment files
 * that hold them on the droplets: value → the variables that hold it.
 *
 * @throws Error when fewer than the three the stack generates are found.
 */
function generatedSecrets(lab: Lab): Map<string, string[]> {
  const { lb, webs } = roles(lab);
  const files: [string, string][] = [
    [lb.name, "/etc/haproxy/foobar-stats.env"],
    ...webs.flatMap((w): [string, string][] => [
      [w.name, "/etc/foobar/app.env"],
      [w.name, "/etc/foobar/mysql-setup.env"],
    ]),
  ];
  const secrets = new Map<string, string[]>();
  for (const [droplet, file] of files) {
    const text = lab.execIn(droplet, ["cat", file]).stdout;
    for (const match of text.matchAll(/^(\w*PASSWORD)=(\S+)$/gm)) {
      secrets.set(match[2]!, [...new Set([...(secrets.get(match[2]!) ?? []), match[1]!])]);
    }
  }
  if (secrets.size < 3) throw new Error(`found only ${secrets.size} generated secret(s) to look for`);
  return secrets;
}

const replicationSettles = 10_000;

export const checks: Check[] = [
  {
    name: "every droplet's cloud-init finished without error",
    async run(lab) {
      const evidence: string[] = [];
      const problems: string[] = [];
      for (const droplet of lab.stack.droplets) {
        const result = lab.execIn(droplet.name, ["cloud-init", "status", "--long"]);
        const status = /^status:\s*(\S+)/m.exec(result.stdout)?.[1] ?? "unknown";
        // Exit 0: done without errors; 1: error; 2: done with recoverable errors (warnings, deprecations).
        if (result.status === 0 && status === "done") {
          evidence.push(`${droplet.name}: ${status}`);
        } else {
          problems.push(`${droplet.name}: status ${status}, exit ${result.status}\n${(result.stdout + result.stderr).trim()}`);
        }
      }
      if (problems.length > 0) throw new Error(problems.join("\n"));
      return evidence.join(", ");
    },
  },
  {
    name: "HAProxy, Nginx, the app server and MySQL are active under systemd",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const expected: [string, string[]][] = [
        [lb.name, ["haproxy.service"]],
        ...webs.map((w): [string, string[]] => [w.name, ["nginx.service", "foobar-app.service", "mysql.service"]]),
      ];
      const evidence: string[] = [];
      for (const [droplet, units] of expected) {
        const result = lab.execIn(droplet, ["systemctl", "is-active", ...units]);
        const states = result.stdout.trim().split("\n");
        if (result.status !== 0) throw new Error(`${droplet}: ${units.map((u, i) => `${u}=${states[i]}`).join(" ")}`);
        evidence.push(`${droplet}: ${units.map((u) => u.replace(".service", "")).join("+")} active`);
      }
      return evidence.join("; ");
    },
  },
  {
    name: "isolation: every droplet has cgroups of its own, and a SIGKILL of a unit in one droplet leaves that unit running in every other droplet",
    async run(lab) {
      // Host view of each init's cgroup in every hierarchy: no two droplets may share one.
      const owner = new Map<string, string>();
      let lines = 0;
      for (const droplet of lab.stack.droplets) {
        for (const line of cgroupLines(lab, droplet.name)) {
          const [, controllers, cgroup] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
          // The droplet's own cgroup, or (unified) nspawn's payload below it.
          const own = `/${LAB_CGROUP}/${droplet.name}`;
          if (!cgroup || !(cgroup.endsWith(own) || cgroup.includes(`${own}/`))) {
            throw new Error(
              `${droplet.name}'s init is in ${controllers || "the unified hierarchy"}:${cgroup}, outside its own ${LAB_CGROUP}/${droplet.name}`,
            );
          }
          const other = owner.get(`${controllers}:${cgroup}`);
          if (other) throw new Error(`${droplet.name} and ${other} share the cgroup ${controllers}:${cgroup}`);
          owner.set(`${controllers}:${cgroup}`, droplet.name);
          lines += 1;
        }
      }
      // ssh.service runs on every droplet and restarts on failure: kill it on one, watch the others.
      const victim = lab.stack.droplets[lab.stack.droplets.length - 1]!;
      const others = lab.stack.droplets.filter((d) => d.name !== victim.name);
      const before = others.map((d) => unitInvocation(lab, d.name, "ssh.service"));
      const victimBefore = unitInvocation(lab, victim.name, "ssh.service");
      await lab.fault(victim.name, "crash", "ssh");
      const restarted = await waitFor(`ssh.service restarting on ${victim.name}`, 30_000, () => {
        const now = unitInvocation(lab, victim.name, "ssh.service");
        return now.state === "active" && now.invocation !== victimBefore.invocation ? now : undefined;
      });
      await sleep(1000);
      const after = others.map((d) => unitInvocation(lab, d.name, "ssh.service"));
      others.forEach((d, i) => {
        if (after[i]!.invocation !== before[i]!.invocation || after[i]!.mainPid !== before[i]!.mainPid) {
          throw new Error(
            `crashing ssh.service on ${victim.name} reached ${d.name}: main PID ${before[i]!.mainPid} → ${after[i]!.mainPid}`,
          );
        }
      });
      return `${lines} cgroup memberships of ${lab.stack.droplets.length} inits, none shared (${cgroupLines(lab, victim.name).find((l) => l.startsWith("0::"))}); ssh.service SIGKILLed on ${victim.name}: restarted there in ${(restarted.ms / 1000).toFixed(1)} s (PID ${victimBefore.mainPid} → ${restarted.value.mainPid}), unchanged on ${others.map((d, i) => `${d.name} (PID ${after[i]!.mainPid})`).join(", ")}`;
    },
  },
  {
    name: "isolation: droplets share no machine-id, host name, SSH host key, D-Bus, /run, /tmp or journal, and none writes into the shared base image",
    async run(lab) {
      const names = lab.stack.droplets.map((d) => d.name);
      const read = (name: string, cmd: string[]): string => {
        const result = lab.execIn(name, cmd);
        if (result.status !== 0) throw new Error(`${name}: ${cmd.join(" ")}: ${result.stderr.trim()}`);
        return result.stdout.trim();
      };
      const distinct = (what: string, values: string[]): void => {
        const seen = new Map<string, string>();
        values.forEach((value, i) => {
          if (!value) throw new Error(`${names[i]} has no ${what}`);
          if (seen.has(value)) throw new Error(`${names[i]} and ${seen.get(value)} share the ${what} ${value}`);
          seen.set(value, names[i]!);
        });
      };
      distinct(
        "machine-id",
        names.map((n) => read(n, ["cat", "/etc/machine-id"])),
      );
      const hostnames = names.map((n) => read(n, ["hostname"]));
      hostnames.forEach((h, i) => {
        if (h !== names[i]) throw new Error(`${names[i]} calls itself "${h}"`);
      });
      distinct(
        "SSH host key",
        names.map((n) => read(n, ["ssh-keygen", "-l", "-f", "/etc/ssh/ssh_host_ed25519_key.pub"]).split(" ")[1] ?? ""),
      );
      distinct(
        "D-Bus system bus id",
        names.map((n) => read(n, ["busctl", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId"])),
      );
      // A file written to /run or /tmp on one droplet is seen by no other.
      const marker = `lab-isolation-${Date.now()}`;
      for (const dir of ["/run", "/tmp"]) {
        read(names[0]!, ["touch", `${dir}/${marker}`]);
        for (const other of names.slice(1)) {
          if (lab.execIn(other, ["test", "-e", `${dir}/${marker}`]).status === 0)
            throw new Error(`${other} sees ${names[0]}'s ${dir}/${marker}`);
        }
        read(names[0]!, ["rm", `${dir}/${marker}`]);
      }
      // Each journal holds its own droplet's messages only.
      for (const name of names) {
        const journalHosts = read(name, ["journalctl", "--quiet", "--field=_HOSTNAME"])
          .split("\n")
          .filter((h) => h !== name && h !== "localhost");
        if (journalHosts.length > 0) throw new Error(`${name}'s journal has messages from ${journalHosts.join(", ")}`);
      }
      // Nothing in the shared base is newer than its completion marker.
      const newer = tryRun("find", [lab.baseRootfs, "-mindepth", "1", "-newer", path.join(lab.baseRootfs, BASE_MARKER), "-print", "-quit"]);
      if (newer.status !== 0 || !lab.baseRootfs) throw new Error(`cannot inspect the base ${lab.baseRootfs}: ${newer.stderr.trim()}`);
      if (newer.stdout.trim()) throw new Error(`the shared base was written to after it was built: ${newer.stdout.trim()}`);
      return `${names.length} distinct machine-ids, host names, SSH host keys and D-Bus ids; /run and /tmp private; each journal names only its droplet; the base ${path.basename(lab.baseRootfs)} unchanged since it was built`;
    },
  },
  {
    name: "the site answers 200 through the load balancer, by name",
    async run(lab) {
      const url = siteUrl(lab);
      // Over HTTPS this also waits for the real certificate: the placeholder fails verification.
      const { value } = await waitFor(`GET ${url} answering 200`, 180_000, () => {
        const answer = request(lab, url);
        return answer.code === "200" ? answer : undefined;
      });
      return `GET ${url} → 200, X-Served-By ${value.servedBy}`;
    },
  },
  {
    name: "HTTPS: lb-01 obtained a certificate for the site from the ACME CA, through certbot and HTTP-01",
    async run(lab) {
      const { lb } = roles(lab);
      const host = siteHost(lab);
      if (!httpsOn(lab)) {
        const certbot = lab.execIn(lb.name, ["sh", "-c", "command -v certbot || systemctl cat foobar-certificate.service"]);
        if (certbot.status === 0) throw new Error(`HTTPS is off but lb-01 has certbot or the certificate unit: ${certbot.stdout.trim()}`);
        const https = tcpFrom(lab, { client: true }, lb.publicIpv4, 443);
        if (https !== "dropped") throw new Error(`HTTPS is off but ${lb.name}:443 is ${https}`);
        return `HTTPS is off (FOOBAR_HTTPS=false): no certbot on ${lb.name}, port 443 dropped`;
      }
      // The placeholder fails verification against the lab CA's root; the real certificate passes.
      const { value, ms } = await waitFor(`a certificate for ${host} issued by the lab CA`, 180_000, () => {
        const shown = tlsHandshake(lab, "-verify_return_error 2>/dev/null", "openssl x509 -noout -subject -issuer -ext subjectAltName");
        return shown.status === 0 && shown.stdout.includes(`DNS:${host}`) ? shown.stdout : undefined;
      });
      const issuer = /issuer=\s*(.*)/.exec(value)?.[1]?.trim();
      const names = /DNS:[^\n]*/.exec(value)?.[0]?.trim();
      if (!issuer?.includes("Pebble")) throw new Error(`certificate issued by "${issuer}", not the lab's pebble CA`);
      const unit = lab.execIn(lb.name, ["systemctl", "show", "-P", "Result", "foobar-certificate.service"]).stdout.trim();
      const answer = request(lab, siteUrl(lab));
      if (answer.code !== "200") throw new Error(`GET ${siteUrl(lab)} with the lab CA's root → ${answer.code}`);
      return `${names} issued by "${issuer}", verified against the lab CA's root (seen after ${ms} ms; foobar-certificate.service result ${unit}); GET ${siteUrl(lab)} → 200`;
    },
  },
  {
    name: "HTTP redirects to HTTPS except ACME challenges; HTTPS answers carry HSTS; no server announces its version",
    async run(lab) {
      const host = siteHost(lab);
      const head = (url: string) =>
        lab
          .client(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", "5", ...trustLabCa(lab), url], 15_000)
          .stdout.replace(/\r/g, "");
      const header = (headers: string, name: string) => new RegExp(`^${name}: *(.*)$`, "im").exec(headers)?.[1];
      const versioned = (headers: string) => /^server: *\S*\/\d/im.test(headers) || /^x-powered-by:/im.test(headers);
      if (!httpsOn(lab)) {
        const plain = head(`http://${host}/`);
        if (!/^HTTP\/1\.1 200/.test(plain)) throw new Error(`HTTPS off: http://${host}/ → ${plain.split("\n")[0]}`);
        if (header(plain, "strict-transport-security")) throw new Error("HTTPS off, yet an HSTS header is sent");
        if (versioned(plain)) throw new Error(`a version is announced: ${plain}`);
        return `HTTPS is off: http://${host}/ → 200 with no redirect and no HSTS; Server: ${header(plain, "server")}`;
      }
      const redirect = head(`http://${host}/api/messages?page=2`);
      const location = header(redirect, "location");
      if (!/^HTTP\/1\.1 301/.test(redirect) || location !== `https://${host}/api/messages?page=2`) {
        throw new Error(`http:// → ${redirect.split("\n")[0]}, Location ${location}`);
      }
      const challenge = head(`http://${host}/.well-known/acme-challenge/lab-probe`);
      if (/^HTTP\/1\.1 301/.test(challenge)) throw new Error("an ACME challenge path was redirected to HTTPS");
      const secure = head(`https://${host}/`);
      const hsts = header(secure, "strict-transport-security");
      if (!/^max-age=\d+/.test(hsts ?? "")) throw new Error(`no HSTS header on https://${host}/: ${secure}`);
      for (const headers of [redirect, challenge, secure]) {
        if (versioned(headers)) throw new Error(`a version is announced: ${headers}`);
      }
      return `http://${host}/api/messages?page=2 → 301 ${location}; ACME path on HTTP → ${challenge.split("\n")[0].split(" ")[1]} (not redirected); HTTPS Strict-Transport-Security: ${hsts}; Server: ${header(secure, "server")}`;
    },
  },
  {
    name: "TLS: 1.1 is refused, 1.2 and 1.3 are accepted, ALPN offers HTTP/2",
    async run(lab) {
      if (!httpsOn(lab)) return "HTTPS is off: nothing listens for TLS (port 443 dropped, checked above)";
      const handshake = (options: string) => tlsHandshake(lab, `${options} 2>&1`).stdout;
      // SECLEVEL=0 lets this client offer TLS 1.1 at all: the refusal must come from the server.
      const old = handshake("-tls1_1 -cipher DEFAULT@SECLEVEL=0");
      if (!/alert protocol version/.test(old)) throw new Error(`TLS 1.1 was not refused by the server:\n${old}`);
      const evidence = ['TLS 1.1 → server alert "protocol version"'];
      for (const [version, option] of [
        ["1.2", "-tls1_2"],
        ["1.3", "-tls1_3"],
      ]) {
        const text = handshake(`${option} -alpn h2,http/1.1`);
        const cipher = /Cipher is (\S+)/.exec(text)?.[1];
        if (!/Verify return code: 0 \(ok\)/.test(text) || !cipher || cipher === "(NONE)")
          throw new Error(`TLS ${version} failed:\n${text}`);
        const alpn = /ALPN protocol: (\S+)/.exec(text)?.[1];
        if (alpn !== "h2") throw new Error(`TLS ${version}: ALPN ${alpn ?? "none"}, expected h2`);
        evidence.push(`TLS ${version} → ${cipher}, ALPN ${alpn}`);
      }
      return evidence.join("; ");
    },
  },
  {
    name: "HAProxy health checks see every web server UP",
    async run(lab) {
      const { webs } = roles(lab);
      // A replica passes its health check only once replication runs, which
      // can be a few seconds after its cloud-init finished.
      const { value, ms } = await waitFor("every backend UP", 120_000, () => {
        const states = backendStates(lab);
        return webs.every((w) => states[w.name] === "UP") ? states : undefined;
      });
      const empty = Object.keys(value).length - webs.length;
      return `${webs.map((w) => `${w.name} ${value[w.name]}`).join(", ")}${empty > 0 ? ` (${empty} empty slots)` : ""} (after ${ms} ms)`;
    },
  },
  {
    name: "20 requests are spread evenly across the web servers",
    async run(lab) {
      const { webs } = roles(lab);
      const url = siteUrl(lab);
      const counts: Record<string, number> = Object.fromEntries(webs.map((w) => [w.name, 0]));
      for (let i = 0; i < 20; i++) {
        const answer = request(lab, url);
        if (answer.code !== "200") throw new Error(`request ${i + 1}: ${answer.code}`);
        counts[answer.servedBy] = (counts[answer.servedBy] ?? 0) + 1;
      }
      const fair = 20 / webs.length;
      const uneven = Object.entries(counts).filter(([, n]) => Math.abs(n - fair) > 1);
      const evidence = Object.entries(counts)
        .map(([name, n]) => `${name}=${n}`)
        .join(" ");
      if (uneven.length > 0 || Object.keys(counts).length !== webs.length) throw new Error(`uneven: ${evidence}`);
      return evidence;
    },
  },
  {
    name: "replication is healthy on every replica, with GTID auto-position over TLS",
    async run(lab) {
      const { replicas } = roles(lab);
      if (replicas.length === 0) return "no replica in this stack";
      return replicas
        .map((replica) => {
          const status = replicaStatus(lab, replica.name);
          const healthy =
            status.Replica_IO_Running === "Yes" &&
            status.Replica_SQL_Running === "Yes" &&
            status.Auto_Position === "1" &&
            status.Source_SSL_Allowed === "Yes";
          const evidence = `${replica.name}: IO=${status.Replica_IO_Running} SQL=${status.Replica_SQL_Running} Auto_Position=${status.Auto_Position} SSL=${status.Source_SSL_Allowed} lag=${status.Seconds_Behind_Source}s from ${status.Source_Host}`;
          if (!healthy) throw new Error(`${evidence} ${status.Last_IO_Error ?? ""} ${status.Last_SQL_Error ?? ""}`);
          return evidence;
        })
        .join("; ");
    },
  },
  {
    name: "a write through the app lands on the primary and is read back from a replica server",
    async run(lab) {
      const { primary, replicas } = roles(lab);
      const url = `${siteUrl(lab)}api/messages`;
      const text = `lab check ${Date.now()}`;
      const posted = request(lab, url, ["-X", "POST", "-H", "Content-Type: application/json", "--data", JSON.stringify({ body: text })]);
      if (posted.code !== "201") throw new Error(`POST ${url} → ${posted.code} ${posted.body}`);
      const id = JSON.parse(posted.body).id as number;
      const onPrimary = sql(lab, primary.name, `SELECT body FROM foobar.messages WHERE id = ${Number(id)}`);
      if (onPrimary !== text) throw new Error(`message ${id} is not on ${primary.name} (got "${onPrimary}")`);
      if (replicas.length === 0) return `message ${id} written via ${posted.servedBy}, on ${primary.name}`;
      const { value, ms } = await waitFor(`message ${id} read from a replica`, replicationSettles, () => {
        const answer = request(lab, `${url}/${id}`);
        if (answer.code !== "200") return undefined;
        const body = JSON.parse(answer.body);
        return body.read_from === "local-replica" && body.message?.body === text ? body.served_by : undefined;
      });
      return `message ${id} written via ${posted.servedBy} to ${primary.name}; read back from ${value}'s replica after ${ms} ms`;
    },
  },
  {
    name: "firewall: from the internet, only the load balancer's HTTP(S) is reachable; SSH only from the admin CIDR",
    async run(lab) {
      const { lb, webs } = roles(lab);
      // lab-acme stands for any address on the internet; the client is the admin CIDR.
      const internet = { namespace: ACME_NS };
      const evidence: string[] = [];
      const webPorts = httpsOn(lab) ? [80, 443] : [80];
      for (const port of webPorts) {
        const state = tcpFrom(lab, { client: true }, lb.publicIpv4, port);
        if (state !== "open") throw new Error(`${lb.name}:${port} is ${state}`);
      }
      evidence.push(`${lb.name}:${webPorts.join("/")} open`);
      for (const web of webs) {
        for (const port of [80, 3306, 22]) {
          const state = tcpFrom(lab, internet, web.publicIpv4, port);
          if (state !== "dropped") throw new Error(`${web.name} ${web.publicIpv4}:${port} is ${state} from ${ACME_NS}`);
        }
        for (const port of [80, 3306]) {
          const state = tcpFrom(lab, { client: true }, web.publicIpv4, port);
          if (state !== "dropped") throw new Error(`${web.name} ${web.publicIpv4}:${port} is ${state} from the client`);
        }
        evidence.push(`${web.name}:80/3306/22 dropped`);
      }
      for (const port of [22, 8404]) {
        const state = tcpFrom(lab, internet, lb.publicIpv4, port);
        if (state !== "dropped") throw new Error(`${lb.name}:${port} is ${state} from ${ACME_NS}`);
      }
      evidence.push(`${lb.name}:22/8404 dropped`);
      for (const droplet of [lb, ...webs]) {
        const ssh = tcpFrom(lab, { client: true }, droplet.publicIpv4, 22);
        if (ssh !== "open") throw new Error(`${droplet.name}:22 is ${ssh} from the admin CIDR ${CLIENT_ADDRESS}/32`);
      }
      evidence.push(`SSH open from the admin CIDR ${CLIENT_ADDRESS}/32 on every droplet`);
      return evidence.join(", ");
    },
  },
  {
    name: "firewall: the load balancer reaches web HTTP but not MySQL; web servers reach the primary's MySQL",
    async run(lab) {
      const { lb, webs, primary, replicas } = roles(lab);
      const evidence: string[] = [];
      for (const web of webs) {
        const http = tcpFrom(lab, { droplet: lb.name }, web.privateIpv4, 80);
        const mysql = tcpFrom(lab, { droplet: lb.name }, web.privateIpv4, 3306);
        if (http !== "open" || mysql !== "dropped") throw new Error(`from ${lb.name}: ${web.name}:80 ${http}, :3306 ${mysql}`);
        evidence.push(`${lb.name}→${web.name}:80 open, :3306 dropped`);
      }
      for (const replica of replicas) {
        const mysql = tcpFrom(lab, { droplet: replica.name }, primary.privateIpv4, 3306);
        if (mysql !== "open") throw new Error(`${replica.name}→${primary.name}:3306 ${mysql}`);
        evidence.push(`${replica.name}→${primary.name}:3306 open`);
      }
      return evidence.join(", ");
    },
  },
  {
    name: "HAProxy's stats page needs its password and is reachable only on lb-01's private address and loopback",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const env = lab.execIn(lb.name, ["cat", "/etc/haproxy/foobar-stats.env"]).stdout;
      const password = /^STATS_PASSWORD=(\S+)$/m.exec(env)?.[1];
      if (!password) throw new Error("no STATS_PASSWORD in lb-01's /etc/haproxy/foobar-stats.env");
      const stats = (from: Origin, address: string, user?: string) =>
        runFrom(
          lab,
          from,
          [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "3",
            ...(user ? ["-u", user] : []),
            `http://${address}:8404/`,
          ],
          10_000,
        ).stdout.trim();
      const fromVpc = { droplet: webs[0].name };
      const anonymous = stats(fromVpc, lb.privateIpv4);
      const wrong = stats(fromVpc, lb.privateIpv4, "admin:wrong");
      const right = stats(fromVpc, lb.privateIpv4, `admin:${password}`);
      const loopback = stats({ droplet: lb.name }, "127.0.0.1", `admin:${password}`);
      if (anonymous !== "401" || wrong !== "401" || right !== "200" || loopback !== "200") {
        throw new Error(`from ${webs[0].name}: no password ${anonymous}, wrong ${wrong}, right ${right}; loopback ${loopback}`);
      }
      const publicPort = tcpFrom(lab, { client: true }, lb.publicIpv4, 8404);
      const privateFromClient = tcpFrom(lab, { client: true }, lb.privateIpv4, 8404);
      if (publicPort === "open" || privateFromClient === "open") {
        throw new Error(`from the client: ${lb.publicIpv4}:8404 ${publicPort}, ${lb.privateIpv4}:8404 ${privateFromClient}`);
      }
      const listening = lab
        .execIn(lb.name, ["ss", "-Hltn", "sport = :8404"])
        .stdout.trim()
        .split("\n")
        .map((l) => l.split(/\s+/)[3])
        .sort();
      const expected = [`${lb.privateIpv4}:8404`, "127.0.0.1:8404"].sort();
      if (JSON.stringify(listening) !== JSON.stringify(expected)) throw new Error(`listening on ${listening.join(", ")}`);
      return `listens on ${listening.join(" and ")}; from ${webs[0].name}: 401 without or with a wrong password, 200 with it; from the client: ${lb.publicIpv4}:8404 ${publicPort}, ${lb.privateIpv4}:8404 ${privateFromClient}`;
    },
  },
  {
    name: "ufw is active on every droplet with its tier's rules",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const vpc = lab.stack.vpc.ipRange;
      const expected: Record<string, string[]> = {
        [lb.name]: [
          "80/tcp ALLOW IN Anywhere",
          ...(httpsOn(lab) ? ["443/tcp ALLOW IN Anywhere"] : []),
          `8404/tcp ALLOW IN ${vpc}`,
          `22/tcp ALLOW IN ${CLIENT_ADDRESS}`,
        ],
        ...Object.fromEntries(
          webs.map((w) => [w.name, [`80/tcp ALLOW IN ${vpc}`, `3306/tcp ALLOW IN ${vpc}`, `22/tcp ALLOW IN ${CLIENT_ADDRESS}`]]),
        ),
      };
      const evidence: string[] = [];
      for (const [name, rules] of Object.entries(expected)) {
        const status = lab.execIn(name, ["ufw", "status", "verbose"]).stdout;
        if (!/^Status: active$/m.test(status)) throw new Error(`${name}: ${status}`);
        if (!/^Default: deny \(incoming\)/m.test(status)) throw new Error(`${name}: default incoming policy is not deny:\n${status}`);
        const actual = status
          .split("\n")
          .filter((line) => /ALLOW IN/.test(line) && !line.includes("(v6)"))
          .map((line) =>
            line
              .replace(/#.*$/, "")
              .trim()
              .replace(/\s{2,}/g, " "),
          );
        if (JSON.stringify(actual) !== JSON.stringify(rules)) {
          throw new Error(`${name}: rules ${JSON.stringify(actual)}, expected ${JSON.stringify(rules)}`);
        }
        evidence.push(`${name}: ${rules.map((r) => r.replace(" ALLOW IN ", " from ")).join(", ")}`);
      }
      return `active, default deny incoming; ${evidence.join("; ")}`;
    },
  },
  {
    name: "sshd refuses password authentication; unattended security upgrades are on",
    async run(lab) {
      const evidence: string[] = [];
      for (const droplet of lab.stack.droplets) {
        const attempt = lab.client(
          [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            `root@${droplet.publicIpv4}`,
            "true",
          ],
          20_000,
        );
        const methods = /Permission denied \(([^)]*)\)/.exec(attempt.stderr)?.[1];
        if (attempt.status === 0 || methods !== "publickey") {
          throw new Error(
            `${droplet.name}: ssh without a key exited ${attempt.status}, server offers "${methods}": ${attempt.stderr.trim()}`,
          );
        }
        const effective = lab.execIn(droplet.name, ["/usr/sbin/sshd", "-T"]).stdout;
        // Key case and the alias printed for prohibit-password differ between OpenSSH versions.
        const setting = (name: string) => new RegExp(`^${name} (\\S+)$`, "im").exec(effective)?.[1];
        if (
          setting("passwordauthentication") !== "no" ||
          !["prohibit-password", "without-password"].includes(setting("permitrootlogin") ?? "")
        ) {
          throw new Error(
            `${droplet.name}: sshd -T says passwordauthentication ${setting("passwordauthentication")}, permitrootlogin ${setting("permitrootlogin")}`,
          );
        }
        const upgrades = lab.execIn(droplet.name, ["apt-config", "dump", "APT::Periodic::Unattended-Upgrade"]).stdout.trim();
        const timer = lab.execIn(droplet.name, ["systemctl", "is-enabled", "apt-daily-upgrade.timer"]).stdout.trim();
        if (!upgrades.includes('"1"') || timer !== "enabled")
          throw new Error(`${droplet.name}: ${upgrades || "no Unattended-Upgrade setting"}, apt-daily-upgrade.timer ${timer}`);
        evidence.push(droplet.name);
      }
      return `${evidence.join(", ")}: "Permission denied (publickey)" to a password login from the admin CIDR; sshd -T PasswordAuthentication no, PermitRootLogin prohibit-password; Unattended-Upgrade "1", apt-daily-upgrade.timer enabled`;
    },
  },
  {
    name: "MySQL refuses a login without TLS from another server, and accepts the same login over TLS",
    async run(lab) {
      const { primary, replicas } = roles(lab);
      if (replicas.length === 0) return "no second web server in this stack";
      const client = replicas[0];
      const login = (mode: string) =>
        lab.execIn(
          client.name,
          [
            "bash",
            "-c",
            `. /etc/foobar/app.env && MYSQL_PWD="$FOOBAR_DB_PASSWORD" mysql --ssl-mode=${mode} --connect-timeout=5 -h ${primary.privateIpv4} -u "$FOOBAR_DB_USER" --batch --skip-column-names -e "SHOW SESSION STATUS LIKE 'Ssl_version'"`,
          ],
          20_000,
        );
      // TLS first: it puts the account in caching_sha2_password's cache, so that the
      // plain login below reaches the server's transport rule (error 3159) instead
      // of stopping at the client's "Authentication requires secure connection"
      // (2061), which a cold cache gives whatever require_secure_transport says.
      const tls = login("REQUIRED");
      const version = /Ssl_version\s+(\S+)/.exec(tls.stdout)?.[1];
      if (tls.status !== 0 || !version) throw new Error(`the TLS login failed: ${tls.stderr}`);
      const plain = login("DISABLED");
      if (plain.status === 0 || !/3159|insecure transport/i.test(plain.stderr)) {
        throw new Error(
          `a non-TLS login from ${client.name} to ${primary.name} was not refused for transport: exit ${plain.status} ${plain.stdout}${plain.stderr}`,
        );
      }
      return `${client.name}→${primary.name} as the app user: --ssl-mode=DISABLED refused (${plain.stderr.trim().split("\n").pop()}); --ssl-mode=REQUIRED accepted over ${version}`;
    },
  },
  {
    name: "secret files are 0600 and owned by their service user; no secret is in cloud-init's logs",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const host = siteHost(lab);
      const expected: [string, string, string][] = [
        [lb.name, "/etc/haproxy/foobar-stats.env", "haproxy:haproxy 600"],
        ...(httpsOn(lab)
          ? ([
              [lb.name, "/etc/haproxy/certs/site.pem", "haproxy:haproxy 600"],
              [lb.name, `/etc/letsencrypt/live/${host}/privkey.pem`, "root:root 600"],
            ] as [string, string, string][])
          : []),
        ...webs.flatMap((w): [string, string, string][] => [
          [w.name, "/etc/foobar/app.env", "foobar-app:foobar-app 600"],
          [w.name, "/etc/foobar/mysql-setup.env", "root:root 600"],
        ]),
      ];
      for (const [droplet, file, owner] of expected) {
        const actual = lab.execIn(droplet, ["stat", "-L", "-c", "%U:%G %a", file]).stdout.trim();
        if (actual !== owner) throw new Error(`${droplet}:${file} is "${actual}", expected "${owner}"`);
      }
      const secrets = new Set(generatedSecrets(lab).keys());
      const logs = ["/var/log/cloud-init.log", "/var/log/cloud-init-output.log"];
      let bytes = 0;
      for (const droplet of lab.stack.droplets) {
        for (const log of logs) {
          const text = lab.execIn(droplet.name, ["cat", log]).stdout;
          if (text.length === 0) throw new Error(`${droplet.name}:${log} is empty or missing`);
          bytes += text.length;
          for (const secret of secrets) {
            if (text.includes(secret)) throw new Error(`${droplet.name}:${log} contains a secret (${secret.slice(0, 4)}…)`);
          }
        }
      }
      return `${expected.length} secret files with the expected owner and mode 0600; none of ${secrets.size} secrets in ${(bytes / 1024).toFixed(0)} KiB of cloud-init logs on ${lab.stack.droplets.length} droplets`;
    },
  },
  {
    name: "secrets: only root reaches the metadata service's user-data, and the app's user can read no generated password but its own database password",
    async run(lab) {
      const { webs } = roles(lab);
      const secrets = generatedSecrets(lab);
      const url = `http://${METADATA_ADDRESS}/metadata/v1/user-data`;
      const evidence: string[] = [];
      for (const droplet of lab.stack.droplets) {
        // The service works, and gives each droplet its own user-data: root gets it.
        const asRoot = lab.execIn(droplet.name, ["curl", "-sS", "--max-time", "5", url], 15_000);
        if (asRoot.status !== 0) throw new Error(`${droplet.name}: root could not fetch ${url}: ${asRoot.stderr.trim()}`);
        if (asRoot.stdout !== droplet.userData)
          throw new Error(`${droplet.name}: the metadata service answered root with user-data that is not ${droplet.name}'s`);
        const user = webs.some((w) => w.name === droplet.name) ? "foobar-app" : "nobody";
        // Numeric ids: a name can fail to parse (Debian's nobody has the group nogroup), and a
        // command that never ran must not pass for one that was refused.
        const [uid, gid] = ["-u", "-g"].map((flag) => lab.execIn(droplet.name, ["id", flag, user]).stdout.trim());
        const asUser = (cmd: string[], input?: string) =>
          lab.execIn(droplet.name, ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--", ...cmd], 120_000, input);
        const whoami = asUser(["id", "-un"]);
        if (whoami.stdout.trim() !== user)
          throw new Error(`${droplet.name}: cannot run commands as ${user}: ${(whoami.stderr || whoami.stdout).trim()}`);
        const refused = asUser(["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", url]);
        // 7: could not connect, what the stack's guard does (an nftables reject); anything else is not the guard.
        if (refused.status !== 7) {
          throw new Error(
            `${droplet.name}: ${user} fetching ${url}: curl exit ${refused.status} (HTTP ${refused.stdout || "-"}), expected 7 (refused): ${refused.stderr.trim()}`,
          );
        }
        // Every file the user can read (not /proc, /sys, devices): which generated passwords are in it?
        const found = asUser(
          // Patterns on stdin ("-f -"): never on a command line. (/dev/stdin cannot reopen the socket node gives as stdin.)
          ["grep", "-rHoFs", "--devices=skip", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev", "-f", "-", "/"],
          [...secrets.keys()].join("\n") + "\n",
        );
        // 0: found, 1: not found, 2: some files unreadable (as expected for this user); anything else: grep did not run.
        if (found.status > 2) throw new Error(`${droplet.name}: grep as ${user} failed (exit ${found.status}): ${found.stderr.trim()}`);
        const leaks = found.stdout
          .split("\n")
          .filter(Boolean)
          .map((line) => ({
            file: line.slice(0, line.lastIndexOf(":")),
            names: secrets.get(line.slice(line.lastIndexOf(":") + 1)) ?? ["?"],
          }))
          // The app must read its own database password; nothing else of the kind.
          .filter(({ file, names }) => !(user === "foobar-app" && file === "/etc/foobar/app.env" && names.includes("FOOBAR_DB_PASSWORD")));
        if (leaks.length > 0) {
          throw new Error(`${droplet.name}: ${user} can read ${leaks.map((l) => `${l.names.join("/")} in ${l.file}`).join(", ")}`);
        }
        // Nor on any process's command line.
        const cmdlines = asUser(["sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '"]);
        const onCommandLine = [...secrets].filter(([value]) => cmdlines.stdout.includes(value)).map(([, names]) => names.join("/"));
        if (onCommandLine.length > 0) throw new Error(`${droplet.name}: ${onCommandLine.join(", ")} visible on a command line`);
        evidence.push(`${droplet.name}: root 200, ${user} refused (curl exit ${refused.status})`);
      }
      return `${evidence.join("; ")}; none of ${secrets.size} generated passwords readable by those users in any file or command line, but foobar-app's own database password in /etc/foobar/app.env`;
    },
  },
  {
    name: "a lagging replica (SQL thread stopped) leaves HAProxy's rotation, and returns when it catches up",
    async run(lab) {
      const { lb, replicas } = roles(lab);
      if (replicas.length === 0) return "no replica in this stack";
      const replica = replicas[0];
      const health = () =>
        lab.execIn(lb.name, [
          "curl",
          "-s",
          "-w",
          "\\n%{http_code}",
          "--max-time",
          "3",
          "-H",
          `Host: ${siteHost(lab)}`,
          `http://${replica.privateIpv4}/health`,
        ]).stdout;
      sql(lab, replica.name, "STOP REPLICA SQL_THREAD");
      const began = Date.now();
      try {
        const down = await waitFor(`HAProxy marking ${replica.name} down`, 60_000, () =>
          backendStates(lab)[replica.name]?.startsWith("DOWN") ? true : undefined,
        );
        const report = health().split("\n");
        const code = report.pop();
        const problem = JSON.parse(report.join("\n") || "{}").problem;
        if (code !== "503") throw new Error(`${replica.name}'s /health → ${code} with its SQL thread stopped`);
        const servedBy = new Set<string>();
        for (let i = 0; i < 10; i++) {
          const answer = request(lab, siteUrl(lab));
          if (answer.code !== "200") throw new Error(`GET ${siteUrl(lab)} → ${answer.code} while ${replica.name} lags`);
          servedBy.add(answer.servedBy);
        }
        if (servedBy.has(replica.name)) throw new Error(`${replica.name} still served requests while lagging`);
        sql(lab, replica.name, "START REPLICA SQL_THREAD");
        const up = await waitFor(`${replica.name} back in rotation`, 60_000, () =>
          backendStates(lab)[replica.name] === "UP" ? true : undefined,
        );
        return `SQL thread stopped: /health 503 ("${problem}"), marked DOWN after ${(down.ms / 1000).toFixed(1)} s, 10/10 requests served by ${[...servedBy].join(", ")}; restarted: UP again after ${(up.ms / 1000).toFixed(1)} s (${((Date.now() - began) / 1000).toFixed(1)} s in all)`;
      } finally {
        lab.execIn(replica.name, ["mysql", "--execute", "START REPLICA SQL_THREAD"]);
      }
    },
  },
  {
    name: "fault: Nginx stopped on the primary's server, the site keeps serving and the server rejoins",
    async run(lab) {
      return nginxOrPowerFault(lab, "nginx");
    },
  },
  {
    name: "fault: a replica server powered off, the site keeps serving and the server rejoins",
    async run(lab) {
      return nginxOrPowerFault(lab, "power");
    },
  },
  {
    name: "fault: a replica's MySQL stopped, reads fall back to the primary; restarted, it catches up with nothing lost",
    async run(lab) {
      const { lb, primary, replicas } = roles(lab);
      if (replicas.length === 0) return "no replica in this stack";
      const replica = replicas[0];
      const url = `${siteUrl(lab)}api/messages`;
      await lab.fault(replica.name, "stop", "mysql");
      // Reads through the site keep working, and the replica's own app reads from the primary.
      for (let i = 0; i < 10; i++) {
        const answer = request(lab, url);
        if (answer.code !== "200") throw new Error(`GET ${url} → ${answer.code} while ${replica.name}'s MySQL is down`);
      }
      const direct = lab.execIn(lb.name, [
        "curl",
        "-s",
        "--max-time",
        "5",
        "-H",
        `Host: ${new URL(url).host}`,
        `http://${replica.privateIpv4}/api/messages`,
      ]);
      const readFrom = JSON.parse(direct.stdout || "{}").read_from;
      if (readFrom !== "primary") throw new Error(`${replica.name}'s app read from "${readFrom}" with its MySQL down: ${direct.stdout}`);
      // Writes while the replica is down must arrive once it is back.
      for (let i = 0; i < 5; i++) {
        const posted = request(lab, url, [
          "-X",
          "POST",
          "-H",
          "Content-Type: application/json",
          "--data",
          JSON.stringify({ body: `while down ${i}` }),
        ]);
        if (posted.code !== "201") throw new Error(`POST while ${replica.name}'s MySQL is down → ${posted.code}`);
      }
      await lab.fault(replica.name, "start", "mysql");
      const primaryCount = sql(lab, primary.name, "SELECT COUNT(*) FROM foobar.messages");
      const { ms } = await waitFor(`${replica.name} catching up to ${primaryCount} rows`, 60_000, () =>
        sql(lab, replica.name, "SELECT COUNT(*) FROM foobar.messages") === primaryCount ? true : undefined,
      );
      const status = replicaStatus(lab, replica.name);
      if (status.Replica_IO_Running !== "Yes" || status.Replica_SQL_Running !== "Yes") {
        throw new Error(`${replica.name} after restart: IO=${status.Replica_IO_Running} SQL=${status.Replica_SQL_Running}`);
      }
      return `reads 10/10 served with ${replica.name}'s MySQL down (its app read from the primary); 5 writes meanwhile; after restart ${replica.name} caught up in ${ms} ms: ${primaryCount} rows on both`;
    },
  },
  {
    name: "no primary: the primary's MySQL stopped under load; static files and reads keep being served (the replica serves what it has, saying how old), writes fail fast with a clear 503; started again, replication resumes with nothing lost",
    async run(lab) {
      const { primary, replicas } = roles(lab);
      if (replicas.length === 0) return "no replica in this stack";
      const site = siteUrl(lab);
      const trust = `--cacert '${lab.acme.issuingRootFile}'`;
      // One static read, one database read and one write per round, each line: ms kind code seconds [body].
      const script = [
        "while :; do",
        `  echo "$(date +%s%3N) static $(curl -s -o /dev/null --max-time 5 ${trust} -w '%{http_code} %{time_total}' '${site}')"`,
        `  echo "$(date +%s%3N) read $(curl -s --max-time 5 ${trust} -w ' %{http_code} %{time_total}' '${site}api/messages' | tail -c 300 | tr -d '\\n')"`,
        `  echo "$(date +%s%3N) write $(curl -s --max-time 10 ${trust} -H 'Content-Type: application/json' --data '{"body":"no primary"}' -w ' %{http_code} %{time_total}' '${site}api/messages' | tr -d '\\n')"`,
        "  sleep 0.2",
        "done",
      ].join("\n");
      const countBefore = sql(lab, primary.name, "SELECT COUNT(*) FROM foobar.messages");
      const client = backgroundClient(script);
      let stoppedAt = 0;
      let down: { ms: number };
      let age: string;
      try {
        await sleep(2000);
        stoppedAt = Date.now();
        await lab.fault(primary.name, "stop", "mysql");
        await waitFor(`HAProxy marking ${primary.name} down`, 60_000, () =>
          backendStates(lab)[primary.name]?.startsWith("DOWN") ? true : undefined,
        );
        // Measured from the stop: systemctl stop itself takes a few seconds.
        down = { ms: Date.now() - stoppedAt };
        await sleep(15_000);
        age = request(lab, `${site}api/messages`).body;
      } finally {
        await lab.fault(primary.name, "start", "mysql");
      }
      await sleep(2000);
      const lines = (await client.stop()).split("\n").filter(Boolean);
      const rows = lines.map((line) => {
        const [at, kind, ...rest] = line.split(" ");
        const seconds = Number(rest.pop());
        const code = rest.pop() ?? "";
        return { at: Number(at), kind: kind!, code, seconds, body: rest.join(" ") };
      });
      const detected = stoppedAt + down.ms;
      const during = rows.filter((r) => r.at > detected && r.at < detected + 15_000);
      const failedAfter = (kind: string) => during.filter((r) => r.kind === kind && r.code !== "200");
      const writes = during.filter((r) => r.kind === "write");
      const badWrites = writes.filter((r) => r.code !== "503" || !/"error": "no writable primary"/.test(r.body) || r.seconds > 3);
      const problems = [
        ...failedAfter("static").map((r) => `static ${r.code}`),
        ...failedAfter("read").map((r) => `read ${r.code}${r.body ? `: ${r.body.slice(0, 160)}` : ""}`),
        ...badWrites.slice(0, 3).map((r) => `write ${r.code} in ${r.seconds} s: ${r.body.slice(0, 120)}`),
      ];
      if (writes.length === 0) problems.push("no write was tried while the primary was down");
      const ageField = /"data_age_seconds": ([0-9.]+|null)/.exec(age)?.[1];
      if (!ageField || ageField === "null" || Number(ageField) < 10)
        problems.push(`reads do not say their data is old: ${age.slice(0, 160)}`);
      if (problems.length > 0)
        throw new Error(`after HAProxy's detection (${(down.ms / 1000).toFixed(1)} s): ${problems.slice(0, 6).join("; ")}`);
      const caughtUp = await replicaCaughtUp(lab, primary.name, replicas[0]!.name);
      const countAfter = sql(lab, primary.name, "SELECT COUNT(*) FROM foobar.messages");
      if (Number(countAfter) < Number(countBefore)) throw new Error(`the primary lost rows: ${countBefore} before, ${countAfter} after`);
      const failedBefore = rows.filter((r) => r.at >= stoppedAt && r.at <= detected && r.kind !== "write" && r.code !== "200").length;
      const slowest = Math.max(...writes.map((r) => r.seconds));
      return (
        `${primary.name} DOWN in HAProxy ${(down.ms / 1000).toFixed(1)} s after the stop (${failedBefore} static/read requests failed in that window); ` +
        `then 15 s: ${during.filter((r) => r.kind === "static").length} static and ${during.filter((r) => r.kind === "read").length} reads, 0 failed, ` +
        `reads saying data_age_seconds ${ageField}; ${writes.length} writes, all 503 "no writable primary" within ${slowest.toFixed(2)} s; ` +
        `restarted: ${caughtUp}`
      );
    },
  },
  {
    name: "crash: a replica's mysqld SIGKILLed under load; systemd restarts it, replication resumes, row counts match, the primary's MySQL is untouched (reads in flight on the dead connections are expected to fail until the failover issue)",
    async run(lab) {
      const { primary, replicas } = roles(lab);
      if (replicas.length === 0) return "no replica in this stack";
      const replica = replicas[0]!;
      const primaryBefore = unitInvocation(lab, primary.name, "mysql.service");
      const replicaBefore = unitInvocation(lab, replica.name, "mysql.service");
      const url = `${siteUrl(lab)}api/messages`;
      let crashedAt = 0;
      const report = await faultUnderLoad(lab, {
        server: replica.name,
        url,
        inject: () => {
          crashedAt = Date.now();
          return lab.fault(replica.name, "crash", "mysql");
        },
        downWindowMs: 10_000,
        meanwhile: async () => `${writeMessages(lab, url, 5, "after the crash")}/5 writes accepted meanwhile`,
        recover: async () => {
          await waitFor(`systemd restarting mysql.service on ${replica.name}`, 120_000, () => {
            const now = unitInvocation(lab, replica.name, "mysql.service");
            return now.state === "active" && now.invocation !== replicaBefore.invocation ? now : undefined;
          });
          // When systemd had the new mysqld active, in the droplet's own words (its clock is the host's).
          const shown = lab
            .execIn(replica.name, ["systemctl", "show", "--timestamp=unix", "--property=ActiveEnterTimestamp", "--value", "mysql.service"])
            .stdout.trim();
          const activeAt = Number(shown.replace(/^@/, "")) * 1000;
          return `systemd had a new mysqld active ${((activeAt - crashedAt) / 1000).toFixed(1)} s after the kill`;
        },
      });
      const caughtUp = await replicaCaughtUp(lab, primary.name, replica.name);
      const primaryAfter = unitInvocation(lab, primary.name, "mysql.service");
      if (primaryAfter.invocation !== primaryBefore.invocation) {
        throw new Error(
          `crashing ${replica.name}'s mysqld restarted ${primary.name}'s (main PID ${primaryBefore.mainPid} → ${primaryAfter.mainPid})`,
        );
      }
      return `${report}; ${caughtUp}; ${primary.name}'s mysqld untouched (PID ${primaryAfter.mainPid})`;
    },
  },
  {
    name: "crash: Nginx SIGKILLed on the primary's server under load; HAProxy takes it out and back once restarted (requests in flight at the kill may fail: HAProxy retries only failed connections)",
    async run(lab) {
      const { webs } = roles(lab);
      if (webs.length < 2) return "only one web server: nothing to fail over to";
      const target = webs[0]!;
      const report = await faultUnderLoad(lab, {
        server: target.name,
        url: siteUrl(lab),
        inject: () => lab.fault(target.name, "crash", "nginx"),
        downWindowMs: 30_000,
        recover: async () => {
          // Debian's nginx.service does not restart on failure: the operator (here, the check) does.
          const state = unitInvocation(lab, target.name, "nginx.service").state;
          await lab.fault(target.name, "start", "nginx");
          return `nginx.service was ${state}, started again`;
        },
      });
      return report;
    },
  },
  {
    name: "partition: a replica server cut off for 20 s under load rejoins once healed and replication catches up (requests HAProxy sent there before marking it DOWN are expected to fail)",
    async run(lab) {
      const { primary, replicas } = roles(lab);
      if (replicas.length === 0) return "no replica in this stack";
      const replica = replicas[0]!;
      const url = `${siteUrl(lab)}api/messages`;
      let partitionedAt = 0;
      const report = await faultUnderLoad(lab, {
        server: replica.name,
        url,
        inject: async () => {
          partitionedAt = Date.now();
          return lab.fault(replica.name, "partition");
        },
        downWindowMs: 20_000,
        meanwhile: async () => `${writeMessages(lab, url, 5, "during the partition")}/5 writes accepted meanwhile`,
        recover: async () => {
          await sleep(Math.max(0, 20_000 - (Date.now() - partitionedAt)));
          await lab.fault(replica.name, "heal");
          return `healed after ${((Date.now() - partitionedAt) / 1000).toFixed(1)} s`;
        },
      });
      return `${report}; ${await replicaCaughtUp(lab, primary.name, replica.name)}`;
    },
  },
  {
    name: "day two: the site is at a reserved IP held by lb-01; droplets find each other by internal name; MySQL's data is on each web server's volume",
    async run(lab) {
      const { lb, webs, primary, replicas } = roles(lab);
      const [reserved] = lab.stack.reservedIps;
      if (!reserved) throw new Error("the stack has no reserved IP");
      const www = lab.stack.records.find((r) => r.fqdn === siteHost(lab));
      if (www?.value !== reserved.ip) throw new Error(`${siteHost(lab)} points at ${www?.value}, not the reserved IP ${reserved.ip}`);
      if (reserved.assignedTo !== lb.name) throw new Error(`the reserved IP is assigned to ${reserved.assignedTo}, not ${lb.name}`);
      const held = lab.execIn(lb.name, ["ip", "-4", "-o", "addr", "show", "to", `${reserved.ip}/32`]).stdout.trim();
      if (!held) throw new Error(`${lb.name} does not hold ${reserved.ip}`);
      const answer = request(lab, siteUrl(lab));
      if (answer.code !== "200") throw new Error(`GET ${siteUrl(lab)} (→ ${reserved.ip}) answered ${answer.code}`);
      const primaryName = `mysql-primary.internal.${lab.stack.records[0]!.domain}`;
      const resolved = lab.execIn(replicas[0]?.name ?? primary.name, ["getent", "ahostsv4", primaryName]).stdout.split(/\s+/)[0];
      if (resolved !== primary.privateIpv4)
        throw new Error(`${primaryName} resolves to ${resolved} inside the droplets, not ${primary.privateIpv4}`);
      // By the address the database agent resolved past DNS caches (the record's, right now).
      const sources = () => replicas.map((r) => `${r.name} → ${replicaStatus(lab, r.name).Source_Host}`);
      await waitFor(`replicas replicating from ${resolved}`, 30_000, () =>
        replicas.every((r) => replicaStatus(lab, r.name).Source_Host === resolved) ? true : undefined,
      ).catch(() => {
        throw new Error(`replicas replicate from ${sources().join(", ")}, not ${primaryName} (${resolved})`);
      });
      const sourceHosts = sources();
      const mounts = webs.map((w) => {
        const [source, fstype] = lab.execIn(w.name, ["findmnt", "-n", "-o", "SOURCE,FSTYPE", "/var/lib/mysql"]).stdout.trim().split(/\s+/);
        if (!source?.includes(`scsi-0DO_Volume_${w.name}-mysql`) && !source?.startsWith("/dev/loop")) {
          throw new Error(`${w.name}: /var/lib/mysql is on ${source ?? "the droplet's own disk"}, not its volume`);
        }
        return `${w.name} ${fstype} on its volume`;
      });
      const slots = Object.entries(backendStates(lab));
      const empty = slots.filter(([name]) => !webs.some((w) => w.name === name));
      if (empty.some(([, state]) => !state.startsWith("MAINT")))
        throw new Error(`empty HAProxy slots not in maintenance: ${empty.map((e) => e.join(" ")).join(", ")}`);
      return `www → ${reserved.ip} on ${lb.name}: 200; ${primaryName} → ${resolved}; ${sourceHosts.join(", ")}; ${mounts.join(", ")}; ${empty.length} empty HAProxy slots in MAINT`;
    },
  },
  {
    name: "day two: a new application version rolls out one server at a time with 0 failed requests, and every server then serves it",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const marker = `release-${Date.now()}`;
      const release = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-release-"));
      fs.cpSync(SAMPLE_APP_DIR, release, { recursive: true });
      fs.writeFileSync(path.join(release, "static", "version.txt"), `${marker}\n`);
      const {
        result: lines,
        total,
        failed,
        byStatus,
      } = await underLoad(lab, `${siteUrl(lab)}api/messages`, async () => {
        try {
          return await lab.rollout({ ...process.env, FOOBAR_APP_DIR: release });
        } finally {
          fs.rmSync(release, { recursive: true, force: true });
        }
      });
      if (failed > 0) throw new Error(`${failed} of ${total} requests failed during the rollout${byStatus}: ${lines.join("; ")}`);
      for (const web of webs) {
        const served = lab
          .execIn(lb.name, ["curl", "-s", "--max-time", "5", "-H", `Host: ${siteHost(lab)}`, `http://${web.privateIpv4}/version.txt`])
          .stdout.trim();
        if (served !== marker) throw new Error(`${web.name} serves version "${served}", not ${marker}`);
      }
      return `${total} requests to /api/messages during the rollout, ${failed} failed; ${lines.join("; ")}; every server serves ${marker}`;
    },
  },
  {
    name: "day two: web-01 (the primary) replaced for a user-data change keeps every row, replication runs again, the site's address is unchanged (the replica keeps serving; requests HAProxy sends to the new web-01 before its health checks fail are expected to fail, and are counted)",
    async run(lab) {
      const { primary, replicas } = roles(lab);
      const url = `${siteUrl(lab)}api/messages`;
      writeMessages(lab, url, 5, "before replacing the primary");
      const rows = () =>
        sql(lab, primary.name, "SELECT CONCAT_WS(', ', COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0)) FROM foobar.messages");
      const before = rows();
      const address = lab.stack.reservedIps[0]!.ip;
      const oldPrivate = primary.privateIpv4;
      const {
        result: report,
        total,
        failed,
        byStatus,
      } = await underLoad(lab, url, async () => {
        const applied = await lab.apply({ ...process.env, FOOBAR_REPLICA_MAX_LAG: "11" }, [primary.name]);
        await waitFor(`${primary.name} UP in HAProxy after its replacement`, 180_000, () =>
          backendStates(lab)[primary.name] === "UP" ? true : undefined,
        );
        return applied;
      });
      if (report.replaced.join() !== primary.name)
        throw new Error(`apply replaced ${report.replaced.join(", ") || "nothing"}, not ${primary.name}: ${report.lines.join("; ")}`);
      const after = rows();
      if (after !== before) throw new Error(`the new ${primary.name} holds (count, max id, sum of ids) ${after}, before it was ${before}`);
      const caughtUp = await Promise.all(replicas.map((r) => replicaCaughtUp(lab, primary.name, r.name)));
      const now = lab.droplet(primary.name);
      if (lab.stack.reservedIps[0]!.ip !== address)
        throw new Error(`the site's address changed from ${address} to ${lab.stack.reservedIps[0]!.ip}`);
      const posted = request(lab, url, [
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        JSON.stringify({ body: "after replacing the primary" }),
      ]);
      if (posted.code !== "201") throw new Error(`a write after the replacement → ${posted.code}`);
      return `${report.lines.join("; ")}; private address ${oldPrivate} → ${now.privateIpv4}; rows (count, max id, sum) ${after} before and after; ${caughtUp.join("; ")}; site still at ${address}, writes accepted; under load: ${total} requests, ${failed} failed${byStatus}`;
    },
  },
  {
    name: "day two: lb-01 replaced keeps the site's address and its certificate: the ACME CA takes no new order",
    async run(lab) {
      const { lb } = roles(lab);
      const address = lab.stack.reservedIps[0]!.ip;
      // With HTTPS off there is no certificate to keep, and no ACME order to avoid.
      const serial = () => (httpsOn(lab) ? tlsHandshake(lab, "", "openssl x509 -noout -serial").stdout.trim() : "none: HTTPS is off");
      const serialBefore = serial();
      const ordersBefore = lab.acmeOrders();
      const {
        result: report,
        total,
        failed,
        byStatus,
      } = await underLoad(lab, siteUrl(lab), async () => {
        const applied = await lab.apply(process.env, [lb.name]);
        await waitFor("the site answering through the new load balancer", 120_000, () =>
          request(lab, siteUrl(lab)).code === "200" ? true : undefined,
        );
        return applied;
      });
      if (report.replaced.join() !== lb.name) throw new Error(`apply replaced ${report.replaced.join(", ") || "nothing"}, not ${lb.name}`);
      if (lab.stack.reservedIps[0]!.ip !== address || lab.stack.reservedIps[0]!.assignedTo !== lb.name)
        throw new Error(`the site's address moved: ${JSON.stringify(lab.stack.reservedIps[0])}`);
      const serialAfter = serial();
      if (serialAfter !== serialBefore)
        throw new Error(`the new ${lb.name} serves certificate ${serialAfter}, before it was ${serialBefore}`);
      const orders = lab.acmeOrders() - ordersBefore;
      if (orders !== 0) throw new Error(`the ACME CA took ${orders} new order(s) for the new ${lb.name}`);
      return `${report.lines.join("; ")}; ${lb.name} now ${lab.droplet(lb.name).publicIpv4}, the site still at ${address}; same certificate (${serialAfter}), 0 new ACME orders; under load: ${total} requests, ${failed} failed${byStatus} (the site is down while the new load balancer boots)`;
    },
  },
  {
    name: "day two: FOOBAR_WEB_SERVERS from 2 to 3 on a running lab replaces nothing; web-03 joins the rotation and replicates",
    async run(lab) {
      const { webs, primary } = roles(lab);
      const next = `web-${String(webs.length + 1).padStart(2, "0")}`;
      const report = await lab.apply({ ...process.env, FOOBAR_WEB_SERVERS: String(webs.length + 1) });
      if (report.replaced.length > 0 || report.deleted.length > 0)
        throw new Error(`apply replaced ${report.replaced.join(", ")} and deleted ${report.deleted.join(", ")}`);
      if (report.created.join() !== next) throw new Error(`apply created ${report.created.join(", ") || "nothing"}, not ${next}`);
      const up = await waitFor(`${next} UP in HAProxy`, 180_000, () => (backendStates(lab)[next] === "UP" ? true : undefined));
      const caughtUp = await replicaCaughtUp(lab, primary.name, next);
      const served = new Set<string>();
      for (let i = 0; i < 3 * (webs.length + 1); i++) served.add(request(lab, siteUrl(lab)).servedBy);
      if (!served.has(next)) throw new Error(`no request was served by ${next}: ${[...served].join(", ")}`);
      return `${report.lines.join("; ")}; ${next} UP in HAProxy ${(up.ms / 1000).toFixed(1)} s after its cloud-init finished; ${caughtUp}; requests served by ${[...served].sort().join(", ")}`;
    },
  },
];

/**
 * Stops Nginx on the first web server, or powers off the last one, under a
 * continuous client; it must go DOWN in HAProxy and come back, and while
 * HAProxy still counts it in, a request may be lost only if redispatching
 * fails too: at most a couple.
 */
async function nginxOrPowerFault(lab: Lab, fault: "nginx" | "power"): Promise<string> {
  const { webs } = roles(lab);
  if (webs.length < 2) return "only one web server: nothing to fail over to";
  const target = fault === "nginx" ? webs[0]! : webs[webs.length - 1]!;
  return faultUnderLoad(lab, {
    server: target.name,
    url: siteUrl(lab),
    inject: () => (fault === "nginx" ? lab.fault(target.name, "stop", "nginx") : lab.fault(target.name, "poweroff")),
    downWindowMs: 60_000,
    requireDown: true,
    meanwhile: async () => {
      await sleep(2000);
      return "";
    },
    recover: async () => {
      await (fault === "nginx" ? lab.fault(target.name, "start", "nginx") : lab.fault(target.name, "poweron"));
      return fault === "nginx" ? "Nginx started again" : "powered on again";
    },
    maxFailed: 2,
  });
}

interface FaultUnderLoad {
  /** The HAProxy backend server to watch (a web server's name). */
  readonly server: string;
  /** What the continuous client requests. */
  readonly url: string;
  inject(): Promise<unknown>;
  /** How long to watch for HAProxy marking the server DOWN before going on without. */
  readonly downWindowMs: number;
  /** Fail unless HAProxy marks the server DOWN within the window. @default false */
  readonly requireDown?: boolean;
  /** Fail when more requests than this fail. @default - any number, reported */
  readonly maxFailed?: number;
  /** Runs while the fault lasts; returns evidence. */
  meanwhile?(): Promise<string>;
  /** Ends the fault (or waits for the product to); returns evidence. */
  recover(): Promise<string>;
}

/**
 * Injects a fault while a client requests `url` continuously, and reports
 * requests sent and failed (by status), the time until HAProxy marks the
 * server DOWN (if it does within the window), and until it is UP again after
 * recovery. Throws only when the server does not come back.
 */
async function faultUnderLoad(lab: Lab, fault: FaultUnderLoad): Promise<string> {
  // A fault measured on a server HAProxy already counts out would time nothing.
  await waitFor(`${fault.server} UP in HAProxy before the fault`, 60_000, () =>
    backendStates(lab)[fault.server] === "UP" ? true : undefined,
  );
  const client = continuousClient(lab, fault.url);
  try {
    await sleep(1000);
    const began = Date.now();
    await fault.inject();
    // Measured from the fault, not from when watching began.
    const markedDown = await waitFor(`HAProxy marking ${fault.server} DOWN`, fault.downWindowMs, () =>
      backendStates(lab)[fault.server]?.startsWith("DOWN") ? true : undefined,
    ).then(
      () => Date.now() - began,
      (error: Error) => {
        if (fault.requireDown) throw error;
        return undefined;
      },
    );
    const meanwhile = fault.meanwhile ? await fault.meanwhile() : "";
    const recovered = await fault.recover();
    const recoveredAt = Date.now();
    await waitFor(`${fault.server} UP in HAProxy again`, 180_000, () => (backendStates(lab)[fault.server] === "UP" ? true : undefined));
    const upAfter = Date.now() - recoveredAt;
    await sleep(1000);
    const { total, failed, byStatus } = await client.stop();
    if (total < 10) throw new Error(`the client sent only ${total} requests`);
    if (fault.maxFailed !== undefined && failed > fault.maxFailed) throw new Error(`${failed} of ${total} requests failed${byStatus}`);
    const down =
      markedDown === undefined
        ? `not marked DOWN within ${fault.downWindowMs / 1000} s`
        : `marked DOWN after ${(markedDown / 1000).toFixed(1)} s`;
    return [
      `${total} requests, ${failed} failed${byStatus}`,
      down,
      ...(meanwhile ? [meanwhile] : []),
      recovered,
      `UP ${(upAfter / 1000).toFixed(1)} s later`,
    ].join("; ");
  } finally {
    await client.stop();
  }
}

/** Runs `action` while a continuous client requests `url` (a second before and after); returns its result and the client's counts. */
export async function underLoad<T>(
  lab: Lab,
  url: string,
  action: () => Promise<T>,
): Promise<{ result: T; total: number; failed: number; byStatus: string }> {
  const client = continuousClient(lab, url);
  try {
    await sleep(1000);
    const result = await action();
    await sleep(1000);
    return { result, ...(await client.stop()) };
  } finally {
    await client.stop();
  }
}

/** POSTs `count` messages through the site; returns how many were accepted (201). */
export function writeMessages(lab: Lab, url: string, count: number, label: string): number {
  let accepted = 0;
  for (let i = 0; i < count; i++) {
    const posted = request(lab, url, [
      "-X",
      "POST",
      "-H",
      "Content-Type: application/json",
      "--data",
      JSON.stringify({ body: `${label} ${i}` }),
    ]);
    if (posted.code === "201") accepted += 1;
  }
  return accepted;
}

/** Waits until the replica replicates again and holds as many messages as the primary. */
export async function replicaCaughtUp(lab: Lab, primary: string, replica: string): Promise<string> {
  const running = await waitFor(`replication running again on ${replica}`, 120_000, () => {
    const status = replicaStatus(lab, replica);
    return status.Replica_IO_Running === "Yes" && status.Replica_SQL_Running === "Yes" ? true : undefined;
  });
  const count = sql(lab, primary, "SELECT COUNT(*) FROM foobar.messages");
  await waitFor(`${replica} catching up to ${count} rows`, 60_000, () =>
    sql(lab, replica, "SELECT COUNT(*) FROM foobar.messages") === count ? true : undefined,
  );
  return `replication running again after ${(running.ms / 1000).toFixed(1)} s, ${count} rows on both`;
}
