import * as fs from "fs";
import * as path from "path";
import { AppFile } from "../cloud-init/user-data";
import { SettingsError } from "../settings";

/** The sample application shipped with this repository. */
export const SAMPLE_APP_DIR = path.join(__dirname, "..", "app");

const SKIPPED = new Set(["__pycache__", "node_modules", ".git"]);

/**
 * Reads every file below `directory` for embedding into user-data: text as
 * is, anything with a NUL byte as base64. Hidden files are skipped.
 *
 * @throws SettingsError naming FOOBAR_APP_DIR when the folder is missing or empty.
 */
export function readAppFiles(directory: string): AppFile[] {
  if (!fs.existsSync(directory) || !fs.statSync(directory).isDirectory()) {
    throw new SettingsError(`FOOBAR_APP_DIR must be a folder of application files, got "${directory}"`);
  }
  const files: AppFile[] = [];
  const walk = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith(".") || SKIPPED.has(entry.name)) continue;
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        const bytes = fs.readFileSync(full);
        const relativePath = path.relative(directory, full).split(path.sep).join("/");
        files.push(
          bytes.includes(0)
            ? { relativePath, content: bytes.toString("base64"), encoding: "b64" }
            : { relativePath, content: bytes.toString("utf8") },
        );
      }
    }
  };
  walk(directory);
  if (files.length === 0) {
    throw new SettingsError(`FOOBAR_APP_DIR must be a folder of application files, got "${directory}" (empty)`);
  }
  return files;
}
