import type { ResourceChange, TerraformJson } from "../../tools/changes";
import {
  actionOf,
  compareRow,
  countActions,
  markdownReport,
  planErrors,
  realChanges,
  RealPlan,
  refusedAddresses,
  rowLabel,
} from "../../tools/real-plans";
import {
  blockType,
  fillUnknowns,
  hostInRange,
  MadeUpContext,
  makeUpValue,
  mergePlan,
  PlanJson,
  PlannedChange,
  prepareConfig,
  ProviderSchemas,
  recordRefresh,
  sensitivePaths,
  stateDocument,
  StateResource,
  stateResource,
} from "../../tools/terraform-state";

/** Tiny fixtures in the shapes `terraform show -json` and `terraform providers schema -json` write. */
const DO = "registry.terraform.io/digitalocean/digitalocean";

const schemas: ProviderSchemas = {
  provider_schemas: {
    [DO]: {
      resource_schemas: {
        digitalocean_droplet: {
          version: 1,
          block: {
            attributes: {
              id: { type: "string", computed: true },
              name: { type: "string" },
              urn: { type: "string", computed: true },
              ipv4_address: { type: "string", computed: true },
              ipv4_address_private: { type: "string", computed: true },
              user_data: { type: "string" },
              volume_ids: { type: ["set", "string"], computed: true },
            },
          },
        },
        digitalocean_volume: {
          version: 0,
          block: {
            attributes: {
              id: { type: "string", computed: true },
              name: { type: "string" },
              droplet_ids: { type: ["set", "number"], computed: true },
            },
          },
        },
        digitalocean_firewall: {
          version: 0,
          block: {
            attributes: { id: { type: "string", computed: true } },
            block_types: {
              inbound_rule: {
                nesting_mode: "set",
                block: { attributes: { port_range: { type: "string" }, source_droplet_ids: { type: ["set", "number"] } } },
              },
            },
          },
        },
      },
    },
  },
};

function counter(resourceType: string, vpcRange = "10.10.10.0/24"): MadeUpContext {
  let n = 0;
  return { resourceType, vpcRange, next: () => ++n };
}

function change(address: string, actions: string[], extra: Partial<PlannedChange["change"]> = {}, reason?: string): PlannedChange {
  const [type, name] = address.split(".") as [string, string];
  return {
    address,
    mode: "managed",
    type,
    name,
    provider_name: DO,
    change: { actions, ...extra },
    ...(reason ? { action_reason: reason } : {}),
  };
}

function predicted(address: string, action: ResourceChange["action"], args: string[] = []): ResourceChange {
  return { address, type: address.split(".")[0]!, action, arguments: args };
}

describe("what Terraform's plan actions mean to the planner", () => {
  test.each([
    [["create"], "create"],
    [["delete"], "delete"],
    [["delete", "create"], "replace"],
    [["create", "delete"], "replace"],
    [["update"], "update"],
    [["forget"], "forget"],
    [["no-op"], undefined],
    [["read"], undefined],
  ])("%j is %s", (actions, expected) => {
    expect(actionOf(actions)).toBe(expected);
  });

  test("throws on a combination the stack never produces, rather than guessing", () => {
    expect(() => actionOf(["create", "forget"])).toThrow(/unexpected plan actions \[create,forget\]/);
  });

  test("a plan's resource changes keep what forces a replacement and why, and drop no-ops", () => {
    const plan: PlanJson = {
      terraform_version: "1.11.4",
      resource_changes: [
        change("digitalocean_tag.web", ["no-op"]),
        change("digitalocean_droplet.web", ["delete", "create"], { replace_paths: [["image"]] }, "replace_because_cannot_update"),
        change("digitalocean_volume.old", ["forget"], {}, "delete_because_no_resource_config"),
      ],
    };
    expect(realChanges(plan)).toEqual([
      { address: "digitalocean_droplet.web", action: "replace", replacePaths: [["image"]], reason: "replace_because_cannot_update" },
      { address: "digitalocean_volume.old", action: "forget", replacePaths: [], reason: "delete_because_no_resource_config" },
    ]);
  });
});

describe("reading a refused plan", () => {
  const output = [
    '{"@level":"info","@message":"Terraform 1.11.4","type":"version"}',
    JSON.stringify({
      type: "diagnostic",
      diagnostic: {
        severity: "error",
        summary: "Instance cannot be destroyed",
        detail:
          "Resource digitalocean_volume.web-01 has lifecycle.prevent_destroy set, but the plan calls for this resource to be destroyed.\nTo avoid this error…",
      },
    }),
    JSON.stringify({ type: "diagnostic", diagnostic: { severity: "warning", summary: "Deprecated", detail: "ignored" } }),
  ].join("\n");

  test("takes the error diagnostics of `terraform plan -json`, one line each", () => {
    expect(planErrors(output)).toEqual([
      "Instance cannot be destroyed: Resource digitalocean_volume.web-01 has lifecycle.prevent_destroy set, but the plan calls for this resource to be destroyed. To avoid this error…",
    ]);
  });

  test("names the resources prevent_destroy protects, and nothing for other errors", () => {
    expect(refusedAddresses(planErrors(output))).toEqual(["digitalocean_volume.web-01"]);
    expect(refusedAddresses(["Invalid reference: A reference to a resource type must be followed by …"])).toEqual([]);
  });
});

describe("comparing the planner with Terraform", () => {
  const before: TerraformJson = {
    resource: {
      digitalocean_volume: { "web-01": { name: "web-01-mysql", lifecycle: { prevent_destroy: true } } },
      digitalocean_droplet: { web: { name: "web-01" } },
    },
  };
  const real = (changes: RealPlan["changes"], refused: string[] = []): RealPlan => ({ changes, refused });

  test("agrees when every address has the same action and the planner names what forces each replacement", () => {
    const mine = [predicted("digitalocean_droplet.web", "replace", ["image", "region"])];
    expect(compareRow(before, mine, real([{ address: "digitalocean_droplet.web", action: "replace", replacePaths: [["image"]] }]))).toEqual(
      [],
    );
  });

  test("names each address whose action differs, either way", () => {
    const mine = [predicted("digitalocean_droplet.web", "update", ["tags"])];
    expect(
      compareRow(
        before,
        mine,
        real([{ address: "digitalocean_tag.web", action: "replace", replacePaths: [["name"]], reason: "replace_because_cannot_update" }]),
      ),
    ).toEqual([
      "digitalocean_droplet.web: planner update, Terraform nothing",
      "digitalocean_tag.web: planner nothing, Terraform replace (replace_because_cannot_update)",
    ]);
  });

  test("names a replacement forced by an argument the planner does not name", () => {
    const mine = [predicted("digitalocean_droplet.web", "replace", ["region"])];
    const theirs = real([{ address: "digitalocean_droplet.web", action: "replace", replacePaths: [["vpc_uuid"], ["region"]] }]);
    expect(compareRow(before, mine, theirs)).toEqual([
      "digitalocean_droplet.web: Terraform replaces it for vpc_uuid, planner names region",
    ]);
  });

  test("agrees when Terraform refuses exactly the protected volumes the planner predicts", () => {
    const mine = [predicted("digitalocean_volume.web-01", "replace", ["region"])];
    const theirs = real(
      [{ address: "digitalocean_volume.web-01", action: "replace", replacePaths: [["region"]] }],
      ["digitalocean_volume.web-01"],
    );
    expect(compareRow(before, mine, theirs)).toEqual([]);
    expect(compareRow(before, [], real([], ["digitalocean_volume.web-01"]))).toEqual([
      "Terraform refuses to destroy web-01-mysql (prevent_destroy), planner predicts nothing",
    ]);
  });

  test("a plan that failed otherwise is a difference, word for word", () => {
    expect(compareRow(before, [], { changes: [], refused: [], failure: "Invalid reference" })).toEqual([
      "Terraform's plan failed: Invalid reference",
    ]);
  });

  test("counts the changes per action", () => {
    expect(countActions([{ action: "create" }, { action: "create" }, { action: "forget" }])).toEqual({
      create: 2,
      update: 0,
      replace: 0,
      delete: 0,
      forget: 1,
    });
  });
});

describe("a configuration for a folder of its own", () => {
  const stack = {
    terraform: {
      backend: { s3: { bucket: "foobar-state" } },
      required_providers: { digitalocean: { source: "digitalocean/digitalocean", version: ">= 2.71.0, < 3.0.0" } },
    },
    resource: {
      digitalocean_volume: { v: { name: "v", lifecycle: { prevent_destroy: true } } },
      digitalocean_droplet: { d: { name: "d", lifecycle: { ignore_changes: ["user_data"], prevent_destroy: true } } },
    },
  } as TerraformJson;

  test("keeps its state in the folder and pins the provider version under test, leaving the stack as it was", () => {
    const config = prepareConfig(stack, "2.99.1") as any;
    expect(config.terraform.backend).toEqual({ local: { path: "terraform.tfstate" } });
    expect(config.terraform.required_providers.digitalocean.version).toBe("2.99.1");
    expect((stack as any).terraform.backend.s3).toBeDefined();
  });

  test("strips only the lifecycle arguments asked for, and a lifecycle left empty", () => {
    const config = prepareConfig(stack, undefined, ["prevent_destroy"]) as any;
    expect(config.resource.digitalocean_volume.v.lifecycle).toBeUndefined();
    expect(config.resource.digitalocean_droplet.d.lifecycle).toEqual({ ignore_changes: ["user_data"] });
    expect(config.terraform.required_providers.digitalocean.version).toBe(">= 2.71.0, < 3.0.0");
  });
});

describe("the report", () => {
  test("labels a row as the README does", () => {
    expect(rowLabel({ variables: { FOOBAR_DNS_TTL: "60" } })).toBe("FOOBAR_DNS_TTL=60");
    expect(rowLabel({ from: { FOOBAR_WEB_SERVERS: "3" }, variables: { FOOBAR_WEB_SERVERS: "2" } })).toBe(
      "FOOBAR_WEB_SERVERS=3 → FOOBAR_WEB_SERVERS=2",
    );
  });

  test("says when, with what, how many rows agree, and what Terraform planned per row", () => {
    const report = markdownReport({
      date: "2026-12-02",
      terraformVersion: "1.11.4",
      providers: { [DO]: "2.71.0", "registry.terraform.io/hashicorp/random": "3.7.2" },
      rows: [
        {
          label: "FOOBAR_DNS_TTL=60",
          real: { changes: [{ address: "digitalocean_record.site", action: "update", replacePaths: [] }], refused: [] },
          differences: [],
        },
        { label: "FOOBAR_REGION=ams3", real: { changes: [], refused: ["digitalocean_volume.v"] }, differences: ["a | b"] },
      ],
    });
    expect(report).toContain("Checked on 2026-12-02 with Terraform 1.11.4, digitalocean/digitalocean 2.71.0, hashicorp/random 3.7.2");
    expect(report).toContain("**1 of 2 rows agree** with digitalocean/digitalocean 2.71.0.");
    expect(report).toContain("| `FOOBAR_DNS_TTL=60` | 0 | 1 | 0 | 0 | 0 | agrees |");
    expect(report).toMatch(
      /\| `FOOBAR_REGION=ams3` \| 0 \| 0 \| 0 \| 0 \| 0 \| stops: prevent_destroy on 1 volume\(s\).*\*\*differs\*\*: a \\\| b \|$/m,
    );
  });
});

describe("made-up values, from the schema type", () => {
  test("a droplet's id is a number, a volume's a UUID, each URN repeats its id", () => {
    const droplet = makeUpValue(
      blockType(schemas.provider_schemas[DO]!.resource_schemas.digitalocean_droplet!.block),
      "",
      {},
      counter("digitalocean_droplet"),
    ) as any;
    expect(droplet.id).toMatch(/^\d+$/);
    expect(droplet.urn).toBe(`do:droplet:${droplet.id}`);
    expect(makeUpValue("string", "id", {}, counter("digitalocean_volume"))).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(makeUpValue("string", "id", { name: "foobar.com" }, counter("digitalocean_domain"))).toBe("foobar.com");
  });

  test("public addresses are documentation addresses, private ones inside the VPC's range", () => {
    expect(makeUpValue("string", "ipv4_address", {}, counter("digitalocean_droplet"))).toMatch(/^203\.0\.113\.\d+$/);
    expect(makeUpValue("string", "ipv4_address_private", {}, counter("digitalocean_droplet", "10.20.0.0/24"))).toMatch(/^10\.20\.0\.\d+$/);
    expect(hostInRange("10.10.10.0/24", 1)).toBe("10.10.10.3");
    expect(hostInRange("10.10.10.0/24", 253)).toBe("10.10.10.2");
  });

  test("collections are empty, numbers zero unless they are ids, booleans false", () => {
    expect(makeUpValue(["set", "number"], "droplet_ids", {}, counter("digitalocean_volume"))).toEqual([]);
    expect(makeUpValue(["map", "string"], "keepers", {}, counter("random_password"))).toEqual({});
    expect(makeUpValue("number", "memory", {}, counter("digitalocean_droplet"))).toBe(0);
    expect(makeUpValue("number", "droplet_id", {}, counter("digitalocean_reserved_ip"))).toBeGreaterThan(0);
    expect(makeUpValue("bool", "locked", {}, counter("digitalocean_droplet"))).toBe(false);
  });

  test("an unknown leaf takes the state's value when it has one, a made-up one otherwise; known values stay", () => {
    const type = blockType(schemas.provider_schemas[DO]!.resource_schemas.digitalocean_droplet!.block);
    const filled = fillUnknowns(
      { name: "web-01" },
      { id: true, ipv4_address: true },
      type,
      { id: "42" },
      counter("digitalocean_droplet"),
    ) as any;
    expect(filled).toMatchObject({ name: "web-01", id: "42", user_data: null });
    expect(filled.ipv4_address).toMatch(/^203\.0\.113\./);
  });

  test("nested blocks are filled element by element", () => {
    const type = blockType(schemas.provider_schemas[DO]!.resource_schemas.digitalocean_firewall!.block);
    const filled = fillUnknowns(
      { inbound_rule: [{ port_range: "22" }] },
      { id: true, inbound_rule: [{ source_droplet_ids: true }] },
      type,
      undefined,
      counter("digitalocean_firewall"),
    ) as any;
    expect(filled.inbound_rule).toEqual([{ port_range: "22", source_droplet_ids: [] }]);
  });
});

describe("the state document", () => {
  const create = (address: string, after: object, unknown: object, sensitive: object = {}) =>
    change(address, ["create"], { after, after_unknown: unknown, after_sensitive: sensitive });
  const plan: PlanJson = {
    terraform_version: "1.11.4",
    resource_changes: [
      create("digitalocean_volume.v", { name: "web-01-mysql" }, { id: true, droplet_ids: true }),
      create("digitalocean_droplet.d", { name: "web-01", user_data: "abc" }, { id: true, volume_ids: true }, { user_data: true }),
    ],
  };

  test("sensitive attributes become state paths", () => {
    expect(sensitivePaths({ user_data: true, tags: [false, true] })).toEqual([
      [{ type: "get_attr", value: "user_data" }],
      [
        { type: "get_attr", value: "tags" },
        { type: "index", value: { value: 1, type: "number" } },
      ],
    ]);
  });

  test("a resource records the schema's version and the plan's sensitive attributes", () => {
    const droplet = stateResource(plan.resource_changes![1]!, schemas, undefined, counter("digitalocean_droplet"));
    expect(droplet).toMatchObject({ mode: "managed", type: "digitalocean_droplet", name: "d", provider: `provider["${DO}"]` });
    expect(droplet.instances[0]).toMatchObject({ schema_version: 1, sensitive_attributes: [[{ type: "get_attr", value: "user_data" }]] });
  });

  test("a re-plan's known values are merged, the state's values kept where the plan still does not know", () => {
    let n = 0;
    const first = mergePlan(new Map(), plan, schemas, () => ++n);
    const volumeId = first.get("digitalocean_volume.v")!.instances[0].attributes.id;
    const dropletId = first.get("digitalocean_droplet.d")!.instances[0].attributes.id;
    const replan: PlanJson = {
      terraform_version: "1.11.4",
      resource_changes: [
        change("digitalocean_droplet.d", ["update"], {
          after: { name: "web-01", user_data: "abc", volume_ids: [volumeId] },
          after_unknown: { id: true },
        }),
      ],
    };
    const second = mergePlan(first, replan, schemas, () => ++n);
    expect(second.get("digitalocean_droplet.d")!.instances[0].attributes).toMatchObject({ id: dropletId, volume_ids: [volumeId] });
  });

  test("a refresh records which droplets each volume is attached to, and each record's full name", () => {
    const resource = (type: string, attributes: Record<string, unknown>): StateResource => ({
      mode: "managed",
      type,
      name: "x",
      provider: `provider["${DO}"]`,
      instances: [{ schema_version: 0, attributes, sensitive_attributes: [] }],
    });
    const state = new Map([
      ["digitalocean_volume.v", resource("digitalocean_volume", { id: "vol-1", droplet_ids: [] })],
      ["digitalocean_volume.w", resource("digitalocean_volume", { id: "vol-2", droplet_ids: [] })],
      ["digitalocean_droplet.d", resource("digitalocean_droplet", { id: "7", volume_ids: ["vol-1"] })],
      ["digitalocean_record.r", resource("digitalocean_record", { name: "www", domain: "foobar.com", fqdn: "" })],
    ]);
    const refreshed = recordRefresh(state);
    expect(refreshed.get("digitalocean_volume.v")!.instances[0].attributes.droplet_ids).toEqual([7]);
    expect(refreshed.get("digitalocean_volume.w")!.instances[0].attributes.droplet_ids).toEqual([]);
    expect(refreshed.get("digitalocean_record.r")!.instances[0].attributes.fqdn).toBe("www.foobar.com");
  });

  test("is format version 4 with its resources in address order", () => {
    let n = 0;
    const document = stateDocument(
      mergePlan(new Map(), plan, schemas, () => ++n),
      "1.11.4",
      "lineage",
    );
    expect(document).toMatchObject({
      version: 4,
      terraform_version: "1.11.4",
      serial: 1,
      lineage: "lineage",
      outputs: {},
      check_results: null,
    });
    expect(document.resources.map((r) => `${r.type}.${r.name}`)).toEqual(["digitalocean_droplet.d", "digitalocean_volume.v"]);
  });
});
