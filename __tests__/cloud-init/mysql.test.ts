import {
  DATABASE_AGENT_SCRIPT,
  FENCE_AFTER_SECONDS,
  promoteAfterSeconds,
  renderDatabaseAgentEnvironment,
  HEARTBEAT,
  heartbeatSql,
  MYSQL_SETUP_SCRIPT,
  mysqlHostPattern,
  renderMysqlServerConfig,
  renderMysqlSetupEnvironment,
} from "../../cloud-init/mysql";

function options(config: string): Record<string, string> {
  return Object.fromEntries(
    config
      .split("\n")
      .filter((line) => line.includes(" = "))
      .map((line) => line.split(" = ").map((part) => part.trim()) as [string, string]),
  );
}

describe("renderMysqlServerConfig", () => {
  test("the primary has GTIDs, binary logs, its server_id and requires TLS over the network", () => {
    const config = renderMysqlServerConfig({ role: "primary", serverId: 1 });
    expect(config.split("\n")[1]).toBe("[mysqld]");
    expect(options(config)).toEqual(
      expect.objectContaining({
        server_id: "1",
        gtid_mode: "ON",
        enforce_gtid_consistency: "ON",
        require_secure_transport: "ON",
        mysqlx: "OFF",
      }),
    );
  });

  test("every server starts read-only, the primary too: only its database agent makes it writable", () => {
    for (const role of ["primary", "replica"] as const) {
      expect(options(renderMysqlServerConfig({ role, serverId: 1 }))).toEqual(expect.objectContaining({ read_only: "ON", super_read_only: "ON" }));
    }
  });

  test("every server runs the event scheduler: the primary's heartbeat beats, replicated events stay disabled", () => {
    for (const role of ["primary", "replica"] as const) {
      expect(options(renderMysqlServerConfig({ role, serverId: role === "primary" ? 1 : 2 })).event_scheduler).toBe("ON");
    }
  });

  test("a replica is read_only and super_read_only", () => {
    const config = options(renderMysqlServerConfig({ role: "replica", serverId: 2 }));
    expect(config).toEqual(expect.objectContaining({ server_id: "2", read_only: "ON", super_read_only: "ON" }));
  });

  test.each(["default_authentication_plugin", "mysql_native_password", "master", "slave"])(
    "uses no option removed in MySQL 9 or named the old way (%s)",
    (word) => {
      expect(renderMysqlServerConfig({ role: "replica", serverId: 2 }).toLowerCase()).not.toContain(word);
    },
  );
});

describe("the MySQL setup script", () => {
  test("uses only replication syntax that MySQL 8.0, 8.4 and 9.x accept", () => {
    expect(MYSQL_SETUP_SCRIPT).toContain("CHANGE REPLICATION SOURCE TO");
    expect(MYSQL_SETUP_SCRIPT).toContain("SOURCE_AUTO_POSITION = 1");
    expect(MYSQL_SETUP_SCRIPT).toContain("SOURCE_SSL = 1");
    expect(MYSQL_SETUP_SCRIPT).toContain("START REPLICA;");
    for (const removed of ["CHANGE MASTER", "SHOW MASTER STATUS", "START SLAVE", "mysql_native_password"]) {
      expect(MYSQL_SETUP_SCRIPT).not.toContain(removed);
    }
  });

  test("a replica's setup writes nothing to its binary log, so it has no errant transactions", () => {
    const replicaPart = MYSQL_SETUP_SCRIPT.slice(MYSQL_SETUP_SCRIPT.indexOf("setup_replica() {"));
    expect(replicaPart.indexOf("SET SESSION sql_log_bin = 0;")).toBeLessThan(replicaPart.indexOf("CHANGE REPLICATION SOURCE"));
  });

  test("a replica waits for its primary to accept the replication user over TLS", () => {
    expect(MYSQL_SETUP_SCRIPT).toMatch(/primary_query\(\) \{[\s\S]*--ssl-mode=REQUIRED/);
    expect(MYSQL_SETUP_SCRIPT).toMatch(/wait_for_primary\(\) \{[\s\S]*until primary_query 'SELECT 1'[\s\S]*sleep 5/);
  });

  test("the package's own install transactions never replicate: the primary purges them, replicas skip them", () => {
    const primaryPart = MYSQL_SETUP_SCRIPT.slice(MYSQL_SETUP_SCRIPT.indexOf("setup_primary() {"));
    expect(primaryPart.indexOf("forget_package_transactions")).toBeLessThan(primaryPart.indexOf("CREATE USER"));
    expect(MYSQL_SETUP_SCRIPT).toContain("PURGE BINARY LOGS TO '$current'");
    expect(MYSQL_SETUP_SCRIPT).toContain("SET GLOBAL gtid_purged = '+$primary_purged'");
  });

  test("replication and app users are limited to the VPC; root is never given a remote account", () => {
    expect(MYSQL_SETUP_SCRIPT).toContain("'$REPLICATION_USER'@'$VPC_HOST_PATTERN' IDENTIFIED BY '$REPLICATION_PASSWORD' REQUIRE SSL");
    expect(MYSQL_SETUP_SCRIPT).not.toMatch(/'root'@/);
    expect(MYSQL_SETUP_SCRIPT).not.toContain("'%'");
  });

  test("holds no secret itself: passwords come from the root-only environment file", () => {
    expect(MYSQL_SETUP_SCRIPT).toContain(". /etc/foobar/mysql-setup.env");
  });
});

describe("renderMysqlSetupEnvironment", () => {
  test("carries the role, the primary's internal name, the VPC host pattern and the passwords", () => {
    const env = renderMysqlSetupEnvironment({
      role: "replica",
      primaryHost: "mysql-primary.internal.foobar.com",
      vpcIpRange: "10.10.10.0/24",
      replicationPassword: "r3pl",
      semiSyncTimeoutMs: 2000,
      appPassword: "app",
      databaseName: "foobar",
    });
    expect(env.split("\n")).toEqual(
      expect.arrayContaining([
        "MYSQL_ROLE=replica",
        "PRIMARY_HOST=mysql-primary.internal.foobar.com",
        "VPC_HOST_PATTERN=10.10.10.0/255.255.255.0",
        "REPLICATION_PASSWORD=r3pl",
      ]),
    );
  });

  test.each([
    ["10.10.10.0/24", "10.10.10.0/255.255.255.0"],
    ["172.16.0.0/12", "172.16.0.0/255.240.0.0"],
    ["192.168.4.0/28", "192.168.4.0/255.255.255.240"],
  ])("MySQL host pattern of %s is %s", (cidr, pattern) => {
    expect(mysqlHostPattern(cidr)).toBe(pattern);
  });
});

describe("the heartbeat that measures how old a server's data is", () => {
  test("a row rewritten every second by an event on the primary, with its server id and the time to the millisecond", () => {
    const [table, event] = heartbeatSql("foobar");
    expect(table).toBe(
      "CREATE TABLE IF NOT EXISTS `foobar`.heartbeat (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, source_server_id INT UNSIGNED NOT NULL, beat TIMESTAMP(3) NOT NULL);",
    );
    expect(event).toMatch(/^CREATE EVENT IF NOT EXISTS `foobar`\.foobar_heartbeat ON SCHEDULE EVERY 1 SECOND DO REPLACE INTO `foobar`\.heartbeat .* VALUES \(1, @@GLOBAL\.server_id, NOW\(3\)\);$/);
    expect(HEARTBEAT.intervalSeconds).toBe(1);
  });

  test("the primary creates it on first boot, the agent on every promotion (a volume may predate it); replicas only receive it", () => {
    const setupPrimary = MYSQL_SETUP_SCRIPT.slice(MYSQL_SETUP_SCRIPT.indexOf("setup_primary() {"), MYSQL_SETUP_SCRIPT.indexOf("ensure_heartbeat() {"));
    expect(setupPrimary).toContain("  ensure_heartbeat\n");
    expect(DATABASE_AGENT_SCRIPT).toContain(heartbeatSql("$DATABASE_NAME")[1]!.replace(/`/g, "\\`"));
    const setupReplica = MYSQL_SETUP_SCRIPT.slice(MYSQL_SETUP_SCRIPT.indexOf("setup_replica() {"));
    expect(setupReplica.slice(0, setupReplica.indexOf("\n}\n"))).not.toContain("heartbeat");
  });
});

describe("the database agent", () => {
  test("only the named primary turns writable, and only when no other server is writable or has been silent long enough", () => {
    const promote = DATABASE_AGENT_SCRIPT.slice(DATABASE_AGENT_SCRIPT.indexOf("promote() {"), DATABASE_AGENT_SCRIPT.indexOf("# Whether the transactions"));
    expect(promote).toContain("SELECT @@GLOBAL.super_read_only");
    expect(promote).toMatch(/if \[ -n "\$blocked" \]; then .*return; fi/);
    expect(promote).toMatch(/if \[ -n "\$waiting" \]; then .*return; fi/);
    expect(promote.indexOf("WAIT_FOR_EXECUTED_GTID_SET")).toBeLessThan(promote.indexOf("SET GLOBAL super_read_only = OFF"));
    expect(DATABASE_AGENT_SCRIPT.match(/super_read_only = OFF/g)).toHaveLength(1);
  });

  test("a server not named, or a primary that cannot resolve its record for FENCE_AFTER seconds, fences itself at once", () => {
    expect(DATABASE_AGENT_SCRIPT).toContain("fence() { local_sql 'SET GLOBAL super_read_only = ON; SET GLOBAL event_scheduler = OFF'");
    expect(DATABASE_AGENT_SCRIPT).toContain('if [ "$writable" = 1 ] && (( SECONDS - lost_since >= FENCE_AFTER )); then');
    expect(DATABASE_AGENT_SCRIPT).toContain('if [ "$writable" = 1 ]; then fence "$PRIMARY_HOST is $primary now, not this server"; fi');
  });

  test("waits long enough for a silent server to have fenced itself even behind a resolver that cached the old record", () => {
    expect(FENCE_AFTER_SECONDS).toBe(5);
    expect(promoteAfterSeconds(30)).toBe(40);
    expect(renderDatabaseAgentEnvironment({ peerHosts: ["web-01.internal.foobar.com", "web-02.internal.foobar.com"], recordTtlSeconds: 30 })).toBe(
      "PEER_HOSTS=web-01.internal.foobar.com,web-02.internal.foobar.com\nFENCE_AFTER=5\nPROMOTE_AFTER=40\n",
    );
  });

  test("a former primary rejoins only without errant transactions, other than its own heartbeats; otherwise it says so and stays read-only", () => {
    expect(DATABASE_AGENT_SCRIPT).toContain("GTID_SUBTRACT(REPLACE(@@GLOBAL.gtid_executed, '\\n', ''), '$theirs')");
    expect(DATABASE_AGENT_SCRIPT).toContain("diverged from the primary: transactions $errant exist only here");
    expect(DATABASE_AGENT_SCRIPT).toContain("Table_map: \\`$DATABASE_NAME\\`.\\`heartbeat\\`");
  });

  test("semi-synchronous replication, AFTER_SYNC, with the plugin and variable names of MySQL 8.0.26+, 8.4 and 9.x", () => {
    for (const text of [
      "INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so';",
      "INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so';",
      "SET PERSIST rpl_semi_sync_source_wait_point = AFTER_SYNC;",
      "SET PERSIST rpl_semi_sync_source_timeout = $SEMI_SYNC_TIMEOUT_MS;",
    ]) {
      expect(MYSQL_SETUP_SCRIPT).toContain(text);
    }
    expect(MYSQL_SETUP_SCRIPT).not.toMatch(/semisync_(master|slave)|rpl_semi_sync_(master|slave)/);
  });
});
