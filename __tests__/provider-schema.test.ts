import * as fs from "fs";
import * as path from "path";

import { resourcesOf, synthStack } from "./helpers";

/**
 * Checks every synthesized resource against the provider's own schema, as
 * recorded in the jsii assembly of the prebuilt bindings: each argument must
 * exist, each required one must be set, and scalars must have the right type.
 */
interface JsiiProperty {
  name: string;
  optional?: boolean;
  type: { primitive?: string; collection?: { kind: string; elementtype: any }; union?: any; fqn?: string };
}
interface JsiiType {
  fqn: string;
  kind: string;
  properties?: JsiiProperty[];
  interfaces?: string[];
  docs?: { custom?: Record<string, string> };
}

function loadAssembly(packageName: string): Record<string, JsiiType> {
  const file = path.join(path.dirname(require.resolve(`${packageName}/package.json`)), ".jsii");
  return JSON.parse(fs.readFileSync(file, "utf8")).types;
}

const assemblies = {
  digitalocean: loadAssembly("@cdktf/provider-digitalocean"),
  random: loadAssembly("@cdktf/provider-random"),
};

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** The jsii config struct of a Terraform resource type, such as `digitalocean_droplet`. */
function configStruct(resourceType: string): { types: Record<string, JsiiType>; struct: JsiiType } {
  const types = resourceType.startsWith("random_") ? assemblies.random : assemblies.digitalocean;
  // Each resource class's summary reads "Represents a {@link …/resources/<name> <type>}."
  const resource = Object.values(types).find(
    (type) => type.kind === "class" && /\/resources\/\S+ (\w+)\}\.$/.exec((type as any).docs?.summary ?? "")?.[1] === resourceType,
  );
  const structName = resource ? `${resource.fqn}Config` : undefined;
  const struct = structName ? types[structName] : undefined;
  if (!struct) throw new Error(`the provider schema has no resource ${resourceType}`);
  return { types, struct };
}

const META_ARGUMENTS = new Set(["connection", "count", "depends_on", "for_each", "lifecycle", "provider", "provisioners", "//"]);

function allProperties(types: Record<string, JsiiType>, struct: JsiiType): JsiiProperty[] {
  const inherited = (struct.interfaces ?? []).flatMap((fqn) => (types[fqn] ? allProperties(types, types[fqn]) : []));
  return [...(struct.properties ?? []), ...inherited];
}

function checkValue(types: Record<string, JsiiType>, where: string, property: JsiiProperty, value: unknown, problems: string[]) {
  const isReference = typeof value === "string" && /^\$\{[^}]+\}$/.test(value);
  const type = property.type;
  if (isReference) return;
  if (type.primitive === "string" && typeof value !== "string") problems.push(`${where} should be a string`);
  if (type.primitive === "number" && typeof value !== "number") problems.push(`${where} should be a number`);
  if (type.collection && !Array.isArray(value) && typeof value !== "object") problems.push(`${where} should be a list or map`);
  if (type.union) {
    const primitives = JSON.stringify(type.union);
    if (primitives.includes('"boolean"') && typeof value !== "boolean") problems.push(`${where} should be a boolean`);
  }
  const elementFqn: string | undefined =
    type.collection?.elementtype?.fqn ?? type.union?.types?.find((t: any) => t.collection)?.collection?.elementtype?.fqn;
  if (elementFqn && types[elementFqn] && Array.isArray(value)) {
    for (const [index, item] of value.entries()) checkBlock(types, types[elementFqn], `${where}[${index}]`, item, problems);
  }
}

function checkBlock(types: Record<string, JsiiType>, struct: JsiiType, where: string, block: Record<string, unknown>, problems: string[]) {
  const properties = allProperties(types, struct);
  const bySnakeName = new Map(properties.map((p) => [snakeCase(p.name), p]));
  for (const [key, value] of Object.entries(block)) {
    if (META_ARGUMENTS.has(key)) continue;
    const property = bySnakeName.get(key);
    if (!property) problems.push(`${where}.${key} is not an argument of the provider's schema`);
    else checkValue(types, `${where}.${key}`, property, value, problems);
  }
  for (const property of properties) {
    const key = snakeCase(property.name);
    if (!property.optional && !META_ARGUMENTS.has(key) && !(key in block)) problems.push(`${where}.${key} is required`);
  }
}

describe("every synthesized resource matches the provider's own schema", () => {
  const stacks = {
    defaults: synthStack(),
    everything: synthStack({
      webServers: 3,
      apexRecord: true,
      adminCidrs: ["203.0.113.7/32"],
      sshKeys: ["12345"],
      alertEmails: ["ops@foobar.com"],
      alertSlackWebhookUrl: "https://hooks.slack.com/services/T/B/X",
      alertSlackChannel: "#ops",
    }),
  };

  test.each(Object.keys(stacks))("%s", (name) => {
    const stack = stacks[name as keyof typeof stacks];
    const problems: string[] = [];
    let checked = 0;
    for (const [type, resources] of Object.entries(stack.resource)) {
      const { types, struct } = configStruct(type);
      for (const [id, resource] of Object.entries(resources)) {
        checkBlock(types, struct, `${type}.${id}`, resource, problems);
        checked++;
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBe(Object.values(stack.resource).reduce((sum, r) => sum + Object.keys(r).length, 0));
  });

  test("the check catches a misspelt argument and a missing required one", () => {
    const problems: string[] = [];
    const { types, struct } = configStruct("digitalocean_record");
    checkBlock(types, struct, "digitalocean_record.bad", { domain: "foobar.com", nmae: "www", type: "A", value: "1.2.3.4" }, problems);
    expect(problems).toEqual([
      "digitalocean_record.bad.nmae is not an argument of the provider's schema",
      "digitalocean_record.bad.name is required",
    ]);
    // www and the internal names: web-01, web-02, mysql-primary, and lb-01 and mon-01 for the monitoring server.
    expect(resourcesOf(stacks.defaults, "digitalocean_record")).toHaveLength(6);
  });
});
