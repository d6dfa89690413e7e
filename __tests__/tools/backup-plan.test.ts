import {
  BucketObject,
  describePlan,
  formatStamp,
  parseStamp,
  planRestore,
  readBucket,
  RestorePlanError,
  timelines,
} from "../../tools/backup-plan";
import { describeBucket, parseArguments, RestoreError } from "../../tools/restore";

const base = (started: string, finished: string, host = "web-02", version = "8.0.40") => ({
  Path: `base/${started}--${finished}--${host}--mysql-${version}.tar.gz.age`,
  Size: 1000,
});
const binlog = (closed: string, host: string, file: string) => ({
  Path: `binlog/${closed.slice(0, 4)}-${closed.slice(4, 6)}-${closed.slice(6, 8)}/${closed}--${host}--${file}.age`,
  Size: 10,
});
const at = (stamp: string) => parseStamp(stamp);
const keys = (items: readonly { key: string }[]) => items.map((i) => i.key.split("/").pop());

/** A day of web-01 as the primary, a base every morning on web-02, then web-02 promoted at 10:01. */
const DAY: BucketObject[] = [
  base("20261201T060000Z", "20261201T060500Z"),
  base("20261202T060000Z", "20261202T060500Z"),
  binlog("20261201T055930Z", "web-01", "binlog.000010"),
  binlog("20261201T060230Z", "web-01", "binlog.000011"),
  binlog("20261202T055930Z", "web-01", "binlog.000020"),
  binlog("20261202T060230Z", "web-01", "binlog.000021"),
  binlog("20261202T100000Z", "web-01", "binlog.000022"),
  // web-01 died at 10:00:20 with its last file unarchived; web-02, promoted, uploads its own (it replicated that tail).
  binlog("20261202T100105Z", "web-02", "binlog.000003"),
  binlog("20261202T100135Z", "web-02", "binlog.000004"),
  { Path: "notes.txt", Size: 3 },
];

describe("reading the bucket", () => {
  test("time stamps are UTC to the second, both ways", () => {
    expect(parseStamp("20261202T100300Z").toISOString()).toBe("2026-12-02T10:03:00.000Z");
    expect(formatStamp(new Date("2026-12-02T10:03:00.789Z"))).toBe("20261202T100300Z");
    expect(() => parseStamp("2026-12-02")).toThrow(/not a time stamp/);
  });

  test("base backups, binary logs and restores are told apart by name; anything else is left alone", () => {
    const contents = readBucket(DAY);
    expect(contents.bases.map((b) => [b.host, b.mysqlVersion])).toEqual([
      ["web-02", "8.0.40"],
      ["web-02", "8.0.40"],
    ]);
    expect(contents.binlogs).toHaveLength(7);
    expect(contents.binlogs[0]).toMatchObject({ host: "web-01", file: "binlog.000010", closed: at("20261201T055930Z") });
    expect(contents.unknown).toEqual(["notes.txt"]);
  });

  test("binary logs are in the order they closed, whatever server wrote them", () => {
    const shuffled = [...DAY].reverse();
    expect(keys(readBucket(shuffled).binlogs)).toEqual(keys(readBucket(DAY).binlogs));
  });
});

describe("planning a restore", () => {
  const contents = readBucket(DAY);

  test("takes the newest base that ended before the time, and every log closed since that base began, through the one that holds the time", () => {
    const plan = planRestore(contents, at("20261202T090000Z"));
    expect(plan.base.key).toContain("20261202T060000Z");
    expect(keys(plan.binlogs)).toEqual(["20261202T060230Z--web-01--binlog.000021.age", "20261202T100000Z--web-01--binlog.000022.age"]);
  });

  test("a log closed before the base began is never replayed: the base holds it", () => {
    const plan = planRestore(contents, at("20261202T090000Z"));
    expect(keys(plan.binlogs)).not.toContain("20261202T055930Z--web-01--binlog.000020.age");
  });

  test("after a promotion, the new primary's first file brings what the old one never archived", () => {
    const plan = planRestore(contents, at("20261202T100010Z"));
    expect(keys(plan.binlogs)).toEqual([
      "20261202T060230Z--web-01--binlog.000021.age",
      "20261202T100000Z--web-01--binlog.000022.age",
      "20261202T100105Z--web-02--binlog.000003.age",
    ]);
  });

  test("a base from a replica that lagged is named for what it surely holds: every log closed since then is replayed", () => {
    // The replica's newest heartbeat said 05:50 when the clone began at 06:00: web-01 closed a log at 05:55.
    const lagging = readBucket([
      base("20261202T055000Z", "20261202T060500Z"),
      binlog("20261202T054500Z", "web-01", "binlog.000019"),
      binlog("20261202T055500Z", "web-01", "binlog.000020"),
      binlog("20261202T060230Z", "web-01", "binlog.000021"),
    ]);
    expect(planRestore(lagging, "latest").binlogs.map((b) => b.file)).toEqual(["binlog.000020", "binlog.000021"]);
  });

  test("a time before a base ended uses the day before's base", () => {
    const plan = planRestore(contents, at("20261202T060400Z"));
    expect(plan.base.key).toContain("20261201T060000Z");
    expect(plan.binlogs[0]!.key).toContain("20261201T060230Z");
  });

  test("latest replays everything archived since the newest base", () => {
    const plan = planRestore(contents, "latest");
    expect(plan.base.key).toContain("20261202T060000Z");
    expect(plan.binlogs.map((b) => b.file)).toEqual(["binlog.000021", "binlog.000022", "binlog.000003", "binlog.000004"]);
    expect(describePlan(plan).join("\n")).toMatch(/binary logs: 4 \(40 bytes\)[\s\S]*the newest archived transaction/);
  });

  test("a time outside the window is refused with the window", () => {
    expect(() => planRestore(contents, at("20261201T050000Z"))).toThrow(RestorePlanError);
    expect(() => planRestore(contents, at("20261201T050000Z"))).toThrow(
      "2026-12-01T05:00:00Z is outside the recovery window; restorable: 2026-12-01T06:05:00Z to 2026-12-02T10:01:35Z",
    );
    expect(() => planRestore(contents, at("20261202T110000Z"))).toThrow(/outside the recovery window/);
  });

  test("an empty bucket, or one with logs but no base, has nothing to restore", () => {
    expect(() => planRestore(readBucket([]), "latest")).toThrow(
      "no base backup in the bucket for the current history; restorable: nothing",
    );
    expect(() => planRestore(readBucket([binlog("20261202T100000Z", "web-01", "binlog.000001")]), "latest")).toThrow(/no base backup/);
  });
});

describe("restores start a new history", () => {
  // A restore froze the site at 11:00 and was done at 11:05 (to 10:00); a base followed at 11:10.
  const after = readBucket([
    ...DAY,
    { Path: "restore/20261202T110000Z--20261202T110500Z.json", Size: 50 },
    binlog("20261202T110630Z", "web-01", "binlog.000001"),
    base("20261202T111000Z", "20261202T111100Z", "web-02"),
    binlog("20261202T111300Z", "web-01", "binlog.000002"),
  ]);

  test("the bucket holds two histories, each with its own window", () => {
    const [before, current] = timelines(after);
    expect(before!.newest).toEqual(at("20261202T100135Z"));
    expect(current!.oldest).toEqual(at("20261202T111100Z"));
    expect(current!.newest).toEqual(at("20261202T111300Z"));
  });

  test("a point in the old history never replays a log of the new one, and the other way round", () => {
    const old = planRestore(after, at("20261202T100100Z"));
    expect(old.binlogs.every((b) => b.closed <= at("20261202T110000Z"))).toBe(true);
    const current = planRestore(after, "latest");
    expect(current.base.key).toContain("20261202T111000Z");
    expect(keys(current.binlogs)).toEqual(["20261202T111300Z--web-01--binlog.000002.age"]);
  });

  test("a base taken right after the restore belongs to the new history, though what it holds reaches back a second", () => {
    const justAfter = readBucket([
      ...DAY,
      { Path: "restore/20261202T110000Z--20261202T110500Z.json", Size: 50 },
      base("20261202T110459Z", "20261202T110510Z", "web-01"),
    ]);
    expect(planRestore(justAfter, "latest").base.key).toContain("20261202T110459Z");
  });

  test("a time while the restore ran is refused", () => {
    expect(() => planRestore(after, at("20261202T110200Z"))).toThrow(/while a restore ran/);
  });

  test("--list shows every history's window and the newest backups' ages", () => {
    const objects = [...DAY, { Path: "restore/20261202T110000Z--20261202T110500Z.json", Size: 50 }];
    const lines = describeBucket(objects, at("20261202T110600Z"));
    expect(lines[0]).toBe("history 1 (before a restore): restorable from 2026-12-01T06:05:00.000Z to 2026-12-02T10:01:35.000Z");
    expect(lines[1]).toBe("current history: not restorable (no base backup yet)");
    expect(lines).toContain("objects not made by this stack: 1 (left alone)");
  });
});

describe("the restore command line", () => {
  test("takes --list, or --to with a time and its zone, or latest", () => {
    expect(parseArguments(["--list"])).toMatchObject({ list: true });
    expect(parseArguments(["--to", "2026-12-02T10:03:00Z", "--identity", "id.txt", "--yes", "staging"])).toEqual({
      beside: false,
      list: false,
      until: new Date("2026-12-02T10:03:00Z"),
      identity: "id.txt",
      yes: true,
      stack: "staging",
    });
    expect(parseArguments(["--to", "latest"]).until).toBe("latest");
    expect(parseArguments(["--to", "latest", "--beside"])).toMatchObject({ beside: true, until: "latest" });
  });

  test.each([
    [[], /needs --list, or --to/],
    [["--to", "2026-12-02 10:03"], /--to takes a time with its zone/],
    [["--to"], /--to needs a value/],
    [["--force"], /unknown option --force/],
    [["--list", "a", "b"], /one stack at most/],
  ])("refuses %j with one line", (args, message) => {
    expect(() => parseArguments(args)).toThrow(RestoreError);
    expect(() => parseArguments(args)).toThrow(message);
  });
});
