import { gunzipSync, gzipSync } from "node:zlib";

import * as YAML from "yaml";

/** DigitalOcean rejects user-data larger than this many bytes. */
export const USER_DATA_LIMIT_BYTES = 64 * 1024;

/**
 * Synthesis fails above this many bytes, leaving room for Terraform
 * references that resolve to longer text than their placeholder.
 */
export const USER_DATA_BUDGET_BYTES = 56 * 1024;

/** One entry of cloud-init's `write_files` module. */
export interface WriteFile {
  /** Absolute path on the droplet. */
  readonly path: string;
  /** File content; text unless `encoding` says otherwise. */
  readonly content: string;
  /** `user:group`. @default "root:root" */
  readonly owner?: string;
  /** Octal mode as a string, such as "0600". @default "0644" */
  readonly permissions?: string;
  /** `b64` when `content` is base64. @default - plain text */
  readonly encoding?: "b64";
  /**
   * Write in the final stage, after packages are installed and users exist.
   * Needed for files owned by a package's or a service's user.
   * @default false
   */
  readonly defer?: boolean;
}

/** A system user created by cloud-init's `users` module. */
export interface SystemUser {
  readonly name: string;
  /** Home folder; not created. */
  readonly homedir: string;
}

/** The parts of a `#cloud-config` document this project uses. */
export interface CloudConfig {
  /** Host name set on first boot. */
  readonly hostname: string;
  /** Debian packages installed on first boot, after `apt-get update`. */
  readonly packages: readonly string[];
  /** Service users to create besides the image's default user. @default - none */
  readonly systemUsers?: readonly SystemUser[];
  readonly writeFiles: readonly WriteFile[];
  /** PEM certificates of extra CAs for the system trust store (cloud-init's `ca_certs`). @default - none */
  readonly trustedCaCertificates?: readonly string[];
  /**
   * Commands run on every boot, early (before `write_files` and packages on
   * the first boot); each is an argv array. @default - none
   */
  readonly bootcmd?: readonly (readonly string[])[];
  /** Commands run once, last, in order; each is an argv array (no shell). */
  readonly runcmd: readonly (readonly string[])[];
}

/** A Terraform reference, as cdktf writes it before synthesis resolves it: `${TfToken[TOKEN.12]}`. */
const TOKEN = /\$\{TfToken\[/;

/**
 * What a `writeAndRun` command runs: `$0` is the file's path, `$1` its gzipped
 * content in base64, the rest the script's arguments.
 */
const WRITE_AND_RUN = (permissions: string) =>
  `set -eu; printf %s "$1" | base64 -d | gunzip > "$0.new"; chmod ${permissions} "$0.new"; mv -f "$0.new" "$0"; shift; exec "$0" "$@"`;

/** `file`'s text gzipped, in base64; it must hold no Terraform reference, which Terraform could not resolve there. */
function packedScript(file: WriteFile): string {
  if (TOKEN.test(file.content)) throw new Error(`${file.path} holds a Terraform reference: it cannot be packed`);
  return gzipSync(file.content, { level: 9 }).toString("base64");
}

/**
 * A bootcmd entry that writes `file` and runs it with `args`. bootcmd runs
 * before write_files on the first boot, so a script it needs travels in the
 * command itself; the command also leaves it where the units that run it on
 * later boots find it. So the script is carried once, packed, and not again
 * in write_files. bootcmd runs on every boot: the same bytes each time.
 */
export function writeAndRun(file: WriteFile, args: readonly string[] = []): string[] {
  return ["sh", "-c", WRITE_AND_RUN(file.permissions ?? "0644"), file.path, packedScript(file), ...args];
}

/** The files `writeAndRun` entries of a bootcmd carry: path and text. */
export function filesRunAtBoot(bootcmd: readonly (readonly string[])[]): { path: string; content: string }[] {
  return bootcmd
    .filter((argv) => argv[0] === "sh" && argv[1] === "-c" && /^set -eu; printf %s "\$1" \| base64 -d \| gunzip/.test(argv[2] ?? ""))
    .map((argv) => ({ path: argv[3]!, content: gunzipSync(Buffer.from(argv[4]!, "base64")).toString("utf8") }));
}

/** Between the parts of the user-data: never in a file, a command, or base64. */
const BOUNDARY = "==foobar-user-data==";

/**
 * How cloud-init merges the packed part into the first: lists appended
 * (`write_files`), keys the first part has left as they are.
 */
const MERGE_HOW = "list(append)+dict(no_replace,recurse_list)+str()";

/**
 * The user-data as cloud-init reads it: one cloud-config document, the parts
 * merged (`write_files` appended), every file's text as it lands.
 */
export function parseUserData(userData: string): Record<string, unknown> & { write_files?: Record<string, unknown>[] } {
  const documents = userData.startsWith("#cloud-config\n")
    ? [YAML.parse(userData) as Record<string, unknown>]
    : userData
        .split(`--${BOUNDARY}`)
        .slice(1, -1)
        .map((part) => {
          const [headers, ...body] = part.replace(/^\n/, "").split("\n\n");
          const text = /^Content-Type: application\/gzip$/m.test(headers!)
            ? gunzipSync(Buffer.from(body.join("\n\n"), "base64")).toString("utf8")
            : body.join("\n\n");
          return YAML.parse(text) as Record<string, unknown>;
        });
  const merged: Record<string, unknown> & { write_files?: Record<string, unknown>[] } = {};
  for (const document of documents) {
    for (const [key, value] of Object.entries(document)) {
      if (key === "merge_how") continue;
      if (key === "write_files") merged.write_files = [...(merged.write_files ?? []), ...(value as Record<string, unknown>[])];
      else if (!(key in merged)) merged[key] = value;
    }
  }
  return merged;
}

/**
 * User-data as a reader searches it: the document cloud-init reads, and the
 * text of every script bootcmd writes and runs, as they land on the droplet.
 */
export function userDataText(userData: string): string {
  const document = parseUserData(userData);
  const bootFiles = filesRunAtBoot((document.bootcmd ?? []) as string[][]).map((file) => file.content);
  return [YAML.stringify(document, { lineWidth: 0 }), ...bootFiles].join("\n");
}

/**
 * Renders the user-data: what cloud-init reads as one `#cloud-config`.
 *
 * DigitalOcean accepts 64 KiB of user-data, and most of it is scripts and
 * text that compress well. So it is a MIME multi-part message of two parts
 * cloud-init merges: a plain one with what holds a Terraform reference
 * (Terraform must see and resolve those, a few files such as the secrets'
 * environment files), and one gzipped part (base64) with everything else,
 * whose files are appended to the first's. Without anything to pack, the
 * plain document alone. The values may contain cdktf tokens that Terraform
 * resolves at apply time.
 */
export function renderCloudConfig(config: CloudConfig): string {
  const document = {
    ...(config.bootcmd?.length ? { bootcmd: config.bootcmd.map((argv) => [...argv]) } : {}),
    hostname: config.hostname,
    fqdn: config.hostname,
    // The droplet's own name must resolve locally (sudo, MySQL, HAProxy logs).
    manage_etc_hosts: true,
    users: [
      "default",
      ...(config.systemUsers ?? []).map((user) => ({
        name: user.name,
        system: true,
        homedir: user.homedir,
        no_create_home: true,
        shell: "/usr/sbin/nologin",
        lock_passwd: true,
      })),
    ],
    // Key-only SSH: cloud-init writes PasswordAuthentication no (see also hardening.ts).
    ssh_pwauth: false,
    ...(config.trustedCaCertificates?.length ? { ca_certs: { trusted: [...config.trustedCaCertificates] } } : {}),
    package_update: true,
    packages: [...config.packages],
    write_files: config.writeFiles.map((file) => ({
      path: file.path,
      content: file.content,
      owner: file.owner ?? "root:root",
      permissions: file.permissions ?? "0644",
      ...(file.encoding ? { encoding: file.encoding } : {}),
      ...(file.defer ? { defer: true } : {}),
    })),
    // cloud-init joins runcmd into one script and reports only its last
    // exit code; "set -e" makes any failed step fail the boot visibly.
    runcmd: ["set -e", ...config.runcmd.map((argv) => [...argv])],
  };
  const plain: Record<string, unknown> = {};
  const packed: Record<string, unknown> = { merge_how: MERGE_HOW };
  for (const [key, value] of Object.entries(document)) {
    if (key === "write_files") {
      plain.write_files = document.write_files.filter((file) => TOKEN.test(file.content));
      packed.write_files = document.write_files.filter((file) => !TOKEN.test(file.content));
    } else if (TOKEN.test(JSON.stringify(value))) plain[key] = value;
    else packed[key] = value;
  }
  if ((plain.write_files as unknown[]).length === 0) delete plain.write_files;
  if ((packed.write_files as unknown[]).length === 0) return cloudConfigText(document);
  const gzipped = gzipSync(cloudConfigText(packed), { level: 9 }).toString("base64");
  const parts = [
    ['Content-Type: text/cloud-config; charset="utf-8"', "Content-Transfer-Encoding: 8bit", "", cloudConfigText(plain)],
    ["Content-Type: application/gzip", "Content-Transfer-Encoding: base64", "", ...(gzipped.match(/.{1,76}/g) ?? []), ""],
  ].map((lines) => lines.join("\n"));
  if (parts.some((part) => part.includes(BOUNDARY))) throw new Error(`user-data of ${config.hostname} holds ${BOUNDARY}`);
  return [
    `Content-Type: multipart/mixed; boundary="${BOUNDARY}"`,
    "MIME-Version: 1.0",
    "",
    ...parts.map((part) => `--${BOUNDARY}\n${part}`),
    `--${BOUNDARY}--`,
    "",
  ].join("\n");
}

/**
 * One `#cloud-config` document. lineWidth 0: never fold long lines, so
 * tokens and scripts stay intact. cloud-init reads YAML 1.1 (PyYAML), where
 * a bare `on`, `yes` or `off` is a boolean: writing 1.1 quotes them, so
 * `ufw allow in on vrrp0` stays text.
 */
function cloudConfigText(document: Record<string, unknown>): string {
  return "#cloud-config\n" + YAML.stringify(document, { lineWidth: 0, minContentWidth: 0, version: "1.1" });
}

/**
 * Escapes text so that Terraform reads it back literally.
 *
 * User-data is a Terraform template string: a shell `${VAR}` or an HAProxy
 * `%{...}` would otherwise be taken for interpolation or a directive. cdktf
 * tokens (`${TfToken[...]}`) are left alone so they still become references.
 */
export function escapeTerraformTemplate(text: string): string {
  return text.replace(/\$\{(?!TfToken\[)/g, "$$${").replace(/%\{/g, "%%{");
}

/** Size of the user-data in bytes, as the droplet will receive it (UTF-8). */
export function userDataBytes(userData: string): number {
  return Buffer.byteLength(userData, "utf8");
}
