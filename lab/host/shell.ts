/**
 * Running host commands and printing progress.
 *
 * Every external command goes through `run` / `tryRun` so that errors name the
 * command and carry its stderr. Arguments are passed as arrays (no shell), so
 * nothing here needs quoting.
 */
import { spawnSync } from "node:child_process";

const startedAt = Date.now();

/** Seconds since the lab process started, for progress lines. */
export function elapsed(): number {
  return Math.round((Date.now() - startedAt) / 1000);
}

/** One progress line, prefixed with the elapsed seconds. */
export function log(message: string): void {
  process.stdout.write(`[${String(elapsed()).padStart(4)}s] ${message}\n`);
}

/** The outcome of a command that was allowed to fail. */
export interface CommandResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Text written to the command's stdin. */
  readonly input?: string;
  /** Extra environment variables on top of the lab's own environment. */
  readonly env?: Record<string, string>;
  /** Kill the command after this many milliseconds. @default - no limit */
  readonly timeoutMs?: number;
  /** Let the command's output through to our terminal instead of capturing it. */
  readonly inheritOutput?: boolean;
}

/** Runs a command and returns its status and output; never throws on a non-zero exit. */
export function tryRun(cmd: string, args: readonly string[], options: RunOptions = {}): CommandResult {
  const result = spawnSync(cmd, args, {
    input: options.input,
    env: { ...process.env, ...options.env },
    timeout: options.timeoutMs,
    // SIGKILL, not SIGTERM, at the timeout: an nsenter into a droplet powered off mid-call was seen stopped
    // (state T), where a SIGTERM waits forever and the whole run with it.
    killSignal: "SIGKILL",
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    stdio: options.inheritOutput ? ["pipe", "inherit", "inherit"] : "pipe",
  });
  if (result.error && (result.error as NodeJS.ErrnoException).code === "ENOENT") {
    return { status: 127, stdout: "", stderr: `${cmd}: command not found` };
  }
  return {
    // A command killed by a signal (or a timeout) has no status: report it as failed.
    status: result.status ?? 128,
    stdout: result.stdout ?? "",
    stderr: (result.stderr ?? "") + (result.signal ? `\n(killed by ${result.signal})` : ""),
  };
}

/**
 * Runs a command and returns its stdout.
 *
 * @throws Error naming the command, its exit status and the tail of its stderr.
 */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): string {
  const result = tryRun(cmd, args, options);
  if (result.status !== 0) {
    const detail = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-15).join("\n");
    throw new Error(`${cmd} ${args.join(" ")} exited ${result.status}${detail ? `:\n${detail}` : ""}`);
  }
  return result.stdout;
}

/** Whether a command by this name is on the PATH. */
export function commandExists(cmd: string): boolean {
  return tryRun("sh", ["-c", 'command -v "$1" >/dev/null', "sh", cmd]).status === 0;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The last `lines` lines of a text. */
export function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
