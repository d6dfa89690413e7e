/**
 * A slot for a web server HAProxy balances across, found by name at run time:
 * HAProxy resolves `hostName` (the server's internal DNS record) every few
 * seconds, so a server that is added, replaced or readdressed needs no change
 * on the load balancer. A slot whose name does not resolve stays in
 * maintenance (`MAINT`) and takes no traffic.
 */
export interface HaproxyBackend {
  /** Server name in HAProxy's logs and stats, such as "web-01". */
  readonly name: string;
  /** The DNS name of the server's private address, such as `web-01.internal.foobar.com`. */
  readonly hostName: string;
}

/** How HAProxy resolves its backends: the droplet's own resolver, from /etc/resolv.conf. */
export const RESOLVERS = {
  name: "droplet_dns",
  /** How long an answer is trusted before HAProxy asks again. */
  holdValidSeconds: 10,
  /** How long a server keeps its last address when its name stops resolving (NXDOMAIN, timeout). */
  holdMissingSeconds: 30,
} as const;

export interface HaproxyInput {
  /** Host names the site answers to; the first is sent in health checks. */
  readonly siteHostNames: readonly string[];
  /** Web servers, in order. At least one. */
  readonly backends: readonly HaproxyBackend[];
  /** Path of the application's health endpoint, served through Nginx. */
  readonly healthPath: string;
  /** Port Nginx listens on, on the private address. */
  readonly backendPort: number;
  /** Terminate HTTPS, redirect HTTP and route ACME challenges. @default - plain HTTP only */
  readonly tls?: HaproxyTlsInput;
  /** The stats page. */
  readonly stats: HaproxyStatsInput;
  /** HAProxy's built-in Prometheus exporter, on the private address only (the stats page's variable). @default - none */
  readonly prometheus?: HaproxyPrometheusInput;
}

export interface HaproxyPrometheusInput {
  readonly port: number;
  /** The path it answers; anything else is denied. */
  readonly path: string;
}

export interface HaproxyTlsInput {
  /** PEM holding the certificate chain and its key, as the deploy hook assembles it. */
  readonly certificateFile: string;
  /** Loopback port certbot answers HTTP-01 challenges on while it runs. */
  readonly acmeChallengePort: number;
  /**
   * The other load balancer of a pair. Only the one holding the reserved IP
   * receives the CA's HTTP-01 requests, so each passes a challenge its own
   * certbot does not know (404, or nothing listening) on to the peer's, and
   * serves the peer's challenges to it on the private address. Each load
   * balancer thus obtains and renews its own certificate, whichever of the
   * two holds the address. @default - a single load balancer
   */
  readonly peer?: HaproxyAcmePeer;
  /** `max-age` of the Strict-Transport-Security header, in seconds. */
  readonly hstsMaxAgeSeconds: number;
}

export interface HaproxyAcmePeer {
  /** Server name in HAProxy's stats, such as "lb-02". */
  readonly name: string;
  /** DNS name of the peer's private address. */
  readonly hostName: string;
  /** Port on the private address where each load balancer serves its own certbot's challenges to the peer. */
  readonly port: number;
}

export interface HaproxyStatsInput {
  readonly port: number;
  /**
   * Environment variable holding the private address to bind besides
   * loopback; HAProxy expands it when it reads the configuration.
   */
  readonly privateAddressVariable: string;
  /** Environment variable holding the password of the `admin` user. */
  readonly passwordVariable: string;
}

/**
 * TLS settings of Mozilla's "intermediate" profile (version 5.7): TLS 1.2 and
 * 1.3 only, forward-secret AEAD ciphers, no session tickets.
 */
export const TLS_PROFILE = {
  minimumVersion: "TLSv1.2",
  ciphers: [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
  ],
  ciphersuites: ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"],
} as const;

/** HAProxy answers 200 here itself (`monitor-uri`) on the public frontend, on HTTP and HTTPS: its own liveness, for keepalived and the peer. */
export const LOAD_BALANCER_HEALTH_PATH = "/lb-health";

/** Where ACME CAs fetch HTTP-01 challenge responses (RFC 8555, section 8.3). */
export const ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/";

/** Health checks: every 2 s; down after 3 failures, up after 2 successes. */
export const HEALTH_CHECK = { interMs: 2000, fastInterMs: 1000, downInterMs: 2000, fall: 3, rise: 2 } as const;

/**
 * Real traffic as a signal, besides the health checks: this many consecutive
 * failed connections to a server (refused, timed out) mark it DOWN at once,
 * without waiting for `fall` failed checks. Layer 4 only: the application
 * answers 503 on purpose (a write while there is no primary), and counting
 * answers would take every server out when the primary is gone.
 */
export const TRAFFIC_ERROR_LIMIT = 3;

/** A new connection to a web server on the VPC takes well under a millisecond; one that takes longer is retried elsewhere. */
export const BACKEND_CONNECT_TIMEOUT = "1s";

/**
 * Renders `/etc/haproxy/haproxy.cfg` for lb-01: HTTPS on 443 with HTTP on 80
 * redirecting to it (or plain HTTP on 80 without `tls`), round robin across
 * every web server slot (found by DNS) with active health checks, and the
 * stats page on loopback and the private address.
 */
export function renderHaproxyConfig(input: HaproxyInput): string {
  if (input.backends.length === 0) throw new Error("HAProxy needs at least one backend");
  const check = HEALTH_CHECK;
  const lines = [
    "# Managed by cloud-init (foobar): edit the CDKTF stack, not this file.",
    "global",
    "    log /dev/log local0",
    "    log /dev/log local1 notice",
    "    chroot /var/lib/haproxy",
    "    stats socket /run/haproxy/admin.sock mode 660 level admin",
    "    stats timeout 30s",
    "    user haproxy",
    "    group haproxy",
    "    daemon",
    // Threads: HAProxy starts one per CPU the droplet has (nbthread's default).
    "    maxconn 4096",
    ...(input.tls ? tlsGlobals() : []),
    "",
    "defaults",
    "    mode http",
    "    log global",
    "    option httplog",
    // Only what went wrong is logged (errors, retries, redispatches), not every request.
    "    option dontlog-normal",
    "    option dontlognull",
    // No `option http-server-close`: keep-alive on both sides, and idle
    // connections to the web servers are reused (`http-reuse safe`, the
    // default), instead of a new connection to Nginx for every request.
    "    option forwardfor",
    // A request whose connection to a dying server fails is sent to another.
    "    option redispatch 1",
    "    retries 3",
    "    retry-on conn-failure empty-response",
    `    timeout connect ${BACKEND_CONNECT_TIMEOUT}`,
    "    timeout client 30s",
    "    timeout server 30s",
    "    timeout http-request 10s",
    "    timeout http-keep-alive 5s",
    "    timeout queue 30s",
    "    timeout check 2s",
    "",
    `resolvers ${RESOLVERS.name}`,
    "    parse-resolv-conf",
    "    resolve_retries 3",
    "    timeout resolve 1s",
    "    timeout retry 1s",
    `    hold valid ${RESOLVERS.holdValidSeconds}s`,
    `    hold nx ${RESOLVERS.holdMissingSeconds}s`,
    `    hold timeout ${RESOLVERS.holdMissingSeconds}s`,
    `    hold refused ${RESOLVERS.holdMissingSeconds}s`,
    `    hold obsolete ${RESOLVERS.holdMissingSeconds}s`,
    "",
    ...frontend(input),
    "backend web_servers",
    "    balance roundrobin",
    "    option httpchk",
    `    http-check send meth GET uri ${input.healthPath} ver HTTP/1.1 hdr Host ${input.siteHostNames[0]}`,
    "    http-check expect status 200",
    // A request that reached a server which closed without answering is sent again
    // only if it is safe to repeat (GET, HEAD): a POST may have been written.
    // A failed connection is always retried, since nothing was sent.
    "    http-request disable-l7-retry unless METH_GET",
    `    default-server check inter ${check.interMs} fastinter ${check.fastInterMs} downinter ${check.downInterMs} fall ${check.fall} rise ${check.rise} observe layer4 error-limit ${TRAFFIC_ERROR_LIMIT} on-error mark-down`,
    // init-addr: resolve through libc at start, else start without an address (MAINT until DNS answers).
    ...input.backends.map(
      (backend) =>
        `    server ${backend.name} ${backend.hostName}:${input.backendPort} resolvers ${RESOLVERS.name} resolve-prefer ipv4 init-addr libc,none`,
    ),
    ...(input.tls ? acmeBackends(input.tls, input.stats.privateAddressVariable) : []),
    "",
    ...stats(input.stats),
    ...(input.prometheus ? prometheusExporter(input.prometheus, input.stats.privateAddressVariable) : []),
  ];
  return lines.join("\n") + "\n";
}

function acmeBackends(tls: HaproxyTlsInput, privateAddressVariable: string): string[] {
  const certbot = `server certbot 127.0.0.1:${tls.acmeChallengePort}`;
  if (!tls.peer) {
    return [
      "",
      "backend acme_challenge",
      // certbot listens only while it asks for a certificate; otherwise this answers 503.
      `    ${certbot}`,
    ];
  }
  return [
    "",
    "backend acme_challenge",
    // The challenge is this load balancer's or the peer's: a certbot that
    // does not know it answers 404, one that is not running is refused (here)
    // or answered 503 (by the peer's HAProxy), and every retry goes to the
    // other server. A CA validates from several places at once; each request
    // finds its way.
    "    balance roundrobin",
    "    option redispatch 1",
    "    retries 3",
    "    retry-on conn-failure empty-response response-timeout 404 502 503",
    `    server self 127.0.0.1:${tls.acmeChallengePort}`,
    `    server ${tls.peer.name} ${tls.peer.hostName}:${tls.peer.port} resolvers ${RESOLVERS.name} resolve-prefer ipv4 init-addr libc,none`,
    "",
    // The peer's HAProxy sends its challenges here; the firewalls let only the peer in.
    "frontend acme_from_peer",
    `    bind "\${${privateAddressVariable}}:${tls.peer.port}"`,
    `    http-request deny unless { path_beg ${ACME_CHALLENGE_PATH} }`,
    "    default_backend acme_local",
    "",
    "backend acme_local",
    // No retries: when certbot is not running, the peer hears 503 at once and tries its own.
    "    retries 0",
    `    ${certbot}`,
  ];
}

function tlsGlobals(): string[] {
  return [
    `    ssl-default-bind-ciphers ${TLS_PROFILE.ciphers.join(":")}`,
    `    ssl-default-bind-ciphersuites ${TLS_PROFILE.ciphersuites.join(":")}`,
    `    ssl-default-bind-options prefer-client-ciphers no-tls-tickets ssl-min-ver ${TLS_PROFILE.minimumVersion}`,
  ];
}

function frontend(input: HaproxyInput): string[] {
  const common = [
    "frontend www",
    "    bind :80",
    // Answered by HAProxy itself, before any rule: "this load balancer serves".
    `    monitor-uri ${LOAD_BALANCER_HEALTH_PATH}`,
  ];
  const requestId = ["    unique-id-format %[uuid()]", "    unique-id-header X-Request-ID"];
  if (!input.tls) {
    return [...common, ...requestId, "    http-request set-header X-Forwarded-Proto http", "    default_backend web_servers", ""];
  }
  return [
    ...common,
    // ALPN offers HTTP/2; HAProxy speaks HTTP/1.1 to the web servers.
    `    bind :443 ssl crt ${input.tls.certificateFile} alpn h2,http/1.1`,
    ...requestId,
    `    acl acme_challenge path_beg ${ACME_CHALLENGE_PATH}`,
    // Everything but the ACME challenge moves to HTTPS; challenges stay on HTTP (RFC 8555).
    "    http-request redirect scheme https code 301 if !{ ssl_fc } !acme_challenge",
    "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
    "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }",
    `    http-response set-header Strict-Transport-Security "max-age=${input.tls.hstsMaxAgeSeconds}" if { ssl_fc }`,
    "    use_backend acme_challenge if acme_challenge",
    "    default_backend web_servers",
    "",
  ];
}

/** Stats page on loopback and the private address only, behind a password. */
function stats(input: HaproxyStatsInput): string[] {
  const variables = [input.privateAddressVariable, input.passwordVariable];
  return [
    // Without the variables the page would listen everywhere with an empty
    // password: refuse to start instead.
    `.if ${variables.map((name) => `!defined(${name})`).join(" || ")}`,
    `    .alert "${variables.join(" and ")} must be set: see the foobar drop-in of haproxy.service"`,
    ".endif",
    "listen stats",
    `    bind 127.0.0.1:${input.port}`,
    `    bind "\${${input.privateAddressVariable}}:${input.port}"`,
    "    stats enable",
    "    stats uri /",
    "    stats refresh 10s",
    "    stats hide-version",
    "    stats realm foobar-haproxy",
    `    stats auth "admin:\${${input.passwordVariable}}"`,
    "    http-request set-log-level silent",
  ];
}

/**
 * HAProxy's own Prometheus exporter (a service built into Debian's and
 * Ubuntu's packages), on the private address only: the stats page's guard
 * above refuses a configuration without the address.
 */
function prometheusExporter(input: HaproxyPrometheusInput, privateAddressVariable: string): string[] {
  return [
    "",
    "frontend prometheus",
    `    bind "\${${privateAddressVariable}}:${input.port}"`,
    "    http-request set-log-level silent",
    `    http-request use-service prometheus-exporter if { path ${input.path} }`,
    "    http-request deny",
  ];
}
