import * as fs from "fs";
import * as path from "path";

import { AppFile } from "../cloud-init/user-data";
import { quoted, SettingsError } from "../settings";

/** The sample application shipped with this repository. */
export const SAMPLE_APP_DIR = path.join(__dirname, "..", "app");

/**
 * Folders never sent: version control (`.git`, `.hg`, `.svn`) and Python's
 * byte-code caches, which Python writes for the Python that made them.
 */
export const SKIPPED_FOLDERS: ReadonlySet<string> = new Set([".git", ".hg", ".svn", "__pycache__"]);

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The file as text when it is UTF-8 without NUL bytes, else as base64. */
function encode(bytes: Buffer): Pick<AppFile, "content" | "encoding"> {
  if (!bytes.includes(0)) {
    try {
      return { content: UTF8.decode(bytes) };
    } catch {
      // Not UTF-8 (Latin-1 text, images, …): sent byte for byte.
    }
  }
  return { content: bytes.toString("base64"), encoding: "b64" };
}

/**
 * Reads every file below `directory` for embedding into user-data, as it is:
 * UTF-8 text as text, anything else as base64, the execute bit kept, hidden
 * files included. Version control folders and `__pycache__` are skipped
 * (`SKIPPED_FOLDERS`).
 *
 * @throws SettingsError naming FOOBAR_APP_DIR when the folder is missing or
 * empty, or holds a symbolic link or anything else that is not a file or folder.
 */
export function readAppFiles(directory: string): AppFile[] {
  const refuse = (accepted: string, why = ""): never => {
    throw new SettingsError(`FOOBAR_APP_DIR must be ${accepted}, got ${quoted(directory)}${why}`);
  };
  if (!fs.existsSync(directory) || !fs.statSync(directory).isDirectory()) refuse("a folder of application files");
  const files: AppFile[] = [];
  const walk = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(folder, entry.name);
      const relativePath = path.relative(directory, full).split(path.sep).join("/");
      if (entry.isDirectory()) {
        if (!SKIPPED_FOLDERS.has(entry.name)) walk(full);
      } else if (entry.isSymbolicLink()) {
        refuse(
          "a folder without symbolic links",
          `: ${quoted(relativePath)} links to ${quoted(fs.readlinkSync(full))}; copy the file in its place`,
        );
      } else if (entry.isFile()) {
        const executable = (fs.statSync(full).mode & 0o100) !== 0;
        files.push({ relativePath, ...encode(fs.readFileSync(full)), ...(executable ? { executable } : {}) });
      } else {
        refuse("a folder of files and folders only", `: ${quoted(relativePath)} is neither`);
      }
    }
  };
  walk(directory);
  if (files.length === 0) refuse("a folder of application files", " (empty)");
  return files;
}
