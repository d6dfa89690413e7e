import { Domain } from "@cdktf/provider-digitalocean/lib/domain";
import { Record as DnsRecord } from "@cdktf/provider-digitalocean/lib/record";
import { Construct } from "constructs";

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
}

export const DEFAULT_DNS_TTL = 300;

/** The DNS zone on DigitalOcean and the site's A records. */
export class Dns extends Construct {
  public readonly domain: Domain;
  public readonly siteRecord: DnsRecord;
  public readonly apexRecord?: DnsRecord;
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
    this.siteHostNames = siteHostNames(props.domain, props.hostName, props.apexRecord ?? false);
  }
}

/** The names the site answers to, derived from settings alone (no references). */
export function siteHostNames(domain: string, hostName: string, apex: boolean): string[] {
  return apex ? [`${hostName}.${domain}`, domain] : [`${hostName}.${domain}`];
}
