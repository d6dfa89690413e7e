import { renderNginxSite, SERVED_BY_HEADER } from "../../cloud-init/nginx";

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

  test("does not announce its version", () => {
    expect(lines).toContain("server_tokens off;");
  });
});
