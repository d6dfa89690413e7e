/**
 * What the lab needs from the host, checked before anything starts: Linux,
 * root, and the commands it runs.
 */
import { commandExists } from "./shell";

const REQUIRED_COMMANDS = [
  "systemd-nspawn",
  "debootstrap",
  "dnsmasq",
  "losetup",
  "apt-cacher-ng",
  "nft",
  "ip",
  "nsenter",
  "setpriv",
  "ss",
  "curl",
  "pebble",
  "pebble-challtestsrv",
  "openssl",
  "ssh",
];
const PACKAGES = "systemd-container debootstrap dnsmasq-base apt-cacher-ng nftables iproute2 util-linux curl pebble openssl openssh-client";

/**
 * One line saying why the lab cannot run here, or undefined.
 *
 * @param extra commands a caller needs besides the lab's own (the bench's wrk), with their Debian packages
 */
export function preflight(extra: readonly { command: string; pkg: string }[] = []): string | undefined {
  if (process.platform !== "linux") return "the lab needs Linux (network namespaces, systemd-nspawn)";
  if (process.getuid?.() !== 0) return "the lab needs root (namespaces, mounts, routes): run it with sudo";
  const missing = [...REQUIRED_COMMANDS.map((command) => ({ command, pkg: "" })), ...extra].filter(
    ({ command }) => !commandExists(command),
  );
  if (missing.length > 0) {
    const packages = [PACKAGES, ...missing.map((m) => m.pkg).filter(Boolean)].join(" ");
    return `missing ${missing.map((m) => m.command).join(", ")}: apt-get install ${packages}`;
  }
  return undefined;
}
