/**
 * The lab's stand-in for the random provider's `random_password`.
 */
import { randomInt } from "node:crypto";

import type { PasswordSpec, SpacesKeyValues } from "./terraform";

/**
 * A crypto-random password like the random provider's: drawn from the enabled
 * character classes, redrawn until every `min_*` is met.
 *
 * @throws Error when the settings cannot be met (e.g. the minimums exceed the length).
 */
export function randomPassword(spec: PasswordSpec): string {
  const classes = [
    { on: spec.upper, chars: "ABCDEFGHIJKLMNOPQRSTUVWXYZ", min: spec.minUpper },
    { on: spec.lower, chars: "abcdefghijklmnopqrstuvwxyz", min: spec.minLower },
    { on: spec.numeric, chars: "0123456789", min: spec.minNumeric },
    { on: spec.special, chars: spec.overrideSpecial ?? "!@#$%&*()-_=+[]{}<>:?", min: spec.minSpecial },
  ].filter((c) => c.on && c.chars.length > 0);
  const alphabet = classes.map((c) => c.chars).join("");
  const needed = classes.reduce((sum, c) => sum + c.min, 0);
  if (!Number.isInteger(spec.length) || spec.length < 1 || alphabet === "" || needed > spec.length) {
    throw new Error(`random_password settings cannot be met: ${JSON.stringify(spec)}`);
  }
  for (;;) {
    const candidate = Array.from({ length: spec.length }, () => alphabet[randomInt(alphabet.length)]).join("");
    const count = (chars: string): number => [...candidate].filter((ch) => chars.includes(ch)).length;
    if (classes.every((c) => count(c.chars) >= c.min)) return candidate;
  }
}

/**
 * A made-up Spaces key, shaped like DigitalOcean's: an access key id of `DO`
 * and 18 upper-case letters or digits, and a 43-character base64 secret
 * (which may hold `+` and `/`, as real ones do).
 */
export function randomSpacesKey(): SpacesKeyValues {
  const draw = (alphabet: string, length: number) => Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join("");
  const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  return { accessKey: `DO${draw(upper, 18)}`, secretKey: draw(`${upper}abcdefghijklmnopqrstuvwxyz+/`, 43) };
}
