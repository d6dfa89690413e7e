import { dropletSlot } from "../../lab/settings";

describe("a droplet's place on the lab's switch", () => {
  test("comes from its name, not its position in the stack: adding lb-02 moves no web server", () => {
    expect(["lb-01", "lb-02", "web-01", "web-02", "web-10"].map(dropletSlot)).toEqual([0, 1, 2, 3, 11]);
    expect(dropletSlot("foobar-staging-web-01")).toBe(dropletSlot("web-01"));
  });

  test("every slot is distinct", () => {
    const names = ["lb-01", "lb-02", ...Array.from({ length: 10 }, (_, i) => `web-${String(i + 1).padStart(2, "0")}`)];
    expect(new Set(names.map(dropletSlot)).size).toBe(names.length);
  });

  test("a name that is no load balancer or web server slot is refused with one line", () => {
    expect(() => dropletSlot("db-01")).toThrow('the lab has no switch slot for droplet "db-01"');
    expect(() => dropletSlot("lb-03")).toThrow(/lb-01 to lb-02 and web-01 to web-10/);
  });
});

describe("the monitoring server's place on the lab's switch", () => {
  test("mon-01 has a slot of its own after the last web server's", () => {
    const others = ["lb-01", "lb-02", ...Array.from({ length: 10 }, (_, i) => `web-${String(i + 1).padStart(2, "0")}`)].map(dropletSlot);
    expect(dropletSlot("mon-01")).toBe(Math.max(...others) + 1);
  });

  test("there is only one", () => {
    expect(() => dropletSlot("mon-02")).toThrow('the lab has no switch slot for droplet "mon-02"');
  });
});
