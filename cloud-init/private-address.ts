import { WriteFile } from "./cloud-config";
import { renderEnvironmentFile } from "./environment-file";
import { dropletFile } from "./files";

/**
 * A droplet cannot be told its own private address in its user-data (the
 * address exists only once the droplet does), so it is found at boot: the
 * one global IPv4 address inside the VPC range.
 */
export const PRIVATE_ADDRESS_PATHS = {
  environment: "/etc/foobar/network.env",
  /** Written by the script: `PRIVATE_ADDRESS=…`, for units that bind to it (HAProxy's stats). */
  addressEnvironment: "/etc/foobar/private-address.env",
  script: "/usr/local/sbin/foobar-bind-addresses",
  mysqlSnippet: "/etc/mysql/mysql.conf.d/zz-foobar-bind-address.cnf",
  nginxSnippet: "/etc/nginx/snippets/foobar-listen.conf",
  /** Runs the script before every MySQL start, including the package's first. */
  mysqlDropIn: "/etc/systemd/system/mysql.service.d/foobar-bind-address.conf",
} as const;

/** The variable of `addressEnvironment`. */
export const PRIVATE_ADDRESS_VARIABLE = "PRIVATE_ADDRESS";

export interface NetworkEnvironmentInput {
  /** The VPC range in CIDR form. */
  readonly vpcIpRange: string;
  /** Port Nginx listens on; the MySQL and Nginx snippets are written only with it. @default - no snippets */
  readonly webPort?: number;
}

export function renderNetworkEnvironment(input: NetworkEnvironmentInput): string {
  return renderEnvironmentFile({
    VPC_IP_RANGE: input.vpcIpRange,
    ...(input.webPort !== undefined ? { WEB_PORT: String(input.webPort) } : {}),
  });
}

/** Runs the address script before every MySQL start: the snippet it writes binds MySQL. */
export function mysqlBindDropIn(): string {
  return dropletFile(PRIVATE_ADDRESS_PATHS.mysqlDropIn, { BIND_ADDRESSES_SCRIPT: PRIVATE_ADDRESS_PATHS.script });
}

/**
 * Writes the private address to an environment file and, on web servers, the
 * snippets that bind MySQL and Nginx to it
 * (`cloud-init/files/usr/local/sbin/foobar-bind-addresses`).
 */
export function bindAddressesScript(): string {
  return dropletFile(PRIVATE_ADDRESS_PATHS.script, {
    NETWORK_ENVIRONMENT: PRIVATE_ADDRESS_PATHS.environment,
    ADDRESS_VARIABLE: PRIVATE_ADDRESS_VARIABLE,
    ADDRESS_ENVIRONMENT: PRIVATE_ADDRESS_PATHS.addressEnvironment,
    MYSQL_SNIPPET: PRIVATE_ADDRESS_PATHS.mysqlSnippet,
    NGINX_SNIPPET: PRIVATE_ADDRESS_PATHS.nginxSnippet,
  });
}

/** What every droplet writes to find its private address: the network's environment and the script. */
export function privateAddressFiles(input: NetworkEnvironmentInput): WriteFile[] {
  return [
    { path: PRIVATE_ADDRESS_PATHS.environment, content: renderNetworkEnvironment(input) },
    { path: PRIVATE_ADDRESS_PATHS.script, permissions: "0755", content: bindAddressesScript() },
  ];
}
