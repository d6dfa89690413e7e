import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { BACKUP } from "../../cloud-init/backup";
import { CERTIFICATE_PATHS } from "../../cloud-init/certificate";
import { CloudConfig } from "../../cloud-init/cloud-config";
import {
  EXPORTER_PACKAGES,
  EXPORTER_PORTS,
  exporterDropIn,
  exporterDropInPath,
  exporterParts,
  exporterUserSql,
  FOOBAR_METRICS,
  METRICS_FILE,
  metricsScript,
  MYSQLD_EXPORTER,
  NGINX_STUB_STATUS,
  TEXTFILE_DIRECTORY,
} from "../../cloud-init/exporters";
import { renderHaproxyConfig } from "../../cloud-init/haproxy";
import { FAILOVER_PATHS } from "../../cloud-init/keepalived";
import { DATABASE_AGENT, databaseAgentScript, mysqlSetupScript } from "../../cloud-init/mysql";
import { renderNginxSite } from "../../cloud-init/nginx";
import { PRIVATE_ADDRESS_PATHS } from "../../cloud-init/private-address";
import {
  loadBalancerCloudConfig,
  LoadBalancerUserDataInput,
  webServerCloudConfig,
  WebServerUserDataInput,
} from "../../cloud-init/user-data";

const FIXTURES = path.join(__dirname, "fixtures", "metrics");

const loadBalancer: LoadBalancerUserDataInput = {
  hostname: "lb-01",
  monitored: true,
  vpcIpRange: "10.10.10.0/24",
  siteHostNames: ["www.foobar.com"],
  backends: [{ name: "web-01", hostName: "web-01.internal.foobar.com" }],
  statsPassword: "stats",
  hostFirewall: [],
};
const https = { acmeDirectoryUrl: "https://acme.example/directory", contactEmail: "ops@foobar.com", hstsMaxAgeSeconds: 300 };
const pair = {
  failover: {
    index: 1 as const,
    hostname: "lb-01",
    peerHost: "lb-02.internal.foobar.com",
    reservedIpHost: "site.internal.foobar.com",
    vrrpPassword: "abcd1234",
    apiToken: "token",
  },
};
const webServer: WebServerUserDataInput = {
  hostname: "web-01",
  monitored: true,
  databaseRole: "primary",
  mysqlServerId: 1,
  primaryHost: "mysql-primary.internal.foobar.com",
  databaseVolume: { volumeName: "web-01-mysql", mountPoint: "/var/lib/mysql", label: "mysql", requiredBy: ["mysql.service"] },
  vpcIpRange: "10.10.10.0/24",
  siteHostNames: ["www.foobar.com"],
  replicationPassword: "repl",
  appDatabasePassword: "app",
  replicaMaxLagSeconds: 30,
  appFiles: [],
  appCommand: "/usr/bin/gunicorn wsgi:app",
  hostFirewall: [],
  semiSyncTimeoutMs: 2000,
  databaseAgent: { peerHosts: ["web-01.internal.foobar.com"], recordTtlSeconds: 30 },
};
const backup = {
  bucket: "foobar-backups",
  region: "nyc3",
  recipient: `age1${"q".repeat(58)}`,
  accessKeyId: "key",
  secretAccessKey: "secret",
  everyHours: 6,
};

const file = (config: CloudConfig, filePath: string) => config.writeFiles.find((f) => f.path === filePath);
const environment = (config: CloudConfig) =>
  Object.fromEntries(
    file(config, FOOBAR_METRICS.environment)!
      .content.trim()
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split("=") as [string, string]),
  );
const listenFlag = (dropIn: string) => /--web\.listen-address=(\S+)/.exec(dropIn)![1];

describe("the exporters", () => {
  test("a droplet nobody scrapes (FOOBAR_MONITORING=false) runs no exporter, no metrics endpoint and no stub_status", () => {
    const lb = loadBalancerCloudConfig({ ...loadBalancer, monitored: false });
    const web = webServerCloudConfig({ ...webServer, monitored: false });
    for (const config of [lb, web]) {
      expect(config.packages.filter((name) => name.startsWith("prometheus"))).toEqual([]);
      expect(config.writeFiles.map((f) => f.path).filter((path) => /prometheus|foobar-metrics/.test(path))).toEqual([]);
    }
    expect(file(lb, "/etc/haproxy/haproxy.cfg")!.content).not.toContain("prometheus");
    expect(file(web, "/etc/nginx/sites-available/foobar")!.content).not.toContain("stub_status");
  });

  test("every exporter listens on the private address only, each on its own port", () => {
    for (const exporter of ["node", "mysqld", "nginx"] as const) {
      const dropIn = exporterDropIn(exporter);
      expect(listenFlag(dropIn)).toBe(`\${PRIVATE_ADDRESS}:${EXPORTER_PORTS[exporter]}`);
      // The address is found before the exporter starts, by the script that binds MySQL and Nginx.
      expect(dropIn).toContain(`ExecStartPre=+${PRIVATE_ADDRESS_PATHS.script}\n`);
      expect(dropIn).toContain(`EnvironmentFile=-${PRIVATE_ADDRESS_PATHS.addressEnvironment}\n`);
      // The package's ExecStart is replaced, not added to.
      expect(dropIn).toMatch(new RegExp(`^ExecStart=\\n^ExecStart=/usr/bin/${EXPORTER_PACKAGES[exporter]} \\$ARGS --web`, "m"));
    }
    const haproxy = renderHaproxyConfig({
      siteHostNames: ["www.foobar.com"],
      backends: [{ name: "web-01", hostName: "web-01.internal.foobar.com" }],
      healthPath: "/health",
      backendPort: 80,
      stats: { port: 8404, privateAddressVariable: "PRIVATE_ADDRESS", passwordVariable: "STATS_PASSWORD" },
      prometheus: { port: EXPORTER_PORTS.haproxy, path: "/metrics" },
    });
    const frontend = haproxy.slice(haproxy.indexOf("frontend prometheus")).split("\n");
    expect(frontend.filter((line) => line.trim().startsWith("bind"))).toEqual([`    bind "\${PRIVATE_ADDRESS}:8405"`]);
    expect(frontend).toContain("    http-request use-service prometheus-exporter if { path /metrics }");
    // After the guard that refuses a configuration without the address.
    expect(haproxy.indexOf(".if !defined(PRIVATE_ADDRESS)")).toBeLessThan(haproxy.indexOf("frontend prometheus"));
  });

  test("the ports are the contract's (the firewalls open them)", () => {
    expect(EXPORTER_PORTS).toEqual({ node: 9100, haproxy: 8405, mysqld: 9104, nginx: 9113 });
    expect(TEXTFILE_DIRECTORY).toBe("/var/lib/prometheus/node-exporter");
    expect(METRICS_FILE).toBe("/var/lib/prometheus/node-exporter/foobar.prom");
  });

  test("the drop-ins are written before the packages, so no exporter ever starts on every address", () => {
    for (const config of [loadBalancerCloudConfig(loadBalancer), webServerCloudConfig(webServer)]) {
      const dropIns = config.writeFiles.filter((f) => /prometheus-.*-exporter\.service\.d/.test(f.path));
      expect(dropIns.length).toBeGreaterThan(0);
      for (const dropIn of dropIns) expect(dropIn.defer).toBeFalsy();
    }
  });

  test("a load balancer runs the node exporter and HAProxy's; a web server the node, Nginx and mysqld exporters", () => {
    const lb = loadBalancerCloudConfig(loadBalancer);
    expect(lb.packages).toContain(EXPORTER_PACKAGES.node);
    expect(lb.packages).not.toContain(EXPORTER_PACKAGES.mysqld);
    expect(file(lb, "/etc/haproxy/haproxy.cfg")!.content).toContain("frontend prometheus");
    const web = webServerCloudConfig(webServer);
    expect(web.packages).toEqual(expect.arrayContaining(Object.values(EXPORTER_PACKAGES)));
    expect(file(web, exporterDropInPath("node"))!.content).toContain(`--collector.textfile.directory=${TEXTFILE_DIRECTORY}`);
    expect(web.runcmd).toContainEqual(["systemctl", "enable", "--now", FOOBAR_METRICS.timerName]);
    // The Nginx exporter is (re)started after Nginx serves stub_status.
    const nginxRestart = web.runcmd.findIndex((argv) => argv.join(" ") === "systemctl restart nginx.service");
    const exporterRestart = web.runcmd.findIndex((argv) => argv.includes(`${EXPORTER_PACKAGES.nginx}.service`));
    expect(nginxRestart).toBeGreaterThanOrEqual(0);
    expect(exporterRestart).toBeGreaterThan(nginxRestart);
    expect(exporterParts("monitoring").packages).toEqual([EXPORTER_PACKAGES.node]);
  });

  test("Nginx's stub_status answers on loopback only, where the Nginx exporter scrapes it", () => {
    const site = renderNginxSite({
      serverName: "web-01",
      listenSnippet: "/etc/nginx/snippets/foobar-listen.conf",
      port: 80,
      siteHostNames: ["www.foobar.com"],
      staticRoot: "/srv",
      appPort: 8000,
      stubStatus: NGINX_STUB_STATUS,
    });
    const status = site
      .slice(site.indexOf("# Connection counters"))
      .split("\n")
      .map((line) => line.trim());
    expect(status.filter((line) => line.startsWith("listen"))).toEqual(["listen 127.0.0.1:8081;"]);
    expect(status).toContain("stub_status;");
    expect(exporterDropIn("nginx", ["--nginx.scrape-uri=http://127.0.0.1:8081/stub_status"])).toContain(
      "--nginx.scrape-uri=http://127.0.0.1:8081/stub_status\n",
    );
  });

  test("the mysqld exporter connects over the socket as its own OS user, by auth_socket, with no password anywhere", () => {
    const web = webServerCloudConfig(webServer);
    expect(file(web, MYSQLD_EXPORTER.clientConfig)!.content).toBe("[client]\nuser=prometheus\nsocket=/run/mysqld/mysqld.sock\n");
    expect(file(web, exporterDropInPath("mysqld"))!.content).toContain(`--config.my-cnf=${MYSQLD_EXPORTER.clientConfig}`);
    expect(exporterUserSql()).toEqual([
      "CREATE USER IF NOT EXISTS 'prometheus'@'localhost' IDENTIFIED WITH auth_socket;",
      "GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'prometheus'@'localhost';",
      "GRANT SELECT ON performance_schema.* TO 'prometheus'@'localhost';",
    ]);
  });

  test("the exporter's MySQL user is created where writes happen: the primary's first boot, and every promotion (older data)", () => {
    const setup = mysqlSetupScript();
    const setupPrimary = setup.slice(setup.indexOf("setup_primary() {"), setup.indexOf("ensure_heartbeat() {"));
    expect(setupPrimary).toContain(`echo "${exporterUserSql().join(" ")}"`);
    const replica = setup.slice(setup.indexOf("setup_replica() {"));
    expect(replica.slice(0, replica.indexOf("\n}\n"))).not.toContain("prometheus");
    const agent = databaseAgentScript({ addressEnvironment: PRIVATE_ADDRESS_PATHS.addressEnvironment });
    expect(agent).toContain(`EXPORTER_USER_SQL = "${exporterUserSql().join(" ")}"`);
    expect(agent).toMatch(/def promote\(environment\):[\s\S]*HEARTBEAT_SQL\.format\(database=database\) \+ " " \+ EXPORTER_USER_SQL/);
  });
});

describe("foobar-metrics", () => {
  test("each droplet names only the sources it has: a metric without its source is not written", () => {
    expect(environment(loadBalancerCloudConfig(loadBalancer))).toEqual({});
    expect(environment(loadBalancerCloudConfig({ ...loadBalancer, https, pair }))).toEqual({
      VRRP_STATE: FAILOVER_PATHS.stateFile,
      CERTIFICATE: CERTIFICATE_PATHS.haproxyPem,
      RENEWAL_UNIT: "certbot.service",
    });
    expect(environment(webServerCloudConfig(webServer))).toEqual({ DATABASE_AGENT_STATUS: DATABASE_AGENT.status, MYSQL: "1" });
    expect(environment(webServerCloudConfig({ ...webServer, backup }))).toEqual({
      DATABASE_AGENT_STATUS: DATABASE_AGENT.status,
      MYSQL: "1",
      BACKUP_STATUS: BACKUP.status,
    });
  });

  test("runs every 10 s as a oneshot service", () => {
    const web = webServerCloudConfig(webServer);
    expect(file(web, FOOBAR_METRICS.unitPath)!.content).toMatch(/^Type=oneshot$/m);
    expect(file(web, FOOBAR_METRICS.unitPath)!.content).toMatch(/^ExecStart=\/usr\/local\/sbin\/foobar-metrics$/m);
    const timer = file(web, FOOBAR_METRICS.timerPath)!.content;
    expect(timer).toMatch(/^OnUnitActiveSec=10s$/m);
    expect(timer).toMatch(/^AccuracySec=1s$/m);
  });

  describe("its output, from fixture sources", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-metrics-"));
    const script = path.join(dir, "foobar-metrics");
    const certificate = path.join(dir, "site.pem");
    beforeAll(() => {
      // As written to the droplet, only the output file moved here.
      fs.writeFileSync(script, metricsScript().replace(`"${METRICS_FILE}"`, JSON.stringify(path.join(dir, "foobar.prom"))));
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-days",
          "30",
          "-subj",
          "/CN=www.foobar.com",
          "-keyout",
          "/dev/null",
          "-out",
          certificate,
        ],
        { stdio: "ignore" },
      );
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    function metrics(variables: Record<string, string>, args: string[] = ["--dry-run"]) {
      const envFile = path.join(dir, "metrics.env");
      fs.writeFileSync(
        envFile,
        Object.entries(variables)
          .map(([name, value]) => `${name}=${value}\n`)
          .join(""),
      );
      const run = spawnSync("python3", [script, "--environment", envFile, ...args], {
        encoding: "utf8",
        // The fixtures' mysql and systemctl stand in for the real ones.
        env: { ...process.env, PATH: `${path.join(FIXTURES, "bin")}:${process.env.PATH}`, PYTHONDONTWRITEBYTECODE: "1" },
      });
      return { ...run, samples: samples(run.stdout) };
    }

    /** The text parsed as Prometheus' text format: every sample has its HELP and TYPE (gauge) lines just before it. */
    function samples(text: string): Record<string, number> {
      const lines = text.split("\n").filter(Boolean);
      const result: Record<string, number> = {};
      for (let i = 0; i < lines.length; i += 3) {
        const [help, type, sample] = lines.slice(i, i + 3);
        const [name, value] = sample!.split(" ");
        expect(name).toMatch(/^foobar_[a-z_]+$/);
        expect(help).toMatch(new RegExp(`^# HELP ${name} \\S`));
        expect(type).toBe(`# TYPE ${name} gauge`);
        expect(Number.isFinite(Number(value))).toBe(true);
        result[name!] = Number(value);
      }
      return result;
    }

    test("a web server: its database's role, replication and refusal, the agent's liveness and the backups", () => {
      const before = Date.now() / 1000;
      const run = metrics({
        DATABASE_AGENT_STATUS: path.join(FIXTURES, "db-agent.json"),
        MYSQL: "1",
        BACKUP_STATUS: path.join(FIXTURES, "backup-status.json"),
      });
      expect(run.stderr).toBe("");
      const { foobar_metrics_timestamp_seconds: ranAt, foobar_db_agent_status_timestamp_seconds: agentAt, ...rest } = run.samples;
      expect(ranAt).toBeGreaterThanOrEqual(Math.floor(before));
      expect(agentAt).toBeCloseTo(fs.statSync(path.join(FIXTURES, "db-agent.json")).mtimeMs / 1000, 0);
      expect(rest).toEqual({
        foobar_db_refusing: 1,
        foobar_db_writable: 0,
        foobar_db_replica: 1,
        foobar_db_replication_io_running: 1,
        foobar_db_replication_sql_running: 1,
        foobar_db_replication_lag_seconds: 3,
        // The newest of the bucket's and this server's own: 2025-10-09T01:30:00Z, 2025-10-09T02:00:30Z.
        foobar_backup_base_last_success_timestamp_seconds: Date.UTC(2025, 9, 9, 1, 30) / 1000,
        foobar_backup_archive_last_success_timestamp_seconds: Date.UTC(2025, 9, 9, 2, 0, 30) / 1000,
      });
    });

    test("a load balancer of a pair with HTTPS: master or not, the certificate's notAfter, the last renewal", () => {
      const run = metrics({ VRRP_STATE: path.join(FIXTURES, "vrrp-state"), CERTIFICATE: certificate, RENEWAL_UNIT: "certbot.service" });
      expect(run.stderr).toBe("");
      const notAfter = execFileSync("openssl", ["x509", "-noout", "-enddate", "-in", certificate], { encoding: "utf8" })
        .trim()
        .split("=")[1]!;
      expect(run.samples).toEqual({
        foobar_lb_vrrp_master: 1,
        foobar_certificate_expiry_timestamp_seconds: Date.parse(notAfter) / 1000,
        // The fixture's systemctl says certbot.service's last run failed.
        foobar_certificate_renewal_failed: 1,
        foobar_metrics_timestamp_seconds: expect.any(Number),
      });
    });

    test("a source that is absent gives no metric, one that fails one line on stderr; the rest is still written", () => {
      const run = metrics({
        DATABASE_AGENT_STATUS: path.join(dir, "no-such-file.json"),
        BACKUP_STATUS: path.join(FIXTURES, "vrrp-state"),
        CERTIFICATE: path.join(FIXTURES, "vrrp-state"),
      });
      expect(run.status).toBe(0);
      expect(Object.keys(run.samples)).toEqual(["foobar_metrics_timestamp_seconds"]);
      expect(run.stderr.trim().split("\n")).toEqual([
        expect.stringMatching(/^foobar-metrics: BACKUP_STATUS .*vrrp-state: /),
        expect.stringMatching(/^foobar-metrics: CERTIFICATE .*vrrp-state: openssl: /),
      ]);
    });

    test("replaces the file atomically: written beside it as .tmp, then renamed (the node exporter reads only *.prom)", () => {
      const run = metrics({ VRRP_STATE: path.join(FIXTURES, "vrrp-state") }, []);
      expect(run.status).toBe(0);
      expect(run.stdout).toBe("");
      expect(fs.readdirSync(dir).filter((name) => name.startsWith("foobar.prom"))).toEqual(["foobar.prom"]);
      expect(samples(fs.readFileSync(path.join(dir, "foobar.prom"), "utf8")).foobar_lb_vrrp_master).toBe(1);
      expect(fs.statSync(path.join(dir, "foobar.prom")).mode & 0o777).toBe(0o644);
      expect(metricsScript()).toMatch(/os\.replace\(path \+ "\.tmp", path\)/);
    });

    test("as written to the droplet it compiles, and holds no unfilled placeholder", () => {
      expect(metricsScript()).not.toMatch(/@@[A-Z_]+@@/);
      const compile = spawnSync("python3", ["-c", "import sys; compile(open(sys.argv[1]).read(), 'foobar-metrics', 'exec')", script], {
        encoding: "utf8",
      });
      expect(compile.stderr).toBe("");
      expect(compile.status).toBe(0);
    });
  });
});
