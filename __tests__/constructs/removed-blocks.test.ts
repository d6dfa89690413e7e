import { Testing } from "cdktf";

import { FoobarStack } from "../../constructs";
import { loadSettings } from "../../settings";
import { RemovedBlock, TerraformJson } from "../../tools/changes";
import { synthesisVariables } from "../../tools/changes-table";

function synth(variables: Readonly<Record<string, string>> = {}): TerraformJson {
  return JSON.parse(Testing.synth(new FoobarStack(Testing.app(), "test", loadSettings(synthesisVariables(variables))))) as TerraformJson;
}

const removed = (stack: TerraformJson) => ((stack.removed ?? []) as RemovedBlock[]).map((block) => block.from);
const addresses = (stack: TerraformJson) =>
  Object.entries(stack.resource ?? {}).flatMap(([type, byName]) => Object.keys(byName).map((name) => `${type}.${name}`));

/** The biggest configuration: every web server slot, two load balancers, HTTPS. */
const biggest = synth({ FOOBAR_WEB_SERVERS: "10", FOOBAR_LOAD_BALANCERS: "2" });

describe("what leaves the configuration is forgotten, not destroyed", () => {
  test.each([
    ["the defaults", {}],
    ["one web server", { FOOBAR_WEB_SERVERS: "1" }],
    ["HTTPS off", { FOOBAR_HTTPS: "false" }],
    ["a pair", { FOOBAR_LOAD_BALANCERS: "2" }],
    ["no monitoring server", { FOOBAR_MONITORING: "false" }],
  ])(
    "with %s, every volume the biggest configuration has and this one lacks is named by a removed block with destroy = false",
    (_, variables) => {
      const stack = synth(variables);
      const volumes = (s: TerraformJson) => addresses(s).filter((a) => a.startsWith("digitalocean_volume."));
      const absent = volumes(biggest).filter((address) => !volumes(stack).includes(address));
      // HTTPS off: lb-01's and lb-02's certificate volumes, which the biggest (HTTPS) configuration has.
      expect(absent.length).toBeGreaterThan(0);
      expect(
        removed(stack)
          .filter((from) => from.startsWith("digitalocean_volume."))
          .sort(),
      ).toEqual(absent.sort());
      for (const block of (stack.removed ?? []) as RemovedBlock[]) expect(block.lifecycle).toEqual({ destroy: false });
    },
  );

  test("no removed block names a resource the configuration declares (Terraform refuses that)", () => {
    for (const variables of <Record<string, string>[]>[
      {},
      { FOOBAR_WEB_SERVERS: "10", FOOBAR_LOAD_BALANCERS: "2" },
      { FOOBAR_HTTPS: "false" },
      { FOOBAR_MONITORING: "false" },
    ]) {
      const stack = synth(variables);
      for (const from of removed(stack)) expect(addresses(stack)).not.toContain(from);
    }
  });

  test("FOOBAR_ALLOW_DATA_LOSS=true keeps no volume: removing a server deletes it", () => {
    expect(removed(synth({ FOOBAR_ALLOW_DATA_LOSS: "true" }))).toEqual([]);
  });

  test("a pair forgets the one load balancer's address assignment, whatever FOOBAR_ALLOW_DATA_LOSS says", () => {
    const single = synth();
    const assignment = addresses(single).find((a) => a.startsWith("digitalocean_reserved_ip_assignment."));
    expect(assignment).toBeDefined();
    expect(removed(synth({ FOOBAR_LOAD_BALANCERS: "2" }))).toContain(assignment);
    expect(removed(synth({ FOOBAR_LOAD_BALANCERS: "2", FOOBAR_ALLOW_DATA_LOSS: "true" }))).toEqual([assignment]);
  });

  test("the stack asks for Terraform 1.7 or later, which reads removed blocks", () => {
    expect((synth().terraform as { required_version?: string }).required_version).toBe(">= 1.7.0");
  });

  test("the reserved IP ignores droplet_id in both shapes, so neither one load balancer nor a pair ever plans it unassigned", () => {
    for (const stack of [synth(), synth({ FOOBAR_LOAD_BALANCERS: "2" })]) {
      const ips = Object.values((stack.resource ?? {}).digitalocean_reserved_ip ?? {});
      expect(ips).toHaveLength(1);
      expect(ips[0]!.lifecycle).toEqual({ ignore_changes: ["droplet_id"] });
    }
  });
});
