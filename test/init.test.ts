/**
 * The sidecar bundle's init, as shipped (dist/bundle-init.mjs) on the host: it starts only the
 * daemons named, reports readiness, forwards SIGTERM, and never restarts a crashed daemon
 * silently: the crash is logged and the status turns unhealthy.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, beforeAll, describe, expect, it } from "vitest"
import { compileCacheForUid } from "../bundle/init.ts"
import { prepareCli } from "./support/cli.ts"

// The build, in a private copy (support/cli.ts): other test files may rebuild dist/ meanwhile.
let init = ""
let cliDir = ""
beforeAll(() => {
  cliDir = prepareCli()
  init = path.join(cliDir, "dist", "bundle-init.mjs")
}, 180_000)

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })

const children: Array<ReturnType<typeof spawn>> = []
// SIGTERM, as docker stop does: the init takes its daemons down with it (SIGKILL would orphan them).
afterEach(async () => {
  await Promise.all(children.map((c) => (c.exitCode !== null ? Promise.resolve() : new Promise((r) => (c.once("exit", r), c.kill("SIGTERM"))))))
  children.length = 0
})

const startInit = async (daemons: string, routes: string, argv: ReadonlyArray<string> = [init]) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-init-"))
  fs.writeFileSync(path.join(dir, "routes.yaml"), routes)
  const port = await freePort()
  const statusFile = path.join(dir, "status")
  const child = spawn(process.execPath, [...argv], {
    env: { PATH: process.env["PATH"], BOTTLE_DAEMONS: daemons, BOTTLE_EGRESS_DIR: dir, BOTTLE_EGRESS_LISTEN: `127.0.0.1:${port}`, BOTTLE_STATUS_FILE: statusFile },
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.push(child)
  let out = ""
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()))
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()))
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
  const waitFor = async (re: RegExp, ms = 20_000) => {
    const deadline = Date.now() + ms
    while (!re.test(out)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; output:\n${out}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  return { child, port, statusFile, exited, waitFor, output: () => out }
}

const connects = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port })
    s.once("connect", () => (s.destroy(), resolve(true)))
    s.once("error", () => resolve(false))
  })

describe("bundle init", () => {
  it("starts egress, reports ready once it accepts connections, and stops it on SIGTERM", async () => {
    const b = await startInit("egress", "routes: []\n")
    await b.waitFor(/bottle-bundle: ready \(egress\)/)
    expect(fs.readFileSync(b.statusFile, "utf8")).toBe("ready\n")
    expect(await connects(b.port)).toBe(true)
    b.child.kill("SIGTERM")
    expect(await b.exited).toBe(0)
    expect(await connects(b.port)).toBe(false)
  }, 30_000)

  it("`bottle daemon init` (the same init, from the CLI) stops its daemons on SIGTERM before it exits", async () => {
    const b = await startInit("egress", "routes: []\n", [path.join(cliDir, "dist", "bottle.mjs"), "daemon", "init"])
    await b.waitFor(/bottle-bundle: ready \(egress\)/)
    expect(await connects(b.port)).toBe(true)
    b.child.kill("SIGTERM")
    await b.exited
    expect(b.output()).toMatch(/bottle-bundle: SIGTERM: stopping egress/)
    expect(await connects(b.port), "no orphaned egress daemon still listening").toBe(false)
  }, 30_000)

  it("a crashed daemon is logged, the status turns unhealthy, and it is not restarted", async () => {
    const b = await startInit("egress", "routes:\n  - host: 10.0.0.1\n")
    await b.waitFor(/bottle-bundle: unhealthy: daemon egress exited \(code \d+\); not restarting/)
    expect(fs.readFileSync(b.statusFile, "utf8")).toMatch(/^unhealthy: daemon egress exited/)
    await new Promise((r) => setTimeout(r, 1500))
    expect(b.child.exitCode, "init stays up to report").toBeNull()
    expect(b.output().match(/unhealthy/g)?.length, "one crash, no restart loop").toBe(1)
    expect(b.output()).not.toMatch(/ready/)
  }, 30_000)

  it("a daemon that cannot start (git-gate without its config) makes the bundle unhealthy, naming it, never ready", async () => {
    const b = await startInit("egress,git-gate", "routes: []\n")
    await b.waitFor(/bottle-bundle: unhealthy: daemon git-gate exited \(code 1\); not restarting/)
    expect(b.output()).toMatch(/git-gate: .*gate\.json/)
    expect(fs.readFileSync(b.statusFile, "utf8")).toMatch(/^unhealthy/)
    expect(b.output()).not.toMatch(/bottle-bundle: ready/)
  }, 30_000)

  it("links V8's compile cache, warmed as root, for the uid the bundle runs as", () => {
    const warmed = fs.mkdtempSync(path.join(os.tmpdir(), "bb-v8-warm-"))
    fs.mkdirSync(path.join(warmed, "v22.23.3-x64-7e0ba801-0"))
    fs.writeFileSync(path.join(warmed, "v22.23.3-x64-7e0ba801-0", "217e5cfa"), "cache")
    expect(compileCacheForUid(warmed, 0)).toBe(warmed)
    expect(compileCacheForUid(undefined, 1000)).toBeUndefined()
    const root = compileCacheForUid(warmed, 1000)!
    expect(root).not.toBe(warmed)
    expect(fs.readdirSync(root)).toEqual(["v22.23.3-x64-7e0ba801-1000"])
    expect(fs.readFileSync(path.join(root, "v22.23.3-x64-7e0ba801-1000", "217e5cfa"), "utf8")).toBe("cache")
    // Nowhere to write the links: the setting stays as it was.
    expect(compileCacheForUid(warmed, 1000, path.join(warmed, "missing", "dir"))).toBe(warmed)
  })
})
