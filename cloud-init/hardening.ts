/**
 * Host hardening shared by every droplet: a host firewall (ufw) mirroring
 * the tier's cloud firewall, key-only SSH and unattended security upgrades.
 */
import { WriteFile } from "./cloud-config";

/** One inbound port (or, on one interface, everything) a tier accepts, and from where. */
export interface HostFirewallRule {
  /** The port; none with `protocol: "any"`. */
  readonly port?: number;
  /** @default "tcp" */
  readonly protocol?: "tcp" | "udp" | "any";
  /** Only packets arriving on this interface. @default - any interface */
  readonly interface?: string;
  /** CIDRs allowed; "any" for everywhere (IPv4 and IPv6). */
  readonly from: readonly string[] | "any";
  /** Shown by `ufw status`. */
  readonly comment: string;
}

/**
 * The commands that configure and enable ufw. Rules are added before ufw is
 * enabled, so the admin CIDRs' SSH rule is in place the moment filtering
 * starts; replies to outgoing traffic are always allowed (ufw is stateful).
 * Outgoing traffic is left to the cloud firewall.
 */
export function ufwCommands(rules: readonly HostFirewallRule[]): string[][] {
  const allow = rules.flatMap((rule) => {
    const protocol = rule.protocol ?? "tcp";
    const direction = rule.interface ? ["allow", "in", "on", rule.interface] : ["allow"];
    const proto = protocol === "any" ? [] : ["proto", protocol];
    const to = ["to", "any", ...(rule.port !== undefined ? ["port", String(rule.port)] : [])];
    const sources = rule.from === "any" ? [[]] : rule.from.map((cidr) => ["from", cidr]);
    return sources.map((from) => ["ufw", ...direction, ...proto, ...from, ...to, "comment", rule.comment]);
  });
  return [["ufw", "default", "deny", "incoming"], ["ufw", "default", "allow", "outgoing"], ...allow, ["ufw", "--force", "enable"]];
}

/** The SSH rule: only the admin CIDRs, and none at all without them. */
export function sshRules(adminCidrs: readonly string[]): HostFirewallRule[] {
  return adminCidrs.length > 0 ? [{ port: 22, from: adminCidrs, comment: "ssh from admin CIDRs" }] : [];
}

/**
 * sshd reads the first value it finds and includes sshd_config.d/*.conf in
 * order before its own settings, so "10-" wins over the image's "50-cloud-init"
 * and "60-cloudimg-settings".
 */
export const SSHD_HARDENING: WriteFile = {
  path: "/etc/ssh/sshd_config.d/10-foobar-hardening.conf",
  content: [
    "# Managed by cloud-init (foobar): keys only; root may log in with a key (DigitalOcean's default user).",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitEmptyPasswords no",
    "PermitRootLogin prohibit-password",
    "",
  ].join("\n"),
};

/** Turns on the daily unattended-upgrades run; its package defaults install security updates only. */
export const UNATTENDED_UPGRADES: WriteFile = {
  path: "/etc/apt/apt.conf.d/20auto-upgrades",
  content: ['APT::Periodic::Update-Package-Lists "1";', 'APT::Periodic::Unattended-Upgrade "1";', ""].join("\n"),
};

/** Packages every droplet gets for hardening. */
export const HARDENING_PACKAGES = ["ufw", "unattended-upgrades", "openssh-server"] as const;

/** Applies the sshd drop-in; `try-` because sshd may not be running yet (socket activation). */
export const RELOAD_SSHD = ["systemctl", "try-reload-or-restart", "ssh.service"];
