/** Isolation: droplets are separate machines. */
import * as path from "node:path";

import { LAB_CGROUP } from "../host/cgroups";
import { BASE_MARKER } from "../host/rootfs";
import { sleep, tryRun } from "../host/shell";
import { cgroupLines, Check, unitInvocation, waitFor } from "./helpers";

export const isolationChecks: Check[] = [
  {
    name: "isolation: every droplet has cgroups of its own, and a SIGKILL of a unit in one droplet leaves that unit running in every other droplet",
    async run(lab) {
      // Host view of each init's cgroup in every hierarchy: no two droplets may share one.
      const owner = new Map<string, string>();
      let lines = 0;
      for (const droplet of lab.stack.droplets) {
        for (const line of cgroupLines(lab, droplet.name)) {
          const [, controllers, cgroup] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
          // The droplet's own cgroup, or (unified) nspawn's payload below it.
          const own = `/${LAB_CGROUP}/${droplet.name}`;
          if (!cgroup || !(cgroup.endsWith(own) || cgroup.includes(`${own}/`))) {
            throw new Error(
              `${droplet.name}'s init is in ${controllers || "the unified hierarchy"}:${cgroup}, outside its own ${LAB_CGROUP}/${droplet.name}`,
            );
          }
          const other = owner.get(`${controllers}:${cgroup}`);
          if (other) throw new Error(`${droplet.name} and ${other} share the cgroup ${controllers}:${cgroup}`);
          owner.set(`${controllers}:${cgroup}`, droplet.name);
          lines += 1;
        }
      }
      // ssh.service runs on every droplet and restarts on failure: kill it on one, watch the others.
      const victim = lab.stack.droplets[lab.stack.droplets.length - 1]!;
      const others = lab.stack.droplets.filter((d) => d.name !== victim.name);
      const before = others.map((d) => unitInvocation(lab, d.name, "ssh.service"));
      const victimBefore = unitInvocation(lab, victim.name, "ssh.service");
      await lab.fault(victim.name, "crash", "ssh");
      const restarted = await waitFor(`ssh.service restarting on ${victim.name}`, 30_000, () => {
        const now = unitInvocation(lab, victim.name, "ssh.service");
        return now.state === "active" && now.invocation !== victimBefore.invocation ? now : undefined;
      });
      await sleep(1000);
      const after = others.map((d) => unitInvocation(lab, d.name, "ssh.service"));
      others.forEach((d, i) => {
        if (after[i]!.invocation !== before[i]!.invocation || after[i]!.mainPid !== before[i]!.mainPid) {
          throw new Error(
            `crashing ssh.service on ${victim.name} reached ${d.name}: main PID ${before[i]!.mainPid} → ${after[i]!.mainPid}`,
          );
        }
      });
      return `${lines} cgroup memberships of ${lab.stack.droplets.length} inits, none shared (${cgroupLines(lab, victim.name).find((l) => l.startsWith("0::"))}); ssh.service SIGKILLed on ${victim.name}: restarted there in ${(restarted.ms / 1000).toFixed(1)} s (PID ${victimBefore.mainPid} → ${restarted.value.mainPid}), unchanged on ${others.map((d, i) => `${d.name} (PID ${after[i]!.mainPid})`).join(", ")}`;
    },
  },
  {
    name: "isolation: droplets share no machine-id, host name, SSH host key, D-Bus, /run, /tmp or journal, and none writes into the shared base image",
    async run(lab) {
      const names = lab.stack.droplets.map((d) => d.name);
      const read = (name: string, cmd: string[]): string => {
        const result = lab.execIn(name, cmd);
        if (result.status !== 0) throw new Error(`${name}: ${cmd.join(" ")}: ${result.stderr.trim()}`);
        return result.stdout.trim();
      };
      const distinct = (what: string, values: string[]): void => {
        const seen = new Map<string, string>();
        values.forEach((value, i) => {
          if (!value) throw new Error(`${names[i]} has no ${what}`);
          if (seen.has(value)) throw new Error(`${names[i]} and ${seen.get(value)} share the ${what} ${value}`);
          seen.set(value, names[i]!);
        });
      };
      distinct(
        "machine-id",
        names.map((n) => read(n, ["cat", "/etc/machine-id"])),
      );
      const hostnames = names.map((n) => read(n, ["hostname"]));
      hostnames.forEach((h, i) => {
        if (h !== names[i]) throw new Error(`${names[i]} calls itself "${h}"`);
      });
      distinct(
        "SSH host key",
        names.map((n) => read(n, ["ssh-keygen", "-l", "-f", "/etc/ssh/ssh_host_ed25519_key.pub"]).split(" ")[1] ?? ""),
      );
      distinct(
        "D-Bus system bus id",
        names.map((n) => read(n, ["busctl", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId"])),
      );
      // A file written to /run or /tmp on one droplet is seen by no other.
      const marker = `lab-isolation-${Date.now()}`;
      for (const dir of ["/run", "/tmp"]) {
        read(names[0]!, ["touch", `${dir}/${marker}`]);
        for (const other of names.slice(1)) {
          if (lab.execIn(other, ["test", "-e", `${dir}/${marker}`]).status === 0)
            throw new Error(`${other} sees ${names[0]}'s ${dir}/${marker}`);
        }
        read(names[0]!, ["rm", `${dir}/${marker}`]);
      }
      // Each journal holds its own droplet's messages only.
      for (const name of names) {
        const journalHosts = read(name, ["journalctl", "--quiet", "--field=_HOSTNAME"])
          .split("\n")
          .filter((h) => h !== name && h !== "localhost");
        if (journalHosts.length > 0) throw new Error(`${name}'s journal has messages from ${journalHosts.join(", ")}`);
      }
      // Nothing in the shared base is newer than its completion marker.
      const newer = tryRun("find", [lab.baseRootfs, "-mindepth", "1", "-newer", path.join(lab.baseRootfs, BASE_MARKER), "-print", "-quit"]);
      if (newer.status !== 0 || !lab.baseRootfs) throw new Error(`cannot inspect the base ${lab.baseRootfs}: ${newer.stderr.trim()}`);
      if (newer.stdout.trim()) throw new Error(`the shared base was written to after it was built: ${newer.stdout.trim()}`);
      return `${names.length} distinct machine-ids, host names, SSH host keys and D-Bus ids; /run and /tmp private; each journal names only its droplet; the base ${path.basename(lab.baseRootfs)} unchanged since it was built`;
    },
  },
];
