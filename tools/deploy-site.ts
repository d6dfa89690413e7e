/**
 * The deploy's executor (tools/deploy.ts) for a running site, reached as an
 * operator reaches it: over SSH as root, as `npm run rollout` does. Only how
 * the configuration is applied differs between Terraform and the lab
 * (`DeploySite.apply…`); draining, readiness and the handovers are here, once.
 *
 * - **Drain** a web server: HAProxy's `state drain` on every load balancer
 *   (health checks go on), then wait for its requests in flight. A load
 *   balancer has nothing to drain: the pair's backup holds no address, the
 *   master hands it over first, and a single one is the site.
 * - **Ready**: cloud-init finished without error; a web server answers its
 *   health check on itself, and every load balancer's HAProxy has resolved
 *   its slot to the droplet's address now and checked it healthy (HAProxy 2.8
 *   would send requests to a server readmitted with `state ready` at once,
 *   whatever its checks said: so readmitting waits for them); a load balancer
 *   runs HAProxy (and keepalived in a pair).
 * - **Hand over the primary role**: the primary record applied as naming the
 *   healthiest replica (a planned switchover: the agents fence, catch up and
 *   promote), then wait until it is writable; after the turn the record goes
 *   back and the server is waited for as primary.
 * - **Hand over the site's address**: keepalived stopped on the master; its
 *   peer becomes master and claims the reserved IP, waited for until the
 *   metadata service says the address is active there. Meanwhile the old
 *   master holds new connections back, so none is open on it at the move.
 */
import { FAILOVER_PATHS, METADATA_URL } from "../cloud-init/keepalived";
import { isLoadBalancer, isMonitoringServer } from "../names";
import { DeployExecutor } from "./deploy";
import { RunningRoles } from "./deploy-plan";
import {
  BACKEND,
  drainServer,
  haproxyCommand,
  haproxyServerName,
  HEALTHY_WITHIN_SECONDS,
  readmitServer,
  RemoteResult,
  RolloutTarget,
  until,
} from "./rollout";

/** How long a droplet may take from its apply to the end of its cloud-init, in seconds. */
export const BOOT_WITHIN_SECONDS = 900;
/** How long a web server may take, once booted, to pass its health check: a new replica catches up first. */
const CATCH_UP_WITHIN_SECONDS = 600;
/** How long a switchover or the address's move may take, in seconds. */
const HANDOVER_WITHIN_SECONDS = 120;
/**
 * A connection open on the old master when the address moves is reset by the
 * peer (seen: one request of 1,058 failed in a resize's handover). So once
 * its peer is claiming the address (keepalived stopped, then this long), the
 * old master silently drops new connections to the site's ports: requests in
 * flight finish before the move, and each dropped client's SYN is sent again
 * (after 1 s, then 3 s) and reaches the new holder. The emulated API moves
 * the address about 1 s after the claim; DigitalOcean's API may take longer,
 * and a client then waits longer, but is not reset.
 */
const QUIET_AFTER_STOP_SECONDS = 0.5;
const HOLD_TABLE = "foobar_handover";
const RELEASE_HOLD = `nft delete table inet ${HOLD_TABLE}`;
const HOLD_NEW_CONNECTIONS = `table inet ${HOLD_TABLE} {
  chain input {
    type filter hook input priority -10; policy accept;
    tcp dport { 80, 443 } tcp flags & (fin | syn | rst | ack) == syn drop
  }
}
`;
/** HAProxy's `srv_admin_state` bit for a drain set from the admin socket (SRV_ADMF_FDRAIN). */
const FORCED_DRAIN = 0x08;
/** HAProxy's `srv_op_state` of a server that passes its checks (SRV_ST_RUNNING). */
const RUNNING = 2;

/** A running site, as the deploy reaches it. */
export interface DeploySite {
  /** The droplets' names now (a deploy may add some at once). */
  droplets(): readonly string[];
  /** A droplet's private address now (a replaced droplet has a new one). */
  privateAddress(droplet: string): string;
  /** Runs a bash script as root on a droplet (by name), `input` on its stdin; never throws on a non-zero exit. */
  run(droplet: string, script: string, input?: string): RemoteResult;
  /** Applies these addresses of the configuration being deployed, and what they need (`-target`), replacing `replace`. */
  apply(targets: readonly string[], replace: readonly string[]): Promise<void>;
  /** Applies the primary record as the configuration would declare it with FOOBAR_DB_PRIMARY naming `label` (`web-02`). */
  applyPrimaryRecordFor(label: string): Promise<void>;
  /** Applies the whole configuration; refuses when that would replace or resize a droplet. */
  applyAll(): Promise<void>;
}

const webServers = (site: DeploySite) => site.droplets().filter((name) => haproxyServerName(name) !== undefined);
const loadBalancers = (site: DeploySite) => site.droplets().filter(isLoadBalancer);

function rolloutTarget(site: DeploySite): RolloutTarget {
  return {
    loadBalancers: loadBalancers(site),
    webServers: webServers(site).map((name) => ({ name: haproxyServerName(name)!, host: name })),
    run: (host, script, input) => site.run(host, script, input),
  };
}

/** `0` on a writable MySQL, `1` on a read-only one, undefined when it does not answer. */
function readOnly(site: DeploySite, droplet: string): string | undefined {
  const result = site.run(droplet, "mysql --batch --skip-column-names --execute 'SELECT @@GLOBAL.read_only'");
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** `MASTER`, `BACKUP`, … as keepalived's notify script last wrote it; undefined when unknown. */
function vrrpState(site: DeploySite, droplet: string): string | undefined {
  const result = site.run(droplet, `cat ${FAILOVER_PATHS.stateFile}`);
  return result.status === 0 ? result.stdout.trim().split(" ")[0] : undefined;
}

/** Whether the metadata service says the site's reserved IP is active on this load balancer. */
function holdsAddress(site: DeploySite, droplet: string): boolean {
  return site.run(droplet, `curl -fsS --max-time 2 ${METADATA_URL}/reserved_ip/ipv4/active`).stdout.trim() === "true";
}

/** One load balancer's rows of `show servers state` for the web servers: name → address, operational and admin state. */
function haproxyServers(site: DeploySite, loadBalancer: string): Map<string, { address: string; op: number; admin: number }> {
  const result = site.run(loadBalancer, haproxyCommand(`show servers state ${BACKEND}`));
  if (result.status !== 0) throw new Error(`cannot read HAProxy's servers on ${loadBalancer}: ${(result.stderr || result.stdout).trim()}`);
  const rows = new Map<string, { address: string; op: number; admin: number }>();
  // Columns: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state …
  for (const fields of result.stdout.split("\n").map((line) => line.trim().split(/\s+/))) {
    if (fields[1] === BACKEND && fields[3]) rows.set(fields[3], { address: fields[4]!, op: Number(fields[5]), admin: Number(fields[6]) });
  }
  return rows;
}

/** Who holds the primary role and the site's address now, asked of the droplets themselves. */
export function runningRoles(site: DeploySite): RunningRoles {
  const writable = webServers(site).filter((name) => readOnly(site, name) === "0");
  if (writable.length !== 1)
    throw new Error(`expected one writable MySQL primary, found ${writable.length}: ${writable.join(", ") || "none"}`);
  const lbs = loadBalancers(site);
  if (lbs.length < 2) return { primary: writable[0]! };
  // The master is the one keepalived made master and the one the site's address is on; a pair that disagrees
  // would have the deploy replace the address's holder as a "backup".
  const masters = lbs.filter((name) => vrrpState(site, name) === "MASTER");
  const holders = lbs.filter((name) => holdsAddress(site, name));
  if (masters.length !== 1 || holders.length !== 1 || masters[0] !== holders[0]) {
    throw new Error(
      `the pair is not settled: VRRP master ${masters.join(", ") || "none"}, the site's address on ${holders.join(", ") || "none"}`,
    );
  }
  return { primary: writable[0]!, masterLoadBalancer: masters[0]! };
}

async function cloudInitDone(site: DeploySite, droplet: string): Promise<void> {
  let last = "no answer over SSH";
  try {
    await until(`${droplet} finishing cloud-init`, BOOT_WITHIN_SECONDS, () => {
      const result = site.run(droplet, "cloud-init status --wait >/dev/null 2>&1; cloud-init status --long");
      if (result.status === 255) return undefined;
      last = /^status: (\S+)/m.exec(result.stdout)?.[1] ?? (result.stdout.trim() || "no status");
      if (last === "done") return true;
      if (last === "error") throw new Error(`cloud-init on ${droplet} finished with an error: ${result.stdout.trim()}`);
      return undefined;
    });
  } catch (error) {
    throw new Error(`${(error as Error).message} (cloud-init: ${last})`, { cause: error });
  }
}

/** The executor for `site`. */
export function siteExecutor(site: DeploySite): DeployExecutor {
  const writableIs = (droplet: string) =>
    until(`${droplet} writable`, HANDOVER_WITHIN_SECONDS, () => (readOnly(site, droplet) === "0" ? true : undefined));
  /** Cloud-init done; a load balancer runs its services, a web server answers its health check on itself. */
  const booted = async (droplet: string): Promise<void> => {
    await cloudInitDone(site, droplet);
    if (isMonitoringServer(droplet)) {
      await until(`prometheus and alertmanager active on ${droplet}`, HEALTHY_WITHIN_SECONDS, () =>
        site.run(droplet, "systemctl is-active --quiet prometheus prometheus-alertmanager").status === 0 ? true : undefined,
      );
      return;
    }
    if (isLoadBalancer(droplet)) {
      const units = loadBalancers(site).length > 1 ? "haproxy keepalived" : "haproxy";
      await until(`${units} active on ${droplet}`, HEALTHY_WITHIN_SECONDS, () =>
        site.run(droplet, `systemctl is-active --quiet ${units}`).status === 0 ? true : undefined,
      );
      return;
    }
    // 503 until its MySQL holds data no older than FOOBAR_REPLICA_MAX_LAG: a new replica first replays the primary's
    // history (seen in CI: more than 90 s for a third web server, after the deploy checks had written for 17 minutes).
    let last = "no answer";
    try {
      await until(`${droplet} answering its health check`, CATCH_UP_WITHIN_SECONDS, () => {
        const result = site.run(droplet, "curl -sS --max-time 3 -w '\\n%{http_code}' http://127.0.0.1/health");
        last = `${result.stdout} ${result.stderr}`.trim().replace(/\s*\n\s*/g, " ") || "no answer";
        return result.status === 0 && result.stdout.trim().endsWith("200") ? true : undefined;
      });
    } catch (error) {
      throw new Error(`${(error as Error).message} (its last answer: ${last.slice(0, 300)})`, { cause: error });
    }
  };
  return {
    apply: (targets, replace) => site.apply(targets, replace),
    applyAll: () => site.applyAll(),
    async drained() {
      const left = new Set<string>();
      for (const lb of loadBalancers(site)) {
        for (const [label, server] of haproxyServers(site, lb)) if (server.admin & FORCED_DRAIN) left.add(label);
      }
      return webServers(site).filter((name) => left.has(haproxyServerName(name)!));
    },
    async switchPrimaryFrom(droplet) {
      const healthy = webServers(site).filter(
        (name) =>
          name !== droplet && loadBalancers(site).every((lb) => haproxyServers(site, lb).get(haproxyServerName(name)!)?.op === RUNNING),
      );
      const candidate = healthy[0];
      if (!candidate) throw new Error(`no healthy replica to hand the primary role to (${droplet} keeps it; nothing changed)`);
      await site.applyPrimaryRecordFor(haproxyServerName(candidate)!);
      await writableIs(candidate);
      return candidate;
    },
    primaryIs: (droplet) => writableIs(droplet).then(() => undefined),
    async moveAddressFrom(droplet) {
      const peer = loadBalancers(site).find((name) => name !== droplet);
      if (!peer) throw new Error(`${droplet} has no peer to hand the site's address to`);
      if (vrrpState(site, peer) !== "BACKUP") throw new Error(`${peer} is not a healthy backup (${vrrpState(site, peer) ?? "no state"})`);
      const stopped = site.run(
        droplet,
        `systemctl stop keepalived && sleep ${QUIET_AFTER_STOP_SECONDS} && nft -f - <<'EOF'\n${HOLD_NEW_CONNECTIONS}EOF`,
      );
      if (stopped.status !== 0) {
        site.run(droplet, `${RELEASE_HOLD}; systemctl start keepalived`);
        throw new Error(`cannot stop keepalived and hold new connections on ${droplet}: ${(stopped.stderr || stopped.stdout).trim()}`);
      }
      try {
        await until(`the site's address active on ${peer}`, HANDOVER_WITHIN_SECONDS, () =>
          vrrpState(site, peer) === "MASTER" && holdsAddress(site, peer) && !holdsAddress(site, droplet) ? true : undefined,
        );
        // The address is gone from here: new connections reach the peer, and this droplet must not drop them if it is
        // master again one day without a reboot.
        site.run(droplet, RELEASE_HOLD);
      } catch (error) {
        // Leave the pair as it was: the master's keepalived back (it still holds the address, or takes it back).
        site.run(droplet, `${RELEASE_HOLD}; systemctl start keepalived`);
        const claim = site.run(peer, `journalctl --no-pager -o cat -n 3 -u ${FAILOVER_PATHS.claimUnit}`).stdout.trim().replace(/\n/g, "; ");
        throw new Error(
          `${(error as Error).message} (${peer}: ${vrrpState(site, peer) ?? "no state"}; its claim: ${claim || "no journal"}); keepalived started again on ${droplet}`,
          {
            cause: error,
          },
        );
      }
      return peer;
    },
    async drain(droplet) {
      if (haproxyServerName(droplet)) await drainServer(rolloutTarget(site), haproxyServerName(droplet)!);
    },
    booted,
    async ready(droplet) {
      await booted(droplet);
      if (isLoadBalancer(droplet) || isMonitoringServer(droplet)) return;
      const label = haproxyServerName(droplet)!;
      const address = site.privateAddress(droplet);
      await until(`every load balancer checking ${droplet} healthy at ${address}`, HEALTHY_WITHIN_SECONDS, () =>
        loadBalancers(site).every((lb) => {
          const server = haproxyServers(site, lb).get(label);
          return server?.address === address && server.op === RUNNING;
        })
          ? true
          : undefined,
      );
    },
    async readmit(droplet) {
      if (haproxyServerName(droplet)) {
        await readmitServer(rolloutTarget(site), haproxyServerName(droplet)!);
        return;
      }
      if (isLoadBalancer(droplet) && loadBalancers(site).length > 1) {
        await until(`${droplet} in the pair again`, HEALTHY_WITHIN_SECONDS, () =>
          ["BACKUP", "MASTER"].includes(vrrpState(site, droplet) ?? "") ? true : undefined,
        );
      }
    },
  };
}
