/** Traffic: load is spread, replication is healthy, writes land on the primary and replicate. */

import { backendStates, Check, replicaStatus, replicationSettles, request, roles, siteUrl, sql, waitFor } from "./helpers";

export const trafficChecks: Check[] = [
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
];
