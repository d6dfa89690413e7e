import { APP_KEEPALIVE_SECONDS } from "./app";

export interface NginxInput {
  /** Droplet name, sent back in the `X-Served-By` header. */
  readonly serverName: string;
  /** File holding the `listen` directive for the private address, written at boot. */
  readonly listenSnippet: string;
  /** Port to listen on, on loopback (the snippet uses the same port). */
  readonly port: number;
  /** Host names the site answers to. */
  readonly siteHostNames: readonly string[];
  /** Folder of files Nginx serves itself. */
  readonly staticRoot: string;
  /** Port of the application server on 127.0.0.1. */
  readonly appPort: number;
  /** Serves the backup status file at this path (JSON: ages and errors, no secret). @default - none */
  readonly backupStatus?: { readonly path: string; readonly file: string };
  /** A server of its own answering `stub_status` (for the Nginx exporter) at this loopback address. @default - none */
  readonly stubStatus?: { readonly address: string; readonly port: number; readonly path: string };
}

/** The response header that names the web server that answered. */
export const SERVED_BY_HEADER = "X-Served-By";

/** Text types Nginx compresses (HTML always is). */
export const GZIP_TYPES = [
  "text/css",
  "text/plain",
  "text/javascript",
  "application/javascript",
  "application/json",
  "image/svg+xml",
] as const;

/** How long browsers keep static files other than HTML, in seconds; HTML is revalidated every time (ETag). */
export const STATIC_MAX_AGE_SECONDS = 3600;

/**
 * Renders an Nginx site (included inside `http {}`): static files from
 * `staticRoot`, everything else proxied to the application on loopback.
 *
 * Performance: files go out with `sendfile`; text is gzipped; static files
 * carry an ETag and a Cache-Control (HTML `no-cache`, so a new release shows
 * at once while an unchanged page costs a 304; other files an hour); the
 * load balancer's connections are kept open for many requests, and so are
 * the connections to the application; the access log is written in 64 KiB
 * batches instead of one write per request.
 */
export function renderNginxSite(input: NginxInput): string {
  const lines = [
    "# Managed by cloud-init (foobar): edit the CDKTF stack, not this file.",
    "# Keep the request id HAProxy assigned; make one when there is none.",
    "map $http_x_request_id $foobar_request_id {",
    "    default $http_x_request_id;",
    '    ""      $request_id;',
    "}",
    "",
    "# Cache-Control for what Nginx serves itself; the application's answers are left as they are (off).",
    "map $sent_http_content_type $foobar_expires {",
    "    default    off;",
    "    ~^text/html epoch;",
    `    ~^(text/css|text/javascript|application/javascript|image/|font/) ${STATIC_MAX_AGE_SECONDS}s;`,
    "}",
    "",
    "upstream foobar_app {",
    `    server 127.0.0.1:${input.appPort};`,
    "    keepalive 16;",
    // Shorter than Gunicorn's keep-alive (app.ts): Nginx closes idle connections first.
    `    keepalive_timeout ${APP_KEEPALIVE_SECONDS - 1}s;`,
    "}",
    "",
    "server {",
    // Never on 0.0.0.0: the public interface must not serve the site.
    `    include ${input.listenSnippet};`,
    `    listen 127.0.0.1:${input.port} default_server;`,
    `    server_name ${input.siteHostNames.join(" ")} ${input.serverName};`,
    "    server_tokens off;",
    "    access_log /var/log/nginx/access.log combined buffer=64k flush=5s;",
    "    sendfile on;",
    "    tcp_nopush on;",
    "    keepalive_requests 10000;",
    "    gzip on;",
    "    gzip_vary on;",
    "    gzip_min_length 256;",
    "    gzip_proxied any;",
    `    gzip_types ${GZIP_TYPES.join(" ")};`,
    "    etag on;",
    "    expires $foobar_expires;",
    `    add_header ${SERVED_BY_HEADER} ${input.serverName} always;`,
    "    add_header X-Request-ID $foobar_request_id always;",
    `    root ${input.staticRoot};`,
    "    index index.html;",
    "",
    "    location = / {",
    "        try_files /index.html @app;",
    "    }",
    "",
    "    location / {",
    "        try_files $uri @app;",
    "    }",
    "",
    ...(input.backupStatus
      ? [
          `    location = ${input.backupStatus.path} {`,
          `        alias ${input.backupStatus.file};`,
          "        default_type application/json;",
          "        expires off;",
          '        add_header Cache-Control "no-store" always;',
          "    }",
          "",
        ]
      : []),
    "    location @app {",
    "        proxy_pass http://foobar_app;",
    "        proxy_http_version 1.1;",
    '        proxy_set_header Connection "";',
    "        proxy_set_header Host $host;",
    "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "        proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;",
    "        proxy_set_header X-Request-ID $foobar_request_id;",
    "        proxy_connect_timeout 2s;",
    "        proxy_read_timeout 30s;",
    "    }",
    "}",
    ...(input.stubStatus
      ? [
          "",
          "# Connection counters for the Nginx exporter, on loopback only.",
          "server {",
          `    listen ${input.stubStatus.address}:${input.stubStatus.port};`,
          "    server_tokens off;",
          "    access_log off;",
          `    location = ${input.stubStatus.path} {`,
          "        stub_status;",
          "    }",
          "    location / {",
          "        return 404;",
          "    }",
          "}",
        ]
      : []),
  ];
  return lines.join("\n") + "\n";
}
