/**
 * The benchmark's pure parts: reading wrk's report, percentiles, and the
 * table `npm run bench` prints and writes (see bench.ts). Nothing here runs a
 * command, so `npm test` checks it on small inputs.
 */

/** What one wrk run measured. */
export interface WrkResult {
  /** Requests completed, whatever their status. */
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  /** Latency percentiles in milliseconds (wrk's `--latency` distribution). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Answers that were not 2xx or 3xx. */
  readonly non2xx3xx: number;
  /** Connections refused or failed, reads and writes that failed, requests that timed out. */
  readonly socketErrors: { readonly connect: number; readonly read: number; readonly write: number; readonly timeout: number };
}

/** Requests that did not get a 2xx or 3xx answer: error answers plus socket errors. */
export function failedRequests(result: WrkResult): number {
  const e = result.socketErrors;
  return result.non2xx3xx + e.connect + e.read + e.write + e.timeout;
}

const TIME_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `"1.50ms"`, `"830.00us"`, `"2.01s"` → milliseconds. */
export function wrkTimeMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!match) throw new Error(`not a wrk duration: "${text}"`);
  return Number(match[1]) * TIME_UNITS_MS[match[2]!]!;
}

/**
 * Reads wrk's report (run with `--latency`).
 *
 * @throws Error quoting wrk's output when it has no request count (wrk could not connect at all, say).
 */
export function parseWrk(output: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m|h),/.exec(output);
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(output);
  if (!total || !rate) throw new Error(`wrk gave no result: ${output.trim().split("\n").slice(-3).join(" | ") || "no output"}`);
  const percentile = (p: number): number => {
    const line = new RegExp(`^\\s*${p}(?:\\.0+)?%\\s+(\\S+)`, "m").exec(output);
    return line ? wrkTimeMs(line[1]!) : NaN;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  return {
    requests: Number(total[1]),
    seconds: wrkTimeMs(`${total[2]}${total[3]}`) / 1000,
    requestsPerSecond: Number(rate[1]),
    p50Ms: percentile(50),
    p99Ms: percentile(99),
    non2xx3xx: non ? Number(non[1]) : 0,
    socketErrors: socket
      ? { connect: Number(socket[1]), read: Number(socket[2]), write: Number(socket[3]), timeout: Number(socket[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
  };
}

/** The `p`th percentile (0–100) of `values`, nearest rank; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** One row of the bench's table. */
export interface BenchRow {
  /** What was measured. */
  readonly measure: string;
  /** The figure, formatted (with its unit). */
  readonly result: string;
  /** The issue's goal for it, and whether this run met it. @default - no goal */
  readonly goal?: { readonly text: string; readonly met: boolean };
  /** How it was measured, or what it compares with. @default - nothing */
  readonly note?: string;
}

/** A section of the table. */
export interface BenchSection {
  readonly title: string;
  readonly rows: readonly BenchRow[];
}

/** What `npm run bench` writes to its JSON file. */
export interface BenchReport {
  /** ISO time the run started. */
  readonly startedAt: string;
  /** The machine: CPUs, memory, kernel. */
  readonly machine: string;
  /** The load generator's settings. */
  readonly load: string;
  readonly sections: readonly BenchSection[];
}

/** `1234.5` → `"1,235"`; small numbers keep one decimal. */
export function formatRate(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(1);
}

/** Milliseconds, to two significant decimals below 10 ms. */
export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  return value < 10 ? `${value.toFixed(2)} ms` : `${Math.round(value)} ms`;
}

/** `a / b` as `"0.62×"`. */
export function formatRatio(a: number, b: number): string {
  return b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : "n/a";
}

/** The report as Markdown: a heading, the machine, and one table with a row per measure. */
export function renderMarkdown(report: BenchReport): string {
  const lines = [
    `# Benchmark: ${report.startedAt}`,
    "",
    `Machine: ${report.machine}. Load: ${report.load}.`,
    "",
    "| measure | result | goal | how |",
    "|---|---|---|---|",
  ];
  for (const section of report.sections) {
    lines.push(`| **${section.title}** | | | |`);
    for (const row of section.rows) {
      const goal = row.goal ? `${row.goal.text} ${row.goal.met ? "(met)" : "(**missed**)"}` : "";
      lines.push(`| ${cell(row.measure)} | ${cell(row.result)} | ${cell(goal)} | ${cell(row.note ?? "")} |`);
    }
  }
  return lines.join("\n") + "\n";
}

/** The report as aligned plain text for the terminal. */
export function renderText(report: BenchReport): string {
  const width = Math.max(...report.sections.flatMap((s) => s.rows.map((r) => r.measure.length)));
  const lines = [`Benchmark ${report.startedAt} on ${report.machine}; load: ${report.load}`];
  for (const section of report.sections) {
    lines.push("", section.title);
    for (const row of section.rows) {
      const goal = row.goal ? `  [goal ${row.goal.text}: ${row.goal.met ? "met" : "MISSED"}]` : "";
      lines.push(`  ${row.measure.padEnd(width)}  ${row.result}${goal}${row.note ? `  (${row.note})` : ""}`);
    }
  }
  return lines.join("\n") + "\n";
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}
