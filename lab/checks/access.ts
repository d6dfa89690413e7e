/** Access: cloud firewalls, ufw, the stats page, sshd and MySQL's TLS. */

import { PROMETHEUS_PORTS } from "../../cloud-init/prometheus";
import { EXPORTER_PORTS } from "../../constructs/firewalls";
import { ACME_NS, CLIENT_ADDRESS } from "../settings";
import { Check, httpsOn, Origin, roles, runFrom, tcpFrom, TcpProbe, tcpProbes } from "./helpers";
import { monitoringServer } from "./monitoring-helpers";

export const accessChecks: Check[] = [
  {
    name: "firewall: from the internet, only the load balancer's HTTP(S) is reachable; SSH only from the admin CIDR",
    async run(lab) {
      const { lb, webs } = roles(lab);
      // lab-acme stands for any address on the internet; the client is the admin CIDR.
      const internet = { namespace: ACME_NS };
      const client = { client: true } as const;
      const webPorts = httpsOn(lab) ? [80, 443] : [80];
      // Every probe at once (tcpProbes): what must be open, and what must be dropped.
      const probes: (TcpProbe & { want: string; who: string })[] = [
        ...webPorts.map((port) => ({ from: client, address: lb.publicIpv4, port, want: "open", who: "the client" })),
        ...webs.flatMap((web) => [
          ...[80, 3306, 22].map((port) => ({ from: internet, address: web.publicIpv4, port, want: "dropped", who: ACME_NS })),
          ...[80, 3306].map((port) => ({ from: client, address: web.publicIpv4, port, want: "dropped", who: "the client" })),
        ]),
        ...[22, 8404].map((port) => ({ from: internet, address: lb.publicIpv4, port, want: "dropped", who: ACME_NS })),
        ...[lb, ...webs].map((d) => ({
          from: client,
          address: d.publicIpv4,
          port: 22,
          want: "open",
          who: `the admin CIDR ${CLIENT_ADDRESS}/32`,
        })),
      ];
      const states = tcpProbes(lab, probes);
      probes.forEach((probe, i) => {
        const droplet = [lb, ...webs].find((d) => d.publicIpv4 === probe.address)!.name;
        if (states[i] !== probe.want) throw new Error(`${droplet} ${probe.address}:${probe.port} is ${states[i]} from ${probe.who}`);
      });
      const evidence = [
        `${lb.name}:${webPorts.join("/")} open`,
        ...webs.map((web) => `${web.name}:80/3306/22 dropped`),
        `${lb.name}:22/8404 dropped`,
        `SSH open from the admin CIDR ${CLIENT_ADDRESS}/32 on every droplet`,
      ];
      return evidence.join(", ");
    },
  },
  {
    name: "firewall: the load balancer reaches web HTTP but not MySQL; web servers reach the primary's MySQL",
    async run(lab) {
      const { lb, webs, primary, replicas } = roles(lab);
      const evidence: string[] = [];
      for (const web of webs) {
        const http = tcpFrom(lab, { droplet: lb.name }, web.privateIpv4, 80);
        const mysql = tcpFrom(lab, { droplet: lb.name }, web.privateIpv4, 3306);
        if (http !== "open" || mysql !== "dropped") throw new Error(`from ${lb.name}: ${web.name}:80 ${http}, :3306 ${mysql}`);
        evidence.push(`${lb.name}→${web.name}:80 open, :3306 dropped`);
      }
      for (const replica of replicas) {
        const mysql = tcpFrom(lab, { droplet: replica.name }, primary.privateIpv4, 3306);
        if (mysql !== "open") throw new Error(`${replica.name}→${primary.name}:3306 ${mysql}`);
        evidence.push(`${replica.name}→${primary.name}:3306 open`);
      }
      return evidence.join(", ");
    },
  },
  {
    name: "HAProxy's stats page needs its password and is reachable only on lb-01's private address and loopback",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const env = lab.execIn(lb.name, ["cat", "/etc/haproxy/foobar-stats.env"]).stdout;
      const password = /^STATS_PASSWORD=(\S+)$/m.exec(env)?.[1];
      if (!password) throw new Error("no STATS_PASSWORD in lb-01's /etc/haproxy/foobar-stats.env");
      const stats = (from: Origin, address: string, user?: string) =>
        runFrom(
          lab,
          from,
          [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "3",
            ...(user ? ["-u", user] : []),
            `http://${address}:8404/`,
          ],
          10_000,
        ).stdout.trim();
      const fromVpc = { droplet: webs[0].name };
      const anonymous = stats(fromVpc, lb.privateIpv4);
      const wrong = stats(fromVpc, lb.privateIpv4, "admin:wrong");
      const right = stats(fromVpc, lb.privateIpv4, `admin:${password}`);
      const loopback = stats({ droplet: lb.name }, "127.0.0.1", `admin:${password}`);
      if (anonymous !== "401" || wrong !== "401" || right !== "200" || loopback !== "200") {
        throw new Error(`from ${webs[0].name}: no password ${anonymous}, wrong ${wrong}, right ${right}; loopback ${loopback}`);
      }
      const publicPort = tcpFrom(lab, { client: true }, lb.publicIpv4, 8404);
      const privateFromClient = tcpFrom(lab, { client: true }, lb.privateIpv4, 8404);
      if (publicPort === "open" || privateFromClient === "open") {
        throw new Error(`from the client: ${lb.publicIpv4}:8404 ${publicPort}, ${lb.privateIpv4}:8404 ${privateFromClient}`);
      }
      const listening = lab
        .execIn(lb.name, ["ss", "-Hltn", "sport = :8404"])
        .stdout.trim()
        .split("\n")
        .map((l) => l.split(/\s+/)[3])
        .sort();
      const expected = [`${lb.privateIpv4}:8404`, "127.0.0.1:8404"].sort();
      if (JSON.stringify(listening) !== JSON.stringify(expected)) throw new Error(`listening on ${listening.join(", ")}`);
      return `listens on ${listening.join(" and ")}; from ${webs[0].name}: 401 without or with a wrong password, 200 with it; from the client: ${lb.publicIpv4}:8404 ${publicPort}, ${lb.privateIpv4}:8404 ${privateFromClient}`;
    },
  },
  {
    name: "ufw is active on every droplet with its tier's rules",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const vpc = lab.stack.vpc.ipRange;
      const mon = monitoringServer(lab);
      // With a monitoring server, each tier's exporters from the VPC (the cloud firewall narrows it to mon-01).
      const exporters = (ports: readonly number[]) => (mon ? ports.map((port) => `${port}/tcp ALLOW IN ${vpc}`) : []);
      const expected: Record<string, string[]> = {
        [lb.name]: [
          "80/tcp ALLOW IN Anywhere",
          ...(httpsOn(lab) ? ["443/tcp ALLOW IN Anywhere"] : []),
          `8404/tcp ALLOW IN ${vpc}`,
          ...exporters(EXPORTER_PORTS.loadBalancer),
          `22/tcp ALLOW IN ${CLIENT_ADDRESS}`,
        ],
        ...Object.fromEntries(
          webs.map((w) => [
            w.name,
            [`80/tcp ALLOW IN ${vpc}`, `3306/tcp ALLOW IN ${vpc}`, ...exporters(EXPORTER_PORTS.web), `22/tcp ALLOW IN ${CLIENT_ADDRESS}`],
          ]),
        ),
        ...(mon
          ? {
              [mon.name]: [
                `${PROMETHEUS_PORTS.prometheus}/tcp ALLOW IN ${vpc}`,
                ...exporters(EXPORTER_PORTS.monitoring),
                `22/tcp ALLOW IN ${CLIENT_ADDRESS}`,
              ],
            }
          : {}),
      };
      const evidence: string[] = [];
      for (const [name, rules] of Object.entries(expected)) {
        const status = lab.execIn(name, ["ufw", "status", "verbose"]).stdout;
        if (!/^Status: active$/m.test(status)) throw new Error(`${name}: ${status}`);
        if (!/^Default: deny \(incoming\)/m.test(status)) throw new Error(`${name}: default incoming policy is not deny:\n${status}`);
        const actual = status
          .split("\n")
          .filter((line) => /ALLOW IN/.test(line) && !line.includes("(v6)"))
          .map((line) =>
            line
              .replace(/#.*$/, "")
              .trim()
              .replace(/\s{2,}/g, " "),
          );
        if (JSON.stringify(actual) !== JSON.stringify(rules)) {
          throw new Error(`${name}: rules ${JSON.stringify(actual)}, expected ${JSON.stringify(rules)}`);
        }
        evidence.push(`${name}: ${rules.map((r) => r.replace(" ALLOW IN ", " from ")).join(", ")}`);
      }
      return `active, default deny incoming; ${evidence.join("; ")}`;
    },
  },
  {
    name: "sshd refuses password authentication; unattended security upgrades are on",
    async run(lab) {
      const evidence: string[] = [];
      for (const droplet of lab.stack.droplets) {
        const attempt = lab.client(
          [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            `root@${droplet.publicIpv4}`,
            "true",
          ],
          20_000,
        );
        const methods = /Permission denied \(([^)]*)\)/.exec(attempt.stderr)?.[1];
        if (attempt.status === 0 || methods !== "publickey") {
          throw new Error(
            `${droplet.name}: ssh without a key exited ${attempt.status}, server offers "${methods}": ${attempt.stderr.trim()}`,
          );
        }
        const effective = lab.execIn(droplet.name, ["/usr/sbin/sshd", "-T"]).stdout;
        // Key case and the alias printed for prohibit-password differ between OpenSSH versions.
        const setting = (name: string) => new RegExp(`^${name} (\\S+)$`, "im").exec(effective)?.[1];
        if (
          setting("passwordauthentication") !== "no" ||
          !["prohibit-password", "without-password"].includes(setting("permitrootlogin") ?? "")
        ) {
          throw new Error(
            `${droplet.name}: sshd -T says passwordauthentication ${setting("passwordauthentication")}, permitrootlogin ${setting("permitrootlogin")}`,
          );
        }
        const upgrades = lab.execIn(droplet.name, ["apt-config", "dump", "APT::Periodic::Unattended-Upgrade"]).stdout.trim();
        const timer = lab.execIn(droplet.name, ["systemctl", "is-enabled", "apt-daily-upgrade.timer"]).stdout.trim();
        if (!upgrades.includes('"1"') || timer !== "enabled")
          throw new Error(`${droplet.name}: ${upgrades || "no Unattended-Upgrade setting"}, apt-daily-upgrade.timer ${timer}`);
        evidence.push(droplet.name);
      }
      return `${evidence.join(", ")}: "Permission denied (publickey)" to a password login from the admin CIDR; sshd -T PasswordAuthentication no, PermitRootLogin prohibit-password; Unattended-Upgrade "1", apt-daily-upgrade.timer enabled`;
    },
  },
  {
    name: "MySQL refuses a login without TLS from another server, and accepts the same login over TLS",
    async run(lab) {
      const { primary, replicas } = roles(lab);
      if (replicas.length === 0) return "no second web server in this stack";
      const client = replicas[0];
      const login = (mode: string) =>
        lab.execIn(
          client.name,
          [
            "bash",
            "-c",
            `. /etc/foobar/app.env && MYSQL_PWD="$FOOBAR_DB_PASSWORD" mysql --ssl-mode=${mode} --connect-timeout=5 -h ${primary.privateIpv4} -u "$FOOBAR_DB_USER" --batch --skip-column-names -e "SHOW SESSION STATUS LIKE 'Ssl_version'"`,
          ],
          20_000,
        );
      // TLS first: it puts the account in caching_sha2_password's cache, so that the
      // plain login below reaches the server's transport rule (error 3159) instead
      // of stopping at the client's "Authentication requires secure connection"
      // (2061), which a cold cache gives whatever require_secure_transport says.
      const tls = login("REQUIRED");
      const version = /Ssl_version\s+(\S+)/.exec(tls.stdout)?.[1];
      if (tls.status !== 0 || !version) throw new Error(`the TLS login failed: ${tls.stderr}`);
      const plain = login("DISABLED");
      if (plain.status === 0 || !/3159|insecure transport/i.test(plain.stderr)) {
        throw new Error(
          `a non-TLS login from ${client.name} to ${primary.name} was not refused for transport: exit ${plain.status} ${plain.stdout}${plain.stderr}`,
        );
      }
      return `${client.name}→${primary.name} as the app user: --ssl-mode=DISABLED refused (${plain.stderr.trim().split("\n").pop()}); --ssl-mode=REQUIRED accepted over ${version}`;
    },
  },
];
