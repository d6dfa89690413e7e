import { renderEnvironmentFile } from "./environment-file";

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

export const MYSQL_BIND_DROP_IN =
  [
    "# Managed by cloud-init (foobar): bind MySQL to the private address found at boot.",
    "[Service]",
    `ExecStartPre=${PRIVATE_ADDRESS_PATHS.script}`,
  ].join("\n") + "\n";

/**
 * Writes the private address to an environment file and, on web servers, the
 * snippets that bind MySQL and Nginx to it.
 */
export const BIND_ADDRESSES_SCRIPT =
  [
    "#!/bin/bash",
    "# Managed by cloud-init (foobar). Finds this droplet's address in the VPC",
    "# range and writes the files that bind daemons to it.",
    "set -euo pipefail",
    "# shellcheck source=/dev/null  # written by cloud-init next to this script",
    `. ${PRIVATE_ADDRESS_PATHS.environment}`,
    "",
    "to_number() {",
    "  local IFS=.",
    "  local a b c d",
    '  read -r a b c d <<< "$1"',
    "  echo $(( (a << 24) + (b << 16) + (c << 8) + d ))",
    "}",
    "",
    'network=$(to_number "${VPC_IP_RANGE%/*}")',
    "prefix=${VPC_IP_RANGE#*/}",
    "mask=$(( (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF ))",
    "",
    "private_address() {",
    "  local address",
    "  for address in $(ip -4 -o addr show scope global | awk '{ split($4, a, \"/\"); print a[1] }'); do",
    '    if (( ($(to_number "$address") & mask) == network )); then',
    '      echo "$address"',
    "      return 0",
    "    fi",
    "  done",
    "  return 1",
    "}",
    "",
    "# The private interface may come up a moment after boot.",
    "for _ in $(seq 1 60); do",
    "  if address=$(private_address); then",
    `    printf '${PRIVATE_ADDRESS_VARIABLE}=%s\\n' "$address" > ${PRIVATE_ADDRESS_PATHS.addressEnvironment}`,
    '    if [ -n "${WEB_PORT:-}" ]; then',
    `      printf '[mysqld]\\nbind_address = %s\\n' "$address" > ${PRIVATE_ADDRESS_PATHS.mysqlSnippet}`,
    `      mkdir -p "$(dirname ${PRIVATE_ADDRESS_PATHS.nginxSnippet})"`,
    `      printf 'listen %s:%s default_server;\\n' "$address" "$WEB_PORT" > ${PRIVATE_ADDRESS_PATHS.nginxSnippet}`,
    "    fi",
    "    exit 0",
    "  fi",
    "  sleep 1",
    "done",
    'echo "foobar-bind-addresses: no address in $VPC_IP_RANGE" >&2',
    "exit 1",
  ].join("\n") + "\n";
