/** Secrets: file modes, logs, the metadata service. */

import { MONITORING_PATHS } from "../../cloud-init/monitoring-server";
import { METADATA_ADDRESS } from "../emulations/metadata";
import { Check, generatedSecrets, httpsOn, roles, siteHost } from "./helpers";
import { monitoringServer } from "./monitoring-helpers";

export const secretChecks: Check[] = [
  {
    name: "secret files are 0600 and owned by their service user; no secret is in cloud-init's logs",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const mon = monitoringServer(lab);
      const host = siteHost(lab);
      const expected: [string, string, string][] = [
        [lb.name, "/etc/haproxy/foobar-stats.env", "haproxy:haproxy 600"],
        ...(httpsOn(lab)
          ? ([
              [lb.name, "/etc/haproxy/certs/site.pem", "haproxy:haproxy 600"],
              [lb.name, `/etc/letsencrypt/live/${host}/privkey.pem`, "root:root 600"],
            ] as [string, string, string][])
          : []),
        ...webs.flatMap((w): [string, string, string][] => [
          [w.name, "/etc/foobar/app.env", "foobar-app:foobar-app 600"],
          [w.name, "/etc/foobar/mysql-setup.env", "root:root 600"],
        ]),
        // Prometheus reads only the bcrypt hash of its password (web.yml, 0640 to its group).
        ...(mon
          ? ([
              [mon.name, MONITORING_PATHS.passwordFile, "root:root 600"],
              [mon.name, MONITORING_PATHS.webConfig, "root:prometheus 640"],
            ] as [string, string, string][])
          : []),
      ];
      for (const [droplet, file, owner] of expected) {
        const actual = lab.execIn(droplet, ["stat", "-L", "-c", "%U:%G %a", file]).stdout.trim();
        if (actual !== owner) throw new Error(`${droplet}:${file} is "${actual}", expected "${owner}"`);
      }
      const secrets = new Set(generatedSecrets(lab).keys());
      const logs = ["/var/log/cloud-init.log", "/var/log/cloud-init-output.log"];
      let bytes = 0;
      for (const droplet of lab.stack.droplets) {
        for (const log of logs) {
          const text = lab.execIn(droplet.name, ["cat", log]).stdout;
          if (text.length === 0) throw new Error(`${droplet.name}:${log} is empty or missing`);
          bytes += text.length;
          for (const secret of secrets) {
            if (text.includes(secret)) throw new Error(`${droplet.name}:${log} contains a secret (${secret.slice(0, 4)}…)`);
          }
        }
      }
      return `${expected.length} secret files with the expected owner and mode (0600; Prometheus' password hash 0640); none of ${secrets.size} secrets in ${(bytes / 1024).toFixed(0)} KiB of cloud-init logs on ${lab.stack.droplets.length} droplets`;
    },
  },
  {
    name: "secrets: only root reaches the metadata service's user-data, and the app's user can read no generated password but its own database password",
    async run(lab) {
      const { webs } = roles(lab);
      const secrets = generatedSecrets(lab);
      const url = `http://${METADATA_ADDRESS}/metadata/v1/user-data`;
      const evidence: string[] = [];
      for (const droplet of lab.stack.droplets) {
        // The service works, and gives each droplet its own user-data: root gets it.
        const asRoot = lab.execIn(droplet.name, ["curl", "-sS", "--max-time", "5", url], 15_000);
        if (asRoot.status !== 0) throw new Error(`${droplet.name}: root could not fetch ${url}: ${asRoot.stderr.trim()}`);
        if (asRoot.stdout !== droplet.userData)
          throw new Error(`${droplet.name}: the metadata service answered root with user-data that is not ${droplet.name}'s`);
        const user = webs.some((w) => w.name === droplet.name) ? "foobar-app" : "nobody";
        // Numeric ids: a name can fail to parse (Debian's nobody has the group nogroup), and a
        // command that never ran must not pass for one that was refused.
        const [uid, gid] = ["-u", "-g"].map((flag) => lab.execIn(droplet.name, ["id", flag, user]).stdout.trim());
        const asUser = (cmd: string[], input?: string) =>
          lab.execIn(droplet.name, ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--", ...cmd], 120_000, input);
        const whoami = asUser(["id", "-un"]);
        if (whoami.stdout.trim() !== user)
          throw new Error(`${droplet.name}: cannot run commands as ${user}: ${(whoami.stderr || whoami.stdout).trim()}`);
        const refused = asUser(["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", url]);
        // 7: could not connect, what the stack's guard does (an nftables reject); anything else is not the guard.
        if (refused.status !== 7) {
          throw new Error(
            `${droplet.name}: ${user} fetching ${url}: curl exit ${refused.status} (HTTP ${refused.stdout || "-"}), expected 7 (refused): ${refused.stderr.trim()}`,
          );
        }
        // Every file the user can read (not /proc, /sys, devices): which generated passwords are in it?
        const found = asUser(
          // Patterns on stdin ("-f -"): never on a command line. (/dev/stdin cannot reopen the socket node gives as stdin.)
          ["grep", "-rHoFs", "--devices=skip", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev", "-f", "-", "/"],
          [...secrets.keys()].join("\n") + "\n",
        );
        // 0: found, 1: not found, 2: some files unreadable (as expected for this user); anything else: grep did not run.
        if (found.status > 2) throw new Error(`${droplet.name}: grep as ${user} failed (exit ${found.status}): ${found.stderr.trim()}`);
        const leaks = found.stdout
          .split("\n")
          .filter(Boolean)
          .map((line) => ({
            file: line.slice(0, line.lastIndexOf(":")),
            names: secrets.get(line.slice(line.lastIndexOf(":") + 1)) ?? ["?"],
          }))
          // The app must read its own database password; nothing else of the kind.
          .filter(({ file, names }) => !(user === "foobar-app" && file === "/etc/foobar/app.env" && names.includes("FOOBAR_DB_PASSWORD")));
        if (leaks.length > 0) {
          throw new Error(`${droplet.name}: ${user} can read ${leaks.map((l) => `${l.names.join("/")} in ${l.file}`).join(", ")}`);
        }
        // Nor on any process's command line.
        const cmdlines = asUser(["sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '"]);
        const onCommandLine = [...secrets].filter(([value]) => cmdlines.stdout.includes(value)).map(([, names]) => names.join("/"));
        if (onCommandLine.length > 0) throw new Error(`${droplet.name}: ${onCommandLine.join(", ")} visible on a command line`);
        evidence.push(`${droplet.name}: root 200, ${user} refused (curl exit ${refused.status})`);
      }
      return `${evidence.join("; ")}; none of ${secrets.size} generated passwords readable by those users in any file or command line, but foobar-app's own database password in /etc/foobar/app.env`;
    },
  },
];
