/**
 * What Prometheus scrapes on the load balancers and the web servers (issue
 * 24): the node exporter on every droplet, HAProxy's built-in exporter, the
 * Nginx and mysqld exporters, and `foobar-metrics`, which writes this stack's
 * own facts (the database's role, replication, the agent's refusals, backups,
 * the pair's VRRP state, the certificate) for the node exporter's textfile
 * collector.
 *
 * Every exporter listens on the droplet's private address only, never on
 * 0.0.0.0: its unit's drop-in runs the address script before it starts (as
 * MySQL's does) and reads the address from the file the script writes. The
 * drop-ins are written before the packages are installed, so an exporter's
 * first start, by its package, already listens there. Flags are the ones
 * every packaged version accepts: Debian sid's (node 1.11, mysqld 0.19,
 * nginx 1.5) and Ubuntu 24.04's (node 1.7, mysqld 0.15, nginx 0.11, whose Go
 * flags take two dashes as well as one).
 */
import { WriteFile } from "./cloud-config";
import { renderEnvironmentFile } from "./environment-file";
import { dropletFile } from "./files";
import { PRIVATE_ADDRESS_PATHS, PRIVATE_ADDRESS_VARIABLE } from "./private-address";
import { PROMETHEUS_PORTS } from "./prometheus";

/** The port of each exporter, on the private address (Prometheus' jobs: node, haproxy, mysqld, nginx), as Prometheus scrapes them. */
export const EXPORTER_PORTS = {
  node: PROMETHEUS_PORTS.node,
  haproxy: PROMETHEUS_PORTS.haproxy,
  mysqld: PROMETHEUS_PORTS.mysqld,
  nginx: PROMETHEUS_PORTS.nginx,
} as const;

/** Where each exporter answers. */
export const METRICS_PATH = "/metrics";

/** Debian's default directory of the node exporter's textfile collector. */
export const TEXTFILE_DIRECTORY = "/var/lib/prometheus/node-exporter";

/** What `foobar-metrics` writes (the node exporter reads only files ending in `.prom`). */
export const METRICS_FILE = `${TEXTFILE_DIRECTORY}/foobar.prom`;

/** Nginx's `stub_status`, on loopback only: the Nginx exporter's source. */
export const NGINX_STUB_STATUS = { address: "127.0.0.1", port: 8081, path: "/stub_status" } as const;

/** The MySQL account of the mysqld exporter: the exporter's own system user, authenticated by the socket (auth_socket). */
export const MYSQLD_EXPORTER = {
  user: "prometheus",
  /** No secret: the user name and MySQL's socket. */
  clientConfig: "/etc/foobar/mysqld-exporter.cnf",
  socket: "/run/mysqld/mysqld.sock",
} as const;

/**
 * The statements that create the exporter's MySQL account (idempotent): what
 * `SHOW GLOBAL STATUS`, `SHOW REPLICA STATUS` and performance_schema need,
 * nothing more, and only through the local socket as the OS user of the same
 * name. MySQL 8.0, 8.4 and 9.x all accept them (the packages install
 * auth_socket for root).
 */
export function exporterUserSql(): string[] {
  const account = `'${MYSQLD_EXPORTER.user}'@'localhost'`;
  return [
    `CREATE USER IF NOT EXISTS ${account} IDENTIFIED WITH auth_socket;`,
    `GRANT PROCESS, REPLICATION CLIENT ON *.* TO ${account};`,
    `GRANT SELECT ON performance_schema.* TO ${account};`,
  ];
}

export const FOOBAR_METRICS = {
  script: "/usr/local/sbin/foobar-metrics",
  /** Where its sources are, per droplet. */
  environment: "/etc/foobar/metrics.env",
  unitName: "foobar-metrics.service",
  unitPath: "/etc/systemd/system/foobar-metrics.service",
  timerName: "foobar-metrics.timer",
  timerPath: "/etc/systemd/system/foobar-metrics.timer",
  intervalSeconds: 10,
} as const;

/** The unit of Debian's and Ubuntu's certbot package that renews certificates (its timer runs it twice a day). */
export const CERTBOT_RENEWAL_UNIT = "certbot.service";

/** The sources `foobar-metrics` reads on a droplet; a metric whose source is not given is not written. */
export interface MetricsSources {
  /** The database agent's status file (web servers). @default - none */
  readonly databaseAgentStatus?: string;
  /** Ask the local MySQL (as root, over the socket) for its role and replication. @default false */
  readonly mysql?: boolean;
  /** The backup status file (web servers with backups). @default - none */
  readonly backupStatus?: string;
  /** keepalived's state file, written by the notify script (a load balancer of a pair). @default - none */
  readonly vrrpState?: string;
  /** The PEM HAProxy serves (load balancers with HTTPS). @default - none */
  readonly certificate?: string;
  /** The unit that renews the certificate. @default - none */
  readonly renewalUnit?: string;
}

export function renderMetricsEnvironment(sources: MetricsSources): string {
  const variables: Record<string, string> = {};
  if (sources.databaseAgentStatus) variables.DATABASE_AGENT_STATUS = sources.databaseAgentStatus;
  if (sources.mysql) variables.MYSQL = "1";
  if (sources.backupStatus) variables.BACKUP_STATUS = sources.backupStatus;
  if (sources.vrrpState) variables.VRRP_STATE = sources.vrrpState;
  if (sources.certificate) variables.CERTIFICATE = sources.certificate;
  if (sources.renewalUnit) variables.RENEWAL_UNIT = sources.renewalUnit;
  return renderEnvironmentFile(variables);
}

/** `cloud-init/files/usr/local/sbin/foobar-metrics` (Python), its paths filled. */
export function metricsScript(): string {
  return dropletFile(FOOBAR_METRICS.script, { METRICS_ENVIRONMENT: FOOBAR_METRICS.environment, METRICS_FILE });
}

/** The Debian packages of the exporters. */
export const EXPORTER_PACKAGES = {
  node: "prometheus-node-exporter",
  mysqld: "prometheus-mysqld-exporter",
  nginx: "prometheus-nginx-exporter",
} as const;

type PackagedExporter = keyof typeof EXPORTER_PACKAGES;

/** The drop-in's path: the packaged unit is `prometheus-<name>-exporter.service`. */
export function exporterDropInPath(exporter: PackagedExporter): string {
  return `/etc/systemd/system/${EXPORTER_PACKAGES[exporter]}.service.d/foobar.conf`;
}

/**
 * The drop-in that makes a packaged exporter listen on the private address
 * only: the address script runs first (as root, `+`), then the exporter
 * starts with the address it wrote, its package's `ARGS` and `flags`.
 */
export function exporterDropIn(exporter: PackagedExporter, flags: readonly string[] = []): string {
  return dropletFile("/etc/systemd/system/prometheus-@@EXPORTER@@-exporter.service.d/foobar.conf", {
    EXPORTER: exporter,
    BIND_ADDRESSES_SCRIPT: PRIVATE_ADDRESS_PATHS.script,
    ADDRESS_ENVIRONMENT: PRIVATE_ADDRESS_PATHS.addressEnvironment,
    ADDRESS_VARIABLE: PRIVATE_ADDRESS_VARIABLE,
    PORT: String(EXPORTER_PORTS[exporter]),
    FLAGS: ["", ...flags].join(" "),
  });
}

/** An exporter's share of a droplet's cloud-config. */
export interface ExporterParts {
  readonly packages: readonly string[];
  readonly writeFiles: readonly WriteFile[];
  /** After `systemctl daemon-reload` and the services the exporters read are up. */
  readonly runcmd: readonly (readonly string[])[];
}

/**
 * Keeps out what the node exporter's package recommends, `prometheus-node-exporter-collectors`: its timers (apt,
 * SMART, IPMI, …) and their dependencies (openipmi, smartmontools, python3-httpx) slow every droplet's first boot,
 * and this stack alerts on none of what they collect. Written before the packages, as an apt pin.
 */
const NO_EXPORTER_COLLECTORS: WriteFile = {
  path: "/etc/apt/preferences.d/foobar-no-node-exporter-collectors",
  content: [
    "# Managed by cloud-init (foobar): the node exporter's recommended collectors are not installed.",
    "Package: prometheus-node-exporter-collectors",
    "Pin: release *",
    "Pin-Priority: -1",
    "",
  ].join("\n"),
};

/**
 * What every droplet runs to be scraped: the node exporter (with its textfile
 * collector) and `foobar-metrics` every 10 s with the droplet's `sources`.
 * The private address script and its environment are the droplet's own
 * (every droplet writes them).
 */
export function nodeExporterParts(sources: MetricsSources = {}): ExporterParts {
  return {
    packages: [EXPORTER_PACKAGES.node],
    writeFiles: [
      NO_EXPORTER_COLLECTORS,
      {
        path: exporterDropInPath("node"),
        content: exporterDropIn("node", [`--collector.textfile.directory=${TEXTFILE_DIRECTORY}`]),
      },
      { path: FOOBAR_METRICS.environment, content: renderMetricsEnvironment(sources) },
      { path: FOOBAR_METRICS.script, permissions: "0755", content: metricsScript() },
      { path: FOOBAR_METRICS.unitPath, content: dropletFile(FOOBAR_METRICS.unitPath, { SCRIPT: FOOBAR_METRICS.script }) },
      {
        path: FOOBAR_METRICS.timerPath,
        content: dropletFile(FOOBAR_METRICS.timerPath, { INTERVAL: `${FOOBAR_METRICS.intervalSeconds}s` }),
      },
    ],
    runcmd: [
      ["systemctl", "daemon-reload"],
      // The package started it already (through the drop-in); a restart is harmless and makes sure.
      ["systemctl", "restart", `${EXPORTER_PACKAGES.node}.service`],
      ["systemctl", "enable", "--now", FOOBAR_METRICS.timerName],
    ],
  };
}

/** A web server's exporters besides the node exporter: Nginx's (from stub_status) and MySQL's (over the socket). */
export function webServerExporterParts(): ExporterParts {
  return {
    packages: [EXPORTER_PACKAGES.nginx, EXPORTER_PACKAGES.mysqld],
    writeFiles: [
      {
        path: exporterDropInPath("nginx"),
        content: exporterDropIn("nginx", [
          `--nginx.scrape-uri=http://${NGINX_STUB_STATUS.address}:${NGINX_STUB_STATUS.port}${NGINX_STUB_STATUS.path}`,
        ]),
      },
      {
        path: exporterDropInPath("mysqld"),
        content: exporterDropIn("mysqld", [`--config.my-cnf=${MYSQLD_EXPORTER.clientConfig}`]),
      },
      {
        path: MYSQLD_EXPORTER.clientConfig,
        content: `[client]\nuser=${MYSQLD_EXPORTER.user}\nsocket=${MYSQLD_EXPORTER.socket}\n`,
      },
    ],
    runcmd: [
      ["systemctl", "daemon-reload"],
      // After Nginx serves stub_status: the Nginx exporter 0.11 exits when it cannot reach it at start.
      ["systemctl", "restart", `${EXPORTER_PACKAGES.nginx}.service`, `${EXPORTER_PACKAGES.mysqld}.service`],
    ],
  };
}

/**
 * The exporters of a droplet that has no renderer here (the monitoring
 * server): the node exporter, and `foobar-metrics` with no source but its own
 * timestamp.
 */
export function exporterParts(droplet: "monitoring"): ExporterParts {
  switch (droplet) {
    case "monitoring":
      return nodeExporterParts();
  }
}
