/** The site by name, and HTTPS: the certificate, redirects, HSTS and TLS versions. */

import { Check, httpsOn, request, roles, siteHost, siteUrl, tcpFrom, tlsHandshake, trustLabCa, waitFor } from "./helpers";

export const httpsChecks: Check[] = [
  {
    name: "the site answers 200 through the load balancer, by name",
    async run(lab) {
      const url = siteUrl(lab);
      // Over HTTPS this also waits for the real certificate: the placeholder fails verification.
      const { value } = await waitFor(`GET ${url} answering 200`, 180_000, () => {
        const answer = request(lab, url);
        return answer.code === "200" ? answer : undefined;
      });
      return `GET ${url} → 200, X-Served-By ${value.servedBy}`;
    },
  },
  {
    name: "HTTPS: lb-01 obtained a certificate for the site from the ACME CA, through certbot and HTTP-01",
    async run(lab) {
      const { lb } = roles(lab);
      const host = siteHost(lab);
      if (!httpsOn(lab)) {
        const certbot = lab.execIn(lb.name, ["sh", "-c", "command -v certbot || systemctl cat foobar-certificate.service"]);
        if (certbot.status === 0) throw new Error(`HTTPS is off but lb-01 has certbot or the certificate unit: ${certbot.stdout.trim()}`);
        const https = tcpFrom(lab, { client: true }, lb.publicIpv4, 443);
        if (https !== "dropped") throw new Error(`HTTPS is off but ${lb.name}:443 is ${https}`);
        return `HTTPS is off (FOOBAR_HTTPS=false): no certbot on ${lb.name}, port 443 dropped`;
      }
      // The placeholder fails verification against the lab CA's root; the real certificate passes.
      const { value, ms } = await waitFor(`a certificate for ${host} issued by the lab CA`, 180_000, () => {
        const shown = tlsHandshake(lab, "-verify_return_error 2>/dev/null", "openssl x509 -noout -subject -issuer -ext subjectAltName");
        return shown.status === 0 && shown.stdout.includes(`DNS:${host}`) ? shown.stdout : undefined;
      });
      const issuer = /issuer=\s*(.*)/.exec(value)?.[1]?.trim();
      const names = /DNS:[^\n]*/.exec(value)?.[0]?.trim();
      if (!issuer?.includes("Pebble")) throw new Error(`certificate issued by "${issuer}", not the lab's pebble CA`);
      const unit = lab.execIn(lb.name, ["systemctl", "show", "-P", "Result", "foobar-certificate.service"]).stdout.trim();
      const answer = request(lab, siteUrl(lab));
      if (answer.code !== "200") throw new Error(`GET ${siteUrl(lab)} with the lab CA's root → ${answer.code}`);
      return `${names} issued by "${issuer}", verified against the lab CA's root (seen after ${ms} ms; foobar-certificate.service result ${unit}); GET ${siteUrl(lab)} → 200`;
    },
  },
  {
    name: "HTTP redirects to HTTPS except ACME challenges; HTTPS answers carry HSTS; no server announces its version",
    async run(lab) {
      const host = siteHost(lab);
      const head = (url: string) =>
        lab
          .client(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", "5", ...trustLabCa(lab), url], 15_000)
          .stdout.replace(/\r/g, "");
      const header = (headers: string, name: string) => new RegExp(`^${name}: *(.*)$`, "im").exec(headers)?.[1];
      const versioned = (headers: string) => /^server: *\S*\/\d/im.test(headers) || /^x-powered-by:/im.test(headers);
      if (!httpsOn(lab)) {
        const plain = head(`http://${host}/`);
        if (!/^HTTP\/1\.1 200/.test(plain)) throw new Error(`HTTPS off: http://${host}/ → ${plain.split("\n")[0]}`);
        if (header(plain, "strict-transport-security")) throw new Error("HTTPS off, yet an HSTS header is sent");
        if (versioned(plain)) throw new Error(`a version is announced: ${plain}`);
        return `HTTPS is off: http://${host}/ → 200 with no redirect and no HSTS; Server: ${header(plain, "server")}`;
      }
      const redirect = head(`http://${host}/api/messages?page=2`);
      const location = header(redirect, "location");
      if (!/^HTTP\/1\.1 301/.test(redirect) || location !== `https://${host}/api/messages?page=2`) {
        throw new Error(`http:// → ${redirect.split("\n")[0]}, Location ${location}`);
      }
      const challenge = head(`http://${host}/.well-known/acme-challenge/lab-probe`);
      if (/^HTTP\/1\.1 301/.test(challenge)) throw new Error("an ACME challenge path was redirected to HTTPS");
      const secure = head(`https://${host}/`);
      const hsts = header(secure, "strict-transport-security");
      if (!/^max-age=\d+/.test(hsts ?? "")) throw new Error(`no HSTS header on https://${host}/: ${secure}`);
      for (const headers of [redirect, challenge, secure]) {
        if (versioned(headers)) throw new Error(`a version is announced: ${headers}`);
      }
      return `http://${host}/api/messages?page=2 → 301 ${location}; ACME path on HTTP → ${challenge.split("\n")[0].split(" ")[1]} (not redirected); HTTPS Strict-Transport-Security: ${hsts}; Server: ${header(secure, "server")}`;
    },
  },
  {
    name: "TLS: 1.1 is refused, 1.2 and 1.3 are accepted, ALPN offers HTTP/2",
    async run(lab) {
      if (!httpsOn(lab)) return "HTTPS is off: nothing listens for TLS (port 443 dropped, checked above)";
      const handshake = (options: string) => tlsHandshake(lab, `${options} 2>&1`).stdout;
      // SECLEVEL=0 lets this client offer TLS 1.1 at all: the refusal must come from the server.
      const old = handshake("-tls1_1 -cipher DEFAULT@SECLEVEL=0");
      if (!/alert protocol version/.test(old)) throw new Error(`TLS 1.1 was not refused by the server:\n${old}`);
      const evidence = ['TLS 1.1 → server alert "protocol version"'];
      for (const [version, option] of [
        ["1.2", "-tls1_2"],
        ["1.3", "-tls1_3"],
      ]) {
        const text = handshake(`${option} -alpn h2,http/1.1`);
        const cipher = /Cipher is (\S+)/.exec(text)?.[1];
        if (!/Verify return code: 0 \(ok\)/.test(text) || !cipher || cipher === "(NONE)")
          throw new Error(`TLS ${version} failed:\n${text}`);
        const alpn = /ALPN protocol: (\S+)/.exec(text)?.[1];
        if (alpn !== "h2") throw new Error(`TLS ${version}: ALPN ${alpn ?? "none"}, expected h2`);
        evidence.push(`TLS ${version} → ${cipher}, ALPN ${alpn}`);
      }
      return evidence.join("; ");
    },
  },
];
