import * as fs from "fs";
import * as path from "path";

import { planChanges, protectedVolumesAtRisk, summarizeChanges, TerraformJson } from "../../tools/changes";
import { changesTable } from "../../tools/changes-table";
import { FORCE_NEW_ARGUMENTS } from "../../tools/force-new";
import { resourcesOf, synthFromVariables as synth, synthStack } from "../helpers";

/** `[address, action]` of every change of a type, in address order. */
const actionsOn = (changes: ReturnType<typeof planChanges>, type: string) =>
  changes.filter((c) => c.type === type).map((c) => [c.address, c.action]);

const base = synth();
const replacedBy = (variables: Record<string, string>) =>
  planChanges(base, synth(variables))
    .filter((c) => c.action === "replace" || c.action === "delete")
    .map((c) => c.address);

describe("what a change replaces (two syntheses, the provider's ForceNew rules)", () => {
  test("new application files or a new application command replace nothing", () => {
    expect(replacedBy({ FOOBAR_APP_DIR: "__tests__/constructs/fixtures/own-app" })).toEqual([]);
    expect(replacedBy({ FOOBAR_APP_COMMAND: "/usr/bin/gunicorn --bind 127.0.0.1:8000 --workers 4 foobar_app:application" })).toEqual([]);
  });

  test("settings carried only in user-data, and a new SSH key, replace nothing", () => {
    for (const variables of <Record<string, string>[]>[
      { FOOBAR_REPLICA_MAX_LAG: "30" },
      { FOOBAR_SSH_KEYS: "12345678" },
      { FOOBAR_ADMIN_CIDRS: "203.0.113.7/32" },
      { FOOBAR_HSTS_MAX_AGE: "600" },
      { FOOBAR_ACME_EMAIL: "ops@foobar.com" },
    ]) {
      expect(replacedBy(variables)).toEqual([]);
    }
  });

  test("adding a web server adds resources and replaces nothing, not even the load balancer", () => {
    const changes = planChanges(base, synth({ FOOBAR_WEB_SERVERS: "3" }));
    expect(changes.filter((c) => c.action === "replace" || c.action === "delete")).toEqual([]);
    expect(
      changes
        .filter((c) => c.action === "create")
        .map((c) => c.type)
        .sort(),
    ).toEqual(["digitalocean_droplet", "digitalocean_record", "digitalocean_volume"]);
  });

  test("a replaced load balancer keeps the site's reserved IP and its certificate volume", () => {
    const changes = planChanges(base, synth({ FOOBAR_VPC_IP_RANGE: "10.20.0.0/24" }));
    const replaced = changes.filter((c) => c.action === "replace").map((c) => c.type);
    expect(replaced).toContain("digitalocean_droplet");
    expect(replaced).toContain("digitalocean_reserved_ip_assignment");
    expect(replaced).not.toContain("digitalocean_reserved_ip");
    expect(replaced).not.toContain("digitalocean_volume");
    expect(summarizeChanges(base, synth({ FOOBAR_VPC_IP_RANGE: "10.20.0.0/24" })).costs.join(" ")).not.toMatch(
      /data|address changes|new certificate/,
    );
  });

  test("removing a web server forgets its MySQL volume (kept in the account), never deletes it", () => {
    const after = synth({ FOOBAR_WEB_SERVERS: "1" });
    const changes = planChanges(base, after);
    expect(actionsOn(changes, "digitalocean_volume")).toEqual([
      [expect.stringMatching(/^digitalocean_volume\.web-02_mysql-volume_/), "forget"],
    ]);
    expect(actionsOn(changes, "digitalocean_droplet")).toEqual([[expect.stringMatching(/^digitalocean_droplet\.web-02_/), "delete"]]);
    expect(summarizeChanges(base, after).costs).toEqual([expect.stringMatching(/^web-02-mysql kept: Terraform forgets it/)]);
  });

  test("with FOOBAR_ALLOW_DATA_LOSS=true, removing a web server deletes its volume, and the table says the data is lost", () => {
    const before = synth({ FOOBAR_ALLOW_DATA_LOSS: "true" });
    const after = synth({ FOOBAR_ALLOW_DATA_LOSS: "true", FOOBAR_WEB_SERVERS: "1" });
    expect(actionsOn(planChanges(before, after), "digitalocean_volume")).toEqual([
      [expect.stringMatching(/web-02_mysql-volume/), "delete"],
    ]);
    expect(summarizeChanges(before, after).costs).toEqual(["**the MySQL data on web-02-mysql lost**"]);
  });

  test("a block that leaves the configuration is deleted although prevent_destroy was set: Terraform checks the flag only on blocks still there", () => {
    const before: TerraformJson = {
      resource: { digitalocean_volume: { v: { name: "data", size: 10, lifecycle: { prevent_destroy: true } } } },
    };
    const changes = planChanges(before, { resource: {} });
    expect(changes.map((c) => [c.address, c.action])).toEqual([["digitalocean_volume.v", "delete"]]);
    expect(protectedVolumesAtRisk(before, changes)).toEqual([]);
    // Replacing it is what the flag stops.
    const renamed: TerraformJson = {
      resource: { digitalocean_volume: { v: { name: "other", size: 10, lifecycle: { prevent_destroy: true } } } },
    };
    expect(protectedVolumesAtRisk(before, planChanges(before, renamed))).toEqual(["data"]);
  });

  test("a removed block with destroy = false makes Terraform forget the resource instead", () => {
    const before: TerraformJson = { resource: { digitalocean_volume: { v: { name: "data", size: 10 } } } };
    const after: TerraformJson = { resource: {}, removed: [{ from: "digitalocean_volume.v", lifecycle: { destroy: false } }] };
    expect(planChanges(before, after).map((c) => [c.address, c.action])).toEqual([["digitalocean_volume.v", "forget"]]);
  });

  test("an Optional+Computed argument that leaves the configuration keeps its value; an Optional-only one is planned to null", () => {
    const before: TerraformJson = {
      resource: {
        digitalocean_droplet: { d: { image: "x", volume_ids: ["${digitalocean_volume.v.id}"] } },
        digitalocean_reserved_ip: { ip: { region: "nyc3", droplet_id: "${digitalocean_droplet.d.id}" } },
      },
    };
    const after: TerraformJson = {
      resource: { digitalocean_droplet: { d: { image: "x" } }, digitalocean_reserved_ip: { ip: { region: "nyc3" } } },
    };
    expect(planChanges(before, after).map((c) => [c.address, c.action, c.arguments])).toEqual([
      ["digitalocean_reserved_ip.ip", "update", ["droplet_id"]],
    ]);
  });

  test("HTTPS off forgets lb-01's certificate volume, and plans no detach on lb-01 (volume_ids is Optional+Computed)", () => {
    const changes = planChanges(base, synth({ FOOBAR_HTTPS: "false" }));
    expect(actionsOn(changes, "digitalocean_volume")).toEqual([[expect.stringMatching(/lb-01_certificate-volume/), "forget"]]);
    expect(changes.filter((c) => c.action === "delete" || c.action === "replace")).toEqual([]);
    expect(actionsOn(changes, "digitalocean_droplet")).toEqual([]);
  });

  test("one load balancer to two forgets the address assignment instead of deleting it (a delete unassigns the site's address)", () => {
    const changes = planChanges(base, synth({ FOOBAR_LOAD_BALANCERS: "2" }));
    expect(actionsOn(changes, "digitalocean_reserved_ip_assignment")).toEqual([
      [expect.stringMatching(/site-address_assignment/), "forget"],
    ]);
    expect(actionsOn(changes, "digitalocean_reserved_ip")).toEqual([]);
    expect(changes.filter((c) => c.action === "delete" || c.action === "replace")).toEqual([]);
  });

  test("two load balancers to one keeps lb-02's certificate volume and never plans the address unassigned", () => {
    const pair = synth({ FOOBAR_LOAD_BALANCERS: "2" });
    const changes = planChanges(pair, synth({ FOOBAR_LOAD_BALANCERS: "1" }));
    expect(actionsOn(changes, "digitalocean_volume")).toEqual([[expect.stringMatching(/lb-02_certificate-volume/), "forget"]]);
    expect(actionsOn(changes, "digitalocean_reserved_ip")).toEqual([]);
    expect(actionsOn(changes, "digitalocean_reserved_ip_assignment")).toEqual([
      [expect.stringMatching(/site-address_assignment/), "create"],
    ]);
    expect(summarizeChanges(pair, synth({ FOOBAR_LOAD_BALANCERS: "1" })).costs.join(" ")).not.toMatch(/lost|unassigned|address changes/);
  });

  test("the planner follows the provider: a ForceNew argument replaces, ignore_changes is honoured, references to replaced resources spread", () => {
    const before: TerraformJson = {
      resource: {
        digitalocean_droplet: { a: { image: "x", size: "s", user_data: "1", lifecycle: { ignore_changes: ["user_data"] } } },
        digitalocean_record: { r: { type: "A", domain: "d", value: "${digitalocean_droplet.a.ipv4_address}" } },
        digitalocean_reserved_ip_assignment: { i: { ip_address: "1.2.3.4", droplet_id: "${digitalocean_droplet.a.id}" } },
      },
    };
    const userDataOnly = JSON.parse(JSON.stringify(before));
    userDataOnly.resource.digitalocean_droplet.a.user_data = "2";
    expect(planChanges(before, userDataOnly)).toEqual([]);
    const newImage = JSON.parse(JSON.stringify(before));
    newImage.resource.digitalocean_droplet.a.image = "y";
    expect(planChanges(before, newImage).map((c) => [c.address, c.action, c.arguments])).toEqual([
      ["digitalocean_droplet.a", "replace", ["image"]],
      ["digitalocean_record.r", "update", ["value"]],
      ["digitalocean_reserved_ip_assignment.i", "replace", ["droplet_id"]],
    ]);
    const resized = JSON.parse(JSON.stringify(before));
    resized.resource.digitalocean_droplet.a.size = "m";
    expect(planChanges(before, resized).map((c) => [c.address, c.action])).toEqual([["digitalocean_droplet.a", "update"]]);
  });

  test("a resource replaced for an argument of its own also names the references that force it: a new region replaces each droplet for region and vpc_uuid", () => {
    const droplets = planChanges(base, synth({ FOOBAR_REGION: "ams3" })).filter((c) => c.type === "digitalocean_droplet");
    expect(droplets).toHaveLength(4);
    for (const droplet of droplets) expect([droplet.action, droplet.arguments]).toEqual(["replace", ["region", "vpc_uuid"]]);
  });

  test("every resource type the stack can create has its ForceNew arguments on record", () => {
    const everything = synth({ FOOBAR_ALERT_EMAILS: "ops@foobar.com", FOOBAR_WEB_SERVERS: "3" });
    for (const type of Object.keys(everything.resource ?? {})) expect(Object.keys(FORCE_NEW_ARGUMENTS)).toContain(type);
  });
});

describe("the table of changes in docs/day-two.md", () => {
  test("is the one two syntheses per setting give (regenerate it with `npm run -s changes`)", () => {
    const readme = fs.readFileSync(path.join(__dirname, "..", "..", "docs", "day-two.md"), "utf8");
    const block = /<!-- changes:start -->\n([\s\S]*?)\n<!-- changes:end -->/.exec(readme);
    expect(block).not.toBeNull();
    expect(block![1]).toBe(changesTable(synth));
  });
});

describe("promoting a replica", () => {
  test("FOOBAR_DB_PRIMARY=web-02 changes the primary's record and the role tags, and replaces nothing", () => {
    const before = synthStack();
    const after = synthStack({ databasePrimary: "web-02" });
    const changes = planChanges(before, after, []);
    expect(changes.filter((c) => c.action !== "update")).toEqual([]);
    const updated = changes.map((c) => c.address);
    expect(updated).toEqual(expect.arrayContaining([expect.stringMatching(/^digitalocean_record\.dns_internal-mysql-primary_/)]));
    for (const change of changes) {
      if (change.type === "digitalocean_droplet") expect(change.arguments).toEqual(["tags"]);
      else expect(["digitalocean_record"]).toContain(change.type);
    }
    const record = resourcesOf(after, "digitalocean_record").find((r) => r.name === "mysql-primary.internal")!;
    expect(record.value).toMatch(/digitalocean_droplet\.web-02_server_droplet_\w+\.ipv4_address_private/);
  });
});
