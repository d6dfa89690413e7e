import { APP, renderAppEnvironment, renderAppUnit } from "./app";
import { BACKUP, BackupInput, backupParts } from "./backup";
import { ACME_CHALLENGE_PORT, CERTIFICATE_PATHS, deployHookScript, renderCertificateUnit, renderPlaceholderScript } from "./certificate";
import { CloudConfig, WriteFile } from "./cloud-config";
import { renderEnvironmentFile } from "./environment-file";
import {
  CERTBOT_RENEWAL_UNIT,
  EXPORTER_PORTS,
  ExporterParts,
  METRICS_PATH,
  NGINX_STUB_STATUS,
  nodeExporterParts,
  webServerExporterParts,
} from "./exporters";
import { HaproxyAcmePeer, HaproxyBackend, renderHaproxyConfig } from "./haproxy";
import { HARDENING_PACKAGES, HostFirewallRule, RELOAD_SSHD, SSHD_HARDENING, ufwCommands, UNATTENDED_UPGRADES } from "./hardening";
import { FAILOVER_PATHS, failoverFiles, FailoverInput, failoverRuncmd } from "./keepalived";
import { metadataGuard } from "./metadata-guard";
import {
  DATABASE_AGENT,
  databaseAgentDecisions,
  DatabaseAgentInput,
  databaseAgentScript,
  databaseAgentUnit,
  DatabaseRole,
  MYSQL_INSTALL_SCRIPT_PATH,
  MYSQL_PATHS,
  MYSQL_USERS,
  mysqlInstallScript,
  mysqlSetupScript,
  renderDatabaseAgentEnvironment,
  renderMysqlServerConfig,
  renderMysqlSetupEnvironment,
} from "./mysql";
import { renderNginxSite } from "./nginx";
import { mysqlBindDropIn, PRIVATE_ADDRESS_PATHS, PRIVATE_ADDRESS_VARIABLE, privateAddressFiles } from "./private-address";
import { VolumeMount, volumeParts } from "./volume";

/** The monitoring server's share of the exporters (its cloud-config is in monitoring-server.ts). */
export { exporterParts } from "./exporters";

/** A droplet nobody scrapes runs no exporter. */
const NO_EXPORTERS: ExporterParts = { packages: [], writeFiles: [], runcmd: [] };

/** Port Nginx listens on; HAProxy's backends use it. */
export const WEB_PORT = 80;

export const DATABASE_NAME = "foobar";

/** HAProxy's stats page, on lb-01's loopback and private address. */
export const HAPROXY_STATS = {
  port: 8404,
  user: "admin",
  environmentFile: "/etc/haproxy/foobar-stats.env",
  passwordVariable: "STATS_PASSWORD",
  dropIn: "/etc/systemd/system/haproxy.service.d/foobar.conf",
} as const;

/**
 * Hardening every droplet shares: files, packages and the commands that apply
 * them. `firstRuncmd` runs before anything else in runcmd, `runcmd` last.
 */
export function hardening(hostFirewall: readonly HostFirewallRule[]) {
  const guard = metadataGuard();
  return {
    bootcmd: guard.bootcmd,
    packages: [...HARDENING_PACKAGES, ...guard.packages],
    writeFiles: [SSHD_HARDENING, UNATTENDED_UPGRADES, ...guard.writeFiles],
    firstRuncmd: guard.runcmd,
    runcmd: [RELOAD_SSHD, ...ufwCommands(hostFirewall)],
  };
}

/**
 * Makes apt wait for the dpkg lock instead of failing: on a droplet's first
 * boot, unattended-upgrades may hold it while cloud-init installs packages.
 */
export const DPKG_LOCK_WAIT: WriteFile = {
  path: "/etc/apt/apt.conf.d/90foobar-dpkg-lock-timeout",
  content: 'DPkg::Lock::Timeout "900";\n',
};

/** One file of the application, relative to the application folder. */
export interface AppFile {
  readonly relativePath: string;
  readonly content: string;
  /** `b64` for files that are not UTF-8 text. @default - text */
  readonly encoding?: "b64";
  /** Written 0755 instead of 0644: the owner could execute it. @default false */
  readonly executable?: boolean;
}

export interface HttpsInput {
  readonly acmeDirectoryUrl: string;
  readonly contactEmail: string;
  readonly hstsMaxAgeSeconds: number;
  /** PEM of a CA to trust for the ACME directory. @default - the system's CAs */
  readonly trustedCa?: string;
}

export interface LoadBalancerUserDataInput {
  readonly hostname: string;
  readonly vpcIpRange: string;
  /** Host names the site answers to; the first is sent in health checks and names the certificate. */
  readonly siteHostNames: readonly string[];
  readonly backends: readonly HaproxyBackend[];
  /**
   * The volume that keeps `/etc/letsencrypt` (the ACME account and the
   * certificates) when the load balancer is replaced. @default - none
   */
  readonly certificateVolume?: VolumeMount;
  /** Terraform token of the generated stats password. */
  readonly statsPassword: string;
  /** Inbound TCP the host firewall allows. */
  readonly hostFirewall: readonly HostFirewallRule[];
  /** HTTPS with a certificate from an ACME CA. @default - plain HTTP */
  readonly https?: HttpsInput;
  /** One of a pair sharing the reserved IP (keepalived). @default - the only load balancer */
  readonly pair?: LoadBalancerPairInput;
  /** Run the exporters mon-01 scrapes (cloud-init/exporters.ts). @default false */
  readonly monitored?: boolean;
}

export interface LoadBalancerPairInput {
  /** Where HAProxy passes ACME challenges this load balancer's certbot does not know. @default - none (plain HTTP) */
  readonly acmePeer?: HaproxyAcmePeer;
  readonly failover: FailoverInput;
}

/** The `#cloud-config` of the load balancer: HAProxy, its certificate and the host's hardening. */
export function loadBalancerCloudConfig(input: LoadBalancerUserDataInput): CloudConfig {
  const https = input.https;
  const host = hardening(input.hostFirewall);
  const volumes = volumeParts(https && input.certificateVolume ? [input.certificateVolume] : []);
  const exporter = input.monitored
    ? nodeExporterParts({
        vrrpState: input.pair ? FAILOVER_PATHS.stateFile : undefined,
        certificate: https ? CERTIFICATE_PATHS.haproxyPem : undefined,
        renewalUnit: https ? CERTBOT_RENEWAL_UNIT : undefined,
      })
    : NO_EXPORTERS;
  const haproxyConfig = renderHaproxyConfig({
    siteHostNames: input.siteHostNames,
    backends: input.backends,
    healthPath: APP.healthPath,
    backendPort: WEB_PORT,
    tls: https && {
      certificateFile: CERTIFICATE_PATHS.haproxyPem,
      acmeChallengePort: ACME_CHALLENGE_PORT,
      hstsMaxAgeSeconds: https.hstsMaxAgeSeconds,
      peer: input.pair?.acmePeer,
    },
    stats: {
      port: HAPROXY_STATS.port,
      privateAddressVariable: PRIVATE_ADDRESS_VARIABLE,
      passwordVariable: HAPROXY_STATS.passwordVariable,
    },
    prometheus: input.monitored ? { port: EXPORTER_PORTS.haproxy, path: METRICS_PATH } : undefined,
  });
  const certificateFiles: WriteFile[] = https
    ? [
        { path: CERTIFICATE_PATHS.placeholderScript, permissions: "0755", content: renderPlaceholderScript(input.siteHostNames) },
        { path: CERTIFICATE_PATHS.deployHook, permissions: "0755", content: deployHookScript() },
        {
          path: CERTIFICATE_PATHS.unitPath,
          content: renderCertificateUnit({
            siteHostNames: input.siteHostNames,
            acmeDirectoryUrl: https.acmeDirectoryUrl,
            contactEmail: https.contactEmail,
          }),
        },
      ]
    : [];
  return {
    hostname: input.hostname,
    packages: ["haproxy", ...(https ? ["certbot"] : []), ...(input.pair ? ["keepalived"] : []), ...exporter.packages, ...host.packages],
    trustedCaCertificates: https?.trustedCa ? [https.trustedCa] : undefined,
    writeFiles: [
      DPKG_LOCK_WAIT,
      ...host.writeFiles,
      ...volumes.writeFiles,
      ...privateAddressFiles({ vpcIpRange: input.vpcIpRange }),
      // Before the packages: the node exporter's first start already listens on the private address only.
      ...exporter.writeFiles,
      ...certificateFiles,
      // The rest after the package: haproxy's user must exist, and dpkg must never see a foreign conffile.
      {
        path: HAPROXY_STATS.environmentFile,
        owner: "haproxy:haproxy",
        permissions: "0600",
        defer: true,
        content: renderEnvironmentFile({ [HAPROXY_STATS.passwordVariable]: input.statsPassword }),
      },
      {
        path: HAPROXY_STATS.dropIn,
        defer: true,
        content: [
          "# Managed by cloud-init (foobar): the variables haproxy.cfg expands.",
          "[Service]",
          `EnvironmentFile=${PRIVATE_ADDRESS_PATHS.addressEnvironment}`,
          `EnvironmentFile=${HAPROXY_STATS.environmentFile}`,
          "",
        ].join("\n"),
      },
      { path: "/etc/haproxy/haproxy.cfg", content: haproxyConfig, defer: true },
      ...(input.pair ? failoverFiles(input.pair.failover) : []),
    ],
    bootcmd: [...host.bootcmd, ...volumes.bootcmd],
    runcmd: [
      ...host.firstRuncmd,
      ...volumes.runcmd,
      [PRIVATE_ADDRESS_PATHS.script],
      ...(https ? [[CERTIFICATE_PATHS.placeholderScript]] : []),
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", "haproxy.service"],
      // The unit checks the configuration before it starts HAProxy.
      ["systemctl", "restart", "haproxy.service"],
      ...exporter.runcmd,
      ...host.runcmd,
      // After ufw: the tunnel's rules are in place before keepalived speaks.
      ...(input.pair ? failoverRuncmd() : []),
      // Issuance retries in the background until the DNS record points here.
      ...(https
        ? [
            ["systemctl", "enable", CERTIFICATE_PATHS.unitName],
            ["systemctl", "start", "--no-block", CERTIFICATE_PATHS.unitName],
          ]
        : []),
    ],
  };
}

export interface WebServerUserDataInput {
  readonly hostname: string;
  readonly databaseRole: DatabaseRole;
  /** Unique per server, 1 for the primary. */
  readonly mysqlServerId: number;
  /** DNS name of the MySQL primary's private address, resolved at run time. */
  readonly primaryHost: string;
  /** The volume that holds MySQL's data directory. */
  readonly databaseVolume: VolumeMount;
  readonly vpcIpRange: string;
  readonly siteHostNames: readonly string[];
  /** Terraform token of a generated password. */
  readonly replicationPassword: string;
  /** Terraform token of a generated password. */
  readonly appDatabasePassword: string;
  readonly replicaMaxLagSeconds: number;
  readonly appFiles: readonly AppFile[];
  readonly appCommand: string;
  /** Inbound TCP the host firewall allows. */
  readonly hostFirewall: readonly HostFirewallRule[];
  /** Milliseconds a commit waits for a replica's acknowledgement. */
  readonly semiSyncTimeoutMs: number;
  /** What the database agent needs: every server that may be writable, the records' TTL. */
  readonly databaseAgent: DatabaseAgentInput;
  /** Where and how the database is backed up. @default - no backups */
  readonly backup?: BackupInput;
  /** Run the exporters mon-01 scrapes (cloud-init/exporters.ts). @default false */
  readonly monitored?: boolean;
}

/** The `#cloud-config` of a web server: Nginx, the application, MySQL and the host's hardening. */
export function webServerCloudConfig(input: WebServerUserDataInput): CloudConfig {
  const host = hardening(input.hostFirewall);
  const volumes = volumeParts([input.databaseVolume]);
  const backup =
    input.backup &&
    backupParts(input.backup, {
      volumeLabel: input.databaseVolume.label,
      setupEnvironment: MYSQL_PATHS.setupEnvironment,
      agentEnvironment: DATABASE_AGENT.environment,
      addressEnvironment: PRIVATE_ADDRESS_PATHS.addressEnvironment,
      agentUnit: DATABASE_AGENT.unitName,
    });
  const exporters = input.monitored
    ? [
        nodeExporterParts({
          databaseAgentStatus: DATABASE_AGENT.status,
          mysql: true,
          backupStatus: backup ? BACKUP.status : undefined,
        }),
        webServerExporterParts(),
      ]
    : [];
  const appFiles: WriteFile[] = input.appFiles.map((file) => ({
    path: `${APP.directory}/${file.relativePath}`,
    content: file.content,
    ...(file.encoding ? { encoding: file.encoding } : {}),
    ...(file.executable ? { permissions: "0755" } : {}),
  }));
  return {
    hostname: input.hostname,
    // mysql-server comes from runcmd (mysqlInstallScript), where a failed initialization can be retried.
    // python3-dnspython: the database agent asks DNS past the local cache.
    packages: [
      "nginx",
      "gunicorn",
      "python3-pymysql",
      "python3-dnspython",
      ...exporters.flatMap((parts) => parts.packages),
      ...host.packages,
      ...(backup?.packages ?? []),
    ],
    systemUsers: [{ name: APP.user, homedir: APP.directory }],
    writeFiles: [
      DPKG_LOCK_WAIT,
      ...host.writeFiles,
      ...volumes.writeFiles,
      // Before the package is installed, so MySQL's first start has them.
      {
        path: MYSQL_PATHS.serverConfig,
        content: renderMysqlServerConfig({ role: input.databaseRole, serverId: input.mysqlServerId }),
      },
      ...privateAddressFiles({ vpcIpRange: input.vpcIpRange, webPort: WEB_PORT }),
      { path: PRIVATE_ADDRESS_PATHS.mysqlDropIn, content: mysqlBindDropIn() },
      // Before the packages: the exporters' first start already listens on the private address only.
      ...exporters.flatMap((parts) => parts.writeFiles),
      {
        path: MYSQL_PATHS.setupEnvironment,
        permissions: "0600",
        content: renderMysqlSetupEnvironment({
          role: input.databaseRole,
          primaryHost: input.primaryHost,
          vpcIpRange: input.vpcIpRange,
          replicationPassword: input.replicationPassword,
          appPassword: input.appDatabasePassword,
          databaseName: DATABASE_NAME,
          semiSyncTimeoutMs: input.semiSyncTimeoutMs,
        }),
      },
      { path: MYSQL_PATHS.setupScript, permissions: "0700", content: mysqlSetupScript() },
      { path: MYSQL_INSTALL_SCRIPT_PATH, permissions: "0700", content: mysqlInstallScript() },
      { path: DATABASE_AGENT.environment, content: renderDatabaseAgentEnvironment(input.databaseAgent) },
      { path: DATABASE_AGENT.script, permissions: "0700", content: databaseAgentScript(PRIVATE_ADDRESS_PATHS) },
      { path: DATABASE_AGENT.decisions, permissions: "0644", content: databaseAgentDecisions() },
      { path: DATABASE_AGENT.unitPath, content: databaseAgentUnit() },
      ...(backup?.writeFiles ?? []),
      ...appFiles,
      {
        path: APP.environmentFile,
        owner: `${APP.user}:${APP.user}`,
        permissions: "0600",
        defer: true,
        content: renderAppEnvironment({
          serverName: input.hostname,
          primaryHost: input.primaryHost,
          databaseName: DATABASE_NAME,
          databaseUser: MYSQL_USERS.app,
          databasePassword: input.appDatabasePassword,
          replicaMaxLagSeconds: input.replicaMaxLagSeconds,
          agentStatusFile: DATABASE_AGENT.status,
        }),
      },
      { path: APP.unitPath, content: renderAppUnit({ command: input.appCommand }) },
      {
        path: "/etc/nginx/sites-available/foobar",
        defer: true,
        content: renderNginxSite({
          serverName: input.hostname,
          listenSnippet: PRIVATE_ADDRESS_PATHS.nginxSnippet,
          port: WEB_PORT,
          siteHostNames: input.siteHostNames,
          staticRoot: APP.staticDirectory,
          appPort: APP.port,
          backupStatus: backup && { path: BACKUP.statusPath, file: BACKUP.status },
          stubStatus: input.monitored ? NGINX_STUB_STATUS : undefined,
        }),
      },
    ],
    bootcmd: [...host.bootcmd, ...volumes.bootcmd],
    runcmd: [
      ...host.firstRuncmd,
      ...volumes.runcmd,
      [MYSQL_INSTALL_SCRIPT_PATH],
      [MYSQL_PATHS.setupScript],
      [PRIVATE_ADDRESS_PATHS.script],
      ["rm", "-f", "/etc/nginx/sites-enabled/default"],
      ["ln", "-sf", "/etc/nginx/sites-available/foobar", "/etc/nginx/sites-enabled/foobar"],
      ["nginx", "-t", "-q"],
      // A restart, not a reload: the package's default site holds 0.0.0.0:80,
      // which a reload cannot release before binding the private address.
      ["systemctl", "restart", "nginx.service"],
      ["systemctl", "daemon-reload"],
      // After the first-boot setup: from now on the agent keeps MySQL primary or replica.
      ["systemctl", "enable", "--now", DATABASE_AGENT.unitName],
      ...(backup?.runcmd ?? []),
      ["systemctl", "enable", "--now", APP.unitName],
      // After Nginx (stub_status) and the database agent (its status file).
      ...exporters.flatMap((parts) => parts.runcmd),
      ...host.runcmd,
    ],
  };
}
