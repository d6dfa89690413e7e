/**
 * The lab's ACME CA: Let's Encrypt's test server pebble, and
 * pebble-challtestsrv as the DNS pebble validates through, both in the
 * `lab-acme` namespace on the public bridge, both as `nobody`.
 *
 * Two CAs are involved:
 * - the lab's "ACME server CA", made here with openssl for two days, signs
 *   pebble's own HTTPS certificate, the API emulator's (api.ts) and the Spaces
 *   emulator's (spaces.ts); the stack
 *   is synthesized with it as `FOOBAR_ACME_CA_FILE`, so the load balancer can
 *   talk to the directory, and every droplet's image trusts it
 *   (`installLabCa`), as real images trust the CA of the real API;
 * - pebble's issuing root, which pebble makes anew on every start and issues
 *   the site's certificates under; fetched once pebble is up, for checks.
 *
 * challtestsrv answers every A query with the load balancer's lab address and
 * no AAAA, so pebble's HTTP-01 validation of the site's names reaches the load
 * balancer on port 80. Its other servers are off; its management port and
 * pebble's are on loopback only.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { SPACES_REGIONS } from "../../settings";
import { NOBODY_ID, spawnUnprivileged, stopProcess, waitUntilServing } from "../host/processes";
import { log, run, tryRun } from "../host/shell";
import { AcmeEndpoints, LabState, saveState } from "../host/state";
import { ACME_ADDRESS, ACME_NS, stateDir } from "../settings";
import { API_HOST_NAME } from "./api";
import { spacesCertificateNames } from "./spaces";

/** The DNS name in pebble's HTTPS certificate, besides its address. */
export const ACME_HOST_NAME = "acme.lab.test";
/** pebble's ACME port: 443, since the droplets' cloud firewalls only let HTTP and HTTPS out. */
export const ACME_PORT = 443;
/** pebble's management API (issuing roots and intermediates); loopback of `lab-acme` only. */
export const PEBBLE_MANAGEMENT = "127.0.0.1:15000";
/** challtestsrv's DNS server, pebble's `-dnsserver`; loopback of `lab-acme` only. */
export const CHALLTESTSRV_DNS = "127.0.0.1:8053";
/** challtestsrv's management API (to add records or mock failures); loopback of `lab-acme` only. */
export const CHALLTESTSRV_MANAGEMENT = "127.0.0.1:8055";
/** Days the lab's ACME server CA and pebble's HTTPS certificate are valid. */
export const ACME_CERTIFICATE_DAYS = 2;

/** /proc/PID/stat holds at most 15 characters of the command name. */
const CHALLTESTSRV_COMM = "pebble-challtestsrv".slice(0, 15);

/** The certificates and keys `createAcmeCertificates` writes. */
export interface AcmeFiles {
  /** PEM of the lab's ACME server CA (its key is deleted once it has signed). */
  readonly serverCaFile: string;
  /** pebble's HTTPS certificate, for `ACME_ADDRESS` and `ACME_HOST_NAME`. */
  readonly listenerCertFile: string;
  readonly listenerKeyFile: string;
  /** The API emulator's HTTPS certificate, for api.digitalocean.com (its key is root's only). */
  readonly apiCertFile: string;
  readonly apiKeyFile: string;
  /** The Spaces emulator's HTTPS certificate, for every Spaces region's endpoint and buckets (spaces.ts); its key is `nobody`'s only. */
  readonly spacesCertFile: string;
  readonly spacesKeyFile: string;
}

/** The directory URL the stack is synthesized with. */
export function acmeDirectoryUrl(): string {
  return `https://${ACME_ADDRESS}${ACME_PORT === 443 ? "" : `:${ACME_PORT}`}/dir`;
}

/** Paths of the ACME CA's files under a directory. */
export function acmeFiles(dir: string): AcmeFiles {
  return {
    serverCaFile: path.join(dir, "server-ca.pem"),
    listenerCertFile: path.join(dir, "listener.pem"),
    listenerKeyFile: path.join(dir, "listener.key"),
    apiCertFile: path.join(dir, "api.pem"),
    apiKeyFile: path.join(dir, "api.key"),
    spacesCertFile: path.join(dir, "spaces.pem"),
    spacesKeyFile: path.join(dir, "spaces.key"),
  };
}

/** pebble's `-config` file (the 2.4 format: one `pebble` object). */
export function renderPebbleConfig(files: AcmeFiles): string {
  const config = {
    pebble: {
      listenAddress: `${ACME_ADDRESS}:${ACME_PORT}`,
      managementListenAddress: PEBBLE_MANAGEMENT,
      certificate: files.listenerCertFile,
      privateKey: files.listenerKeyFile,
      // Where pebble connects to validate HTTP-01 and TLS-ALPN-01 challenges.
      httpPort: 80,
      tlsPort: 443,
      ocspResponderURL: "",
      externalAccountBindingRequired: false,
    },
  };
  return JSON.stringify(config, null, 2) + "\n";
}

/** challtestsrv's arguments: DNS on loopback answering `defaultIPv4` for every name, nothing else listening outside loopback. */
export function challtestsrvArgs(defaultIPv4: string): string[] {
  return [
    "-dns01",
    CHALLTESTSRV_DNS,
    "-defaultIPv4",
    defaultIPv4,
    "-defaultIPv6",
    "",
    "-http01",
    "",
    "-https01",
    "",
    "-tlsalpn01",
    "",
    "-management",
    CHALLTESTSRV_MANAGEMENT,
  ];
}

/**
 * Makes the lab's ACME server CA and pebble's HTTPS certificate in
 * `<state dir>/acme`, recorded in the state first. Runs before synthesis: the
 * stack embeds the CA.
 */
export function createAcmeCertificates(state: LabState): AcmeFiles {
  const dir = path.join(stateDir(), "acme");
  state.acme = { dir };
  saveState(state);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const files = acmeFiles(dir);
  const caKey = path.join(dir, "server-ca.key");
  const days = String(ACME_CERTIFICATE_DAYS);
  /** `openssl req`'s arguments for a new P-256 key in `keyFile` and a certificate for it in `certFile`. */
  const newCertificate = (keyFile: string, certFile: string) =>
    ["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc"].concat([
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      days,
    ]);
  run("openssl", [
    ...newCertificate(caKey, files.serverCaFile),
    "-subj",
    `/CN=foobar lab ACME server CA ${state.startedAt}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE,pathlen:0",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  /** A server certificate signed by the CA, for `names` (`DNS:…` or `IP:…`); the first names its subject. */
  const serverCertificate = (keyFile: string, certFile: string, names: readonly string[]) =>
    run("openssl", [
      ...newCertificate(keyFile, certFile),
      "-CA",
      files.serverCaFile,
      "-CAkey",
      caKey,
      "-subj",
      `/CN=${names[0]!.replace(/^(DNS|IP):/, "")}`,
      "-addext",
      `subjectAltName=${names.join(",")}`,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "keyUsage=critical,digitalSignature",
      "-addext",
      "extendedKeyUsage=serverAuth",
    ]);
  serverCertificate(files.listenerKeyFile, files.listenerCertFile, [`DNS:${ACME_HOST_NAME}`, `IP:${ACME_ADDRESS}`]);
  // The lab's "internet" has one more HTTPS server the droplets call: DigitalOcean's API (api.ts).
  serverCertificate(files.apiKeyFile, files.apiCertFile, [`DNS:${API_HOST_NAME}`]);
  fs.chmodSync(files.apiKeyFile, 0o400);
  // And one the backups call: Spaces (spaces.ts). Every region, since the CA signs before the stack is synthesized.
  serverCertificate(
    files.spacesKeyFile,
    files.spacesCertFile,
    spacesCertificateNames(SPACES_REGIONS).map((name) => `DNS:${name}`),
  );
  fs.chownSync(files.spacesKeyFile, NOBODY_ID, NOBODY_ID);
  fs.chmodSync(files.spacesKeyFile, 0o400);
  // Nothing else is ever signed with it.
  fs.rmSync(caKey);
  fs.chmodSync(files.serverCaFile, 0o644);
  fs.chmodSync(files.listenerCertFile, 0o644);
  fs.chownSync(files.listenerKeyFile, NOBODY_ID, NOBODY_ID);
  fs.chmodSync(files.listenerKeyFile, 0o400);
  return files;
}

/**
 * Starts challtestsrv, then pebble, in the ACME namespace (which must exist);
 * waits for the directory to answer and fetches pebble's issuing root.
 *
 * @param defaultIPv4 what challtestsrv answers for every name: the load balancer's lab address.
 * @throws Error with the tail of the log when either does not come up within 20 seconds.
 */
export async function startAcme(state: LabState, defaultIPv4: string): Promise<AcmeEndpoints> {
  const acme = state.acme;
  if (!acme) throw new Error("startAcme before createAcmeCertificates");
  const files = acmeFiles(acme.dir);
  const configFile = path.join(acme.dir, "pebble.json");
  fs.writeFileSync(configFile, renderPebbleConfig(files));
  // Only inside lab-acme: lets `nobody` bind 443 there.
  run("ip", ["netns", "exec", ACME_NS, "sysctl", "-qw", `net.ipv4.ip_unprivileged_port_start=${ACME_PORT}`]);
  const startedAt = Date.now();

  const challtestsrvLog = path.join(acme.dir, "challtestsrv.log");
  acme.challtestsrvPid = spawnUnprivileged(ACME_NS, "pebble-challtestsrv", challtestsrvArgs(defaultIPv4), {}, challtestsrvLog);
  saveState(state);
  const [dnsHost, dnsPort] = CHALLTESTSRV_DNS.split(":");
  await waitUntilServing(
    ACME_NS,
    "pebble-challtestsrv",
    acme.challtestsrvPid,
    CHALLTESTSRV_COMM,
    challtestsrvLog,
    () =>
      // Listening (checked with ss: no query sent).
      tryRun("ip", ["netns", "exec", ACME_NS, "ss", "-Hlun", `src ${dnsHost}:${dnsPort}`]).stdout.trim() !== "",
  );

  const pebbleLog = path.join(acme.dir, "pebble.log");
  // No authorization reuse (pebble's default reuses half of them): every order validates, so a renewal whose
  // validation is sent away from the site fails every time (lab/checks/monitoring.ts).
  const env = { PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" };
  acme.pebblePid = spawnUnprivileged(ACME_NS, "pebble", ["-config", configFile, "-dnsserver", CHALLTESTSRV_DNS], env, pebbleLog);
  saveState(state);
  const directoryUrl = acmeDirectoryUrl();
  await waitUntilServing(
    ACME_NS,
    "pebble",
    acme.pebblePid,
    "pebble",
    pebbleLog,
    () => acmeCurl(files.serverCaFile, [directoryUrl]).status === 0,
  );
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);

  // pebble makes a new root on every start: fetch it now, over the management
  // port (the listener certificate names acme.lab.test, pinned to loopback here).
  const [managementHost, managementPort] = PEBBLE_MANAGEMENT.split(":");
  const root = acmeCurl(files.serverCaFile, [
    "--resolve",
    `${ACME_HOST_NAME}:${managementPort}:${managementHost}`,
    `https://${ACME_HOST_NAME}:${managementPort}/roots/0`,
  ]);
  if (root.status !== 0 || !root.stdout.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error(`could not fetch pebble's issuing root: ${root.stderr.trim() || root.stdout.trim()}`);
  }
  const issuingRootFile = path.join(acme.dir, "issuing-root.pem");
  fs.writeFileSync(issuingRootFile, root.stdout, { mode: 0o644 });

  acme.endpoints = { directoryUrl, serverCaFile: files.serverCaFile, issuingRootFile };
  saveState(state);
  log(
    `acme: pebble pid ${acme.pebblePid} at ${directoryUrl} in ${ACME_NS}, up in ${seconds}s; ` +
      `challtestsrv pid ${acme.challtestsrvPid} answers ${defaultIPv4} for every name`,
  );
  return acme.endpoints;
}

/** Stops pebble and challtestsrv (by their recorded PIDs only) and deletes the CA's files; returns what it did. */
export async function stopAcme(state: LabState): Promise<string[]> {
  const acme = state.acme;
  if (!acme) return [];
  const removed: string[] = [];
  if (acme.pebblePid !== undefined && (await stopProcess(acme.pebblePid, "pebble", 10_000))) {
    removed.push(`pebble pid ${acme.pebblePid}`);
  }
  const challtestsrvPid = acme.challtestsrvPid;
  if (challtestsrvPid !== undefined && (await stopProcess(challtestsrvPid, CHALLTESTSRV_COMM, 10_000))) {
    removed.push(`pebble-challtestsrv pid ${challtestsrvPid}`);
  }
  fs.rmSync(acme.dir, { recursive: true, force: true });
  state.acme = undefined;
  saveState(state);
  return removed;
}

/** curl from inside the ACME namespace, trusting only the lab's ACME server CA. */
function acmeCurl(caFile: string, args: readonly string[]) {
  return tryRun("ip", ["netns", "exec", ACME_NS, "curl", "-sS", "--max-time", "2", "--cacert", caFile, ...args], {
    timeoutMs: 5_000,
  });
}

/**
 * From now on challtestsrv answers every name with `ipv4`, so pebble's HTTP-01
 * validation goes there: pointed away from the site, a renewal fails at the
 * CA as it would with the site's names pointing elsewhere; pointed back at
 * the site's address, it succeeds again.
 */
export function validateNamesAt(state: LabState, ipv4: string): void {
  if (state.acme?.challtestsrvPid === undefined) throw new Error("the lab's ACME CA is not running");
  const url = `http://${CHALLTESTSRV_MANAGEMENT}/set-default-ipv4`;
  const body = JSON.stringify({ ip: ipv4 });
  const result = tryRun("ip", ["netns", "exec", ACME_NS, "curl", "-sS", "--fail", "--max-time", "2", "-X", "POST", "-d", body, url], {
    timeoutMs: 5_000,
  });
  if (result.status !== 0) throw new Error(`challtestsrv's set-default-ipv4 ${ipv4}: ${result.stderr.trim() || `exit ${result.status}`}`);
  log(`acme: challtestsrv answers ${ipv4} for every name`);
}

/** How many orders pebble has taken since it started (each certificate issuance begins with one). */
export function ordersPlaced(state: LabState): number {
  const logFile = state.acme ? path.join(state.acme.dir, "pebble.log") : "";
  if (!logFile || !fs.existsSync(logFile)) return 0;
  return (fs.readFileSync(logFile, "utf8").match(/^Pebble .* Added order "[^"]+" to the db$/gm) ?? []).length;
}

/** Where a droplet's image keeps a local CA, and the bundle `update-ca-certificates` builds from it. */
const LOCAL_CA_FILE = "usr/local/share/ca-certificates/foobar-lab-ca.crt";
const SYSTEM_BUNDLE = "etc/ssl/certs/ca-certificates.crt";

/**
 * Adds the lab's CA to a droplet's disk before it boots: as a local CA (so a
 * later `update-ca-certificates` keeps it) and in the system bundle now.
 */
export function installLabCa(state: LabState, merged: string): void {
  const caFile = state.acme ? acmeFiles(state.acme.dir).serverCaFile : undefined;
  if (!caFile || !fs.existsSync(caFile)) return;
  const ca = fs.readFileSync(caFile, "utf8");
  fs.mkdirSync(path.join(merged, path.dirname(LOCAL_CA_FILE)), { recursive: true });
  fs.writeFileSync(path.join(merged, LOCAL_CA_FILE), ca, { mode: 0o644 });
  const bundle = path.join(merged, SYSTEM_BUNDLE);
  const current = fs.existsSync(bundle) ? fs.readFileSync(bundle, "utf8") : "";
  if (!current.includes(ca.trim())) fs.writeFileSync(bundle, current + (current.endsWith("\n") || current === "" ? "" : "\n") + ca);
}
