import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { readAppFiles } from "../../constructs/app-files";
import { SettingsError } from "../../settings";
import { droplet, parseCloudConfig, synthStack } from "../helpers";

/** A fresh application folder holding `files` (relative path → content). */
function appFolder(files: Record<string, string | Buffer>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foobar-app-files-"));
  for (const [relative, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, relative)), { recursive: true });
    fs.writeFileSync(path.join(dir, relative), content);
  }
  return dir;
}

describe("application files arrive as they are", () => {
  test("an executable file keeps its execute bit: written 0755, the rest 0644", () => {
    const dir = appFolder({ "run.sh": "#!/bin/sh\nexec true\n", "app.py": "print('hi')\n" });
    fs.chmodSync(path.join(dir, "run.sh"), 0o750);
    const web = parseCloudConfig(droplet(synthStack({ appDir: dir }), "web-01").user_data);
    const mode = (name: string) => web.write_files.find((f) => f.path === `/srv/foobar/app/${name}`)?.permissions;
    expect(mode("run.sh")).toBe("0755");
    expect(mode("app.py")).toBe("0644");
  });

  test("hidden files and folders are included", () => {
    const dir = appFolder({ ".well-known/security.txt": "Contact: mailto:ops@foobar.com\n", ".env.example": "X=1\n", "a.py": "" });
    expect(readAppFiles(dir).map((f) => f.relativePath)).toEqual([".env.example", ".well-known/security.txt", "a.py"]);
  });

  test("version control folders and Python's byte-code caches are left out", () => {
    const dir = appFolder({ ".git/HEAD": "ref\n", ".hg/x": "", ".svn/x": "", "__pycache__/a.pyc": "x", "a.py": "" });
    expect(readAppFiles(dir).map((f) => f.relativePath)).toEqual(["a.py"]);
  });

  test("a Latin-1 text file is sent byte for byte as base64, not mangled into U+FFFD", () => {
    const latin1 = Buffer.from("caf\xe9\n", "latin1");
    const [file] = readAppFiles(appFolder({ "menu.txt": latin1 }));
    expect(file.encoding).toBe("b64");
    expect(Buffer.from(file.content, "base64")).toEqual(latin1);
  });

  test("binary files are sent as base64 and UTF-8 text as text", () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00]);
    const files = readAppFiles(appFolder({ "logo.png": png, "hello.txt": "grüß dich\n" }));
    expect(files.find((f) => f.relativePath === "logo.png")).toEqual({
      relativePath: "logo.png",
      content: png.toString("base64"),
      encoding: "b64",
    });
    expect(files.find((f) => f.relativePath === "hello.txt")).toEqual({ relativePath: "hello.txt", content: "grüß dich\n" });
  });

  test("base64 files reach the user-data with encoding b64", () => {
    const dir = appFolder({ "menu.txt": Buffer.from("caf\xe9\n", "latin1") });
    const web = parseCloudConfig(droplet(synthStack({ appDir: dir }), "web-01").user_data);
    expect(web.write_files.find((f) => f.path === "/srv/foobar/app/menu.txt")).toEqual(
      expect.objectContaining({ encoding: "b64", content: Buffer.from("caf\xe9\n", "latin1").toString("base64") }),
    );
  });

  test("a symbolic link is refused with one line naming FOOBAR_APP_DIR and the link", () => {
    const dir = appFolder({ "app.py": "" });
    fs.mkdirSync(path.join(dir, "static"));
    fs.symlinkSync("../app.py", path.join(dir, "static", "app.py"));
    expect(() => readAppFiles(dir)).toThrow(
      new SettingsError(
        `FOOBAR_APP_DIR must be a folder without symbolic links, got "${dir}": "static/app.py" links to "../app.py"; copy the file in its place`,
      ),
    );
  });

  test("a link to a folder is refused too", () => {
    const dir = appFolder({ "app.py": "" });
    fs.symlinkSync(os.tmpdir(), path.join(dir, "tmp"));
    expect(() => readAppFiles(dir)).toThrow(/^FOOBAR_APP_DIR must be a folder without symbolic links, .*: "tmp" links to /);
  });

  test("an empty folder or a missing one is refused", () => {
    expect(() => readAppFiles(appFolder({}))).toThrow(/^FOOBAR_APP_DIR must be a folder of application files, got ".*" \(empty\)$/);
    expect(() => readAppFiles("/nonexistent/app")).toThrow('FOOBAR_APP_DIR must be a folder of application files, got "/nonexistent/app"');
  });
});
