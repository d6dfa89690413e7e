/**
 * The shared Debian sid base rootfs every droplet boots from (read-only lower
 * layer of each droplet's overlay).
 *
 * Built once with debootstrap and cached under the lab cache directory, keyed by
 * a hash of everything that goes into it; a changed recipe builds a new base.
 * The build happens in a temporary directory that is renamed into place only
 * when complete, so an interrupted build never leaves a half base behind.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { APT_PROXY_PORT, cacheDir, DEBIAN_SUITE, debianMirror, DNS_ADDRESS, UPLINK_ADDRESS } from "../settings";
import { mountsUnder, removeTree, unmountAll } from "./mounts";
import { log, run } from "./shell";

/**
 * What a DigitalOcean Debian image brings that the user-data can rely on, plus
 * what the lab needs to boot it. Nothing the user-data installs itself
 * (haproxy, nginx, mysql-server, ...) belongs here: that must come through
 * cloud-init `packages:` at boot, as on a real droplet.
 */
export const BASE_PACKAGES: readonly string[] = [
  "systemd",
  "systemd-sysv",
  "dbus",
  "cloud-init",
  "locales",
  "openssh-server",
  "iproute2",
  "ca-certificates",
  "nftables",
  "curl",
  "procps",
  // mkfs.ext4 for block storage volumes, as on DigitalOcean's images.
  "e2fsprogs",
  "netbase",
  "sudo",
  // A caching stub resolver, as on DigitalOcean's Ubuntu images: answers are kept for their TTL.
  "systemd-resolved",
];

/**
 * Written last when a base is built: nothing in a base may be newer, so a
 * droplet that wrote through its overlay into the shared base would show.
 */
export const BASE_MARKER = "etc/foobar-lab-base";

/** Files the lab adds to the base; they are part of the cache key. */
export function labBaseFiles(): Record<string, string> {
  return {
    // The sid mirror's Release file is often past its Valid-Until date.
    "etc/apt/apt.conf.d/90foobar-lab-valid-until": 'Acquire::Check-Valid-Until "false";\n',
    "etc/apt/sources.list": `deb ${debianMirror()} ${DEBIAN_SUITE} main\n`,
    // Droplets have no route off the lab: packages come through the lab's apt-cacher-ng.
    "etc/apt/apt.conf.d/91foobar-lab-proxy": `Acquire::http::Proxy "http://${UPLINK_ADDRESS}:${APT_PROXY_PORT}";\n`,
    "etc/cloud/cloud.cfg.d/90-lab.cfg": [
      "# foobar lab only: the seed is written by the lab into /var/lib/cloud/seed/nocloud.",
      "datasource_list: [ NoCloud, None ]",
      "# The lab sets eth0 (public) and eth1 (VPC) from the host before boot;",
      "# cloud-init must not rewrite or flush them.",
      "network: {config: disabled}",
      "",
    ].join("\n"),
    "etc/locale.gen": "en_US.UTF-8 UTF-8\n",
    "etc/default/locale": "LANG=C.UTF-8\n",
    "etc/hostname": "localhost\n",
    "etc/hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    // DigitalOcean's resolvers answer for the stack's zone; in the lab, dns.ts does. As on an Ubuntu
    // droplet, programs ask systemd-resolved's stub, which caches each answer for its TTL.
    "etc/systemd/resolved.conf.d/90-foobar-lab.conf": `[Resolve]\nDNS=${DNS_ADDRESS}\nDNSSEC=no\nLLMNR=no\nMulticastDNS=no\n`,
    "etc/resolv.conf": "# foobar lab: systemd-resolved's stub, as on an Ubuntu droplet\nnameserver 127.0.0.53\noptions edns0 trust-ad\n",
  };
}

/** Cache key of the base: changes whenever anything that goes into it changes. */
export function baseKey(): string {
  const recipe = JSON.stringify({
    recipe: 2,
    suite: DEBIAN_SUITE,
    mirror: debianMirror(),
    packages: BASE_PACKAGES,
    files: labBaseFiles(),
  });
  return createHash("sha256").update(recipe).digest("hex").slice(0, 16);
}

function basePath(): string {
  return path.join(cacheDir(), `base-${DEBIAN_SUITE}-${baseKey()}`);
}

/** Whether the base rootfs is already built (a warm `up`), or `up` will build it (a cold one). */
export function baseCached(): boolean {
  return fs.existsSync(basePath());
}

/** Returns the cached base rootfs directory, building it first if needed. */
export function ensureBase(): string {
  const root = cacheDir();
  const key = baseKey();
  const base = basePath();
  if (fs.existsSync(base)) {
    log(`base rootfs: cached ${base}`);
    return base;
  }
  fs.mkdirSync(root, { recursive: true });
  removeStaleBuilds(root);
  const build = path.join(root, `build-${key}.${process.pid}`);
  log(`base rootfs: building Debian ${DEBIAN_SUITE} into ${build} (takes a few minutes, once)`);
  try {
    buildBase(build);
    fs.renameSync(build, base);
  } catch (error) {
    unmountAll(build);
    removeTree(build);
    throw error;
  }
  log(`base rootfs: ready ${base}`);
  return base;
}

/** Removes builds left behind by an interrupted run (never one still mounted). */
function removeStaleBuilds(root: string): void {
  for (const entry of fs.readdirSync(root)) {
    if (!entry.startsWith("build-")) continue;
    const dir = path.join(root, entry);
    const pid = Number(entry.split(".").pop());
    if (Number.isInteger(pid) && fs.existsSync(`/proc/${pid}`)) continue;
    unmountAll(dir);
    removeTree(dir);
  }
}

function buildBase(dir: string): void {
  run("debootstrap", ["--variant=minbase", DEBIAN_SUITE, dir, debianMirror()], { env: { DEBIAN_FRONTEND: "noninteractive" } });
  log("base rootfs: debootstrap done");
  const files = labBaseFiles();
  // The proxy is not running while we build, and the chroot needs the host's DNS
  // to reach the mirror: those two files are written after the install.
  const afterInstall = ["etc/apt/apt.conf.d/91foobar-lab-proxy", "etc/resolv.conf"];
  for (const [file, content] of Object.entries(files)) {
    if (!afterInstall.includes(file)) writeFile(dir, file, content);
  }
  // Keep package scripts from starting daemons inside the build chroot.
  writeFile(dir, "usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755);
  fs.mkdirSync(path.join(dir, "proc"), { recursive: true });
  run("mount", ["-t", "proc", "proc", path.join(dir, "proc")]);
  // Read-only bind: device nodes stay writable, but nothing can delete host /dev entries.
  run("mount", ["--bind", "/dev", path.join(dir, "dev")]);
  run("mount", ["-o", "remount,bind,ro", path.join(dir, "dev")]);
  try {
    const env = { DEBIAN_FRONTEND: "noninteractive", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" };
    run("chroot", [dir, "apt-get", "update"], { env });
    run("chroot", [dir, "apt-get", "install", "-y", "--no-install-recommends", ...BASE_PACKAGES], { env });
    log("base rootfs: packages installed");
    run("chroot", [dir, "locale-gen"], { env });
    run("chroot", [dir, "apt-get", "clean"], { env });
  } finally {
    unmountAll(path.join(dir, "proc"));
    unmountAll(path.join(dir, "dev"));
  }
  if (mountsUnder(dir).length > 0) throw new Error(`mounts left under ${dir}`);
  fs.rmSync(path.join(dir, "usr/sbin/policy-rc.d"));
  for (const file of afterInstall) writeFile(dir, file, files[file]!);
  // Every droplet must get its own machine id and SSH host keys, as on a fresh droplet.
  fs.writeFileSync(path.join(dir, "etc/machine-id"), "");
  fs.rmSync(path.join(dir, "var/lib/dbus/machine-id"), { force: true });
  for (const entry of fs.readdirSync(path.join(dir, "etc/ssh"))) {
    if (entry.startsWith("ssh_host_")) fs.rmSync(path.join(dir, "etc/ssh", entry));
  }
  writeFile(dir, BASE_MARKER, `key=${baseKey()}\nbuilt=${new Date().toISOString()}\n`);
}

function writeFile(root: string, file: string, content: string, mode = 0o644): void {
  const target = path.join(root, file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  // A symlink here (e.g. resolv.conf) would write through to its target: replace it.
  fs.rmSync(target, { force: true });
  fs.writeFileSync(target, content, { mode });
}
