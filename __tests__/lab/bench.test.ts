/**
 * The bench's parts on small inputs: wrk's report read back (from fixtures and
 * from a real one-second wrk run on loopback), percentiles, the table, and
 * its arguments. The bench itself is not a test: it reports, it never fails
 * on a slow machine.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

import { parseBenchArgs } from "../../lab/bench";
import { BenchReport, failedRequests, parseWrk, percentile, renderMarkdown, renderText, wrkTimeMs } from "../../lab/bench-report";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "fixtures", name), "utf8");

describe("reading wrk's report", () => {
  test("a clean run gives its rate, percentiles and no failures", () => {
    const result = parseWrk(fixture("wrk-clean.txt"));
    expect(result).toMatchObject({ requests: 1004, seconds: 1, requestsPerSecond: 1001.32, p50Ms: 1.5, p99Ms: 7.64 });
    expect(failedRequests(result)).toBe(0);
  });

  test("socket errors and error answers both count as failed requests", () => {
    const result = parseWrk(fixture("wrk-errors.txt"));
    expect(result.socketErrors).toEqual({ connect: 0, read: 3, write: 0, timeout: 2 });
    expect(result.non2xx3xx).toBe(7);
    expect(failedRequests(result)).toBe(12);
    expect(result.p50Ms).toBeCloseTo(0.83);
  });

  test("wrk's time units are read as milliseconds", () => {
    expect(wrkTimeMs("830.00us")).toBeCloseTo(0.83);
    expect(wrkTimeMs("1.02s")).toBe(1020);
    expect(wrkTimeMs("2.00m")).toBe(120_000);
    expect(() => wrkTimeMs("fast")).toThrow('not a wrk duration: "fast"');
  });

  test("a run with no result (nothing listening) is an error that quotes wrk", () => {
    expect(() => parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n")).toThrow(/wrk gave no result: unable to connect/);
  });

  test("a real one-second wrk run on loopback is read back", async () => {
    const server = http.createServer((_request, response) => response.end("ok"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      // Asynchronously: this process's server must answer while wrk runs.
      const output = await new Promise<string>((resolve, reject) => {
        const child = spawn("wrk", ["-t1", "-c2", "-d1s", "--latency", `http://127.0.0.1:${port}/`]);
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
        child.on("error", () => reject(new Error("wrk is not installed: apt-get install wrk (.ci/run installs it)")));
        child.on("close", () => resolve(out));
      });
      const result = parseWrk(output);
      expect(result.requests).toBeGreaterThan(0);
      expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
      expect(failedRequests(result)).toBe(0);
    } finally {
      server.close();
    }
  });
});

describe("percentiles", () => {
  test("nearest rank over unsorted values", () => {
    const values = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    expect(percentile(values, 50)).toBe(5);
    expect(percentile(values, 99)).toBe(10);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe("the table", () => {
  const report: BenchReport = {
    startedAt: "2026-12-02T00:00:00.000Z",
    machine: "2 × test CPU",
    load: "wrk -t2 -c32 -d10s",
    sections: [
      {
        title: "Static",
        rows: [
          { measure: "ratio", result: "0.70×", goal: { text: "≥ 0.6×", met: true } },
          { measure: "reads | writes", result: "90 req/s", goal: { text: "≥ 1000/s", met: false }, note: "a note" },
        ],
      },
    ],
  };

  test("Markdown has one row per measure, goals marked met or missed, pipes escaped", () => {
    const lines = renderMarkdown(report).split("\n");
    expect(lines).toContain("| ratio | 0.70× | ≥ 0.6× (met) |  |");
    expect(lines).toContain("| reads \\| writes | 90 req/s | ≥ 1000/s (**missed**) | a note |");
  });

  test("the terminal table says MISSED for a missed goal", () => {
    expect(renderText(report)).toMatch(/reads \| writes\s+90 req\/s\s+\[goal ≥ 1000\/s: MISSED\]/);
  });
});

describe("the bench's arguments", () => {
  test("defaults: 10 s runs with 32 connections, the lab torn down after", () => {
    expect(parseBenchArgs([])).toEqual({ seconds: 10, threads: 2, connections: 32, keep: false });
  });

  test("a bad value is refused with one line naming the option and what is accepted", () => {
    expect(() => parseBenchArgs(["--seconds", "0"])).toThrow(/^--seconds must be a whole number from 1 to 60, got "0"/);
    expect(() => parseBenchArgs(["--fast"])).toThrow(/^usage: npm run bench/);
  });
});
