/**
 * What the monitoring checks share: the alerts the lab's receiver got (the
 * operator's webhook, emulations/alert-receiver.ts), Prometheus' HTTP API on
 * mon-01 asked from inside mon-01, and the diagnostics a monitoring check
 * carries when an alert does not come or does not go.
 */
import * as fs from "node:fs";

import { MONITORING_PATHS, PROMETHEUS_USER } from "../../cloud-init/monitoring-server";
import { PROMETHEUS_PORTS } from "../../cloud-init/prometheus";
import { isLoadBalancer, isMonitoringServer, isWebServer } from "../../names";
import {
  AlertQuery,
  describeAlert,
  describeQuery,
  findAlert,
  LabelMatch,
  parseReceived,
  receivedAlerts,
  ReceivedPost,
  unresolved,
} from "../emulations/alert-webhook";
import type { LabDroplet } from "../emulations/terraform";
import type { Lab } from "../lab";
import { Check, waitFor } from "./helpers";

/** How the lab reaches Prometheus and Alertmanager on mon-01: where the stack puts them. */
export const MONITORING_ACCESS = {
  /** Prometheus' basic-auth user. */
  user: PROMETHEUS_USER,
  /** On mon-01, root only: the password Terraform generated for Prometheus' UI. */
  passwordFile: MONITORING_PATHS.passwordFile,
  /** Prometheus, on mon-01's private address. */
  prometheusPort: PROMETHEUS_PORTS.prometheus,
  /** Alertmanager, on mon-01's loopback, no password (only the diagnostics ask it). */
  alertmanagerPort: PROMETHEUS_PORTS.alertmanager,
} as const;

/** How long an alert may take to arrive after its fault, and its resolution after the heal, before a check fails. */
export const FIRING_TIMEOUT_MS = 180_000;
export const RESOLVED_TIMEOUT_MS = 240_000;
/** The goal for both, printed beside every figure. */
export const ALERT_GOAL_MS = 60_000;

/**
 * How long a check waits for quiet before its fault: an earlier alert's
 * resolution may wait for Alertmanager's next `group_interval` (5 min by default).
 */
const QUIET_TIMEOUT_MS = 360_000;
/** The stack's monitoring server, undefined when it has none (FOOBAR_MONITORING=false). */
export function monitoringServer(lab: Lab): LabDroplet | undefined {
  return lab.stack.droplets.find((d) => isMonitoringServer(d.name));
}

function monitoringServerOrThrow(lab: Lab): LabDroplet {
  const mon = monitoringServer(lab);
  if (!mon) throw new Error(`the stack has no monitoring server (have: ${lab.stack.droplets.map((d) => d.name).join(", ")})`);
  return mon;
}

/** Every POST the lab's alert receiver got, in the order they arrived. */
export function alertsReceived(lab: Lab): ReceivedPost[] {
  const file = lab.alertsFile();
  if (!file) throw new Error("the lab's alert receiver is not up (no hooks in the lab's state)");
  return parseReceived(fs.readFileSync(file, "utf8"));
}

/**
 * Waits until an alert with that name and labels arrives at the receiver
 * with that status, at or after `since` (ms since the epoch).
 *
 * @returns when it arrived (ms since the epoch, the lab host's clock).
 * @throws Error naming the alert when it has not arrived within `timeoutMs`.
 */
export async function waitForAlert(
  lab: Lab,
  alertname: string,
  labels: LabelMatch,
  status: "firing" | "resolved",
  since: number,
  timeoutMs: number,
): Promise<number> {
  const query: AlertQuery = { alertname, labels, status, since };
  const { value } = await waitFor(`${describeQuery(query)} at the alert receiver`, timeoutMs, () => findAlert(alertsReceived(lab), query));
  return value.receivedAtMs;
}

/** One series of an instant query's result. */
export interface PromSample {
  readonly labels: Readonly<Record<string, string>>;
  /** As Prometheus writes it: "1", "0.25", "NaN", "+Inf". */
  readonly value: string;
}

/** An alert as Prometheus' `/api/v1/alerts` lists it: pending (its `for` not yet over) or firing. */
export interface PromAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly state: "pending" | "firing" | string;
  readonly activeAt?: string;
  readonly value?: string;
}

const passwords = new WeakMap<Lab, string>();

/** Prometheus' password, read once from mon-01's root-only file. */
function prometheusPassword(lab: Lab, mon: string): string {
  const known = passwords.get(lab);
  if (known !== undefined) return known;
  const read = lab.execIn(mon, ["cat", MONITORING_ACCESS.passwordFile], 10_000);
  const password = read.stdout.replace(/\r?\n$/, "");
  if (read.status !== 0 || password === "") {
    throw new Error(`cannot read Prometheus' password from ${mon}:${MONITORING_ACCESS.passwordFile}: ${read.stderr.trim() || "empty"}`);
  }
  passwords.set(lab, password);
  return password;
}

/** A GET of Prometheus on mon-01, from mon-01, with its password: the status code and the body. */
function prometheusGet(lab: Lab, path: string, params: Readonly<Record<string, string>> = {}) {
  const mon = monitoringServerOrThrow(lab);
  const password = prometheusPassword(lab, mon.name);
  const url = `http://${mon.privateIpv4}:${MONITORING_ACCESS.prometheusPort}${path}`;
  const query = Object.entries(params).flatMap(([name, value]) => ["--data-urlencode", `${name}=${value}`]);
  const curlConfig = `user = "${`${MONITORING_ACCESS.user}:${password}`.replace(/[\\"]/g, "\\$&")}"\n`;
  const result = lab.execIn(
    mon.name,
    ["curl", "-sS", "--max-time", "10", "-K", "-", "-G", ...query, "-w", "\\n%{http_code}", url],
    20_000,
    curlConfig,
  );
  if (result.status !== 0) throw new Error(`GET ${url} from ${mon.name}: curl exit ${result.status}: ${result.stderr.trim()}`);
  const lines = result.stdout.split("\n");
  const code = lines.pop() ?? "";
  return { name: mon.name, url, code, body: lines.join("\n") };
}

/** A page Prometheus renders (a console), as text; throws unless it answers 200. */
export function prometheusPage(lab: Lab, path: string): string {
  const { name, url, code, body } = prometheusGet(lab, path);
  if (code !== "200") throw new Error(`GET ${url} from ${name} → HTTP ${code}: ${body.trim().slice(0, 200)}`);
  return body;
}

/**
 * A GET to Prometheus' HTTP API, from inside mon-01 (Prometheus listens on
 * its private address only), with basic authentication; curl reads the
 * credentials from its stdin, so they are on no command line.
 *
 * @returns the answer's `data`.
 * @throws Error with Prometheus' own error, or curl's.
 */
export function prometheusApi(lab: Lab, path: string, params: Readonly<Record<string, string>> = {}): unknown {
  const { name, url, code, body } = prometheusGet(lab, path, params);
  let answer: { status?: string; data?: unknown; error?: string; errorType?: string };
  try {
    answer = JSON.parse(body) as typeof answer;
  } catch {
    throw new Error(`GET ${url} from ${name} → HTTP ${code}: ${body.trim().slice(0, 200)}`);
  }
  if (answer.status !== "success")
    throw new Error(`GET ${url} from ${name} → HTTP ${code}: ${answer.errorType ?? ""} ${answer.error ?? ""}`.trim());
  return answer.data;
}

/** An instant query (`/api/v1/query`); a scalar comes back as one sample without labels. */
export function promQuery(lab: Lab, expr: string): PromSample[] {
  const data = prometheusApi(lab, "/api/v1/query", { query: expr }) as {
    resultType: string;
    result: { metric: Record<string, string>; value: [number, string] }[] | [number, string];
  };
  if (data.resultType === "scalar" || data.resultType === "string") {
    const [, value] = data.result as [number, string];
    return [{ labels: {}, value }];
  }
  return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({
    labels: r.metric,
    value: r.value[1],
  }));
}

/** Every alert Prometheus has active (`/api/v1/alerts`): pending and firing. */
export function prometheusAlerts(lab: Lab): PromAlert[] {
  return (prometheusApi(lab, "/api/v1/alerts") as { alerts: PromAlert[] }).alerts;
}

/** The alerts Prometheus is firing now. */
export function firingAlerts(lab: Lab): PromAlert[] {
  return prometheusAlerts(lab).filter((alert) => alert.state === "firing");
}

/** `FoobarWebServerDown{instance=lb-01, server=web-02} firing since 12:00:01Z`. */
export function describePromAlert(alert: PromAlert): string {
  return `${describeAlert({ status: "firing", labels: alert.labels }).replace(/ firing$/, "")} ${alert.state}${alert.activeAt ? ` since ${alert.activeAt}` : ""}`;
}

/** A scrape target Prometheus should have. */
export interface Target {
  readonly job: string;
  readonly instance: string;
}

/**
 * The targets the issue-24 contract gives the lab's droplets: the node
 * exporter on every droplet, HAProxy's on each load balancer, the mysqld and
 * Nginx exporters on each web server; `instance` is the droplet's label.
 */
export function expectedTargets(lab: Lab): Target[] {
  return lab.stack.droplets.flatMap((d) => [
    { job: "node", instance: d.name },
    ...(isLoadBalancer(d.name) ? [{ job: "haproxy", instance: d.name }] : []),
    ...(isWebServer(d.name)
      ? [
          { job: "mysqld", instance: d.name },
          { job: "nginx", instance: d.name },
        ]
      : []),
  ]);
}

/** The expected targets whose `up` is not 1 in `samples` (the answer to `up`), each with what it is. */
export function targetsNotUp(expected: readonly Target[], samples: readonly PromSample[]): string[] {
  return expected.flatMap((target) => {
    const sample = samples.find((s) => s.labels.job === target.job && s.labels.instance === target.instance);
    if (sample?.value === "1") return [];
    return [`${target.job}/${target.instance} ${sample ? `up=${sample.value}` : "not a target"}`];
  });
}

/** The last `count` notifications of the receiver, one line each: when, from where, which alerts. */
export function lastReceived(posts: readonly ReceivedPost[], count: number): string[] {
  return posts.slice(-count).map(
    (post) =>
      `${post.receivedAt} from ${post.from} ${post.path}: ${
        post.body
          ? receivedAlerts([post])
              .map((r) => describeAlert(r.alert))
              .join("; ") || "(no alerts)"
          : `(not JSON) ${post.raw?.slice(0, 120)}`
      }`,
  );
}

/**
 * What a monitoring check needs to find out why an alert did not come or go:
 * the alerts Prometheus and Alertmanager see, the last notifications at the
 * receiver, the journals of both on mon-01, and `metric`'s value now.
 */
export function monitoringDiagnostics(lab: Lab, metric?: string): string {
  const section = (title: string, body: () => string): string => {
    try {
      return `--- ${title}\n${body() || "(none)"}`;
    } catch (error) {
      return `--- ${title}\n(failed: ${(error as Error).message})`;
    }
  };
  const mon = monitoringServer(lab);
  if (!mon) return "--- no monitoring server in this stack";
  return [
    section("Prometheus' alerts (/api/v1/alerts)", () => prometheusAlerts(lab).map(describePromAlert).join("\n")),
    section(`Alertmanager's alerts (${mon.name} 127.0.0.1:${MONITORING_ACCESS.alertmanagerPort}/api/v2/alerts)`, () => {
      const result = lab.execIn(mon.name, [
        "curl",
        "-sS",
        "--max-time",
        "5",
        `http://127.0.0.1:${MONITORING_ACCESS.alertmanagerPort}/api/v2/alerts`,
      ]);
      if (result.status !== 0) throw new Error(result.stderr.trim());
      const alerts = JSON.parse(result.stdout) as { labels: Record<string, string>; status?: { state?: string }; startsAt?: string }[];
      return alerts
        .map(
          (a) =>
            `${describeAlert({ status: "firing", labels: a.labels }).replace(/ firing$/, "")} ${a.status?.state ?? "?"} since ${a.startsAt ?? "?"}`,
        )
        .join("\n");
    }),
    section(`the alert receiver (${lab.alertsFile() ?? "not up"}), last notifications`, () => {
      const posts = alertsReceived(lab);
      return [`${posts.length} received in all`, ...lastReceived(posts, 8)].join("\n");
    }),
    section(`journalctl -u prometheus -u prometheus-alertmanager -n 30 on ${mon.name}`, () =>
      lab
        .execIn(
          mon.name,
          ["journalctl", "--no-pager", "-o", "short-precise", "-u", "prometheus", "-u", "prometheus-alertmanager", "-n", "30"],
          10_000,
        )
        .stdout.trim(),
    ),
    ...(metric
      ? [
          section(`${metric} now`, () =>
            promQuery(lab, metric)
              .map((s) => `${JSON.stringify(s.labels)} ${s.value}`)
              .join("\n"),
          ),
        ]
      : []),
  ].join("\n");
}

/** Seconds with one decimal, for the figures. */
export function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

/** `42.1 s (goal ≤ 60 s: met)`. */
export function againstGoal(ms: number): string {
  return `${seconds(ms)} s${ms <= ALERT_GOAL_MS ? "" : ` (over the ${ALERT_GOAL_MS / 1000} s goal)`}`;
}

/**
 * Waits until Prometheus lists no active alert (pending or firing) that
 * `match` accepts and the receiver holds none of them unresolved.
 *
 * @returns how long that took, in ms.
 * @throws Error with what was still active and the monitoring diagnostics.
 */
export async function quiet(
  lab: Lab,
  what: string,
  match: (alert: { readonly labels?: Readonly<Record<string, string>> }) => boolean,
): Promise<number> {
  let active = "";
  try {
    const { ms } = await waitFor(what, QUIET_TIMEOUT_MS, () => {
      const inPrometheus = prometheusAlerts(lab).filter(match);
      const open = unresolved(alertsReceived(lab)).filter((received) => match(received.alert));
      active = [
        ...inPrometheus.map((alert) => `Prometheus: ${describePromAlert(alert)}`),
        ...open.map((received) => `receiver: ${describeAlert(received.alert)}, no resolution yet`),
      ].join("; ");
      return inPrometheus.length === 0 && open.length === 0 ? true : undefined;
    });
    return ms;
  } catch (error) {
    throw new Error(`${(error as Error).message}${active ? `: ${active}` : ""}\n${monitoringDiagnostics(lab)}`, { cause: error });
  }
}

/** A check that only runs when the stack has a monitoring server. */
export function monitored(check: Check): Check {
  return {
    name: check.name,
    async run(lab) {
      if (!monitoringServer(lab)) return "no monitoring server in this stack (FOOBAR_MONITORING=false): nothing to check";
      return check.run(lab);
    },
  };
}
