/** Boot: cloud-init finished and the services run. */

import { Check, roles } from "./helpers";

export const bootChecks: Check[] = [
  {
    name: "every droplet's cloud-init finished without error",
    async run(lab) {
      const evidence: string[] = [];
      const problems: string[] = [];
      for (const droplet of lab.stack.droplets) {
        const result = lab.execIn(droplet.name, ["cloud-init", "status", "--long"]);
        const status = /^status:\s*(\S+)/m.exec(result.stdout)?.[1] ?? "unknown";
        // Exit 0: done without errors; 1: error; 2: done with recoverable errors (warnings, deprecations).
        if (result.status === 0 && status === "done") {
          evidence.push(`${droplet.name}: ${status}`);
        } else {
          problems.push(`${droplet.name}: status ${status}, exit ${result.status}\n${(result.stdout + result.stderr).trim()}`);
        }
      }
      if (problems.length > 0) throw new Error(problems.join("\n"));
      return evidence.join(", ");
    },
  },
  {
    name: "HAProxy, Nginx, the app server and MySQL are active under systemd",
    async run(lab) {
      const { lb, webs } = roles(lab);
      const expected: [string, string[]][] = [
        [lb.name, ["haproxy.service"]],
        ...webs.map((w): [string, string[]] => [w.name, ["nginx.service", "foobar-app.service", "mysql.service"]]),
      ];
      const evidence: string[] = [];
      for (const [droplet, units] of expected) {
        const result = lab.execIn(droplet, ["systemctl", "is-active", ...units]);
        const states = result.stdout.trim().split("\n");
        if (result.status !== 0) throw new Error(`${droplet}: ${units.map((u, i) => `${u}=${states[i]}`).join(" ")}`);
        evidence.push(`${droplet}: ${units.map((u) => u.replace(".service", "")).join("+")} active`);
      }
      return evidence.join("; ");
    },
  },
];
