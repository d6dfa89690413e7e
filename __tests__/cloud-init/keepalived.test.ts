import { FAILOVER_PATHS, failoverFiles, renderHealthScript, vrrpLinkScript } from "../../cloud-init/keepalived";
import { PRIVATE_ADDRESS_VARIABLE } from "../../cloud-init/private-address";

describe("the load balancer pair's scripts", () => {
  test("the tunnel reads the private address by the name the address script writes it under", () => {
    // A parameter expansion, where no placeholder can stand: the name is written in the file.
    expect(vrrpLinkScript()).toContain(`own=\${${PRIVATE_ADDRESS_VARIABLE}:?no private address}\n`);
  });

  test("with HTTPS, the health check fails until the CA's certificate is in place, before HAProxy is asked", () => {
    const lines = renderHealthScript("/etc/letsencrypt/live/www.foobar.com/fullchain.pem").split("\n");
    const check = lines.indexOf("[ -s /etc/letsencrypt/live/www.foobar.com/fullchain.pem ] || exit 1");
    expect(check).toBeGreaterThan(0);
    expect(lines[check + 1]).toMatch(/^exec curl .* http:\/\/127\.0\.0\.1\/lb-health$/);
  });

  test("without HTTPS, the health check is HAProxy's answer alone", () => {
    expect(renderHealthScript()).not.toContain("[ -s ");
    expect(renderHealthScript()).toMatch(/\nexec curl [^\n]*\n$/);
  });

  test("the reserved IP's claim never outlives keepalived: bound to it, not only stopped by the notify script", () => {
    // `systemctl stop keepalived` may end the notify script before it stops the claim; a claim left running would
    // take the address back from the new master.
    const input = { index: 1, hostname: "lb-01", peerHost: "lb-02", reservedIpHost: "site", vrrpPassword: "p", apiToken: "t" } as const;
    const unit = failoverFiles(input).find((file) => file.path === FAILOVER_PATHS.claimUnitPath)!.content;
    expect(unit).toMatch(/^BindsTo=keepalived\.service$/m);
    expect(unit).toMatch(/^After=.*\bkeepalived\.service\b/m);
  });
});
