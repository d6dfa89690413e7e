import { APP, renderAppEnvironment, renderAppUnit } from "./app";
import { CloudConfig, WriteFile } from "./cloud-config";
import { HaproxyInput, renderHaproxyConfig } from "./haproxy";
import {
  DatabaseRole,
  MYSQL_PATHS,
  MYSQL_SETUP_SCRIPT,
  MYSQL_USERS,
  renderMysqlServerConfig,
  renderMysqlSetupEnvironment,
} from "./mysql";
import { renderNginxSite } from "./nginx";
import {
  BIND_ADDRESSES_SCRIPT,
  MYSQL_BIND_DROP_IN,
  PRIVATE_ADDRESS_PATHS,
  renderNetworkEnvironment,
} from "./private-address";

/** Port Nginx listens on; HAProxy's backends use it. */
export const WEB_PORT = 80;

export const DATABASE_NAME = "foobar";

/**
 * Makes apt wait for the dpkg lock instead of failing: on a droplet's first
 * boot, unattended-upgrades may hold it while cloud-init installs packages.
 */
const DPKG_LOCK_WAIT: WriteFile = {
  path: "/etc/apt/apt.conf.d/90foobar-dpkg-lock-timeout",
  content: 'DPkg::Lock::Timeout "900";\n',
};

/** One file of the application, relative to the application folder. */
export interface AppFile {
  readonly relativePath: string;
  readonly content: string;
  /** `b64` for binary files. @default - text */
  readonly encoding?: "b64";
}

export interface LoadBalancerUserDataInput {
  readonly hostname: string;
  readonly haproxy: HaproxyInput;
}

/** The `#cloud-config` of the load balancer: HAProxy and its configuration. */
export function loadBalancerCloudConfig(input: LoadBalancerUserDataInput): CloudConfig {
  return {
    hostname: input.hostname,
    packages: ["haproxy"],
    writeFiles: [
      DPKG_LOCK_WAIT,
      // Written after the package so that dpkg never sees a foreign conffile.
      { path: "/etc/haproxy/haproxy.cfg", content: renderHaproxyConfig(input.haproxy), defer: true },
    ],
    runcmd: [
      ["haproxy", "-c", "-q", "-f", "/etc/haproxy/haproxy.cfg"],
      ["systemctl", "enable", "haproxy.service"],
      ["systemctl", "restart", "haproxy.service"],
    ],
  };
}

export interface WebServerUserDataInput {
  readonly hostname: string;
  readonly databaseRole: DatabaseRole;
  /** Unique per server, 1 for the primary. */
  readonly mysqlServerId: number;
  /** The MySQL primary's private address (a Terraform token at synth time). */
  readonly primaryAddress: string;
  readonly vpcIpRange: string;
  readonly siteHostNames: readonly string[];
  /** Terraform token of a generated password. */
  readonly replicationPassword: string;
  /** Terraform token of a generated password. */
  readonly appDatabasePassword: string;
  readonly replicaMaxLagSeconds: number;
  readonly appFiles: readonly AppFile[];
  readonly appCommand: string;
}

/** The `#cloud-config` of a web server: Nginx, the application and MySQL. */
export function webServerCloudConfig(input: WebServerUserDataInput): CloudConfig {
  const appFiles: WriteFile[] = input.appFiles.map((file) => ({
    path: `${APP.directory}/${file.relativePath}`,
    content: file.content,
    ...(file.encoding ? { encoding: file.encoding } : {}),
  }));
  return {
    hostname: input.hostname,
    packages: ["nginx", "mysql-server", "gunicorn", "python3-pymysql"],
    systemUsers: [{ name: APP.user, homedir: APP.directory }],
    writeFiles: [
      DPKG_LOCK_WAIT,
      // Before the package is installed, so MySQL's first start has them.
      {
        path: MYSQL_PATHS.serverConfig,
        content: renderMysqlServerConfig({ role: input.databaseRole, serverId: input.mysqlServerId }),
      },
      {
        path: PRIVATE_ADDRESS_PATHS.environment,
        content: renderNetworkEnvironment({ vpcIpRange: input.vpcIpRange, webPort: WEB_PORT }),
      },
      { path: PRIVATE_ADDRESS_PATHS.script, permissions: "0755", content: BIND_ADDRESSES_SCRIPT },
      { path: PRIVATE_ADDRESS_PATHS.mysqlDropIn, content: MYSQL_BIND_DROP_IN },
      {
        path: MYSQL_PATHS.setupEnvironment,
        permissions: "0600",
        content: renderMysqlSetupEnvironment({
          role: input.databaseRole,
          primaryAddress: input.primaryAddress,
          vpcIpRange: input.vpcIpRange,
          replicationPassword: input.replicationPassword,
          appPassword: input.appDatabasePassword,
          databaseName: DATABASE_NAME,
        }),
      },
      { path: MYSQL_PATHS.setupScript, permissions: "0700", content: MYSQL_SETUP_SCRIPT },
      ...appFiles,
      {
        path: APP.environmentFile,
        owner: `${APP.user}:${APP.user}`,
        permissions: "0600",
        defer: true,
        content: renderAppEnvironment({
          serverName: input.hostname,
          databaseRole: input.databaseRole,
          primaryAddress: input.primaryAddress,
          databaseName: DATABASE_NAME,
          databaseUser: MYSQL_USERS.app,
          databasePassword: input.appDatabasePassword,
          replicaMaxLagSeconds: input.replicaMaxLagSeconds,
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
        }),
      },
    ],
    runcmd: [
      [MYSQL_PATHS.setupScript],
      [PRIVATE_ADDRESS_PATHS.script],
      ["rm", "-f", "/etc/nginx/sites-enabled/default"],
      ["ln", "-sf", "/etc/nginx/sites-available/foobar", "/etc/nginx/sites-enabled/foobar"],
      ["nginx", "-t", "-q"],
      // A restart, not a reload: the package's default site holds 0.0.0.0:80,
      // which a reload cannot release before binding the private address.
      ["systemctl", "restart", "nginx.service"],
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", "--now", APP.unitName],
    ],
  };
}
