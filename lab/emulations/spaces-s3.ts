/**
 * The S3 protocol as the lab's Spaces emulation speaks it (spaces.ts), pure:
 * which operation a request is, whether its AWS Signature Version 4 is right,
 * the XML of answers and errors, and ListObjects pages. The server
 * (spaces-server.ts) does the file I/O.
 *
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
 * @see https://docs.digitalocean.com/products/spaces/reference/s3-compatibility/
 */
import * as crypto from "node:crypto";

/** What the S3 server checks requests against: one bucket, one key pair. */
export interface SpacesCredentials {
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** The parent domain of every Spaces endpoint. */
export const SPACES_DOMAIN = "digitaloceanspaces.com";

/** An S3 error: the HTTP status and the `Code` S3 gives it. */
export class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What a request asks for, once host and path are read. */
export type S3Operation =
  | { readonly op: "ListBuckets" }
  | { readonly op: "CreateBucket" | "HeadBucket" | "GetBucketLocation" | "GetBucketVersioning" | "ListMultipartUploads" }
  | { readonly op: "ListObjects"; readonly v2: boolean }
  | { readonly op: "PutObject" | "CopyObject" | "GetObject" | "HeadObject" | "DeleteObject"; readonly key: string }
  | { readonly op: "CreateMultipartUpload"; readonly key: string }
  | { readonly op: "UploadPart"; readonly key: string; readonly uploadId: string; readonly partNumber: number }
  | { readonly op: "CompleteMultipartUpload" | "AbortMultipartUpload"; readonly key: string; readonly uploadId: string };

/** A request as the server has it: nothing read from the body. */
export interface S3Request {
  readonly method: string;
  /** The request target as sent: raw path and query. */
  readonly url: string;
  /** Lower-case names, as node gives them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

function header(request: S3Request, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

/** The query as decoded pairs, in the order sent. */
export function queryPairs(url: string): [string, string][] {
  const query = url.includes("?") ? url.slice(url.indexOf("?") + 1) : "";
  return query
    .split("&")
    .filter((pair) => pair !== "")
    .map((pair) => {
      const eq = pair.indexOf("=");
      const decode = (text: string) => decodeURIComponent(text.replace(/\+/g, " "));
      return eq < 0 ? [decode(pair), ""] : [decode(pair.slice(0, eq)), decode(pair.slice(eq + 1))];
    });
}

/**
 * The bucket and key a request names: virtual-host style
 * (`<bucket>.<region>.digitaloceanspaces.com/<key>`, what rclone's
 * DigitalOcean provider sends) or path style (`<region>.digitaloceanspaces.com/<bucket>/<key>`,
 * or an address as host).
 */
export function bucketAndKey(host: string, url: string): { bucket?: string; key: string } {
  const rawPath = url.split("?")[0] ?? "/";
  const path = decodeURIComponent(rawPath).replace(/^\//, "");
  const name = host.replace(/:\d+$/, "").toLowerCase();
  const vhost = new RegExp(`^(.+)\\.[a-z0-9]+\\.${SPACES_DOMAIN.replace(/\./g, "\\.")}$`).exec(name);
  if (vhost) return { bucket: vhost[1], key: path };
  const slash = path.indexOf("/");
  if (path === "") return { key: "" };
  return slash < 0 ? { bucket: path, key: "" } : { bucket: path.slice(0, slash), key: path.slice(slash + 1) };
}

/**
 * Which operation a request is.
 *
 * @throws S3Error 404 NoSuchBucket for any bucket but the one served, 501 for what is not emulated.
 */
export function route(request: S3Request, bucketServed: string): S3Operation {
  const { bucket, key } = bucketAndKey(header(request, "host") ?? "", request.url);
  const query = new Map(queryPairs(request.url));
  const method = request.method.toUpperCase();
  if (bucket === undefined) {
    if (method === "GET") return { op: "ListBuckets" };
    throw new S3Error(405, "MethodNotAllowed", `${method} is not allowed on the service`);
  }
  if (bucket !== bucketServed) {
    if (method === "PUT" && key === "") throw new S3Error(403, "AccessDenied", `this key may not create bucket ${bucket}`);
    throw new S3Error(404, "NoSuchBucket", `The specified bucket does not exist: ${bucket}`);
  }
  if (key === "") {
    if (method === "PUT") return { op: "CreateBucket" };
    if (method === "HEAD") return { op: "HeadBucket" };
    if (method === "GET") {
      if (query.has("location")) return { op: "GetBucketLocation" };
      if (query.has("versioning")) return { op: "GetBucketVersioning" };
      if (query.has("uploads")) return { op: "ListMultipartUploads" };
      const other = [...query.keys()].find(
        (name) =>
          ![
            "list-type",
            "prefix",
            "delimiter",
            "max-keys",
            "continuation-token",
            "start-after",
            "marker",
            "encoding-type",
            "fetch-owner",
          ].includes(name),
      );
      if (other) throw new S3Error(501, "NotImplemented", `the lab's Spaces does not emulate GET ?${other} on a bucket`);
      return { op: "ListObjects", v2: query.get("list-type") === "2" };
    }
    throw new S3Error(501, "NotImplemented", `the lab's Spaces does not emulate ${method} on a bucket`);
  }
  const uploadId = query.get("uploadId");
  switch (method) {
    case "PUT":
      if (uploadId !== undefined) {
        const partNumber = Number(query.get("partNumber"));
        if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
          throw new S3Error(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
        }
        return { op: "UploadPart", key, uploadId, partNumber };
      }
      return header(request, "x-amz-copy-source") !== undefined ? { op: "CopyObject", key } : { op: "PutObject", key };
    case "GET":
      return { op: "GetObject", key };
    case "HEAD":
      return { op: "HeadObject", key };
    case "DELETE":
      return uploadId !== undefined ? { op: "AbortMultipartUpload", key, uploadId } : { op: "DeleteObject", key };
    case "POST":
      if (query.has("uploads")) return { op: "CreateMultipartUpload", key };
      if (uploadId !== undefined) return { op: "CompleteMultipartUpload", key, uploadId };
      throw new S3Error(501, "NotImplemented", "the lab's Spaces emulates POST only for multipart uploads");
    default:
      throw new S3Error(405, "MethodNotAllowed", `${method} is not allowed on an object`);
  }
}

/** S3's URI encoding: every byte but `A-Za-z0-9-._~` as `%XX` (upper case); `/` kept where asked. */
export function awsEncode(text: string, keepSlash = false): string {
  return Array.from(Buffer.from(text, "utf8"))
    .map((byte) => {
      const char = String.fromCharCode(byte);
      if (/[A-Za-z0-9\-._~]/.test(char) || (keepSlash && char === "/")) return char;
      return "%" + byte.toString(16).toUpperCase().padStart(2, "0");
    })
    .join("");
}

const hmac = (key: crypto.BinaryLike, data: string) => crypto.createHmac("sha256", key).update(data, "utf8").digest();
const sha256Hex = (data: string) => crypto.createHash("sha256").update(data, "utf8").digest("hex");

/** The parts of a SigV4 signature, from the Authorization header or a presigned URL's query. */
export interface SignatureParts {
  readonly accessKeyId: string;
  /** `date/region/service/aws4_request`. */
  readonly scope: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
  readonly amzDate: string;
  readonly payloadHash: string;
  readonly presigned: boolean;
}

/** @throws S3Error 403 AccessDenied when the request carries no SigV4 signature. */
export function signatureParts(request: S3Request): SignatureParts {
  const authorization = header(request, "authorization");
  if (authorization !== undefined) {
    const match = /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(
      authorization.trim(),
    );
    if (!match) throw new S3Error(400, "AuthorizationHeaderMalformed", "the lab's Spaces accepts only AWS4-HMAC-SHA256 signatures");
    return {
      accessKeyId: match[1]!,
      scope: match[2]!,
      signedHeaders: match[3]!.split(";"),
      signature: match[4]!,
      amzDate: header(request, "x-amz-date") ?? "",
      payloadHash: header(request, "x-amz-content-sha256") ?? "UNSIGNED-PAYLOAD",
      presigned: false,
    };
  }
  const query = new Map(queryPairs(request.url));
  const credential = query.get("X-Amz-Credential");
  if (query.get("X-Amz-Algorithm") === "AWS4-HMAC-SHA256" && credential?.includes("/")) {
    return {
      accessKeyId: credential.slice(0, credential.indexOf("/")),
      scope: credential.slice(credential.indexOf("/") + 1),
      signedHeaders: (query.get("X-Amz-SignedHeaders") ?? "host").split(";"),
      signature: query.get("X-Amz-Signature") ?? "",
      amzDate: query.get("X-Amz-Date") ?? "",
      payloadHash: "UNSIGNED-PAYLOAD",
      presigned: true,
    };
  }
  throw new S3Error(403, "AccessDenied", "Anonymous access is not allowed");
}

/** The SigV4 canonical request, with the path encoded by S3's rules (`canonicalPath` overrides). */
export function canonicalRequest(request: S3Request, parts: SignatureParts, canonicalPath?: string): string {
  const rawPath = request.url.split("?")[0] ?? "/";
  const path =
    canonicalPath ??
    rawPath
      .split("/")
      .map((segment) => awsEncode(decodeURIComponent(segment)))
      .join("/");
  const query = queryPairs(request.url)
    .filter(([name]) => !(parts.presigned && name === "X-Amz-Signature"))
    .map(([name, value]) => [awsEncode(name), awsEncode(value)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
  const headers = parts.signedHeaders.map((name) => `${name}:${(header(request, name) ?? "").trim().replace(/\s+/g, " ")}\n`).join("");
  return [request.method.toUpperCase(), path, query, headers, parts.signedHeaders.join(";"), parts.payloadHash].join("\n");
}

/** The signature a client holding `secret` computes for a canonical request. */
export function sign(secret: string, parts: Pick<SignatureParts, "scope" | "amzDate">, canonical: string): string {
  const [date = "", region = "", service = "", terminator = ""] = parts.scope.split("/");
  const stringToSign = ["AWS4-HMAC-SHA256", parts.amzDate, parts.scope, sha256Hex(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), terminator);
  return crypto.createHmac("sha256", key).update(stringToSign, "utf8").digest("hex");
}

/**
 * Checks a request's SigV4 signature against the one key pair served
 * (the payload's hash is the server's to check, as it streams the body).
 *
 * @returns the payload hash the signature covers (`UNSIGNED-PAYLOAD` or 64 hex digits).
 * @throws S3Error 403 InvalidAccessKeyId / SignatureDoesNotMatch / AccessDenied, 501 for aws-chunked payloads.
 */
export function checkSignature(request: S3Request, credentials: SpacesCredentials): string {
  const parts = signatureParts(request);
  if (parts.accessKeyId !== credentials.accessKeyId) {
    throw new S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
  }
  if (!parts.signedHeaders.includes("host")) throw new S3Error(403, "AccessDenied", "the signature must cover the host header");
  if (parts.payloadHash.startsWith("STREAMING-")) {
    throw new S3Error(501, "NotImplemented", "the lab's Spaces does not emulate aws-chunked (streaming-signed) payloads");
  }
  if (parts.payloadHash !== "UNSIGNED-PAYLOAD" && !/^[0-9a-f]{64}$/.test(parts.payloadHash)) {
    throw new S3Error(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 in hex");
  }
  const expected = [canonicalRequest(request, parts), canonicalRequest(request, parts, request.url.split("?")[0] ?? "/")].map((c) =>
    sign(credentials.secretAccessKey, parts, c),
  );
  const given = Buffer.from(parts.signature);
  if (!expected.some((e) => e.length === given.length && crypto.timingSafeEqual(Buffer.from(e), given))) {
    throw new S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.");
  }
  return parts.payloadHash;
}

/** XML text with `& < > " '` escaped. */
export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** XML text with its entities and character references (`&quot;`, `&#34;`, `&#x22;`, …) replaced. */
export function xmlUnescape(text: string): string {
  const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, ref: string) =>
    ref.startsWith("#x")
      ? String.fromCodePoint(parseInt(ref.slice(2), 16))
      : ref.startsWith("#")
        ? String.fromCodePoint(Number(ref.slice(1)))
        : (named[ref] ?? whole),
  );
}

/** An XML document from nested plain values: arrays repeat their element, `undefined` is left out. */
export type XmlValue = string | number | boolean | undefined | XmlValue[] | { [name: string]: XmlValue };

function element(name: string, value: XmlValue): string {
  if (value === undefined) return "";
  if (Array.isArray(value)) return value.map((item) => element(name, item)).join("");
  if (typeof value === "object")
    return `<${name}>${Object.entries(value)
      .map(([n, v]) => element(n, v))
      .join("")}</${name}>`;
  return `<${name}>${xmlEscape(String(value))}</${name}>`;
}

const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";

/** A whole S3 XML answer: `<Root xmlns="…">…</Root>`. */
export function xmlDocument(root: string, body: { [name: string]: XmlValue }): string {
  const inner = Object.entries(body)
    .map(([n, v]) => element(n, v))
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${S3_XMLNS}">${inner}</${root}>`;
}

/** An S3 error body. */
export function errorXml(error: S3Error, resource: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${element("Error", { Code: error.code, Message: error.message, Resource: resource, RequestId: requestId })}`;
}

/** The parts a CompleteMultipartUpload body lists, in its order. */
export function completedParts(body: string): { partNumber: number; etag: string }[] {
  const parts: { partNumber: number; etag: string }[] = [];
  for (const match of body.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
    const inner = match[1] ?? "";
    const partNumber = Number(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(inner)?.[1]);
    const etag = xmlUnescape(/<ETag>([\s\S]*?)<\/ETag>/.exec(inner)?.[1] ?? "")
      .replace(/"/g, "")
      .trim();
    parts.push({ partNumber, etag });
  }
  if (parts.length === 0)
    throw new S3Error(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema");
  for (let i = 1; i < parts.length; i++) {
    if (parts[i]!.partNumber <= parts[i - 1]!.partNumber) {
      throw new S3Error(400, "InvalidPartOrder", "The list of parts was not in ascending order.");
    }
  }
  return parts;
}

/** What a listing shows of an object. */
export interface ObjectSummary {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: string;
}

/** One page of a listing. */
export interface ListingPage {
  readonly contents: readonly ObjectSummary[];
  readonly commonPrefixes: readonly string[];
  readonly truncated: boolean;
  /** The last key or common prefix on the page: where the next page starts (after it). */
  readonly next?: string;
}

/**
 * One page of the objects (`sorted` by key, as S3 lists them) under `prefix`
 * after `after`, with keys that share a prefix up to `delimiter` rolled into
 * one common prefix; `max` entries at most, contents and prefixes together.
 */
export function listPage(sorted: readonly ObjectSummary[], prefix: string, delimiter: string, after: string, max: number): ListingPage {
  const contents: ObjectSummary[] = [];
  const commonPrefixes: string[] = [];
  let last: string | undefined;
  for (const object of sorted) {
    if (!object.key.startsWith(prefix) || object.key <= after) continue;
    // A page that ended on a common prefix goes on after every key under it.
    if (after !== "" && delimiter !== "" && after.endsWith(delimiter) && object.key.startsWith(after)) continue;
    const rest = object.key.slice(prefix.length);
    const cut = delimiter === "" ? -1 : rest.indexOf(delimiter);
    const entry = cut < 0 ? object.key : prefix + rest.slice(0, cut + delimiter.length);
    if (entry === last) continue;
    if (contents.length + commonPrefixes.length >= max) return { contents, commonPrefixes, truncated: true, next: last };
    if (cut < 0) contents.push(object);
    else commonPrefixes.push(entry);
    last = entry;
  }
  return { contents, commonPrefixes, truncated: false };
}

/** The ListObjects (V1 or V2) answer for a page; `query` is the request's. */
export function listingXml(bucket: string, query: ReadonlyMap<string, string>, v2: boolean, page: ListingPage, maxKeys: number): string {
  const url = query.get("encoding-type") === "url";
  const encode = (text: string) => (url ? awsEncode(text, true) : text);
  const common = {
    Name: bucket,
    Prefix: encode(query.get("prefix") ?? ""),
    Delimiter: query.has("delimiter") ? encode(query.get("delimiter")!) : undefined,
    MaxKeys: maxKeys,
    EncodingType: url ? "url" : undefined,
    IsTruncated: page.truncated,
  };
  const contents = page.contents.map((o) => ({
    Key: encode(o.key),
    LastModified: o.lastModified,
    ETag: `"${o.etag}"`,
    Size: o.size,
    StorageClass: "STANDARD",
  }));
  const prefixes = page.commonPrefixes.map((p) => ({ Prefix: encode(p) }));
  if (v2) {
    return xmlDocument("ListBucketResult", {
      ...common,
      KeyCount: page.contents.length + page.commonPrefixes.length,
      ContinuationToken: query.get("continuation-token"),
      NextContinuationToken: page.truncated && page.next !== undefined ? Buffer.from(page.next).toString("base64url") : undefined,
      StartAfter: query.has("start-after") ? encode(query.get("start-after")!) : undefined,
      Contents: contents,
      CommonPrefixes: prefixes,
    });
  }
  return xmlDocument("ListBucketResult", {
    ...common,
    Marker: encode(query.get("marker") ?? ""),
    NextMarker: page.truncated && page.next !== undefined ? encode(page.next) : undefined,
    Contents: contents,
    CommonPrefixes: prefixes,
  });
}

/** Where a ListObjects request starts: after its continuation token (V2), start-after or marker. */
export function listStart(query: ReadonlyMap<string, string>, v2: boolean): string {
  if (!v2) return query.get("marker") ?? "";
  const token = query.get("continuation-token");
  if (token !== undefined) return Buffer.from(token, "base64url").toString("utf8");
  return query.get("start-after") ?? "";
}

/** `max-keys`: 1000 unless a smaller whole number is asked for. */
export function maxKeys(query: ReadonlyMap<string, string>): number {
  const raw = query.get("max-keys");
  if (raw === undefined) return 1000;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new S3Error(400, "InvalidArgument", "max-keys must be a whole number");
  return Math.min(value, 1000);
}

/** The byte range a `Range: bytes=…` header asks of an object of `size` bytes; undefined for the whole. */
export function byteRange(range: string | undefined, size: number): { start: number; end: number } | undefined {
  if (range === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (match[1] === "") {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) throw new S3Error(416, "InvalidRange", "The requested range is not satisfiable");
  return { start, end };
}
