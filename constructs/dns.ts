import { Domain } from "@cdktf/provider-digitalocean/lib/domain";
import { Record as DnsRecord } from "@cdktf/provider-digitalocean/lib/record";
import { Construct } from "constructs";

import { INTERNAL_LABEL } from "../names";

export interface DnsProps {
  /** The zone, such as "foobar.com". */
  readonly domain: string;
  /** The site's host name in the zone, such as "www". */
  readonly hostName: string;
  /** IPv4 address the site's records point at (a Terraform reference). */
  readonly address: string;
  /** Record TTL in seconds. @default 300 */
  readonly ttl?: number;
  /** Also point the apex (`@`) at `address`. @default false */
  readonly apexRecord?: boolean;
  /**
   * Names for private addresses, under `internal.<domain>`: how droplets find
   * each other at run time, so no droplet's user-data holds another's address.
   * @default - none
   */
  readonly internalHosts?: readonly InternalHost[];
}

/** One private address the droplets look up by name. */
export interface InternalHost {
  /** The label under `internal`, such as `web-01` or `mysql-primary`. */
  readonly label: string;
  /** The private IPv4 address (a Terraform reference). */
  readonly address: string;
}

/**
 * TTL of the internal records, in seconds: DigitalOcean's minimum, so a
 * replaced droplet's new address is seen within half a minute.
 */
export const INTERNAL_TTL = 30;

export const DEFAULT_DNS_TTL = 300;

/** The DNS zone on DigitalOcean, the site's A records and the droplets' internal names. */
export class Dns extends Construct {
  public readonly domain: Domain;
  public readonly siteRecord: DnsRecord;
  public readonly apexRecord?: DnsRecord;
  /** The `<label>.internal` records, by label. */
  public readonly internalRecords: Readonly<Record<string, DnsRecord>>;
  /** Fully qualified names that point at the site, the site's own first. */
  public readonly siteHostNames: readonly string[];

  constructor(scope: Construct, id: string, props: DnsProps) {
    super(scope, id);
    const ttl = props.ttl ?? DEFAULT_DNS_TTL;
    this.domain = new Domain(this, "domain", { name: props.domain });
    this.siteRecord = new DnsRecord(this, "site", {
      domain: this.domain.id,
      type: "A",
      name: props.hostName,
      value: props.address,
      ttl,
    });
    if (props.apexRecord) {
      this.apexRecord = new DnsRecord(this, "apex", {
        domain: this.domain.id,
        type: "A",
        name: "@",
        value: props.address,
        ttl,
      });
    }
    const internalRecords: Record<string, DnsRecord> = {};
    for (const host of props.internalHosts ?? []) {
      // Construct ids are the labels: a stable id per name, whatever the order.
      internalRecords[host.label] = new DnsRecord(this, `internal-${host.label}`, {
        domain: this.domain.id,
        type: "A",
        name: `${host.label}.${INTERNAL_LABEL}`,
        value: host.address,
        ttl: INTERNAL_TTL,
      });
    }
    this.internalRecords = internalRecords;
    this.siteHostNames = siteHostNames(props.domain, props.hostName, props.apexRecord ?? false);
  }
}

/** The names the site answers to, derived from settings alone (no references). */
export function siteHostNames(domain: string, hostName: string, apex: boolean): string[] {
  return apex ? [`${hostName}.${domain}`, domain] : [`${hostName}.${domain}`];
}
