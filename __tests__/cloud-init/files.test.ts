import * as fs from "node:fs";
import * as path from "node:path";

import { DROPLET_FILES_ROOT, dropletFile } from "../../cloud-init/files";

describe("files kept in the tree that mirrors the droplet", () => {
  const dir = path.join(DROPLET_FILES_ROOT, "tmp-test");
  beforeAll(() => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "script"), "path=@@WHERE@@\nagain=@@WHERE@@\n");
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("a file is read from the place it lands on the droplet, its placeholders filled", () => {
    expect(dropletFile("/tmp-test/script", { WHERE: "/etc/x" })).toBe("path=/etc/x\nagain=/etc/x\n");
  });

  test("a placeholder without a value is an error naming the file and the placeholder", () => {
    expect(() => dropletFile("/tmp-test/script")).toThrow(/tmp-test\/script: placeholder @@WHERE@@ has no value/);
  });

  test("a value no placeholder takes is an error too", () => {
    expect(() => dropletFile("/tmp-test/script", { WHERE: "/etc/x", OTHER: "y" })).toThrow(/no placeholder for @@OTHER@@/);
  });
});
