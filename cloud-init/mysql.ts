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
  /** The role the server is set up in on its first boot (it may change later: see the database agent). */
  readonly role: DatabaseRole;
  /** Unique per server. */
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
    // Runs the primary's heartbeat (HEARTBEAT below); the database agent turns it off elsewhere.
    "event_scheduler = ON",
    // Every server starts read-only, the primary too: only the database agent
    // of the named primary turns it writable, after checking no other is.
    "read_only = ON",
    "super_read_only = ON",
    "relay_log_recovery = ON",
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
export const MYSQL_INSTALL_SCRIPT = [
  "#!/bin/bash",
  "# Managed by cloud-init (foobar): install MySQL, retrying a failed first initialization.",
  "set -uo pipefail",
  "# shellcheck source=/dev/null  # written by cloud-init",
  `. ${MYSQL_PATHS.setupEnvironment}`,
  "export DEBIAN_FRONTEND=noninteractive",
  "for attempt in 1 2 3; do",
  "  if [ \"$attempt\" = 1 ]; then apt-get install -y -q mysql-server && exit 0; else dpkg --configure -a && exit 0; fi",
  "  echo \"foobar-mysql-install: attempt $attempt failed; MySQL's log says:\" >&2",
  "  tail -n 5 /var/log/mysql/error.log >&2 || true",
  "  if [ -d \"/var/lib/mysql/$DATABASE_NAME\" ]; then",
  "    echo \"foobar-mysql-install: /var/lib/mysql holds the database $DATABASE_NAME: not touching it\" >&2",
  "    exit 1",
  "  fi",
  "  systemctl stop mysql.service 2>/dev/null || true",
  "  find /var/lib/mysql -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +",
  "done",
  "exit 1",
].join("\n") + "\n";

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
  "  # Named primary on its first boot: nothing else can be writable yet.",
  "  mysql --batch --execute='SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF'",
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
  "# Idempotent (the database agent runs the same on every promotion).",
  "ensure_heartbeat() {",
  "  mysql --batch <<SQL",
  ...heartbeatSql("$DATABASE_NAME").map((statement) => statement.replace(/`/g, "\\`")),
  "SQL",
  "  log 'heartbeat: every second, replicated'",
  "}",
  "",
  "# Semi-synchronous replication, AFTER_SYNC: the primary acknowledges a commit",
  "# once a replica has it. Both sides on every server, so any can be promoted.",
  "# First-boot setup only, before the server replicates or serves.",
  "ensure_semi_sync() {",
  "  local loaded",
  "  loaded=$(mysql --batch --skip-column-names --execute=\"SELECT COUNT(*) FROM information_schema.plugins WHERE plugin_name IN ('rpl_semi_sync_source', 'rpl_semi_sync_replica')\")",
  "  if [ \"$loaded\" != 2 ]; then",
  "    mysql --batch <<SQL",
  "SET SESSION sql_log_bin = 0;",
  "SET @read_only = @@GLOBAL.super_read_only;",
  "SET GLOBAL super_read_only = OFF;",
  "INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so';",
  "INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so';",
  "SET GLOBAL super_read_only = @read_only;",
  "SQL",
  "  fi",
  "  mysql --batch <<SQL",
  "SET PERSIST rpl_semi_sync_source_enabled = ON;",
  "SET PERSIST rpl_semi_sync_source_wait_point = AFTER_SYNC;",
  "SET PERSIST rpl_semi_sync_source_timeout = $SEMI_SYNC_TIMEOUT_MS;",
  "SET PERSIST rpl_semi_sync_replica_enabled = ON;",
  "SQL",
  "  log \"semi-synchronous replication on (AFTER_SYNC, ${SEMI_SYNC_TIMEOUT_MS} ms before a commit goes asynchronous)\"",
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
  "  # Its own package transactions too: were it promoted one day, they must not replicate.",
  "  forget_package_transactions",
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
  "ensure_semi_sync",
  "if existing_data; then",
  "  if [ \"$MYSQL_ROLE\" = replica ] && ! replication_configured; then",
  "    log \"the volume holds the database $DATABASE_NAME but no replication settings: refusing to guess, set up replication by hand\"",
  "    exit 1",
  "  fi",
  "  log \"the volume holds the database $DATABASE_NAME already: this droplet replaced an earlier one, nothing to set up\"",
  "  exit 0",
  "fi",
  "case \"$MYSQL_ROLE\" in",
  "  primary) setup_primary ;;",
  "  replica) setup_replica ;;",
  "  *) log \"unknown MYSQL_ROLE '$MYSQL_ROLE'\"; exit 1 ;;",
  "esac",
].join("\n") + "\n";

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

export const DATABASE_AGENT = {
  script: "/usr/local/sbin/foobar-db-agent",
  unitName: "foobar-db-agent.service",
  unitPath: "/etc/systemd/system/foobar-db-agent.service",
  environment: "/etc/foobar/db-agent.env",
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
 * The database agent: every second it makes this server's MySQL what
 * `mysql-primary.internal` says it is. Promotion is declarative: change
 * `FOOBAR_DB_PRIMARY`, deploy, and the record moves; nothing else changes.
 *
 * - Every MySQL starts `super_read_only` (server config).
 * - Named primary, read-only: it turns writable only when no other server
 *   answers as writable, and servers that do not answer have not answered
 *   for `PROMOTE_AFTER` seconds (so they have fenced themselves); it first
 *   applies every transaction it received, then stops replicating and
 *   enables the heartbeat.
 * - Not named, writable: it turns `super_read_only` at once (fencing). A
 *   primary that cannot resolve the record for `FENCE_AFTER` seconds does the
 *   same: cut off, it cannot know it is still the primary.
 * - Not named: it replicates from the named primary by GTID auto-position,
 *   reconnecting when its source is another server. With no replication set
 *   up (a former primary), it joins only if its transactions are a subset of
 *   the primary's; otherwise it reports the errant ones and stays read-only
 *   until it is rebuilt, never silently.
 */
export const DATABASE_AGENT_SCRIPT = [
  "#!/bin/bash",
  "# Managed by cloud-init (foobar): converge this MySQL to what mysql-primary.internal says.",
  "set -uo pipefail",
  "# shellcheck source=/dev/null  # written by cloud-init",
  `. ${MYSQL_PATHS.setupEnvironment}`,
  "# shellcheck source=/dev/null  # written by cloud-init",
  `. ${DATABASE_AGENT.environment}`,
  "# shellcheck source=/dev/null  # written by foobar-bind-addresses",
  ". /etc/foobar/private-address.env",
  "log() { echo \"foobar-db-agent: $*\"; }",
  "local_sql() { mysql --batch --skip-column-names --execute=\"$1\"; }",
  "credentials=$(mktemp)",
  "trap 'rm -f \"$credentials\"' EXIT",
  "printf '[client]\\nuser=%s\\npassword=%s\\n' \"$REPLICATION_USER\" \"$REPLICATION_PASSWORD\" > \"$credentials\"",
  "remote_sql() {",
  "  mysql --defaults-extra-file=\"$credentials\" --host=\"$1\" --ssl-mode=REQUIRED --connect-timeout=1 \\",
  "    --batch --skip-column-names --execute=\"$2\" 2>/dev/null",
  "}",
  "# One quick try: a cut-off server must not hang here.",
  "resolve() { RES_OPTIONS='timeout:1 attempts:1' timeout 2 getent ahostsv4 \"$1\" | awk 'NR == 1 { print $1 }'; }",
  "",
  "# Read-only at once; the heartbeat stops (it could not write anyway).",
  "fence() { local_sql 'SET GLOBAL super_read_only = ON; SET GLOBAL event_scheduler = OFF'; log \"fenced: $1\"; said=''; }",
  "",
  "# The source's \"purged required binary logs\" (1236), as 8.0 numbers it and as 8.4+ wrap it (13114).",
  "purged_error=\"IF(LAST_ERROR_MESSAGE LIKE '%fatal error 1236%', 1236, LAST_ERROR_NUMBER)\"",
  "",
  "lost_since=''",
  "declare -A silent_since",
  "said=''",
  "say() { if [ \"$said\" != \"$1\" ]; then log \"$1\"; said=$1; fi; }",
  "",
  "promote() {",
  "  local peer address answer since blocked='' waiting=''",
  "  for peer in ${PEER_HOSTS//,/ }; do",
  "    address=$(resolve \"$peer\") || continue",
  "    if [ -z \"$address\" ] || [ \"$address\" = \"$PRIVATE_ADDRESS\" ]; then continue; fi",
  "    if answer=$(remote_sql \"$address\" 'SELECT @@GLOBAL.super_read_only'); then",
  "      unset \"silent_since[$peer]\"",
  "      [ \"$answer\" = 0 ] && blocked=\"$blocked $peer\"",
  "    else",
  "      silent_since[$peer]=${silent_since[$peer]:-$SECONDS}",
  "      since=${silent_since[$peer]}",
  "      (( SECONDS - since >= PROMOTE_AFTER )) || waiting=\"$waiting $peer\"",
  "    fi",
  "  done",
  "  if [ -n \"$blocked\" ]; then say \"named primary, but still writable:$blocked; waiting for it to fence itself\"; return; fi",
  "  if [ -n \"$waiting\" ]; then say \"named primary; not answering:$waiting; waiting ${PROMOTE_AFTER}s in all for it to have fenced itself\"; return; fi",
  "  if [ \"$(local_sql \"SELECT COUNT(*) FROM performance_schema.replication_connection_status WHERE $purged_error = 1236\")\" -gt 0 ]; then",
  "    say 'named primary, but its replication stopped on transactions it could not fetch (1236): not promoting a server that may lack writes'; return",
  "  fi",
  "  if [ \"$(local_sql 'SELECT COUNT(*) FROM performance_schema.replication_connection_configuration')\" -gt 0 ]; then",
  "    local received",
  "    local_sql 'STOP REPLICA IO_THREAD'",
  "    received=$(local_sql \"SELECT REPLACE(GROUP_CONCAT(RECEIVED_TRANSACTION_SET), '\\n', '') FROM performance_schema.replication_connection_status\")",
  "    if [ -n \"$received\" ] && [ \"$(local_sql \"SELECT WAIT_FOR_EXECUTED_GTID_SET('$received', 60)\")\" != 0 ]; then",
  "      log \"could not apply every received transaction within 60 s: not promoting\"; local_sql 'START REPLICA IO_THREAD'; return",
  "    fi",
  "    local_sql 'STOP REPLICA; RESET REPLICA ALL'",
  "  fi",
  "  local_sql 'SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF'",
  "  # The heartbeat: created if this data predates it (replicated), enabled here only.",
  "  mysql --batch <<SQL",
  ...heartbeatSql("$DATABASE_NAME").map((statement) => statement.replace(/`/g, "\\`")),
  "SET SESSION sql_log_bin = 0;",
  "ALTER EVENT \\`$DATABASE_NAME\\`.foobar_heartbeat ENABLE;",
  "SET GLOBAL event_scheduler = ON;",
  "SQL",
  "  log \"promoted: this server is the writable primary\"; said=''",
  "}",
  "",
  "# Whether the transactions (a GTID set) touched nothing but the heartbeat table.",
  "only_heartbeats() {",
  "  local files tables",
  "  files=$(local_sql 'SHOW BINARY LOGS' | cut -f 1 | sed 's|^|/var/lib/mysql/|')",
  "  # shellcheck disable=SC2086,SC2016  # one argument per binary log; the backticks are literal",
  "  tables=$(mysqlbinlog --include-gtids=\"$1\" --base64-output=DECODE-ROWS $files 2>/dev/null | grep -o 'Table_map: `[^`]*`\\.`[^`]*`' | sort -u)",
  `  [ "$tables" = "Table_map: \\\`$DATABASE_NAME\\\`.\\\`${HEARTBEAT.table}\\\`" ]`,
  "}",
  "",
  "follow() {",
  "  local primary=$1 configured",
  "  configured=$(local_sql 'SELECT COUNT(*) FROM performance_schema.replication_connection_configuration')",
  "  if [ \"$configured\" -eq 0 ]; then",
  "    local theirs errant",
  "    theirs=$(remote_sql \"$primary\" \"SELECT REPLACE(@@GLOBAL.gtid_executed, '\\n', '')\") || { say \"the primary at $primary does not answer yet\"; return; }",
  "    errant=$(local_sql \"SELECT GTID_SUBTRACT(REPLACE(@@GLOBAL.gtid_executed, '\\n', ''), '$theirs')\")",
  "    if [ -n \"$errant\" ]; then",
  "      if only_heartbeats \"$errant\"; then",
  "        # Its own heartbeats, written while it was cut off and before it fenced itself: the",
  "        # new primary's overwrite them. Forget them, keep every other transaction's record.",
  "        local keep",
  "        keep=$(local_sql \"SELECT GTID_SUBTRACT(REPLACE(@@GLOBAL.gtid_executed, '\\n', ''), '$errant')\")",
  "        local_sql 'RESET BINARY LOGS AND GTIDS' 2>/dev/null || local_sql 'RESET MASTER'",
  "        local_sql \"SET GLOBAL gtid_purged = '$keep'\"",
  "        log \"forgot transactions $errant: only this server's own heartbeats, from before it fenced itself\"",
  "      else",
  "        say \"diverged from the primary: transactions $errant exist only here; rebuild this server (README: promotion runbook)\"; return",
  "      fi",
  "    fi",
  "    skip_purged \"$primary\" || return",
  "    mysql --batch <<SQL",
  "SET SESSION sql_log_bin = 0;",
  "CHANGE REPLICATION SOURCE TO SOURCE_HOST = '$PRIMARY_HOST', SOURCE_PORT = 3306, SOURCE_USER = '$REPLICATION_USER',",
  "  SOURCE_PASSWORD = '$REPLICATION_PASSWORD', SOURCE_AUTO_POSITION = 1, SOURCE_SSL = 1, SOURCE_CONNECT_RETRY = 10, SOURCE_RETRY_COUNT = 86400;",
  "START REPLICA;",
  "SQL",
  "    log \"joined the primary at $primary as a replica (no errant transactions)\"; said=''",
  "    return",
  "  fi",
  "  local state source_uuid error primary_uuid",
  "  # One field separator that is not whitespace: an empty SOURCE_UUID must not shift the others.",
  "  IFS='|' read -r state source_uuid error < <(local_sql \"SELECT CONCAT_WS('|', SERVICE_STATE, SOURCE_UUID, $purged_error) FROM performance_schema.replication_connection_status\")",
  "  if [ \"$error\" = 1236 ] && [ \"$state\" = OFF ]; then",
  "    # The primary purged transactions this server lacks: after a promotion, its package transactions.",
  "    local_sql 'STOP REPLICA'",
  "    skip_purged \"$primary\" && log 'skipped what the primary purged and this server never needed'",
  "    local_sql 'START REPLICA'",
  "    return",
  "  fi",
  "  [ \"$state\" = ON ] || return",
  "  # Connected to another server than the named primary (it moved): reconnect, by name.",
  "  primary_uuid=$(remote_sql \"$primary\" 'SELECT @@GLOBAL.server_uuid') || return",
  "  if [ \"$source_uuid\" != \"$primary_uuid\" ]; then",
  "    local_sql 'STOP REPLICA IO_THREAD; START REPLICA IO_THREAD'",
  "    log \"replication source is not the primary at $primary: reconnected\"",
  "  fi",
  "}",
  "",
  "# What the primary purged and this server lacks: the primary's own package",
  "# transactions (every server purges them at setup), nothing to fetch.",
  "skip_purged() {",
  "  local purged missing",
  "  purged=$(remote_sql \"$1\" \"SELECT REPLACE(@@GLOBAL.gtid_purged, '\\n', '')\") || return 1",
  "  missing=$(local_sql \"SELECT GTID_SUBTRACT('$purged', REPLACE(@@GLOBAL.gtid_executed, '\\n', ''))\")",
  "  [ -z \"$missing\" ] || local_sql \"SET GLOBAL gtid_purged = '+$missing'\" || { say \"could not skip the primary's purged transactions $missing\"; return 1; }",
  "}",
  "",
  "while sleep 1; do",
  "  mysqladmin --silent ping >/dev/null 2>&1 || continue",
  "  writable=$(local_sql 'SELECT 1 - @@GLOBAL.super_read_only') || continue",
  "  if ! primary=$(resolve \"$PRIMARY_HOST\") || [ -z \"$primary\" ]; then",
  "    lost_since=${lost_since:-$SECONDS}",
  "    if [ \"$writable\" = 1 ] && (( SECONDS - lost_since >= FENCE_AFTER )); then",
  "      fence \"$PRIMARY_HOST has not resolved for ${FENCE_AFTER}s: this server cannot know it is still the primary\"",
  "    fi",
  "    continue",
  "  fi",
  "  lost_since=''",
  "  if [ \"$primary\" = \"$PRIVATE_ADDRESS\" ]; then",
  "    [ \"$writable\" = 1 ] || promote",
  "  else",
  "    if [ \"$writable\" = 1 ]; then fence \"$PRIMARY_HOST is $primary now, not this server\"; fi",
  "    # Only the primary beats; a server that was primary must not try to.",
  "    [ \"$(local_sql 'SELECT @@GLOBAL.event_scheduler')\" = OFF ] || local_sql 'SET GLOBAL event_scheduler = OFF'",
  "    follow \"$primary\"",
  "  fi",
  "done",
].join("\n") + "\n";

/** The agent's unit: after the first-boot setup (runcmd starts it), restarted if it ever stops. */
export const DATABASE_AGENT_UNIT = [
  "# Managed by cloud-init (foobar).",
  "[Unit]",
  "Description=Keep this MySQL what mysql-primary.internal says: primary, or replica of it",
  "After=mysql.service",
  "",
  "[Service]",
  "Type=simple",
  `ExecStart=${DATABASE_AGENT.script}`,
  "Restart=always",
  "RestartSec=2s",
  "",
  "[Install]",
  "WantedBy=multi-user.target",
  "",
].join("\n");
