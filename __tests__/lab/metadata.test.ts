import { spawnSync } from "child_process";

import {
  dropletLinkLocal,
  dropletMetadata,
  METADATA_ADDRESS,
  metadataAnswer,
  renderMetadataSwitchRules,
} from "../../lab/emulations/metadata";
import type { LabDroplet, LabStack } from "../../lab/emulations/terraform";

const web: LabDroplet = {
  address: "digitalocean_droplet.web-01",
  name: "web-01",
  id: "1000001",
  image: "ubuntu-24-04-x64",
  size: "s-1vcpu-2gb",
  region: "nyc3",
  tags: ["foobar", "foobar-web"],
  publicIpv4: "198.51.100.11",
  privateIpv4: "10.10.10.3",
  userData: "#cloud-config\npackages: [nginx]\n",
  volumes: [],
  sshKeys: [],
};
const stack = { vpc: { ipRange: "10.10.10.0/24" }, droplets: [web] } as unknown as LabStack;
const metadata = dropletMetadata(stack, web, 24);
const get = (path: string) => metadataAnswer(metadata, "GET", path);

describe("the lab's metadata service answers as DigitalOcean documents it", () => {
  test("the index lists data without a slash and nested indexes with one", () => {
    const answer = get("/metadata/v1/");
    expect(answer.status).toBe(200);
    expect(answer.body.split("\n")).toEqual([
      "id",
      "hostname",
      "user-data",
      "vendor-data",
      "public-keys",
      "region",
      "interfaces/",
      "dns/",
      "floating_ip/",
      "reserved_ip/",
      "tags/",
      "features/",
    ]);
  });

  test("each droplet gets its own id, name and user-data, byte for byte", () => {
    expect(get("/metadata/v1/id").body).toBe("1000001");
    expect(get("/metadata/v1/hostname").body).toBe("web-01");
    expect(get("/metadata/v1/user-data").body).toBe(web.userData);
  });

  test("addresses are under interfaces/<public|private>/0/ipv4/", () => {
    expect(get("/metadata/v1/interfaces/public/0/ipv4/address").body).toBe("198.51.100.11");
    expect(get("/metadata/v1/interfaces/private/0/ipv4/address").body).toBe("10.10.10.3");
    expect(get("/metadata/v1/interfaces/private/0/ipv4/netmask").body).toBe("255.255.255.0");
  });

  test("an index asked without its slash is a 301 to the slashed URL; an unknown path is a 404", () => {
    expect(get("/metadata/v1/interfaces")).toMatchObject({ status: 301, headers: { Location: "/metadata/v1/interfaces/" } });
    expect(get("/metadata/v1/nothing").status).toBe(404);
    expect(get("/metadata/v1/id/").status).toBe(404);
    expect(get("/latest/meta-data/").status).toBe(404);
  });

  test("/metadata/v1.json is the whole document", () => {
    const answer = get("/metadata/v1.json");
    expect(answer.headers["Content-Type"]).toBe("application/json");
    expect(JSON.parse(answer.body)).toMatchObject({
      droplet_id: 1000001,
      hostname: "web-01",
      user_data: web.userData,
      region: "nyc3",
      tags: ["foobar", "foobar-web"],
      interfaces: { private: [{ ipv4: { ip_address: "10.10.10.3" }, type: "private" }] },
      reserved_ip: { ipv4: { active: false } },
    });
  });

  test("only reads are answered", () => {
    expect(metadataAnswer(metadata, "PUT", "/metadata/v1/id").status).toBe(405);
  });
});

describe("the lab switch keeps metadata traffic honest", () => {
  const ports = [0, 1, 2].map((index) => ({ port: `pub${index}`, linkLocal: dropletLinkLocal(index) }));
  const rules = renderMetadataSwitchRules("lab_metadata", ports);

  test("a droplet's port carries metadata requests only from that droplet's own link-local address", () => {
    for (const { port, linkLocal } of ports) {
      expect(rules).toContain(`iifname "${port}" ip daddr ${METADATA_ADDRESS} ip saddr != ${linkLocal} drop`);
    }
  });

  test("link-local traffic never reaches the host's uplink, where the host's own metadata service is", () => {
    expect(rules).toContain('oifname "up-pub" ip daddr 169.254.0.0/16 drop');
    expect(rules).toContain('iifname "up-pub" ip saddr 169.254.0.0/16 drop');
  });

  test("droplets' link-local addresses are distinct and never the metadata address", () => {
    const addresses = Array.from({ length: 50 }, (_, index) => dropletLinkLocal(index));
    expect(new Set(addresses).size).toBe(50);
    expect(addresses).not.toContain(METADATA_ADDRESS);
  });

  test("nft accepts the rules (checked without loading them)", () => {
    const result = spawnSync("nft", ["--check", "-f", "-"], { input: rules, encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });
});
