import { Password } from "@cdktf/provider-random/lib/password";
import { Construct } from "constructs";

import { CERTIFICATE_PATHS, certificateLineage } from "../cloud-init/certificate";
import { HaproxyBackend } from "../cloud-init/haproxy";
import { HttpsInput, loadBalancerCloudConfig, LoadBalancerUserDataInput } from "../cloud-init/user-data";
import { DataVolume } from "./data-volume";
import { PASSWORD_OPTIONS } from "./database-passwords";
import { ACME_PEER_PORT, loadBalancerHostFirewall } from "./firewalls";
import { Network } from "./network";
import { RoleTags } from "./role-tags";
import { DropletOptions, Server } from "./server";

export interface LoadBalancerProps {
  /** @default "lb-01" */
  readonly name?: string;
  readonly network: Network;
  readonly droplet: DropletOptions;
  readonly tags: RoleTags;
  /** Host names of the site; the first is used in health checks and names the certificate. */
  readonly siteHostNames: readonly string[];
  /**
   * The web server slots to balance across, found by DNS at run time: the
   * load balancer's user-data names no web server's address, so adding or
   * replacing one changes nothing here. At least one.
   */
  readonly backends: readonly HaproxyBackend[];
  /** Let Terraform delete the certificate volume. @default false */
  readonly allowDataLoss?: boolean;
  /** CIDRs the host firewall lets reach SSH. @default - none */
  readonly adminCidrs?: readonly string[];
  /** HTTPS with a certificate from an ACME CA. @default - plain HTTP on port 80 only */
  readonly https?: HttpsInput;
  /** This load balancer is one of a pair sharing the reserved IP. @default - the only load balancer */
  readonly pair?: LoadBalancerPairMember;
  /** mon-01 scrapes this droplet's exporters: they run, and its firewall lets mon-01 reach them. @default false */
  readonly monitored?: boolean;
}

/** What one load balancer of a pair knows of its peer and of the pair's shared secrets. */
export interface LoadBalancerPairMember {
  /** 1 (preferred) or 2. */
  readonly index: 1 | 2;
  /** The peer's name in HAProxy's stats, such as "lb-02". */
  readonly peerName: string;
  /** DNS name of the peer's private address. */
  readonly peerHost: string;
  /** DNS name that resolves to the site's reserved IP. */
  readonly reservedIpHost: string;
  /** Terraform reference of the pair's VRRP password. */
  readonly vrrpPassword: string;
  /** Terraform reference of the sensitive API token variable. */
  readonly apiToken: string;
}

export const DEFAULT_LOAD_BALANCER_NAME = "lb-01";

/** The construct id of a load balancer's certificate volume: part of its Terraform address. */
export const CERTIFICATE_VOLUME_ID = "certificate-volume";

/** The certificate volume's name: `<droplet name>-certificates`. */
export function certificateVolumeName(dropletName: string): string {
  return `${dropletName}-certificates`;
}

/** The smallest volume DigitalOcean creates, in GiB: plenty for an ACME account and its certificates. */
export const CERTIFICATE_VOLUME_GIB = 1;

/**
 * lb-01: HAProxy, round robin across the web servers it finds by name, TLS
 * termination; with HTTPS, certbot's state on a volume of its own, so a
 * replaced load balancer serves the same certificate and asks the CA for none.
 */
export class LoadBalancer extends Construct {
  public readonly server: Server;
  /** Present with HTTPS. */
  public readonly certificateVolume?: DataVolume;
  /** Password of the `admin` user of HAProxy's stats page. */
  public readonly statsPassword: Password;

  constructor(scope: Construct, id: string, props: LoadBalancerProps) {
    super(scope, id);
    if (props.backends.length === 0) throw new Error("LoadBalancer needs at least one backend");
    const pair = props.pair;
    const name = props.name ?? DEFAULT_LOAD_BALANCER_NAME;
    if (props.https) {
      this.certificateVolume = new DataVolume(this, CERTIFICATE_VOLUME_ID, {
        name: certificateVolumeName(name),
        region: props.droplet.region,
        sizeGib: CERTIFICATE_VOLUME_GIB,
        // Part of the volume's identity (the provider replaces it when this changes): keep it as it is.
        description: `ACME account and certificates of ${name}`,
        mountPoint: "/etc/letsencrypt",
        label: "letsencrypt",
        // certbot's first issuance and its renewals; HAProxy itself reads its own copy.
        requiredBy: [CERTIFICATE_PATHS.unitName, "certbot.service"],
        allowDeletion: props.allowDataLoss,
      });
    }
    this.statsPassword = new Password(this, "stats-password", PASSWORD_OPTIONS);
    const input: LoadBalancerUserDataInput = {
      hostname: name,
      vpcIpRange: props.network.ipRange,
      siteHostNames: props.siteHostNames,
      backends: props.backends,
      certificateVolume: this.certificateVolume?.mount,
      statsPassword: this.statsPassword.result,
      monitored: props.monitored,
      hostFirewall: loadBalancerHostFirewall({
        monitoring: props.monitored,
        vpcIpRange: props.network.ipRange,
        adminCidrs: props.adminCidrs ?? [],
        https: props.https !== undefined,
        pair: pair !== undefined,
      }),
      https: props.https,
      pair: pair && {
        acmePeer: props.https ? { name: pair.peerName, hostName: pair.peerHost, port: ACME_PEER_PORT } : undefined,
        failover: {
          index: pair.index,
          hostname: name,
          peerHost: pair.peerHost,
          reservedIpHost: pair.reservedIpHost,
          vrrpPassword: pair.vrrpPassword,
          apiToken: pair.apiToken,
          requiredCertificate: props.https ? `${certificateLineage(props.siteHostNames[0]!)}/fullchain.pem` : undefined,
        },
      },
    };
    this.server = new Server(this, "server", {
      name,
      network: props.network,
      droplet: props.droplet,
      tags: [props.tags.project, props.tags.loadBalancer],
      cloudConfig: loadBalancerCloudConfig(input),
      volumes: this.certificateVolume ? [this.certificateVolume.volume] : [],
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
