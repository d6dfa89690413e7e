/** A web server HAProxy balances across. */
export interface HaproxyBackend {
  /** Server name in HAProxy's logs and stats, such as "web-01". */
  readonly name: string;
  /** Private IPv4 address (may be a Terraform token). */
  readonly address: string;
}

export interface HaproxyInput {
  /** Host names the site answers to; the first is sent in health checks. */
  readonly siteHostNames: readonly string[];
  /** Web servers, in order. At least one. */
  readonly backends: readonly HaproxyBackend[];
  /** Path of the application's health endpoint, served through Nginx. */
  readonly healthPath: string;
  /** Port Nginx listens on, on the private address. */
  readonly backendPort: number;
}

/** Health checks: every 2 s; down after 3 failures, up after 2 successes. */
export const HEALTH_CHECK = { interMs: 2000, fastInterMs: 1000, downInterMs: 5000, fall: 3, rise: 2 } as const;

/**
 * Renders `/etc/haproxy/haproxy.cfg` for lb-01: HTTP on port 80, round robin
 * across every web server's private address with active health checks.
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
    "    maxconn 4096",
    "",
    "defaults",
    "    mode http",
    "    log global",
    "    option httplog",
    "    option dontlognull",
    "    option http-server-close",
    "    option forwardfor",
    // A request whose connection to a dying server fails is sent to another.
    "    option redispatch 1",
    "    retries 3",
    "    retry-on conn-failure empty-response",
    "    timeout connect 3s",
    "    timeout client 30s",
    "    timeout server 30s",
    "    timeout http-request 10s",
    "    timeout http-keep-alive 5s",
    "    timeout queue 30s",
    "    timeout check 2s",
    "",
    "frontend www",
    "    bind :80",
    "    unique-id-format %[uuid()]",
    "    unique-id-header X-Request-ID",
    "    http-request set-header X-Forwarded-Proto http",
    "    default_backend web_servers",
    "",
    "backend web_servers",
    "    balance roundrobin",
    "    option httpchk",
    `    http-check send meth GET uri ${input.healthPath} ver HTTP/1.1 hdr Host ${input.siteHostNames[0]}`,
    "    http-check expect status 200",
    `    default-server check inter ${check.interMs} fastinter ${check.fastInterMs} downinter ${check.downInterMs} fall ${check.fall} rise ${check.rise}`,
    ...input.backends.map((backend) => `    server ${backend.name} ${backend.address}:${input.backendPort}`),
  ];
  return lines.join("\n") + "\n";
}
