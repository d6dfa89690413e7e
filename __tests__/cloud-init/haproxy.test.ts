import { HEALTH_CHECK, renderHaproxyConfig } from "../../cloud-init/haproxy";

const config = renderHaproxyConfig({
  siteHostNames: ["www.foobar.com"],
  backends: [
    { name: "web-01", address: "10.10.10.2" },
    { name: "web-02", address: "10.10.10.3" },
  ],
  healthPath: "/health",
  backendPort: 80,
});
const lines = config.split("\n").map((line) => line.trim());

/** The lines of one section, such as "backend web_servers". */
function section(header: string): string[] {
  const start = lines.indexOf(header);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((line, i) => i > start && /^(global|defaults|frontend|backend|listen)\b/.test(line));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

describe("renderHaproxyConfig", () => {
  test("balances round robin across every web server's private address", () => {
    const backend = section("backend web_servers");
    expect(backend).toContain("balance roundrobin");
    expect(backend.filter((l) => l.startsWith("server "))).toEqual([
      "server web-01 10.10.10.2:80",
      "server web-02 10.10.10.3:80",
    ]);
  });

  test("health-checks every server over HTTP against the app's health endpoint", () => {
    const backend = section("backend web_servers");
    expect(backend).toContain("option httpchk");
    expect(backend).toContain("http-check send meth GET uri /health ver HTTP/1.1 hdr Host www.foobar.com");
    expect(backend).toContain("http-check expect status 200");
    expect(backend).toContain(
      `default-server check inter ${HEALTH_CHECK.interMs} fastinter ${HEALTH_CHECK.fastInterMs} downinter ${HEALTH_CHECK.downInterMs} fall ${HEALTH_CHECK.fall} rise ${HEALTH_CHECK.rise}`,
    );
  });

  test("retries and redispatches so a dying backend costs users little", () => {
    const defaults = section("defaults");
    expect(defaults).toEqual(expect.arrayContaining(["option redispatch 1", "retries 3", "retry-on conn-failure empty-response"]));
  });

  test("passes X-Forwarded-For and a request id, logs, and sets every timeout", () => {
    const defaults = section("defaults");
    expect(defaults).toEqual(expect.arrayContaining(["option forwardfor", "option httplog", "log global"]));
    for (const timeout of ["connect", "client", "server", "http-request", "check"]) {
      expect(defaults.some((l) => l.startsWith(`timeout ${timeout} `))).toBe(true);
    }
    expect(section("global")).toContain("log /dev/log local0");
    expect(section("frontend www")).toContain("unique-id-header X-Request-ID");
  });

  test("refuses an empty backend list", () => {
    expect(() =>
      renderHaproxyConfig({ siteHostNames: ["www.foobar.com"], backends: [], healthPath: "/health", backendPort: 80 }),
    ).toThrow("at least one backend");
  });
});
