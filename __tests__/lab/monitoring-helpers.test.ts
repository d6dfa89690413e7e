import { expectedTargets, firingAlerts, MONITORING_ACCESS, promQuery, targetsNotUp } from "../../lab/checks/monitoring-helpers";
import type { Lab } from "../../lab/lab";

/** A lab handle with only the droplets' names, all these functions read. */
function labWith(...names: string[]): Lab {
  return { stack: { droplets: names.map((name) => ({ name })) } } as unknown as Lab;
}

describe("the scrape targets a lab's droplets should have (issue 24's contract)", () => {
  const lab = labWith("lb-01", "web-01", "web-02", "mon-01");

  test("the node exporter everywhere, HAProxy's on the load balancer, mysqld's and Nginx's on each web server", () => {
    expect(expectedTargets(lab).map((t) => `${t.job}/${t.instance}`)).toEqual([
      "node/lb-01",
      "haproxy/lb-01",
      "node/web-01",
      "mysqld/web-01",
      "nginx/web-01",
      "node/web-02",
      "mysqld/web-02",
      "nginx/web-02",
      "node/mon-01",
    ]);
  });

  test("a target down or not scraped at all is named; extra targets do not matter", () => {
    const up = (job: string, instance: string, value = "1") => ({ labels: { job, instance, __name__: "up" }, value });
    const samples = [
      ...expectedTargets(lab)
        .filter((t) => t.instance !== "web-02")
        .map((t) => up(t.job, t.instance)),
      up("node", "web-02", "0"),
      up("mysqld", "web-02"),
      up("node", "web-03"),
    ];
    expect(targetsNotUp(expectedTargets(lab), samples)).toEqual(["node/web-02 up=0", "nginx/web-02 not a target"]);
  });
});

describe("Prometheus' API, asked from inside mon-01", () => {
  /** A lab whose mon-01 answers `cat` with the password and curl with `answer`; records every command and its stdin. */
  function fakeLab(password: string, answer: string, code = "200") {
    const calls: { cmd: readonly string[]; input?: string }[] = [];
    const lab = {
      stack: { droplets: [{ name: "web-01" }, { name: "mon-01", privateIpv4: "10.10.10.9" }] },
      execIn(name: string, cmd: readonly string[], _timeoutMs?: number, input?: string) {
        calls.push({ cmd: [name, ...cmd], input });
        if (cmd[0] === "cat") return { status: 0, stdout: `${password}\n`, stderr: "" };
        return { status: 0, stdout: `${answer}\n${code}`, stderr: "" };
      },
    } as unknown as Lab;
    return { lab, calls };
  }

  test("reads the password on mon-01 and gives it to curl on stdin, never on a command line", () => {
    const { lab, calls } = fakeLab('pa"ss\\word', JSON.stringify({ status: "success", data: { resultType: "vector", result: [] } }));
    promQuery(lab, 'up{job="node"}');
    expect(calls[0]?.cmd).toEqual(["mon-01", "cat", MONITORING_ACCESS.passwordFile]);
    const curl = calls[1]!;
    expect(curl.cmd).toEqual(expect.arrayContaining(["mon-01", "curl", "-K", "-", "--data-urlencode", 'query=up{job="node"}']));
    expect(curl.cmd[curl.cmd.length - 1]).toBe(`http://10.10.10.9:${MONITORING_ACCESS.prometheusPort}/api/v1/query`);
    expect(curl.cmd.join(" ")).not.toContain('pa"ss');
    // curl's config syntax: inside double quotes, a backslash escapes the next character.
    expect(curl.input).toBe('user = "admin:pa\\"ss\\\\word"\n');
  });

  test("an instant vector comes back as labels and values, a scalar as one sample", () => {
    const vector = { resultType: "vector", result: [{ metric: { instance: "web-01" }, value: [1700000000, "1"] }] };
    expect(promQuery(fakeLab("p", JSON.stringify({ status: "success", data: vector })).lab, "x")).toEqual([
      { labels: { instance: "web-01" }, value: "1" },
    ]);
    const scalar = { resultType: "scalar", result: [1700000000, "2"] };
    expect(promQuery(fakeLab("p", JSON.stringify({ status: "success", data: scalar })).lab, "1+1")).toEqual([{ labels: {}, value: "2" }]);
  });

  test("Prometheus' own error is the message", () => {
    const error = JSON.stringify({ status: "error", errorType: "bad_data", error: "parse error" });
    expect(() => promQuery(fakeLab("p", error, "400").lab, "up{")).toThrow(/HTTP 400: bad_data parse error/);
  });

  test("firing alerts leave out the pending ones", () => {
    const alerts = [
      { labels: { alertname: "A" }, state: "firing" },
      { labels: { alertname: "B" }, state: "pending" },
    ];
    const { lab } = fakeLab("p", JSON.stringify({ status: "success", data: { alerts } }));
    expect(firingAlerts(lab).map((a) => a.labels.alertname)).toEqual(["A"]);
  });
});
