import { changesOfPlan, dropletsOfState, outdatedOfPlans } from "../../tools/deploy-terraform";
import { PlanJson } from "../../tools/terraform-state";

/** One resource change as `terraform show -json` writes it. */
function change(address: string, actions: string[], before: object, after: object, replacePaths?: string[][]) {
  const [type, name] = address.split(".");
  return {
    address,
    mode: "managed",
    type: type!,
    name: name!,
    provider_name: "registry.terraform.io/digitalocean/digitalocean",
    change: { actions, before, after, after_unknown: {}, ...(replacePaths ? { replace_paths: replacePaths } : {}) },
  };
}

const plan = (...changes: ReturnType<typeof change>[]): PlanJson => ({ terraform_version: "1.11.4", resource_changes: changes });

describe("a real plan in the planner's words", () => {
  test("a resize is an update of `size`; a replacement names what forces it; no-ops are left out", () => {
    const changes = changesOfPlan(
      plan(
        change("digitalocean_droplet.web", ["update"], { size: "s-1vcpu-1gb", name: "web-01" }, { size: "s-2vcpu-4gb", name: "web-01" }),
        change("digitalocean_droplet.lb", ["delete", "create"], { image: "a" }, { image: "b" }, [["image"]]),
        change("digitalocean_record.www", ["no-op"], {}, {}),
      ),
    );
    expect(changes).toEqual([
      { address: "digitalocean_droplet.web", type: "digitalocean_droplet", action: "update", arguments: ["size"] },
      { address: "digitalocean_droplet.lb", type: "digitalocean_droplet", action: "replace", arguments: ["image"] },
    ]);
  });

  test("a droplet the plan without ignore_changes replaces, and the real one leaves, is outdated", () => {
    const real = plan(
      change("digitalocean_droplet.web", ["no-op"], {}, {}),
      change("digitalocean_droplet.lb", ["delete", "create"], {}, {}, [["image"]]),
    );
    const stripped = plan(
      change("digitalocean_droplet.web", ["delete", "create"], {}, {}, [["user_data"]]),
      change("digitalocean_droplet.lb", ["delete", "create"], {}, {}, [["image"], ["user_data"]]),
    );
    expect(outdatedOfPlans(real, stripped)).toEqual(["digitalocean_droplet.web"]);
  });

  test("the droplets' addresses come from the state", () => {
    const state = {
      values: {
        root_module: {
          resources: [
            { type: "digitalocean_droplet", values: { name: "web-01", ipv4_address: "203.0.113.5", ipv4_address_private: "10.10.10.5" } },
            { type: "digitalocean_volume", values: { name: "web-01-mysql" } },
          ],
        },
      },
    };
    expect([...dropletsOfState(state)]).toEqual([["web-01", { publicIpv4: "203.0.113.5", privateIpv4: "10.10.10.5" }]]);
  });
});
