import { randomPassword, randomSpacesKey } from "../../lab/emulations/passwords";
import { ComputedValues, interpolate, resolveStack } from "../../lab/emulations/terraform";
import { hostAddress } from "../../lab/host/addresses";
import type { TerraformJson } from "../../tools/changes";
import { synthStack } from "../helpers";

/** Pinned stand-ins for apply-time values, so every resolved value is predictable. */
const computed: ComputedValues = {
  publicRange: "198.51.100.0/24",
  firstPublicHost: 10,
  firstPrivateHost: 2,
  firstReservedHost: 200,
  password: (spec) => "p".repeat(spec.length),
  spacesKey: () => ({ accessKey: "DO00LABKEY", secretKey: "lab/secret+key" }),
};

/** A tiny stack: one VPC, a tag, a password, two droplets, a firewall, a domain and a record. */
function tinyStack(): TerraformJson {
  return {
    provider: { digitalocean: [{}] },
    resource: {
      digitalocean_vpc: { net: { name: "vpc", region: "nyc3", ip_range: "10.10.10.0/24" } },
      digitalocean_tag: { web: { name: "foobar-web" } },
      random_password: { db: { length: 32, special: false } },
      digitalocean_droplet: {
        lb: {
          name: "lb-01",
          image: "debian-12-x64",
          region: "nyc3",
          size: "s-1vcpu-1gb",
          vpc_uuid: "${digitalocean_vpc.net.id}",
          user_data: "#cloud-config\nbackend: ${digitalocean_droplet.web.ipv4_address_private}:80\n",
        },
        web: {
          name: "web-01",
          image: "debian-12-x64",
          region: "nyc3",
          size: "s-1vcpu-1gb",
          vpc_uuid: "${digitalocean_vpc.net.id}",
          tags: ["${digitalocean_tag.web.name}"],
          user_data: "#cloud-config\npassword: ${random_password.db.result}\nshell: echo $${HOME} %%{x}\n",
        },
      },
      digitalocean_firewall: {
        web: {
          name: "web-fw",
          tags: ["${digitalocean_tag.web.id}"],
          inbound_rule: [{ protocol: "tcp", port_range: "80", source_droplet_ids: ["${digitalocean_droplet.lb.id}"] }],
          outbound_rule: [{ protocol: "icmp", destination_addresses: ["0.0.0.0/0"] }],
        },
      },
      digitalocean_domain: { site: { name: "foobar.com" } },
      digitalocean_record: {
        www: {
          domain: "${digitalocean_domain.site.id}",
          type: "A",
          name: "www",
          value: "${digitalocean_droplet.lb.ipv4_address}",
          ttl: 300,
        },
      },
      // Ignored by the lab: its unresolvable reference must not matter.
      digitalocean_project: { p: { name: "p", resources: ["${digitalocean_nothing.here.urn}"] } },
    },
  };
}

describe("resolveStack", () => {
  test("droplets get public addresses from the fake public range and private ones from the VPC range", () => {
    const stack = resolveStack(tinyStack(), computed);
    expect(stack.droplets.map((d) => [d.name, d.publicIpv4, d.privateIpv4])).toEqual([
      ["lb-01", "198.51.100.10", "10.10.10.2"],
      ["web-01", "198.51.100.11", "10.10.10.3"],
    ]);
  });

  test("references to another droplet's computed attributes resolve in user-data", () => {
    const lb = resolveStack(tinyStack(), computed).droplets[0]!;
    expect(lb.userData).toBe("#cloud-config\nbackend: 10.10.10.3:80\n");
  });

  test("random_password.result has the configured length and $${ and %%{ become literal", () => {
    const web = resolveStack(tinyStack(), computed).droplets[1]!;
    expect(web.userData).toBe(`#cloud-config\npassword: ${"p".repeat(32)}\nshell: echo \${HOME} %{x}\n`);
  });

  test("tags, firewall targets and rule sources resolve to names and droplet ids", () => {
    const stack = resolveStack(tinyStack(), computed);
    expect(stack.droplets[1]!.tags).toEqual(["foobar-web"]);
    expect(stack.firewalls).toEqual([
      expect.objectContaining({
        name: "web-fw",
        tags: ["foobar-web"],
        inbound: [{ protocol: "tcp", portRange: "80", addresses: [], tags: [], dropletIds: [stack.droplets[0]!.id] }],
        outbound: [{ protocol: "icmp", portRange: undefined, addresses: ["0.0.0.0/0"], tags: [], dropletIds: [] }],
      }),
    ]);
  });

  test("a record's domain is the domain's name and its value the droplet's public address", () => {
    const stack = resolveStack(tinyStack(), computed);
    expect(stack.records).toEqual([
      expect.objectContaining({ domain: "foobar.com", name: "www", fqdn: "www.foobar.com", value: "198.51.100.10", ttl: 300 }),
    ]);
  });

  test("a reference the lab cannot resolve stops it with a message naming the reference", () => {
    const tf = tinyStack();
    tf.resource!.digitalocean_droplet!.web!.user_data = "x: ${digitalocean_loadbalancer.public.ip}";
    expect(() => resolveStack(tf, computed)).toThrow("${digitalocean_loadbalancer.public.ip}");
  });

  test("template directives and function calls are refused, not passed through", () => {
    const tf = tinyStack();
    tf.resource!.digitalocean_droplet!.web!.user_data = "%{ if true }x%{ endif }";
    expect(() => resolveStack(tf, computed)).toThrow("directives are not supported");
    tf.resource!.digitalocean_droplet!.web!.user_data = '${join(",", ["a"])}';
    expect(() => resolveStack(tf, computed)).toThrow("only plain references");
  });

  test("a token list written as one string resolves item by item", () => {
    const tf = tinyStack();
    tf.resource!.digitalocean_firewall!.web!.droplet_ids = "${[digitalocean_droplet.lb.id, digitalocean_droplet.web.id]}";
    const stack = resolveStack(tf, computed);
    expect(stack.firewalls[0]!.dropletIds).toEqual(stack.droplets.map((d) => d.id));
  });
});

describe("interpolate", () => {
  test("leaves text without interpolation untouched, byte for byte", () => {
    const text = "#!/bin/sh\necho 'a $b' \"%c\" {}\n\ttab\n";
    expect(interpolate(text, () => "never")).toBe(text);
  });
});

describe("hostAddress", () => {
  test("counts host numbers from the network address", () => {
    expect(hostAddress("10.10.10.0/24", 2)).toBe("10.10.10.2");
    expect(hostAddress("172.16.8.0/22", 300)).toBe("172.16.9.44");
  });
});

describe("randomPassword", () => {
  const spec = {
    length: 32,
    upper: true,
    lower: true,
    numeric: true,
    special: false,
    minUpper: 2,
    minLower: 2,
    minNumeric: 2,
    minSpecial: 0,
  };

  test("is alphanumeric of the configured length and meets every min_* setting", () => {
    for (let i = 0; i < 200; i++) {
      const password = randomPassword(spec);
      expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
      expect(password.replace(/[^0-9]/g, "").length).toBeGreaterThanOrEqual(2);
      expect(password.replace(/[^A-Z]/g, "").length).toBeGreaterThanOrEqual(2);
    }
  });

  test("throws when the minimums exceed the length", () => {
    expect(() => randomPassword({ ...spec, length: 3 })).toThrow("cannot be met");
  });
});

describe("resolveStack for apply (a running lab's values)", () => {
  const first = resolveStack(tinyStack(), computed);
  const withVolume = (): TerraformJson => {
    const tf = tinyStack() as { resource: Record<string, Record<string, Record<string, unknown>>> };
    tf.resource.digitalocean_volume = { data: { name: "web-01-mysql", region: "nyc3", size: 10 } };
    tf.resource.digitalocean_droplet.web.volume_ids = ["${digitalocean_volume.data.id}"];
    tf.resource.digitalocean_reserved_ip = { site: { region: "nyc3" } };
    tf.resource.digitalocean_reserved_ip_assignment = {
      site: { ip_address: "${digitalocean_reserved_ip.site.ip_address}", droplet_id: "${digitalocean_droplet.lb.id}" },
    };
    return tf;
  };

  test("a kept droplet keeps its id and addresses, and passwords stay what they were", () => {
    const again = resolveStack(tinyStack(), {
      ...computed,
      password: () => "other",
      previous: { attrs: first.computed, renew: new Set() },
    });
    expect(again.droplets).toEqual(first.droplets);
  });

  test("a replaced droplet gets a new id and addresses that no droplet had, the others keep theirs", () => {
    const replaced = resolveStack(tinyStack(), {
      ...computed,
      previous: { attrs: first.computed, renew: new Set(["digitalocean_droplet.web"]) },
    });
    const [lb, web] = [replaced.droplets[0]!, replaced.droplets[1]!];
    expect(lb).toEqual(expect.objectContaining({ id: first.droplets[0]!.id, publicIpv4: first.droplets[0]!.publicIpv4 }));
    expect([web.id, web.publicIpv4, web.privateIpv4]).toEqual(["100000003", "198.51.100.12", "10.10.10.4"]);
    // lb-01's user-data follows web-01 to its new address, as Terraform would re-render it.
    expect(lb.userData).toContain("backend: 10.10.10.4:80");
  });

  test("volumes, reserved IPs and their assignment resolve to the droplets they belong to", () => {
    const stack = resolveStack(withVolume(), computed);
    expect(stack.droplets.find((d) => d.name === "web-01")!.volumes).toEqual(["web-01-mysql"]);
    expect(stack.volumes).toEqual([expect.objectContaining({ name: "web-01-mysql", sizeGib: 10 })]);
    expect(stack.reservedIps).toEqual([
      { address: "digitalocean_reserved_ip.site", ip: "198.51.100.200", assignedTo: "lb-01", placedOnCreate: false },
    ]);
  });
});

describe("resolveStack with backups (a Spaces bucket and its key)", () => {
  const withBackups = (): TerraformJson => {
    const tf = tinyStack() as { resource: Record<string, Record<string, Record<string, unknown>>> };
    tf.resource.digitalocean_spaces_bucket = { backups: { name: "foobar-backups", region: "ams3", acl: "private" } };
    tf.resource.digitalocean_spaces_key = {
      backups: { name: "foobar-backups", grant: [{ bucket: "${digitalocean_spaces_bucket.backups.name}", permission: "readwrite" }] },
    };
    tf.resource.digitalocean_droplet.web.user_data =
      "#cloud-config\nwrite_files:\n- path: /etc/foobar/backup.env\n  content: |\n" +
      "    AWS_ACCESS_KEY_ID=${digitalocean_spaces_key.backups.access_key}\n" +
      "    AWS_SECRET_ACCESS_KEY=${digitalocean_spaces_key.backups.secret_key}\n" +
      "    BUCKET=${digitalocean_spaces_bucket.backups.name}\n";
    return tf;
  };

  test("the stack's bucket and the key granted on it become LabStack.spaces, with lab-made credentials", () => {
    expect(resolveStack(withBackups(), computed).spaces).toEqual({
      bucket: "foobar-backups",
      region: "ams3",
      accessKeyId: "DO00LABKEY",
      secretAccessKey: "lab/secret+key",
    });
  });

  test("an env file in user-data that names the key gets the same lab-made values", () => {
    const web = resolveStack(withBackups(), computed).droplets[1]!;
    expect(web.userData).toContain("AWS_ACCESS_KEY_ID=DO00LABKEY\n    AWS_SECRET_ACCESS_KEY=lab/secret+key\n    BUCKET=foobar-backups\n");
  });

  test("the key's values stay what they were for the whole lab run (apply keeps them)", () => {
    const first = resolveStack(withBackups(), { ...computed, spacesKey: () => ({ accessKey: "DO00FIRST", secretKey: "first" }) });
    const again = resolveStack(withBackups(), {
      ...computed,
      spacesKey: () => ({ accessKey: "DO00OTHER", secretKey: "other" }),
      previous: { attrs: first.computed, renew: new Set() },
    });
    expect(again.spaces).toEqual(first.spaces);
    expect(again.spaces!.accessKeyId).toBe("DO00FIRST");
  });

  test("without a bucket there is no spaces, and a key granted on no bucket of the stack is refused", () => {
    expect(resolveStack(tinyStack(), computed).spaces).toBeUndefined();
    const tf = withBackups() as { resource: Record<string, Record<string, Record<string, unknown>>> };
    tf.resource.digitalocean_spaces_key.backups.grant = [{ bucket: "elsewhere", permission: "readwrite" }];
    expect(() => resolveStack(tf, computed)).toThrow("exactly one digitalocean_spaces_key granted on digitalocean_spaces_bucket.backups");
  });

  test("the synthesized stack with FOOBAR_BACKUP_BUCKET resolves: the lab serves its bucket and accepts its key", () => {
    const tf = synthStack({ backupBucket: "foobar-backups", backupRecipient: `age1${"q".repeat(58)}`, backupRegion: "fra1" });
    const stack = resolveStack(tf, computed);
    expect(stack.spaces).toEqual({
      bucket: "foobar-backups",
      region: "fra1",
      accessKeyId: "DO00LABKEY",
      secretAccessKey: "lab/secret+key",
    });
  });

  test("randomSpacesKey makes keys shaped like DigitalOcean's, a new one each time", () => {
    const [a, b] = [randomSpacesKey(), randomSpacesKey()];
    expect(a.accessKey).toMatch(/^DO[A-Z0-9]{18}$/);
    expect(a.secretKey).toMatch(/^[A-Za-z0-9+/]{43}$/);
    expect(a).not.toEqual(b);
  });
});
