import { TerraformStack } from "cdktf";
import { Construct, RootConstruct } from "constructs";

import type { RemovedBlock } from "../tools/changes";

/** A resource a bigger configuration of the stack declares: its type and its construct path below the stack. */
export interface AbsentResource {
  /** Terraform type, such as `digitalocean_volume`. */
  readonly type: string;
  /** Construct ids from the stack down, such as `["web-03", "mysql-volume", "volume"]`. */
  readonly path: readonly string[];
}

/**
 * The Terraform address a resource at `path` has (or would have) in `stack`,
 * computed the way cdktf allocates logical ids, without creating anything in
 * the stack: the path is built under a throwaway root whose id, `Default`,
 * cdktf leaves out of every logical id.
 */
export function addressAt(stack: TerraformStack, resource: AbsentResource): string {
  let scope: Construct = new RootConstruct("Default");
  for (const id of resource.path) scope = new Construct(scope, id);
  return `${resource.type}.${stack.getLogicalId(scope.node)}`;
}

/**
 * `removed` blocks (Terraform 1.7+) that make Terraform forget, not destroy,
 * each resource a bigger configuration declares and this one does not.
 *
 * `lifecycle.prevent_destroy` is checked only on blocks still in the
 * configuration: when a server leaves it (fewer web servers, one load
 * balancer instead of two, HTTPS off), Terraform would delete its volume
 * without a word. With these blocks it drops the volume from its state and
 * leaves it, data and all, in the account. A block for an address the state
 * does not hold is accepted and does nothing.
 */
export function forgetWhenRemoved(stack: TerraformStack, absent: readonly AbsentResource[]): RemovedBlock[] {
  return absent.map((resource) => ({ from: addressAt(stack, resource), lifecycle: { destroy: false } }));
}
