import { Droplet } from "@cdktf/provider-digitalocean/lib/droplet";
import { Tag } from "@cdktf/provider-digitalocean/lib/tag";
import { Volume } from "@cdktf/provider-digitalocean/lib/volume";
import { Construct } from "constructs";

import {
  CloudConfig,
  escapeTerraformTemplate,
  renderCloudConfig,
  USER_DATA_BUDGET_BYTES,
  USER_DATA_LIMIT_BYTES,
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

/** Something an operator's setting adds to a droplet's user-data, for the size error to name. */
export interface UserDataSizeCause {
  /** What it is, naming its setting: "the application folder (FOOBAR_APP_DIR)". */
  readonly what: string;
  /** The same droplet's configuration without it. */
  readonly without: CloudConfig;
}

export interface ServerProps {
  /** Droplet name, such as "web-01". */
  readonly name: string;
  readonly network: Network;
  readonly droplet: DropletOptions;
  readonly tags: readonly Tag[];
  /** The droplet's first-boot configuration. */
  readonly cloudConfig: CloudConfig;
  /** What settings add to the user-data, named when it is over the budget. @default - none */
  readonly sizeCauses?: readonly UserDataSizeCause[];
  /** Volumes attached when the droplet is created. @default - none */
  readonly volumes?: readonly Volume[];
}

/**
 * Droplet arguments a change of which Terraform must not act on by itself:
 * the provider replaces a droplet whose `user_data` or `ssh_keys` change,
 * which would make every routine change (new application files, an SSH key)
 * destroy a server. They apply to droplets created from now on; replacing an
 * existing droplet with them is the operator's explicit choice
 * (`terraform apply -replace`, see the runbook in docs/day-two.md).
 */
export const IGNORED_DROPLET_CHANGES = ["user_data", "ssh_keys"] as const;

/** The user-data of a configuration, exactly as the droplet receives it before Terraform resolves references. */
function userDataOf(config: CloudConfig): string {
  return escapeTerraformTemplate(renderCloudConfig(config));
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
    this.userData = userDataOf(props.cloudConfig);
    const bytes = userDataBytes(this.userData);
    if (bytes > USER_DATA_BUDGET_BYTES) {
      const causes = (props.sizeCauses ?? [])
        .map((cause) => ({ what: cause.what, adds: bytes - userDataBytes(userDataOf(cause.without)) }))
        .filter((cause) => cause.adds > 0)
        .sort((a, b) => b.adds - a.adds);
      const named = causes.length
        ? causes.map((cause) => `${cause.what} adds ${cause.adds} bytes`).join(", ") + `: make ${causes.length > 1 ? "them" : "it"} smaller`
        : "no setting adds to it, so this is a bug in the stack";
      throw new SettingsError(
        `user-data of ${props.name} is ${bytes} bytes, ${bytes - USER_DATA_BUDGET_BYTES} over the ` +
          `${USER_DATA_BUDGET_BYTES}-byte budget (DigitalOcean accepts ${USER_DATA_LIMIT_BYTES}): ${named}`,
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
      volumeIds: props.volumes?.length ? props.volumes.map((volume) => volume.id) : undefined,
      lifecycle: { ignoreChanges: [...IGNORED_DROPLET_CHANGES] },
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
