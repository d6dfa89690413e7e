import {
  ACME_CHALLENGE_PATH,
  HaproxyInput,
  HEALTH_CHECK,
  renderHaproxyConfig,
  RESOLVERS,
  TLS_PROFILE,
  TRAFFIC_ERROR_LIMIT,
} from "../../cloud-init/haproxy";

const plainInput: HaproxyInput = {
  siteHostNames: ["www.foobar.com"],
  backends: [
    { name: "web-01", hostName: "web-01.internal.foobar.com" },
    { name: "web-02", hostName: "web-02.internal.foobar.com" },
  ],
  healthPath: "/health",
  backendPort: 80,
  stats: { port: 8404, privateAddressVariable: "PRIVATE_ADDRESS", passwordVariable: "STATS_PASSWORD" },
};
const tlsInput: HaproxyInput = {
  ...plainInput,
  tls: { certificateFile: "/etc/haproxy/certs/site.pem", acmeChallengePort: 8402, hstsMaxAgeSeconds: 31536000 },
};
const config = renderHaproxyConfig(plainInput);
const lines = config.split("\n").map((line) => line.trim());
const tlsLines = renderHaproxyConfig(tlsInput)
  .split("\n")
  .map((line) => line.trim());

/** The lines of one section, such as "backend web_servers". */
function section(header: string, from: string[] = lines): string[] {
  const start = from.indexOf(header);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = from.findIndex((line, i) => i > start && /^(global|defaults|resolvers|frontend|backend|listen|\.if)\b/.test(line));
  return from.slice(start + 1, end < 0 ? undefined : end);
}

describe("renderHaproxyConfig", () => {
  test("balances round robin across every web server slot, each found by its internal DNS name at run time", () => {
    const backend = section("backend web_servers");
    expect(backend).toContain("balance roundrobin");
    expect(backend.filter((l) => l.startsWith("server "))).toEqual([
      `server web-01 web-01.internal.foobar.com:80 resolvers ${RESOLVERS.name} resolve-prefer ipv4 init-addr libc,none`,
      `server web-02 web-02.internal.foobar.com:80 resolvers ${RESOLVERS.name} resolve-prefer ipv4 init-addr libc,none`,
    ]);
  });

  test("resolves backends through the droplet's own resolver and keeps a last good address through a DNS outage", () => {
    const resolvers = section(`resolvers ${RESOLVERS.name}`);
    expect(resolvers).toEqual(
      expect.arrayContaining([
        "parse-resolv-conf",
        `hold valid ${RESOLVERS.holdValidSeconds}s`,
        `hold nx ${RESOLVERS.holdMissingSeconds}s`,
      ]),
    );
  });

  test("names no address of any web server", () => {
    expect(config).not.toMatch(/\b10\.\d+\.\d+\.\d+\b/);
  });

  test("health-checks every server over HTTP against the app's health endpoint", () => {
    const backend = section("backend web_servers");
    expect(backend).toContain("option httpchk");
    expect(backend).toContain("http-check send meth GET uri /health ver HTTP/1.1 hdr Host www.foobar.com");
    expect(backend).toContain("http-check expect status 200");
    expect(backend.find((l) => l.startsWith("default-server "))).toMatch(
      new RegExp(
        `^default-server check inter ${HEALTH_CHECK.interMs} fastinter ${HEALTH_CHECK.fastInterMs} downinter ${HEALTH_CHECK.downInterMs} fall ${HEALTH_CHECK.fall} rise ${HEALTH_CHECK.rise}( |$)`,
      ),
    );
  });

  test("real traffic takes a dead server out: a few failed connections mark it DOWN before the health checks would", () => {
    const defaults = section("backend web_servers").find((l) => l.startsWith("default-server "));
    expect(defaults).toMatch(new RegExp(` observe layer4 error-limit ${TRAFFIC_ERROR_LIMIT} on-error mark-down$`));
    // Not layer 7: the app's deliberate 503 (a write with no primary) must not take every server out.
    expect(config).not.toMatch(/observe layer7/);
  });

  test("a request that reached a server is sent again only when it is safe to repeat (GET and HEAD), never a POST", () => {
    expect(section("backend web_servers")).toContain("http-request disable-l7-retry unless METH_GET");
  });

  test("keeps connections to the web servers open and reuses them (no connection per request)", () => {
    expect(config).not.toMatch(/http-server-close|httpclose/);
    expect(config).not.toMatch(/http-reuse never/);
  });

  test("logs what went wrong, not every request", () => {
    expect(section("defaults")).toEqual(expect.arrayContaining(["option httplog", "option dontlog-normal"]));
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
    expect(() => renderHaproxyConfig({ ...plainInput, backends: [] })).toThrow("at least one backend");
  });
});

describe("HAProxy without TLS", () => {
  test("serves plain HTTP on port 80 only, with no redirect and no ACME route", () => {
    const frontend = section("frontend www");
    expect(frontend.filter((l) => l.startsWith("bind "))).toEqual(["bind :80"]);
    expect(config).not.toMatch(/ssl|redirect|acme|Strict-Transport-Security/);
    expect(frontend).toContain("http-request set-header X-Forwarded-Proto http");
  });
});

describe("HAProxy with TLS", () => {
  const frontend = section("frontend www", tlsLines);

  test("terminates TLS on 443 with the assembled PEM and offers HTTP/2 by ALPN", () => {
    expect(frontend).toContain("bind :443 ssl crt /etc/haproxy/certs/site.pem alpn h2,http/1.1");
    expect(frontend).toContain("bind :80");
  });

  test("accepts TLS 1.2 and newer only, with forward-secret AEAD ciphers and no session tickets", () => {
    const global = section("global", tlsLines);
    expect(global).toContain("ssl-default-bind-options prefer-client-ciphers no-tls-tickets ssl-min-ver TLSv1.2");
    expect(global).toContain(`ssl-default-bind-ciphers ${TLS_PROFILE.ciphers.join(":")}`);
    for (const cipher of TLS_PROFILE.ciphers) expect(cipher).toMatch(/^ECDHE-(ECDSA|RSA)-.*(GCM|POLY1305)/);
  });

  test("redirects HTTP to HTTPS except ACME challenges, which go to certbot on loopback", () => {
    expect(frontend).toContain(`acl acme_challenge path_beg ${ACME_CHALLENGE_PATH}`);
    expect(frontend).toContain("http-request redirect scheme https code 301 if !{ ssl_fc } !acme_challenge");
    expect(frontend).toContain("use_backend acme_challenge if acme_challenge");
    expect(section("backend acme_challenge", tlsLines)).toEqual(["server certbot 127.0.0.1:8402", ""]);
  });

  test("sends HSTS on HTTPS responses with the configured max-age", () => {
    expect(frontend).toContain('http-response set-header Strict-Transport-Security "max-age=31536000" if { ssl_fc }');
  });

  test("tells the web servers which scheme the client used", () => {
    expect(frontend).toContain("http-request set-header X-Forwarded-Proto https if { ssl_fc }");
  });
});

describe("HAProxy stats page", () => {
  const stats = section("listen stats");

  test("listens on loopback and the private address only, behind a password", () => {
    expect(stats.filter((l) => l.startsWith("bind "))).toEqual(["bind 127.0.0.1:8404", 'bind "${PRIVATE_ADDRESS}:8404"']);
    expect(stats).toContain('stats auth "admin:${STATS_PASSWORD}"');
    expect(stats).toContain("stats hide-version");
  });

  test("refuses to start when the address or password variable is missing", () => {
    expect(lines).toContain(".if !defined(PRIVATE_ADDRESS) || !defined(STATS_PASSWORD)");
    expect(lines[lines.indexOf(".if !defined(PRIVATE_ADDRESS) || !defined(STATS_PASSWORD)") + 1]).toMatch(/^\.alert /);
  });
});
