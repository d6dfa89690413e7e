/**
 * The lab's Spaces process (see spaces.ts): an S3 server over HTTPS for one
 * bucket and one key pair, objects as files under its data directory, one
 * log line a request (never a secret or a signature).
 *
 *   node -r ts-node/register/transpile-only lab/emulations/spaces-server.ts CONFIG.json
 *
 * Layout of the data directory:
 * - `objects/<sha256 of the key>.data` and `.json` (key, size, ETag, date, type, `x-amz-meta-*`);
 * - `versions/<sha256 of the key>/<time>.data` and `.json`: every version an
 *   overwrite or a delete replaced, never served, so a check can show that a
 *   deleted backup is still there, as a versioned bucket keeps it;
 * - `uploads/<upload id>/`: a multipart upload's key and parts until it completes or is aborted;
 * - `tmp/`: bodies being received.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";

import type { SpacesServerConfig } from "./spaces";
import {
  byteRange,
  checkSignature,
  completedParts,
  errorXml,
  listingXml,
  listPage,
  listStart,
  maxKeys,
  ObjectSummary,
  queryPairs,
  route,
  S3Error,
  S3Operation,
  xmlDocument,
} from "./spaces-s3";

/** What the server keeps of an object beside its bytes. */
interface ObjectMeta extends ObjectSummary {
  readonly contentType: string;
  /** `x-amz-meta-*` headers, names in lower case. */
  readonly userMetadata: Record<string, string>;
}

/** A multipart part needs 5 MiB unless it is the last, as on S3 and Spaces. */
const MIN_PART_SIZE = 5 * 1024 * 1024;

const config = JSON.parse(fs.readFileSync(process.argv[2] ?? "", "utf8")) as SpacesServerConfig;
const dirs = {
  objects: path.join(config.dataDir, "objects"),
  versions: path.join(config.dataDir, "versions"),
  uploads: path.join(config.dataDir, "uploads"),
  tmp: path.join(config.dataDir, "tmp"),
};
for (const dir of Object.values(dirs)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
const line = (text: string) => process.stdout.write(`${new Date().toISOString()} ${text}\n`);

const keyHash = (key: string) => crypto.createHash("sha256").update(key, "utf8").digest("hex");
const objectPath = (key: string, ext: "data" | "json") => path.join(dirs.objects, `${keyHash(key)}.${ext}`);

/** Every object, by key: read from the data directory at start, kept in step after. */
const index = new Map<string, ObjectMeta>();
for (const name of fs.readdirSync(dirs.objects).filter((n) => n.endsWith(".json"))) {
  const meta = JSON.parse(fs.readFileSync(path.join(dirs.objects, name), "utf8")) as ObjectMeta;
  index.set(meta.key, meta);
}

let tmpCounter = 0;
const tmpFile = () => path.join(dirs.tmp, `${process.pid}-${++tmpCounter}`);

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(value));
  fs.renameSync(`${file}.tmp`, file);
}

/** Moves the current version of `key` (if any) under versions/, so nothing is ever lost. */
function keepPreviousVersion(key: string): void {
  const current = index.get(key);
  if (!current) return;
  const dir = path.join(dirs.versions, keyHash(key));
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = `${new Date().toISOString().replace(/[:.]/g, "-")}-${crypto.randomBytes(4).toString("hex")}`;
  fs.renameSync(objectPath(key, "data"), path.join(dir, `${stamp}.data`));
  fs.renameSync(objectPath(key, "json"), path.join(dir, `${stamp}.json`));
  index.delete(key);
}

/** Makes a received file the current version of `key`. */
function commitObject(key: string, file: string, meta: ObjectMeta): void {
  keepPreviousVersion(key);
  fs.renameSync(file, objectPath(key, "data"));
  writeJson(objectPath(key, "json"), meta);
  index.set(key, meta);
}

function userMetadata(request: IncomingMessage): Record<string, string> {
  const found: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (name.startsWith("x-amz-meta-") && value !== undefined) found[name] = Array.isArray(value) ? value.join(",") : value;
  }
  return found;
}

/**
 * Streams the request body to a new file, hashing it on the way, and checks
 * it against the signed payload hash and any `Content-MD5`.
 */
async function receiveBody(request: IncomingMessage, payloadHash: string): Promise<{ file: string; size: number; md5: Buffer }> {
  const file = tmpFile();
  const md5 = crypto.createHash("md5");
  const sha256 = crypto.createHash("sha256");
  let size = 0;
  request.on("data", (chunk: Buffer) => {
    md5.update(chunk);
    sha256.update(chunk);
    size += chunk.length;
  });
  try {
    await pipeline(request, fs.createWriteStream(file, { mode: 0o600 }));
  } catch (error) {
    fs.rmSync(file, { force: true });
    throw error;
  }
  const digest = md5.digest();
  const problem =
    payloadHash !== "UNSIGNED-PAYLOAD" && sha256.digest("hex") !== payloadHash
      ? new S3Error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
      : request.headers["content-md5"] !== undefined && request.headers["content-md5"] !== digest.toString("base64")
        ? new S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
        : undefined;
  if (problem) {
    fs.rmSync(file, { force: true });
    throw problem;
  }
  return { file, size, md5: digest };
}

async function smallBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > 1024 * 1024) throw new S3Error(400, "MaxMessageLengthExceeded", "Your request was too big.");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function sendXml(response: ServerResponse, status: number, xml: string): void {
  response.writeHead(status, { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(xml) });
  response.end(xml);
}

function objectHeaders(meta: ObjectMeta): Record<string, string | number> {
  return {
    "Content-Type": meta.contentType,
    ETag: `"${meta.etag}"`,
    "Last-Modified": new Date(meta.lastModified).toUTCString(),
    "Accept-Ranges": "bytes",
    ...meta.userMetadata,
  };
}

function found(key: string): ObjectMeta {
  const meta = index.get(key);
  if (!meta) throw new S3Error(404, "NoSuchKey", "The specified key does not exist.");
  return meta;
}

function uploadDir(uploadId: string, key: string): string {
  const dir = path.join(dirs.uploads, uploadId.replace(/[^0-9a-f]/g, ""));
  const meta = path.join(dir, "upload.json");
  if (
    !/^[0-9a-f]{32}$/.test(uploadId) ||
    !fs.existsSync(meta) ||
    (JSON.parse(fs.readFileSync(meta, "utf8")) as { key: string }).key !== key
  ) {
    throw new S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist.");
  }
  return dir;
}

/** Answers one authenticated request; returns the status sent. */
async function handle(operation: S3Operation, payloadHash: string, request: IncomingMessage, response: ServerResponse): Promise<number> {
  const query = new Map(queryPairs(request.url ?? "/"));
  const now = new Date().toISOString();
  switch (operation.op) {
    case "ListBuckets":
      sendXml(
        response,
        200,
        xmlDocument("ListAllMyBucketsResult", {
          Owner: { ID: config.accessKeyId, DisplayName: config.accessKeyId },
          Buckets: { Bucket: [{ Name: config.bucket, CreationDate: config.createdAt }] },
        }),
      );
      return 200;
    case "CreateBucket":
      throw new S3Error(
        409,
        "BucketAlreadyOwnedByYou",
        "Your previous request to create the named bucket succeeded and you already own it.",
      );
    case "HeadBucket":
      response.writeHead(200).end();
      return 200;
    case "GetBucketLocation":
      sendXml(
        response,
        200,
        xmlDocument("LocationConstraint", {}).replace("></LocationConstraint>", `>${config.region}</LocationConstraint>`),
      );
      return 200;
    case "GetBucketVersioning":
      sendXml(response, 200, xmlDocument("VersioningConfiguration", { Status: "Enabled" }));
      return 200;
    case "ListMultipartUploads":
      sendXml(response, 200, xmlDocument("ListMultipartUploadsResult", { Bucket: config.bucket, IsTruncated: false }));
      return 200;
    case "ListObjects": {
      const sorted = [...index.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const max = maxKeys(query);
      const page = listPage(sorted, query.get("prefix") ?? "", query.get("delimiter") ?? "", listStart(query, operation.v2), max);
      sendXml(response, 200, listingXml(config.bucket, query, operation.v2, page, max));
      return 200;
    }
    case "PutObject": {
      const body = await receiveBody(request, payloadHash);
      const meta: ObjectMeta = {
        key: operation.key,
        size: body.size,
        etag: body.md5.toString("hex"),
        lastModified: now,
        contentType: request.headers["content-type"] ?? "binary/octet-stream",
        userMetadata: userMetadata(request),
      };
      commitObject(operation.key, body.file, meta);
      response.writeHead(200, { ETag: `"${meta.etag}"` }).end();
      return 200;
    }
    case "CopyObject": {
      const source = decodeURIComponent(String(request.headers["x-amz-copy-source"]).split("?")[0] ?? "").replace(/^\//, "");
      const sourceKey = source.startsWith(`${config.bucket}/`) ? source.slice(config.bucket.length + 1) : undefined;
      if (sourceKey === undefined) throw new S3Error(403, "AccessDenied", `this key may only copy within ${config.bucket}`);
      const from = found(sourceKey);
      const file = tmpFile();
      fs.copyFileSync(objectPath(sourceKey, "data"), file);
      const replace = request.headers["x-amz-metadata-directive"] === "REPLACE";
      const meta: ObjectMeta = {
        ...from,
        key: operation.key,
        lastModified: now,
        contentType: replace ? (request.headers["content-type"] ?? from.contentType) : from.contentType,
        userMetadata: replace ? userMetadata(request) : from.userMetadata,
      };
      commitObject(operation.key, file, meta);
      sendXml(response, 200, xmlDocument("CopyObjectResult", { LastModified: now, ETag: `"${meta.etag}"` }));
      return 200;
    }
    case "GetObject":
    case "HeadObject": {
      const meta = found(operation.key);
      const range = byteRange(request.headers.range, meta.size);
      const headers = objectHeaders(meta);
      if (range) {
        headers["Content-Range"] = `bytes ${range.start}-${range.end}/${meta.size}`;
      }
      headers["Content-Length"] = range ? range.end - range.start + 1 : meta.size;
      const status = range ? 206 : 200;
      response.writeHead(status, headers);
      if (operation.op === "HeadObject" || meta.size === 0) {
        response.end();
        return status;
      }
      await pipeline(fs.createReadStream(objectPath(operation.key, "data"), range ?? {}), response);
      return status;
    }
    case "DeleteObject":
      keepPreviousVersion(operation.key);
      response.writeHead(204).end();
      return 204;
    case "CreateMultipartUpload": {
      const uploadId = crypto.randomBytes(16).toString("hex");
      const dir = path.join(dirs.uploads, uploadId);
      fs.mkdirSync(dir, { mode: 0o700 });
      writeJson(path.join(dir, "upload.json"), {
        key: operation.key,
        contentType: request.headers["content-type"] ?? "binary/octet-stream",
        userMetadata: userMetadata(request),
      });
      sendXml(
        response,
        200,
        xmlDocument("InitiateMultipartUploadResult", { Bucket: config.bucket, Key: operation.key, UploadId: uploadId }),
      );
      return 200;
    }
    case "UploadPart": {
      const dir = uploadDir(operation.uploadId, operation.key);
      const body = await receiveBody(request, payloadHash);
      const part = path.join(dir, `part-${operation.partNumber}`);
      fs.renameSync(body.file, part);
      const etag = body.md5.toString("hex");
      writeJson(`${part}.json`, { etag, size: body.size });
      response.writeHead(200, { ETag: `"${etag}"` }).end();
      return 200;
    }
    case "AbortMultipartUpload":
      fs.rmSync(uploadDir(operation.uploadId, operation.key), { recursive: true, force: true });
      response.writeHead(204).end();
      return 204;
    case "CompleteMultipartUpload": {
      const dir = uploadDir(operation.uploadId, operation.key);
      const listed = completedParts(await smallBody(request));
      const parts = listed.map(({ partNumber, etag }, i) => {
        const file = path.join(dir, `part-${partNumber}`);
        if (!fs.existsSync(`${file}.json`)) throw new S3Error(400, "InvalidPart", `Part ${partNumber} was not uploaded.`);
        const stored = JSON.parse(fs.readFileSync(`${file}.json`, "utf8")) as { etag: string; size: number };
        if (stored.etag !== etag) throw new S3Error(400, "InvalidPart", `Part ${partNumber}'s ETag does not match.`);
        if (i < listed.length - 1 && stored.size < MIN_PART_SIZE) {
          throw new S3Error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.");
        }
        return { file, ...stored };
      });
      const file = tmpFile();
      const out = fs.openSync(file, "w", 0o600);
      try {
        const buffer = Buffer.alloc(1024 * 1024);
        for (const part of parts) {
          const input = fs.openSync(part.file, "r");
          let read: number;
          while ((read = fs.readSync(input, buffer, 0, buffer.length, null)) > 0) fs.writeSync(out, buffer, 0, read);
          fs.closeSync(input);
        }
      } finally {
        fs.closeSync(out);
      }
      const upload = JSON.parse(fs.readFileSync(path.join(dir, "upload.json"), "utf8")) as Pick<ObjectMeta, "contentType" | "userMetadata">;
      const etag =
        crypto
          .createHash("md5")
          .update(Buffer.concat(parts.map((p) => Buffer.from(p.etag, "hex"))))
          .digest("hex") + `-${parts.length}`;
      const meta: ObjectMeta = {
        key: operation.key,
        size: parts.reduce((sum, p) => sum + p.size, 0),
        etag,
        lastModified: now,
        ...upload,
      };
      commitObject(operation.key, file, meta);
      fs.rmSync(dir, { recursive: true, force: true });
      sendXml(
        response,
        200,
        xmlDocument("CompleteMultipartUploadResult", {
          Location: `https://${config.bucket}.${config.region}.digitaloceanspaces.com/${operation.key}`,
          Bucket: config.bucket,
          Key: operation.key,
          ETag: `"${etag}"`,
        }),
      );
      return 200;
    }
  }
}

let requests = 0;
const server = https.createServer({ cert: fs.readFileSync(config.certFile), key: fs.readFileSync(config.keyFile) }, (request, response) => {
  const requestId = `lab${(++requests).toString(16).padStart(13, "0")}`.toUpperCase();
  response.setHeader("x-amz-request-id", requestId);
  const from = (request.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
  const target = (request.url ?? "/").replace(/([?&]X-Amz-(?:Signature|Credential)=)[^&]*/g, "$1…");
  const started = Date.now();
  let op = "-";
  const answer = async (): Promise<number> => {
    const s3Request = { method: request.method ?? "GET", url: request.url ?? "/", headers: request.headers };
    const payloadHash = checkSignature(s3Request, config);
    const operation = route(s3Request, config.bucket);
    op = operation.op;
    return handle(operation, payloadHash, request, response);
  };
  answer()
    .catch((error: unknown) => {
      const s3 = error instanceof S3Error ? error : new S3Error(500, "InternalError", (error as Error).message);
      op = `${op} ${s3.code}`;
      if (response.headersSent) {
        response.destroy();
      } else if (request.method === "HEAD") {
        response.writeHead(s3.status, { "x-amz-error-code": s3.code }).end();
      } else {
        sendXml(response, s3.status, errorXml(s3, (request.url ?? "/").split("?")[0] ?? "/", requestId));
      }
      // Let the client finish sending so it reads the error instead of a reset.
      request.resume();
      return s3.status;
    })
    .then((status) => {
      line(`${from} ${request.method} ${request.headers.host ?? ""}${target} ${op} ${status} ${Date.now() - started}ms`);
    })
    .catch(() => undefined);
});
server.listen(config.port, config.address, () => line(`listening on ${config.address}:${config.port} for bucket ${config.bucket}`));
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  // Keep-alive connections would hold close() open.
  server.closeAllConnections();
});
