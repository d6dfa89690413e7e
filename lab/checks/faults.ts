/** Faults: a stopped, crashed, powered-off or cut-off part, under load. */

import { sleep } from "../host/shell";
import {
  backendStates,
  backgroundClient,
  Check,
  faultUnderLoad,
  nginxOrPowerFault,
  postMessage,
  replicaCaughtUp,
  replicaStatus,
  request,
  roles,
  siteHost,
  siteUrl,
  sql,
  unitInvocation,
  waitFor,
  writeMessages,
} from "./helpers";

export const faultChecks: Check[] = [
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
        const posted = postMessage(lab, url, `while down ${i}`);
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
];
