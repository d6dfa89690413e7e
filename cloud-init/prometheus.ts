/**
 * What the monitoring server's Prometheus and Alertmanager read: the alert
 * rules (`cloud-init/files/etc/prometheus/rules/foobar.yml`, thresholds from
 * the settings), `prometheus.yml` (every slot's exporters, found by DNS) and
 * `alertmanager.yml` (who hears of an alert).
 *
 * The ports, the alert names and what each alert asks of the operator are
 * declared here once: the exporters, the firewalls, the lab and
 * docs/monitoring.md derive from them.
 *
 * Every renderer is pure: no network, no clock.
 */
import * as YAML from "yaml";

import { internalHostName, loadBalancerName, webServerName } from "../names";
import { dropletFile } from "./files";

/**
 * Where each exporter and server listens (on the droplet's private address;
 * Alertmanager on loopback).
 */
export const PROMETHEUS_PORTS = {
  /** The node exporter, on every droplet. */
  node: 9100,
  /** HAProxy's built-in exporter (`/metrics`), on each load balancer. */
  haproxy: 8405,
  /** The MySQL exporter, on each web server. */
  mysqld: 9104,
  /** The Nginx exporter, on each web server. */
  nginx: 9113,
  /** Prometheus, on the monitoring server. */
  prometheus: 9090,
  /** Alertmanager, on the monitoring server. */
  alertmanager: 9093,
} as const;

/** Where the alert rules land on the monitoring server, and where prometheus.yml says they are. */
export const ALERT_RULES_PATH = "/etc/prometheus/rules/foobar.yml";

/** How often Prometheus scrapes every target and evaluates the rules: each rule's `for:` counts in these steps. */
export const SCRAPE_INTERVAL_SECONDS = 10;

/** How often Prometheus asks DNS again which slots have a droplet. */
export const DNS_REFRESH_SECONDS = 30;

/** The one Alertmanager receiver: every alert goes to it. */
export const ALERT_RECEIVER = "operators";

/** How often Alertmanager repeats an alert that is still firing: `page` alerts more often. */
export const ALERT_REPEAT_INTERVAL = { ticket: "4h", page: "30m" } as const;

/** Every alert of the rules file, in its order. The lab and docs/monitoring.md use these names. */
export const ALERT_NAMES = [
  "FoobarTargetDown",
  "FoobarReplicationStopped",
  "FoobarReplicationLagging",
  "FoobarSemiSyncOff",
  "FoobarNoWritablePrimary",
  "FoobarTwoWritablePrimaries",
  "FoobarMySQLDown",
  "FoobarWebServerDown",
  "FoobarLoadBalancerPairSplit",
  "FoobarHigh5xxRatio",
  "FoobarSlowResponses",
  "FoobarCertificateExpiring",
  "FoobarCertificateRenewalFailed",
  "FoobarDiskFilling",
  "FoobarDatabaseAgentDown",
  "FoobarDatabaseRefusing",
  "FoobarBackupBaseTooOld",
  "FoobarBinlogArchiveBehind",
] as const;

/** One of this stack's alerts. */
export type AlertName = (typeof ALERT_NAMES)[number];

/** `page`: someone acts at once, day or night; `ticket`: within the day. */
export type AlertSeverity = "page" | "ticket";

/** What an alert tells the operator, one line each. */
export interface AlertRunbookEntry {
  /** The `severity` label of the rule. */
  readonly severity: AlertSeverity;
  /** What it means. */
  readonly meaning: string;
  /** What the operator does. */
  readonly action: string;
}

/**
 * What each alert means and what the operator does, for the table in
 * docs/monitoring.md. Thresholds are named by their settings.
 */
export const ALERT_RUNBOOK: Readonly<Record<AlertName, AlertRunbookEntry>> = {
  FoobarTargetDown: {
    severity: "ticket",
    meaning: "Prometheus has not scraped one of a droplet's exporters (the job: node, haproxy, mysqld or nginx) for a minute.",
    action:
      "Check the droplet runs, then on it the exporter's unit (`systemctl status prometheus-node-exporter`, " +
      "`prometheus-mysqld-exporter`, `prometheus-nginx-exporter`, or `haproxy` for its built-in exporter) and `ufw status`; " +
      "a droplet being replaced alerts until it is back.",
  },
  FoobarReplicationStopped: {
    severity: "ticket",
    meaning:
      "A replica's IO or SQL thread has stopped: it no longer receives or applies the primary's writes, and cannot be promoted without losing them.",
    action:
      "On that server, `sudo mysql -e 'SHOW REPLICA STATUS\\G'` (Last_IO_Error, Last_SQL_Error) and `journalctl -u foobar-db-agent`; " +
      "if the agent says `diverged`, rebuild it (`touch /etc/foobar/db-agent.rebuild`): docs/database.md, promotion runbook step 5.",
  },
  FoobarReplicationLagging: {
    severity: "ticket",
    meaning:
      "A replica applies the primary's writes more than `FOOBAR_REPLICA_MAX_LAG` seconds late, for 30 s: its reads go to the primary.",
    action:
      "`SHOW REPLICA STATUS\\G` on it (Seconds_Behind_Source, Replica_SQL_Running_State); look for a long transaction on the primary " +
      "(`SHOW PROCESSLIST`) or a saturated CPU or disk on the replica (its node exporter's figures).",
  },
  FoobarSemiSyncOff: {
    severity: "ticket",
    meaning:
      "The writable primary has committed without a replica's acknowledgement for a minute (Rpl_semi_sync_source_status OFF, in a stack " +
      "with replicas): what it acknowledges now is lost if it is lost.",
    action:
      "Find why no replica acknowledges: FoobarTargetDown or FoobarReplicationStopped on the replicas, `SHOW REPLICA STATUS\\G` on each; " +
      "semi-sync comes back by itself once a replica has caught up (`curl -s http://<primary's private address>/health` shows `acknowledging`).",
  },
  FoobarNoWritablePrimary: {
    severity: "page",
    meaning: "No web server's MySQL has been writable for 20 s (or none reports): the site cannot save anything.",
    action:
      "`journalctl -u foobar-db-agent` on each web server says why none is the writable primary; if the primary is gone for good, " +
      "promote another (`FOOBAR_DB_PRIMARY=web-NN npx cdktf deploy`): docs/database.md, promotion runbook.",
  },
  FoobarTwoWritablePrimaries: {
    severity: "page",
    meaning: "Two MySQL servers accept writes at once: their data diverge with every write.",
    action:
      "At once, `systemctl stop mysql` on the one that is not `FOOBAR_DB_PRIMARY` (its agent failed to fence it), then read its " +
      "`journalctl -u foobar-db-agent`; start it again only to rebuild it (`touch /etc/foobar/db-agent.rebuild`): docs/database.md.",
  },
  FoobarWebServerDown: {
    severity: "ticket",
    meaning:
      "A load balancer's HAProxy has marked a web server DOWN for 20 s (its health checks fail); the others carry its share. " +
      "An empty slot is in MAINT and never alerts.",
    action:
      "On that web server, `systemctl status nginx foobar-app` and `journalctl -u foobar-app`, then `curl -i http://<its private address>/health`; " +
      "the load balancer's HAProxy stats page shows the check's last error.",
  },
  FoobarLoadBalancerPairSplit: {
    severity: "page",
    meaning:
      "keepalived has been MASTER on none or both of the pair's load balancers for 30 s: the reserved IP may point at neither, or they fight over it.",
    action:
      "On both, `journalctl -u keepalived` and `systemctl status keepalived foobar-vrrp-link.timer`; check where the reserved IP points " +
      "(`doctl compute reserved-ip list`): docs/load-balancer-pair.md.",
  },
  FoobarHigh5xxRatio: {
    severity: "ticket",
    meaning:
      "More than `FOOBAR_ALERT_5XX_PERCENT`% of the answers a load balancer relayed from the web servers over 2 minutes were 5xx " +
      "(from the app, Nginx, or HAProxy when no web server was up), for 2 minutes.",
    action:
      "The HAProxy stats page shows which server answers 5xx; on it, `journalctl -u foobar-app` and `/var/log/nginx/error.log`; " +
      "HAProxy's own 503s mean no web server was UP (see FoobarWebServerDown).",
  },
  FoobarSlowResponses: {
    severity: "ticket",
    meaning:
      "HAProxy's average total time of its last 1024 requests to the web servers has been above `FOOBAR_ALERT_LATENCY_MS` for " +
      "2 minutes: an average, not a p99 (HAProxy's exporter has no histogram).",
    action:
      "Look at the web servers' CPU, memory and disk (node exporter) and at MySQL (`SHOW PROCESSLIST`); if every web server is busy, " +
      "add one (`FOOBAR_WEB_SERVERS`): docs/performance.md.",
  },
  FoobarCertificateExpiring: {
    severity: "ticket",
    meaning: "The certificate a load balancer serves expires within `FOOBAR_ALERT_CERT_EXPIRY_DAYS` days: certbot has not renewed it.",
    action:
      "On that load balancer, `journalctl -u certbot` and `certbot renew --dry-run`; check that the site's name still points at it " +
      "(or the reserved IP) and that port 80 reaches HAProxy: docs/https.md.",
  },
  FoobarCertificateRenewalFailed: {
    severity: "ticket",
    meaning: "certbot's last renewal on a load balancer failed; the certificate served is unchanged until it expires.",
    action:
      "On it, `journalctl -u certbot` and `/var/log/letsencrypt/letsencrypt.log` (DNS not pointing here, the CA's rate limits), " +
      "then `certbot renew --dry-run`: docs/https.md.",
  },
  FoobarDiskFilling: {
    severity: "ticket",
    meaning: "A droplet's ext4 or xfs filesystem has been more than `FOOBAR_ALERT_DISK_PERCENT`% full for 30 s.",
    action:
      "`df -h` and `du -xh --max-depth 2 <mountpoint> | sort -h` on it; a web server's MySQL volume grows in place " +
      "(`FOOBAR_DB_VOLUME_SIZE`, mon-01's `FOOBAR_MONITORING_VOLUME_SIZE`).",
  },
  FoobarMySQLDown: {
    severity: "ticket",
    meaning:
      "A web server's MySQL has not answered its exporter for 20 s (`mysql_up` 0): it neither replicates nor serves reads; if it is the primary, `FoobarNoWritablePrimary` follows.",
    action:
      "On it, `systemctl status mysql` and `journalctl -u mysql -n 100` (and `/var/log/mysql/error.log`); a full volume " +
      "(`FoobarDiskFilling`) is a common cause. Started again, the database agent rejoins it by itself.",
  },
  FoobarDatabaseAgentDown: {
    severity: "ticket",
    meaning:
      "A web server's database agent has not written its status for more than 45 s (it writes only while it reaches MySQL): the agents will neither promote nor fence that server.",
    action:
      "On it, `systemctl status foobar-db-agent` and `journalctl -u foobar-db-agent -n 100`; restart it " +
      "(`systemctl restart foobar-db-agent`) once the journal says why it stopped.",
  },
  FoobarDatabaseRefusing: {
    severity: "ticket",
    meaning:
      "A web server's database agent refuses to promote or rejoin it: its data diverged from, or are older than, what the others acknowledged.",
    action:
      "`journalctl -u foobar-db-agent` on it names what is missing or extra; rebuild it from a healthy server (`touch /etc/foobar/db-agent.rebuild`), " +
      "or, to promote it accepting the loss, `touch /etc/foobar/db-agent.force-promote`: docs/database.md, promotion runbook.",
  },
  FoobarBackupBaseTooOld: {
    severity: "ticket",
    meaning: "No web server has uploaded a base backup for longer than the base backup interval allows.",
    action:
      "`journalctl -u foobar-backup-base` on the replicas (and the primary), and `/var/lib/foobar/backup-status.json`'s last error; " +
      "check the bucket and its key: docs/database.md, backups.",
  },
  FoobarBinlogArchiveBehind: {
    severity: "ticket",
    meaning: "No binary log has reached the backup bucket for longer than allowed: a restore now would lose the writes since.",
    action:
      "On the writable primary, `journalctl -u foobar-backup-archive` and `/var/lib/foobar/backup-status.json`'s last error " +
      "(rclone's errors name the bucket or the key): docs/database.md, backups.",
  },
};

/** The thresholds of the alert rules: the settings' and, for the rest, ALERT_RULE_DEFAULTS. */
export interface AlertRuleInput {
  /** A replica more than this many seconds behind alerts (`FOOBAR_REPLICA_MAX_LAG`). */
  readonly replicaMaxLagSeconds: number;
  /** A load balancer whose answers over 2 minutes are more than this percent 5xx alerts (`FOOBAR_ALERT_5XX_PERCENT`). */
  readonly fiveXxPercent: number;
  /** A load balancer whose average total time (of its last 1024 requests) is above this, in ms, alerts (`FOOBAR_ALERT_LATENCY_MS`). */
  readonly latencyMs: number;
  /** A certificate that expires within this many days alerts (`FOOBAR_ALERT_CERT_EXPIRY_DAYS`). */
  readonly certificateExpiryDays: number;
  /** A filesystem more than this percent full alerts (`FOOBAR_ALERT_DISK_PERCENT`). */
  readonly diskPercent: number;
  /** The newest base backup older than this many hours alerts (a margin over the backups' interval). */
  readonly backupBaseMaxAgeHours: number;
  /** The newest binary log upload older than this many seconds alerts (a margin over the 30 s rotation). */
  readonly binlogArchiveMaxAgeSeconds: number;
}

/** Each threshold's placeholder in the rules file. */
const ALERT_RULE_PLACEHOLDERS: Readonly<Record<keyof AlertRuleInput, string>> = {
  replicaMaxLagSeconds: "REPLICA_MAX_LAG_SECONDS",
  fiveXxPercent: "FIVE_XX_PERCENT",
  latencyMs: "LATENCY_MS",
  certificateExpiryDays: "CERTIFICATE_EXPIRY_DAYS",
  diskPercent: "DISK_PERCENT",
  backupBaseMaxAgeHours: "BACKUP_BASE_MAX_AGE_HOURS",
  binlogArchiveMaxAgeSeconds: "BINLOG_ARCHIVE_MAX_AGE_SECONDS",
};

/**
 * The thresholds no setting declares: merge the settings' over these.
 *
 * A binary log is closed and uploaded every 30 s: 5 minutes without an
 * upload is ten rotations missed, past any passing slowness of the bucket.
 */
export const ALERT_RULE_DEFAULTS = { binlogArchiveMaxAgeSeconds: 300 } as const satisfies Partial<AlertRuleInput>;

/**
 * The alert rules file, its thresholds filled.
 *
 * @throws Error naming the threshold when one is not a positive number.
 */
export function renderAlertRules(input: AlertRuleInput): string {
  const values: Record<string, string> = {};
  for (const [field, placeholder] of Object.entries(ALERT_RULE_PLACEHOLDERS) as [keyof AlertRuleInput, string][]) {
    const value = input[field];
    if (!Number.isFinite(value) || value <= 0) throw new Error(`Alert rules: ${field} must be a positive number, got ${String(value)}`);
    values[placeholder] = String(value);
  }
  return dropletFile(ALERT_RULES_PATH, values);
}

/** Which slots Prometheus looks for, and where the rules are. */
export interface PrometheusConfigInput {
  /** The stack's domain: each slot is found as `<label>.internal.<domain>`, such as `web-01.internal.foobar.com`. */
  readonly domain: string;
  /**
   * How many web server slots to look for (`MAX_WEB_SERVERS`): a slot
   * without a droplet has no DNS record, hence no target, and never alerts.
   */
  readonly webServerSlots: number;
  /** How many load balancer slots to look for (`MAX_LOAD_BALANCERS`). */
  readonly loadBalancerSlots: number;
  /** The monitoring server's DNS label (`MONITORING_SERVER_NAME`), whose node exporter is scraped too. */
  readonly monitoringLabel: string;
  /** Where prometheus.yml says the rules are. @default ALERT_RULES_PATH */
  readonly rulesPath?: string;
}

/**
 * prometheus.yml: scrape every 10 s the exporters of every slot that has a
 * droplet, found by DNS (A records, asked again every 30 s), each target's
 * `instance` its droplet's label (`web-01`); evaluate the rules every 10 s;
 * send alerts to the Alertmanager on loopback.
 *
 * @throws Error when a slot count is not a whole number of at least 1.
 */
export function renderPrometheusConfig(input: PrometheusConfigInput): string {
  for (const field of ["webServerSlots", "loadBalancerSlots"] as const) {
    const value = input[field];
    if (!Number.isInteger(value) || value < 1) throw new Error(`Prometheus: ${field} must be a whole number of at least 1, got ${value}`);
  }
  const slots = (count: number, name: (index: number) => string) => Array.from({ length: count }, (_, i) => name(i + 1));
  const webServers = slots(input.webServerSlots, webServerName);
  const loadBalancers = slots(input.loadBalancerSlots, loadBalancerName);
  const job = (name: keyof typeof PROMETHEUS_PORTS, labels: readonly string[], extra: Record<string, unknown> = {}) => ({
    job_name: name,
    ...extra,
    dns_sd_configs: [
      {
        names: labels.map((label) => internalHostName(label, input.domain)),
        type: "A",
        port: PROMETHEUS_PORTS[name],
        refresh_interval: `${DNS_REFRESH_SECONDS}s`,
      },
    ],
    // web-01.internal.foobar.com:9100 → instance="web-01": the name the alerts and the docs use.
    relabel_configs: [{ source_labels: ["__meta_dns_name"], regex: "([^.]+)\\..*", target_label: "instance", replacement: "$1" }],
  });
  const config = {
    global: { scrape_interval: `${SCRAPE_INTERVAL_SECONDS}s`, evaluation_interval: `${SCRAPE_INTERVAL_SECONDS}s` },
    rule_files: [input.rulesPath ?? ALERT_RULES_PATH],
    alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${PROMETHEUS_PORTS.alertmanager}`] }] }] },
    scrape_configs: [
      job("node", [...loadBalancers, ...webServers, input.monitoringLabel]),
      job("haproxy", loadBalancers, { metrics_path: "/metrics" }),
      job("mysqld", webServers),
      job("nginx", webServers),
    ],
  };
  return "# Managed by cloud-init (foobar): edit the CDKTF stack (cloud-init/prometheus.ts), not this file.\n" + YAML.stringify(config);
}

/** The SMTP relay Alertmanager sends e-mail through (DigitalOcean blocks outbound port 25). */
export interface SmtpSmarthost {
  /** `host:port`, such as `smtp.example.com:587` (STARTTLS required). */
  readonly host: string;
  /** The sender of the e-mails. */
  readonly from: string;
  /** The relay's user. @default - no authentication */
  readonly username?: string;
  /** A file on the monitoring server holding the relay's password. @default - no password */
  readonly passwordFile?: string;
}

/** A Slack incoming webhook. */
export interface SlackDestination {
  /** The webhook's URL (`https://hooks.slack.com/…`). */
  readonly apiUrl: string;
  /** The channel, such as `#ops`. */
  readonly channel: string;
}

/** Who hears of an alert. Every destination is optional. */
export interface AlertmanagerInput {
  /**
   * Addresses that receive every alert and its resolution, when `smarthost`
   * is given. @default - none
   */
  readonly emails?: readonly string[];
  /**
   * The relay for `emails`. @default - no e-mail from Alertmanager: the
   * addresses still receive DigitalOcean's own alerts (constructs/monitoring.ts)
   */
  readonly smarthost?: SmtpSmarthost;
  /** @default - no Slack */
  readonly slack?: SlackDestination;
  /** A URL Alertmanager posts every alert and its resolution to, in its webhook format. @default - none */
  readonly webhookUrl?: string;
}

/**
 * alertmanager.yml: one receiver, `operators`, with each destination given
 * (every one also told when an alert resolves). Alerts are grouped per alert
 * and instance, repeated every 4 h while firing, every 30 min for `page`.
 *
 * With no destination at all the receiver has no configs: Alertmanager
 * accepts that, keeps the alerts (its UI, `amtool alert`) and sends nothing.
 * E-mails without `smarthost` are left to DigitalOcean's own alerts.
 */
export function renderAlertmanagerConfig(input: AlertmanagerInput = {}): string {
  const smtp = input.smarthost;
  const emails = smtp ? (input.emails ?? []) : [];
  const global =
    smtp && emails.length > 0
      ? {
          smtp_smarthost: smtp.host,
          smtp_from: smtp.from,
          ...(smtp.username !== undefined ? { smtp_auth_username: smtp.username } : {}),
          ...(smtp.passwordFile !== undefined ? { smtp_auth_password_file: smtp.passwordFile } : {}),
          smtp_require_tls: true,
        }
      : undefined;
  const receiver = {
    name: ALERT_RECEIVER,
    ...(emails.length > 0 ? { email_configs: emails.map((to) => ({ to, send_resolved: true })) } : {}),
    ...(input.slack ? { slack_configs: [{ api_url: input.slack.apiUrl, channel: input.slack.channel, send_resolved: true }] } : {}),
    ...(input.webhookUrl !== undefined ? { webhook_configs: [{ url: input.webhookUrl, send_resolved: true }] } : {}),
  };
  const config = {
    ...(global ? { global } : {}),
    route: {
      receiver: ALERT_RECEIVER,
      group_by: ["alertname", "instance"],
      // A new alert leaves after 10 s (others of its group may join it); a change, such as its resolution, at the next
      // 30 s step: both well inside the minute the operator is promised.
      group_wait: "10s",
      group_interval: "30s",
      repeat_interval: ALERT_REPEAT_INTERVAL.ticket,
      routes: [{ matchers: ['severity="page"'], receiver: ALERT_RECEIVER, repeat_interval: ALERT_REPEAT_INTERVAL.page }],
    },
    receivers: [receiver],
  };
  return "# Managed by cloud-init (foobar): edit the CDKTF stack (cloud-init/prometheus.ts), not this file.\n" + YAML.stringify(config);
}

/**
 * The alert table of docs/monitoring.md: every alert in the rules' order, its
 * severity, how long its condition must hold (the rule's `for:`), what it
 * means and what to do. A test keeps the docs equal to it.
 */
export function alertRunbookTable(rules: string): string {
  const parsed = YAML.parse(rules) as { groups: { rules: { alert: string; for?: string }[] }[] };
  const holds = new Map(parsed.groups.flatMap((group) => group.rules.map((rule) => [rule.alert, rule.for ?? "at once"] as const)));
  const escape = (cell: string) => cell.replace(/\|/g, "\\|");
  return [
    "| Alert | Severity | Fires after | What it means | What to do |",
    "| --- | --- | --- | --- | --- |",
    ...ALERT_NAMES.map((name) => {
      const entry = ALERT_RUNBOOK[name];
      return `| \`${name}\` | ${entry.severity} | ${holds.get(name) ?? "?"} | ${escape(entry.meaning)} | ${escape(entry.action)} |`;
    }),
  ].join("\n");
}
