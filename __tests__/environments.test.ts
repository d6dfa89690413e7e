import { Testing } from "cdktf";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { FoobarStack } from "../constructs";
import { DEFAULT_STACK_NAME, loadStacks, readEnvironmentFile, StackPlan } from "../environments";
import { DEFAULT_SETTINGS } from "../settings";
import { resourcesOf, StackJson } from "./helpers";

const FIXTURES = path.join(__dirname, "fixtures", "environments");
const BOTH = { FOOBAR_ENVIRONMENTS: "staging,production", FOOBAR_ENVIRONMENTS_DIR: FIXTURES };

/** A folder of environment files with these contents, by name. */
function environmentsDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-environments-"));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, `${name}.env`), text);
  return dir;
}

function synth(plan: StackPlan): StackJson {
  return JSON.parse(Testing.synth(new FoobarStack(Testing.app(), plan.name, plan.settings))) as StackJson;
}

describe("stacks without environments", () => {
  test("there is one stack, foobar, configured by the shell", () => {
    const stacks = loadStacks({ FOOBAR_WEB_SERVERS: "3" });
    expect(stacks.map((s) => s.name)).toEqual([DEFAULT_STACK_NAME]);
    expect(stacks[0].settings.webServers).toBe(3);
    expect(stacks[0].settings.environment).toBeUndefined();
  });

  test("FOOBAR_ENVIRONMENTS_DIR alone is an error", () => {
    expect(() => loadStacks({ FOOBAR_ENVIRONMENTS_DIR: FIXTURES })).toThrow(
      "FOOBAR_ENVIRONMENTS must be set as well when FOOBAR_ENVIRONMENTS_DIR is set",
    );
  });
});

describe("two environments", () => {
  const plans = loadStacks(BOTH);
  const [staging, production] = plans.map(synth);

  test("give two stacks, <project>-<environment>, each with its own file's settings", () => {
    expect(plans.map((p) => p.name)).toEqual(["foobar-staging", "foobar-production"]);
    expect(plans[0].settings).toEqual(expect.objectContaining({ environment: "staging", webServers: 1, domain: "staging.foobar.com" }));
    expect(plans[1].settings).toEqual(expect.objectContaining({ environment: "production", webServers: DEFAULT_SETTINGS.webServers }));
  });

  test("never share a droplet name, tag, firewall, VPC, project, zone or state key", () => {
    const names = (stack: StackJson) => ({
      droplets: resourcesOf(stack, "digitalocean_droplet").map((d) => d.name),
      tags: resourcesOf(stack, "digitalocean_tag").map((t) => t.name),
      firewalls: resourcesOf(stack, "digitalocean_firewall").map((f) => f.name),
      vpcs: resourcesOf(stack, "digitalocean_vpc").map((v) => `${v.name} ${v.ip_range}`),
      ranges: resourcesOf(stack, "digitalocean_vpc").map((v) => v.ip_range),
      projects: resourcesOf(stack, "digitalocean_project").map((p) => p.name),
      zones: resourcesOf(stack, "digitalocean_domain").map((d) => d.name),
      stateKeys: [stack.terraform.backend.s3.key],
    });
    const [a, b] = [names(staging), names(production)];
    expect(a.droplets.sort()).toEqual(["foobar-staging-lb-01", "foobar-staging-mon-01", "foobar-staging-web-01"]);
    expect(b.tags.sort()).toEqual([
      "foobar-production",
      "foobar-production-db-primary",
      "foobar-production-db-replica",
      "foobar-production-lb",
      "foobar-production-monitoring",
      "foobar-production-web",
    ]);
    expect([a.ranges, b.ranges]).toEqual([["10.20.10.0/24"], ["10.10.10.0/24"]]);
    expect([a.stateKeys, b.stateKeys]).toEqual([["foobar-staging/terraform.tfstate"], ["foobar-production/terraform.tfstate"]]);
    for (const key of Object.keys(a) as (keyof typeof a)[]) {
      expect(a[key].filter((name) => b[key].includes(name))).toEqual([]);
    }
  });

  test("keep the construct ids, so Terraform addresses read the same in every environment", () => {
    expect(Object.keys(production.resource.digitalocean_droplet).sort()).toEqual(
      Object.keys(synth({ name: "foobar", settings: DEFAULT_SETTINGS }).resource.digitalocean_droplet).sort(),
    );
  });

  test("label the DigitalOcean project with its environment", () => {
    expect(resourcesOf(staging, "digitalocean_project")[0].environment).toBe("Staging");
    expect(resourcesOf(production, "digitalocean_project")[0].environment).toBe("Production");
  });
});

describe("environment rules", () => {
  test("a stack setting in the shell is refused: each environment is exactly its file", () => {
    expect(() => loadStacks({ ...BOTH, FOOBAR_WEB_SERVERS: "3" })).toThrow(
      /^FOOBAR_WEB_SERVERS is set in the shell, but with FOOBAR_ENVIRONMENTS every stack setting comes from its environment's file/,
    );
  });

  test("a missing environment file is named", () => {
    expect(() => loadStacks({ ...BOTH, FOOBAR_ENVIRONMENTS: "staging,qa" })).toThrow(
      `FOOBAR_ENVIRONMENTS names "qa", but ${path.join(FIXTURES, "qa.env")} does not exist`,
    );
  });

  test("a credential in an environment file is refused, naming the file and line", () => {
    const dir = environmentsDir({ qa: "FOOBAR_DOMAIN=qa.foobar.com\nAWS_SECRET_ACCESS_KEY=abc\n" });
    expect(() => readEnvironmentFile(path.join(dir, "qa.env"))).toThrow(
      `${path.join(dir, "qa.env")} line 2 sets AWS_SECRET_ACCESS_KEY: an environment file holds FOOBAR_* stack settings only`,
    );
  });

  test("FOOBAR_ENVIRONMENTS inside an environment file is refused", () => {
    const dir = environmentsDir({ qa: "FOOBAR_ENVIRONMENTS=qa\n" });
    expect(() => readEnvironmentFile(path.join(dir, "qa.env"))).toThrow(/line 1 sets FOOBAR_ENVIRONMENTS:/);
  });

  test("a bad value in an environment file is an error naming the file and the setting", () => {
    const dir = environmentsDir({ qa: "FOOBAR_WEB_SERVERS=0\n" });
    expect(() => loadStacks({ FOOBAR_ENVIRONMENTS: "qa", FOOBAR_ENVIRONMENTS_DIR: dir })).toThrow(
      `${path.join(dir, "qa.env")}: FOOBAR_WEB_SERVERS must be a whole number from 1 to 10, got "0"`,
    );
  });

  test("a line that is not NAME=value is refused", () => {
    const dir = environmentsDir({ qa: "FOOBAR_DOMAIN qa.foobar.com\n" });
    expect(() => readEnvironmentFile(path.join(dir, "qa.env"))).toThrow(/line 1 must be NAME=value, a # comment or blank/);
  });

  test("two environments with one domain are refused: a zone exists once", () => {
    const dir = environmentsDir({ a: "FOOBAR_VPC_IP_RANGE=10.1.0.0/24\n", b: "FOOBAR_VPC_IP_RANGE=10.2.0.0/24\n" });
    expect(() => loadStacks({ FOOBAR_ENVIRONMENTS: "a,b", FOOBAR_ENVIRONMENTS_DIR: dir })).toThrow(
      /^FOOBAR_DOMAIN is "foobar.com" in both a and b/,
    );
  });

  test("two environments with overlapping VPC ranges are refused", () => {
    const dir = environmentsDir({
      a: "FOOBAR_DOMAIN=a.foobar.com\nFOOBAR_VPC_IP_RANGE=10.1.0.0/16\n",
      b: "FOOBAR_DOMAIN=b.foobar.com\nFOOBAR_VPC_IP_RANGE=10.1.2.0/24\n",
    });
    expect(() => loadStacks({ FOOBAR_ENVIRONMENTS: "a,b", FOOBAR_ENVIRONMENTS_DIR: dir })).toThrow(
      "FOOBAR_VPC_IP_RANGE of b (10.1.2.0/24) overlaps a's (10.1.0.0/16)",
    );
  });

  test("the example environment files in environments/ load", () => {
    const stacks = loadStacks({ FOOBAR_ENVIRONMENTS: "staging,production" });
    expect(stacks.map((s) => s.name)).toEqual(["foobar-staging", "foobar-production"]);
  });
});
