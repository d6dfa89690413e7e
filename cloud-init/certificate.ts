/**
 * The site's certificate on lb-01: a self-signed placeholder so HAProxy can
 * start at once, then a real one from an ACME CA obtained by certbot over
 * HTTP-01, retried by systemd until it succeeds (typically once the DNS
 * record points at the load balancer), and renewed by certbot's own timer.
 */
import { dropletFile } from "./files";

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

/** Where certbot keeps the current certificate of `certName` (on the certificate volume when there is one). */
export function certificateLineage(certName: string): string {
  return `/etc/letsencrypt/live/${certName}`;
}

/**
 * Puts a certificate in place before HAProxy first starts
 * (`cloud-init/files/usr/local/sbin/foobar-placeholder-certificate`): the one
 * certbot already holds (a replaced load balancer finds it on its volume, and
 * asks the CA for nothing), else a self-signed placeholder until the ACME CA
 * issues the real one. Like the deploy hook, it writes key material under
 * `umask 077`.
 */
export function renderPlaceholderScript(siteHostNames: readonly string[]): string {
  return dropletFile(CERTIFICATE_PATHS.placeholderScript, {
    PEM: CERTIFICATE_PATHS.haproxyPem,
    LINEAGE: certificateLineage(siteHostNames[0]!),
    COMMON_NAME: siteHostNames[0]!,
    SUBJECT_ALT_NAME: siteHostNames.map((name) => `DNS:${name}`).join(","),
  });
}

/**
 * certbot's deploy hook (`cloud-init/files/usr/local/sbin/foobar-install-certificate`;
 * certbot sets `RENEWED_LINEAGE`): joins the chain and key into HAProxy's PEM,
 * replaces it atomically, and reloads HAProxy, which keeps serving existing
 * connections.
 */
export function deployHookScript(): string {
  return dropletFile(CERTIFICATE_PATHS.deployHook, { PEM: CERTIFICATE_PATHS.haproxyPem });
}

export interface CertificateUnitInput {
  /** Host names on the certificate; the first names it. */
  readonly siteHostNames: readonly string[];
  readonly acmeDirectoryUrl: string;
  readonly contactEmail: string;
}

/**
 * The oneshot unit that obtains the first certificate
 * (`cloud-init/files/etc/systemd/system/foobar-certificate.service`). On
 * failure systemd retries it, 30 s after the first attempt and then backing
 * off to every 30 min, forever (`StartLimitIntervalSec=0`: the DNS record may
 * take a while to point here): the CA's rate limits allow that, and it needs
 * no operator. Once the certificate exists the unit does nothing; renewal is
 * certbot's own timer, which reuses the settings saved here. certbot's Python
 * trusts `REQUESTS_CA_BUNDLE`, the system bundle, which includes any CA added
 * by cloud-init.
 */
export function renderCertificateUnit(input: CertificateUnitInput): string {
  const certName = input.siteHostNames[0]!;
  // "%" starts a systemd specifier; "%%" is a literal percent sign.
  const literal = (text: string) => text.replace(/%/g, "%%");
  return dropletFile(CERTIFICATE_PATHS.unitPath, {
    CERT_NAME: certName,
    LINEAGE: certificateLineage(certName),
    CA_BUNDLE: CERTIFICATE_PATHS.systemCaBundle,
    ACME_DIRECTORY_URL: literal(input.acmeDirectoryUrl),
    CONTACT_EMAIL: literal(input.contactEmail),
    // One continued line of ExecStart per name.
    DOMAINS: input.siteHostNames.map((name) => `-d ${name}`).join(" \\\n  "),
    CHALLENGE_PORT: String(ACME_CHALLENGE_PORT),
    DEPLOY_HOOK: CERTIFICATE_PATHS.deployHook,
  });
}
