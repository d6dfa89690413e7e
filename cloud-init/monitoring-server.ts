/**
 * mon-01, the monitoring server: Prometheus scraping every droplet's
 * exporters over the VPC, Alertmanager sending what its rules find, both from
 * the distribution's archive; Prometheus' data on a volume of its own.
 */
import { CloudConfig } from "./cloud-config";
import { ExporterParts } from "./exporters";
import { dropletFile } from "./files";
import { HostFirewallRule } from "./hardening";
import { PRIVATE_ADDRESS_PATHS, privateAddressFiles } from "./private-address";
import { PROMETHEUS_PORTS } from "./prometheus";
import { DPKG_LOCK_WAIT, hardening } from "./user-data";
import { VolumeMount, volumeParts } from "./volume";

export const MONITORING_PATHS = {
  prometheusConfig: "/etc/prometheus/prometheus.yml",
  rules: "/etc/prometheus/rules/foobar.yml",
  alertmanagerConfig: "/etc/prometheus/alertmanager.yml",
  /** Prometheus' users and their bcrypt hashes, written at boot from the password. */
  webConfig: "/etc/prometheus/web.yml",
  /** The UI's password as Terraform generated it; root only. */
  passwordFile: "/etc/prometheus/foobar-ui-password",
  /** The SMTP relay's password, for Alertmanager. */
  smtpPasswordFile: "/etc/prometheus/foobar-smtp-password",
  webConfigScript: "/usr/local/sbin/foobar-prometheus-web-config",
  /** The stack at a glance, rendered by Prometheus at /consoles/foobar.html. */
  console: "/etc/prometheus/consoles/foobar.html",
  prometheusDropIn: "/etc/systemd/system/prometheus.service.d/foobar.conf",
  alertmanagerDropIn: "/etc/systemd/system/prometheus-alertmanager.service.d/foobar.conf",
} as const;

/** The user of Prometheus' basic authentication. */
export const PROMETHEUS_USER = "admin";

/** How long Prometheus keeps its samples: two weeks, about 1 GB for this stack's targets. */
export const PROMETHEUS_RETENTION = "15d";

export interface MonitoringServerUserDataInput {
  readonly hostname: string;
  readonly vpcIpRange: string;
  /** The volume mounted on /var/lib/prometheus. */
  readonly dataVolume: VolumeMount;
  /** Terraform token of the generated password of Prometheus' UI. */
  readonly uiPassword: string;
  /** The rendered prometheus.yml, rules and alertmanager.yml. */
  readonly prometheusConfig: string;
  readonly alertRules: string;
  readonly alertmanagerConfig: string;
  /** Terraform token of the SMTP relay's password. @default - no SMTP authentication */
  readonly smtpPassword?: string;
  /** Inbound TCP the host firewall allows. */
  readonly hostFirewall: readonly HostFirewallRule[];
  /** What every droplet runs to be scraped (the node exporter). */
  readonly exporter: ExporterParts;
}

/** The `#cloud-config` of mon-01. */
export function monitoringServerCloudConfig(input: MonitoringServerUserDataInput): CloudConfig {
  const host = hardening(input.hostFirewall);
  const volumes = volumeParts([input.dataVolume]);
  const owned = { owner: "root:prometheus", permissions: "0640", defer: true } as const;
  return {
    hostname: input.hostname,
    // python3-bcrypt: Prometheus takes its password as a bcrypt hash only.
    packages: ["prometheus", "prometheus-alertmanager", "python3-bcrypt", ...input.exporter.packages, ...host.packages],
    writeFiles: [
      DPKG_LOCK_WAIT,
      ...host.writeFiles,
      ...volumes.writeFiles,
      ...privateAddressFiles({ vpcIpRange: input.vpcIpRange }),
      {
        path: MONITORING_PATHS.prometheusDropIn,
        content: dropletFile(MONITORING_PATHS.prometheusDropIn, {
          ADDRESS_ENVIRONMENT: PRIVATE_ADDRESS_PATHS.addressEnvironment,
          RETENTION: PROMETHEUS_RETENTION,
          PORT: String(PROMETHEUS_PORTS.prometheus),
          WEB_CONFIG: MONITORING_PATHS.webConfig,
        }),
      },
      {
        path: MONITORING_PATHS.alertmanagerDropIn,
        content: dropletFile(MONITORING_PATHS.alertmanagerDropIn, { PORT: String(PROMETHEUS_PORTS.alertmanager) }),
      },
      {
        path: MONITORING_PATHS.webConfigScript,
        permissions: "0755",
        content: dropletFile(MONITORING_PATHS.webConfigScript, {
          PASSWORD_FILE: MONITORING_PATHS.passwordFile,
          WEB_CONFIG: MONITORING_PATHS.webConfig,
          USER: PROMETHEUS_USER,
        }),
      },
      ...input.exporter.writeFiles,
      // After the packages: their conffiles, and the prometheus user.
      { path: MONITORING_PATHS.passwordFile, permissions: "0600", defer: true, content: `${input.uiPassword}\n` },
      ...(input.smtpPassword !== undefined
        ? [{ path: MONITORING_PATHS.smtpPasswordFile, ...owned, content: `${input.smtpPassword}\n` }]
        : []),
      { path: MONITORING_PATHS.prometheusConfig, ...owned, content: input.prometheusConfig },
      { path: MONITORING_PATHS.rules, ...owned, content: input.alertRules },
      { path: MONITORING_PATHS.alertmanagerConfig, ...owned, content: input.alertmanagerConfig },
      { path: MONITORING_PATHS.console, ...owned, content: dropletFile(MONITORING_PATHS.console) },
    ],
    bootcmd: [...host.bootcmd, ...volumes.bootcmd],
    runcmd: [
      ...host.firstRuncmd,
      ...volumes.runcmd,
      [PRIVATE_ADDRESS_PATHS.script],
      [MONITORING_PATHS.webConfigScript],
      // A replaced mon-01 mounts its predecessor's data, whose owner's uid may differ from this droplet's prometheus user.
      ["chown", "-R", "prometheus:prometheus", "/var/lib/prometheus"],
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", "prometheus.service", "prometheus-alertmanager.service"],
      ["systemctl", "restart", "prometheus-alertmanager.service", "prometheus.service"],
      ...input.exporter.runcmd,
      ...host.runcmd,
    ],
  };
}
