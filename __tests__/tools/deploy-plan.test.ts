import { planChanges } from "../../tools/changes";
import { DeployExecutor, DeployStopped, runDeploy } from "../../tools/deploy";
import { outdatedDroplets, planDeploy, primaryRecordAddress, RunningRoles, stepCost, targetedConfiguration } from "../../tools/deploy-plan";
import { synthFromVariables as synth } from "../helpers";

/** The deploy of a change from `from` to `from` + `change`, with the running roles given. */
function deployOf(from: Record<string, string>, change: Record<string, string>, roles: RunningRoles) {
  const before = synth(from);
  const after = synth({ ...from, ...change });
  return planDeploy(after, planChanges(before, after), roles);
}

const PAIR = { FOOBAR_LOAD_BALANCERS: "2", FOOBAR_WEB_SERVERS: "3" };
const order = (plan: ReturnType<typeof planDeploy>) => plan.steps.map((s) => `${s.droplet}:${s.role}${s.handOver ? `+${s.handOver}` : ""}`);

describe("the order of a deploy", () => {
  test("a size change: replicas first, then the primary after a switchover, then the pair's backup, then its master after the address moves", () => {
    const plan = deployOf(PAIR, { FOOBAR_SIZE: "s-2vcpu-4gb" }, { primary: "web-01", masterLoadBalancer: "lb-01" });
    expect(order(plan)).toEqual([
      "web-02:replica",
      "web-03:replica",
      "web-01:primary+primary",
      "lb-02:backup-load-balancer",
      "lb-01:master-load-balancer+address",
    ]);
    expect(plan.steps.every((s) => s.action === "resize")).toBe(true);
  });

  test("the roles are the running ones: the primary and the master may not be those the settings first named", () => {
    const plan = deployOf(PAIR, { FOOBAR_SIZE: "s-2vcpu-4gb" }, { primary: "web-02", masterLoadBalancer: "lb-02" });
    expect(order(plan)).toEqual([
      "web-01:replica",
      "web-03:replica",
      "web-02:primary+primary",
      "lb-01:backup-load-balancer",
      "lb-02:master-load-balancer+address",
    ]);
  });

  test("one load balancer goes last, with nothing to hand over to", () => {
    const plan = deployOf({}, { FOOBAR_IMAGE: "ubuntu-26-04-x64" }, { primary: "web-01" });
    expect(order(plan)).toEqual(["mon-01:monitoring", "web-02:replica", "web-01:primary+primary", "lb-01:only-load-balancer"]);
    expect(plan.steps.every((s) => s.action === "replace")).toBe(true);
  });

  test("the monitoring server goes first, alone, with nothing to hand over: it serves no request", () => {
    const plan = deployOf({}, { FOOBAR_IMAGE: "ubuntu-26-04-x64" }, { primary: "web-01" });
    const first = plan.steps[0]!;
    expect([first.droplet, first.role, first.handOver]).toEqual(["mon-01", "monitoring", undefined]);
    expect(stepCost(first)).toMatch(/serves no request/);
  });

  test("a droplet's step applies what follows from it: its DNS records, and the site's address with its load balancer", () => {
    const plan = deployOf({}, { FOOBAR_IMAGE: "ubuntu-26-04-x64" }, { primary: "web-01" });
    const targets = Object.fromEntries(plan.steps.map((s) => [s.droplet, s.targets]));
    expect(targets["web-02"]).toEqual(expect.arrayContaining([expect.stringMatching(/^digitalocean_record\.dns_internal-web-02_/)]));
    expect(targets["web-01"]).toEqual(expect.arrayContaining([expect.stringMatching(/^digitalocean_record\.dns_internal-web-01_/)]));
    expect(targets["lb-01"]).toEqual(expect.arrayContaining([expect.stringMatching(/^digitalocean_reserved_ip_assignment\./)]));
  });

  test("a change that names several droplets waits for the last of them (the project lists every droplet)", () => {
    const plan = deployOf({}, { FOOBAR_IMAGE: "ubuntu-26-04-x64" }, { primary: "web-01" });
    expect(plan.atOnce.filter((a) => a.startsWith("digitalocean_project."))).toEqual([]);
    expect(plan.steps[plan.steps.length - 1]!.targets).toEqual(expect.arrayContaining([expect.stringMatching(/^digitalocean_project\./)]));
  });

  test("a new web server is named (web-03.internal: HAProxy finds it by that name) only once it is healthy", () => {
    const plan = deployOf({}, { FOOBAR_WEB_SERVERS: "3" }, { primary: "web-01" });
    expect(plan.newServers.droplets).toEqual(["web-03"]);
    expect(plan.newServers.targets).toEqual([expect.stringMatching(/^digitalocean_record\.dns_internal-web-03_/)]);
    expect(plan.atOnce).toEqual(expect.arrayContaining([expect.stringMatching(/^digitalocean_droplet\.web-03_/)]));
    expect(plan.atOnce.filter((a) => a.includes("internal-web-03"))).toEqual([]);
  });

  test("what disturbs no droplet goes at once, and no droplet has a turn", () => {
    const plan = deployOf({}, { FOOBAR_ADMIN_CIDRS: "203.0.113.7/32", FOOBAR_WEB_SERVERS: "3" }, { primary: "web-01" });
    expect(plan.steps).toEqual([]);
    expect(plan.atOnce).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^digitalocean_firewall\./),
        expect.stringMatching(/^digitalocean_droplet\.web-03_/),
        expect.stringMatching(/^digitalocean_volume\.web-03_/),
      ]),
    );
  });

  test("every change is applied exactly once", () => {
    const before = synth(PAIR);
    const after = synth({ ...PAIR, FOOBAR_IMAGE: "ubuntu-26-04-x64" });
    const changes = planChanges(before, after);
    const plan = planDeploy(after, changes, { primary: "web-01", masterLoadBalancer: "lb-01" });
    const applied = [...plan.atOnce, ...plan.newServers.targets, ...plan.steps.flatMap((s) => [...s.targets, ...(s.then ?? [])])];
    expect([...applied].sort()).toEqual(changes.map((c) => c.address).sort());
  });

  test("the primary's server hands its role over, and the primary record goes back after its turn, changed or not", () => {
    const resize = deployOf({}, { FOOBAR_SIZE: "s-2vcpu-4gb" }, { primary: "web-01" });
    const replace = deployOf({}, { FOOBAR_IMAGE: "ubuntu-26-04-x64" }, { primary: "web-01" });
    for (const plan of [resize, replace]) {
      const primary = plan.steps.find((s) => s.role === "primary")!;
      expect(primary.then).toEqual([expect.stringMatching(/^digitalocean_record\.dns_internal-mysql-primary_/)]);
      expect(primary.targets).not.toContain(primary.then![0]);
    }
  });

  test("a lone web server has nobody to hand the primary role to: its turn has no handover", () => {
    const plan = deployOf({ FOOBAR_WEB_SERVERS: "1" }, { FOOBAR_IMAGE: "ubuntu-26-04-x64" }, { primary: "web-01" });
    const primary = plan.steps.find((s) => s.role === "primary")!;
    expect(primary.handOver).toBeUndefined();
    expect(primary.then).toBeUndefined();
    expect(primary.targets).toContain(primaryRecordAddress(synth({ FOOBAR_WEB_SERVERS: "1" })));
  });

  test("roles that name no droplet of the configuration are refused, naming it", () => {
    expect(() => deployOf({}, { FOOBAR_SIZE: "s-2vcpu-4gb" }, { primary: "web-09" })).toThrow(
      "the primary web-09 is not among the droplets (lb-01, mon-01, web-01, web-02)",
    );
  });
});

describe("settings that only user-data or SSH keys carry reach running droplets by a replacement in turn", () => {
  const outdated = (change: Record<string, string>) =>
    outdatedDroplets(synth(PAIR), synth({ ...PAIR, ...change })).map((a) =>
      String(synth(PAIR).resource!.digitalocean_droplet![a.split(".")[1]!]!.name),
    );

  test("the HSTS header is the load balancers' alone", () => {
    expect(outdated({ FOOBAR_HSTS_MAX_AGE: "600" }).sort()).toEqual(["lb-01", "lb-02"]);
  });

  test("the admin ranges (ufw) and an SSH key reach every droplet", () => {
    const all = ["lb-01", "lb-02", "mon-01", "web-01", "web-02", "web-03"];
    expect(outdated({ FOOBAR_ADMIN_CIDRS: "203.0.113.7/32" }).sort()).toEqual(all);
    expect(outdated({ FOOBAR_SSH_KEYS: "12345678" }).sort()).toEqual(all);
  });

  test("the application's settings reach the web servers too (the rollout is the quicker way), and a size is no user-data", () => {
    expect(outdated({ FOOBAR_APP_COMMAND: "/usr/bin/true" }).sort()).toEqual(["web-01", "web-02", "web-03"]);
    expect(outdated({ FOOBAR_SIZE: "s-2vcpu-4gb" })).toEqual([]);
  });

  test("planned with them as forced replacements, they are turns in the usual order", () => {
    const before = synth(PAIR);
    const after = synth({ ...PAIR, FOOBAR_HSTS_MAX_AGE: "600" });
    const plan = planDeploy(after, planChanges(before, after, outdatedDroplets(before, after)), {
      primary: "web-01",
      masterLoadBalancer: "lb-02",
    });
    expect(order(plan)).toEqual(["lb-01:backup-load-balancer", "lb-02:master-load-balancer+address"]);
    expect(plan.steps.every((s) => s.action === "replace")).toBe(true);
  });
});

/** An executor that records what it is asked, and fails where told. */
function recorder(failOn?: { action: keyof DeployExecutor; droplet: string }, drained: readonly string[] = []) {
  const calls: string[] = [];
  const act = (action: keyof DeployExecutor, droplet: string) => {
    calls.push(`${action} ${droplet}`);
    if (failOn?.action === action && failOn.droplet === droplet) throw new Error(`${droplet} answers 503`);
  };
  const executor: DeployExecutor = {
    apply: async (targets, replace) => void calls.push(`apply ${targets.length}${replace.length ? ` replacing ${replace.length}` : ""}`),
    applyAll: async () => void calls.push("applyAll"),
    primaryIs: async (d) => act("primaryIs", d),
    drained: async () => drained,
    switchPrimaryFrom: async (d) => (act("switchPrimaryFrom", d), "web-02"),
    moveAddressFrom: async (d) => (act("moveAddressFrom", d), "lb-02"),
    drain: async (d) => act("drain", d),
    booted: async (d) => act("booted", d),
    ready: async (d) => act("ready", d),
    readmit: async (d) => act("readmit", d),
  };
  return { calls, executor };
}

describe("running a deploy", () => {
  const plan = deployOf({}, { FOOBAR_SIZE: "s-2vcpu-4gb" }, { primary: "web-01" });

  test("each droplet in turn: hand over, drain, apply it alone, ready, readmit; the primary's server takes its role back; then the whole", async () => {
    const { calls, executor } = recorder();
    await runDeploy(plan, executor);
    expect(calls).toEqual([
      ...["drain web-02", "apply 1", "ready web-02", "readmit web-02"],
      ...["switchPrimaryFrom web-01", "drain web-01", "apply 1", "ready web-01", "readmit web-01", "apply 1", "primaryIs web-01"],
      ...["drain lb-01", "apply 1", "ready lb-01", "readmit lb-01"],
      "applyAll",
    ]);
  });

  test("new web servers: booted, then their names applied, then readmitted (UP on every load balancer), before any turn", async () => {
    const { calls, executor } = recorder();
    await runDeploy(deployOf({}, { FOOBAR_WEB_SERVERS: "3", FOOBAR_SIZE: "s-2vcpu-4gb" }, { primary: "web-01" }), executor);
    expect(calls.slice(0, 5)).toEqual(["apply 2", "booted web-03", "apply 1", "readmit web-03", "drain web-02"]);
  });

  test("a new web server that does not come back stops the deploy with its name unpublished", async () => {
    const { calls, executor } = recorder({ action: "booted", droplet: "web-03" });
    await expect(runDeploy(deployOf({}, { FOOBAR_WEB_SERVERS: "3" }, { primary: "web-01" }), executor)).rejects.toThrow(
      "new web server web-03 not healthy; its name is not published yet: web-03 answers 503",
    );
    expect(calls).toEqual(["apply 3", "booted web-03"]);
  });

  test("a new web server named but not yet UP (a resolver's negative cache) is said, and the deploy goes on", async () => {
    const { calls, executor } = recorder({ action: "readmit", droplet: "web-03" });
    const said: string[] = [];
    await runDeploy(deployOf({}, { FOOBAR_WEB_SERVERS: "3" }, { primary: "web-01" }), executor, (line) => said.push(line));
    expect(calls).toEqual(["apply 3", "booted web-03", "apply 1", "readmit web-03", "applyAll"]);
    expect(said).toContain(
      "web-03: not yet UP on every load balancer (web-03 answers 503); HAProxy takes it once its resolver sees the name",
    );
  });

  test("a replacement names its droplet to replace (a setting user-data carries changes no argument Terraform sees)", async () => {
    const { calls, executor } = recorder();
    await runDeploy(deployOf({}, { FOOBAR_IMAGE: "ubuntu-26-04-x64" }, { primary: "web-01" }), executor);
    expect(calls.filter((c) => c.startsWith("apply ")).every((c) => c.endsWith("replacing 1") || c === "apply 1")).toBe(true);
    expect(calls.filter((c) => c.endsWith("replacing 1"))).toHaveLength(4);
  });

  test("it stops at the first droplet that does not come back, and touches none after it", async () => {
    const { calls, executor } = recorder({ action: "ready", droplet: "web-02" });
    const stopped = runDeploy(plan, executor);
    await expect(stopped).rejects.toThrow(DeployStopped);
    await expect(stopped).rejects.toThrow(
      "web-02 (resize) failed; it is left as it is (drained, once its turn drained it): web-02 answers 503; untouched: web-01, lb-01; once the cause is fixed, run the deploy again: it goes on from here",
    );
    expect(calls).toEqual(["drain web-02", "apply 1", "ready web-02"]);
  });

  test("run again, it readmits what a stopped deploy left drained before anything else", async () => {
    const rest = { ...plan, steps: plan.steps.slice(1) };
    const { calls, executor } = recorder(undefined, ["web-02"]);
    await runDeploy(rest, executor);
    expect(calls.slice(0, 3)).toEqual(["ready web-02", "readmit web-02", "switchPrimaryFrom web-01"]);
  });

  test("a droplet left drained that is still not healthy stops the deploy before any change", async () => {
    const { calls, executor } = recorder({ action: "ready", droplet: "web-02" }, ["web-02"]);
    await expect(runDeploy(plan, executor)).rejects.toThrow("web-02, left drained by a stopped deploy, is not healthy: web-02 answers 503");
    expect(calls).toEqual(["ready web-02"]);
  });
});

describe("a step's configuration (what `terraform apply -target` leaves)", () => {
  test("after every step, the configuration is the one deployed, and each step changed no droplet but its own", () => {
    const before = synth(PAIR);
    const after = synth({ ...PAIR, FOOBAR_IMAGE: "ubuntu-26-04-x64", FOOBAR_WEB_SERVERS: "4" });
    const plan = planDeploy(after, planChanges(before, after), { primary: "web-01", masterLoadBalancer: "lb-01" });
    let current = targetedConfiguration(before, after, plan.atOnce);
    expect(
      planChanges(before, current)
        .map((c) => c.address)
        .sort(),
    ).toEqual([...plan.atOnce].sort());
    current = targetedConfiguration(current, after, plan.newServers.targets);
    for (const step of plan.steps) {
      const next = targetedConfiguration(current, after, step.targets);
      const changed = planChanges(current, next);
      // Every target changes; of the droplets, only the step's own (what merely names it, like the
      // project's list of droplets, follows in the step of the last droplet it names).
      expect(changed.map((c) => c.address)).toEqual(expect.arrayContaining([...step.targets]));
      expect(
        changed
          .filter((c) => c.type === "digitalocean_droplet")
          .map((c) => String(next.resource!.digitalocean_droplet![c.address.split(".")[1]!]!.name)),
      ).toEqual([step.droplet]);
      current = step.then ? targetedConfiguration(next, after, step.then) : next;
    }
    expect(planChanges(current, after)).toEqual([]);
    expect(Object.keys(current.resource!).sort()).toEqual(Object.keys(after.resource!).sort());
  });
});
