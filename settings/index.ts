/**
 * Typed settings for the www.foobar.com stack, declared once: the declaration
 * (`declaration.ts`), the value types it uses (`value-types.ts`), and reading
 * them from the environment with the README's table (`load.ts`).
 */
export * from "./declaration";
export * from "./load";
export type { Declaration, Ipv4Network } from "./value-types";
export { addressesCovered } from "./value-types";
