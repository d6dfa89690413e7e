import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import type { AlertReceiverConfig } from "../../lab/emulations/alert-receiver";
import {
  describeAlert,
  findAlert,
  matchesLabels,
  parseReceived,
  receivedAlerts,
  receivedLine,
  unresolved,
  WebhookAlert,
  WebhookBody,
} from "../../lab/emulations/alert-webhook";

/** An Alertmanager webhook body (format version 4) for one group. */
function notification(status: "firing" | "resolved", alerts: { labels: Record<string, string>; status?: "firing" | "resolved" }[]): string {
  const body: WebhookBody & Record<string, unknown> = {
    version: "4",
    groupKey: '{}:{alertname="x"}',
    truncatedAlerts: 0,
    status,
    receiver: "webhook",
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: "http://mon-01:9093",
    alerts: alerts.map((a): WebhookAlert => ({
      status: a.status ?? status,
      labels: a.labels,
      annotations: { summary: "…" },
      startsAt: "2025-01-01T00:00:00Z",
      endsAt: "0001-01-01T00:00:00Z",
      generatorURL: "http://mon-01:9090/graph",
      fingerprint: Object.values(a.labels).join("/"),
    })),
  };
  return JSON.stringify(body);
}

const at = (ms: number) => new Date(ms);
const stopped = { alertname: "FoobarReplicationStopped", instance: "web-02", job: "node", severity: "ticket" };
const down = { alertname: "FoobarWebServerDown", instance: "lb-01", server: "web-02", proxy: "web_servers", state: "DOWN" };

/** Three POSTs: web-02's replication stops (t=1000), web-02 goes down in HAProxy (t=2000), replication resolves (t=3000). */
const file =
  receivedLine(notification("firing", [{ labels: stopped }]), at(1000), "198.51.100.12", "/alerts") +
  receivedLine(notification("firing", [{ labels: down }]), at(2000), "198.51.100.12", "/alerts") +
  receivedLine(notification("resolved", [{ labels: stopped }]), at(3000), "198.51.100.12", "/alerts");

describe("the alert receiver's file: one JSON object a line, read back by the checks", () => {
  test("keeps when each POST arrived, from where, to which path, and its body", () => {
    const [first] = parseReceived(file);
    expect(first).toMatchObject({ receivedAt: "1970-01-01T00:00:01.000Z", receivedAtMs: 1000, from: "198.51.100.12", path: "/alerts" });
    expect(first?.body?.alerts?.[0]?.labels).toEqual(stopped);
  });

  test("a body that is not JSON is kept as text", () => {
    const [post] = parseReceived(receivedLine("not json", at(5), "10.0.0.1", "/x"));
    expect(post).toMatchObject({ raw: "not json", receivedAtMs: 5 });
    expect(post?.body).toBeUndefined();
  });

  test("a line still being written (the last, without its end) is left out until it is whole", () => {
    const line = receivedLine(notification("firing", [{ labels: down }]), at(4000), "198.51.100.12", "/alerts");
    expect(parseReceived(file + line.slice(0, 40))).toHaveLength(3);
    expect(parseReceived(file + line)).toHaveLength(4);
  });

  test("every alert of every notification, in the order they arrived", () => {
    const both = receivedLine(
      notification("firing", [{ labels: stopped }, { labels: { ...stopped, instance: "web-03" } }]),
      at(9),
      "a",
      "/",
    );
    expect(receivedAlerts(parseReceived(both)).map((r) => r.alert.labels.instance)).toEqual(["web-02", "web-03"]);
  });
});

describe("an alert is found by name, labels, status and arrival time", () => {
  const posts = parseReceived(file);

  test("firing with its name and instance: when it arrived", () => {
    const found = findAlert(posts, { alertname: "FoobarReplicationStopped", labels: { instance: "web-02" }, status: "firing", since: 0 });
    expect(found?.receivedAtMs).toBe(1000);
  });

  test("resolved: the resolution, not the firing", () => {
    const found = findAlert(posts, { alertname: "FoobarReplicationStopped", labels: { instance: "web-02" }, status: "resolved", since: 0 });
    expect(found?.receivedAtMs).toBe(3000);
  });

  test("nothing that arrived before `since` counts (an earlier episode of the same alert)", () => {
    expect(findAlert(posts, { alertname: "FoobarReplicationStopped", status: "firing", since: 1001 })).toBeUndefined();
  });

  test("another instance, another name or a missing label does not match", () => {
    expect(findAlert(posts, { alertname: "FoobarReplicationStopped", labels: { instance: "web-03" } })).toBeUndefined();
    expect(findAlert(posts, { alertname: "FoobarSemiSyncOff", labels: { instance: "web-02" } })).toBeUndefined();
    expect(findAlert(posts, { alertname: "FoobarWebServerDown", labels: { instance: "lb-01", server: "web-03" } })).toBeUndefined();
  });

  test("the load balancer's alert about a web server matches by both labels, or by either set of a list", () => {
    expect(findAlert(posts, { alertname: "FoobarWebServerDown", labels: { instance: "lb-01", server: "web-02" } })?.receivedAtMs).toBe(
      2000,
    );
    expect(
      findAlert(posts, { alertname: "FoobarWebServerDown", labels: [{ instance: "web-02" }, { server: "web-02" }] })?.receivedAtMs,
    ).toBe(2000);
  });

  test("an alert without labels (FoobarNoWritablePrimary) matches an empty set", () => {
    expect(matchesLabels({ labels: { alertname: "FoobarNoWritablePrimary", severity: "page" } }, {})).toBe(true);
  });
});

describe("what the receiver has not been told is resolved", () => {
  test("an alert whose last notification was firing; resolved ones are not", () => {
    expect(unresolved(parseReceived(file)).map((r) => describeAlert(r.alert))).toEqual([
      "FoobarWebServerDown{instance=lb-01, proxy=web_servers, server=web-02, state=DOWN} firing",
    ]);
  });

  test("a resolved alert that fires again is unresolved again", () => {
    const again = file + receivedLine(notification("firing", [{ labels: stopped }]), at(5000), "198.51.100.12", "/alerts");
    expect(unresolved(parseReceived(again)).map((r) => r.alert.labels.alertname)).toContain("FoobarReplicationStopped");
  });
});

describe("the receiver process", () => {
  let dir: string;
  let config: AlertReceiverConfig;
  let child: ReturnType<typeof spawn>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "alert-receiver-"));
    config = { address: "127.0.0.1", port: await freePort(), file: path.join(dir, "alerts.jsonl") };
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
    const server = path.join(__dirname, "../../lab/emulations/alert-receiver-server.ts");
    child = spawn(process.execPath, ["-r", require.resolve("ts-node/register/transpile-only"), server, path.join(dir, "config.json")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("listening on")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`the receiver exited with ${code}`)));
    });
  });

  afterAll(async () => {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("appends every POST as one line with the time it arrived, answers 200, and answers a GET without recording it", async () => {
    const url = `http://${config.address}:${config.port}/alerts`;
    const before = Date.now();
    const posted = await Promise.all(
      ["firing", "resolved"].map((status) =>
        fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: notification(status as "firing", [{ labels: stopped }]),
        }),
      ),
    );
    expect(posted.map((r) => r.status)).toEqual([200, 200]);
    expect((await fetch(url)).status).toBe(200);
    expect((await fetch(url, { method: "PUT", body: "x" })).status).toBe(405);
    const posts = parseReceived(fs.readFileSync(config.file, "utf8"));
    expect(posts).toHaveLength(2);
    expect(posts.map((p) => p.body?.status).sort()).toEqual(["firing", "resolved"]);
    for (const post of posts) {
      expect(post.receivedAtMs).toBeGreaterThanOrEqual(before);
      expect(post.receivedAtMs).toBeLessThanOrEqual(Date.now());
      expect(post).toMatchObject({ from: "127.0.0.1", path: "/alerts" });
    }
  });
});

/** A TCP port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
