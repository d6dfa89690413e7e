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
import { CLIENT_NS } from "./settings";
import { sleep } from "./shell";
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

/** `http://www.<domain>/` if the stack has a www record, else the first A record's name. */
export function siteUrl(lab: Lab): string {
  const records = lab.stack.records.filter((r) => r.type === "A");
  const www = records.find((r) => r.name === "www") ?? records[0];
  if (!www) throw new Error("the stack has no A record to reach the site by");
  return `http://${www.fqdn}/`;
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
    ["curl", "-sS", "--max-time", "5", "-w", "\\n%{http_code} %header{x-served-by}", ...extra, url],
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

/** Tries a TCP connection from inside a namespace: "open", "refused" or "dropped" (timed out). */
function tcpFrom(lab: Lab, from: { client: true } | { droplet: string }, address: string, port: number): string {
  const probe = ["timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${address}/${port}`];
  const result = "client" in from ? lab.client(probe, 10_000) : lab.execIn(from.droplet, probe, 10_000);
  if (result.status === 0) return "open";
  if (result.status === 124) return "dropped";
  return /refused/i.test(result.stderr) ? "refused" : `failed (${result.stderr.trim() || result.status})`;
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
function continuousClient(url: string) {
  const script = `while :; do curl -s -o /dev/null --max-time 3 -D - -w 'code=%{http_code}\\n' '${url}' | tr -d '\\r' | grep -iE '^(x-served-by|code=)'; sleep 0.05; done`;
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
      const { value } = await waitFor(`GET ${url} answering 200`, 60_000, () => {
        const answer = request(lab, url);
        return answer.code === "200" ? answer : undefined;
      });
      return `GET ${url} → 200, X-Served-By ${value.servedBy}`;
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
    name: "firewall: from the internet, only the load balancer's HTTP is reachable",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const evidence: string[] = [];
      const lbHttp = tcpFrom(lab, { client: true }, lb.publicIpv4, 80);
      if (lbHttp !== "open") throw new Error(`${lb.name}:80 is ${lbHttp}`);
      evidence.push(`${lb.name}:80 open`);
      for (const web of webs) {
        for (const port of [80, 3306, 22]) {
          const state = tcpFrom(lab, { client: true }, web.publicIpv4, port);
          if (state !== "dropped") throw new Error(`${web.name} ${web.publicIpv4}:${port} is ${state} from the client`);
        }
        evidence.push(`${web.name}:80/3306/22 dropped`);
      }
      const lbSsh = tcpFrom(lab, { client: true }, lb.publicIpv4, 22);
      if (lbSsh !== "dropped") throw new Error(`${lb.name}:22 is ${lbSsh} from the client`);
      evidence.push(`${lb.name}:22 dropped`);
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
  const client = continuousClient(siteUrl(lab));
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
