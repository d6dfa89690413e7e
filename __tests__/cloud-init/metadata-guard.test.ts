import { filesRunAtBoot } from "../../cloud-init/cloud-config";
import {
  METADATA_GUARD,
  metadataGuard,
  metadataGuardRuleset,
  metadataGuardScript,
  metadataGuardUnit,
} from "../../cloud-init/metadata-guard";
import { droplet, fileAt, parseCloudConfig, synthStack } from "../helpers";

const METADATA_GUARD_RULESET = metadataGuardRuleset().trimEnd();
const METADATA_GUARD_SCRIPT = metadataGuardScript();
const METADATA_GUARD_UNIT = metadataGuardUnit();

describe("the metadata guard", () => {
  test("rejects traffic to 169.254.169.254 from every socket not owned by an allowed user, root alone at first", () => {
    const lines = METADATA_GUARD_RULESET.split("\n");
    expect(lines).toContain("add element inet foobar_metadata allowed_uids { 0 }");
    expect(lines).toContain("add rule inet foobar_metadata output ip daddr 169.254.169.254 meta skuid != @allowed_uids counter reject");
    expect(lines).toContain("add chain inet foobar_metadata output { type filter hook output priority 0; policy accept; }");
  });

  test("touches only its own table: never flushes the ruleset or ufw's tables", () => {
    for (const line of METADATA_GUARD_RULESET.split("\n")) {
      expect(line).toMatch(/^(add (table|set|element|chain|rule)|flush chain) inet foobar_metadata\b/);
    }
    expect(METADATA_GUARD_SCRIPT).not.toMatch(/flush ruleset|delete table|ufw|iptables/);
  });

  test("is idempotent: everything is added, and the one chain is flushed before its rule", () => {
    const lines = METADATA_GUARD_RULESET.split("\n");
    expect(lines.filter((line) => line.startsWith("add rule"))).toHaveLength(1);
    expect(lines.indexOf("flush chain inet foobar_metadata output")).toBe(lines.findIndex((l) => l.startsWith("add rule")) - 1);
    expect(lines.some((line) => line.startsWith("create "))).toBe(false);
  });

  test("lets DigitalOcean's metrics agent through by its user's id, once it exists", () => {
    expect(METADATA_GUARD_SCRIPT).toContain("if uid=$(id -u do-agent 2>/dev/null); then");
    expect(METADATA_GUARD_SCRIPT).toContain('nft add element inet foobar_metadata allowed_uids "{ $uid }"');
  });

  test("makes cloud-init's copies of the user-data root-only", () => {
    expect(METADATA_GUARD_SCRIPT).toContain("chmod 0700 /var/lib/cloud/instances\n");
    expect(METADATA_GUARD_SCRIPT).toContain("chmod 0600 /run/cloud-init/combined-cloud-config.json");
  });

  test("its unit runs early on every boot, before the network and every ordinary service", () => {
    const lines = METADATA_GUARD_UNIT.split("\n");
    expect(lines).toEqual(
      expect.arrayContaining([
        "DefaultDependencies=no",
        "Before=network-pre.target sysinit.target shutdown.target",
        "Type=oneshot",
        "RemainAfterExit=yes",
        `ExecStart=${METADATA_GUARD.script}`,
        "WantedBy=sysinit.target",
      ]),
    );
  });

  test("bootcmd writes the very script the unit runs, and runs it, so the first boot is guarded before write_files", () => {
    const guard = metadataGuard();
    expect(guard.bootcmd).toHaveLength(1);
    expect(filesRunAtBoot(guard.bootcmd)).toEqual([{ path: METADATA_GUARD.script, content: METADATA_GUARD_SCRIPT }]);
    // Carried once: not again in write_files.
    expect(guard.writeFiles.map((file) => file.path)).toEqual([METADATA_GUARD.unitPath]);
  });
});

describe.each([
  ["defaults", synthStack()],
  ["HTTPS off", synthStack({ https: false })],
])("every droplet is guarded (%s)", (_name, stack) => {
  test.each(["lb-01", "web-01", "web-02"])("%s: bootcmd first, nftables, the script and the unit, enabled first in runcmd", (name) => {
    const config = parseCloudConfig(droplet(stack, name).user_data);
    expect(filesRunAtBoot([(config.bootcmd as string[][])[0]!])).toEqual([{ path: METADATA_GUARD.script, content: METADATA_GUARD_SCRIPT }]);
    expect(config.packages).toContain("nftables");
    expect(fileAt(config, METADATA_GUARD.unitPath)).toBe(METADATA_GUARD_UNIT);
    // runcmd[0] is cloud-init's "set -e"; the guard comes right after, before any service is started.
    expect(config.runcmd.slice(1, 4)).toEqual([
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", METADATA_GUARD.unitName],
      ["systemctl", "restart", METADATA_GUARD.unitName],
    ]);
  });
});
