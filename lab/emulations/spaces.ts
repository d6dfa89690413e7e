/**
 * DigitalOcean Spaces, emulated for the lab: the one bucket the stack's
 * backups go to, over the S3 API, as rclone's `DigitalOcean` provider calls it.
 *
 * - `https://<bucket>.<region>.digitaloceanspaces.com/<key>` (virtual-host
 *   style, what rclone sends) and `https://<region>.digitaloceanspaces.com/<bucket>/<key>`
 *   (path style);
 * - objects: PutObject, GetObject (with `Range`), HeadObject, DeleteObject,
 *   CopyObject within the bucket; ListObjects V1 and V2 (prefix, delimiter,
 *   max-keys, continuation); multipart uploads (create, upload part,
 *   complete, abort), which `rclone rcat` uses for a stream of unknown size;
 * - every request signed with AWS Signature Version 4 (header or presigned
 *   URL) by the stack's one Spaces key: another key is 403
 *   InvalidAccessKeyId, a wrong secret 403 SignatureDoesNotMatch, no
 *   signature 403 AccessDenied; a signed payload hash is checked too;
 * - any other bucket is 404 NoSuchBucket (creating one 403).
 *
 * Not emulated: other buckets, ACLs and policies, CORS, lifecycle rules,
 * ListObjectVersions and GET of an old version (an overwrite or a delete
 * keeps the previous version on disk, under `data/versions/`, where a check
 * can find it), aws-chunked payloads, the clock-skew check, Spaces' CDN and
 * its rate limits. Bucket names with dots do not match the wildcard certificate.
 *
 * One server (spaces-server.ts, as `nobody`) in its own namespace (`lab-spaces`)
 * on the lab's "internet", HTTPS with a certificate for every Spaces region
 * from the lab's CA (acme.ts; every droplet trusts it); the lab's DNS answers
 * the region's endpoint and the bucket's name with its address. Objects live
 * under `<state dir>/spaces/data`, deleted by `down`. Nothing here ever
 * reaches the real Spaces: the lab has no route out.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { NOBODY_ID, spawnUnprivileged, stopServer, waitUntilServing } from "../host/processes";
import { log, run, tryRun } from "../host/shell";
import { LabState, saveState } from "../host/state";
import { SPACES_ADDRESS, SPACES_NS, stateDir } from "../settings";
import { SPACES_DOMAIN, SpacesCredentials } from "./spaces-s3";
import type { LabSpaces } from "./terraform";

export const SPACES_PORT = 443;

/** The S3 endpoint of a region, as `RCLONE_CONFIG_<remote>_ENDPOINT` names it without the scheme. */
export function spacesHostName(region: string): string {
  return `${region}.${SPACES_DOMAIN}`;
}

/** The names a Spaces certificate for `regions` covers: each endpoint and every bucket under it. */
export function spacesCertificateNames(regions: readonly string[]): string[] {
  return regions.flatMap((region) => [spacesHostName(region), `*.${spacesHostName(region)}`]);
}

/** The lab DNS's lines for the bucket: its region's endpoint and its virtual-host name, both at the emulation. */
export function spacesHostsLines(spaces: Pick<LabSpaces, "bucket" | "region"> | undefined): string[] {
  if (!spaces) return [];
  return [`${SPACES_ADDRESS} ${spacesHostName(spaces.region)}`, `${SPACES_ADDRESS} ${spaces.bucket}.${spacesHostName(spaces.region)}`];
}

/** What the Spaces server reads at start. */
export interface SpacesServerConfig extends SpacesCredentials {
  readonly address: string;
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly region: string;
  /** Objects, old versions and multipart uploads in progress (see spaces-server.ts). */
  readonly dataDir: string;
  /** When the bucket was "created", for ListBuckets. */
  readonly createdAt: string;
}

/** The server's request log: one line a request (never a secret or a signature). */
export function spacesLogFile(dir: string): string {
  return path.join(dir, "requests.log");
}

/** Where the server listens and keeps its files; the lab's own unless a test gives its own namespace. */
export interface SpacesPlace {
  readonly ns: string;
  readonly address: string;
  readonly dir: string;
}

/**
 * Writes the config (readable by `nobody` only: it holds the secret), starts
 * the server as `nobody` in `place.ns` and waits until it listens.
 *
 * @returns the server's PID.
 */
export async function serveSpaces(
  place: SpacesPlace,
  spaces: LabSpaces,
  tls: { certFile: string; keyFile: string },
  onPid: (pid: number) => void = () => undefined,
): Promise<number> {
  fs.mkdirSync(place.dir, { recursive: true, mode: 0o700 });
  fs.chownSync(place.dir, NOBODY_ID, NOBODY_ID);
  const config: SpacesServerConfig = {
    address: place.address,
    port: SPACES_PORT,
    certFile: tls.certFile,
    keyFile: tls.keyFile,
    bucket: spaces.bucket,
    region: spaces.region,
    accessKeyId: spaces.accessKeyId,
    secretAccessKey: spaces.secretAccessKey,
    dataDir: path.join(place.dir, "data"),
    createdAt: new Date().toISOString(),
  };
  const configFile = path.join(place.dir, "config.json");
  fs.writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
  fs.chownSync(configFile, NOBODY_ID, NOBODY_ID);
  // Only inside the server's namespace: lets `nobody` bind 443 there.
  run("ip", ["netns", "exec", place.ns, "sysctl", "-qw", `net.ipv4.ip_unprivileged_port_start=${SPACES_PORT}`]);
  const logFile = spacesLogFile(place.dir);
  const server = path.join(__dirname, "spaces-server.ts");
  const tsNode = require.resolve("ts-node/register/transpile-only");
  const pid = spawnUnprivileged(place.ns, process.execPath, ["-r", tsNode, server, configFile], {}, logFile);
  onPid(pid);
  await waitUntilServing(
    place.ns,
    "the Spaces emulator",
    pid,
    "node",
    logFile,
    () => tryRun("ip", ["netns", "exec", place.ns, "ss", "-Hltn", `src ${place.address}:${SPACES_PORT}`]).stdout.trim() !== "",
  );
  return pid;
}

/** Starts the lab's Spaces in `lab-spaces` (its namespace must exist) for the stack's bucket. */
export async function startSpaces(state: LabState, spaces: LabSpaces, tls: { certFile: string; keyFile: string }): Promise<void> {
  const dir = path.join(stateDir(), "spaces");
  state.spaces = { dir };
  saveState(state);
  const pid = await serveSpaces({ ns: SPACES_NS, address: SPACES_ADDRESS, dir }, spaces, tls, (started) => {
    state.spaces = { dir, pid: started };
    saveState(state);
  });
  log(`spaces: https://${spaces.bucket}.${spacesHostName(spaces.region)}/ at ${SPACES_ADDRESS} in ${SPACES_NS}, pid ${pid}`);
}

/** The request log of the lab's Spaces (host path), undefined while it is not up. */
export function spacesLog(state: LabState): string | undefined {
  return state.spaces ? spacesLogFile(state.spaces.dir) : undefined;
}

/** Stops the Spaces emulator (by its recorded PID) and deletes its files and objects; returns what it did. */
export async function stopSpaces(state: LabState): Promise<string[]> {
  const removed = await stopServer(state.spaces, "node", "Spaces emulator");
  state.spaces = undefined;
  saveState(state);
  return removed;
}
