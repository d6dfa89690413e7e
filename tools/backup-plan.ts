/**
 * What the backup bucket holds, and which of it a restore to a given time
 * uses: pure functions over the bucket's listing (`rclone lsjson`), tested on
 * fixtures. The names are written by `foobar-backup` and `npm run restore`:
 *
 * - `base/<holds>--<finished>--<host>--mysql-<version>.tar.gz.age`: a base
 *   backup that holds every transaction the primary committed before `holds`
 *   (a replica's newest heartbeat when it began, or its start on the primary)
 *   and none committed after `finished`;
 * - `binlog/<day>/<closed>--<host>--<file>.age`: a binary log of the primary
 *   of the time, closed (last written) at `closed`;
 * - `restore/<frozen>--<finished>.json`: a restore froze the site at
 *   `frozen` and was done at `finished`. It starts a new timeline: what was
 *   written before it froze is one history, what came after another, and no
 *   restore ever mixes the two.
 *
 * Times are `YYYYMMDDTHHMMSSZ`, UTC, to the second.
 */

/** One object, as `rclone lsjson --recursive --files-only` lists it. */
export interface BucketObject {
  readonly Path: string;
  readonly Size: number;
}

export interface BaseBackup {
  readonly key: string;
  /** It holds every transaction the primary committed before this: replay starts from here. */
  readonly started: Date;
  readonly finished: Date;
  readonly host: string;
  readonly mysqlVersion: string;
  readonly size: number;
}

export interface ArchivedBinlog {
  readonly key: string;
  readonly closed: Date;
  readonly host: string;
  /** The file's name on its server, such as `binlog.000042`. */
  readonly file: string;
  readonly size: number;
}

export interface RestoreMarker {
  readonly key: string;
  readonly frozen: Date;
  readonly finished: Date;
}

export interface BucketContents {
  readonly bases: readonly BaseBackup[];
  readonly binlogs: readonly ArchivedBinlog[];
  readonly restores: readonly RestoreMarker[];
  /** Objects whose names none of the above reads (left alone, listed for the operator). */
  readonly unknown: readonly string[];
}

/** One history of the database: from the end of a restore (or the beginning) to the next restore's freeze (or now). */
export interface Timeline {
  readonly from?: Date;
  readonly until?: Date;
  readonly bases: readonly BaseBackup[];
  readonly binlogs: readonly ArchivedBinlog[];
  /** The oldest point a restore can reach: the first base backup's end. */
  readonly oldest?: Date;
  /** The newest: the last archived binary log's close (or the last base's end). */
  readonly newest?: Date;
}

export interface RestorePlan {
  readonly base: BaseBackup;
  /** In the order they are replayed. */
  readonly binlogs: readonly ArchivedBinlog[];
  /** Replay stops before the first event at or after this time; `latest` replays everything. */
  readonly until: Date | "latest";
}

/** Thrown for a restore that cannot be planned: one line saying why and what is possible. */
export class RestorePlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RestorePlanError";
  }
}

const TIME = "(\\d{8}T\\d{6}Z)";
const BASE = new RegExp(`^base/${TIME}--${TIME}--([a-z0-9.-]+?)--mysql-([0-9.]+)\\.tar\\.gz\\.age$`);
const BINLOG = new RegExp(`^binlog/\\d{4}-\\d{2}-\\d{2}/${TIME}--([a-z0-9.-]+?)--([A-Za-z0-9._-]+)\\.age$`);
const RESTORE = new RegExp(`^restore/${TIME}--${TIME}\\.json$`);

/** `20261202T100300Z` → the Date; the inverse of {@link formatStamp}. */
export function parseStamp(stamp: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
  if (!m) throw new Error(`not a time stamp: ${stamp}`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

export function formatStamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/** Sorts the listing into base backups, binary logs and restores. */
export function readBucket(objects: readonly BucketObject[]): BucketContents {
  const bases: BaseBackup[] = [];
  const binlogs: ArchivedBinlog[] = [];
  const restores: RestoreMarker[] = [];
  const unknown: string[] = [];
  for (const object of objects) {
    let m: RegExpExecArray | null;
    if ((m = BASE.exec(object.Path))) {
      bases.push({
        key: object.Path,
        started: parseStamp(m[1]!),
        finished: parseStamp(m[2]!),
        host: m[3]!,
        mysqlVersion: m[4]!,
        size: object.Size,
      });
    } else if ((m = BINLOG.exec(object.Path))) {
      binlogs.push({ key: object.Path, closed: parseStamp(m[1]!), host: m[2]!, file: m[3]!, size: object.Size });
    } else if ((m = RESTORE.exec(object.Path))) {
      restores.push({ key: object.Path, frozen: parseStamp(m[1]!), finished: parseStamp(m[2]!) });
    } else {
      unknown.push(object.Path);
    }
  }
  const byTime =
    <T>(time: (item: T) => Date, key: (item: T) => string) =>
    (a: T, b: T) =>
      time(a).getTime() - time(b).getTime() || key(a).localeCompare(key(b));
  bases.sort(
    byTime(
      (b) => b.finished,
      (b) => b.key,
    ),
  );
  binlogs.sort(
    byTime(
      (b) => b.closed,
      (b) => b.key,
    ),
  );
  restores.sort(
    byTime(
      (r) => r.frozen,
      (r) => r.key,
    ),
  );
  return { bases, binlogs, restores, unknown };
}

/** The histories in the bucket, oldest first; the last is the site's current one. */
export function timelines(contents: BucketContents): Timeline[] {
  const bounds: { from?: Date; until?: Date; frozen?: Date }[] = [];
  let from: Date | undefined;
  let frozen: Date | undefined;
  for (const restore of contents.restores) {
    bounds.push({ from, until: restore.frozen, frozen });
    from = restore.finished;
    frozen = restore.frozen;
  }
  bounds.push({ from, frozen });
  return bounds.map(({ from, until, frozen }) => {
    const inside = (time: Date) => (!from || time >= from) && (!until || time <= until);
    // A base of this history ended in it and began after the restore before it froze the site (what it
    // holds may reach back a little before the restore ended: a heartbeat's margin).
    const bases = contents.bases.filter((b) => inside(b.finished) && (!frozen || b.started >= frozen));
    const binlogs = contents.binlogs.filter((b) => inside(b.closed));
    const first = bases[0];
    const newest = [...binlogs.filter((b) => !first || b.closed >= first.started).map((b) => b.closed), ...bases.map((b) => b.finished)];
    return {
      from,
      until,
      bases,
      binlogs,
      oldest: first?.finished,
      newest: newest.length ? new Date(Math.max(...newest.map((d) => d.getTime()))) : undefined,
    };
  });
}

const show = (date: Date | undefined) => (date ? date.toISOString().replace(".000Z", "Z") : "none");

/**
 * The base backup and binary logs that bring the database to `until` (or to
 * the newest archived point, `latest`, in the current timeline).
 *
 * @throws RestorePlanError when `until` is outside every timeline's window.
 */
export function planRestore(contents: BucketContents, until: Date | "latest"): RestorePlan {
  const all = timelines(contents);
  const windows = all
    .filter((t) => t.oldest)
    .map((t) => `${show(t.oldest)} to ${show(t.newest)}`)
    .join(", ");
  const timeline =
    until === "latest" ? all[all.length - 1]! : all.find((t) => (!t.from || until >= t.from) && (!t.until || until <= t.until));
  if (!timeline) {
    throw new RestorePlanError(
      `${show(until as Date)} is while a restore ran (the site was read-only); restorable: ${windows || "nothing"}`,
    );
  }
  if (!timeline.oldest || !timeline.newest) {
    throw new RestorePlanError(
      `no base backup in the bucket for ${until === "latest" ? "the current history" : show(until)}; restorable: ${windows || "nothing"}`,
    );
  }
  if (until !== "latest" && (until < timeline.oldest || until > timeline.newest)) {
    throw new RestorePlanError(`${show(until)} is outside the recovery window; restorable: ${windows}`);
  }
  const target = until === "latest" ? timeline.newest : until;
  const base = [...timeline.bases].reverse().find((b) => b.finished <= target)!;
  // Every file closed since the base began may hold what the base lacks; the first closed at or after the
  // target holds the target itself (replay stops inside it), and nothing after it is needed.
  const after = timeline.binlogs.filter((b) => b.closed >= base.started);
  const last = until === "latest" ? after.length : after.findIndex((b) => b.closed >= until) + 1 || after.length;
  return { base, binlogs: after.slice(0, last), until };
}

/** The plan as lines for the operator. */
export function describePlan(plan: RestorePlan): string[] {
  const bytes = plan.binlogs.reduce((sum, b) => sum + b.size, 0);
  const first = plan.binlogs[0];
  const last = plan.binlogs[plan.binlogs.length - 1];
  return [
    `base backup: ${plan.base.key} (taken on ${plan.base.host} from ${show(plan.base.started)} to ${show(plan.base.finished)}, MySQL ${plan.base.mysqlVersion}, ${plan.base.size} bytes)`,
    first && last
      ? `binary logs: ${plan.binlogs.length} (${bytes} bytes), closed from ${show(first.closed)} to ${show(last.closed)}`
      : "binary logs: none",
    `replayed up to: ${plan.until === "latest" ? "the newest archived transaction" : `${show(plan.until)} (excluded)`}`,
  ];
}
