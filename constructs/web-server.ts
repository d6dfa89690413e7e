import { Construct } from "constructs";

import { BackupInput } from "../cloud-init/backup";
import { DatabaseRole } from "../cloud-init/mysql";
import { AppFile, webServerCloudConfig, WebServerUserDataInput } from "../cloud-init/user-data";
import { DataVolume } from "./data-volume";
import { DatabasePasswords } from "./database-passwords";
import { INTERNAL_TTL } from "./dns";
import { webServerHostFirewall } from "./firewalls";
import { Network } from "./network";
import { RoleTags } from "./role-tags";
import { DropletOptions, Server } from "./server";

export interface WebServerProps {
  /** Droplet name, such as "web-01". */
  readonly name: string;
  /** Position among the web servers, from 1; also the MySQL `server_id`. */
  readonly index: number;
  /** Set up as the MySQL primary on its first boot (`FOOBAR_DB_PRIMARY` names it). @default - the first */
  readonly databasePrimary?: boolean;
  /** Milliseconds a commit waits for a replica's acknowledgement. @default 2000 */
  readonly semiSyncTimeoutMs?: number;
  /** DNS names of every web server slot, for the database agent. @default - this one only */
  readonly peerHosts?: readonly string[];
  readonly network: Network;
  readonly droplet: DropletOptions;
  readonly tags: RoleTags;
  readonly passwords: DatabasePasswords;
  /**
   * DNS name of the MySQL primary's private address (`mysql-primary.internal.<domain>`):
   * replicas and the application find the primary by it at run time.
   */
  readonly primaryHost: string;
  readonly siteHostNames: readonly string[];
  readonly replicaMaxLagSeconds: number;
  /** The application's files, installed under /srv/foobar/app. */
  readonly appFiles: readonly AppFile[];
  /** Command that serves the application on 127.0.0.1:8000. */
  readonly appCommand: string;
  /** CIDRs the host firewall lets reach SSH. @default - none */
  readonly adminCidrs?: readonly string[];
  /** Size of the MySQL data volume, in GiB. */
  readonly databaseVolumeGib: number;
  /** Let Terraform delete the MySQL data volume. @default false */
  readonly allowDataLoss?: boolean;
  /** Where and how the database is backed up. @default - no backups */
  readonly backup?: BackupInput;
  /** mon-01 scrapes this droplet's exporters: they run, and its firewall lets mon-01 reach them. @default false */
  readonly monitored?: boolean;
}

/** MySQL's own default is 10 s; a commit should not stall that long when a replica is away. */
export const DEFAULT_SEMI_SYNC_TIMEOUT_MS = 2000;

/** The construct id of a web server's MySQL volume: part of its Terraform address. */
export const DATABASE_VOLUME_ID = "mysql-volume";

/** The MySQL data volume's name: `<droplet name>-mysql`. */
export function databaseVolumeName(dropletName: string): string {
  return `${dropletName}-mysql`;
}

/**
 * A web server: Nginx, the application server and MySQL (primary or replica),
 * with MySQL's data on a volume of its own that outlives the droplet.
 */
export class WebServer extends Construct {
  public readonly server: Server;
  public readonly databaseRole: DatabaseRole;
  public readonly databaseVolume: DataVolume;
  /** Where and how its database is backed up; undefined without backups. */
  public readonly backup?: BackupInput;

  constructor(scope: Construct, id: string, props: WebServerProps) {
    super(scope, id);
    this.backup = props.backup;
    this.databaseRole = (props.databasePrimary ?? props.index === 1) ? "primary" : "replica";
    const roleTag = this.databaseRole === "primary" ? props.tags.databasePrimary : props.tags.databaseReplica;
    this.databaseVolume = new DataVolume(this, DATABASE_VOLUME_ID, {
      name: databaseVolumeName(props.name),
      region: props.droplet.region,
      sizeGib: props.databaseVolumeGib,
      // Part of the volume's identity (the provider replaces it when this changes): keep it as it is.
      description: `MySQL data of ${props.name}`,
      mountPoint: "/var/lib/mysql",
      label: "mysql",
      requiredBy: ["mysql.service"],
      allowDeletion: props.allowDataLoss,
    });
    const input: WebServerUserDataInput = {
      hostname: props.name,
      databaseRole: this.databaseRole,
      mysqlServerId: props.index,
      primaryHost: props.primaryHost,
      databaseVolume: this.databaseVolume.mount,
      vpcIpRange: props.network.ipRange,
      siteHostNames: props.siteHostNames,
      replicationPassword: props.passwords.replication.result,
      appDatabasePassword: props.passwords.app.result,
      replicaMaxLagSeconds: props.replicaMaxLagSeconds,
      appFiles: props.appFiles,
      appCommand: props.appCommand,
      monitored: props.monitored,
      hostFirewall: webServerHostFirewall({
        monitoring: props.monitored,
        vpcIpRange: props.network.ipRange,
        adminCidrs: props.adminCidrs ?? [],
      }),
      semiSyncTimeoutMs: props.semiSyncTimeoutMs ?? DEFAULT_SEMI_SYNC_TIMEOUT_MS,
      databaseAgent: { peerHosts: props.peerHosts ?? [], recordTtlSeconds: INTERNAL_TTL },
      backup: props.backup,
    };
    this.server = new Server(this, "server", {
      name: props.name,
      network: props.network,
      droplet: props.droplet,
      tags: [props.tags.project, props.tags.web, roleTag],
      cloudConfig: webServerCloudConfig(input),
      volumes: [this.databaseVolume.volume],
      sizeCauses: [{ what: "the application folder (FOOBAR_APP_DIR)", without: webServerCloudConfig({ ...input, appFiles: [] }) }],
    });
  }
}
