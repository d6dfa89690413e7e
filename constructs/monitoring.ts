import { MonitorAlert } from "@cdktf/provider-digitalocean/lib/monitor-alert";
import { Tag } from "@cdktf/provider-digitalocean/lib/tag";
import { UptimeAlert } from "@cdktf/provider-digitalocean/lib/uptime-alert";
import { UptimeCheck } from "@cdktf/provider-digitalocean/lib/uptime-check";
import { Construct } from "constructs";

/** Where alerts go: e-mail addresses, a Slack channel, or both. */
export interface AlertDestinations {
  /** Addresses verified in the DigitalOcean account. @default - none */
  readonly emails?: readonly string[];
  /** A Slack incoming webhook. @default - none */
  readonly slack?: { readonly channel: string; readonly webhookUrl: string };
}

/** A droplet role: its tag and a name for the alert descriptions. */
export interface MonitoredRole {
  /** Construct id, such as "lb". */
  readonly id: string;
  /** Such as "load balancer". */
  readonly name: string;
  readonly tag: Tag;
}

export interface MonitoringProps {
  readonly project: string;
  /** Every role gets CPU, memory and disk alerts. */
  readonly roles: readonly MonitoredRole[];
  readonly destinations: AlertDestinations;
  /** The public URL the uptime check requests, such as https://www.foobar.com/health. */
  readonly siteUrl: string;
  /** @default 80 */
  readonly cpuPercent?: number;
  /** @default 90 */
  readonly memoryPercent?: number;
  /** @default 85 */
  readonly diskPercent?: number;
  /** @default 2000 */
  readonly latencyMs?: number;
  /** Days before expiry; only for an https:// URL. @default 14 */
  readonly certificateExpiryDays?: number;
}

/** The DigitalOcean metrics behind each droplet alert. */
export const DROPLET_METRICS = {
  cpu: "v1/insights/droplet/cpu",
  memory: "v1/insights/droplet/memory_utilization_percent",
  disk: "v1/insights/droplet/disk_utilization_percent",
} as const;

/** Regions the uptime check probes from: two continents, so one region's trouble is not an outage. */
export const UPTIME_REGIONS = ["us_east", "eu_west"];

/** True when `destinations` names anyone to alert; without that, no alert is created. */
export function hasAlertDestinations(destinations: AlertDestinations): boolean {
  return (destinations.emails?.length ?? 0) > 0 || destinations.slack !== undefined;
}

/**
 * Alert policies for every droplet role (CPU, memory, disk over 5 minutes)
 * and an uptime check of the public site with alerts when it is down, slow,
 * or its certificate is about to expire. Droplet metrics need the
 * DigitalOcean agent (`monitoring = true` on every droplet).
 */
export class Monitoring extends Construct {
  public readonly dropletAlerts: readonly MonitorAlert[];
  public readonly uptimeCheck: UptimeCheck;
  public readonly uptimeAlerts: readonly UptimeAlert[];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    if (!hasAlertDestinations(props.destinations)) {
      throw new Error("Monitoring needs at least one alert e-mail address or a Slack webhook");
    }
    const { emails, slack } = props.destinations;
    // Droplet alerts and uptime alerts take the same shape of recipients.
    const recipients = {
      email: emails?.length ? [...emails] : undefined,
      slack: slack ? [{ channel: slack.channel, url: slack.webhookUrl }] : undefined,
    };

    const thresholds = [
      { key: "cpu", metric: DROPLET_METRICS.cpu, percent: props.cpuPercent ?? 80, what: "CPU" },
      { key: "memory", metric: DROPLET_METRICS.memory, percent: props.memoryPercent ?? 90, what: "Memory" },
      { key: "disk", metric: DROPLET_METRICS.disk, percent: props.diskPercent ?? 85, what: "Disk" },
    ];
    this.dropletAlerts = props.roles.flatMap((role) =>
      thresholds.map(
        (t) =>
          new MonitorAlert(this, `${role.id}-${t.key}`, {
            description: `${props.project}: ${t.what} above ${t.percent}% on a ${role.name} droplet`,
            type: t.metric,
            compare: "GreaterThan",
            value: t.percent,
            window: "5m",
            tags: [role.tag.name],
            enabled: true,
            alerts: recipients,
          }),
      ),
    );

    this.uptimeCheck = new UptimeCheck(this, "site", {
      name: `${props.project}-site`,
      target: props.siteUrl,
      type: props.siteUrl.startsWith("https://") ? "https" : "http",
      regions: UPTIME_REGIONS,
      enabled: true,
    });
    const alert = (key: string, fields: { type: string; threshold?: number; comparison?: string }) =>
      new UptimeAlert(this, key, {
        name: `${props.project}-site-${key}`,
        checkId: this.uptimeCheck.id,
        period: "2m",
        notifications: [recipients],
        ...fields,
      });
    this.uptimeAlerts = [
      alert("down", { type: "down" }),
      alert("latency", { type: "latency", threshold: props.latencyMs ?? 2000, comparison: "greater_than" }),
      ...(props.siteUrl.startsWith("https://")
        ? [alert("certificate", { type: "ssl_expiry", threshold: props.certificateExpiryDays ?? 14, comparison: "less_than" })]
        : []),
    ];
  }
}
