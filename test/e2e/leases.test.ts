/**
 * Two state roots on one real engine (two users, two CI jobs, BOTTLE_STATE_DIR set differently),
 * with a foreign network already on the pool's first subnet: bottles of the SAME slug start from
 * both roots at once, get distinct free subnets and distinct names; `ls`, `cleanup` and `stop` in
 * one root leave the other's bottle running. (Before leases held against the engine, the second
 * start died on the engine's raw "Pool overlaps with other one on this address space", and a
 * `cleanup` from a root without that slug removed the other root's live bottle.)
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bottleNames } from "../../src/programs/bottleNames.ts"
import { baseEnv, cli, cliSpawn, docker, ensureBuilt, labelled, tempDir } from "./support.ts"

const slug = `lease-${crypto.randomBytes(3).toString("hex")}`
const foreign = `bb-e2e-foreign-${crypto.randomBytes(3).toString("hex")}`
const FIRST = "10.213.0.0/24"

const manifest = `
agents:
  e2e:
    bottle: box
bottles:
  box: {}
`

let cwd = ""
const roots = { a: "", b: "", c: "" }
const envOf = (root: string) => baseEnv({ BOTTLE_STATE_DIR: root })

const planOf = (root: string) =>
  JSON.parse(fs.readFileSync(path.join(root, "bottles", slug, "plan.json"), "utf8")) as { network: { subnet: string; bundleIp: string; internal: string } }
const subnetOf = (network: string) => docker(["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", network]).stdout.trim()
const running = (container: string) => docker(["inspect", "--format", "{{.State.Running}}", container]).stdout.trim() === "true"
const lsStatus = (root: string) => {
  const r = cli(["ls", "--json"], { cwd, env: envOf(root) })
  expect(r.code, r.stderr).toBe(0)
  return (JSON.parse(r.stdout) as Array<{ slug: string; status: string }>).find((x) => x.slug === slug)?.status
}

/** Runs `bottle start` from each root at the same time; resolves with each one's exit and output. */
const startAll = (rs: ReadonlyArray<string>) =>
  Promise.all(rs.map((root) => {
    const child = cliSpawn(["start", "e2e", "--yes", "--detach", "--name", slug], { cwd, env: envOf(root) })
    return new Promise<{ code: number | null; output: string }>((resolve) => child.on("exit", (code) => resolve({ code, output: child.output() })))
  }))

beforeAll(() => {
  ensureBuilt()
  cwd = tempDir("bb-leases-cwd-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
  roots.a = tempDir("bb-leases-a-")
  roots.b = tempDir("bb-leases-b-")
  roots.c = tempDir("bb-leases-c-")
  // Someone else's network on the pool's first subnet. (If a leftover already holds it, the
  // create fails, and the subnet is just as taken.)
  const made = docker(["network", "create", "--subnet", FIRST, "--label", "bot-bottle.e2e=1", foreign])
  if (made.code !== 0) expect(made.stderr).toMatch(/overlaps/i)
})

afterAll(() => {
  for (const root of [roots.a, roots.b]) if (root) cli(["stop", slug, "--purge"], { cwd, env: envOf(root) })
  // Whatever a failed assertion left: every object carrying this slug, and the foreign network.
  for (const line of labelled(slug)) {
    const [kind, name] = line.split(" ")
    docker(kind === "container" ? ["rm", "-f", name!] : [kind!, "rm", name!])
  }
  docker(["network", "rm", foreign])
})

describe("leases and names across state roots, on a shared engine", () => {
  it("the same slug starts from two roots at once: distinct free subnets, distinct names, both running", async () => {
    const results = await startAll([roots.a, roots.b])
    for (const r of results) expect(r.code, r.output).toBe(0)
    const [a, b] = [planOf(roots.a), planOf(roots.b)]
    expect(a.network.subnet).not.toBe(b.network.subnet)
    expect([a.network.subnet, b.network.subnet]).not.toContain(FIRST)
    const [na, nb] = [bottleNames(roots.a, slug), bottleNames(roots.b, slug)]
    expect(na.agent).not.toBe(nb.agent)
    // What the engine really has matches each plan.
    expect(subnetOf(na.internalNetwork)).toBe(a.network.subnet)
    expect(subnetOf(nb.internalNetwork)).toBe(b.network.subnet)
    for (const c of [na.agent, na.bundle, nb.agent, nb.bundle]) expect(running(c), c).toBe(true)
    expect(lsStatus(roots.a)).toBe("running")
    expect(lsStatus(roots.b)).toBe("running")
  })

  it("`bottle cleanup` from a third root (which has no such bottle) touches neither", () => {
    const dry = cli(["cleanup", "--dry-run"], { cwd, env: envOf(roots.c) })
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).not.toContain(slug)
    const r = cli(["cleanup"], { cwd, env: envOf(roots.c) })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).not.toContain(slug)
    for (const root of [roots.a, roots.b]) {
      const n = bottleNames(root, slug)
      for (const c of [n.agent, n.bundle]) expect(running(c), c).toBe(true)
    }
  })

  it("`bottle stop` in one root removes its bottle only; the other keeps running, and its cleanup keeps it too", () => {
    const stop = cli(["stop", slug], { cwd, env: envOf(roots.a) })
    expect(stop.code, stop.stderr).toBe(0)
    const [na, nb] = [bottleNames(roots.a, slug), bottleNames(roots.b, slug)]
    const left = labelled(slug)
    for (const name of [na.agent, na.bundle, na.internalNetwork, na.egressNetwork]) expect(left.join("\n")).not.toContain(name)
    for (const c of [nb.agent, nb.bundle]) expect(running(c), c).toBe(true)
    expect(lsStatus(roots.a)).toBe("stopped")
    expect(lsStatus(roots.b)).toBe("running")
    // Root A's bottle is stopped but still has state: its cleanup removes nothing of B's either.
    const r = cli(["cleanup"], { cwd, env: envOf(roots.a) })
    expect(r.code, r.stderr).toBe(0)
    for (const c of [nb.agent, nb.bundle]) expect(running(c), c).toBe(true)
  })

  it("`bottle stop --purge` in the other root removes the rest: nothing carrying the slug is left (but root A's kept volumes)", () => {
    const stop = cli(["stop", slug, "--purge"], { cwd, env: envOf(roots.b) })
    expect(stop.code, stop.stderr).toBe(0)
    const volumesOfA = Object.values(bottleNames(roots.a, slug).volumes)
    expect(labelled(slug).filter((l) => !volumesOfA.some((v) => l === `volume ${v}`))).toEqual([])
    const purgeA = cli(["stop", slug, "--purge"], { cwd, env: envOf(roots.a) })
    expect(purgeA.code, purgeA.stderr).toBe(0)
    expect(labelled(slug)).toEqual([])
  })
})
