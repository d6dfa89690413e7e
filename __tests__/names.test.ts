import { internalHostName, isLoadBalancer, isWebServer, loadBalancerName, parseDropletName, stateKey, webServerName } from "../names";

describe("droplet names", () => {
  test("are the role's prefix and a two-digit index", () => {
    expect([loadBalancerName(1), loadBalancerName(2), webServerName(3), webServerName(10)]).toEqual(["lb-01", "lb-02", "web-03", "web-10"]);
  });

  test("say the droplet's role and index, and nothing for a name the stack never gives", () => {
    expect(parseDropletName("web-02")).toEqual({ role: "web-server", index: 2 });
    expect(parseDropletName("lb-01")).toEqual({ role: "load-balancer", index: 1 });
    for (const name of ["web-2", "webx-01", "lb-01a", "db-01", ""]) expect(parseDropletName(name)).toBeUndefined();
    expect([isWebServer("web-01"), isWebServer("lb-01"), isLoadBalancer("lb-02"), isLoadBalancer("web-02")]).toEqual([
      true,
      false,
      true,
      false,
    ]);
  });

  test("round-trip for every slot", () => {
    for (let i = 1; i <= 10; i++) {
      expect(parseDropletName(webServerName(i))).toEqual({ role: "web-server", index: i });
      expect(parseDropletName(loadBalancerName(i))).toEqual({ role: "load-balancer", index: i });
    }
  });
});

describe("other shared names", () => {
  test("a private address's name is under internal.<domain>; a stack's state under <stack>/", () => {
    expect(internalHostName("mysql-primary", "foobar.com")).toBe("mysql-primary.internal.foobar.com");
    expect(stateKey("foobar-staging")).toBe("foobar-staging/terraform.tfstate");
  });
});
