/**
 * Names shared by the stack, the operator tools and the lab: droplet names
 * and the role each one says, the internal DNS labels, the state's object key.
 * Declared once here; everything else derives from these.
 */

/** The kinds of droplet the stack makes; a droplet's name says which it is. */
export type DropletRole = "load-balancer" | "web-server" | "monitoring";

const ROLE_PREFIX: Readonly<Record<DropletRole, string>> = { "load-balancer": "lb", "web-server": "web", monitoring: "mon" };

function dropletName(role: DropletRole, index: number): string {
  return `${ROLE_PREFIX[role]}-${String(index).padStart(2, "0")}`;
}

/** "lb-01", "lb-02": construct ids and droplet names. */
export function loadBalancerName(index: number): string {
  return dropletName("load-balancer", index);
}

/** "web-01", "web-02", …: construct ids and droplet names. Renaming one replaces that droplet. */
export function webServerName(index: number): string {
  return dropletName("web-server", index);
}

/** `web-02` → `{ role: "web-server", index: 2 }`; undefined for a name the stack never gives. */
export function parseDropletName(name: string): { readonly role: DropletRole; readonly index: number } | undefined {
  const match = /^([a-z]+)-(\d{2,})$/.exec(name);
  const role = (Object.keys(ROLE_PREFIX) as DropletRole[]).find((r) => ROLE_PREFIX[r] === match?.[1]);
  return role && { role, index: Number(match![2]) };
}

/** Whether `name` is one of the stack's web servers (`web-NN`). */
export function isWebServer(name: string): boolean {
  return parseDropletName(name)?.role === "web-server";
}

/** "mon-01": the monitoring server (Prometheus and Alertmanager), the only one of its kind. */
export const MONITORING_SERVER_NAME = dropletName("monitoring", 1);

/** Whether `name` is the stack's monitoring server (`mon-01`, or `foobar-staging-mon-01` in an environment). */
export function isMonitoringServer(name: string): boolean {
  return /(^|-)mon-\d{2,}$/.test(name);
}

/** Whether `name` is one of the stack's load balancers (`lb-NN`). */
export function isLoadBalancer(name: string): boolean {
  return parseDropletName(name)?.role === "load-balancer";
}

/** The internal name of the MySQL primary's private address: `mysql-primary.internal.<domain>`. */
export const PRIMARY_DATABASE_LABEL = "mysql-primary";

/** The internal name of the site's reserved IP, for the load balancers of a pair: `reserved-ip.internal.<domain>`. */
export const RESERVED_IP_LABEL = "reserved-ip";

/** The subdomain of the private addresses' records. */
export const INTERNAL_LABEL = "internal";

/** `web-01` → `web-01.internal.foobar.com`: the name droplets use for a private address. */
export function internalHostName(label: string, domain: string): string {
  return `${label}.${INTERNAL_LABEL}.${domain}`;
}

/** The object key of a stack's state in the Spaces bucket. */
export function stateKey(stackName: string): string {
  return `${stackName}/terraform.tfstate`;
}

/** The Terraform variable that holds the pair's API token (`TF_VAR_failover_token`). */
export const FAILOVER_TOKEN_VARIABLE = "failover_token";
