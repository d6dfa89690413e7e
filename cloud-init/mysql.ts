import { renderEnvironmentFile } from "./environment-file";

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
  readonly role: DatabaseRole;
  /** Unique per server, 1 for the primary. */
  readonly serverId: number;
}

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
    // Runs the primary's heartbeat (HEARTBEAT below); replicated events stay disabled on replicas.
    "event_scheduler = ON",
  ];
  if (input.role === "replica") {
    lines.push(
      "read_only = ON",
      "super_read_only = ON",
      "relay_log_recovery = ON",
    );
  }
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

/** How long a replica waits for its primary on first boot, in seconds. */
export const PRIMARY_WAIT_SECONDS = 1800;

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
 * already ran its own copy and would stop on the duplicate. So the primary
 * first purges the binary logs that hold them (they move to its
 * `gtid_purged`), then creates the database, the users and the application's
 * schema. A replica waits until the primary accepts the replication user over
 * TLS (the primary's cloud-init may still be running), adds the primary's
 * `gtid_purged` to its own (nothing to fetch there), and starts GTID
 * replication with auto-positioning. Nothing of this setup is written to a
 * replica's binary log. Every statement is one that MySQL 8.0, 8.4 and 9.x
 * all accept.
 */
export const MYSQL_SETUP_SCRIPT = [
  "#!/bin/bash",
  "# Managed by cloud-init (foobar). Runs once, on first boot.",
  "set -euo pipefail",
  "umask 077",
  "# shellcheck source=/dev/null  # written by cloud-init next to this script",
  `. ${MYSQL_PATHS.setupEnvironment}`,
  "",
  "log() { echo \"foobar-mysql-setup: $*\"; }",
  "",
  "wait_for_local_mysql() {",
  "  for _ in $(seq 1 120); do",
  "    if mysqladmin --silent ping >/dev/null 2>&1; then return 0; fi",
  "    sleep 1",
  "  done",
  "  log 'local MySQL did not answer within 120 s'",
  "  return 1",
  "}",
  "",
  "forget_package_transactions() {",
  "  local current",
  "  mysql --batch --execute='FLUSH BINARY LOGS'",
  "  current=$(mysql --batch --skip-column-names --execute='SHOW BINARY LOGS' | tail -n 1 | cut -f 1)",
  "  mysql --batch --execute=\"PURGE BINARY LOGS TO '$current'\"",
  "}",
  "",
  "setup_primary() {",
  "  forget_package_transactions",
  "  local hosts=(\"'localhost'\" \"'$VPC_HOST_PATTERN'\")",
  "  {",
  "    echo \"CREATE DATABASE IF NOT EXISTS \\`$DATABASE_NAME\\`;\"",
  "    echo \"CREATE USER IF NOT EXISTS '$REPLICATION_USER'@'$VPC_HOST_PATTERN' IDENTIFIED BY '$REPLICATION_PASSWORD' REQUIRE SSL;\"",
  "    echo \"GRANT REPLICATION SLAVE ON *.* TO '$REPLICATION_USER'@'$VPC_HOST_PATTERN';\"",
  "    for host in \"${hosts[@]}\"; do",
  "      echo \"CREATE USER IF NOT EXISTS '$APP_USER'@$host IDENTIFIED BY '$APP_PASSWORD';\"",
  "      echo \"GRANT SELECT, INSERT, UPDATE, DELETE ON \\`$DATABASE_NAME\\`.* TO '$APP_USER'@$host;\"",
  "      echo \"GRANT REPLICATION CLIENT ON *.* TO '$APP_USER'@$host;\"",
  "    done",
  "  } | mysql --batch",
  `  if [ -f ${MYSQL_PATHS.appSchema} ]; then`,
  `    mysql --batch \"$DATABASE_NAME\" < ${MYSQL_PATHS.appSchema}`,
  "    log 'applied the application schema'",
  "  fi",
  "  ensure_heartbeat",
  "  log 'primary ready'",
  "}",
  "",
  "# Idempotent: also on a primary whose volume predates the heartbeat.",
  "ensure_heartbeat() {",
  "  mysql --batch <<SQL",
  ...heartbeatSql("$DATABASE_NAME").map((statement) => statement.replace(/`/g, "\\`")),
  "SQL",
  "  log 'heartbeat: every second, replicated'",
  "}",
  "",
  "# Runs one query on the primary as the replication user, over TLS.",
  "primary_query() {",
  "  mysql --defaults-extra-file=\"$credentials\" --host=\"$PRIMARY_HOST\" --ssl-mode=REQUIRED \\",
  "    --connect-timeout=5 --batch --skip-column-names --execute=\"$1\"",
  "}",
  "",
  "wait_for_primary() {",
  "  local deadline=$((SECONDS + " + PRIMARY_WAIT_SECONDS + "))",
  "  until primary_query 'SELECT 1' >/dev/null 2>&1; do",
  "    if [ \"$SECONDS\" -ge \"$deadline\" ]; then",
  "      log \"primary $PRIMARY_HOST not ready after " + PRIMARY_WAIT_SECONDS + " s\"",
  "      return 1",
  "    fi",
  "    log \"waiting for the primary at $PRIMARY_HOST\"",
  "    sleep 5",
  "  done",
  "}",
  "",
  "setup_replica() {",
  "  credentials=$(mktemp)",
  "  trap 'rm -f \"$credentials\"' EXIT",
  "  printf '[client]\\nuser=%s\\npassword=%s\\n' \"$REPLICATION_USER\" \"$REPLICATION_PASSWORD\" > \"$credentials\"",
  "  wait_for_primary",
  "  local primary_purged",
  "  primary_purged=$(primary_query \"SELECT REPLACE(@@GLOBAL.gtid_purged, '\\n', '')\")",
  "  local skip_package_transactions=''",
  "  if [ -n \"$primary_purged\" ]; then",
  "    log \"skipping the primary's package transactions $primary_purged\"",
  "    skip_package_transactions=\"SET GLOBAL super_read_only = OFF; SET GLOBAL gtid_purged = '+$primary_purged'; SET GLOBAL super_read_only = ON;\"",
  "  fi",
  "  mysql --batch <<SQL",
  "SET SESSION sql_log_bin = 0;",
  "$skip_package_transactions",
  "CHANGE REPLICATION SOURCE TO",
  "  SOURCE_HOST = '$PRIMARY_HOST',",
  "  SOURCE_PORT = 3306,",
  "  SOURCE_USER = '$REPLICATION_USER',",
  "  SOURCE_PASSWORD = '$REPLICATION_PASSWORD',",
  "  SOURCE_AUTO_POSITION = 1,",
  "  SOURCE_SSL = 1,",
  "  SOURCE_CONNECT_RETRY = 10,",
  "  SOURCE_RETRY_COUNT = 86400;",
  "START REPLICA;",
  "SQL",
  "  log \"replicating from $PRIMARY_HOST\"",
  "}",
  "",
  "# A replaced droplet mounts its predecessor's volume: its data is set up already.",
  "existing_data() {",
  "  [ \"$(mysql --batch --skip-column-names --execute=\"SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '$DATABASE_NAME'\")\" = 1 ]",
  "}",
  "",
  "replication_configured() {",
  "  [ \"$(mysql --batch --skip-column-names --execute='SELECT COUNT(*) FROM performance_schema.replication_connection_configuration')\" -gt 0 ]",
  "}",
  "",
  "wait_for_local_mysql",
  "if existing_data; then",
  "  if [ \"$MYSQL_ROLE\" = replica ] && ! replication_configured; then",
  "    log \"the volume holds the database $DATABASE_NAME but no replication settings: refusing to guess, set up replication by hand\"",
  "    exit 1",
  "  fi",
  "  log \"the volume holds the database $DATABASE_NAME already: this droplet replaced an earlier one, nothing to set up\"",
  "  if [ \"$MYSQL_ROLE\" = primary ]; then ensure_heartbeat; fi",
  "  exit 0",
  "fi",
  "case \"$MYSQL_ROLE\" in",
  "  primary) setup_primary ;;",
  "  replica) setup_replica ;;",
  "  *) log \"unknown MYSQL_ROLE '$MYSQL_ROLE'\"; exit 1 ;;",
  "esac",
].join("\n") + "\n";
