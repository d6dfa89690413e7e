import { renderZoneHosts } from "../../lab/emulations/dns";
import { spacesCertificateNames, spacesHostsLines } from "../../lab/emulations/spaces";
import {
  bucketAndKey,
  byteRange,
  checkSignature,
  completedParts,
  listingXml,
  listPage,
  ObjectSummary,
  route,
  S3Error,
  S3Request,
} from "../../lab/emulations/spaces-s3";
import { SPACES_REGIONS } from "../../settings";

/** AWS's published SigV4 example for S3 (GET Object with a Range header). */
const AWS_EXAMPLE = {
  credentials: {
    bucket: "examplebucket",
    accessKeyId: "AKIAIOSFODNN7EXAMPLE",
    secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  },
  request: {
    method: "GET",
    url: "/test.txt",
    headers: {
      host: "examplebucket.s3.amazonaws.com",
      range: "bytes=0-9",
      "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "x-amz-date": "20130524T000000Z",
      authorization:
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    },
  } satisfies S3Request,
};

function s3Error(action: () => unknown): S3Error {
  try {
    action();
  } catch (error) {
    if (error instanceof S3Error) return error;
    throw error;
  }
  throw new Error("no S3Error thrown");
}

describe("the Spaces emulation checks every request's SigV4 signature", () => {
  test("AWS's own example request is accepted", () => {
    expect(checkSignature(AWS_EXAMPLE.request, AWS_EXAMPLE.credentials)).toBe(AWS_EXAMPLE.request.headers["x-amz-content-sha256"]);
  });

  test("a wrong secret is 403 SignatureDoesNotMatch", () => {
    const error = s3Error(() => checkSignature(AWS_EXAMPLE.request, { ...AWS_EXAMPLE.credentials, secretAccessKey: "not-the-secret" }));
    expect([error.status, error.code]).toEqual([403, "SignatureDoesNotMatch"]);
  });

  test("a request changed after signing is 403 SignatureDoesNotMatch", () => {
    const error = s3Error(() => checkSignature({ ...AWS_EXAMPLE.request, url: "/other.txt" }, AWS_EXAMPLE.credentials));
    expect(error.code).toBe("SignatureDoesNotMatch");
  });

  test("another access key is 403 InvalidAccessKeyId", () => {
    const error = s3Error(() => checkSignature(AWS_EXAMPLE.request, { ...AWS_EXAMPLE.credentials, accessKeyId: "DO00SOMEONEELSE" }));
    expect([error.status, error.code]).toEqual([403, "InvalidAccessKeyId"]);
  });

  test("an unsigned request is 403 AccessDenied", () => {
    const error = s3Error(() => checkSignature({ method: "GET", url: "/test.txt", headers: { host: "x" } }, AWS_EXAMPLE.credentials));
    expect([error.status, error.code]).toEqual([403, "AccessDenied"]);
  });
});

describe("requests are routed by host and path, for the one bucket served", () => {
  const request = (method: string, url: string, host = "backups.nyc3.digitaloceanspaces.com", headers: Record<string, string> = {}) =>
    route({ method, url, headers: { host, ...headers } }, "backups");

  test("virtual-host style (rclone's DigitalOcean provider) and path style name the same object", () => {
    expect(bucketAndKey("backups.nyc3.digitaloceanspaces.com", "/db/base%201.bin")).toEqual({ bucket: "backups", key: "db/base 1.bin" });
    expect(bucketAndKey("nyc3.digitaloceanspaces.com:443", "/backups/db/base%201.bin")).toEqual({
      bucket: "backups",
      key: "db/base 1.bin",
    });
    expect(bucketAndKey("198.51.100.6", "/backups/db/x")).toEqual({ bucket: "backups", key: "db/x" });
  });

  test("a multipart upload is create, parts, complete or abort", () => {
    expect(request("POST", "/db/x?uploads")).toEqual({ op: "CreateMultipartUpload", key: "db/x" });
    expect(request("PUT", "/db/x?partNumber=3&uploadId=ab")).toEqual({ op: "UploadPart", key: "db/x", uploadId: "ab", partNumber: 3 });
    expect(request("POST", "/db/x?uploadId=ab")).toEqual({ op: "CompleteMultipartUpload", key: "db/x", uploadId: "ab" });
    expect(request("DELETE", "/db/x?uploadId=ab")).toEqual({ op: "AbortMultipartUpload", key: "db/x", uploadId: "ab" });
  });

  test("objects and listings", () => {
    expect(request("PUT", "/db/x")).toEqual({ op: "PutObject", key: "db/x" });
    expect(request("PUT", "/db/y", undefined, { "x-amz-copy-source": "/backups/db/x" })).toEqual({ op: "CopyObject", key: "db/y" });
    expect(request("GET", "/db/x")).toEqual({ op: "GetObject", key: "db/x" });
    expect(request("DELETE", "/db/x")).toEqual({ op: "DeleteObject", key: "db/x" });
    expect(request("GET", "/?list-type=2&prefix=db%2F")).toEqual({ op: "ListObjects", v2: true });
    expect(request("GET", "/backups?prefix=db", "nyc3.digitaloceanspaces.com")).toEqual({ op: "ListObjects", v2: false });
    expect(request("PUT", "/")).toEqual({ op: "CreateBucket" });
  });

  test("any other bucket does not exist, and cannot be created", () => {
    expect(s3Error(() => request("GET", "/x", "other.nyc3.digitaloceanspaces.com")).code).toBe("NoSuchBucket");
    expect(s3Error(() => request("PUT", "/other", "nyc3.digitaloceanspaces.com")).status).toBe(403);
  });

  test("what is not emulated says so (501), never succeeds quietly", () => {
    expect(s3Error(() => request("GET", "/?acl")).status).toBe(501);
    expect(s3Error(() => request("POST", "/?delete")).status).toBe(501);
  });
});

describe("listings", () => {
  const objects: ObjectSummary[] = ["a.txt", "db/1", "db/2", "db/old/1", "db/old/2", "wal/1", "wal/2", "wal/3"].map((key) => ({
    key,
    size: 1,
    etag: "e",
    lastModified: "2026-01-01T00:00:00.000Z",
  }));

  test("a delimiter rolls keys into common prefixes", () => {
    const page = listPage(objects, "db/", "/", "", 1000);
    expect(page.contents.map((o) => o.key)).toEqual(["db/1", "db/2"]);
    expect(page.commonPrefixes).toEqual(["db/old/"]);
    expect(page.truncated).toBe(false);
  });

  test("pages of any size together list every key and prefix exactly once", () => {
    for (const [prefix, delimiter] of [
      ["", ""],
      ["", "/"],
      ["db/", "/"],
    ] as const) {
      const whole = listPage(objects, prefix, delimiter, "", 1000);
      const expected = [...whole.contents.map((o) => o.key), ...whole.commonPrefixes].sort();
      for (const max of [1, 2, 3]) {
        const seen: string[] = [];
        let after = "";
        for (let pages = 0; pages < 20; pages++) {
          const page = listPage(objects, prefix, delimiter, after, max);
          seen.push(...page.contents.map((o) => o.key), ...page.commonPrefixes);
          if (!page.truncated) break;
          after = page.next!;
        }
        expect(seen.sort()).toEqual(expected);
      }
    }
  });

  test("ListObjectsV2 gives an opaque continuation token and a key count", () => {
    const xml = listingXml("backups", new Map([["list-type", "2"]]), true, listPage(objects, "", "", "", 2), 2);
    expect(xml).toContain("<KeyCount>2</KeyCount>");
    expect(xml).toContain("<IsTruncated>true</IsTruncated>");
    expect(xml).toContain(`<NextContinuationToken>${Buffer.from("db/1").toString("base64url")}</NextContinuationToken>`);
  });

  test("encoding-type=url encodes keys in the answer", () => {
    const page = listPage([{ key: "db/a b&c", size: 1, etag: "e", lastModified: "x" }], "", "", "", 10);
    expect(listingXml("backups", new Map([["encoding-type", "url"]]), true, page, 10)).toContain("<Key>db/a%20b%26c</Key>");
  });
});

test("CompleteMultipartUpload's parts are read whatever way the ETag's quotes are written", () => {
  const body =
    "<CompleteMultipartUpload><Part><ETag>&#34;aa&#34;</ETag><PartNumber>1</PartNumber></Part>" +
    '<Part><PartNumber>2</PartNumber><ETag>"bb"</ETag></Part><Part><ETag>&quot;cc&quot;</ETag><PartNumber>3</PartNumber></Part></CompleteMultipartUpload>';
  expect(completedParts(body)).toEqual([
    { partNumber: 1, etag: "aa" },
    { partNumber: 2, etag: "bb" },
    { partNumber: 3, etag: "cc" },
  ]);
  expect(s3Error(() => completedParts(body.replace("<PartNumber>2</PartNumber>", "<PartNumber>9</PartNumber>"))).code).toBe(
    "InvalidPartOrder",
  );
});

test("Range headers: first bytes, a suffix, an open end, and nothing past the end", () => {
  expect(byteRange("bytes=0-9", 100)).toEqual({ start: 0, end: 9 });
  expect(byteRange("bytes=-10", 100)).toEqual({ start: 90, end: 99 });
  expect(byteRange("bytes=50-", 100)).toEqual({ start: 50, end: 99 });
  expect(byteRange(undefined, 100)).toBeUndefined();
  expect(s3Error(() => byteRange("bytes=100-", 100)).status).toBe(416);
});

describe("the lab's DNS and certificate cover the bucket", () => {
  test("the region's endpoint and the bucket's name resolve to the emulation, only when the stack has a bucket", () => {
    const spaces = { bucket: "foobar-backups", region: "nyc3" };
    const hosts = renderZoneHosts([], [], spaces).split("\n");
    expect(hosts).toEqual(
      expect.arrayContaining(["198.51.100.6 nyc3.digitaloceanspaces.com", "198.51.100.6 foobar-backups.nyc3.digitaloceanspaces.com"]),
    );
    expect(renderZoneHosts([])).not.toContain("digitaloceanspaces");
    expect(spacesHostsLines(undefined)).toEqual([]);
  });

  test("the certificate names every region's endpoint and its buckets", () => {
    const names = spacesCertificateNames(SPACES_REGIONS);
    for (const region of SPACES_REGIONS) {
      expect(names).toEqual(expect.arrayContaining([`${region}.digitaloceanspaces.com`, `*.${region}.digitaloceanspaces.com`]));
    }
  });
});
