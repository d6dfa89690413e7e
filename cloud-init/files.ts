/**
 * Scripts and units kept as files, in a tree that mirrors where they land on
 * a droplet (`cloud-init/files/usr/local/sbin/foobar-db-agent` is written to
 * `/usr/local/sbin/foobar-db-agent`), so that each stays valid for its own
 * tools (python3, shellcheck, systemd-analyze) and reads as what it is.
 *
 * A file may hold named placeholders, `@@NAME@@`, only where a value must
 * stay declared once in TypeScript (a path the lab or another file reads).
 * A file whose name depends on the input has a placeholder in its name too
 * (`foobar-volume-@@LABEL@@.service`): its renderer knows where it lands.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** The root of the tree: `/` on the droplet. */
export const DROPLET_FILES_ROOT = path.join(__dirname, "files");

/**
 * The content of the file that lands at `dropletPath`, with its placeholders filled.
 *
 * @throws Error naming the file and the placeholder when one has no value, or a value fills nothing.
 */
export function dropletFile(dropletPath: string, values: Readonly<Record<string, string>> = {}): string {
  const source = path.join(DROPLET_FILES_ROOT, dropletPath);
  const text = fs.readFileSync(source, "utf8");
  const used = new Set<string>();
  const filled = text.replace(/@@([A-Z][A-Z0-9_]*)@@/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`${source}: placeholder @@${name}@@ has no value`);
    used.add(name);
    return value;
  });
  const unused = Object.keys(values).filter((name) => !used.has(name));
  if (unused.length > 0) throw new Error(`${source}: no placeholder for ${unused.map((name) => `@@${name}@@`).join(", ")}`);
  return filled;
}
