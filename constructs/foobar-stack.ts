import { Project } from "@cdktf/provider-digitalocean/lib/project";
import { DigitaloceanProvider } from "@cdktf/provider-digitalocean/lib/provider";
import { RandomProvider } from "@cdktf/provider-random/lib/provider";
import { TerraformOutput, TerraformStack } from "cdktf";
import { Construct } from "constructs";
import { DEFAULT_APP_COMMAND } from "../cloud-init/app";
import { HAPROXY_STATS } from "../cloud-init/user-data";
import { readCaFile, Settings } from "../settings";
import { readAppFiles, SAMPLE_APP_DIR } from "./app-files";
import { DatabasePasswords } from "./database-passwords";
import { Dns, siteHostNames } from "./dns";
import { Firewalls } from "./firewalls";
import { DEFAULT_LOAD_BALANCER_NAME, LoadBalancer } from "./load-balancer";
import { AlertDestinations, hasAlertDestinations, Monitoring } from "./monitoring";
import { Network } from "./network";
import { RoleTags } from "./role-tags";
import { DropletOptions } from "./server";
import { SpacesBackend, TERRAFORM_VERSION_FOR_SPACES } from "./spaces-backend";
import { WebServer } from "./web-server";

/**
 * The DigitalOcean provider versions this stack was checked against: the
 * prebuilt bindings are generated from 2.71.0 and only ask for `~> 2.19`.
 */
export const DIGITALOCEAN_PROVIDER_VERSION = ">= 2.71.0, < 3.0.0";

/** "web-01", "web-02", …: construct ids and droplet names. Renaming one replaces that droplet. */
export function webServerName(index: number): string {
  return `web-${String(index).padStart(2, "0")}`;
}

/**
 * The prefix of every DigitalOcean name (tags, firewalls, VPC, project):
 * the project, or `<project>-<environment>` so that two environments in one
 * account never share a tag, and so never a firewall rule.
 */
export function namePrefix(settings: Settings): string {
  return settings.environment ? `${settings.project}-${settings.environment}` : settings.project;
}

/** The object key of a stack's state in the Spaces bucket. */
export function stateKey(stackName: string): string {
  return `${stackName}/terraform.tfstate`;
}

/** DigitalOcean's project `environment` for an environment's name. */
function projectEnvironment(environment: string | undefined): string {
  if (environment === "staging") return "Staging";
  if (environment === "development" || environment === "dev") return "Development";
  return "Production";
}

/** The whole site: VPC, lb-01, the web servers, firewalls, DNS and outputs. */
export class FoobarStack extends TerraformStack {
  public readonly network: Network;
  public readonly loadBalancer: LoadBalancer;
  public readonly webServers: readonly WebServer[];
  public readonly firewalls: Firewalls;
  public readonly dns: Dns;
  /** Present only when an alert e-mail or Slack webhook is set. */
  public readonly monitoring?: Monitoring;

  constructor(scope: Construct, id: string, settings: Settings) {
    super(scope, id);
    // Everything that can fail on bad settings runs before any resource exists.
    const appFiles = readAppFiles(settings.appDir ?? SAMPLE_APP_DIR);
    const appCommand = settings.appCommand ?? DEFAULT_APP_COMMAND;
    const hostNames = siteHostNames(settings.domain, settings.hostName, settings.apexRecord);
    const trustedCa = settings.acmeCaFile !== undefined ? readCaFile(settings.acmeCaFile) : undefined;
    const siteUrl = `${settings.https ? "https" : "http"}://${hostNames[0]}/`;

    // Default: names as they always were. In an environment every name
    // carries `<project>-<environment>`; construct ids never change.
    const project = namePrefix(settings);
    const dropletName = (role: string) => (settings.environment ? `${project}-${role}` : role);

    // The token comes from DIGITALOCEAN_TOKEN at plan/apply time only.
    new DigitaloceanProvider(this, "digitalocean", {});
    new RandomProvider(this, "random", {});
    this.addOverride("terraform.required_providers.digitalocean.version", DIGITALOCEAN_PROVIDER_VERSION);
    // Without a bucket cdktf keeps the state in terraform.<stack>.tfstate.
    if (settings.stateBucket !== undefined) {
      new SpacesBackend(this, {
        bucket: settings.stateBucket,
        region: settings.stateRegion,
        key: stateKey(id),
        locking: settings.stateLocking,
      });
      this.addOverride("terraform.required_version", TERRAFORM_VERSION_FOR_SPACES);
    }

    this.network = new Network(this, "network", {
      project,
      region: settings.region,
      ipRange: settings.vpcIpRange,
    });
    const tags = new RoleTags(this, "tags", { project });
    const passwords = new DatabasePasswords(this, "database-passwords");
    const droplet: DropletOptions = {
      image: settings.image,
      region: settings.region,
      size: settings.size,
      sshKeys: settings.sshKeys,
    };

    const webServers: WebServer[] = [];
    for (let index = 1; index <= settings.webServers; index++) {
      const id = webServerName(index);
      webServers.push(
        new WebServer(this, id, {
          name: dropletName(id),
          index,
          network: this.network,
          droplet,
          tags,
          passwords,
          primary: webServers[0],
          siteHostNames: hostNames,
          replicaMaxLagSeconds: settings.replicaMaxLagSeconds,
          appFiles,
          appCommand,
          adminCidrs: settings.adminCidrs,
        }),
      );
    }
    this.webServers = webServers;

    this.loadBalancer = new LoadBalancer(this, "lb-01", {
      name: dropletName(DEFAULT_LOAD_BALANCER_NAME),
      network: this.network,
      droplet,
      tags,
      siteHostNames: hostNames,
      webServers,
      adminCidrs: settings.adminCidrs,
      https: settings.https
        ? {
            acmeDirectoryUrl: settings.acmeDirectoryUrl,
            contactEmail: settings.acmeEmail,
            hstsMaxAgeSeconds: settings.hstsMaxAgeSeconds,
            trustedCa,
          }
        : undefined,
    });

    this.firewalls = new Firewalls(this, "firewalls", {
      project,
      network: this.network,
      tags,
      adminCidrs: settings.adminCidrs,
      https: settings.https,
    });

    this.dns = new Dns(this, "dns", {
      domain: settings.domain,
      hostName: settings.hostName,
      address: this.loadBalancer.server.publicIpv4,
      ttl: settings.dnsTtl,
      apexRecord: settings.apexRecord,
    });

    const destinations: AlertDestinations = {
      emails: settings.alertEmails,
      slack:
        settings.alertSlackWebhookUrl && settings.alertSlackChannel
          ? { channel: settings.alertSlackChannel, webhookUrl: settings.alertSlackWebhookUrl }
          : undefined,
    };
    // Alerts nobody receives are noise: without a destination there are none.
    if (hasAlertDestinations(destinations)) {
      this.monitoring = new Monitoring(this, "monitoring", {
        project,
        roles: [
          { id: "lb", name: "load balancer", tag: tags.loadBalancer },
          { id: "web", name: "web server", tag: tags.web },
        ],
        destinations,
        siteUrl,
        cpuPercent: settings.alertCpuPercent,
        memoryPercent: settings.alertMemoryPercent,
        diskPercent: settings.alertDiskPercent,
        latencyMs: settings.alertLatencyMs,
        certificateExpiryDays: settings.alertCertExpiryDays,
      });
    }

    const servers = [this.loadBalancer.server, ...webServers.map((web) => web.server)];
    new Project(this, "project", {
      name: project,
      description: `www.${settings.domain}: HAProxy in front of ${settings.webServers} web server(s)`,
      purpose: "Web Application",
      environment: projectEnvironment(settings.environment),
      resources: [...servers.map((server) => server.droplet.urn), this.dns.domain.urn],
    });

    new TerraformOutput(this, "site_url", {
      description: "The site's address",
      value: siteUrl,
    });
    new TerraformOutput(this, "haproxy_stats_url", {
      description: "HAProxy's stats page (user admin): from the VPC, or through an SSH tunnel to lb-01's loopback",
      value: `http://${this.loadBalancer.server.privateIpv4}:${HAPROXY_STATS.port}/`,
    });
    new TerraformOutput(this, "haproxy_stats_password", {
      description: "Password of the admin user of HAProxy's stats page",
      value: this.loadBalancer.statsPassword.result,
      sensitive: true,
    });
    new TerraformOutput(this, "load_balancer_public_ipv4", {
      description: "Public address of lb-01; the site's DNS records point here",
      value: this.loadBalancer.server.publicIpv4,
    });
    new TerraformOutput(this, "servers", {
      description: "Every droplet: role, public and private IPv4",
      value: Object.fromEntries([
        [
          this.loadBalancer.server.name,
          { role: "load-balancer", public_ipv4: this.loadBalancer.server.publicIpv4, private_ipv4: this.loadBalancer.server.privateIpv4 },
        ],
        ...webServers.map((web) => [
          web.server.name,
          { role: `web, mysql ${web.databaseRole}`, public_ipv4: web.server.publicIpv4, private_ipv4: web.server.privateIpv4 },
        ]),
      ]),
    });
    new TerraformOutput(this, "mysql_replication_password", {
      description: "Password of the MySQL replication user",
      value: passwords.replication.result,
      sensitive: true,
    });
    new TerraformOutput(this, "mysql_app_password", {
      description: "Password of the application's MySQL user",
      value: passwords.app.result,
      sensitive: true,
    });
  }
}
