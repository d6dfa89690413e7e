import { ReservedIp } from "@cdktf/provider-digitalocean/lib/reserved-ip";
import { ReservedIpAssignment } from "@cdktf/provider-digitalocean/lib/reserved-ip-assignment";
import { Token } from "cdktf";
import { Construct } from "constructs";
import { Server } from "./server";

export interface SiteAddressProps {
  readonly region: string;
  /** The droplet the address is assigned to: the load balancer. */
  readonly server: Server;
}

/**
 * The site's public address: a reserved IP that outlives any load balancer.
 * The DNS records point here; the assignment is its own resource, so a
 * replaced load balancer takes the same address and the records never change.
 */
export class SiteAddress extends Construct {
  public readonly reservedIp: ReservedIp;
  public readonly assignment: ReservedIpAssignment;

  constructor(scope: Construct, id: string, props: SiteAddressProps) {
    super(scope, id);
    this.reservedIp = new ReservedIp(this, "reserved-ip", { region: props.region });
    this.assignment = new ReservedIpAssignment(this, "assignment", {
      ipAddress: this.reservedIp.ipAddress,
      dropletId: Token.asNumber(props.server.droplet.id),
    });
  }

  /** The address (a Terraform reference). */
  public get ipv4(): string {
    return this.reservedIp.ipAddress;
  }
}
