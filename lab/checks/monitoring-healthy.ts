/**
 * The monitoring checks that open the default configuration (lab/checks/base.ts):
 * every target up, then the healthy run (issue 24: no alert in a healthy
 * 5-minute run), which brackets the quiet checks that follow them, so its five
 * minutes are spent checking.
 */
import { alertWebhookUrl } from "../emulations/alert-receiver";
import { describeAlert, receivedAlerts } from "../emulations/alert-webhook";
import { sleep } from "../host/shell";
import type { Lab } from "../lab";
import { Check, waitFor } from "./helpers";
import {
  alertsReceived,
  describePromAlert,
  expectedTargets,
  monitored,
  monitoringDiagnostics,
  monitoringServer,
  prometheusAlerts,
  prometheusApi,
  promQuery,
  quiet,
  seconds,
  targetsNotUp,
} from "./monitoring-helpers";

/** How long the healthy run watches the receiver. */
const QUIET_RUN_MS = 5 * 60_000;

const targetsUp: Check = {
  name: "monitoring: every target is up: Prometheus on mon-01 scrapes the node exporter on every droplet, HAProxy's on each load balancer, mysqld's and Nginx's on each web server (up is 1); exactly one database server is writable; its rules load without error and it has an Alertmanager; mon-01 reaches the alert receiver; and no alert is active or left unresolved",
  async run(lab) {
    const mon = monitoringServer(lab)!;
    const expected = expectedTargets(lab);
    let missing: string[] = [];
    const up = await waitFor("every expected target up", 300_000, () => {
      const samples = promQuery(lab, "up");
      missing = targetsNotUp(expected, samples);
      return missing.length === 0 ? samples : undefined;
    }).catch((error: Error) => {
      throw new Error(`${error.message}: ${missing.join(", ")}\n${monitoringDiagnostics(lab, "up")}`, { cause: error });
    });
    const extra = up.value.filter((s) => !expected.some((t) => t.job === s.labels.job && t.instance === s.labels.instance));
    let writable = "";
    await waitFor("sum(foobar_db_writable) = 1", 120_000, () => {
      writable = promQuery(lab, "sum(foobar_db_writable)")[0]?.value ?? "no series";
      return writable === "1" ? true : undefined;
    }).catch((error: Error) => {
      throw new Error(`${error.message} (it is ${writable})\n${monitoringDiagnostics(lab, "foobar_db_writable")}`, { cause: error });
    });
    const groups = (
      prometheusApi(lab, "/api/v1/rules", { type: "alert" }) as {
        groups: { rules: { name: string; health?: string; lastError?: string }[] }[];
      }
    ).groups;
    const rules = groups.flatMap((g) => g.rules);
    const broken = rules.filter((r) => r.health === "err");
    if (rules.length === 0) throw new Error("Prometheus has no alerting rule loaded");
    if (broken.length > 0)
      throw new Error(`alerting rules failing to evaluate: ${broken.map((r) => `${r.name}: ${r.lastError}`).join("; ")}`);
    const managers = (prometheusApi(lab, "/api/v1/alertmanagers") as { activeAlertmanagers: { url: string }[] }).activeAlertmanagers;
    if (managers.length === 0) throw new Error("Prometheus has no active Alertmanager");
    const probe = lab.execIn(mon.name, ["curl", "-sS", "--max-time", "5", alertWebhookUrl()], 15_000);
    if (probe.status !== 0) throw new Error(`${mon.name} cannot reach the alert receiver at ${alertWebhookUrl()}: ${probe.stderr.trim()}`);
    const quietAfter = await quiet(lab, "no alert active in Prometheus or unresolved at the receiver", () => true);
    const received = alertsReceived(lab);
    const jobs = ["node", "haproxy", "mysqld", "nginx"].map((job) => `${expected.filter((t) => t.job === job).length} ${job}`);
    return (
      `${expected.length} targets up after ${seconds(up.ms)} s (${jobs.join(", ")})${extra.length ? `, and ${extra.map((s) => `${s.labels.job}/${s.labels.instance}=${s.value}`).join(", ")} besides` : ""}; ` +
      `sum(foobar_db_writable) 1; ${rules.length} alerting rules, none failing; Alertmanager ${managers.map((m) => m.url).join(", ")}; ` +
      `${mon.name} → ${alertWebhookUrl()} answers; quiet after ${seconds(quietAfter)} s, ${received.length} notifications received before ` +
      `(${receivedAlerts(received).filter((r) => r.alert.status === "firing").length} firing, every one resolved since)`
    );
  },
};

/** When the healthy run began (ms since the epoch), and the notifications received before it. */
let healthyRun: { readonly start: number; readonly before: number } | undefined;

/** The notifications that arrived since the healthy run began; throws with them and the diagnostics if any did. */
function nothingSince(lab: Lab, start: number): void {
  const arrived = alertsReceived(lab).filter((post) => post.receivedAtMs >= start);
  if (arrived.length === 0) return;
  const alerts = receivedAlerts(arrived).map((r) => describeAlert(r.alert));
  throw new Error(
    `${arrived.length} notification(s) ${seconds(arrived[0]!.receivedAtMs - start)} s into a healthy run: ${alerts.join("; ") || "(no alerts in them)"}\n${monitoringDiagnostics(lab)}`,
  );
}

/**
 * The healthy run (issue 24: no alert in a healthy 5-minute run) brackets the
 * quiet checks the default configuration runs first (HTTPS, traffic, access,
 * secrets: none injects a fault), so its five minutes are spent checking.
 */
const healthyRunBegins: Check = {
  name: "monitoring: a healthy run begins: every target up, no alert active in Prometheus or unresolved at the alert receiver",
  async run(lab) {
    const quietAfter = await quiet(lab, "no alert active in Prometheus or unresolved at the receiver", () => true);
    healthyRun = { start: Date.now(), before: alertsReceived(lab).length };
    return `quiet ${seconds(quietAfter)} s after the check began; ${healthyRun.before} notifications received before`;
  },
};

const healthyRunEnds: Check = {
  name: `monitoring: the healthy run raises no alert: nothing reaches the alert receiver for ${QUIET_RUN_MS / 60_000} minutes (the quiet checks since it began, then waiting)`,
  async run(lab) {
    if (!healthyRun) throw new Error("the healthy run did not begin (see the check that begins it)");
    const { start, before } = healthyRun;
    healthyRun = undefined;
    nothingSince(lab, start);
    const checking = Date.now() - start;
    while (Date.now() - start < QUIET_RUN_MS) {
      await sleep(Math.min(10_000, QUIET_RUN_MS - (Date.now() - start)));
      nothingSince(lab, start);
    }
    const pending = prometheusAlerts(lab);
    return (
      `0 notifications in ${seconds(Date.now() - start)} s (${seconds(checking)} s of them running other checks; ${before} before); ` +
      `Prometheus: ${pending.length === 0 ? "no alert active" : pending.map(describePromAlert).join(", ")}`
    );
  },
};

/** What the default configuration runs first: every target up, then the healthy run around the quiet checks. */
export const monitoringFirstChecks: Check[] = [targetsUp, healthyRunBegins].map(monitored);
export const healthyRunEndChecks: Check[] = [healthyRunEnds].map(monitored);
