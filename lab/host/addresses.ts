/** IPv4 ranges as the lab plans its addresses: parsing, the n-th address, containment, overlap. */

/** Parses `a.b.c.d/n` into its network number and prefix length. */
export function parseCidr(cidr: string): { network: number; prefix: number } | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!match) return undefined;
  const octets = match.slice(1, 5).map(Number);
  const prefix = Number(match[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return undefined;
  const ip = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  return { network: ip - (ip % size), prefix };
}

/** The n-th address of a range: `hostAddress("10.0.0.0/24", 5)` is `10.0.0.5`. */
export function hostAddress(cidr: string, n: number): string {
  const parsed = parseCidr(cidr);
  if (!parsed) throw new Error(`not an IPv4 CIDR: "${cidr}"`);
  return numberToIp(parsed.network + n);
}

/** Whether an address is a usable host address of a range (not the network or broadcast address). */
export function isInRange(ip: string, cidr: string): boolean {
  const range = parseCidr(cidr);
  const address = parseCidr(`${ip}/32`);
  if (!range || !address) return false;
  const size = 2 ** (32 - range.prefix);
  return address.network > range.network && address.network < range.network + size - 1;
}

/** Whether two IPv4 ranges share any address. */
export function rangesOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y) return false;
  const xEnd = x.network + 2 ** (32 - x.prefix);
  const yEnd = y.network + 2 ** (32 - y.prefix);
  return x.network < yEnd && y.network < xEnd;
}

function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}
