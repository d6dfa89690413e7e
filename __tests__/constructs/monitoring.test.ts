import { DROPLET_METRICS } from "../../constructs/monitoring";
import { resourcesOf, synthStack } from "../helpers";

describe("monitoring and alerts", () => {
  test("without an alert e-mail or Slack webhook there are no alert policies and no uptime check", () => {
    const stack = synthStack();
    for (const type of ["digitalocean_monitor_alert", "digitalocean_uptime_check", "digitalocean_uptime_alert"]) {
      expect(resourcesOf(stack, type)).toEqual([]);
    }
  });

  test("every droplet still reports metrics (monitoring = true), alerts or not", () => {
    for (const d of resourcesOf(synthStack(), "digitalocean_droplet")) expect(d.monitoring).toBe(true);
  });

  describe("with an alert e-mail and default settings", () => {
    const stack = synthStack({ alertEmails: ["ops@foobar.com"] });
    const alerts = resourcesOf(stack, "digitalocean_monitor_alert");

    test("every role has CPU, memory and disk alerts with the default thresholds, sent to the e-mail", () => {
      const byRole = (tag: string) =>
        alerts
          .filter((a) => JSON.stringify(a.tags).includes(`digitalocean_tag.tags_${tag}_`))
          .map((a) => [a.type, a.compare, a.value, a.window])
          .sort();
      const expected = [
        [DROPLET_METRICS.cpu, "GreaterThan", 80, "5m"],
        [DROPLET_METRICS.disk, "GreaterThan", 85, "5m"],
        [DROPLET_METRICS.memory, "GreaterThan", 90, "5m"],
      ];
      expect(byRole("lb")).toEqual(expected);
      expect(byRole("web")).toEqual(expected);
      expect(alerts).toHaveLength(6);
      for (const alert of alerts) {
        expect(alert.alerts).toEqual({ email: ["ops@foobar.com"] });
        expect(alert.enabled).toBe(true);
      }
    });

    test("an uptime check watches the public HTTPS URL from two regions", () => {
      expect(resourcesOf(stack, "digitalocean_uptime_check")).toEqual([
        expect.objectContaining({ target: "https://www.foobar.com/", type: "https", regions: ["us_east", "eu_west"], enabled: true }),
      ]);
    });

    test("uptime alerts fire when the site is down, slow, or its certificate is about to expire", () => {
      const uptime = resourcesOf(stack, "digitalocean_uptime_alert")
        .map((a) => [a.type, a.threshold, a.comparison])
        .sort();
      expect(uptime).toEqual([
        ["down", undefined, undefined],
        ["latency", 2000, "greater_than"],
        ["ssl_expiry", 14, "less_than"],
      ]);
      for (const alert of resourcesOf(stack, "digitalocean_uptime_alert")) {
        expect(alert.check_id).toMatch(/^\$\{digitalocean_uptime_check\..*\.id\}$/);
        expect(alert.notifications).toEqual([{ email: ["ops@foobar.com"] }]);
      }
    });

    test("HTTPS is on", () => {
      expect(stack.output.site_url.value).toBe("https://www.foobar.com/");
    });
  });

  test("thresholds and a Slack channel come from the settings", () => {
    const stack = synthStack({
      alertSlackWebhookUrl: "https://hooks.slack.com/services/T/B/X",
      alertSlackChannel: "#ops",
      alertCpuPercent: 70,
      alertMemoryPercent: 75,
      alertDiskPercent: 60,
      alertLatencyMs: 900,
      alertCertExpiryDays: 21,
    });
    const alerts = resourcesOf(stack, "digitalocean_monitor_alert");
    expect(alerts.map((a) => a.value).sort()).toEqual([60, 60, 70, 70, 75, 75]);
    expect(alerts[0].alerts).toEqual({ slack: [{ channel: "#ops", url: "https://hooks.slack.com/services/T/B/X" }] });
    const uptime = Object.fromEntries(resourcesOf(stack, "digitalocean_uptime_alert").map((a) => [a.type, a.threshold]));
    expect(uptime).toEqual({ down: undefined, latency: 900, ssl_expiry: 21 });
  });

  test("with HTTPS off the uptime check uses HTTP and has no certificate alert", () => {
    const stack = synthStack({ alertEmails: ["ops@foobar.com"], https: false });
    expect(resourcesOf(stack, "digitalocean_uptime_check")[0]).toMatchObject({ target: "http://www.foobar.com/", type: "http" });
    expect(
      resourcesOf(stack, "digitalocean_uptime_alert")
        .map((a) => a.type)
        .sort(),
    ).toEqual(["down", "latency"]);
  });
});
