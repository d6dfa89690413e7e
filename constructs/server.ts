import { Droplet } from "@cdktf/provider-digitalocean/lib/droplet";
import { Tag } from "@cdktf/provider-digitalocean/lib/tag";
import { Construct } from "constructs";
import {
  CloudConfig,
  escapeTerraformTemplate,
  renderCloudConfig,
  USER_DATA_BUDGET_BYTES,
  userDataBytes,
} from "../cloud-init/cloud-config";
import { SettingsError } from "../settings";
import { Network } from "./network";

export interface DropletOptions {
  /** Image slug. */
  readonly image: string;
  /** Region slug. */
  readonly region: string;
  /** Size slug. */
  readonly size: string;
  /** SSH key ids or fingerprints. @default - none */
  readonly sshKeys?: readonly string[];
  /** Install DigitalOcean's metrics agent, needed by monitor alerts. @default true */
  readonly monitoring?: boolean;
}

export interface ServerProps {
  /** Droplet name, such as "web-01". */
  readonly name: string;
  readonly network: Network;
  readonly droplet: DropletOptions;
  readonly tags: readonly Tag[];
  /** The droplet's first-boot configuration. */
  readonly cloudConfig: CloudConfig;
}

/** A droplet in the VPC whose user-data is a rendered `#cloud-config`. */
export class Server extends Construct {
  public readonly droplet: Droplet;
  public readonly name: string;
  /** The user-data exactly as the droplet receives it, before Terraform resolves references. */
  public readonly userData: string;

  constructor(scope: Construct, id: string, props: ServerProps) {
    super(scope, id);
    this.name = props.name;
    this.userData = escapeTerraformTemplate(renderCloudConfig(props.cloudConfig));
    const bytes = userDataBytes(this.userData);
    if (bytes > USER_DATA_BUDGET_BYTES) {
      throw new SettingsError(
        `user-data of ${props.name} is ${bytes} bytes, over the ${USER_DATA_BUDGET_BYTES}-byte budget ` +
          `(DigitalOcean accepts 65536): make the application folder (FOOBAR_APP_DIR) smaller`,
      );
    }
    this.droplet = new Droplet(this, "droplet", {
      name: props.name,
      image: props.droplet.image,
      region: props.droplet.region,
      size: props.droplet.size,
      vpcUuid: props.network.vpc.id,
      monitoring: props.droplet.monitoring ?? true,
      sshKeys: props.droplet.sshKeys?.length ? [...props.droplet.sshKeys] : undefined,
      tags: props.tags.map((tag) => tag.name),
      userData: this.userData,
    });
  }

  /** Public IPv4 address (a Terraform reference). */
  public get publicIpv4(): string {
    return this.droplet.ipv4Address;
  }

  /** Private (VPC) IPv4 address (a Terraform reference). */
  public get privateIpv4(): string {
    return this.droplet.ipv4AddressPrivate;
  }
}
