/**
 * Address classes (bundle/egress/addresses.ts): what a routed name may resolve to, in every
 * spelling that reaches the same address, and the lookup wrapper in each of its call forms.
 */
import { assert, describe, it } from "@effect/vitest"
import { addressRefusal, classifyAddress, guardLookup, type LookupFunction } from "../../bundle/egress/addresses.ts"

describe("classifyAddress", () => {
  const cases: ReadonlyArray<readonly [string, "public" | "private" | "never"]> = [
    ["93.184.215.14", "public"],
    ["2606:4700::6810:84e5", "public"],
    ["8.8.8.8", "public"],
    ["127.0.0.1", "private"],
    ["127.255.255.254", "private"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", "public"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["198.18.0.1", "private"],
    ["::1", "private"],
    ["fd00::1", "private"],
    ["fd00:ec2::254", "never"],
    ["fd00:ec2::253", "private"],
    ["168.63.129.16", "never"],
    ["100.100.100.200", "never"],
    ["100.100.100.201", "private"],
    ["64:ff9b:1::a9fe:a9fe", "never"],
    ["64:ff9b:1::808:808", "public"],
    ["0.0.0.0", "never"],
    ["169.254.169.254", "never"],
    ["169.254.170.2", "never"],
    ["224.0.0.1", "never"],
    ["255.255.255.255", "never"],
    ["::", "never"],
    ["fe80::1", "never"],
    ["fe80::1%eth0", "never"],
    ["ff02::1", "never"],
    // IPv6 spellings of IPv4 addresses are judged by the IPv4 address.
    ["::ffff:127.0.0.1", "private"],
    ["::ffff:7f00:1", "private"],
    ["::ffff:169.254.169.254", "never"],
    ["::ffff:a9fe:a9fe", "never"],
    ["::ffff:8.8.8.8", "public"],
    ["64:ff9b::a9fe:a9fe", "never"],
    ["64:ff9b::10.0.0.1", "private"],
    ["2002:a9fe:a9fe::1", "never"],
    ["2002:0808:0808::1", "public"],
    ["::127.0.0.1", "private"],
    ["not-an-ip", "never"]
  ]
  for (const [address, kind] of cases) {
    it(`${address} is ${kind}`, () => assert.strictEqual(classifyAddress(address).kind, kind))
  }

  it("allow_private_ips admits private addresses, never the others", () => {
    assert.isUndefined(addressRefusal("10.0.0.1", true))
    assert.isDefined(addressRefusal("10.0.0.1", false))
    assert.isDefined(addressRefusal("169.254.169.254", true))
    assert.isUndefined(addressRefusal("8.8.8.8", false))
  })
})

describe("guardLookup", () => {
  /** A lookup answering from a table, as dns.lookup does (one address, or all with `all: true`). */
  const table = (answers: Record<string, ReadonlyArray<string>>): LookupFunction => (hostname, options, callback) => {
    const all = (answers[hostname] ?? []).map((address) => ({ address, family: address.includes(":") ? 6 : 4 }))
    if (all.length === 0) return callback(Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }))
    if ((options as { all?: boolean }).all) callback(null, all)
    else callback(null, all[0]!.address, all[0]!.family)
  }
  const lookup = (fn: LookupFunction, host: string, options?: object) =>
    new Promise<{ error?: string; address?: unknown }>((resolve) => {
      const cb = (err: NodeJS.ErrnoException | null, address?: unknown) => resolve(err ? { error: err.message } : { address })
      if (options === undefined) (fn as unknown as (h: string, cb: unknown) => void)(host, cb)
      else fn(host, options, cb)
    })
  const dns = table({ pub: ["8.8.8.8"], loop: ["127.0.0.1"], mixed: ["8.8.8.8", "10.0.0.5"], meta: ["169.254.169.254"] })

  it("passes public answers through, in every call form", async () => {
    const fn = guardLookup(dns, false)
    assert.deepStrictEqual(await lookup(fn, "pub"), { address: "8.8.8.8" })
    assert.deepStrictEqual(await lookup(fn, "pub", { family: 4 }), { address: "8.8.8.8" })
    assert.deepStrictEqual(await lookup(fn, "pub", { all: true }), { address: [{ address: "8.8.8.8", family: 4 }] })
  })

  it("refuses a private answer (and names it), unless allowed", async () => {
    const refused = await lookup(guardLookup(dns, false), "loop")
    assert.match(refused.error ?? "", /loop: it resolves to 127\.0\.0\.1, in loopback 127\.0\.0\.0\/8; .*allow_private_ips: true/)
    assert.deepStrictEqual(await lookup(guardLookup(dns, true), "loop"), { address: "127.0.0.1" })
  })

  it("refuses a name when any of its addresses is refused", async () => {
    const r = await lookup(guardLookup(dns, false), "mixed", { all: true })
    assert.match(r.error ?? "", /10\.0\.0\.5/)
  })

  it("refuses link-local even when private addresses are allowed, and passes resolver errors on", async () => {
    let reported = ""
    const r = await lookup(guardLookup(dns, true, (e) => (reported = e.message)), "meta")
    assert.match(r.error ?? "", /169\.254\.169\.254, in link-local 169\.254\.0\.0\/16.*; no route may reach it/)
    assert.strictEqual(reported, r.error)
    assert.match((await lookup(guardLookup(dns, true), "nowhere")).error ?? "", /ENOTFOUND/)
  })
})
