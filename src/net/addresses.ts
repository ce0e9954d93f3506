/**
 * Addresses, in one place: which *source* an inbound address belongs to
 * (admission's unit), the one spelling of an outbound *destination*
 * (maxPerDestination's unit), and allow-lists (`allowFrom`, `outbound.allow`,
 * `outbound.deny`). An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a
 * dual-stack server sees) is its IPv4 address for all three: `unmapIPv4`.
 *
 * A *source* is what one party can be assumed to control: an IPv4 address,
 * or an IPv6 /64 (the smallest prefix a site is normally given, so one host
 * can pick any of 2^64 addresses in it).
 */
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net';

/**
 * The IPv4 address an IPv4-mapped IPv6 address stands for, in any spelling
 * (`::ffff:10.0.0.1`, `::FFFF:a00:1`, `0:0:0:0:0:ffff:10.0.0.1`); undefined
 * for every other address. The one place that reads that form.
 */
export function unmapIPv4 (address: string): string | undefined {
  // Cheap refusal first: this runs for every inbound connection.
  if (address.length < 7 || !/ffff/i.test(address) || !isIPv6(address)) return undefined;
  let canonical: string;
  try {
    canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (mapped === null) return undefined;
  const high = parseInt(mapped[1]!, 16);
  const low = parseInt(mapped[2]!, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** The source an address belongs to (see above); unknown addresses share one source. */
export function sourceOf (address: string | undefined): string {
  if (address === undefined || address.length === 0) return '?';
  if (isIPv4(address)) return address;
  const lower = address.toLowerCase();
  // A zone index (fe80::1%eth0) names an interface, not part of the address.
  const percent = lower.indexOf('%');
  const bare = percent === -1 ? lower : lower.slice(0, percent);
  if (!isIPv6(bare)) return address;
  const mapped = unmapIPv4(bare);
  if (mapped !== undefined) return mapped;
  return `${prefix64(bare)}::/64`;
}

/**
 * The groups a source belongs to, coarsest first, for comparing shares under
 * pressure (eviction): an IPv6 /64 source is in its /48, its /56 and itself,
 * so that one allocation spread over many /64s counts as one party. Any other
 * source is its own group at every level.
 */
export function sourceGroups (source: string): readonly [string, string, string] {
  const match = /^([0-9a-f]{1,4}):([0-9a-f]{1,4}):([0-9a-f]{1,4}):([0-9a-f]{1,4})::\/64$/.exec(source);
  if (match === null) return [source, source, source];
  const [, a, b, c, d] = match;
  const top = (parseInt(d!, 16) & 0xff00).toString(16);
  return [`${a}:${b}:${c}::/48`, `${a}:${b}:${c}:${top}::/56`, source];
}

/** The first four 16-bit groups of an IPv6 address, `::` expanded, leading zeros dropped. */
function prefix64 (address: string): string {
  let head: string[];
  const gap = address.indexOf('::');
  if (gap === -1) {
    head = address.split(':');
  } else {
    const left = address.slice(0, gap).split(':').filter((g) => g.length > 0);
    const right = address.slice(gap + 2).split(':').filter((g) => g.length > 0);
    // An embedded IPv4 tail takes two groups.
    const rightGroups = right.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
    head = [...left, ...Array<string>(8 - left.length - rightGroups).fill('0'), ...right];
  }
  return head.slice(0, 4).map((g) => (g.includes('.') ? g : g.replace(/^0+(?=.)/, ''))).join(':');
}

/**
 * The one spelling of a destination host that maxPerDestination counts, so
 * that `127.0.0.1`, `127.1`, `0x7f000001`, `2130706433` and
 * `::ffff:127.0.0.1` share one budget, as do `::1` and `0:0:0:0:0:0:0:1`, and
 * `Example.ORG.` and `example.org`. Different names for one address (a
 * wildcard DNS domain) are only told apart by resolving them first:
 * `outbound.allow` or `outbound.lookup` does that, and the address is counted.
 */
export function destinationOf (host: string): string {
  const family = isIP(host);
  if (family === 4) return host;
  if (family === 6) return canonicalIPv6(host);
  const name = host.toLowerCase();
  const numeric = /^[0-9a-fx.]+$/.test(name) ? numericIPv4(name) : undefined;
  if (numeric !== undefined) return numeric;
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** The compressed lower-case form of an IPv6 address; an IPv4-mapped one is its IPv4 address. */
function canonicalIPv6 (address: string): string {
  let canonical: string;
  try {
    canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    // A zone index (fe80::1%eth0) is no URL host: counted as written.
    return address.toLowerCase();
  }
  return unmapIPv4(canonical) ?? canonical;
}

/**
 * The dotted IPv4 address a numeric host name stands for, as the system
 * resolver reads it (inet_aton: one to four parts, each decimal, octal with a
 * leading 0, or hexadecimal with 0x; the last part fills the remaining bytes).
 * Undefined when it is not such a number.
 */
function numericIPv4 (name: string): string | undefined {
  const parts = name.split('.');
  if (parts.length > 4) return undefined;
  const values: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]*$/.test(part)) value = part.length === 2 ? 0 : parseInt(part.slice(2), 16);
    else if (/^0[0-7]*$/.test(part)) value = parseInt(part, 8);
    else if (/^[1-9][0-9]*$/.test(part)) value = parseInt(part, 10);
    else return undefined;
    values.push(value);
  }
  const last = values.pop()!;
  if (values.some((v) => v > 255) || last >= 2 ** (8 * (4 - values.length))) return undefined;
  let n = last;
  values.forEach((v, i) => { n += v * 2 ** (8 * (3 - i)); });
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Networks an address must belong to: `allowFrom`, `outbound.allow`. */
export interface AllowList {
  allows (address: string): boolean;
}

function isBlockList (value: unknown): value is BlockList {
  return value instanceof BlockList || (typeof value === 'object' && value !== null && typeof (value as BlockList).check === 'function');
}

/**
 * An allow-list from CIDR strings (`'10.0.0.0/8'`, `'::1'`, a bare address is
 * one host) or a `net.BlockList` whose rules are the allowed networks.
 * Throws a TypeError naming `name` for anything else.
 */
export function allowList (name: string, value: unknown): AllowList | undefined {
  if (value === undefined) return undefined;
  if (isBlockList(value)) {
    const list = value;
    return { allows: (address) => checkFamily(address, (plain, family) => list.check(plain, family)) };
  }
  const entries = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(entries)) throw new TypeError(`${name} must be a CIDR string, an array of them, or a net.BlockList`);
  // One list per family: Node's BlockList matches an IPv4 address against
  // IPv6 rules too (as ::ffff:a.b.c.d), so '::/0' alone would admit every IPv4
  // address. Here '::/0' means every IPv6 address and nothing else.
  const v4 = new BlockList();
  const v6 = new BlockList();
  for (const entry of entries) {
    const match = typeof entry === 'string' ? /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry.trim()) : null;
    const family = match === null ? 0 : isIP(match[1]!);
    const bits = family === 4 ? 32 : 128;
    const prefix = match?.[2] === undefined ? bits : Number(match[2]);
    if (match === null || family === 0 || prefix > bits) {
      throw new TypeError(`${name} entries must be CIDR strings such as '10.0.0.0/8' or '::1/128'; got ${JSON.stringify(entry)}`);
    }
    if (family === 4) v4.addSubnet(match[1]!, prefix, 'ipv4');
    else v6.addSubnet(match[1]!, prefix, 'ipv6');
  }
  return { allows: (address) => checkFamily(address, (plain, family) => (family === 'ipv4' ? v4 : v6).check(plain, family)) };
}

/** Checks an address as its own family; an IPv4-mapped one as IPv4 (a dual-stack server reports IPv4 peers so). */
function checkFamily (address: string, check: (plain: string, family: 'ipv4' | 'ipv6') => boolean): boolean {
  const plain = unmapIPv4(address) ?? address;
  const family = isIP(plain);
  if (family === 0) return false;
  return check(plain, family === 4 ? 'ipv4' : 'ipv6');
}

/** True for an IP literal (no resolution needed). */
export function isAddress (host: string): boolean {
  return isIP(host) !== 0;
}
