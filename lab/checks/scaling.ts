/**
 * Servers leaving and joining a running lab, under a continuous HTTPS
 * client: what leaves the configuration keeps its data (Terraform forgets its
 * volume instead of deleting it), and the site's address never leaves the
 * load balancer that serves it. They run last in their configuration: each
 * changes the stack for good.
 */
import { spawnSync } from "node:child_process";

import type { Lab } from "../lab";
import { deployedSettings, singleLoadBalancerDeploy } from "./deploy";
import { Check, siteUrl, sql, underLoad, waitFor } from "./helpers";

/** The site's reserved IP and the droplet that holds it now. */
function siteAddressHolder(lab: Lab): { ip: string; holder: string | undefined } {
  const ip = lab.stack.reservedIps[0]!.ip;
  return { ip, holder: lab.reservedIpHolder(ip) };
}

/** `@@super_read_only` of a web server: "0" when writable. */
function readOnly(lab: Lab, server: string): string {
  return sql(lab, server, "SELECT @@GLOBAL.super_read_only");
}

/**
 * A kept volume's loop device, and what its filesystem holds at `file`
 * (read with debugfs from the host: nothing mounts it once its droplet is gone).
 */
function keptVolume(lab: Lab, volume: string, file: string): string {
  const device = lab.volumeDevice(volume);
  if (!device) throw new Error(`${volume} has no loop device any more: the volume was deleted`);
  const stat = spawnSync("debugfs", ["-R", `stat ${file}`, device], { encoding: "utf8" });
  const size = /Size: (\d+)/.exec(stat.stdout)?.[1];
  if (stat.status !== 0 || size === undefined)
    throw new Error(`${volume} on ${device} holds no ${file}: ${(stat.stderr || stat.stdout).trim().split("\n").slice(-2).join(" ")}`);
  return `${volume} still on ${device}, with ${file} (${size} bytes)`;
}

/** The changes an apply printed for a resource type and action, as `action address [name]` lines. */
function linesFor(lines: readonly string[], action: string, type: string): string[] {
  return lines.filter((line) => line.startsWith(`${action} ${type}.`));
}

/** After the default configuration's checks: three web servers (web-03 the primary), one load balancer. */
export const scalingChecks: Check[] = [
  {
    name: "day two: FOOBAR_WEB_SERVERS from 3 to 2 under a continuous HTTPS client: web-03 goes, its volume web-03-mysql stays with its data (Terraform forgets it), and the site serves throughout",
    async run(lab) {
      // The promotion checks leave web-03 the primary: the role goes back to web-01 first (a planned switchover).
      const settings = { ...process.env, FOOBAR_WEB_SERVERS: "3", FOOBAR_DB_PRIMARY: "web-01" };
      await lab.apply(settings);
      const writable = await waitFor("web-01 writable after the switchover", 120_000, () =>
        readOnly(lab, "web-01") === "0" ? true : undefined,
      );
      const count = sql(lab, "web-01", "SELECT COUNT(*) FROM foobar.messages");
      await waitFor("web-02 and web-03 holding web-01's rows", 120_000, () =>
        ["web-02", "web-03"].every(
          (name) => readOnly(lab, name) === "1" && sql(lab, name, "SELECT COUNT(*) FROM foobar.messages") === count,
        )
          ? true
          : undefined,
      );
      const {
        result: report,
        total,
        failed,
        byStatus,
      } = await underLoad(lab, siteUrl(lab), () => lab.apply({ ...settings, FOOBAR_WEB_SERVERS: "2" }));
      if (report.deleted.join() !== "web-03" || report.replaced.length + report.created.length > 0) {
        throw new Error(`apply should delete web-03 only: ${report.lines.join("; ")}`);
      }
      const forgotten = linesFor(report.lines, "forget", "digitalocean_volume");
      if (forgotten.length !== 1 || !forgotten[0]!.includes("web-03_mysql-volume"))
        throw new Error(`apply should forget web-03's volume: ${report.lines.join("; ")}`);
      if (linesFor(report.lines, "delete", "digitalocean_volume").length > 0)
        throw new Error(`apply deleted a volume: ${report.lines.join("; ")}`);
      const kept = keptVolume(lab, "web-03-mysql", "/data/foobar/messages.ibd");
      if (failed > 0) throw new Error(`${failed} of ${total} requests failed while web-03 was removed${byStatus}`);
      return `web-01 writable ${(writable.ms / 1000).toFixed(1)} s after FOOBAR_DB_PRIMARY=web-01, ${count} rows on every server; then ${report.lines.join("; ")}; ${kept}; under load: ${total} requests, ${failed} failed`;
    },
  },
  singleLoadBalancerDeploy,
  {
    name: "day two: FOOBAR_LOAD_BALANCERS from 1 to 2 under a continuous HTTPS client: the site answers throughout and its address stays on lb-01 (the assignment is forgotten, not deleted); lb-02 boots",
    async run(lab) {
      const before = siteAddressHolder(lab);
      const settings = { ...process.env, FOOBAR_WEB_SERVERS: "2", FOOBAR_DB_PRIMARY: "web-01", FOOBAR_LOAD_BALANCERS: "2" };
      const { result: report, total, failed, byStatus } = await underLoad(lab, siteUrl(lab), () => lab.apply(settings));
      if (report.created.join() !== "lb-02" || report.replaced.length + report.deleted.length > 0)
        throw new Error(`apply should create lb-02 only: ${report.lines.join("; ")}`);
      if (linesFor(report.lines, "forget", "digitalocean_reserved_ip_assignment").length !== 1)
        throw new Error(`apply should forget the address assignment: ${report.lines.join("; ")}`);
      const after = siteAddressHolder(lab);
      if (before.holder !== "lb-01" || after.holder !== "lb-01")
        throw new Error(`the site's address ${before.ip} was on ${before.holder ?? "nothing"}, now on ${after.holder ?? "nothing"}`);
      if (failed > 0) throw new Error(`${failed} of ${total} requests failed while lb-02 was added${byStatus}`);
      const units = lab
        .execIn("lb-02", ["systemctl", "is-active", "haproxy.service", "keepalived.service"])
        .stdout.trim()
        .split("\n")
        .join("/");
      return `${report.lines.join("; ")}; the address ${after.ip} stayed on lb-01; lb-02 HAProxy/keepalived ${units} (its certificate comes through lb-01 once lb-01 runs the pair's configuration); under load: ${total} requests, ${failed} failed`;
    },
  },
];

/** After the pair's checks: two load balancers, lb-01 the master. */
export const pairScalingChecks: Check[] = [
  {
    name: "pair: FOOBAR_LOAD_BALANCERS from 2 to 1 under a continuous HTTPS client: lb-02 goes, its certificate volume stays (Terraform forgets it), the address ends on lb-01, and the site answers throughout",
    async run(lab) {
      const before = siteAddressHolder(lab);
      const settings = { ...deployedSettings(), FOOBAR_LOAD_BALANCERS: "1" };
      const { result: report, total, failed, byStatus } = await underLoad(lab, siteUrl(lab), () => lab.apply(settings));
      if (report.deleted.join() !== "lb-02" || report.replaced.length + report.created.length > 0)
        throw new Error(`apply should delete lb-02 only: ${report.lines.join("; ")}`);
      const forgotten = linesFor(report.lines, "forget", "digitalocean_volume");
      if (forgotten.length !== 1 || !forgotten[0]!.includes("lb-02_certificate-volume"))
        throw new Error(`apply should forget lb-02's certificate volume: ${report.lines.join("; ")}`);
      if (linesFor(report.lines, "update", "digitalocean_reserved_ip").length > 0)
        throw new Error(`apply updated the reserved IP (it would unassign it): ${report.lines.join("; ")}`);
      const after = siteAddressHolder(lab);
      if (after.holder !== "lb-01") throw new Error(`the site's address ${after.ip} is on ${after.holder ?? "nothing"}, not lb-01`);
      const kept = keptVolume(lab, "lb-02-certificates", "/data/live");
      if (failed > 0) throw new Error(`${failed} of ${total} requests failed while lb-02 was removed${byStatus}`);
      return `address on ${before.holder ?? "nothing"} before, lb-01 after; ${report.lines.join("; ")}; ${kept}; under load: ${total} requests, ${failed} failed`;
    },
  },
];
