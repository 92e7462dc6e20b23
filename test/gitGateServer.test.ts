/**
 * The git gate's HTTP front without an upstream: what any request past the smart protocol's
 * three endpoints gets, and the bound on connections (a refusal and a log line, never a
 * daemon that runs out of descriptors).
 */
import * as http from "node:http"
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { MAX_CONNECTIONS, type Mirror, serveMirror } from "../bundle/git-gate/server.ts"

const mirror: Mirror = {
  upstream: { name: "w", url: "ssh://git@127.0.0.1:1/w.git", port: 0, push: { allow: [], force: false, delete: false, tags: false }, knownHostsFile: "kh" },
  gitDir: "/nonexistent/w.git",
  refresh: () => Promise.resolve(undefined)
}

const servers: Array<http.Server> = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
})

const get = (port: number, path: string) =>
  new Promise<number | undefined>((resolve) => {
    http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode))
    }).on("error", () => resolve(undefined))
  })

describe("git gate server", () => {
  it(`past ${MAX_CONNECTIONS} connections a new one is refused with a log line; the port serves once they go`, async () => {
    const lines: Array<string> = []
    const { server, port } = await serveMirror(mirror, "127.0.0.1", 0, (l) => lines.push(l))
    servers.push(server)
    const actual = (server.address() as net.AddressInfo).port
    expect(port).toBe(0)
    const sockets = await Promise.all(Array.from({ length: MAX_CONNECTIONS + 40 }, () => new Promise<net.Socket>((resolve) => {
      const s = net.connect(actual, "127.0.0.1", () => resolve(s))
      s.on("error", () => resolve(s))
    })))
    await new Promise((r) => setTimeout(r, 300))
    expect(sockets.filter((s) => s.destroyed || s.readableEnded).length).toBeGreaterThanOrEqual(40)
    expect(lines.some((l) => l.includes(`${MAX_CONNECTIONS} connections open, refused a new one`))).toBe(true)
    for (const s of sockets) s.destroy()
    await new Promise((r) => setTimeout(r, 200))
    expect(await get(actual, "/w.git/HEAD")).toBe(404)
  })
})
