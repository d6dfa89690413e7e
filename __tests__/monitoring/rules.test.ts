import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import * as YAML from "yaml";

import { BACKUP } from "../../cloud-init/backup";
import { renderHaproxyConfig } from "../../cloud-init/haproxy";
import { DATABASE_AGENT, FORCE_PROMOTE_FLAG_PATH, REBUILD_FLAG_PATH } from "../../cloud-init/mysql";
import {
  ALERT_NAMES,
  ALERT_RECEIVER,
  ALERT_RULE_DEFAULTS,
  ALERT_RULES_PATH,
  ALERT_RUNBOOK,
  AlertmanagerInput,
  AlertRuleInput,
  alertRunbookTable,
  PROMETHEUS_PORTS,
  renderAlertmanagerConfig,
  renderAlertRules,
  renderPrometheusConfig,
} from "../../cloud-init/prometheus";
import { scratchFolder } from "../helpers";

/**
 * The alert rules, prometheus.yml and alertmanager.yml, checked by the tools
 * that read them: promtool (Debian's `prometheus`) and amtool
 * (`prometheus-alertmanager`), which .ci/run installs. A missing tool fails
 * these tests, it never skips them.
 */
function run(command: string, args: string[], cwd?: string) {
  const result = spawnSync(command, args, { encoding: "utf8", cwd });
  if (result.error) throw new Error(`${command} could not run (${result.error.message}): install it (see .ci/run)`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const { write: writeTemp } = scratchFolder("foobar-monitoring-");

/** The thresholds rules-tests.yml was written for. */
const THRESHOLDS: AlertRuleInput = {
  replicaMaxLagSeconds: 10,
  fiveXxPercent: 5,
  latencyMs: 2000,
  certificateExpiryDays: 14,
  diskPercent: 85,
  backupBaseMaxAgeHours: 30,
  binlogArchiveMaxAgeSeconds: 300,
};

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

const rulesText = renderAlertRules(THRESHOLDS);
const rules: Rule[] = YAML.parse(rulesText).groups.flatMap((group: { rules: Rule[] }) => group.rules);
const rule = (name: string) => rules.find((r) => r.alert === name)!;
const seconds = (duration = "0s") => {
  const match = /^(\d+)(s|m|h)$/.exec(duration)!;
  return Number(match[1]) * { s: 1, m: 60, h: 3600 }[match[2] as "s" | "m" | "h"];
};

describe("the alert rules", () => {
  test("promtool accepts them", () => {
    const result = run("promtool", ["check", "rules", writeTemp("check/foobar.yml", rulesText)]);
    expect(result.output).toContain(`SUCCESS: ${ALERT_NAMES.length} rules found`);
    expect(result.status).toBe(0);
  });

  test("every alert fires on its fault with exactly its labels, none on a one-scrape blip or on the healthy stack (promtool test rules)", () => {
    writeTemp("unit/foobar.yml", rulesText);
    const tests = writeTemp("unit/rules-tests.yml", fs.readFileSync(path.join(__dirname, "rules-tests.yml"), "utf8"));
    const result = run("promtool", ["test", "rules", tests], path.dirname(tests));
    expect(result.output).toContain("SUCCESS");
    expect(result.status).toBe(0);
  });

  test("the unit tests make every alert fire, and check every alert on the healthy stack", () => {
    interface Case {
      alertname: string;
      exp_alerts?: unknown[];
    }
    const groups: { name: string; alert_rule_test: Case[] }[] = YAML.parse(
      fs.readFileSync(path.join(__dirname, "rules-tests.yml"), "utf8"),
    ).tests;
    const fired = new Set(groups.flatMap((g) => g.alert_rule_test.filter((c) => (c.exp_alerts ?? []).length > 0).map((c) => c.alertname)));
    expect([...fired].sort()).toEqual([...ALERT_NAMES].sort());
    const healthy = groups.find((g) => g.name === "the healthy stack")!;
    expect(healthy.alert_rule_test.every((c) => c.exp_alerts === undefined)).toBe(true);
    expect(healthy.alert_rule_test.map((c) => c.alertname)).toEqual([...ALERT_NAMES]);
  });

  test("holds exactly the alerts of ALERT_NAMES, in their order, each with a runbook entry and no other entry", () => {
    expect(rules.map((r) => r.alert)).toEqual([...ALERT_NAMES]);
    expect(Object.keys(ALERT_RUNBOOK).sort()).toEqual([...ALERT_NAMES].sort());
  });

  test("pages only when two servers are writable, none is, or the load balancer pair is split; the runbook says the same", () => {
    const paging = rules.filter((r) => r.labels.severity === "page").map((r) => r.alert);
    expect(paging.sort()).toEqual(["FoobarLoadBalancerPairSplit", "FoobarNoWritablePrimary", "FoobarTwoWritablePrimaries"]);
    expect(rules.every((r) => ["page", "ticket"].includes(r.labels.severity))).toBe(true);
    for (const r of rules) expect(ALERT_RUNBOOK[r.alert as keyof typeof ALERT_RUNBOOK].severity).toBe(r.labels.severity);
  });

  test("pages at once when two servers are writable", () => {
    expect(rule("FoobarTwoWritablePrimaries")).toMatchObject({ expr: "sum(foobar_db_writable) > 1" });
    expect(rule("FoobarTwoWritablePrimaries").for).toBeUndefined();
  });

  test("counts no series at all as no writable server", () => {
    expect(rule("FoobarNoWritablePrimary").expr).toBe("(sum(foobar_db_writable) or vector(0)) < 1");
  });

  test("every other alert outlasts a one-scrape blip, and waits at most a minute (the traffic ratios: their 2 minutes)", () => {
    const limit = (alert: string) => (["FoobarHigh5xxRatio", "FoobarSlowResponses"].includes(alert) ? 120 : 60);
    const others = rules.filter((r) => r.alert !== "FoobarTwoWritablePrimaries");
    expect(others.filter((r) => seconds(r.for) < 10 || seconds(r.for) > limit(r.alert)).map((r) => `${r.alert}: ${r.for}`)).toEqual([]);
  });

  test("every alert has a summary and a description", () => {
    for (const r of rules) {
      expect(Object.keys(r.annotations).sort()).toEqual(["description", "summary"]);
    }
  });

  test("fills each threshold from its setting, and leaves no placeholder", () => {
    const text = renderAlertRules({
      replicaMaxLagSeconds: 11,
      fiveXxPercent: 7,
      latencyMs: 1500,
      certificateExpiryDays: 21,
      diskPercent: 91,
      backupBaseMaxAgeHours: 13,
      binlogArchiveMaxAgeSeconds: 601,
    });
    const expr = (name: string) => YAML.parse(text).groups[0].rules.find((r: Rule) => r.alert === name).expr as string;
    expect(text).not.toContain("@@");
    expect(expr("FoobarReplicationLagging")).toBe("foobar_db_replication_lag_seconds > 11");
    expect(expr("FoobarHigh5xxRatio")).toContain("* 100 > 7\n");
    expect(expr("FoobarSlowResponses")).toContain("* 1000 > 1500\n");
    expect(expr("FoobarCertificateExpiring")).toBe("foobar_certificate_expiry_timestamp_seconds - time() < 21 * 86400");
    expect(expr("FoobarDiskFilling")).toContain("> 91");
    expect(expr("FoobarBackupBaseTooOld")).toContain("> 13 * 3600");
    expect(expr("FoobarBinlogArchiveBehind")).toContain("> 601");
  });

  test("allows the binary log archive 5 minutes without an upload unless told otherwise", () => {
    const text = renderAlertRules({ ...THRESHOLDS, ...ALERT_RULE_DEFAULTS });
    expect(text).toContain("topk(1, foobar_backup_archive_last_success_timestamp_seconds) > 300\n");
  });

  test("throws when a threshold is not a positive number", () => {
    expect(() => renderAlertRules({ ...THRESHOLDS, diskPercent: 0 })).toThrow("diskPercent must be a positive number, got 0");
    expect(() => renderAlertRules({ ...THRESHOLDS, latencyMs: Number.NaN })).toThrow("latencyMs must be a positive number, got NaN");
  });

  test("reads HAProxy's web_servers backend, by the name the HAProxy config gives it", () => {
    const haproxy = renderHaproxyConfig({
      siteHostNames: ["www.foobar.com"],
      backends: [{ name: "web-01", hostName: "web-01.internal.foobar.com" }],
      healthPath: "/health",
      backendPort: 80,
      stats: { port: 8404, privateAddressVariable: "PRIVATE_ADDRESS", passwordVariable: "STATS_PASSWORD" },
    });
    expect(haproxy.split("\n")).toContain("backend web_servers");
    const haproxyRules = rules.filter((r) => r.expr.includes("haproxy_"));
    expect(haproxyRules.map((r) => r.alert)).toEqual(["FoobarWebServerDown", "FoobarHigh5xxRatio", "FoobarSlowResponses"]);
    for (const r of haproxyRules) expect(r.expr.match(/proxy="[^"]*"/g)!.every((m) => m === 'proxy="web_servers"')).toBe(true);
  });

  test("says the latency is an average of the last 1024 requests, not a p99", () => {
    expect(rule("FoobarSlowResponses").annotations.description).toContain("an average, not a p99");
    expect(ALERT_RUNBOOK.FoobarSlowResponses.meaning).toContain("last 1024 requests");
    expect(ALERT_RUNBOOK.FoobarSlowResponses.meaning).toContain("not a p99");
  });

  test("holds nothing Terraform would read as an interpolation", () => {
    expect(rulesText).not.toMatch(/[$%]\{/);
  });

  test("the runbook names the stack's own units and files", () => {
    const runbook = JSON.stringify(ALERT_RUNBOOK);
    for (const name of [
      REBUILD_FLAG_PATH,
      FORCE_PROMOTE_FLAG_PATH,
      BACKUP.status,
      DATABASE_AGENT.unitName.replace(/\.service$/, ""),
      BACKUP.baseUnit.replace(/\.service$/, ""),
      BACKUP.archiveUnit.replace(/\.service$/, ""),
    ]) {
      expect(runbook).toContain(name);
    }
    for (const entry of Object.values(ALERT_RUNBOOK)) {
      expect(entry.meaning).not.toContain("\n");
      expect(entry.action).not.toContain("\n");
    }
  });
});

describe("prometheus.yml", () => {
  const INPUT = { domain: "foobar.com", webServerSlots: 10, loadBalancerSlots: 2, monitoringLabel: "mon-01" };
  const config = YAML.parse(renderPrometheusConfig(INPUT));
  const job = (name: string) => config.scrape_configs.find((j: { job_name: string }) => j.job_name === name);
  const names = (name: string): string[] => job(name).dns_sd_configs.flatMap((d: { names: string[] }) => d.names);
  const webServers = Array.from({ length: 10 }, (_, i) => `web-${String(i + 1).padStart(2, "0")}.internal.foobar.com`);
  const loadBalancers = ["lb-01.internal.foobar.com", "lb-02.internal.foobar.com"];

  test("promtool accepts it, with the rules it names", () => {
    const rulesPath = writeTemp("config/rules/foobar.yml", rulesText);
    const file = writeTemp("config/prometheus.yml", renderPrometheusConfig({ ...INPUT, rulesPath }));
    const result = run("promtool", ["check", "config", file]);
    expect(result.output).toContain(`SUCCESS: ${ALERT_NAMES.length} rules found`);
    expect(result.status).toBe(0);
  });

  test("loads the rules from where the monitoring server writes them", () => {
    expect(config.rule_files).toEqual([ALERT_RULES_PATH]);
  });

  test("scrapes and evaluates every 10 s, and sends alerts to the Alertmanager on loopback", () => {
    expect(config.global).toEqual({ scrape_interval: "10s", evaluation_interval: "10s" });
    expect(config.alerting.alertmanagers).toEqual([{ static_configs: [{ targets: ["127.0.0.1:9093"] }] }]);
  });

  test("scrapes every slot's exporters on the contract's ports, each slot found by its A record every 30 s", () => {
    expect(config.scrape_configs.map((j: { job_name: string }) => j.job_name)).toEqual(["node", "haproxy", "mysqld", "nginx"]);
    expect(names("node")).toEqual([...loadBalancers, ...webServers, "mon-01.internal.foobar.com"]);
    expect(names("haproxy")).toEqual(loadBalancers);
    expect(names("mysqld")).toEqual(webServers);
    expect(names("nginx")).toEqual(webServers);
    expect(job("haproxy").metrics_path).toBe("/metrics");
    for (const name of ["node", "haproxy", "mysqld", "nginx"] as const) {
      expect(job(name).dns_sd_configs).toEqual([
        expect.objectContaining({ type: "A", port: PROMETHEUS_PORTS[name], refresh_interval: "30s" }),
      ]);
    }
    expect(PROMETHEUS_PORTS).toEqual({ node: 9100, haproxy: 8405, mysqld: 9104, nginx: 9113, prometheus: 9090, alertmanager: 9093 });
  });

  test("names each target by its droplet's label: web-01.internal.foobar.com is instance web-01", () => {
    for (const j of config.scrape_configs) {
      expect(j.relabel_configs).toHaveLength(1);
      const [relabel] = j.relabel_configs;
      expect(relabel).toMatchObject({ source_labels: ["__meta_dns_name"], target_label: "instance" });
      // Prometheus anchors the regex and expands $1 as Go's regexp does: as JavaScript does here.
      const instance = (name: string) => name.replace(new RegExp(`^(?:${relabel.regex})$`), relabel.replacement);
      expect(instance("web-01.internal.foobar.com")).toBe("web-01");
      expect(instance("mon-01.internal.foobar.com")).toBe("mon-01");
    }
  });

  test("throws when a slot count is not a whole number of at least 1", () => {
    expect(() => renderPrometheusConfig({ ...INPUT, webServerSlots: 0 })).toThrow(
      "webServerSlots must be a whole number of at least 1, got 0",
    );
  });
});

describe("alertmanager.yml", () => {
  const SMTP = {
    host: "smtp.example.com:587",
    from: "alerts@foobar.com",
    username: "alerts",
    passwordFile: "/etc/prometheus/foobar-smtp-password",
  };
  const SLACK = { apiUrl: "https://hooks.slack.com/services/T000/B000/XXXX", channel: "#ops" };
  const WEBHOOK = "https://alerts.example.com/hook";
  const EMAILS = ["ops@foobar.com", "oncall@foobar.com"];
  const cases: [string, AlertmanagerInput][] = [
    ["no destination", {}],
    ["e-mail through an SMTP relay", { emails: EMAILS, smarthost: SMTP }],
    ["e-mail through a relay without authentication", { emails: EMAILS, smarthost: { host: SMTP.host, from: SMTP.from } }],
    ["e-mail without a relay", { emails: EMAILS }],
    ["Slack", { slack: SLACK }],
    ["a webhook", { webhookUrl: WEBHOOK }],
    ["every destination", { emails: EMAILS, smarthost: SMTP, slack: SLACK, webhookUrl: WEBHOOK }],
  ];
  const parse = (input: AlertmanagerInput) => YAML.parse(renderAlertmanagerConfig(input));
  const receiver = (input: AlertmanagerInput) => parse(input).receivers[0];

  test.each(cases)("amtool accepts it with %s", (label, input) => {
    const file = writeTemp(`alertmanager/${label.replace(/\W+/g, "-")}.yml`, renderAlertmanagerConfig(input));
    const result = run("amtool", ["check-config", file]);
    expect(result.output).toContain("SUCCESS");
    expect(result.status).toBe(0);
  });

  test("with no destination the one receiver is empty: Alertmanager keeps the alerts and sends nothing", () => {
    expect(parse({}).receivers).toEqual([{ name: ALERT_RECEIVER }]);
    expect(parse({}).global).toBeUndefined();
  });

  test("e-mails without an SMTP relay are left to DigitalOcean's own alerts: no email_configs", () => {
    expect(receiver({ emails: EMAILS }).email_configs).toBeUndefined();
    expect(parse({ emails: EMAILS }).global).toBeUndefined();
  });

  test("sends one e-mail per address through the relay, authenticated with the password file", () => {
    const config = parse({ emails: EMAILS, smarthost: SMTP });
    expect(config.global).toEqual({
      smtp_smarthost: "smtp.example.com:587",
      smtp_from: "alerts@foobar.com",
      smtp_auth_username: "alerts",
      smtp_auth_password_file: "/etc/prometheus/foobar-smtp-password",
      smtp_require_tls: true,
    });
    expect(config.receivers[0].email_configs).toEqual(EMAILS.map((to) => ({ to, send_resolved: true })));
  });

  test("posts to Slack's channel and to the webhook, each also told when an alert resolves", () => {
    const all = receiver({ emails: EMAILS, smarthost: SMTP, slack: SLACK, webhookUrl: WEBHOOK });
    expect(all.slack_configs).toEqual([{ api_url: SLACK.apiUrl, channel: "#ops", send_resolved: true }]);
    expect(all.webhook_configs).toEqual([{ url: WEBHOOK, send_resolved: true }]);
    expect(all.email_configs).toHaveLength(2);
  });

  test("groups per alert and instance, sends a change (a resolution) within 30 s, repeats every 4 hours, and pages every 30 minutes", () => {
    expect(parse({}).route).toEqual({
      receiver: ALERT_RECEIVER,
      group_by: ["alertname", "instance"],
      group_wait: "10s",
      group_interval: "30s",
      repeat_interval: "4h",
      routes: [{ matchers: ['severity="page"'], receiver: ALERT_RECEIVER, repeat_interval: "30m" }],
    });
  });
});

describe("docs/monitoring.md", () => {
  test("has the alert table generated from ALERT_RUNBOOK and the rules (a row per alert, with what to do)", () => {
    const docs = fs.readFileSync(path.join(__dirname, "..", "..", "docs", "monitoring.md"), "utf8");
    const lines = docs.split("\n");
    const start = lines.indexOf("| Alert | Severity | Fires after | What it means | What to do |");
    const end = lines.findIndex((line, i) => i > start && !line.startsWith("|"));
    const table = lines.slice(start, end).join("\n");
    // On a difference, paste alertRunbookTable()'s output into docs/monitoring.md.
    expect(table).toBe(alertRunbookTable(rulesText));
  });
});
