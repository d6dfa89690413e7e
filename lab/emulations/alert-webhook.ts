/**
 * What the lab's alert receiver (alert-receiver.ts) keeps of each POST, and
 * how the checks read it back: pure functions, no I/O.
 *
 * Alertmanager's webhook body (format version 4) is one notification for one
 * group of alerts:
 *
 *   { "version": "4", "groupKey": "…", "status": "firing" | "resolved", "receiver": "…",
 *     "groupLabels": {…}, "commonLabels": {…}, "commonAnnotations": {…}, "externalURL": "…",
 *     "alerts": [{ "status": "firing" | "resolved", "labels": { "alertname": "…", "instance": "…", … },
 *                  "annotations": {…}, "startsAt": "…", "endsAt": "…", "generatorURL": "…", "fingerprint": "…" }] }
 *
 * The receiver appends one JSON object a line: when it arrived (ISO and
 * milliseconds since the epoch, the lab host's clock, the one the checks
 * time with), from which address, to which path, and the body as it came
 * (`body` when it is JSON, `raw` when it is not).
 *
 * @see https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
 */

/** One alert of a notification, as Alertmanager sends it. */
export interface WebhookAlert {
  readonly status: "firing" | "resolved";
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly startsAt?: string;
  readonly endsAt?: string;
  readonly generatorURL?: string;
  /** Alertmanager's hash of the labels: the alert's identity across notifications. */
  readonly fingerprint?: string;
}

/** A notification: Alertmanager's webhook body. */
export interface WebhookBody {
  readonly version?: string;
  readonly groupKey?: string;
  readonly status?: "firing" | "resolved";
  readonly receiver?: string;
  readonly groupLabels?: Readonly<Record<string, string>>;
  readonly commonLabels?: Readonly<Record<string, string>>;
  readonly alerts?: readonly WebhookAlert[];
}

/** One line of the receiver's file: one POST. */
export interface ReceivedPost {
  readonly receivedAt: string;
  /** `receivedAt` in milliseconds since the epoch. */
  readonly receivedAtMs: number;
  /** The sender's address. */
  readonly from: string;
  readonly path: string;
  /** The body, when it parsed as JSON. */
  readonly body?: WebhookBody;
  /** The body as text, when it did not. */
  readonly raw?: string;
}

/** One alert as it arrived. */
export interface ReceivedAlert {
  readonly receivedAtMs: number;
  readonly alert: WebhookAlert;
}

/**
 * Labels an alert must carry: every name with that value. A list means any
 * one of the sets (an alert's `instance` may be the load balancer's or the
 * server's, depending on the rule).
 */
export type LabelMatch = Readonly<Record<string, string>> | readonly Readonly<Record<string, string>>[];

/** What an alert must be to match. */
export interface AlertQuery {
  readonly alertname: string;
  /** @default - any labels */
  readonly labels?: LabelMatch;
  /** @default - either */
  readonly status?: "firing" | "resolved";
  /** Received at or after this time (ms since the epoch). @default - any time */
  readonly since?: number;
}

/** The receiver's line for one POST (with its newline). */
export function receivedLine(rawBody: string, at: Date, from: string, path: string): string {
  let body: unknown;
  try {
    body = JSON.parse(rawBody);
  } catch {
    body = undefined;
  }
  const post: ReceivedPost = {
    receivedAt: at.toISOString(),
    receivedAtMs: at.getTime(),
    from,
    path,
    ...(body !== undefined && typeof body === "object" && body !== null ? { body: body as WebhookBody } : { raw: rawBody }),
  };
  return JSON.stringify(post) + "\n";
}

/**
 * The receiver's file, line by line. A line that does not parse (the last
 * one, while the receiver is still writing it) is left out.
 */
export function parseReceived(text: string): ReceivedPost[] {
  const posts: ReceivedPost[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const post = JSON.parse(line) as ReceivedPost;
      if (typeof post.receivedAtMs === "number") posts.push(post);
    } catch {
      // Half written: the next read has it whole.
    }
  }
  return posts;
}

/** Every alert of every notification, in the order they arrived. */
export function receivedAlerts(posts: readonly ReceivedPost[]): ReceivedAlert[] {
  return posts.flatMap((post) => (post.body?.alerts ?? []).map((alert) => ({ receivedAtMs: post.receivedAtMs, alert })));
}

/** Whether an alert (as the receiver got it, or as Prometheus lists it) carries the labels (any one of the sets, when a list). */
export function matchesLabels(alert: { readonly labels?: Readonly<Record<string, string>> }, labels: LabelMatch | undefined): boolean {
  if (labels === undefined) return true;
  const sets: readonly Readonly<Record<string, string>>[] = Array.isArray(labels) ? labels : [labels as Readonly<Record<string, string>>];
  return sets.some((set) => Object.entries(set).every(([name, value]) => alert.labels?.[name] === value));
}

/** Whether an alert as it arrived answers the query. */
export function matchesQuery(received: ReceivedAlert, query: AlertQuery): boolean {
  return (
    received.alert.labels?.alertname === query.alertname &&
    (query.status === undefined || received.alert.status === query.status) &&
    (query.since === undefined || received.receivedAtMs >= query.since) &&
    matchesLabels(received.alert, query.labels)
  );
}

/** The first alert received that answers the query, undefined if none has. */
export function findAlert(posts: readonly ReceivedPost[], query: AlertQuery): ReceivedAlert | undefined {
  return receivedAlerts(posts).find((received) => matchesQuery(received, query));
}

/** An alert's identity across notifications: Alertmanager's fingerprint, else its labels. */
export function alertIdentity(alert: WebhookAlert): string {
  if (alert.fingerprint) return alert.fingerprint;
  return JSON.stringify(Object.entries(alert.labels ?? {}).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * The alerts whose last notification said firing: what the receiver has not
 * yet been told is resolved. Each as it last arrived.
 */
export function unresolved(posts: readonly ReceivedPost[]): ReceivedAlert[] {
  const last = new Map<string, ReceivedAlert>();
  for (const received of receivedAlerts(posts)) last.set(alertIdentity(received.alert), received);
  return [...last.values()].filter((received) => received.alert.status === "firing");
}

/** `FoobarWebServerDown{instance=lb-01, server=web-02} firing`: an alert in one short line. */
export function describeAlert(alert: WebhookAlert): string {
  const labels = Object.entries(alert.labels ?? {})
    .filter(([name]) => !["alertname", "severity", "job"].includes(name))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => `${name}=${value}`)
    .join(", ");
  return `${alert.labels?.alertname ?? "?"}{${labels}} ${alert.status}`;
}

/** A query as it reads in a message: `FoobarWebServerDown{server=web-02} firing`. */
export function describeQuery(query: AlertQuery): string {
  const sets = query.labels === undefined ? [] : Array.isArray(query.labels) ? query.labels : [query.labels];
  const labels = (sets as readonly Readonly<Record<string, string>>[])
    .map((set) =>
      Object.entries(set)
        .map(([name, value]) => `${name}=${value}`)
        .join(", "),
    )
    .join(" | ");
  return `${query.alertname}{${labels}}${query.status ? ` ${query.status}` : ""}`;
}
