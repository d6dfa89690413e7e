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
import type { Lab } from "./lab";
import { ACME_NS, CLIENT_ADDRESS, CLIENT_NS } from "./settings";
import { CommandResult, sleep, tryRun } from "./shell";
import type { LabDroplet } from "./terraform";

export interface Check {
  /** A sentence stating the rule: printed as `PASS <name> — <evidence>`. */
  readonly name: string;
  run(lab: Lab): Promise<string>;
}

/** The load balancer and the web servers, by the names the stack gives them. */
function roles(lab: Lab): { lb: LabDroplet; webs: LabDroplet[]; primary: LabDroplet; replicas: LabDroplet[] } {
  const lb = lab.stack.droplets.find((d) => d.name.startsWith("lb-"));
  const webs = lab.stack.droplets.filter((d) => d.name.startsWith("web-")).sort((a, b) => a.name.localeCompare(b.name));
  if (!lb || webs.length === 0) throw new Error("the stack has no lb-NN or no web-NN droplet");
  return { lb, webs, primary: webs[0], replicas: webs.slice(1) };
}

/** True when the stack's load balancer terminates HTTPS (FOOBAR_HTTPS, on by default). */
export function httpsOn(lab: Lab): boolean {
  return /bind :443 ssl/.test(roles(lab).lb.userData);
}

/** The site's host name: `www.<domain>` if the stack has a www record, else the first A record's name. */
function siteHost(lab: Lab): string {
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
function request(lab: Lab, url: string, extra: string[] = []): HttpAnswer {
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
function sql(lab: Lab, droplet: string, statement: string, options: string[] = ["--batch", "--skip-column-names"]): string {
  const result = lab.execIn(droplet, ["mysql", ...options, "--execute", statement], 30_000);
  if (result.status !== 0) throw new Error(`${droplet}: mysql failed: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** SHOW REPLICA STATUS of a replica, as name → value. */
function replicaStatus(lab: Lab, droplet: string): Record<string, string> {
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
  return /refused/i.test(result.stderr) ? "refused" : `failed (${result.stderr.trim().split("\n")[0].replace(/^bash: /, "") || result.status})`;
}

/** HAProxy's view of each backend server ("UP", "DOWN", …), read from its admin socket. */
function backendStates(lab: Lab): Record<string, string> {
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

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<{ value: T; ms: number }> {
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

/**
 * Sends requests to the site from the client namespace, one after another,
 * until stopped; counts answers by status and by server.
 */
function continuousClient(lab: Lab, url: string) {
  const script = `while :; do curl -s -o /dev/null --max-time 3 --cacert '${lab.acme.issuingRootFile}' -D - -w 'code=%{http_code}\\n' '${url}' | tr -d '\\r' | grep -iE '^(x-served-by|code=)'; sleep 0.05; done`;
  const child = spawn("ip", ["netns", "exec", CLIENT_NS, "bash", "-c", script], { stdio: ["ignore", "pipe", "ignore"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return {
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      const codes = [...output.matchAll(/^code=(\d+)$/gm)].map((m) => m[1]);
      const failed = codes.filter((code) => code !== "200").length;
      return { total: codes.length, failed };
    },
  };
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
        lab.client(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", "5", ...trustLabCa(lab), url], 15_000).stdout.replace(/\r/g, "");
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
      const evidence = ["TLS 1.1 → server alert \"protocol version\""];
      for (const [version, option] of [["1.2", "-tls1_2"], ["1.3", "-tls1_3"]]) {
        const text = handshake(`${option} -alpn h2,http/1.1`);
        const cipher = /Cipher is (\S+)/.exec(text)?.[1];
        if (!/Verify return code: 0 \(ok\)/.test(text) || !cipher || cipher === "(NONE)") throw new Error(`TLS ${version} failed:\n${text}`);
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
      return `${Object.entries(value).map(([name, state]) => `${name} ${state}`).join(", ")} (after ${ms} ms)`;
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
      const evidence = Object.entries(counts).map(([name, n]) => `${name}=${n}`).join(" ");
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
        runFrom(lab, from, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", ...(user ? ["-u", user] : []), `http://${address}:8404/`], 10_000).stdout.trim();
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
      const listening = lab.execIn(lb.name, ["ss", "-Hltn", "sport = :8404"]).stdout.trim().split("\n").map((l) => l.split(/\s+/)[3]).sort();
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
        ...Object.fromEntries(webs.map((w) => [w.name, [`80/tcp ALLOW IN ${vpc}`, `3306/tcp ALLOW IN ${vpc}`, `22/tcp ALLOW IN ${CLIENT_ADDRESS}`]])),
      };
      const evidence: string[] = [];
      for (const [name, rules] of Object.entries(expected)) {
        const status = lab.execIn(name, ["ufw", "status", "verbose"]).stdout;
        if (!/^Status: active$/m.test(status)) throw new Error(`${name}: ${status}`);
        if (!/^Default: deny \(incoming\)/m.test(status)) throw new Error(`${name}: default incoming policy is not deny:\n${status}`);
        const actual = status
          .split("\n")
          .filter((line) => /ALLOW IN/.test(line) && !line.includes("(v6)"))
          .map((line) => line.replace(/#.*$/, "").trim().replace(/\s{2,}/g, " "));
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
          ["ssh", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", `root@${droplet.publicIpv4}`, "true"],
          20_000,
        );
        const methods = /Permission denied \(([^)]*)\)/.exec(attempt.stderr)?.[1];
        if (attempt.status === 0 || methods !== "publickey") {
          throw new Error(`${droplet.name}: ssh without a key exited ${attempt.status}, server offers "${methods}": ${attempt.stderr.trim()}`);
        }
        const effective = lab.execIn(droplet.name, ["/usr/sbin/sshd", "-T"]).stdout;
        // Key case and the alias printed for prohibit-password differ between OpenSSH versions.
        const setting = (name: string) => new RegExp(`^${name} (\\S+)$`, "im").exec(effective)?.[1];
        if (setting("passwordauthentication") !== "no" || !["prohibit-password", "without-password"].includes(setting("permitrootlogin") ?? "")) {
          throw new Error(`${droplet.name}: sshd -T says passwordauthentication ${setting("passwordauthentication")}, permitrootlogin ${setting("permitrootlogin")}`);
        }
        const upgrades = lab.execIn(droplet.name, ["apt-config", "dump", "APT::Periodic::Unattended-Upgrade"]).stdout.trim();
        const timer = lab.execIn(droplet.name, ["systemctl", "is-enabled", "apt-daily-upgrade.timer"]).stdout.trim();
        if (!upgrades.includes('"1"') || timer !== "enabled") throw new Error(`${droplet.name}: ${upgrades || "no Unattended-Upgrade setting"}, apt-daily-upgrade.timer ${timer}`);
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
        lab.execIn(client.name, [
          "bash", "-c",
          `. /etc/foobar/app.env && MYSQL_PWD="$FOOBAR_DB_PASSWORD" mysql --ssl-mode=${mode} --connect-timeout=5 -h ${primary.privateIpv4} -u "$FOOBAR_DB_USER" --batch --skip-column-names -e "SHOW SESSION STATUS LIKE 'Ssl_version'"`,
        ], 20_000);
      const plain = login("DISABLED");
      if (plain.status === 0 || !/3159|insecure transport/i.test(plain.stderr)) {
        throw new Error(`a non-TLS login from ${client.name} to ${primary.name} was not refused for transport: exit ${plain.status} ${plain.stdout}${plain.stderr}`);
      }
      const tls = login("REQUIRED");
      const version = /Ssl_version\s+(\S+)/.exec(tls.stdout)?.[1];
      if (tls.status !== 0 || !version) throw new Error(`the TLS login failed: ${tls.stderr}`);
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
      const secrets = new Set<string>();
      for (const [droplet, file] of expected.filter(([, f]) => f.endsWith(".env"))) {
        const text = lab.execIn(droplet, ["cat", file]).stdout;
        for (const match of text.matchAll(/^\w*PASSWORD=(\S+)$/gm)) secrets.add(match[1]);
      }
      if (secrets.size < 3) throw new Error(`found only ${secrets.size} secret(s) to look for`);
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
    name: "a lagging replica (SQL thread stopped) leaves HAProxy's rotation, and returns when it catches up",
    async run(lab) {
      const { lb, replicas } = roles(lab);
      if (replicas.length === 0) return "no replica in this stack";
      const replica = replicas[0];
      const health = () =>
        lab.execIn(lb.name, ["curl", "-s", "-w", "\\n%{http_code}", "--max-time", "3", "-H", `Host: ${siteHost(lab)}`, `http://${replica.privateIpv4}/health`]).stdout;
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
      const stop = lab.execIn(replica.name, ["systemctl", "stop", "mysql.service"]);
      if (stop.status !== 0) throw new Error(`stopping MySQL on ${replica.name}: ${stop.stderr}`);
      // Reads through the site keep working, and the replica's own app reads from the primary.
      for (let i = 0; i < 10; i++) {
        const answer = request(lab, url);
        if (answer.code !== "200") throw new Error(`GET ${url} → ${answer.code} while ${replica.name}'s MySQL is down`);
      }
      const direct = lab.execIn(lb.name, ["curl", "-s", "--max-time", "5", "-H", `Host: ${new URL(url).host}`, `http://${replica.privateIpv4}/api/messages`]);
      const readFrom = JSON.parse(direct.stdout || "{}").read_from;
      if (readFrom !== "primary") throw new Error(`${replica.name}'s app read from "${readFrom}" with its MySQL down: ${direct.stdout}`);
      // Writes while the replica is down must arrive once it is back.
      for (let i = 0; i < 5; i++) {
        const posted = request(lab, url, ["-X", "POST", "-H", "Content-Type: application/json", "--data", JSON.stringify({ body: `while down ${i}` })]);
        if (posted.code !== "201") throw new Error(`POST while ${replica.name}'s MySQL is down → ${posted.code}`);
      }
      const start = lab.execIn(replica.name, ["systemctl", "start", "mysql.service"], 120_000);
      if (start.status !== 0) throw new Error(`starting MySQL on ${replica.name}: ${start.stderr}`);
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
];

/**
 * Stops Nginx on the first web server, or powers off the second, while a
 * client sends requests continuously; measures how long HAProxy takes to mark
 * it down and how many requests failed, then brings it back and waits for it
 * to rejoin.
 */
async function nginxOrPowerFault(lab: Lab, fault: "nginx" | "power"): Promise<string> {
  const { webs } = roles(lab);
  const target = fault === "nginx" ? webs[0] : webs[webs.length - 1];
  if (webs.length < 2) return "only one web server: nothing to fail over to";
  const client = continuousClient(lab, siteUrl(lab));
  await sleep(1000);
  const began = Date.now();
  if (fault === "nginx") {
    const stop = lab.execIn(target.name, ["systemctl", "stop", "nginx.service"]);
    if (stop.status !== 0) throw new Error(`stopping Nginx on ${target.name}: ${stop.stderr}`);
  } else {
    await lab.powerOff(target.name);
  }
  await waitFor(`HAProxy marking ${target.name} down`, 60_000, () =>
    backendStates(lab)[target.name]?.startsWith("DOWN") ? true : undefined,
  );
  const markedDownAfter = Date.now() - began;
  await sleep(2000);
  if (fault === "nginx") {
    const start = lab.execIn(target.name, ["systemctl", "start", "nginx.service"]);
    if (start.status !== 0) throw new Error(`starting Nginx on ${target.name}: ${start.stderr}`);
  } else {
    await lab.powerOn(target.name);
  }
  const up = await waitFor(`${target.name} rejoining`, 180_000, () =>
    backendStates(lab)[target.name] === "UP" ? true : undefined,
  );
  await sleep(1000);
  const { total, failed } = await client.stop();
  if (total < 20) throw new Error(`the client sent only ${total} requests`);
  // While HAProxy still thinks the server is up, a request can be lost only
  // if redispatching fails too; allow none beyond a couple.
  if (failed > 2) throw new Error(`${failed} of ${total} requests failed`);
  const action = fault === "nginx" ? "Nginx stopped" : "powered off";
  return `${target.name} ${action}: marked DOWN after ${(markedDownAfter / 1000).toFixed(1)} s; ${failed} of ${total} requests failed; rejoined ${(up.ms / 1000).toFixed(1)} s after coming back`;
}
