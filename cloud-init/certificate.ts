/**
 * The site's certificate on lb-01: a self-signed placeholder so HAProxy can
 * start at once, then a real one from an ACME CA obtained by certbot over
 * HTTP-01, retried by systemd until it succeeds (typically once the DNS
 * record points at the load balancer), and renewed by certbot's own timer.
 */

export const CERTIFICATE_PATHS = {
  /** Chain and key in one file, the form HAProxy loads. */
  haproxyPem: "/etc/haproxy/certs/site.pem",
  placeholderScript: "/usr/local/sbin/foobar-placeholder-certificate",
  /** certbot's deploy hook: runs after every issuance and renewal. */
  deployHook: "/usr/local/sbin/foobar-install-certificate",
  unitName: "foobar-certificate.service",
  unitPath: "/etc/systemd/system/foobar-certificate.service",
  /** Where cloud-init's ca_certs module installs an extra trusted CA on Debian and Ubuntu. */
  systemCaBundle: "/etc/ssl/certs/ca-certificates.crt",
} as const;

/** Loopback port certbot's standalone server answers HTTP-01 challenges on; HAProxy routes to it. */
export const ACME_CHALLENGE_PORT = 8402;

/** Lines shared by the scripts: strict mode and a private umask for key material. */
const SCRIPT_HEADER = ["#!/bin/bash", "set -euo pipefail", "umask 077"];

/** Where certbot keeps the current certificate of `certName` (on the certificate volume when there is one). */
export function certificateLineage(certName: string): string {
  return `/etc/letsencrypt/live/${certName}`;
}

/**
 * Puts a certificate in place before HAProxy first starts: the one certbot
 * already holds (a replaced load balancer finds it on its volume, and asks
 * the CA for nothing), else a self-signed placeholder until the ACME CA
 * issues the real one.
 */
export function renderPlaceholderScript(siteHostNames: readonly string[]): string {
  const subjectAltName = siteHostNames.map((name) => `DNS:${name}`).join(",");
  return (
    [
      ...SCRIPT_HEADER,
      "# Managed by cloud-init (foobar): the kept certificate, or a placeholder until the ACME CA issues one.",
      `pem=${CERTIFICATE_PATHS.haproxyPem}`,
      `lineage=${certificateLineage(siteHostNames[0]!)}`,
      'if [ -s "$pem" ]; then exit 0; fi',
      'mkdir -p "$(dirname "$pem")"',
      "work=$(mktemp -d)",
      "trap 'rm -rf \"$work\"' EXIT",
      'if [ -s "$lineage/fullchain.pem" ] && [ -s "$lineage/privkey.pem" ]; then',
      '  cat "$lineage/fullchain.pem" "$lineage/privkey.pem" > "$work/site.pem"',
      '  install -m 0600 -o haproxy -g haproxy "$work/site.pem" "$pem"',
      '  echo "foobar-placeholder-certificate: installed the certificate kept in $lineage"',
      "  exit 0",
      "fi",
      "openssl req -x509 -newkey rsa:2048 -nodes -days 30 \\",
      `  -subj "/CN=${siteHostNames[0]}" -addext "subjectAltName=${subjectAltName}" \\`,
      '  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null',
      'cat "$work/cert.pem" "$work/key.pem" > "$work/site.pem"',
      'install -m 0600 -o haproxy -g haproxy "$work/site.pem" "$pem"',
      'echo "foobar-placeholder-certificate: wrote a self-signed placeholder to $pem"',
    ].join("\n") + "\n"
  );
}

/**
 * certbot's deploy hook (certbot sets `RENEWED_LINEAGE`): joins the chain and
 * key into HAProxy's PEM, replaces it atomically, and reloads HAProxy, which
 * keeps serving existing connections.
 */
export const DEPLOY_HOOK_SCRIPT =
  [
    ...SCRIPT_HEADER,
    "# Managed by cloud-init (foobar): certbot deploy hook.",
    `pem=${CERTIFICATE_PATHS.haproxyPem}`,
    "lineage=${RENEWED_LINEAGE:?certbot sets RENEWED_LINEAGE}",
    'next=$(mktemp "$pem.XXXXXX")',
    'cat "$lineage/fullchain.pem" "$lineage/privkey.pem" > "$next"',
    'chown haproxy:haproxy "$next"',
    'chmod 0600 "$next"',
    'mv -f "$next" "$pem"',
    "systemctl reload haproxy.service",
    'echo "foobar-install-certificate: installed $lineage in $pem and reloaded HAProxy"',
  ].join("\n") + "\n";

export interface CertificateUnitInput {
  /** Host names on the certificate; the first names it. */
  readonly siteHostNames: readonly string[];
  readonly acmeDirectoryUrl: string;
  readonly contactEmail: string;
}

/**
 * The oneshot unit that obtains the first certificate. On failure systemd
 * retries it, 30 s after the first attempt and then backing off to every
 * 30 min, forever: the CA's rate limits allow that, and it needs no
 * operator. Once the certificate exists the unit does nothing; renewal is
 * certbot's own timer, which reuses the settings saved here.
 */
export function renderCertificateUnit(input: CertificateUnitInput): string {
  const certName = input.siteHostNames[0];
  // "%" starts a systemd specifier; "%%" is a literal percent sign.
  const literal = (text: string) => text.replace(/%/g, "%%");
  const certbot = [
    "/usr/bin/certbot certonly --non-interactive --agree-tos",
    `--server ${literal(input.acmeDirectoryUrl)}`,
    `--email ${literal(input.contactEmail)}`,
    `--cert-name ${certName}`,
    ...input.siteHostNames.map((name) => `-d ${name}`),
    `--standalone --http-01-address 127.0.0.1 --http-01-port ${ACME_CHALLENGE_PORT}`,
    `--deploy-hook ${CERTIFICATE_PATHS.deployHook}`,
  ];
  return (
    [
      "# Managed by cloud-init (foobar): edit the CDKTF stack, not this file.",
      "[Unit]",
      `Description=Obtain the certificate of ${certName} from the ACME CA`,
      "Wants=network-online.target",
      "After=network-online.target haproxy.service",
      `ConditionPathExists=!${certificateLineage(certName)}/fullchain.pem`,
      // Retry forever: the DNS record may take a while to point here.
      "StartLimitIntervalSec=0",
      "",
      "[Service]",
      "Type=oneshot",
      // certbot's Python trusts this bundle, which includes any CA added by cloud-init.
      `Environment=REQUESTS_CA_BUNDLE=${CERTIFICATE_PATHS.systemCaBundle}`,
      `ExecStart=${certbot.join(" \\\n  ")}`,
      "Restart=on-failure",
      "RestartSec=30s",
      "RestartSteps=6",
      "RestartMaxDelaySec=30min",
      "",
      "[Install]",
      "WantedBy=multi-user.target",
    ].join("\n") + "\n"
  );
}
