import { mirrorFromAptSources } from "../../lab/settings";

describe("the lab's Debian mirror comes from the host's apt sources", () => {
  test("a deb822 .sources file: the archive, not the security archive", () => {
    const text = [
      "Types: deb",
      "URIs: http://deb.debian.org/debian-security",
      "Suites: bookworm-security",
      "",
      "Types: deb deb-src",
      "URIs: http://mirror.example.net/debian/",
      "Suites: bookworm bookworm-updates",
    ].join("\n");
    expect(mirrorFromAptSources([{ name: "debian.sources", text }])).toBe("http://mirror.example.net/debian");
  });

  test("a one-line sources.list, with options in brackets", () => {
    const text =
      "# a comment\ndeb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://ftp.example.org/debian bookworm main\n";
    expect(mirrorFromAptSources([{ name: "sources.list", text }])).toBe("http://ftp.example.org/debian");
  });

  test("disabled stanzas, deb-src only lines, other archives and disabled files are not mirrors", () => {
    const files = [
      { name: "nodesource.sources", text: "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro" },
      { name: "off.sources", text: "Enabled: no\nTypes: deb\nURIs: http://off.example/debian" },
      { name: "src.list", text: "deb-src http://src.example/debian bookworm main" },
      { name: "google.list.disabled", text: "deb http://disabled.example/debian bookworm main" },
    ];
    expect(mirrorFromAptSources(files)).toBeUndefined();
  });
});
