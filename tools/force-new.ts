/**
 * The arguments whose change makes the provider replace a resource
 * (`ForceNew: true` in the SDK schema, `RequiresReplace` in the plugin
 * framework), for every resource type this stack uses.
 *
 * Read from the providers' sources: digitalocean/terraform-provider-digitalocean
 * (digitalocean/droplet/resource_droplet.go, volume/resource_volume.go,
 * reservedip/resource_reserved_ip.go and resource_reserved_ip_assignment.go,
 * domain/resource_record.go and resource_domain.go, vpc/resource_vpc.go,
 * tag/resource_tag.go, spaces/resource_spaces_bucket.go; firewall, project,
 * monitor alert, uptime and Spaces key resources have none that we set: a
 * key's name and grants are updated in place) and hashicorp/terraform-provider-random
 * (internal/provider/resource_password.go). A type missing here is treated as
 * never replaced, so a test checks that every type the stack uses is listed.
 */
export const FORCE_NEW_ARGUMENTS: Readonly<Record<string, readonly string[]>> = {
  digitalocean_droplet: ["image", "region", "ssh_keys", "user_data", "monitoring", "droplet_agent", "vpc_uuid"],
  digitalocean_volume: ["region", "name", "description", "snapshot_id", "initial_filesystem_type", "initial_filesystem_label"],
  digitalocean_volume_attachment: ["droplet_id", "volume_id"],
  digitalocean_reserved_ip: ["region"],
  digitalocean_reserved_ip_assignment: ["ip_address", "droplet_id"],
  digitalocean_record: ["type", "domain"],
  digitalocean_domain: ["name", "ip_address"],
  digitalocean_vpc: ["region", "ip_range"],
  digitalocean_tag: ["name"],
  // `name` is not ForceNew in the provider's schema (only `region` is).
  digitalocean_spaces_bucket: ["region"],
  digitalocean_spaces_key: [],
  digitalocean_firewall: [],
  digitalocean_project: [],
  digitalocean_monitor_alert: [],
  digitalocean_uptime_check: [],
  digitalocean_uptime_alert: [],
  random_password: [
    "length",
    "special",
    "upper",
    "lower",
    "number",
    "numeric",
    "min_numeric",
    "min_upper",
    "min_lower",
    "min_special",
    "keepers",
    "override_special",
  ],
};

/**
 * The arguments that are Optional and Computed in the provider's schema, for
 * the resource types this stack uses: when such an argument leaves the
 * configuration, Terraform keeps the value in the state and plans no update
 * (dropping a droplet's `volume_ids` detaches nothing). Read from the same
 * sources as above (v2.71.0); `digitalocean_reserved_ip.droplet_id` is
 * Optional only, so dropping it unassigns the address.
 */
export const OPTIONAL_COMPUTED_ARGUMENTS: Readonly<Record<string, readonly string[]>> = {
  digitalocean_droplet: ["region", "private_networking", "volume_ids", "vpc_uuid"],
  digitalocean_volume: ["filesystem_type"],
  digitalocean_reserved_ip: ["ip_address"],
  digitalocean_record: ["ttl"],
  digitalocean_vpc: ["ip_range"],
  digitalocean_project: ["resources"],
};
