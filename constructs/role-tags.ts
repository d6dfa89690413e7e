import { Tag } from "@cdktf/provider-digitalocean/lib/tag";
import { Construct } from "constructs";

export interface RoleTagsProps {
  /** Prefix of every tag name. */
  readonly project: string;
}

/**
 * One DigitalOcean tag per role, so firewalls and monitoring target roles
 * rather than droplets.
 */
export class RoleTags extends Construct {
  /** On every droplet of the project. */
  public readonly project: Tag;
  /** On the load balancer. */
  public readonly loadBalancer: Tag;
  /** On every web server. */
  public readonly web: Tag;
  /** On the web server holding the MySQL primary. */
  public readonly databasePrimary: Tag;
  /** On the web servers holding MySQL replicas. */
  public readonly databaseReplica: Tag;
  /** On the monitoring server: the only source the exporters answer. */
  public readonly monitoring: Tag;

  constructor(scope: Construct, id: string, props: RoleTagsProps) {
    super(scope, id);
    this.project = new Tag(this, "project", { name: props.project });
    this.loadBalancer = new Tag(this, "lb", { name: `${props.project}-lb` });
    this.web = new Tag(this, "web", { name: `${props.project}-web` });
    this.databasePrimary = new Tag(this, "db-primary", { name: `${props.project}-db-primary` });
    this.databaseReplica = new Tag(this, "db-replica", { name: `${props.project}-db-replica` });
    this.monitoring = new Tag(this, "monitoring", { name: `${props.project}-monitoring` });
  }
}
