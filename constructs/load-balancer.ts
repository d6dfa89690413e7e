import { Password } from "@cdktf/provider-random/lib/password";
import { Construct } from "constructs";
import { HaproxyBackend } from "../cloud-init/haproxy";
import { HttpsInput, loadBalancerCloudConfig, LoadBalancerUserDataInput } from "../cloud-init/user-data";
import { PASSWORD_OPTIONS } from "./database-passwords";
import { loadBalancerHostFirewall } from "./firewalls";
import { RoleTags } from "./role-tags";
import { Network } from "./network";
import { DropletOptions, Server } from "./server";
import { WebServer } from "./web-server";

export interface LoadBalancerProps {
  /** @default "lb-01" */
  readonly name?: string;
  readonly network: Network;
  readonly droplet: DropletOptions;
  readonly tags: RoleTags;
  /** Host names of the site; the first is used in health checks and names the certificate. */
  readonly siteHostNames: readonly string[];
  /** The web servers to balance across, in order. At least one. */
  readonly webServers: readonly WebServer[];
  /** CIDRs the host firewall lets reach SSH. @default - none */
  readonly adminCidrs?: readonly string[];
  /** HTTPS with a certificate from an ACME CA. @default - plain HTTP on port 80 only */
  readonly https?: HttpsInput;
}

export const DEFAULT_LOAD_BALANCER_NAME = "lb-01";

/** lb-01: HAProxy, round robin across every web server's private address, TLS termination. */
export class LoadBalancer extends Construct {
  public readonly server: Server;
  /** Password of the `admin` user of HAProxy's stats page. */
  public readonly statsPassword: Password;

  constructor(scope: Construct, id: string, props: LoadBalancerProps) {
    super(scope, id);
    if (props.webServers.length === 0) throw new Error("LoadBalancer needs at least one web server");
    const backends: HaproxyBackend[] = props.webServers.map((web) => ({
      name: web.server.name,
      address: web.server.privateIpv4,
    }));
    const name = props.name ?? DEFAULT_LOAD_BALANCER_NAME;
    this.statsPassword = new Password(this, "stats-password", PASSWORD_OPTIONS);
    const input: LoadBalancerUserDataInput = {
      hostname: name,
      vpcIpRange: props.network.ipRange,
      siteHostNames: props.siteHostNames,
      backends,
      statsPassword: this.statsPassword.result,
      hostFirewall: loadBalancerHostFirewall({
        vpcIpRange: props.network.ipRange,
        adminCidrs: props.adminCidrs ?? [],
        https: props.https !== undefined,
      }),
      https: props.https,
    };
    this.server = new Server(this, "server", {
      name,
      network: props.network,
      droplet: props.droplet,
      tags: [props.tags.project, props.tags.loadBalancer],
      cloudConfig: loadBalancerCloudConfig(input),
      sizeCauses: props.https?.trustedCa
        ? [
            {
              what: "the CA file (FOOBAR_ACME_CA_FILE)",
              without: loadBalancerCloudConfig({ ...input, https: { ...props.https, trustedCa: undefined } }),
            },
          ]
        : [],
    });
  }
}
