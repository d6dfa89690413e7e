import { Password } from "@cdktf/provider-random/lib/password";
import { Construct } from "constructs";

import { ExporterParts } from "../cloud-init/exporters";
import { monitoringServerCloudConfig } from "../cloud-init/monitoring-server";
import { DataVolume } from "./data-volume";
import { PASSWORD_OPTIONS } from "./database-passwords";
import { monitoringServerHostFirewall } from "./firewalls";
import { Network } from "./network";
import { RoleTags } from "./role-tags";
import { DropletOptions, Server } from "./server";

export interface MonitoringServerProps {
  /** The droplet's name. */
  readonly name: string;
  readonly network: Network;
  readonly droplet: DropletOptions;
  readonly tags: RoleTags;
  /** Size in GiB of the volume that holds Prometheus' data. */
  readonly volumeGib: number;
  /** The rendered prometheus.yml (targets by internal name), alert rules and alertmanager.yml. */
  readonly prometheusConfig: string;
  readonly alertRules: string;
  readonly alertmanagerConfig: string;
  /** What every droplet runs to be scraped. */
  readonly exporter: ExporterParts;
  /** Terraform token of the SMTP relay's password. @default - none */
  readonly smtpPassword?: string;
  /** CIDRs the host firewall lets reach SSH. @default - none */
  readonly adminCidrs?: readonly string[];
  /** Let Terraform delete the data volume. @default false */
  readonly allowDataLoss?: boolean;
}

/** The construct id of mon-01's volume: part of its Terraform address. */
export const MONITORING_VOLUME_ID = "data-volume";

/** The volume's name: `<droplet name>-prometheus`. */
export function monitoringVolumeName(dropletName: string): string {
  return `${dropletName}-prometheus`;
}

/**
 * mon-01: Prometheus and Alertmanager, Prometheus' data on a volume of its
 * own, its UI on the private address behind a generated password.
 */
export class MonitoringServer extends Construct {
  public readonly server: Server;
  public readonly dataVolume: DataVolume;
  /** Password of Prometheus' `admin` user. */
  public readonly uiPassword: Password;

  constructor(scope: Construct, id: string, props: MonitoringServerProps) {
    super(scope, id);
    this.dataVolume = new DataVolume(this, MONITORING_VOLUME_ID, {
      name: monitoringVolumeName(props.name),
      region: props.droplet.region,
      sizeGib: props.volumeGib,
      // Part of the volume's identity (the provider replaces it when this changes): keep it as it is.
      description: `Prometheus' data of ${props.name}`,
      mountPoint: "/var/lib/prometheus",
      label: "prometheus",
      requiredBy: ["prometheus.service", "prometheus-alertmanager.service"],
      allowDeletion: props.allowDataLoss,
    });
    this.uiPassword = new Password(this, "ui-password", PASSWORD_OPTIONS);
    this.server = new Server(this, "server", {
      name: props.name,
      network: props.network,
      droplet: props.droplet,
      tags: [props.tags.project, props.tags.monitoring],
      volumes: [this.dataVolume.volume],
      cloudConfig: monitoringServerCloudConfig({
        hostname: props.name,
        vpcIpRange: props.network.ipRange,
        dataVolume: this.dataVolume.mount,
        uiPassword: this.uiPassword.result,
        prometheusConfig: props.prometheusConfig,
        alertRules: props.alertRules,
        alertmanagerConfig: props.alertmanagerConfig,
        smtpPassword: props.smtpPassword,
        hostFirewall: monitoringServerHostFirewall({ vpcIpRange: props.network.ipRange, adminCidrs: props.adminCidrs ?? [] }),
        exporter: props.exporter,
      }),
    });
  }
}
