import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import {
  DATABASE_AGENT,
  databaseAgentDecisions,
  databaseAgentScript,
  databaseAgentUnit,
  DURABILITY_SETTINGS,
  FENCE_AFTER_SECONDS,
  HEARTBEAT,
  heartbeatSql,
  mysqlHostPattern,
  mysqlSetupScript,
  promoteAfterSeconds,
  renderDatabaseAgentEnvironment,
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

const MYSQL_SETUP_SCRIPT = mysqlSetupScript();

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
      expect(options(renderMysqlServerConfig({ role, serverId: 1 }))).toEqual(
        expect.objectContaining({ read_only: "ON", super_read_only: "ON" }),
      );
    }
  });

  test("every server runs the event scheduler: the primary's heartbeat beats, replicated events stay disabled", () => {
    for (const role of ["primary", "replica"] as const) {
      expect(options(renderMysqlServerConfig({ role, serverId: role === "primary" ? 1 : 2 })).event_scheduler).toBe("ON");
    }
  });

  test("durability is pinned on every server: an acknowledged commit is on disk on the primary, and on the replica that acknowledged it", () => {
    // The values are written out here on purpose: weakening DURABILITY_SETTINGS must fail this test.
    const pinned = { sync_binlog: "1", innodb_flush_log_at_trx_commit: "1", sync_relay_log: "1", sync_source_info: "1" };
    expect(Object.fromEntries(DURABILITY_SETTINGS)).toEqual(pinned);
    for (const role of ["primary", "replica"] as const) {
      expect(options(renderMysqlServerConfig({ role, serverId: 1 }))).toEqual(
        expect.objectContaining({ ...pinned, replica_preserve_commit_order: "ON" }),
      );
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

  test("the GTID history starts empty on every server: the package's own transactions never become replicated history, and nothing is skipped", () => {
    const primaryPart = MYSQL_SETUP_SCRIPT.slice(MYSQL_SETUP_SCRIPT.indexOf("setup_primary() {"));
    expect(primaryPart.indexOf("reset_gtid_history OFF")).toBeLessThan(primaryPart.indexOf("CREATE USER"));
    const replicaPart = MYSQL_SETUP_SCRIPT.slice(MYSQL_SETUP_SCRIPT.indexOf("setup_replica() {"));
    expect(replicaPart.indexOf("reset_gtid_history ON")).toBeLessThan(replicaPart.indexOf("CHANGE REPLICATION SOURCE"));
    expect(MYSQL_SETUP_SCRIPT).toContain("--execute='RESET BINARY LOGS AND GTIDS' 2>/dev/null || mysql --batch --execute='RESET MASTER'");
    expect(MYSQL_SETUP_SCRIPT).not.toMatch(/gtid_purged|PURGE BINARY LOGS/);
  });

  test("the replication user can be a CLONE donor (BACKUP_ADMIN), and every server loads the clone plugin", () => {
    expect(MYSQL_SETUP_SCRIPT).toContain(
      "GRANT REPLICATION SLAVE, REPLICATION CLIENT, BACKUP_ADMIN ON *.* TO '$REPLICATION_USER'@'$VPC_HOST_PATTERN';",
    );
    expect(options(renderMysqlServerConfig({ role: "replica", serverId: 2 })).plugin_load_add).toBe("mysql_clone.so");
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
    expect(event).toMatch(
      /^CREATE EVENT IF NOT EXISTS `foobar`\.foobar_heartbeat ON SCHEDULE EVERY 1 SECOND DO REPLACE INTO `foobar`\.heartbeat .* VALUES \(1, @@GLOBAL\.server_id, NOW\(3\)\);$/,
    );
    expect(HEARTBEAT.intervalSeconds).toBe(1);
  });

  test("the primary creates it on first boot, the agent on every promotion (a volume may predate it); replicas only receive it", () => {
    const setupPrimary = MYSQL_SETUP_SCRIPT.slice(
      MYSQL_SETUP_SCRIPT.indexOf("setup_primary() {"),
      MYSQL_SETUP_SCRIPT.indexOf("ensure_heartbeat() {"),
    );
    expect(setupPrimary).toContain("  ensure_heartbeat\n");
    expect(databaseAgentScript({ addressEnvironment: "/etc/foobar/private-address.env" })).toContain(
      `HEARTBEAT_SQL = "${heartbeatSql("{database}").join(" ")}"`,
    );
    const setupReplica = MYSQL_SETUP_SCRIPT.slice(MYSQL_SETUP_SCRIPT.indexOf("setup_replica() {"));
    expect(setupReplica.slice(0, setupReplica.indexOf("\n}\n"))).not.toContain("heartbeat");
  });
});

describe("the database agent", () => {
  const script = databaseAgentScript({ addressEnvironment: "/etc/foobar/private-address.env" });

  test("is a Python program whose decisions are tested rule by rule (python3 -m unittest)", () => {
    const tests = path.join(__dirname, "python", "test_db_agent.py");
    // No __pycache__ left in cloud-init/files: the tree holds only what lands on a droplet.
    const run = spawnSync("python3", ["-m", "unittest", tests], {
      encoding: "utf8",
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
    });
    if (run.error) throw new Error(`python3 is needed for the agent's tests: ${run.error.message}`);
    expect(`${run.stderr}`).toMatch(/\nOK\n?$/);
    expect(run.status).toBe(0);
  });

  test("as written to the droplet, it and its decisions compile, every placeholder is filled, and it imports them from where they are written", () => {
    expect(script).not.toMatch(/@@[A-Z_]+@@/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-agent-"));
    try {
      // The agent as written, with its decisions in a folder of its own: it must import and start up to its
      // first use of the droplet (reading the environment files, absent here).
      const lib = path.join(dir, "lib");
      fs.mkdirSync(lib);
      fs.writeFileSync(path.join(lib, path.basename(DATABASE_AGENT.decisions)), databaseAgentDecisions());
      fs.writeFileSync(path.join(dir, "agent.py"), script.replace(`"${path.dirname(DATABASE_AGENT.decisions)}"`, JSON.stringify(lib)));
      const run = spawnSync(
        "python3",
        ["-c", `import runpy; runpy.run_path(${JSON.stringify(path.join(dir, "agent.py"))}, run_name="not_main")`],
        {
          encoding: "utf8",
          env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
        },
      );
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(script).toContain('SETUP_ENVIRONMENT = "/etc/foobar/mysql-setup.env"');
    expect(script).toContain(`sys.path.insert(0, "${path.dirname(DATABASE_AGENT.decisions)}")`);
  });

  test("runs under a watchdog and is restarted forever: a stuck or dead agent cannot leave a cut-off primary writable", () => {
    const unit = databaseAgentUnit();
    for (const line of [
      "Type=notify",
      "Restart=always",
      "StartLimitIntervalSec=0",
      "WatchdogSec=15s",
      "ExecStart=/usr/local/sbin/foobar-db-agent",
    ]) {
      expect(unit.split("\n")).toContain(line);
    }
  });

  test("waits long enough for a silent server to have fenced itself even behind a resolver that cached the old record", () => {
    expect(FENCE_AFTER_SECONDS).toBe(5);
    expect(promoteAfterSeconds(30)).toBe(40);
    expect(
      renderDatabaseAgentEnvironment({ peerHosts: ["web-01.internal.foobar.com", "web-02.internal.foobar.com"], recordTtlSeconds: 30 }),
    ).toBe("PEER_HOSTS=web-01.internal.foobar.com,web-02.internal.foobar.com\nFENCE_AFTER=5\nPROMOTE_AFTER=40\n");
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
