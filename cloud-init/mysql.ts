import * as path from "node:path";

import { renderEnvironmentFile } from "./environment-file";
import { exporterUserSql } from "./exporters";
import { dropletFile } from "./files";

export type DatabaseRole = "primary" | "replica";

/** Paths on a web server. */
export const MYSQL_PATHS = {
  /** Read after the package's own mysqld.cnf, so these settings win. */
  serverConfig: "/etc/mysql/mysql.conf.d/zz-foobar.cnf",
  setupEnvironment: "/etc/foobar/mysql-setup.env",
  setupScript: "/usr/local/sbin/foobar-mysql-setup",
  /** Optional schema shipped with the application, applied on the primary. */
  appSchema: "/srv/foobar/app/schema.sql",
} as const;

export const MYSQL_USERS = { replication: "foobar_repl", app: "foobar_app" } as const;

export interface MysqlServerInput {
  /** The role the server is set up in on its first boot (it may change later: see the database agent). */
  readonly role: DatabaseRole;
  /** Unique per server. */
  readonly serverId: number;
}

/** The settings that make an acknowledged commit durable; a test fails if one is weakened. */
export const DURABILITY_SETTINGS: readonly (readonly [string, string])[] = [
  ["sync_binlog", "1"],
  ["innodb_flush_log_at_trx_commit", "1"],
  ["sync_relay_log", "1"],
  ["sync_source_info", "1"],
];

/**
 * Renders the MySQL server settings, written before the package is installed
 * so that its first start already has them.
 *
 * Only options that MySQL 8.0, 8.4 and 9.x all accept.
 */
export function renderMysqlServerConfig(input: MysqlServerInput): string {
  const lines = [
    "# Managed by cloud-init (foobar): edit the CDKTF stack, not this file.",
    "[mysqld]",
    `server_id = ${input.serverId}`,
    // bind_address is in its own snippet, written at boot: see private-address.ts.
    // The X Protocol listener would otherwise listen on every interface.
    "mysqlx = OFF",
    "skip_name_resolve = ON",
    "gtid_mode = ON",
    "enforce_gtid_consistency = ON",
    "log_bin = binlog",
    "log_replica_updates = ON",
    "binlog_expire_logs_seconds = 604800",
    // Connections over the network must use TLS; the local socket need not.
    "require_secure_transport = ON",
    // Runs the primary's heartbeat (HEARTBEAT below); the database agent turns it off elsewhere.
    "event_scheduler = ON",
    // Every server starts read-only, the primary too: only the database agent
    // of the named primary turns it writable, after checking no other is.
    "read_only = ON",
    "super_read_only = ON",
    "relay_log_recovery = ON",
    // Durability, pinned rather than left to each version's defaults: a
    // commit is on disk in the binary log and InnoDB's redo log before it is
    // acknowledged, and a replica's acknowledgement (semi-sync, AFTER_SYNC)
    // means the transaction is on its disk too, not only in its memory.
    ...DURABILITY_SETTINGS.map(([name, value]) => `${name} = ${value}`),
    // Parallel apply that keeps the primary's commit order (so a replica
    // never shows a later transaction without an earlier one).
    "replica_parallel_workers = 4",
    "replica_preserve_commit_order = ON",
    // MySQL's CLONE: a replica that lacks what the primary purged rebuilds itself from a donor.
    "plugin_load_add = mysql_clone.so",
  ];
  return lines.join("\n") + "\n";
}

export interface MysqlSetupInput {
  readonly role: DatabaseRole;
  /** DNS name of the primary's private address, resolved at run time. */
  readonly primaryHost: string;
  /** VPC range in CIDR form; replication and app users may connect only from it. */
  readonly vpcIpRange: string;
  readonly replicationPassword: string;
  readonly appPassword: string;
  readonly databaseName: string;
  /** Milliseconds a commit waits for a replica's acknowledgement before going asynchronous. */
  readonly semiSyncTimeoutMs: number;
}

/** `10.10.10.0/24` → `10.10.10.0/255.255.255.0`, the host form every MySQL version accepts. */
export function mysqlHostPattern(cidr: string): string {
  const [address, prefixText] = cidr.split("/");
  const prefix = Number(prefixText);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  const netmask = [24, 16, 8, 0].map((shift) => (mask >>> shift) & 255).join(".");
  return `${address}/${netmask}`;
}

/** Renders the root-only environment file the setup script reads. */
export function renderMysqlSetupEnvironment(input: MysqlSetupInput): string {
  return renderEnvironmentFile({
    MYSQL_ROLE: input.role,
    PRIMARY_HOST: input.primaryHost,
    VPC_HOST_PATTERN: mysqlHostPattern(input.vpcIpRange),
    REPLICATION_USER: MYSQL_USERS.replication,
    REPLICATION_PASSWORD: input.replicationPassword,
    APP_USER: MYSQL_USERS.app,
    APP_PASSWORD: input.appPassword,
    DATABASE_NAME: input.databaseName,
    SEMI_SYNC_TIMEOUT_MS: String(input.semiSyncTimeoutMs),
  });
}

/**
 * The heartbeat: a row the primary rewrites every second with its server id
 * and the time, replicated like any other. A server's data is as old as its
 * newest heartbeat, also when replication has stopped (when
 * `Seconds_Behind_Source` is NULL). The event is replicated disabled
 * (`REPLICA_SIDE_DISABLED`), so only the primary beats.
 */
export const HEARTBEAT = {
  table: "heartbeat",
  event: "foobar_heartbeat",
  intervalSeconds: 1,
} as const;

/** The statements that create the heartbeat (idempotent), for the database `database`. */
export function heartbeatSql(database: string): string[] {
  const table = `\`${database}\`.${HEARTBEAT.table}`;
  return [
    `CREATE TABLE IF NOT EXISTS ${table} (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, source_server_id INT UNSIGNED NOT NULL, beat TIMESTAMP(3) NOT NULL);`,
    `CREATE EVENT IF NOT EXISTS \`${database}\`.${HEARTBEAT.event} ON SCHEDULE EVERY ${HEARTBEAT.intervalSeconds} SECOND ` +
      `DO REPLACE INTO ${table} (id, source_server_id, beat) VALUES (1, @@GLOBAL.server_id, NOW(3));`,
  ];
}

export const MYSQL_INSTALL_SCRIPT_PATH = "/usr/local/sbin/foobar-mysql-install";

/**
 * Installs mysql-server from runcmd (after the volume is mounted on
 * /var/lib/mysql), not from cloud-init's package list, so that a failed first
 * initialization can be retried: MySQL 9.7's package sometimes aborts it with
 * "System views initialization failed" when its init file's SHUTDOWN arrives
 * early (seen in the lab under load). The server says the data directory is
 * then unusable until its files are removed; they are removed only while the
 * site's database was never created on this volume, so no data is ever lost.
 */
export function mysqlInstallScript(): string {
  return dropletFile(MYSQL_INSTALL_SCRIPT_PATH, { SETUP_ENVIRONMENT: MYSQL_PATHS.setupEnvironment });
}

/**
 * The first-boot setup script, the same on every web server; its role comes
 * from the environment file. It holds no secret itself.
 *
 * It runs on the first boot of every droplet, also one that replaced an
 * earlier one and mounted its volume: when the data directory already holds
 * the site's database there is nothing to set up (the users, the schema and a
 * replica's replication settings are in the data), and the script only says
 * so. It never purges binary logs or changes replication on such data.
 *
 * The package's own install writes a few transactions on every server (such
 * as the `debian-sys-maint` account). They must not replicate: the replica
 * already ran its own copy and would stop on the duplicate. So every server
 * first empties its GTID history (`RESET BINARY LOGS AND GTIDS`, `RESET
 * MASTER` on 8.0): no server ever needs another's package transactions, and a
 * replica that hears the primary purged what it lacks (1236) really lacks
 * data (the agent rebuilds it with CLONE, never skips). Then the primary
 * creates the database, the users and the application's schema. A replica
 * waits until the primary accepts the replication user over TLS (the
 * primary's cloud-init may still be running) and starts GTID replication with
 * auto-positioning. Nothing of this setup is written to a replica's binary
 * log. Every statement is one that MySQL 8.0, 8.4 and 9.x all accept.
 */
export function mysqlSetupScript(): string {
  return dropletFile(MYSQL_PATHS.setupScript, {
    SETUP_ENVIRONMENT: MYSQL_PATHS.setupEnvironment,
    APP_SCHEMA: MYSQL_PATHS.appSchema,
    // Inside an unquoted heredoc: backquotes escaped.
    HEARTBEAT_SQL: heartbeatSql("$DATABASE_NAME")
      .map((statement) => statement.replace(/`/g, "\\`"))
      .join("\n"),
    // Inside double quotes: no backquote, dollar or double quote to escape.
    EXPORTER_USER_SQL: exporterUserSql().join(" "),
  });
}

/**
 * Seconds a primary that cannot resolve its own record (cut off from the
 * network, or from DigitalOcean's DNS) stays writable before it fences itself.
 */
export const FENCE_AFTER_SECONDS = 5;

/**
 * Seconds a designated primary waits, with an unreachable server that may
 * still be writable, before it promotes itself: long enough for that server
 * to have fenced itself (`FENCE_AFTER_SECONDS`) even if its resolver still
 * served the old record for a whole TTL (`ttlSeconds`).
 */
export function promoteAfterSeconds(ttlSeconds: number): number {
  return ttlSeconds + 2 * FENCE_AFTER_SECONDS;
}

/** Consent files the agent reads (db_decisions.py declares them too; a test keeps both the same). */
export const FORCE_PROMOTE_FLAG_PATH = "/etc/foobar/db-agent.force-promote";
export const REBUILD_FLAG_PATH = "/etc/foobar/db-agent.rebuild";

export const DATABASE_AGENT = {
  script: "/usr/local/sbin/foobar-db-agent",
  /** Its decisions, a module of their own: what the Python tests drive rule by rule. */
  decisions: "/usr/local/lib/foobar/db_decisions.py",
  unitName: "foobar-db-agent.service",
  unitPath: "/etc/systemd/system/foobar-db-agent.service",
  environment: "/etc/foobar/db-agent.env",
  /** What the agent sees, for the app: the primary's address (past DNS caches) and the semi-sync state. */
  status: "/run/foobar/db-agent.json",
} as const;

export interface DatabaseAgentInput {
  /** DNS names of every web server slot (`web-NN.internal.<domain>`): the servers that may be writable. */
  readonly peerHosts: readonly string[];
  /** TTL of the internal records, in seconds. */
  readonly recordTtlSeconds: number;
}

export function renderDatabaseAgentEnvironment(input: DatabaseAgentInput): string {
  return renderEnvironmentFile({
    PEER_HOSTS: input.peerHosts.join(","),
    FENCE_AFTER: String(FENCE_AFTER_SECONDS),
    PROMOTE_AFTER: String(promoteAfterSeconds(input.recordTtlSeconds)),
  });
}

/**
 * The database agent (`cloud-init/files/usr/local/sbin/foobar-db-agent`, Python):
 * every second it makes this server's MySQL what `mysql-primary.internal`
 * says it is. Promotion is declarative: change `FOOBAR_DB_PRIMARY`, deploy,
 * and the record moves; nothing else changes. Its rules are in the file's
 * docstring, and its decision function (`databaseAgentDecisions`) is tested rule by rule
 * (`__tests__/cloud-init/python/test_db_agent.py`).
 */
export function databaseAgentScript(paths: { readonly addressEnvironment: string }): string {
  return dropletFile(DATABASE_AGENT.script, {
    SETUP_ENVIRONMENT: MYSQL_PATHS.setupEnvironment,
    AGENT_ENVIRONMENT: DATABASE_AGENT.environment,
    ADDRESS_ENVIRONMENT: paths.addressEnvironment,
    STATUS_FILE: DATABASE_AGENT.status,
    DECISIONS_DIR: path.posix.dirname(DATABASE_AGENT.decisions),
    HEARTBEAT_SQL: heartbeatSql("{database}").join(" "),
    EXPORTER_USER_SQL: exporterUserSql().join(" "),
  });
}

/** The agent's decisions (`cloud-init/files/usr/local/lib/foobar/db_decisions.py`), which it imports. */
export function databaseAgentDecisions(): string {
  return dropletFile(DATABASE_AGENT.decisions);
}

/** The agent's unit: a watchdog, restarted forever (runcmd starts it after the first-boot setup). */
export function databaseAgentUnit(): string {
  return dropletFile(DATABASE_AGENT.unitPath);
}
