import { Construct } from "constructs";
import { DatabaseRole } from "../cloud-init/mysql";
import { AppFile, webServerCloudConfig, WebServerUserDataInput } from "../cloud-init/user-data";
import { DatabasePasswords } from "./database-passwords";
import { webServerHostFirewall } from "./firewalls";
import { Network } from "./network";
import { RoleTags } from "./role-tags";
import { DropletOptions, Server } from "./server";

export interface WebServerProps {
  /** Droplet name, such as "web-01". */
  readonly name: string;
  /** Position among the web servers, from 1; also the MySQL `server_id`. The first holds the primary. */
  readonly index: number;
  readonly network: Network;
  readonly droplet: DropletOptions;
  readonly tags: RoleTags;
  readonly passwords: DatabasePasswords;
  /** The web server holding the MySQL primary. @default - this server is the primary */
  readonly primary?: WebServer;
  readonly siteHostNames: readonly string[];
  readonly replicaMaxLagSeconds: number;
  /** The application's files, installed under /srv/foobar/app. */
  readonly appFiles: readonly AppFile[];
  /** Command that serves the application on 127.0.0.1:8000. */
  readonly appCommand: string;
  /** CIDRs the host firewall lets reach SSH. @default - none */
  readonly adminCidrs?: readonly string[];
}

/** A web server: Nginx, the application server and MySQL (primary or replica). */
export class WebServer extends Construct {
  public readonly server: Server;
  public readonly databaseRole: DatabaseRole;

  constructor(scope: Construct, id: string, props: WebServerProps) {
    super(scope, id);
    this.databaseRole = props.primary ? "replica" : "primary";
    const roleTag = props.primary ? props.tags.databaseReplica : props.tags.databasePrimary;
    const input: WebServerUserDataInput = {
      hostname: props.name,
      databaseRole: this.databaseRole,
      mysqlServerId: props.index,
      // A reference to the primary droplet's address; the primary itself
      // uses its socket and never reads this.
      primaryAddress: props.primary?.server.privateIpv4 ?? "127.0.0.1",
      vpcIpRange: props.network.ipRange,
      siteHostNames: props.siteHostNames,
      replicationPassword: props.passwords.replication.result,
      appDatabasePassword: props.passwords.app.result,
      replicaMaxLagSeconds: props.replicaMaxLagSeconds,
      appFiles: props.appFiles,
      appCommand: props.appCommand,
      hostFirewall: webServerHostFirewall({
        vpcIpRange: props.network.ipRange,
        adminCidrs: props.adminCidrs ?? [],
      }),
    };
    this.server = new Server(this, "server", {
      name: props.name,
      network: props.network,
      droplet: props.droplet,
      tags: [props.tags.project, props.tags.web, roleTag],
      cloudConfig: webServerCloudConfig(input),
      sizeCauses: [
        { what: "the application folder (FOOBAR_APP_DIR)", without: webServerCloudConfig({ ...input, appFiles: [] }) },
      ],
    });
  }
}
