import { Project } from "@cdktf/provider-digitalocean/lib/project";
import { DigitaloceanProvider } from "@cdktf/provider-digitalocean/lib/provider";
import { Password } from "@cdktf/provider-random/lib/password";
import { RandomProvider } from "@cdktf/provider-random/lib/provider";
import { Annotations, TerraformOutput, TerraformStack, TerraformVariable } from "cdktf";
import { Construct } from "constructs";

import { DEFAULT_APP_COMMAND } from "../cloud-init/app";
import { BackupInput } from "../cloud-init/backup";
import { MONITORING_PATHS } from "../cloud-init/monitoring-server";
import {
  ALERT_RULE_DEFAULTS,
  PROMETHEUS_PORTS,
  renderAlertmanagerConfig,
  renderAlertRules,
  renderPrometheusConfig,
} from "../cloud-init/prometheus";
import { exporterParts, HAPROXY_STATS } from "../cloud-init/user-data";
import {
  FAILOVER_TOKEN_VARIABLE,
  internalHostName,
  loadBalancerName,
  MONITORING_SERVER_NAME,
  parseDropletName,
  PRIMARY_DATABASE_LABEL,
  RESERVED_IP_LABEL,
  stateKey,
  webServerName,
} from "../names";
import { FAILOVER_TOKEN_PATTERN, MAX_LOAD_BALANCERS, MAX_WEB_SERVERS, readCaFile, SETTINGS, Settings } from "../settings";
import { readAppFiles, SAMPLE_APP_DIR } from "./app-files";
import { BACKUP_BUCKET_RESOURCE_ID, Backups, BACKUPS_ID } from "./backups";
import { DATA_VOLUME_RESOURCE_ID } from "./data-volume";
import { DatabasePasswords, PASSWORD_OPTIONS } from "./database-passwords";
import { Dns, InternalHost, siteHostNames } from "./dns";
import { Firewalls } from "./firewalls";
import { CERTIFICATE_VOLUME_ID, LoadBalancer } from "./load-balancer";
import { AlertDestinations, hasAlertDestinations, Monitoring } from "./monitoring";
import { MONITORING_VOLUME_ID, MonitoringServer } from "./monitoring-server";
import { Network } from "./network";
import { AbsentResource, forgetWhenRemoved } from "./removed-blocks";
import { RoleTags } from "./role-tags";
import { DropletOptions } from "./server";
import { SITE_ADDRESS_ASSIGNMENT_ID, SiteAddress } from "./site-address";
import { SpacesBackend, spacesEndpoint, TERRAFORM_VERSION_FOR_SPACES } from "./spaces-backend";
import { DATABASE_VOLUME_ID, WebServer } from "./web-server";

/**
 * The DigitalOcean provider versions this stack was checked against: the
 * prebuilt bindings are generated from 2.71.0 and only ask for `~> 2.19`.
 */
export const DIGITALOCEAN_PROVIDER_VERSION = ">= 2.71.0, < 3.0.0";

/** The Terraform variable of the SMTP relay's password (`TF_VAR_alert_smtp_password`). */
export const SMTP_PASSWORD_VARIABLE = "alert_smtp_password";

/** The construct id of the site's address; part of the Terraform addresses of its resources. */
export const SITE_ADDRESS_ID = "site-address";

/** `removed` blocks (the stack forgets rather than destroys what leaves it) need Terraform 1.7. */
export const TERRAFORM_VERSION_FOR_REMOVED_BLOCKS = ">= 1.7.0";

/**
 * The prefix of every DigitalOcean name (tags, firewalls, VPC, project):
 * the project, or `<project>-<environment>` so that two environments in one
 * account never share a tag, and so never a firewall rule.
 */
export function namePrefix(settings: Settings): string {
  return settings.environment ? `${settings.project}-${settings.environment}` : settings.project;
}

/**
 * The volumes a bigger configuration declares and this one does not: the
 * MySQL volumes of web server slots above `FOOBAR_WEB_SERVERS`, and the
 * certificate volumes of load balancers above `FOOBAR_LOAD_BALANCERS` (or of
 * every load balancer without HTTPS).
 */
function absentVolumes(settings: Settings): AbsentResource[] {
  const volume = (droplet: string, id: string): AbsentResource => ({
    type: "digitalocean_volume",
    path: [droplet, id, DATA_VOLUME_RESOURCE_ID],
  });
  const slots = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
  return [
    ...slots(settings.webServers + 1, MAX_WEB_SERVERS).map((i) => volume(webServerName(i), DATABASE_VOLUME_ID)),
    ...slots(settings.https ? settings.loadBalancers + 1 : 1, MAX_LOAD_BALANCERS).map((i) =>
      volume(loadBalancerName(i), CERTIFICATE_VOLUME_ID),
    ),
    ...(settings.monitoring ? [] : [volume(MONITORING_SERVER_NAME, MONITORING_VOLUME_ID)]),
  ];
}

/**
 * What synthesis says about backups, once per stack: a warning when there are
 * none, the bucket when there are.
 */
export function backupNotice(settings: Settings): { readonly level: "warning" | "info"; readonly message: string } {
  const bucket = SETTINGS.backupBucket.variable;
  return settings.backupBucket === undefined
    ? {
        level: "warning",
        message: `no backups: ${bucket} is not set, so a deleted row or a lost volume cannot be recovered (docs/database.md, "Backups")`,
      }
    : {
        level: "info",
        message: `backups: the web servers' databases go to the Spaces bucket ${settings.backupBucket} (${settings.backupRegion ?? settings.region}), encrypted to ${SETTINGS.backupRecipient.variable}`,
      };
}

/** The TCP ports of the destinations Alertmanager sends to: the SMTP relay's, the webhook's. */
function alertPorts(settings: Settings): number[] {
  const ports: number[] = [];
  if (settings.alertSmtpSmarthost !== undefined) ports.push(Number(settings.alertSmtpSmarthost.split(":").pop()));
  if (settings.alertWebhookUrl !== undefined) {
    const url = new URL(settings.alertWebhookUrl);
    ports.push(Number(url.port || (url.protocol === "https:" ? 443 : 80)));
  }
  return ports;
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
  /** lb-01: the load balancer, or the preferred one of a pair. */
  public readonly loadBalancer: LoadBalancer;
  /** lb-01, and lb-02 with `FOOBAR_LOAD_BALANCERS=2`. */
  public readonly loadBalancers: readonly LoadBalancer[];
  public readonly webServers: readonly WebServer[];
  public readonly firewalls: Firewalls;
  public readonly dns: Dns;
  /** The site's reserved IP, assigned to the load balancer. */
  public readonly siteAddress: SiteAddress;
  /** Present only when an alert e-mail or Slack webhook is set. */
  public readonly monitoring?: Monitoring;
  /** mon-01; present unless `FOOBAR_MONITORING=false`. */
  public readonly monitoringServer?: MonitoringServer;
  /** The backup bucket and its key; present only when `FOOBAR_BACKUP_BUCKET` is set. */
  public readonly backups?: Backups;

  constructor(scope: Construct, id: string, settings: Settings) {
    super(scope, id);
    // Everything that can fail on bad settings runs before any resource exists.
    const appFiles = readAppFiles(settings.appDir ?? SAMPLE_APP_DIR);
    const appCommand = settings.appCommand ?? DEFAULT_APP_COMMAND;
    const hostNames = siteHostNames(settings.domain, settings.hostName, settings.apexRecord);
    const trustedCa = settings.acmeCaFile !== undefined ? readCaFile(settings.acmeCaFile) : undefined;
    const siteUrl = `${settings.https ? "https" : "http"}://${hostNames[0]}/`;
    if (settings.backupBucket !== undefined && settings.backupRecipient === undefined) {
      throw new Error(`${SETTINGS.backupRecipient.variable} must be set when ${SETTINGS.backupBucket.variable} is set`);
    }

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
    }
    this.addOverride(
      "terraform.required_version",
      settings.stateBucket !== undefined ? TERRAFORM_VERSION_FOR_SPACES : TERRAFORM_VERSION_FOR_REMOVED_BLOCKS,
    );

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

    // Off by default (FOOBAR_BACKUP_BUCKET), and said so at every synthesis.
    const notice = backupNotice(settings);
    if (notice.level === "warning") Annotations.of(this).addWarning(notice.message);
    else Annotations.of(this).addInfo(notice.message);
    const backups = (this.backups =
      settings.backupBucket !== undefined
        ? new Backups(this, BACKUPS_ID, {
            bucket: settings.backupBucket,
            region: settings.backupRegion ?? settings.region,
            keyName: `${project}-backups`,
            retentionDays: settings.backupRetentionDays,
            allowDeletion: settings.allowDataLoss,
          })
        : undefined);
    const backup: BackupInput | undefined = backups
      ? {
          bucket: settings.backupBucket!,
          region: backups.region,
          recipient: settings.backupRecipient!,
          accessKeyId: backups.accessKeyId,
          secretAccessKey: backups.secretAccessKey,
          everyHours: settings.backupEveryHours,
        }
      : undefined;

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
          databasePrimary: id === settings.databasePrimary,
          semiSyncTimeoutMs: settings.semiSyncTimeoutMs,
          peerHosts: Array.from({ length: MAX_WEB_SERVERS }, (_, j) => internalHostName(webServerName(j + 1), settings.domain)),
          primaryHost: internalHostName(PRIMARY_DATABASE_LABEL, settings.domain),
          siteHostNames: hostNames,
          replicaMaxLagSeconds: settings.replicaMaxLagSeconds,
          appFiles,
          appCommand,
          adminCidrs: settings.adminCidrs,
          databaseVolumeGib: settings.databaseVolumeGib,
          allowDataLoss: settings.allowDataLoss,
          backup,
          monitored: settings.monitoring,
        }),
      );
    }
    this.webServers = webServers;

    // With a pair, lb-01 and lb-02 find each other, and the reserved IP, by internal name.
    const pair = settings.loadBalancers > 1;
    const lbLabels = Array.from({ length: settings.loadBalancers }, (_, i) => loadBalancerName(i + 1));
    const failoverToken = pair
      ? new TerraformVariable(this, FAILOVER_TOKEN_VARIABLE, {
          type: "string",
          sensitive: true,
          description: "DigitalOcean API token the load balancers assign the reserved IP with (custom scope reserved_ip:update)",
          validation: [
            {
              condition: `\${can(regex("${FAILOVER_TOKEN_PATTERN.source}", var.${FAILOVER_TOKEN_VARIABLE}))}`,
              errorMessage: "failover_token must be a DigitalOcean API token: dop_v1_ and 64 lower-case hex digits.",
            },
          ],
        })
      : undefined;
    // VRRPv2's password is at most 8 characters; the cloud firewalls are what keep strangers off the tunnel.
    const vrrpPassword = pair ? new Password(this, "vrrp-password", { ...PASSWORD_OPTIONS, length: 8 }) : undefined;
    const https = settings.https
      ? {
          acmeDirectoryUrl: settings.acmeDirectoryUrl,
          contactEmail: settings.acmeEmail,
          hstsMaxAgeSeconds: settings.hstsMaxAgeSeconds,
          trustedCa,
        }
      : undefined;
    this.loadBalancers = lbLabels.map((label, i) => {
      const index = (i + 1) as 1 | 2;
      const peerLabel = lbLabels[1 - i];
      return new LoadBalancer(this, label, {
        name: dropletName(label),
        network: this.network,
        droplet,
        tags,
        siteHostNames: hostNames,
        // Every slot a web server can fill, whether or not it exists yet: adding
        // one publishes its name and HAProxy takes it in, with no change here.
        backends: Array.from({ length: MAX_WEB_SERVERS }, (_, j) => {
          const web = webServerName(j + 1);
          return { name: web, hostName: internalHostName(web, settings.domain) };
        }),
        allowDataLoss: settings.allowDataLoss,
        adminCidrs: settings.adminCidrs,
        https,
        monitored: settings.monitoring,
        pair:
          peerLabel && failoverToken && vrrpPassword
            ? {
                index,
                peerName: peerLabel,
                peerHost: internalHostName(peerLabel, settings.domain),
                reservedIpHost: internalHostName(RESERVED_IP_LABEL, settings.domain),
                vrrpPassword: vrrpPassword.result,
                apiToken: failoverToken.stringValue,
              }
            : undefined,
      });
    });
    this.loadBalancer = this.loadBalancers[0]!;

    this.firewalls = new Firewalls(this, "firewalls", {
      project,
      network: this.network,
      tags,
      adminCidrs: settings.adminCidrs,
      https: settings.https,
      loadBalancerPair: pair,
      monitoring: settings.monitoring,
      alertPorts: alertPorts(settings),
    });

    this.siteAddress = new SiteAddress(this, SITE_ADDRESS_ID, {
      region: settings.region,
      server: this.loadBalancer.server,
      movedAtRunTime: pair,
    });

    // What leaves the configuration is forgotten, not destroyed: every volume
    // a bigger configuration would have (unless FOOBAR_ALLOW_DATA_LOSS=true),
    // and with a pair the one load balancer's address assignment, whose
    // deletion would unassign the site's address.
    const absent: AbsentResource[] = [
      ...(settings.allowDataLoss ? [] : absentVolumes(settings)),
      // Backups turned off: the bucket and its backups stay in the account.
      ...(settings.allowDataLoss || backups ? [] : [{ type: "digitalocean_spaces_bucket", path: [BACKUPS_ID, BACKUP_BUCKET_RESOURCE_ID] }]),
      ...(pair ? [{ type: "digitalocean_reserved_ip_assignment", path: [SITE_ADDRESS_ID, SITE_ADDRESS_ASSIGNMENT_ID] }] : []),
    ];
    if (absent.length > 0) this.addOverride("removed", forgetWhenRemoved(this, absent));

    // Labels are the construct ids (web-01, …), so they stay the same in every environment.
    const internalHosts: InternalHost[] = [
      ...webServers.map((web, i) => ({ label: webServerName(i + 1), address: web.server.privateIpv4 })),
      // The one record a promotion changes (FOOBAR_DB_PRIMARY): the database agents follow it.
      {
        label: PRIMARY_DATABASE_LABEL,
        address: webServers[Number(parseDropletName(settings.databasePrimary)!.index) - 1]!.server.privateIpv4,
      },
      // The pair's members find each other, and mon-01 finds every load balancer, by these.
      ...(pair || settings.monitoring ? this.loadBalancers.map((lb, i) => ({ label: lbLabels[i]!, address: lb.server.privateIpv4 })) : []),
      ...(pair ? [{ label: RESERVED_IP_LABEL, address: this.siteAddress.ipv4 }] : []),
    ];
    // mon-01 finds its targets by the internal names of every slot, as HAProxy finds the web servers: its
    // user-data names no droplet's address, so adding or replacing one changes nothing on it.
    if (settings.monitoring) {
      const smtpPassword =
        settings.alertSmtpUsername !== undefined
          ? new TerraformVariable(this, SMTP_PASSWORD_VARIABLE, {
              type: "string",
              sensitive: true,
              description: `Password of ${settings.alertSmtpUsername} at the SMTP relay ${settings.alertSmtpSmarthost}`,
            })
          : undefined;
      const monitoringServer = (this.monitoringServer = new MonitoringServer(this, MONITORING_SERVER_NAME, {
        name: dropletName(MONITORING_SERVER_NAME),
        network: this.network,
        droplet: { ...droplet, size: settings.monitoringSize },
        tags,
        volumeGib: settings.monitoringVolumeGib,
        prometheusConfig: renderPrometheusConfig({
          domain: settings.domain,
          webServerSlots: MAX_WEB_SERVERS,
          loadBalancerSlots: MAX_LOAD_BALANCERS,
          monitoringLabel: MONITORING_SERVER_NAME,
        }),
        alertRules: renderAlertRules({
          ...ALERT_RULE_DEFAULTS,
          replicaMaxLagSeconds: settings.replicaMaxLagSeconds,
          fiveXxPercent: settings.alert5xxPercent,
          latencyMs: settings.alertLatencyMs,
          certificateExpiryDays: settings.alertCertExpiryDays,
          diskPercent: settings.alertDiskPercent,
          backupBaseMaxAgeHours: settings.backupEveryHours + 2,
        }),
        alertmanagerConfig: renderAlertmanagerConfig({
          emails: settings.alertEmails,
          smarthost:
            settings.alertSmtpSmarthost !== undefined
              ? {
                  host: settings.alertSmtpSmarthost,
                  from: settings.alertSmtpFrom!,
                  username: settings.alertSmtpUsername,
                  passwordFile: smtpPassword ? MONITORING_PATHS.smtpPasswordFile : undefined,
                }
              : undefined,
          slack:
            settings.alertSlackWebhookUrl && settings.alertSlackChannel
              ? { apiUrl: settings.alertSlackWebhookUrl, channel: settings.alertSlackChannel }
              : undefined,
          webhookUrl: settings.alertWebhookUrl,
        }),
        exporter: exporterParts("monitoring"),
        smtpPassword: smtpPassword?.stringValue,
        adminCidrs: settings.adminCidrs,
        allowDataLoss: settings.allowDataLoss,
      }));
      internalHosts.push({ label: MONITORING_SERVER_NAME, address: monitoringServer.server.privateIpv4 });
    }

    this.dns = new Dns(this, "dns", {
      domain: settings.domain,
      hostName: settings.hostName,
      address: this.siteAddress.ipv4,
      ttl: settings.dnsTtl,
      apexRecord: settings.apexRecord,
      internalHosts,
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

    const servers = [
      ...this.loadBalancers.map((lb) => lb.server),
      ...webServers.map((web) => web.server),
      ...(this.monitoringServer ? [this.monitoringServer.server] : []),
    ];
    new Project(this, "project", {
      name: project,
      description: `www.${settings.domain}: ${pair ? "a pair of HAProxy load balancers" : "HAProxy"} in front of ${settings.webServers} web server(s)`,
      purpose: "Web Application",
      environment: projectEnvironment(settings.environment),
      resources: [
        ...servers.map((server) => server.droplet.urn),
        ...[
          ...webServers.map((web) => web.databaseVolume),
          ...this.loadBalancers.flatMap((lb) => (lb.certificateVolume ? [lb.certificateVolume] : [])),
          ...(this.monitoringServer ? [this.monitoringServer.dataVolume] : []),
        ].map((data) => data.volume.urn),
        this.siteAddress.reservedIp.urn,
        this.dns.domain.urn,
        ...(backups ? [backups.bucket.urn] : []),
      ],
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
    if (this.monitoringServer) {
      new TerraformOutput(this, "prometheus_url", {
        description: "Prometheus on mon-01 (user admin): from the VPC, or through an SSH tunnel to mon-01's private address",
        value: `http://${this.monitoringServer.server.privateIpv4}:${PROMETHEUS_PORTS.prometheus}/`,
      });
      new TerraformOutput(this, "prometheus_password", {
        description: "Password of the admin user of Prometheus on mon-01",
        value: this.monitoringServer.uiPassword.result,
        sensitive: true,
      });
    }
    new TerraformOutput(this, "site_ipv4", {
      description: "The site's reserved IP: the DNS records point here, and it stays when lb-01 is replaced",
      value: this.siteAddress.ipv4,
    });
    new TerraformOutput(this, "load_balancer_public_ipv4", {
      description: "lb-01's own public address (changes when it is replaced; the site is at site_ipv4)",
      value: this.loadBalancer.server.publicIpv4,
    });
    new TerraformOutput(this, "servers", {
      description: "Every droplet: role, public and private IPv4",
      value: Object.fromEntries([
        ...this.loadBalancers.map((lb) => [
          lb.server.name,
          { role: "load-balancer", public_ipv4: lb.server.publicIpv4, private_ipv4: lb.server.privateIpv4 },
        ]),
        ...webServers.map((web) => [
          web.server.name,
          { role: `web, mysql ${web.databaseRole}`, public_ipv4: web.server.publicIpv4, private_ipv4: web.server.privateIpv4 },
        ]),
        ...(this.monitoringServer
          ? [
              [
                this.monitoringServer.server.name,
                {
                  role: "monitoring",
                  public_ipv4: this.monitoringServer.server.publicIpv4,
                  private_ipv4: this.monitoringServer.server.privateIpv4,
                },
              ],
            ]
          : []),
      ]),
    });
    if (backups) {
      new TerraformOutput(this, "backup_bucket", {
        description: "The Spaces bucket the web servers back their databases up to",
        value: backups.bucket.name,
      });
      new TerraformOutput(this, "backup_region", {
        description: "The backup bucket's Spaces region",
        value: backups.region,
      });
      new TerraformOutput(this, "backup_endpoint", {
        description: "The backup bucket's S3 endpoint",
        value: spacesEndpoint(backups.region),
      });
    }
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
