/**
 * Monitoring (issue 24): every exporter scraped, and each failure the stack's
 * alert rules name reaches the operator's webhook (the lab's alert receiver)
 * as firing, then as resolved once healed, with both delays printed (goal
 * ≤ 60 s each). Every target up and the healthy run come first, around the
 * quiet checks (monitoring-healthy.ts, lab/checks/base.ts); the alert checks run in the default
 * configuration before the scaling checks, on a healthy lab: those end on a
 * half-made pair (lb-02 beside an lb-01 without keepalived), which
 * FoobarLoadBalancerPairSplit rightly reports (the pair's split is proven in
 * lab/checks/pair.ts). Each check waits for quiet before its fault and heals
 * whatever happens, so none relies on the one before it.
 */
import { CERTBOT_RENEWAL_UNIT } from "../../cloud-init/exporters";
import { PROMETHEUS_PORTS } from "../../cloud-init/prometheus";
import { EXPORTER_PORTS } from "../../constructs/firewalls";
import { isLoadBalancer } from "../../names";
import { loadSettings } from "../../settings";
import { describeAlert, findAlert, LabelMatch, matchesLabels } from "../emulations/alert-webhook";
import type { LabDroplet } from "../emulations/terraform";
import type { Lab } from "../lab";
import { currentPrimary, readOnly, replicating, webs, withDiagnostics } from "./database-helpers";
import {
  backendStates,
  Check,
  httpsOn,
  replicaCaughtUp,
  roles,
  siteUrl,
  sql,
  tcpFrom,
  TcpProbe,
  tcpProbes,
  tlsHandshake,
  waitFor,
  writeMessages,
} from "./helpers";
import { healthyRunEndChecks, monitoringFirstChecks } from "./monitoring-healthy";
import {
  againstGoal,
  alertsReceived,
  FIRING_TIMEOUT_MS,
  monitored,
  monitoringDiagnostics,
  monitoringServer,
  prometheusPage,
  quiet,
  RESOLVED_TIMEOUT_MS,
  seconds,
  waitForAlert,
} from "./monitoring-helpers";

/** Where each web server's MySQL volume is mounted: MySQL's data directory (see day-two.ts's first check). */
const MYSQL_MOUNT = "/var/lib/mysql";
/** The file the disk check fills the volume with (hidden, at the top of the data directory: MySQL and CLONE ignore it). */
const FILL_FILE = `${MYSQL_MOUNT}/.foobar-lab-fill`;
/** Where the certificate check forces renewals: a runtime drop-in, gone at the next boot. */
const FORCED_RENEWAL_DIR = `/run/systemd/system/${CERTBOT_RENEWAL_UNIT}.d`;
/** certbot's renewal as Debian's unit runs it, forced. */
const FORCED_RENEWAL_COMMAND = "ExecStart=/usr/bin/certbot -q renew --force-renewal --no-random-sleep-on-renew";
/** Where the ACME CA validates while the certificate check's fault lasts: its own loopback, where nothing answers on port 80. */
const AWAY_FROM_THE_SITE = "127.0.0.1";

/** One failure, the alert it must raise, and its cure. */
interface AlertFault {
  readonly alertname: string;
  /** The labels the alert must carry (`alertname` aside). */
  readonly labels: LabelMatch;
  /** What the fault is, for the evidence: "STOP REPLICA SQL_THREAD on web-02". */
  readonly what: string;
  /** PromQL whose value the diagnostics show when the alert does not come or go. */
  readonly metric: string;
  inject(): Promise<string | void>;
  heal(): Promise<unknown>;
  /** After the resolution: waits until the lab is as before the fault; returns evidence. */
  settle?(): Promise<string>;
  /** @default FIRING_TIMEOUT_MS */
  readonly firingTimeoutMs?: number;
  /** Other alerts the same fault must raise and the heal resolve, each timed like the first. @default - none */
  readonly also?: readonly { readonly alertname: string; readonly labels: LabelMatch }[];
}

/**
 * Waits for quiet, injects the fault, waits for the alert to arrive firing,
 * heals, waits for it to arrive resolved, and lets the lab settle. The fault
 * is healed whatever happens; a timeout carries the monitoring diagnostics,
 * taken before healing.
 *
 * @returns `<what> → <alert>: fault → alert X s, heal → resolved Y s; <settled>`.
 */
async function faultToAlert(lab: Lab, fault: AlertFault): Promise<string> {
  const alerts = [{ alertname: fault.alertname, labels: fault.labels }, ...(fault.also ?? [])];
  for (const { alertname, labels } of alerts) {
    await quiet(lab, `no ${alertname} active before the fault`, (alert) =>
      alert.labels?.alertname === alertname ? matchesLabels(alert, labels) : false,
    );
  }
  let healed = false;
  let healedAt = 0;
  const heal = async () => {
    if (healed) return;
    healed = true;
    await fault.heal();
    healedAt = Date.now();
  };
  const since = Date.now();
  const firedAt: number[] = [];
  const resolvedAt: number[] = [];
  let injected: string | void;
  try {
    injected = await fault.inject();
    try {
      for (const { alertname, labels } of alerts) {
        firedAt.push(await waitForAlert(lab, alertname, labels, "firing", since, fault.firingTimeoutMs ?? FIRING_TIMEOUT_MS));
      }
    } catch (error) {
      throw new Error(`${fault.what}: ${(error as Error).message}\n${monitoringDiagnostics(lab, fault.metric)}`, { cause: error });
    }
    await heal();
    try {
      for (const { alertname, labels } of alerts) {
        resolvedAt.push(await waitForAlert(lab, alertname, labels, "resolved", healedAt, RESOLVED_TIMEOUT_MS));
      }
    } catch (error) {
      throw new Error(`${fault.what}, healed: ${(error as Error).message}\n${monitoringDiagnostics(lab, fault.metric)}`, {
        cause: error,
      });
    }
  } catch (error) {
    const healFailed = healed
      ? undefined
      : await heal().then(
          () => undefined,
          (healError: Error) => healError.message,
        );
    if (healFailed !== undefined) throw new Error(`${(error as Error).message}\n(healing failed too: ${healFailed})`, { cause: error });
    throw error;
  }
  const timed = alerts.map(({ alertname, labels }, i) => {
    const alert = findAlert(alertsReceived(lab), { alertname, labels, status: "firing", since })?.alert;
    return (
      `${alert ? describeAlert(alert).replace(/ firing$/, "") : alertname}: ` +
      `fault → alert ${againstGoal(firedAt[i]! - since)}, heal → resolved ${againstGoal(resolvedAt[i]! - healedAt)}`
    );
  });
  const settled = fault.settle ? await fault.settle() : "";
  return `${fault.what}${injected ? ` (${injected})` : ""} → ${timed.join("; ")}${settled ? `; ${settled}` : ""}`;
}

/** The web servers: the writable primary (waited for, up to 2 minutes) and the others. */
async function databaseRoles(lab: Lab): Promise<{ primary: string; replicas: string[] }> {
  const { value: primary } = await waitFor("exactly one writable database server", 120_000, () => currentPrimary(lab));
  return { primary, replicas: webs(lab).filter((name) => name !== primary) };
}

const semiSyncOn = (lab: Lab, server: string) => sql(lab, server, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_source_status'").endsWith("ON");

const checks: Check[] = [
  {
    name: "monitoring: the exporters answer mon-01 on the private network and nothing else (not another droplet, not the internet); the dashboard needs its password and shows every server",
    async run(lab) {
      const mon = monitoringServer(lab)!;
      const { lb, webs: servers } = roles(lab);
      const ports = (droplet: LabDroplet) => (isLoadBalancer(droplet.name) ? EXPORTER_PORTS.loadBalancer : EXPORTER_PORTS.web);
      const evidence: string[] = [];
      const exporters = [lb, ...servers].flatMap((droplet) => ports(droplet).map((port) => ({ droplet, port })));
      // From mon-01; from another droplet of the VPC (the cloud firewall admits the monitoring tag only); from the internet.
      const neighbour = (droplet: LabDroplet) => (isLoadBalancer(droplet.name) ? servers[0]! : lb).name;
      const origins = (droplet: LabDroplet, port: number): (TcpProbe & { want: string; who: string })[] => [
        { from: { droplet: mon.name }, address: droplet.privateIpv4, port, want: "open", who: mon.name },
        { from: { droplet: neighbour(droplet) }, address: droplet.privateIpv4, port, want: "dropped", who: neighbour(droplet) },
        { from: { client: true }, address: droplet.publicIpv4, port, want: "dropped", who: "the internet" },
      ];
      const probes = exporters.flatMap(({ droplet, port }) => origins(droplet, port));
      const states = tcpProbes(lab, probes);
      probes.forEach((probe, i) => {
        if (states[i] === probe.want) return;
        throw new Error(`${probe.address}:${probe.port} is ${states[i]} from ${probe.who}, not ${probe.want}`);
      });
      for (const droplet of [lb, ...servers]) {
        for (const port of ports(droplet)) {
          // The local address of every listening socket on the port (ss -Hltn: state, queues, local, peer).
          const local = lab
            .execIn(droplet.name, ["ss", "-Hltn", `sport = :${port}`])
            .stdout.trim()
            .split("\n")
            .filter(Boolean)
            .map((line) => line.trim().split(/\s+/)[3]);
          if (local.join() !== `${droplet.privateIpv4}:${port}`)
            throw new Error(`${droplet.name} listens for ${port} on ${local.join(", ") || "nothing"}, not its private address only`);
        }
        evidence.push(`${droplet.name}:${ports(droplet).join("/")}`);
      }
      const prometheusFromInternet = tcpFrom(lab, { client: true }, mon.publicIpv4, PROMETHEUS_PORTS.prometheus);
      if (prometheusFromInternet !== "dropped")
        throw new Error(`${mon.name}:${PROMETHEUS_PORTS.prometheus} is ${prometheusFromInternet} from the internet`);
      const page = `http://${mon.privateIpv4}:${PROMETHEUS_PORTS.prometheus}/consoles/foobar.html`;
      const anonymous = lab.execIn(mon.name, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", page], 15_000).stdout.trim();
      if (anonymous !== "401") throw new Error(`${page} without a password → ${anonymous}, not 401`);
      const rendered = prometheusPage(lab, "/consoles/foobar.html");
      const missing = ["Alerts firing", "Databases", ...servers.map((web) => `<td>${web.name}</td>`), `<td>${lb.name}</td>`].filter(
        (text) => !rendered.includes(text),
      );
      if (missing.length > 0)
        throw new Error(
          `${page} lacks ${missing.join(", ")}: ${rendered
            .replace(/<[^>]*>/g, " ")
            .replace(/\s+/g, " ")
            .slice(0, 600)}`,
        );
      return `open from ${mon.name}, dropped from another droplet and from the internet, bound to the private address only: ${evidence.join(", ")}; ${mon.name}:${PROMETHEUS_PORTS.prometheus} dropped from the internet; ${page}: 401 without the password, with it the tables for ${servers.length + 1} servers`;
    },
  },
  withDiagnostics({
    name: "monitoring: a replica's SQL thread stopped raises FoobarReplicationStopped for that replica at the alert receiver; started again, the alert resolves and the replica catches up",
    async run(lab) {
      const { primary, replicas } = await databaseRoles(lab);
      const replica = replicas[0];
      if (!replica) return "one web server: no replica";
      await replicating(lab, replica, `${replica} replicating before the fault`, 120_000);
      return faultToAlert(lab, {
        alertname: "FoobarReplicationStopped",
        labels: { instance: replica },
        what: `STOP REPLICA SQL_THREAD on ${replica}`,
        metric: `foobar_db_replication_sql_running{instance="${replica}"}`,
        inject: async () => void sql(lab, replica, "STOP REPLICA SQL_THREAD"),
        heal: async () => sql(lab, replica, "START REPLICA SQL_THREAD"),
        settle: () => replicaCaughtUp(lab, primary, replica),
      });
    },
  }),
  withDiagnostics({
    name: "monitoring: every replica's IO thread stopped, the primary commits asynchronously after its semi-sync timeout and FoobarSemiSyncOff is raised for the primary; the threads started again, the alert resolves",
    async run(lab) {
      const { primary, replicas } = await databaseRoles(lab);
      if (replicas.length === 0) return "one web server: no semi-synchronous replication";
      for (const replica of replicas) await replicating(lab, replica, `${replica} replicating before the fault`, 120_000);
      await waitFor(`semi-sync acknowledging on ${primary} before the fault`, 60_000, () => (semiSyncOn(lab, primary) ? true : undefined));
      const url = `${siteUrl(lab)}api/messages`;
      return faultToAlert(lab, {
        alertname: "FoobarSemiSyncOff",
        labels: { instance: primary },
        what: `STOP REPLICA IO_THREAD on ${replicas.join(", ")}`,
        metric: `foobar_db_semi_sync_source_on{instance="${primary}"}`,
        inject: async () => {
          for (const replica of replicas) sql(lab, replica, "STOP REPLICA IO_THREAD");
          // A commit waits for an acknowledgement that cannot come; after the timeout the primary goes asynchronous.
          const accepted = writeMessages(lab, url, 3, "semi-sync off");
          const off = await waitFor(`${primary} asynchronous`, 30_000, () => (semiSyncOn(lab, primary) ? undefined : true)).then(
            (r) => `asynchronous ${seconds(r.ms)} s after ${accepted}/3 writes accepted`,
            () => `still semi-synchronous 30 s after ${accepted}/3 writes accepted`,
          );
          return off;
        },
        heal: async () => {
          for (const replica of replicas) sql(lab, replica, "START REPLICA IO_THREAD");
        },
        settle: async () => {
          const caught = [];
          for (const replica of replicas) caught.push(await replicaCaughtUp(lab, primary, replica));
          const on = await waitFor(`semi-sync acknowledging on ${primary} again`, 60_000, () =>
            semiSyncOn(lab, primary) ? true : undefined,
          );
          return `${caught.join("; ")}; semi-sync acknowledging again ${seconds(on.ms)} s later`;
        },
      });
    },
  }),
  {
    name: "monitoring: Nginx stopped on a replica's web server raises FoobarWebServerDown for it from the load balancer (instance the load balancer, server the web server); started again, the alert resolves and HAProxy counts it UP",
    async run(lab) {
      const { lb } = roles(lab);
      const { replicas, primary } = await databaseRoles(lab);
      const server = replicas[0] ?? primary;
      await waitFor(`${server} UP in HAProxy before the fault`, 60_000, () => (backendStates(lab)[server] === "UP" ? true : undefined));
      return faultToAlert(lab, {
        alertname: "FoobarWebServerDown",
        labels: { instance: lb.name, server },
        what: `systemctl stop nginx on ${server}`,
        metric: `haproxy_server_status{proxy="web_servers",server="${server}"}`,
        inject: async () => void (await lab.fault(server, "stop", "nginx")),
        heal: () => lab.fault(server, "start", "nginx"),
        settle: async () => {
          const up = await waitFor(`${server} UP in HAProxy again`, 120_000, () =>
            backendStates(lab)[server] === "UP" ? true : undefined,
          );
          return `UP in ${lb.name}'s HAProxy ${seconds(up.ms)} s after the resolution`;
        },
      });
    },
  },
  withDiagnostics({
    name: "monitoring: MySQL stopped on the primary raises FoobarNoWritablePrimary, and FoobarMySQLDown for that server; started again, the primary is writable, both alerts resolve and every replica replicates and catches up",
    async run(lab) {
      const { primary, replicas } = await databaseRoles(lab);
      for (const replica of replicas) await replicating(lab, replica, `${replica} replicating before the fault`, 120_000);
      return faultToAlert(lab, {
        alertname: "FoobarNoWritablePrimary",
        labels: {},
        also: [{ alertname: "FoobarMySQLDown", labels: { instance: primary } }],
        what: `systemctl stop mysql on ${primary}`,
        metric: "foobar_db_writable or mysql_up",
        inject: async () => void (await lab.fault(primary, "stop", "mysql")),
        heal: () => lab.fault(primary, "start", "mysql"),
        settle: async () => {
          const writable = await waitFor(`${primary} writable again`, 180_000, () => (readOnly(lab)[primary] === "0" ? true : undefined));
          const caught = [];
          for (const replica of replicas) caught.push(`${replica}: ${await replicaCaughtUp(lab, primary, replica)}`);
          return [`${primary} writable ${seconds(writable.ms)} s after the resolution`, ...caught].join("; ");
        },
      });
    },
  }),
  {
    name: "monitoring: a replica's MySQL volume filled past FOOBAR_ALERT_DISK_PERCENT raises FoobarDiskFilling for it (its mount point named); the file removed, the alert resolves",
    async run(lab) {
      const { primary, replicas } = await databaseRoles(lab);
      const server = replicas[0] ?? primary;
      const threshold = loadSettings(process.env).alertDiskPercent;
      const wanted = Math.min(99, threshold + 7);
      if (wanted <= threshold) return `FOOBAR_ALERT_DISK_PERCENT is ${threshold}: a volume cannot be filled past it`;
      const df = lab.execIn(server, ["df", "-B1", "--output=size,avail", MYSQL_MOUNT]);
      const [size, avail] = (df.stdout.trim().split("\n")[1] ?? "").trim().split(/\s+/).map(Number);
      if (df.status !== 0 || !size || avail === undefined)
        throw new Error(`df ${MYSQL_MOUNT} on ${server}: ${(df.stderr || df.stdout).trim()}`);
      const used = (100 * (1 - avail / size)).toFixed(1);
      const bytes = Math.floor(avail - (size * (100 - wanted)) / 100);
      if (bytes <= 0) throw new Error(`${server}:${MYSQL_MOUNT} is ${used}% full before the fault (threshold ${threshold}%)`);
      const filter = `instance="${server}",mountpoint="${MYSQL_MOUNT}"`;
      return faultToAlert(lab, {
        alertname: "FoobarDiskFilling",
        labels: { instance: server, mountpoint: MYSQL_MOUNT },
        what: `fallocate ${(bytes / 2 ** 30).toFixed(2)} GiB in ${server}:${MYSQL_MOUNT} (${used}% → about ${wanted}% full, threshold ${threshold}%)`,
        metric: `100 * (1 - node_filesystem_avail_bytes{${filter}} / node_filesystem_size_bytes{${filter}})`,
        inject: async () => {
          const fill = lab.execIn(server, ["fallocate", "-l", String(bytes), FILL_FILE], 60_000);
          if (fill.status !== 0) throw new Error(`fallocate on ${server}: ${fill.stderr.trim()}`);
        },
        heal: async () => {
          const removed = lab.execIn(server, ["rm", "-f", FILL_FILE]);
          if (removed.status !== 0) throw new Error(`rm ${FILL_FILE} on ${server}: ${removed.stderr.trim()}`);
        },
      });
    },
  },
  withDiagnostics({
    name: "monitoring: the database agent stopped on a replica raises FoobarDatabaseAgentDown for it; started again, the alert resolves and the replica still replicates",
    async run(lab) {
      const { primary, replicas } = await databaseRoles(lab);
      const server = replicas[0] ?? primary;
      return faultToAlert(lab, {
        alertname: "FoobarDatabaseAgentDown",
        labels: { instance: server },
        what: `systemctl stop foobar-db-agent on ${server}`,
        metric: `time() - foobar_db_agent_status_timestamp_seconds{instance="${server}"}`,
        inject: async () => void (await lab.fault(server, "stop", "foobar-db-agent")),
        heal: () => lab.fault(server, "start", "foobar-db-agent"),
        settle: async () => {
          if (server === primary) return `${primary} is the only web server`;
          await replicating(lab, server, `${server} replicating with its agent back`, 60_000);
          return `${server} replicating`;
        },
      });
    },
  }),
  withDiagnostics({
    name: "monitoring: a certificate renewal the ACME CA fails (its HTTP-01 validation sent away from the site) raises FoobarCertificateRenewalFailed for the load balancer; the names back, certbot's renewal unit run again renews, the alert resolves and HAProxy serves the new certificate",
    async run(lab) {
      if (!httpsOn(lab)) return "HTTPS is off (FOOBAR_HTTPS=false): no certificate to renew";
      const { lb } = roles(lab);
      const serial = () => tlsHandshake(lab, "", "openssl x509 -noout -serial").stdout.trim();
      const before = serial();
      const orders = lab.acmeOrders();
      const renew = () => lab.execIn(lb.name, ["systemctl", "start", CERTBOT_RENEWAL_UNIT], 180_000);
      const forced = (on: boolean) => {
        const script = on
          ? `mkdir -p ${FORCED_RENEWAL_DIR} && printf '%s\\n' '[Service]' 'ExecStart=' '${FORCED_RENEWAL_COMMAND}' > ${FORCED_RENEWAL_DIR}/foobar-lab.conf`
          : `rm -rf ${FORCED_RENEWAL_DIR}`;
        const result = lab.execIn(lb.name, ["sh", "-c", `${script} && systemctl daemon-reload`]);
        if (result.status !== 0) throw new Error(`${on ? "forcing" : "unforcing"} renewals on ${lb.name}: ${result.stderr.trim()}`);
      };
      return faultToAlert(lab, {
        alertname: "FoobarCertificateRenewalFailed",
        labels: { instance: lb.name },
        what: `${CERTBOT_RENEWAL_UNIT} run on ${lb.name} with renewals forced and the ACME CA validating at ${AWAY_FROM_THE_SITE}`,
        metric: `foobar_certificate_renewal_failed{instance="${lb.name}"}`,
        inject: async () => {
          forced(true);
          lab.acmeValidatesAt(AWAY_FROM_THE_SITE);
          const run = renew();
          if (run.status === 0) throw new Error(`${CERTBOT_RENEWAL_UNIT} succeeded on ${lb.name} although the CA could not validate`);
          return `${CERTBOT_RENEWAL_UNIT} ${lab.execIn(lb.name, ["systemctl", "show", "-P", "Result", CERTBOT_RENEWAL_UNIT]).stdout.trim()}`;
        },
        heal: async () => {
          lab.acmeValidatesAt(undefined);
          try {
            const run = renew();
            if (run.status !== 0) {
              const journal = lab.execIn(lb.name, ["journalctl", "--no-pager", "-u", CERTBOT_RENEWAL_UNIT, "-n", "20"]).stdout.trim();
              throw new Error(`${CERTBOT_RENEWAL_UNIT} failed on ${lb.name} with the names back: ${run.stderr.trim()}\n${journal}`);
            }
          } finally {
            forced(false);
          }
        },
        settle: async () => {
          const { value: after, ms } = await waitFor(`HAProxy on ${lb.name} serving the renewed certificate`, 60_000, () => {
            const now = serial();
            return now && now !== before ? now : undefined;
          });
          return `${lab.acmeOrders() - orders} order(s) at the CA; HAProxy serves ${after} (was ${before}) ${seconds(ms)} s after the resolution`;
        },
      });
    },
  }),
];

/** The monitoring checks, in the order they run; each reports nothing to check without a monitoring server. */
export const monitoringChecks: Check[] = checks.map(monitored);

/** `check monitoring` on a lab that is up: all of them, the healthy run idle for its five minutes at the end. */
export const monitoringGroupChecks: Check[] = [...monitoringFirstChecks, ...monitoringChecks, ...healthyRunEndChecks];
