/**
 * How the text of one variable becomes a typed value: the value types the
 * settings are declared with (`declaration.ts`), each with what it accepts.
 */

import * as ipaddr from "ipaddr.js";
import { z } from "zod";

/** Thrown by a value type's `parse`: the value is not accepted. */
export class Rejected extends Error {
  /**
   * @param detail why, appended to the message. @default - none
   * @param got the part of the value at fault (one item of a list). @default - the whole value
   */
  constructor(
    readonly detail?: string,
    readonly got?: string,
  ) {
    super(detail ?? "rejected");
  }
}

/** How the text of one variable becomes a typed value. */
export interface ValueType<T> {
  /** The type's name in the README's table. */
  readonly type: string;
  /** What is accepted, for messages and the README: "a whole number from 1 to 10". */
  readonly accepted: string;
  /** Parses a trimmed, non-empty value. @throws Rejected */
  readonly parse: (value: string) => T;
}

/** One setting: where it comes from, what it accepts and what it does. */
export interface Declaration<T> {
  readonly variable: string;
  readonly valueType: ValueType<T>;
  /** The value when the variable is unset. */
  readonly default: T;
  /** The default as the README shows it. @default - the default in backticks, or "none" */
  readonly defaultText?: string;
  /** What is accepted, when more precise than the type's own words. @default - the value type's */
  readonly accepted?: string;
  readonly description: string;
  /**
   * Where the variable may be set: `app` settings choose the stacks and are
   * read from the shell only; `stack` settings configure one stack, and come
   * from an environment's file when environments are in use.
   *
   * @default "stack"
   */
  readonly scope?: "app" | "stack";
  /**
   * A secret: messages never repeat its value (they give its length), and
   * the stack hands it to Terraform as a sensitive variable, never as text.
   *
   * @default false
   */
  readonly secret?: boolean;
}

/** A value type from a zod schema: zod checks, the declaration words the message. */
export function fromSchema<T>(type: string, accepted: string, schema: z.ZodType<T, string>): ValueType<T> {
  return {
    type,
    accepted,
    parse: (value) => {
      const result = schema.safeParse(value);
      if (!result.success) throw new Rejected();
      return result.data;
    },
  };
}

export const wholeNumber = (min: number, max: number): ValueType<number> =>
  fromSchema(
    "whole number",
    `a whole number from ${min} to ${max}`,
    z
      .string()
      .regex(/^\d{1,9}$/)
      .transform(Number)
      .pipe(z.number().min(min).max(max)),
  );

export const flag: ValueType<boolean> = fromSchema("boolean", "true or false", z.stringbool({ truthy: ["true"], falsy: ["false"] }));

export const oneOf = <V extends string>(values: readonly V[]): ValueType<V> =>
  fromSchema("one of a list", `one of ${values.join(", ")}`, z.enum(values as [V, ...V[]]));

export const text = (accepted: string, pattern: RegExp): ValueType<string> => fromSchema("text", accepted, z.string().regex(pattern));

export const email = (accepted: string): ValueType<string> => fromSchema("e-mail", accepted, z.email());

export const httpsUrl = (accepted: string, hostname?: RegExp): ValueType<string> =>
  fromSchema("URL", accepted, z.url({ protocol: /^https$/, ...(hostname ? { hostname } : {}) }));

/** An http:// or https:// URL: a webhook may be on the operator's own network. */
export const webhookUrl = (accepted: string): ValueType<string> => fromSchema("URL", accepted, z.url({ protocol: /^https?$/ }));

/** A value the setting may leave unset. */
export const optional = <T>(valueType: ValueType<T>): ValueType<T | undefined> => valueType;

/** A comma-separated list; every item is parsed by `item`, and an empty item is an error. */
export function list<T>(item: ValueType<T>, accepted: string): ValueType<readonly T[]> {
  return {
    type: `list of ${item.type}`,
    accepted,
    parse: (value) =>
      value.split(",").map((raw) => {
        const trimmed = raw.trim();
        if (trimmed === "") throw new Rejected("an item is empty: remove the extra comma");
        try {
          return item.parse(trimmed);
        } catch (error) {
          if (error instanceof Rejected) throw new Rejected(error.detail, error.got ?? trimmed);
          throw error;
        }
      }),
  };
}

/** A parsed IPv4 network. */
export interface Ipv4Network {
  /** Canonical form, such as `203.0.113.0/24`. */
  readonly cidr: string;
  readonly address: ipaddr.IPv4;
  readonly prefix: number;
}

/**
 * Parses an IPv4 CIDR strictly: four decimal octets without leading zeros,
 * a prefix from 0 to 32, no host bits set.
 *
 * @throws Rejected saying the corrected network when host bits are set.
 */
export function parseIpv4Network(value: string): Ipv4Network {
  const [address, prefixText, ...rest] = value.split("/");
  if (rest.length > 0 || prefixText === undefined || !/^\d{1,3}$/.test(prefixText)) throw new Rejected();
  if (!ipaddr.IPv4.isValidFourPartDecimal(address) || !ipaddr.IPv4.isValidCIDR(value)) throw new Rejected();
  const prefix = Number(prefixText);
  const network = ipaddr.IPv4.networkAddressFromCIDR(value);
  const cidr = `${network.toString()}/${prefix}`;
  if (network.toString() !== address) throw new Rejected(`host bits are set, the network is ${cidr}`);
  return { cidr, address: network, prefix };
}

export const ipv4Network = (accepted: string, check: (network: Ipv4Network) => boolean): ValueType<string> => ({
  type: "IPv4 CIDR",
  accepted,
  parse: (value) => {
    const network = parseIpv4Network(value);
    if (!check(network)) throw new Rejected();
    return network.cidr;
  },
});

export const adminCidr: ValueType<string> = {
  type: "IPv4 CIDR",
  accepted: "an IPv4 CIDR such as 203.0.113.7/32",
  parse: (value) => {
    if (ipaddr.IPv6.isValidCIDR(value)) {
      throw new Rejected("the droplets have no IPv6 address, so an IPv6 SSH rule could never match");
    }
    return parseIpv4Network(value).cidr;
  },
};

/** How many IPv4 addresses the CIDRs cover together, overlaps counted once. */
export function addressesCovered(cidrs: readonly string[]): number {
  const ranges = cidrs
    .map((cidr) => {
      const [address, prefix] = ipaddr.IPv4.parseCIDR(cidr);
      const start = address.toByteArray().reduce((n, octet) => n * 256 + octet, 0);
      const size = 2 ** (32 - prefix);
      return [start - (start % size), size] as const;
    })
    .sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = 0;
  for (const [start, size] of ranges) {
    const from = Math.max(start, end);
    if (start + size > from) total += start + size - from;
    end = Math.max(end, start + size);
  }
  return total;
}

/** Declares one setting, keeping its value type for `Settings`. */
export const declare = <T>(declaration: Declaration<T>): Declaration<T> => declaration;
