import { Firewall, FirewallInboundRule, FirewallOutboundRule } from "@cdktf/provider-digitalocean/lib/firewall";
import { Construct } from "constructs";

import { HostFirewallRule, sshRules } from "../cloud-init/hardening";
import { VRRP_LINK } from "../cloud-init/keepalived";
import { PROMETHEUS_PORTS } from "../cloud-init/prometheus";
import { HAPROXY_STATS, WEB_PORT } from "../cloud-init/user-data";
import { Network } from "./network";
import { RoleTags } from "./role-tags";

export interface FirewallsProps {
  readonly project: string;
  readonly network: Network;
  readonly tags: RoleTags;
  /** CIDRs allowed to reach SSH on every droplet. @default - none: no SSH rule at all */
  readonly adminCidrs?: readonly string[];
  /** Open 443 on the load balancer. @default true */
  readonly https?: boolean;
  /**
   * The load balancers are a pair: allow their election's tunnel (and, with
   * HTTPS, the ACME challenges they pass each other) between them only.
   * @default false
   */
  readonly loadBalancerPair?: boolean;
  /** A monitoring server scrapes the exporters: only it may reach them. @default false */
  readonly monitoring?: boolean;
  /**
   * TCP ports the monitoring server sends alerts to besides 80 and 443: an SMTP relay's, a webhook's.
   * @default - none
   */
  readonly alertPorts?: readonly number[];
}

/** The exporters each tier runs, every one on its private address (docs/monitoring.md). */
export const EXPORTER_PORTS = {
  loadBalancer: [PROMETHEUS_PORTS.node, PROMETHEUS_PORTS.haproxy],
  web: [PROMETHEUS_PORTS.node, PROMETHEUS_PORTS.mysqld, PROMETHEUS_PORTS.nginx],
  monitoring: [PROMETHEUS_PORTS.node],
} as const;

/** Every address, IPv4 and IPv6. */
export const ANYWHERE = ["0.0.0.0/0", "::/0"];

/** DigitalOcean's way of saying "every port" ("all" is not accepted everywhere). */
export const ALL_PORTS = "1-65535";

export const MYSQL_PORT = "3306";

export interface HostFirewallOptions {
  readonly vpcIpRange: string;
  readonly adminCidrs: readonly string[];
  /** Whether the tier serves HTTPS (load balancer only). @default false */
  readonly https?: boolean;
  /** Whether the load balancers are a pair (load balancer only). @default false */
  readonly pair?: boolean;
  /** Whether a monitoring server scrapes this tier's exporters. @default false */
  readonly monitoring?: boolean;
}

/** ufw's share of the exporters: the VPC (the cloud firewall narrows it to the monitoring server). */
function exporterRules(ports: readonly number[], options: HostFirewallOptions): HostFirewallRule[] {
  return options.monitoring
    ? ports.map((port) => ({ port, from: [options.vpcIpRange], comment: "metrics for the monitoring server (VPC)" }))
    : [];
}

/** mon-01's host firewall (ufw): Prometheus' UI and its own exporter from the VPC, SSH from the admins. */
export function monitoringServerHostFirewall(options: HostFirewallOptions): HostFirewallRule[] {
  return [
    { port: PROMETHEUS_PORTS.prometheus, from: [options.vpcIpRange], comment: "prometheus from the VPC" },
    ...exporterRules(EXPORTER_PORTS.monitoring, { ...options, monitoring: true }),
    ...sshRules(options.adminCidrs),
  ];
}

/** Port where each load balancer of a pair serves its certbot's HTTP-01 challenges to the peer. */
export const ACME_PEER_PORT = 8403;

/**
 * The load balancer's host firewall (ufw): the inbound rules of its cloud
 * firewall below, the same ports from the same places.
 */
export function loadBalancerHostFirewall(options: HostFirewallOptions): HostFirewallRule[] {
  return [
    { port: 80, from: "any", comment: "http" },
    ...(options.https ? [{ port: 443, from: "any" as const, comment: "https" }] : []),
    { port: HAPROXY_STATS.port, from: [options.vpcIpRange], comment: "haproxy stats from the VPC" },
    ...(options.pair
      ? [
          { port: VRRP_LINK.udpPort, protocol: "udp" as const, from: [options.vpcIpRange], comment: "vxlan for vrrp from the peer (VPC)" },
          { protocol: "any" as const, interface: VRRP_LINK.name, from: [VRRP_LINK.network], comment: "vrrp inside the tunnel" },
          ...(options.https ? [{ port: ACME_PEER_PORT, from: [options.vpcIpRange], comment: "acme challenges from the peer (VPC)" }] : []),
        ]
      : []),
    ...exporterRules(EXPORTER_PORTS.loadBalancer, options),
    ...sshRules(options.adminCidrs),
  ];
}

/**
 * A web server's host firewall (ufw). ufw knows no droplet tags, so where the
 * cloud firewall allows "droplets tagged lb" or "tagged web" it allows the
 * VPC range, which holds exactly the project's droplets.
 */
export function webServerHostFirewall(options: HostFirewallOptions): HostFirewallRule[] {
  return [
    { port: WEB_PORT, from: [options.vpcIpRange], comment: "nginx from the load balancer (VPC)" },
    { port: Number(MYSQL_PORT), from: [options.vpcIpRange], comment: "mysql between web servers (VPC)" },
    ...exporterRules(EXPORTER_PORTS.web, options),
    ...sshRules(options.adminCidrs),
  ];
}

/**
 * Cloud firewalls, one per tier, attached by role tag. DigitalOcean denies
 * whatever no rule allows, in both directions; replies are allowed.
 */
export class Firewalls extends Construct {
  public readonly loadBalancer: Firewall;
  public readonly web: Firewall;
  /** Present with a monitoring server. */
  public readonly monitoring?: Firewall;

  constructor(scope: Construct, id: string, props: FirewallsProps) {
    super(scope, id);
    const sshInbound: FirewallInboundRule[] = props.adminCidrs?.length
      ? [{ protocol: "tcp", portRange: "22", sourceAddresses: [...props.adminCidrs] }]
      : [];

    // What a droplet needs to reach: DNS, package mirrors and ACME over
    // HTTP/HTTPS, NTP, and anything on the VPC (further limited by the
    // inbound rules of the droplet it reaches).
    const egress: FirewallOutboundRule[] = [
      { protocol: "udp", portRange: "53", destinationAddresses: ANYWHERE },
      { protocol: "tcp", portRange: "53", destinationAddresses: ANYWHERE },
      { protocol: "tcp", portRange: "80", destinationAddresses: ANYWHERE },
      { protocol: "tcp", portRange: "443", destinationAddresses: ANYWHERE },
      { protocol: "udp", portRange: "123", destinationAddresses: ANYWHERE },
      { protocol: "tcp", portRange: ALL_PORTS, destinationAddresses: [props.network.ipRange] },
      { protocol: "udp", portRange: ALL_PORTS, destinationAddresses: [props.network.ipRange] },
      { protocol: "icmp", destinationAddresses: ANYWHERE },
    ];
    // The exporters answer the monitoring server only.
    const scraped = (ports: readonly number[]): FirewallInboundRule[] =>
      props.monitoring ? ports.map((port) => ({ protocol: "tcp", portRange: String(port), sourceTags: [props.tags.monitoring.name] })) : [];

    this.loadBalancer = new Firewall(this, "lb", {
      name: `${props.project}-lb`,
      tags: [props.tags.loadBalancer.name],
      inboundRule: [
        { protocol: "tcp", portRange: "80", sourceAddresses: ANYWHERE },
        ...((props.https ?? true) ? [{ protocol: "tcp", portRange: "443", sourceAddresses: ANYWHERE }] : []),
        // HAProxy's stats page answers on the private address (and loopback) only.
        { protocol: "tcp", portRange: String(HAPROXY_STATS.port), sourceAddresses: [props.network.ipRange] },
        // The pair's election: VRRP (IP protocol 112) has no rule here, so it travels inside VXLAN (UDP).
        ...(props.loadBalancerPair
          ? [
              { protocol: "udp", portRange: String(VRRP_LINK.udpPort), sourceTags: [props.tags.loadBalancer.name] },
              ...((props.https ?? true)
                ? [{ protocol: "tcp", portRange: String(ACME_PEER_PORT), sourceTags: [props.tags.loadBalancer.name] }]
                : []),
            ]
          : []),
        ...scraped(EXPORTER_PORTS.loadBalancer),
        ...sshInbound,
      ],
      outboundRule: egress,
    });

    this.web = new Firewall(this, "web", {
      name: `${props.project}-web`,
      tags: [props.tags.web.name],
      inboundRule: [
        // Only the load balancer reaches Nginx.
        { protocol: "tcp", portRange: String(WEB_PORT), sourceTags: [props.tags.loadBalancer.name] },
        // MySQL only between web servers: replication and the app's writes.
        { protocol: "tcp", portRange: MYSQL_PORT, sourceTags: [props.tags.web.name] },
        ...scraped(EXPORTER_PORTS.web),
        ...sshInbound,
      ],
      outboundRule: egress,
    });

    if (props.monitoring) {
      this.monitoring = new Firewall(this, "monitoring", {
        name: `${props.project}-monitoring`,
        tags: [props.tags.monitoring.name],
        inboundRule: [
          // Prometheus' UI, behind its password, from the VPC (or an SSH tunnel to the private address).
          { protocol: "tcp", portRange: String(PROMETHEUS_PORTS.prometheus), sourceAddresses: [props.network.ipRange] },
          ...scraped(EXPORTER_PORTS.monitoring),
          ...sshInbound,
        ],
        outboundRule: [
          ...egress,
          // Where Alertmanager sends alerts on another port: the relay, a webhook.
          ...[...new Set(props.alertPorts ?? [])]
            .filter((port) => port !== 80 && port !== 443)
            .map((port) => ({ protocol: "tcp", portRange: String(port), destinationAddresses: ANYWHERE })),
        ],
      });
    }
  }
}
