/**
 * Where a routed name may lead. A route names a host, not an address, and whoever controls
 * that name's DNS (any subdomain under a `*.suffix` route, say) chooses where egress connects.
 * So the address every upstream connection is about to use is checked, after resolution and
 * before connecting:
 * - never: unspecified, link-local (169.254.0.0/16 holds the cloud metadata services;
 *   fe80::/10), the metadata services elsewhere (Azure 168.63.129.16, Alibaba 100.100.100.200,
 *   AWS fd00:ec2::254), multicast, reserved and broadcast addresses;
 * - private: loopback, RFC 1918, carrier-grade NAT, benchmarking, IETF protocol assignments and
 *   IPv6 unique-local addresses: only for a route that says `allow_private_ips: true` (an
 *   internal service the user means to reach);
 * - public: everything else.
 * IPv6 forms that embed an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by that address.
 * A name with several addresses is refused if any of them is refused: a resolver answering
 * one public and one private address would otherwise pick for us.
 */
import * as net from "node:net"

export type AddressKind = "public" | "private" | "never"

export interface AddressClass {
  readonly kind: AddressKind
  /** The range, for messages ("loopback 127.0.0.0/8", …). */
  readonly range: string
}

interface Range {
  readonly net: string
  readonly prefix: number
  readonly kind: Exclude<AddressKind, "public">
  readonly range: string
}

const V4: ReadonlyArray<Range> = [
  // Cloud metadata services outside link-local (before the ranges that hold them).
  { net: "168.63.129.16", prefix: 32, kind: "never", range: "Azure's metadata and platform service 168.63.129.16" },
  { net: "100.100.100.200", prefix: 32, kind: "never", range: "Alibaba Cloud's metadata service 100.100.100.200" },
  { net: "0.0.0.0", prefix: 8, kind: "never", range: "unspecified 0.0.0.0/8" },
  { net: "169.254.0.0", prefix: 16, kind: "never", range: "link-local 169.254.0.0/16, where cloud metadata services live" },
  { net: "224.0.0.0", prefix: 4, kind: "never", range: "multicast 224.0.0.0/4" },
  { net: "240.0.0.0", prefix: 4, kind: "never", range: "reserved or broadcast 240.0.0.0/4" },
  { net: "127.0.0.0", prefix: 8, kind: "private", range: "loopback 127.0.0.0/8" },
  { net: "10.0.0.0", prefix: 8, kind: "private", range: "private 10.0.0.0/8" },
  { net: "172.16.0.0", prefix: 12, kind: "private", range: "private 172.16.0.0/12" },
  { net: "192.168.0.0", prefix: 16, kind: "private", range: "private 192.168.0.0/16" },
  { net: "100.64.0.0", prefix: 10, kind: "private", range: "carrier-grade NAT 100.64.0.0/10" },
  { net: "192.0.0.0", prefix: 24, kind: "private", range: "IETF protocol assignments 192.0.0.0/24" },
  { net: "198.18.0.0", prefix: 15, kind: "private", range: "benchmarking 198.18.0.0/15" }
]

const V6: ReadonlyArray<Range> = [
  { net: "fd00:ec2::254", prefix: 128, kind: "never", range: "AWS's IPv6 metadata service fd00:ec2::254" },
  { net: "::", prefix: 128, kind: "never", range: "unspecified ::" },
  { net: "fe80::", prefix: 10, kind: "never", range: "link-local fe80::/10" },
  { net: "ff00::", prefix: 8, kind: "never", range: "multicast ff00::/8" },
  { net: "::1", prefix: 128, kind: "private", range: "loopback ::1" },
  { net: "fc00::", prefix: 7, kind: "private", range: "unique-local fc00::/7" }
]

const listOf = (ranges: ReadonlyArray<Range>, family: "ipv4" | "ipv6") =>
  ranges.map((r) => {
    const list = new net.BlockList()
    list.addSubnet(r.net, r.prefix, family)
    return { list, range: r }
  })
const v4Lists = listOf(V4, "ipv4")
const v6Lists = listOf(V6, "ipv6")

/** The 16 bytes of an IPv6 address without zone (`::` expanded, a trailing dotted IPv4 part included). */
const v6Bytes = (address: string): Uint8Array | undefined => {
  let a = address.toLowerCase()
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (dotted) {
    const parts = dotted[1]!.split(".").map(Number)
    a = a.slice(0, -dotted[1]!.length) + `${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`
  }
  const [head, tail] = a.split("::") as [string, string | undefined]
  const h = head === "" ? [] : head.split(":")
  const t = tail === undefined || tail === "" ? [] : tail.split(":")
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t]
  if (groups.length !== 8) return undefined
  const out = new Uint8Array(16)
  groups.forEach((g, i) => {
    const n = parseInt(g, 16)
    out[2 * i] = n >> 8
    out[2 * i + 1] = n & 0xff
  })
  return out
}

/** The IPv4 address an IPv6 address embeds (IPv4-mapped, IPv4-compatible, NAT64 or 6to4), if any. */
const embeddedV4 = (b: Uint8Array): string | undefined => {
  const zeros = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0)
  const v4 = (at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated; not :: or ::1).
  if (zeros(0, 10) && ((b[10] === 0xff && b[11] === 0xff) || (zeros(10, 12) && !zeros(12, 15)))) return v4(12)
  // 64:ff9b::/96 (NAT64) and 64:ff9b:1::/48 (local-use NAT64): the last 32 bits.
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && (zeros(4, 12) || (b[4] === 0x00 && b[5] === 0x01))) return v4(12)
  // 2002::/16 (6to4): the IPv4 address is bytes 2–5.
  if (b[0] === 0x20 && b[1] === 0x02) return v4(2)
  return undefined
}

export const classifyAddress = (address: string): AddressClass => {
  const family = net.isIP(address)
  if (family === 4) {
    for (const { list, range } of v4Lists) if (list.check(address, "ipv4")) return { kind: range.kind, range: range.range }
    return { kind: "public", range: "public" }
  }
  if (family === 6) {
    const zone = address.indexOf("%")
    const plain = zone === -1 ? address : address.slice(0, zone)
    const bytes = v6Bytes(plain)
    const inner = bytes && embeddedV4(bytes)
    if (inner !== undefined) {
      const c = classifyAddress(inner)
      return c.kind === "public" ? c : { kind: c.kind, range: `${c.range} (as ${inner}, inside the IPv6 address)` }
    }
    for (const { list, range } of v6Lists) if (list.check(plain, "ipv6")) return { kind: range.kind, range: range.range }
    return { kind: "public", range: "public" }
  }
  // Not an IP address at all: nothing to connect to.
  return { kind: "never", range: "not an IP address" }
}

/** May a route (with or without `allow_private_ips`) connect to this address? */
export const addressRefusal = (address: string, allowPrivate: boolean): AddressClass | undefined => {
  const c = classifyAddress(address)
  return c.kind === "never" || (c.kind === "private" && !allowPrivate) ? c : undefined
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address?: string | ReadonlyArray<{ address: string; family: number }>, family?: number) => void
export type LookupFunction = (hostname: string, options: unknown, callback: LookupCallback) => void

/** The error a refused address fails the upstream connection with (the agent sees a 502 naming it). */
export class AddressRefused extends Error {
  static readonly code = "EGRESS_ADDRESS_REFUSED"
  readonly code = AddressRefused.code
  readonly hostname: string
  constructor(hostname: string, address: string, c: AddressClass, allowPrivate: boolean) {
    super(
      `egress refused to connect to ${hostname}: it resolves to ${address}, in ${c.range}` +
        (c.kind === "private" && !allowPrivate ? "; a route reaches private addresses only with allow_private_ips: true" : "; no route may reach it")
    )
    this.hostname = hostname
  }
}

/**
 * Wraps a `dns.lookup`-style function (any of its call forms: with or without options, with
 * `all: true` or not) so that a name resolving to a refused address fails to resolve.
 */
export const guardLookup = (inner: LookupFunction, allowPrivate: boolean, onRefused?: (error: AddressRefused) => void): LookupFunction =>
  (hostname, options, callback) => {
    const [opts, cb] = typeof options === "function" ? [{}, options as LookupCallback] : [options, callback]
    inner(hostname, opts, (err, address, family) => {
      if (err) return cb(err)
      const all = Array.isArray(address) ? (address as ReadonlyArray<{ address: string; family: number }>) : [{ address: address as string, family: family ?? 0 }]
      for (const a of all) {
        const refused = addressRefusal(a.address, allowPrivate)
        if (refused) {
          const error = new AddressRefused(hostname, a.address, refused, allowPrivate)
          onRefused?.(error)
          return cb(error)
        }
      }
      cb(null, address, family)
    })
  }
