/**
 * A DLP block against the daemon as it ships (its own process, see support/daemon.ts): the
 * request that carries another route's token gets its 403, the daemon lives on and serves the
 * next request, and the `dlp-block` audit line is on disk. Over HTTP/1.1 and HTTP/2, with a
 * small body and with a multi-MB streamed one whose token comes after several chunks, as the
 * daemon's first request and after many.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest"
import { proxiedRequest, streamedUpload } from "./support/client.ts"
import { builtDaemon, daemonRoutes as routes, type DaemonProcess, startDaemon } from "./support/daemon.ts"
import { OTHER, REAL_TOKEN } from "./support/harness.ts"


beforeAll(() => void builtDaemon(), 180_000)

const daemons: Array<DaemonProcess> = []
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()))
})

const small = (): Array<Buffer> => [Buffer.from(`x=${REAL_TOKEN}`)]
/** 4 MB in 64 KiB chunks; the token straddles chunks 8 and 9. */
const streamed = (): Array<Buffer> => {
  const chunks = Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024, 0x61))
  const t = Buffer.from(REAL_TOKEN)
  t.copy(chunks[8]!, chunks[8]!.length - 10, 0, 10)
  t.copy(chunks[9]!, 0, 10)
  return chunks
}

const clean = (d: DaemonProcess, protocol: "h1" | "h2", path: string) =>
  streamedUpload({ proxyPort: d.proxyPort, ca: d.bottleCa, host: OTHER, port: d.upstreamPort, path, protocol, chunks: [Buffer.from("all good")] })

const blocked = async (d: DaemonProcess, protocol: "h1" | "h2", body: Array<Buffer>, path: string, host = OTHER) => {
  const res = await streamedUpload({ proxyPort: d.proxyPort, ca: d.bottleCa, host, port: d.upstreamPort, path, protocol, chunks: body })
  expect(res.status).toBe(403)
  expect(res.body).toContain('"rule":"dlp"')
  // What the daemon does next (a crash comes on the next tick or two), then: still here?
  await new Promise((r) => setTimeout(r, 200))
  expect(d.alive(), `daemon died after a DLP block:\n${d.output()}`).toBe(true)
  const served = await proxiedRequest({ proxyPort: d.proxyPort, ca: d.bottleCa, host: OTHER, port: d.upstreamPort, path: "/after" })
  expect(served.status).toBe(200)
  const line = d.audit().find((e) => e["path"] === path)
  expect(line, `no audit line for ${path}`).toMatchObject({ decision: "dlp-block", status: 403, rule: "dlp", host })
  for (const r of d.upstream.received) expect(r.body).not.toContain(REAL_TOKEN)
}

describe.each(["h1", "h2"] as const)("a DLP block over %s", (protocol) => {
  it.each([
    ["small", small],
    ["streamed", streamed]
  ] as const)("%s body: 403, audited, and the daemon serves on (first request and after many)", async (_, body) => {
    const d = await startDaemon({ routes })
    daemons.push(d)
    await blocked(d, protocol, body(), "/first")
    for (let i = 0; i < 40; i++) expect((await clean(d, protocol, `/ok-${i}`)).status).toBe(200)
    await blocked(d, protocol, body(), "/later")
    await blocked(d, protocol, body(), "/again")
  }, 60_000)

  it("small body to a routed name not resolved yet (blocked while the upstream is looked up)", async () => {
    const d = await startDaemon({ routes })
    daemons.push(d)
    for (let i = 0; i < 3; i++) await blocked(d, protocol, small(), `/fresh-${i}`, `n${i}.fresh.example.test`)
  }, 60_000)
})

it("the dlp-block line is on disk even when the daemon is killed right after the 403", async () => {
  const d = await startDaemon({ routes })
  daemons.push(d)
  const res = await streamedUpload({ proxyPort: d.proxyPort, ca: d.bottleCa, host: OTHER, port: d.upstreamPort, path: "/then-killed", protocol: "h1", chunks: small() })
  expect(res.status).toBe(403)
  // SIGKILL: no finalizer, no timer runs; only what was written synchronously survives.
  d.child.kill("SIGKILL")
  await new Promise((r) => d.child.once("exit", r))
  expect(d.audit().find((e) => e["path"] === "/then-killed")).toMatchObject({ decision: "dlp-block", status: 403 })
}, 60_000)
