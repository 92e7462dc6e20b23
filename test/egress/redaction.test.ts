/**
 * Response redaction across headers, for real through the daemon over HTTP/1.1 and HTTP/2: an
 * upstream that echoes the injected token cut in two — in two adjacent headers, in two headers
 * of one name with another between, in two chunked Set-Cookie values, or between a header's
 * name and its value — must not hand the agent the token when it reads the pieces together.
 */
import * as http2 from "node:http2"
import * as https from "node:https"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connectTunnel, tlsOverTunnel } from "./support/client.ts"
import { API, harness, REAL_TOKEN } from "./support/harness.ts"

const routes = (port: number) => `routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
    auth: { scheme: Bearer, token_env: API_TOKEN }
`

/** Header names and values as the agent got them, flat and in order. */
type Head = ReadonlyArray<string>

const viaH1 = async (proxyPort: number, ca: string, target: string, path: string): Promise<Head> => {
  const tunnel = await connectTunnel(proxyPort, target)
  if (!("socket" in tunnel)) throw new Error(`tunnel refused: ${tunnel.status}`)
  const socket = await tlsOverTunnel(tunnel.socket, ca, API, ["http/1.1"])
  return new Promise((resolve, reject) => {
    const req = https.request({ host: API, path, headers: { host: target }, createConnection: () => socket }, (res) => {
      res.resume()
      res.on("end", () => {
        socket.destroy()
        resolve(res.statusCode === 200 ? res.rawHeaders : [`status ${res.statusCode}`])
      })
    })
    req.on("error", reject)
    req.end()
  })
}

const viaH2 = async (proxyPort: number, ca: string, target: string, path: string): Promise<Head> => {
  const tunnel = await connectTunnel(proxyPort, target)
  if (!("socket" in tunnel)) throw new Error(`tunnel refused: ${tunnel.status}`)
  const socket = await tlsOverTunnel(tunnel.socket, ca, API, ["h2"])
  const client = http2.connect(`https://${target}`, { createConnection: () => socket })
  client.on("error", () => {})
  try {
    return await new Promise((resolve, reject) => {
      const req = client.request({ ":method": "GET", ":path": path, ":authority": target })
      let head: Array<string> = []
      req.on("response", (h) => {
        for (const [k, v] of Object.entries(h)) for (const one of [v].flat()) head.push(k, String(one))
        if (h[":status"] !== 200) head = [`status ${h[":status"]}`]
      })
      req.resume()
      req.on("end", () => resolve(head))
      req.on("error", reject)
      req.end()
    })
  } finally {
    client.close()
  }
}

/** Every way an agent could read the head joined: all of it, its values, per name, Set-Cookie values. */
const readings = (head: Head): Array<string> => {
  const all = head.join("")
  const byName = new Map<string, Array<string>>()
  for (let i = 0; i + 1 < head.length; i += 2) {
    const k = head[i]!.toLowerCase()
    byName.set(k, [...(byName.get(k) ?? []), ...head[i + 1]!.split(", ")])
  }
  const cookies = (byName.get("set-cookie") ?? []).map((c) => c.slice(c.indexOf("=") + 1, c.includes(";") ? c.indexOf(";") : undefined)).join("")
  const values = head.filter((_, i) => i % 2 === 1).join("")
  return [all, values, ...[...byName.values()].map((vs) => vs.join("")), cookies]
}

describe("egress response redaction across headers", () => {
  for (const [protocol, get] of [["HTTP/1.1", viaH1], ["HTTP/2", viaH2]] as const) {
    it.live(`${protocol}: a token split across adjacent headers, same-name headers, chunked Set-Cookie or a name and its value is masked`, () =>
      Effect.gen(function*() {
        const h = yield* harness({ routes })
        const target = `${API}:${h.upstreamPort}`
        const leaks: Array<string> = []
        for (const how of ["adjacent", "apart", "cookies", "name"]) {
          const head = yield* Effect.promise(() => get(h.proxyPort, h.bottleCa, target, `/echo-split?how=${how}`))
          assert.notMatch(head.join("\n"), /^status /, `${how}: ${head.join(" ")}`)
          // The upstream did get the token (so it echoed it, in halves).
          assert.strictEqual(h.upstream.received.at(-1)?.headers["authorization"], `Bearer ${REAL_TOKEN}`)
          if (readings(head).some((r) => r.includes(REAL_TOKEN))) leaks.push(`${how}: ${head.join(" | ")}`)
        }
        assert.isTrue(leaks.length === 0, `the token came back whole: ${leaks.join("; ")}`)
        // Positive control: the halves did arrive (masked), so the readings above saw them.
        const last = yield* Effect.promise(() => get(h.proxyPort, h.bottleCa, target, "/echo-split?how=adjacent"))
        assert.include(last.join(""), "*".repeat(REAL_TOKEN.length >> 1))
      }))
  }
})
