import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { USER_DATA_BUDGET_BYTES } from "../../cloud-init/cloud-config";
import { DIGITALOCEAN_PROVIDER_VERSION } from "../../constructs";
import { DEFAULT_SETTINGS, MAX_WEB_SERVERS } from "../../settings";
import { addressOf, droplet, fileAt, parseCloudConfig, resourcesOf, reviewable, synthStack } from "../helpers";

describe("the stack with default settings", () => {
  const stack = synthStack();
  const droplets = resourcesOf(stack, "digitalocean_droplet");
  const vpc = resourcesOf(stack, "digitalocean_vpc");

  test("has one VPC with the configured range and four droplets named for their role, mon-01 among them, all in it", () => {
    expect(vpc).toHaveLength(1);
    expect(vpc[0]).toEqual(expect.objectContaining({ ip_range: "10.10.10.0/24", region: "nyc3" }));
    const vpcId = `\${${addressOf(stack, "digitalocean_vpc", vpc[0])}.id}`;
    expect(droplets.map((d) => d.name).sort()).toEqual(["lb-01", "mon-01", "web-01", "web-02"]);
    for (const d of droplets) {
      expect(d).toEqual(expect.objectContaining({ vpc_uuid: vpcId, image: "ubuntu-24-04-x64", region: "nyc3", monitoring: true }));
    }
  });

  test("tags every droplet with its role", () => {
    const tagName = (reference: string) => {
      const [, type, name] = /^\$\{(\w+)\.([\w-]+)\.name\}$/.exec(reference)!;
      return stack.resource[type][name].name;
    };
    expect(droplet(stack, "lb-01").tags.map(tagName)).toEqual(["foobar", "foobar-lb"]);
    expect(droplet(stack, "web-01").tags.map(tagName)).toEqual(["foobar", "foobar-web", "foobar-db-primary"]);
    expect(droplet(stack, "web-02").tags.map(tagName)).toEqual(["foobar", "foobar-web", "foobar-db-replica"]);
    expect(droplet(stack, "mon-01").tags.map(tagName)).toEqual(["foobar", "foobar-monitoring"]);
  });

  test("puts every droplet and the domain in one DigitalOcean project", () => {
    const [project] = resourcesOf(stack, "digitalocean_project");
    for (const d of droplets) {
      expect(project.resources).toContain(`\${${addressOf(stack, "digitalocean_droplet", d)}.urn}`);
    }
  });

  test("points www.foobar.com at the site's reserved IP, which is assigned to lb-01", () => {
    const [domain] = resourcesOf(stack, "digitalocean_domain");
    expect(domain.name).toBe("foobar.com");
    const [reservedIp] = resourcesOf(stack, "digitalocean_reserved_ip");
    expect(reservedIp.region).toBe("nyc3");
    const address = `\${${addressOf(stack, "digitalocean_reserved_ip", reservedIp)}.ip_address}`;
    const site = resourcesOf(stack, "digitalocean_record").filter((r) => !r.name.endsWith(".internal"));
    expect(site).toEqual([expect.objectContaining({ type: "A", name: "www", ttl: 300, value: address })]);
    expect(resourcesOf(stack, "digitalocean_reserved_ip_assignment")).toEqual([
      { ip_address: address, droplet_id: `\${${addressOf(stack, "digitalocean_droplet", droplet(stack, "lb-01"))}.id}` },
    ]);
    expect(stack.output.site_ipv4.value).toBe(address);
  });

  test("publishes the private address of every web server, the primary, the load balancer and mon-01 under internal.foobar.com", () => {
    const records = resourcesOf(stack, "digitalocean_record").filter((r) => r.name.endsWith(".internal"));
    const ref = (name: string) => `\${${addressOf(stack, "digitalocean_droplet", droplet(stack, name))}.ipv4_address_private}`;
    // lb-01 and mon-01: mon-01's Prometheus finds its targets by these names, even with a single load balancer.
    expect(records.map((r) => [r.name, r.type, r.ttl, r.value]).sort()).toEqual([
      ["lb-01.internal", "A", 30, ref("lb-01")],
      ["mon-01.internal", "A", 30, ref("mon-01")],
      ["mysql-primary.internal", "A", 30, ref("web-01")],
      ["web-01.internal", "A", 30, ref("web-01")],
      ["web-02.internal", "A", 30, ref("web-02")],
    ]);
  });

  test("no droplet's user-data references another droplet: each finds the others by name at run time", () => {
    for (const d of droplets) {
      const own = addressOf(stack, "digitalocean_droplet", d);
      const references = [...String(d.user_data).matchAll(/\$\{(digitalocean_\w+\.[\w-]+)\.\w+\}/g)].map((m) => m[1]);
      expect(references.filter((r) => r !== own)).toEqual([]);
    }
  });

  test("HAProxy balances across every web server slot by its internal name", () => {
    const haproxy = fileAt(parseCloudConfig(droplet(stack, "lb-01").user_data), "/etc/haproxy/haproxy.cfg");
    const servers = haproxy.split("\n").filter((l) => l.trim().startsWith("server web-"));
    expect(servers).toHaveLength(MAX_WEB_SERVERS);
    expect(servers[0]).toContain("server web-01 web-01.internal.foobar.com:80 resolvers");
  });

  test("MySQL's data lives on a volume per web server, attached at creation and protected from deletion", () => {
    const volumes = resourcesOf(stack, "digitalocean_volume");
    for (const name of ["web-01", "web-02"]) {
      const volume = volumes.find((v) => v.name === `${name}-mysql`)!;
      expect(volume).toEqual(expect.objectContaining({ region: "nyc3", size: 10, lifecycle: { prevent_destroy: true } }));
      expect(droplet(stack, name).volume_ids).toEqual([`\${${addressOf(stack, "digitalocean_volume", volume)}.id}`]);
      const config = parseCloudConfig(droplet(stack, name).user_data);
      expect(JSON.stringify(config.bootcmd)).toContain(`/dev/disk/by-id/scsi-0DO_Volume_${name}-mysql`);
      expect(fileAt(config, "/etc/systemd/system/mysql.service.d/foobar-volume.conf")).toContain("Requires=foobar-volume-mysql.service");
    }
    const certificates = volumes.find((v) => v.name === "lb-01-certificates")!;
    expect(certificates).toEqual(expect.objectContaining({ size: 1, lifecycle: { prevent_destroy: true } }));
    expect(droplet(stack, "lb-01").volume_ids).toEqual([`\${${addressOf(stack, "digitalocean_volume", certificates)}.id}`]);
  });

  test("FOOBAR_ALLOW_DATA_LOSS=true is the only way to let Terraform delete a volume", () => {
    const lossy = synthStack({ allowDataLoss: true });
    for (const volume of resourcesOf(lossy, "digitalocean_volume")) expect(volume.lifecycle).toEqual({ prevent_destroy: false });
  });

  test("Terraform never replaces a droplet for a user-data or SSH key change by itself", () => {
    for (const d of droplets) expect(d.lifecycle).toEqual({ ignore_changes: ["user_data", "ssh_keys"] });
  });

  test("the replica learns the primary's internal name and the generated passwords as references, never values", () => {
    const replica = parseCloudConfig(droplet(stack, "web-02").user_data);
    const env = fileAt(replica, "/etc/foobar/mysql-setup.env");
    expect(env).toContain("PRIMARY_HOST=mysql-primary.internal.foobar.com");
    expect(env).toMatch(/REPLICATION_PASSWORD=\$\{random_password\.[\w-]+\.result\}/);
    expect(env).toMatch(/APP_PASSWORD=\$\{random_password\.[\w-]+\.result\}/);
  });

  test("shell ${...} reaches the droplet intact: packed, or escaped as $${...} next to real references", () => {
    const userData: string = droplet(stack, "web-02").user_data;
    expect(fileAt(parseCloudConfig(userData), "/usr/local/sbin/foobar-bind-addresses")).toContain(
      'network=$(to_number "${VPC_IP_RANGE%/*}")',
    );
    expect(userData).not.toMatch(/(?<!\$)\$\{(?![a-z_]+\.[\w-]+\.[a-z0-9_]+\})/);
  });

  test("the first web server is set up as the primary (FOOBAR_DB_PRIMARY), every other one as a replica; each has its own server_id, and all start read-only", () => {
    const config = (name: string) => fileAt(parseCloudConfig(droplet(stack, name).user_data), "/etc/mysql/mysql.conf.d/zz-foobar.cnf");
    const setup = (name: string) => fileAt(parseCloudConfig(droplet(stack, name).user_data), "/etc/foobar/mysql-setup.env");
    expect(config("web-01")).toContain("server_id = 1");
    expect(config("web-02")).toContain("server_id = 2");
    for (const name of ["web-01", "web-02"]) expect(config(name)).toContain("super_read_only = ON");
    expect(setup("web-01")).toContain("MYSQL_ROLE=primary");
    expect(setup("web-02")).toContain("MYSQL_ROLE=replica");
  });

  test("every user-data leaves at least 16 KiB of the budget for an operator's own application (FOOBAR_APP_DIR)", () => {
    // What matters is the room left within USER_DATA_BUDGET_BYTES (the user-data is compressed: an operator's
    // folder takes its compressed size of the rest).
    for (const d of droplets) expect(Buffer.byteLength(d.user_data)).toBeLessThan(USER_DATA_BUDGET_BYTES - 16 * 1024);
  });

  test("pins the DigitalOcean provider to the tested 2.x range", () => {
    expect(stack.terraform.required_providers.digitalocean).toEqual({
      source: "digitalocean/digitalocean",
      version: DIGITALOCEAN_PROVIDER_VERSION,
    });
  });

  test("outputs the site URL, the site and LB addresses, every server, Prometheus' URL, and the passwords as sensitive", () => {
    expect(stack.output.site_url.value).toBe("https://www.foobar.com/");
    expect(stack.output.load_balancer_public_ipv4.value).toMatch(/\.ipv4_address\}$/);
    expect(Object.keys(stack.output.servers.value as object)).toEqual(["lb-01", "mon-01", "web-01", "web-02"]);
    expect(stack.output.mysql_replication_password.sensitive).toBe(true);
    expect(stack.output.mysql_app_password.sensitive).toBe(true);
    expect(stack.output.haproxy_stats_url.value).toMatch(/^http:\/\/\$\{.*\.ipv4_address_private\}:8404\/$/);
    expect(stack.output.haproxy_stats_password.sensitive).toBe(true);
    expect(stack.output.prometheus_url.value).toMatch(/^http:\/\/\$\{.*\.ipv4_address_private\}:9090\/$/);
    expect(stack.output.prometheus_password.sensitive).toBe(true);
  });

  test("matches the reviewed snapshot of everything it deploys (user-data unpacked to the text of its files)", () => {
    expect(reviewable(stack)).toMatchSnapshot();
  });
});

describe("the stack with other settings", () => {
  test("FOOBAR_WEB_SERVERS=3 gives five droplets, a third volume and internal name, and the same load balancer and mon-01", () => {
    const stack = synthStack({ webServers: 3 });
    expect(
      resourcesOf(stack, "digitalocean_droplet")
        .map((d) => d.name)
        .sort(),
    ).toEqual(["lb-01", "mon-01", "web-01", "web-02", "web-03"]);
    expect(droplet(stack, "lb-01").user_data).toBe(droplet(synthStack(), "lb-01").user_data);
    expect(droplet(stack, "mon-01").user_data).toBe(droplet(synthStack(), "mon-01").user_data);
    expect(resourcesOf(stack, "digitalocean_record").map((r) => r.name)).toContain("web-03.internal");
    expect(resourcesOf(stack, "digitalocean_volume").map((v) => v.name)).toContain("web-03-mysql");
    expect(fileAt(parseCloudConfig(droplet(stack, "web-03").user_data), "/etc/mysql/mysql.conf.d/zz-foobar.cnf")).toContain(
      "server_id = 3",
    );
  });

  test("one web server is a primary with no replica", () => {
    const stack = synthStack({ webServers: 1 });
    expect(
      resourcesOf(stack, "digitalocean_droplet")
        .map((d) => d.name)
        .sort(),
    ).toEqual(["lb-01", "mon-01", "web-01"]);
  });

  test("the apex record is added on request, with the TTL setting", () => {
    const stack = synthStack({ apexRecord: true, dnsTtl: 60 });
    const site = resourcesOf(stack, "digitalocean_record").filter((r) => !r.name.endsWith(".internal"));
    expect(site.map((r) => [r.name, r.ttl]).sort()).toEqual([
      ["@", 60],
      ["www", 60],
    ]);
  });

  test("ubuntu-26-04-x64 is accepted as the image", () => {
    const stack = synthStack({ image: "ubuntu-26-04-x64" });
    for (const d of resourcesOf(stack, "digitalocean_droplet")) expect(d.image).toBe("ubuntu-26-04-x64");
  });

  test("an operator's own application folder and start command replace the sample app", () => {
    const stack = synthStack({
      appDir: `${__dirname}/fixtures/own-app`,
      appCommand: "/usr/bin/python3 -m http.server 8000 --bind 127.0.0.1",
    });
    const web = parseCloudConfig(droplet(stack, "web-01").user_data);
    expect(fileAt(web, "/srv/foobar/app/static/index.html")).toContain("own app");
    expect(fileAt(web, "/etc/systemd/system/foobar-app.service")).toContain(
      "ExecStart=/usr/bin/python3 -m http.server 8000 --bind 127.0.0.1",
    );
    expect(web.write_files.some((f) => f.path.endsWith("foobar_app.py"))).toBe(false);
  });

  test("user-data over the budget stops synthesis naming the application folder and how much it adds", () => {
    const hugeApp = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-huge-app-"));
    // Random text: gzip cannot make it much smaller.
    fs.writeFileSync(path.join(hugeApp, "big.txt"), randomBytes(46 * 1024).toString("base64"));
    expect(() => synthStack({ appDir: hugeApp })).toThrow(
      /^user-data of web-01 is \d+ bytes, \d+ over the 57344-byte budget \(DigitalOcean accepts 65536\): the application folder \(FOOBAR_APP_DIR\) adds 6\d{4} bytes: make it smaller$/,
    );
  });

  test("a CA file too big for lb-01 is blamed on FOOBAR_ACME_CA_FILE, not on the application folder", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-big-ca-"));
    // Random bodies: user-data is compressed, and 1000 copies of one certificate would pack into almost nothing.
    const pem = () => `-----BEGIN CERTIFICATE-----\n${randomBytes(48).toString("base64")}\n-----END CERTIFICATE-----\n`;
    fs.writeFileSync(path.join(dir, "bundle.pem"), Array.from({ length: 1000 }, pem).join(""));
    expect(() => synthStack({ acmeCaFile: path.join(dir, "bundle.pem") })).toThrow(
      /^user-data of lb-01 is \d+ bytes, \d+ over the 57344-byte budget .*: the CA file \(FOOBAR_ACME_CA_FILE\) adds \d+ bytes: make it smaller$/,
    );
  });

  test("SSH keys are given to every droplet", () => {
    const stack = synthStack({ sshKeys: ["12345"] });
    for (const d of resourcesOf(stack, "digitalocean_droplet")) expect(d.ssh_keys).toEqual(["12345"]);
  });

  test("changing defaults does not change the defaults object", () => {
    synthStack({ webServers: 5 });
    expect(DEFAULT_SETTINGS.webServers).toBe(2);
  });
});

describe("HTTPS on the load balancer", () => {
  const lbConfig = (stack: ReturnType<typeof synthStack>) => parseCloudConfig(droplet(stack, "lb-01").user_data);

  test("is on by default: certbot, the issuing unit, the placeholder and the deploy hook", () => {
    const config = lbConfig(synthStack());
    expect(config.packages).toContain("certbot");
    const unit = fileAt(config, "/etc/systemd/system/foobar-certificate.service");
    expect(unit).toContain("--server https://acme-v02.api.letsencrypt.org/directory");
    expect(unit).toContain("--email webmaster@foobar.com");
    expect(unit).toContain("-d www.foobar.com");
    expect(unit).toContain("--deploy-hook /usr/local/sbin/foobar-install-certificate");
    expect(config.runcmd).toContainEqual(["/usr/local/sbin/foobar-placeholder-certificate"]);
    expect(config.runcmd).toContainEqual(["systemctl", "start", "--no-block", "foobar-certificate.service"]);
    expect(fileAt(config, "/etc/haproxy/haproxy.cfg")).toContain("bind :443 ssl crt /etc/haproxy/certs/site.pem");
  });

  test("issuance does not hold up the boot: it starts without waiting, after HAProxy", () => {
    const runcmd = lbConfig(synthStack()).runcmd.map((c) => JSON.stringify(c));
    expect(runcmd.indexOf(JSON.stringify(["systemctl", "start", "--no-block", "foobar-certificate.service"]))).toBeGreaterThan(
      runcmd.indexOf(JSON.stringify(["systemctl", "restart", "haproxy.service"])),
    );
  });

  test("asks for every site name, and the ACME directory, contact and HSTS max-age are settings", () => {
    const config = lbConfig(
      synthStack({
        apexRecord: true,
        acmeDirectoryUrl: "https://acme-staging-v02.api.letsencrypt.org/directory",
        acmeEmail: "ops@foobar.com",
        hstsMaxAgeSeconds: 600,
      }),
    );
    const unit = fileAt(config, "/etc/systemd/system/foobar-certificate.service");
    expect(unit).toContain("--server https://acme-staging-v02.api.letsencrypt.org/directory");
    expect(unit).toContain("--email ops@foobar.com");
    expect(unit).toMatch(/-d www\.foobar\.com \\\n\s+-d foobar\.com/);
    expect(fileAt(config, "/etc/haproxy/haproxy.cfg")).toContain('"max-age=600"');
  });

  test("trusts an extra CA for the ACME directory only when one is given", () => {
    expect(lbConfig(synthStack()).ca_certs).toBeUndefined();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-ca-"));
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    fs.writeFileSync(path.join(dir, "ca.pem"), pem);
    expect(lbConfig(synthStack({ acmeCaFile: path.join(dir, "ca.pem") })).ca_certs).toEqual({ trusted: [pem] });
  });

  test("HTTPS off gives a plain-HTTP configuration with no certbot and port 443 closed", () => {
    const stack = synthStack({ https: false });
    const config = lbConfig(stack);
    expect(config.packages).not.toContain("certbot");
    expect(config.write_files.map((f) => f.path).filter((p) => /certificate|letsencrypt/.test(p))).toEqual([]);
    expect(JSON.stringify(config.runcmd)).not.toMatch(/certificate/);
    expect(fileAt(config, "/etc/haproxy/haproxy.cfg")).not.toMatch(/:443|ssl|redirect/);
    const lbFirewall = resourcesOf(stack, "digitalocean_firewall").find((f) => f.name === "foobar-lb")!;
    expect(lbFirewall.inbound_rule.map((r: { port_range: string }) => r.port_range)).not.toContain("443");
    expect(stack.output.site_url.value).toBe("http://www.foobar.com/");
  });
});
