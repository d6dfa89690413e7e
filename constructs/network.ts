import { Vpc } from "@cdktf/provider-digitalocean/lib/vpc";
import { Construct } from "constructs";

export interface NetworkProps {
  /** Name prefix of the VPC. */
  readonly project: string;
  /** DigitalOcean region slug. */
  readonly region: string;
  /** RFC 1918 range of the VPC, validated by `loadSettings`. */
  readonly ipRange: string;
}

/** The VPC every droplet joins; web traffic and replication stay on it. */
export class Network extends Construct {
  public readonly vpc: Vpc;
  /** The VPC's range in CIDR form. */
  public readonly ipRange: string;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.ipRange = props.ipRange;
    this.vpc = new Vpc(this, "vpc", {
      name: `${props.project}-${props.region}`,
      region: props.region,
      ipRange: props.ipRange,
      description: `Private network of ${props.project}`,
    });
  }
}
