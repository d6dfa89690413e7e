import { ReservedIp } from "@cdktf/provider-digitalocean/lib/reserved-ip";
import { ReservedIpAssignment } from "@cdktf/provider-digitalocean/lib/reserved-ip-assignment";
import { Token } from "cdktf";
import { Construct } from "constructs";

import { Server } from "./server";

/** The construct id of the assignment resource (one load balancer): part of its Terraform address. */
export const SITE_ADDRESS_ASSIGNMENT_ID = "assignment";

export interface SiteAddressProps {
  readonly region: string;
  /** The droplet the address is assigned to: the load balancer. */
  readonly server: Server;
  /**
   * The load balancers move the address themselves (a pair): it is assigned
   * to `server` when created, and Terraform never moves it back afterwards.
   * @default false
   */
  readonly movedAtRunTime?: boolean;
}

/**
 * The site's public address: a reserved IP that outlives any load balancer.
 * The DNS records point here; the assignment is its own resource, so a
 * replaced load balancer takes the same address and the records never change.
 */
export class SiteAddress extends Construct {
  public readonly reservedIp: ReservedIp;
  /** Absent when the load balancers move the address. */
  public readonly assignment?: ReservedIpAssignment;

  constructor(scope: Construct, id: string, props: SiteAddressProps) {
    super(scope, id);
    const dropletId = Token.asNumber(props.server.droplet.id);
    // `droplet_id` is Optional (not Computed) on the reserved IP: were it not
    // ignored, going from a pair to one load balancer (the argument leaves
    // the configuration) would plan it to null, and the provider would
    // unassign the site's address.
    const lifecycle = { ignoreChanges: ["droplet_id"] };
    if (props.movedAtRunTime) {
      // An assignment resource would be re-created (the address moved back)
      // by the first `cdktf deploy` after a failover: the provider drops an
      // assignment whose droplet no longer holds the address from its state.
      // A stack that had one forgets it (FoobarStack's `removed` blocks):
      // deleting it would unassign the address.
      this.reservedIp = new ReservedIp(this, "reserved-ip", { region: props.region, dropletId, lifecycle });
      return;
    }
    this.reservedIp = new ReservedIp(this, "reserved-ip", { region: props.region, lifecycle });
    this.assignment = new ReservedIpAssignment(this, SITE_ADDRESS_ASSIGNMENT_ID, {
      ipAddress: this.reservedIp.ipAddress,
      dropletId,
    });
  }

  /** The address (a Terraform reference). */
  public get ipv4(): string {
    return this.reservedIp.ipAddress;
  }
}
