import { APP_KEEPALIVE_SECONDS } from "../../cloud-init/app";
import { GZIP_TYPES, renderNginxSite, SERVED_BY_HEADER, STATIC_MAX_AGE_SECONDS } from "../../cloud-init/nginx";

const site = renderNginxSite({
  serverName: "web-02",
  listenSnippet: "/etc/nginx/snippets/foobar-listen.conf",
  port: 80,
  siteHostNames: ["www.foobar.com"],
  staticRoot: "/srv/foobar/app/static",
  appPort: 8000,
});
const lines = site.split("\n").map((line) => line.trim());

describe("renderNginxSite", () => {
  test("listens on the private address (snippet written at boot) and loopback, never on every address", () => {
    expect(lines).toContain("include /etc/nginx/snippets/foobar-listen.conf;");
    expect(lines).toContain("listen 127.0.0.1:80 default_server;");
    expect(lines.filter((l) => l.startsWith("listen "))).toEqual(["listen 127.0.0.1:80 default_server;"]);
  });

  test("names the server that answered in a response header", () => {
    expect(lines).toContain(`add_header ${SERVED_BY_HEADER} web-02 always;`);
  });

  test("serves static files itself and proxies the rest to the app on loopback", () => {
    expect(lines).toContain("root /srv/foobar/app/static;");
    expect(lines).toContain("try_files $uri @app;");
    expect(lines).toContain("server 127.0.0.1:8000;");
    expect(lines).toContain("proxy_pass http://foobar_app;");
  });

  test("passes the forwarded headers and the request id to the app", () => {
    expect(lines).toEqual(
      expect.arrayContaining([
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Request-ID $foobar_request_id;",
        "proxy_set_header Host $host;",
      ]),
    );
  });

  test("sends files with sendfile and keeps connections open, to the load balancer and to the app", () => {
    expect(lines).toEqual(
      expect.arrayContaining([
        "sendfile on;",
        "keepalive_requests 10000;",
        "keepalive 16;",
        'proxy_set_header Connection "";',
        "proxy_http_version 1.1;",
      ]),
    );
  });

  test("closes an idle connection to the app before the app does, and soon (a stopping Gunicorn waits for open ones)", () => {
    const idle = Number(
      /^keepalive_timeout (\d+)s;$/m.exec(
        site
          .split("\n")
          .map((l) => l.trim())
          .join("\n"),
      )?.[1],
    );
    expect(idle).toBeLessThan(APP_KEEPALIVE_SECONDS);
    expect(idle).toBeLessThanOrEqual(5);
  });

  test("gzips text, JSON included", () => {
    expect(lines).toEqual(expect.arrayContaining(["gzip on;", "gzip_vary on;", `gzip_types ${GZIP_TYPES.join(" ")};`]));
    expect(GZIP_TYPES).toContain("application/json");
  });

  test("static files carry an ETag and Cache-Control: HTML is revalidated every time, other files kept an hour, the app's answers left alone", () => {
    expect(lines).toEqual(
      expect.arrayContaining([
        "etag on;",
        "expires $foobar_expires;",
        "default    off;",
        "~^text/html epoch;",
        `~^(text/css|text/javascript|application/javascript|image/|font/) ${STATIC_MAX_AGE_SECONDS}s;`,
      ]),
    );
  });

  test("writes its access log in batches, not once per request", () => {
    expect(lines).toContain("access_log /var/log/nginx/access.log combined buffer=64k flush=5s;");
  });

  test("does not announce its version", () => {
    expect(lines).toContain("server_tokens off;");
  });
});
