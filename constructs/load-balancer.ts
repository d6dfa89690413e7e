import { Construct } from "constructs";
import { HaproxyBackend } from "../cloud-init/haproxy";
import { APP } from "../cloud-init/app";
import { loadBalancerCloudConfig, WEB_PORT } from "../cloud-init/user-data";
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
  /** Host names of the site; the first is used in health checks. */
  readonly siteHostNames: readonly string[];
  /** The web servers to balance across, in order. At least one. */
  readonly webServers: readonly WebServer[];
}

export const DEFAULT_LOAD_BALANCER_NAME = "lb-01";

/** lb-01: HAProxy, round robin across every web server's private address. */
export class LoadBalancer extends Construct {
  public readonly server: Server;

  constructor(scope: Construct, id: string, props: LoadBalancerProps) {
    super(scope, id);
    if (props.webServers.length === 0) throw new Error("LoadBalancer needs at least one web server");
    const backends: HaproxyBackend[] = props.webServers.map((web) => ({
      name: web.server.name,
      address: web.server.privateIpv4,
    }));
    const name = props.name ?? DEFAULT_LOAD_BALANCER_NAME;
    this.server = new Server(this, "server", {
      name,
      network: props.network,
      droplet: props.droplet,
      tags: [props.tags.project, props.tags.loadBalancer],
      cloudConfig: loadBalancerCloudConfig({
        hostname: name,
        haproxy: {
          siteHostNames: props.siteHostNames,
          backends,
          healthPath: APP.healthPath,
          backendPort: WEB_PORT,
        },
      }),
    });
  }
}
