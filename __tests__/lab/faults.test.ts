import { spawnSync } from "child_process";

import { DEFAULT_SLOW_MS, parseFault, partitionTable, renderPartition, unitName } from "../../lab/faults";

const droplets = ["lb-01", "web-01", "web-02"];

describe("the lab's fault command", () => {
  test.each([
    [["web-02", "crash", "mysql"], { droplet: "web-02", kind: "crash", unit: "mysql" }],
    [["web-01", "stop", "nginx.service"], { droplet: "web-01", kind: "stop", unit: "nginx.service" }],
    [["web-02", "poweroff"], { droplet: "web-02", kind: "poweroff" }],
    [["web-02", "partition"], { droplet: "web-02", kind: "partition" }],
    [["web-02", "partition", "lb-01"], { droplet: "web-02", kind: "partition", from: "lb-01" }],
    [["lb-01", "slow", "150"], { droplet: "lb-01", kind: "slow", delayMs: 150 }],
    [["lb-01", "slow"], { droplet: "lb-01", kind: "slow" }],
    [["lb-01", "heal"], { droplet: "lb-01", kind: "heal" }],
  ])("reads %j", (args, fault) => {
    expect(parseFault(args, droplets)).toEqual(fault);
  });

  test.each([
    [["web-09", "crash", "mysql"], 'no droplet named "web-09" (have: lb-01, web-01, web-02)'],
    [["web-02", "explode"], 'unknown kind "explode"'],
    [["web-02", "crash"], "crash needs a unit"],
    [["web-02", "crash", "mysql; reboot"], "is not a systemd unit name"],
    [["web-02", "slow", "0"], "whole milliseconds from 1 to 10000"],
    [["web-02", "partition", "now"], 'partition takes another droplet to cut web-02 off from, got "now"'],
    [["web-02", "partition", "web-02"], 'partition takes another droplet to cut web-02 off from, got "web-02"'],
    [["web-02"], "usage: fault <droplet>"],
  ])("refuses %j in one line", (args, message) => {
    expect(() => parseFault(args, droplets)).toThrow(message);
    try {
      parseFault(args, droplets);
    } catch (error) {
      expect((error as Error).message).not.toContain("\n");
    }
  });

  test("a bare unit name means its service", () => {
    expect(unitName("mysql")).toBe("mysql.service");
    expect(unitName("ssh.socket")).toBe("ssh.socket");
    expect(DEFAULT_SLOW_MS).toBeGreaterThan(0);
  });

  test("a partition drops every frame to and from both of the droplet's switch ports, and nothing else", () => {
    const rules = renderPartition("web-02", ["pub2", "vpc2"]);
    expect(rules).toContain(`table bridge ${partitionTable("web-02")} {`);
    expect(rules.match(/drop/g)).toHaveLength(4);
    for (const port of ["pub2", "vpc2"]) {
      expect(rules).toContain(`iifname "${port}" drop`);
      expect(rules).toContain(`oifname "${port}" drop`);
    }
    expect(partitionTable("web-02")).toBe("lab_partition_web_02");
  });

  test("a partition from one other droplet drops only the frames between the two, both ways", () => {
    const rules = renderPartition("lb-01", ["pub0", "vpc0"], ["pub1", "vpc1"]);
    expect(rules.match(/drop/g)).toHaveLength(2);
    expect(rules).toContain('iifname { "pub0", "vpc0" } oifname { "pub1", "vpc1" } drop');
    expect(rules).toContain('iifname { "pub1", "vpc1" } oifname { "pub0", "vpc0" } drop');
  });

  // nft comes with the lab's packages (.ci/run installs them).
  test.each([
    ["from everything", renderPartition("web-02", ["pub2", "vpc2"])],
    ["from one droplet", renderPartition("lb-01", ["pub0", "vpc0"], ["pub1", "vpc1"])],
  ])("nft accepts the partition ruleset %s (checked without loading it)", (_label, ruleset) => {
    const result = spawnSync("nft", ["--check", "-f", "-"], { input: ruleset, encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });
});
