/**
 * The live StateStore on a temp dir: leases (idempotent, distinct, bounded, released), plans
 * that peek without writing, bottle dirs kept on success and removed on failure, and a real
 * race between processes proving that lease allocation is atomic (O_EXCL), not read-then-write:
 * distinct slugs get distinct indices, and one slug taken by many at once gets one index.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import { make } from "../src/layers/StateStore.ts"

const tempRoot = () => fs.mkdtempSync(path.join(os.tmpdir(), "bb-state-test-"))
/** The index files of a pool (the owner records live beside them, in by-slug/). */
const leaseFiles = (root: string, pool: string) => {
  const dir = path.join(root, "leases", pool)
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d+$/.test(f)).sort() : []
}
const ownerRecord = (root: string, pool: string, slug: string) => {
  const file = path.join(root, "leases", pool, "by-slug", slug)
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined
}

describe("StateStore leases", () => {
  it.effect("takeLease is idempotent per slug", () =>
    Effect.gen(function*() {
      const root = tempRoot()
      const store = make(root)
      const a = yield* store.takeLease("subnet", 8, "alpha")
      const again = yield* store.takeLease("subnet", 8, "alpha")
      assert.deepStrictEqual(again, a)
      assert.deepStrictEqual(leaseFiles(root, "subnet"), [String(a.index)], "one lease file, not two")
      assert.strictEqual(fs.readFileSync(path.join(root, "leases/subnet", String(a.index)), "utf8"), "alpha")
    }))

  it.effect("distinct slugs get distinct indices, lowest free first", () =>
    Effect.gen(function*() {
      const store = make(tempRoot())
      const leases = yield* Effect.forEach(["a", "b", "c"], (slug) => store.takeLease("subnet", 8, slug))
      assert.deepStrictEqual(leases.map((l) => l.index), [0, 1, 2])
      assert.deepStrictEqual(leases.map((l) => l.slug), ["a", "b", "c"])
      // Pools are independent.
      assert.strictEqual((yield* store.takeLease("loopback", 8, "c")).index, 0)
    }))

  it.effect("a full pool fails with Exhausted", () =>
    Effect.gen(function*() {
      const store = make(tempRoot())
      yield* store.takeLease("subnet", 2, "a")
      yield* store.takeLease("subnet", 2, "b")
      const err = yield* Effect.flip(store.takeLease("subnet", 2, "c"))
      assert.strictEqual(err.reason._tag, "Exhausted")
      assert.include(err.message, "subnet")
      // A slug that already holds a lease still gets it back from a full pool.
      assert.strictEqual((yield* store.takeLease("subnet", 2, "b")).index, 1)
    }))

  it.effect("a scoped lease is released when its scope closes, unless keepIf says something kept is bound to it", () =>
    Effect.gen(function*() {
      const root = tempRoot()
      const store = make(root)
      // Nothing kept: released, however the scope ends.
      yield* Effect.scoped(store.lease("subnet", 8, "plain", { keepIf: Effect.succeed(false) }))
      yield* Effect.scoped(store.lease("subnet", 8, "none"))
      assert.deepStrictEqual(leaseFiles(root, "subnet"), [])
      // Kept (a stopped machine bound to the address): the next lease of the slug is the same index.
      let kept = true
      const first = yield* Effect.scoped(store.lease("subnet", 8, "vm", { keepIf: Effect.sync(() => kept) }))
      yield* store.takeLease("subnet", 8, "other")
      const again = yield* Effect.scoped(store.lease("subnet", 8, "vm", { keepIf: Effect.sync(() => kept) }))
      assert.strictEqual(again.index, first.index, "the resumed bottle gets its address back")
      assert.strictEqual(ownerRecord(root, "subnet", "vm"), String(first.index))
      // Once nothing is kept (purged), releaseLeases frees it.
      kept = false
      yield* store.releaseLeases("vm")
      assert.strictEqual(ownerRecord(root, "subnet", "vm"), undefined)
    }))

  it.effect("releaseLeases frees every lease of a slug (in every pool), and only those", () =>
    Effect.gen(function*() {
      const store = make(tempRoot())
      yield* store.takeLease("subnet", 8, "a")
      yield* store.takeLease("subnet", 8, "b")
      yield* store.takeLease("loopback", 8, "a")
      yield* store.releaseLeases("a")
      assert.deepStrictEqual(yield* store.leasesOf("a"), [])
      assert.deepStrictEqual((yield* store.allLeases).map((l) => `${l.pool}#${l.index}=${l.slug}`), ["subnet#1=b"])
      // The freed index is reused.
      assert.strictEqual((yield* store.takeLease("subnet", 8, "c")).index, 0)
      // Releasing a slug with no leases (or an empty store) is not an error.
      yield* store.releaseLeases("nobody")
      yield* make(tempRoot()).releaseLeases("nobody")
    }))

  it.effect("peekLease shows what takeLease would give, and writes nothing", () =>
    Effect.gen(function*() {
      const root = tempRoot()
      const store = make(root)
      assert.strictEqual(yield* store.peekLease("subnet", 8, "a"), 0)
      assert.isFalse(fs.existsSync(path.join(root, "leases")), "no lease dir created")
      yield* store.takeLease("subnet", 8, "a")
      assert.strictEqual(yield* store.peekLease("subnet", 8, "a"), 0, "a slug's own lease")
      assert.strictEqual(yield* store.peekLease("subnet", 8, "b"), 1, "the lowest free index")
      assert.strictEqual(yield* store.peekLease("subnet", 8, "b"), 1, "still: peeking took nothing")
      assert.deepStrictEqual(leaseFiles(root, "subnet"), ["0"])
      const full = yield* Effect.flip(store.peekLease("subnet", 1, "b"))
      assert.strictEqual(full.reason._tag, "Exhausted")
    }))

  it.effect("avoid: indices to skip; a slug holding one gives it up for another", () =>
    Effect.gen(function*() {
      const root = tempRoot()
      const store = make(root)
      assert.strictEqual((yield* store.takeLease("subnet", 8, "a", { avoid: new Set([0, 1]) })).index, 2)
      assert.strictEqual((yield* store.takeLease("subnet", 8, "a")).index, 2, "re-taken as it is")
      assert.strictEqual((yield* store.takeLease("subnet", 8, "a", { avoid: new Set([2]) })).index, 0, "moved off an avoided index")
      assert.deepStrictEqual(leaseFiles(root, "subnet"), ["0"], "the avoided one is given back")
      assert.strictEqual(ownerRecord(root, "subnet", "a"), "0")
      const full = yield* Effect.flip(store.takeLease("subnet", 2, "b", { avoid: new Set([1]) }))
      assert.strictEqual(full.reason._tag, "Exhausted")
    }))

  it.effect("a lease left by a cut-short take (no owner record) is adopted; a stale owner record is replaced", () =>
    Effect.gen(function*() {
      const root = tempRoot()
      const store = make(root)
      const dir = path.join(root, "leases", "subnet")
      fs.mkdirSync(dir, { recursive: true })
      // As a take killed between its index and its owner record (or a version before owner records) leaves it.
      fs.writeFileSync(path.join(dir, "3"), "a")
      assert.strictEqual((yield* store.takeLease("subnet", 8, "a")).index, 3)
      assert.deepStrictEqual(leaseFiles(root, "subnet"), ["3"])
      assert.strictEqual(ownerRecord(root, "subnet", "a"), "3")
      // An owner record naming an index the slug does not hold (edited by hand, or freed by an older version).
      fs.rmSync(path.join(dir, "3"))
      fs.writeFileSync(path.join(dir, "1"), "b")
      fs.writeFileSync(path.join(dir, "by-slug", "a"), "1")
      assert.strictEqual((yield* store.takeLease("subnet", 8, "a")).index, 0, "never b's index")
      assert.strictEqual(fs.readFileSync(path.join(dir, "1"), "utf8"), "b")
      assert.strictEqual(ownerRecord(root, "subnet", "a"), "0")
    }))

  it.effect("a scoped lease that found the slug already holding one leaves it when its scope closes", () =>
    Effect.gen(function*() {
      const root = tempRoot()
      const store = make(root)
      // Another launch of the slug holds it (or a crashed one left it): not this scope's to free.
      const held = yield* store.takeLease("subnet", 8, "a")
      const again = yield* Effect.exit(Effect.scoped(store.lease("subnet", 8, "a").pipe(Effect.andThen(Effect.fail("boom")))))
      assert.isTrue(Exit.isFailure(again))
      assert.deepStrictEqual(yield* store.leasesOf("a"), [held])
      assert.strictEqual(ownerRecord(root, "subnet", "a"), String(held.index))
    }))

  it.effect("the scoped lease is released when its scope closes, on success and on failure", () =>
    Effect.gen(function*() {
      const root = tempRoot()
      const store = make(root)
      const held = yield* Effect.scoped(Effect.gen(function*() {
        const l = yield* store.lease("subnet", 8, "a")
        assert.deepStrictEqual(leaseFiles(root, "subnet"), [String(l.index)], "held inside the scope")
        return l
      }))
      assert.strictEqual(held.index, 0)
      assert.deepStrictEqual(leaseFiles(root, "subnet"), [])
      assert.strictEqual(ownerRecord(root, "subnet", "a"), undefined)
      const exit = yield* Effect.exit(Effect.scoped(store.lease("subnet", 8, "a").pipe(Effect.andThen(Effect.fail("boom")))))
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual(leaseFiles(root, "subnet"), [])
    }))
})

describe("StateStore bottle dirs", () => {
  it.effect("createBottleDir: a second claim on the same name fails and does not delete the first one's dir", () =>
    Effect.gen(function*() {
      const store = make(tempRoot())
      yield* Effect.scoped(store.createBottleDir("alpha"))
      yield* store.writeFile("alpha", "plan.json", "{}")
      const exit = yield* Effect.exit(Effect.scoped(store.createBottleDir("alpha").pipe(Effect.andThen(Effect.fail("launch failed")))))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "already exists")
      assert.strictEqual(yield* store.readFile("alpha", "plan.json"), "{}", "the first owner's state is intact")
    }))

  it.effect("createBottleDir: kept when the scope succeeds, mode 0700", () =>
    Effect.gen(function*() {
      const store = make(tempRoot())
      const dir = yield* Effect.scoped(store.createBottleDir("alpha"))
      assert.strictEqual(dir, store.bottleDir("alpha"))
      assert.isTrue(fs.statSync(dir).isDirectory())
      assert.strictEqual(fs.statSync(dir).mode & 0o777, 0o700, "the dir holds the bottle CA key")
      assert.isTrue(yield* store.exists("alpha"))
      assert.deepStrictEqual(yield* store.list, ["alpha"])
    }))

  it.effect("createBottleDir: removed, with what was written into it, when the scope fails", () =>
    Effect.gen(function*() {
      const store = make(tempRoot())
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        yield* store.createBottleDir("alpha")
        yield* store.writeFile("alpha", "ca/key.pem", "not really a key")
        return yield* Effect.fail("launch failed")
      })))
      assert.isTrue(Exit.isFailure(exit))
      assert.isFalse(fs.existsSync(store.bottleDir("alpha")))
      assert.isFalse(yield* store.exists("alpha"))
      assert.deepStrictEqual(yield* store.list, [])
    }))

  it.effect("files are written 0600 and read back; JSON is decoded with its Schema", () =>
    Effect.gen(function*() {
      const store = make(tempRoot())
      yield* Effect.scoped(store.createBottleDir("alpha"))
      const file = yield* store.writeFile("alpha", "sub/plan.txt", "hello")
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.strictEqual(yield* store.readFile("alpha", "sub/plan.txt"), "hello")
      yield* store.writeJson("alpha", "meta.json", { n: 1 })
      assert.deepStrictEqual(yield* store.readJson("alpha", "meta.json", Schema.Struct({ n: Schema.Number })), { n: 1 })
      const corrupt = yield* Effect.flip(store.readJson("alpha", "meta.json", Schema.Struct({ n: Schema.String })))
      assert.strictEqual(corrupt.reason._tag, "Corrupt")
      const missing = yield* Effect.flip(store.readFile("nosuch", "plan.json"))
      assert.strictEqual(missing.reason._tag, "NotFound")
      assert.include(missing.message, "nosuch")
      yield* store.removeBottle("alpha")
      assert.isFalse(yield* store.exists("alpha"))
    }))
})

/** Runs a takeLease contender; resolves once it has printed "ready". */
const contender = (root: string, slug: string) => {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, "fixtures/takeLease.ts"), root, "subnet", "8", slug], {
    stdio: ["pipe", "pipe", "pipe"]
  })
  let out = ""
  let err = ""
  child.stderr.on("data", (d: Buffer) => (err += d.toString()))
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString()
      if (out.startsWith("ready\n")) resolve()
    })
    child.on("exit", (code) => reject(new Error(`${slug} exited ${code} before ready: ${err}`)))
  })
  const done = new Promise<number>((resolve, reject) => {
    child.on("exit", (code) => {
      const index = out.split("\n")[1]
      if (code === 0 && index !== undefined && /^\d+$/.test(index)) resolve(Number(index))
      else reject(new Error(`${slug} exited ${code}: ${out} ${err}`))
    })
  })
  return { child, ready, done }
}

describe("StateStore lease race", () => {
  it("8 processes taking leases at the same instant all get distinct indices", async () => {
    const root = tempRoot()
    const slugs = Array.from({ length: 8 }, (_, i) => `racer-${i}`)
    const racers = slugs.map((slug) => contender(root, slug))
    try {
      await Promise.all(racers.map((r) => r.ready))
      const startAt = String(Date.now() + 150)
      for (const r of racers) r.child.stdin.end(`${startAt}\n`)
      const indices = await Promise.all(racers.map((r) => r.done))
      assert.sameMembers(indices, [0, 1, 2, 3, 4, 5, 6, 7], `indices: ${indices.join(",")}`)
      // Each lease file names the racer that won it.
      const owners = Object.fromEntries(slugs.map((slug, i) => [indices[i]!, slug]))
      for (const f of leaseFiles(root, "subnet")) {
        assert.strictEqual(fs.readFileSync(path.join(root, "leases/subnet", f), "utf8"), owners[Number(f)])
      }
    } finally {
      for (const r of racers) r.child.kill("SIGKILL")
    }
  }, 60_000)

  it("8 processes taking a lease for the same slug at the same instant all get the one same index", async () => {
    const root = tempRoot()
    // Another slug first, so the winner's index is not simply the first one tried.
    await Effect.runPromise(make(root).takeLease("subnet", 8, "other"))
    const racers = Array.from({ length: 8 }, () => contender(root, "twin"))
    try {
      await Promise.all(racers.map((r) => r.ready))
      const startAt = String(Date.now() + 150)
      for (const r of racers) r.child.stdin.end(`${startAt}\n`)
      const indices = await Promise.all(racers.map((r) => r.done))
      assert.deepStrictEqual(new Set(indices).size, 1, `indices: ${indices.join(",")}`)
      const [index] = indices
      const held = leaseFiles(root, "subnet").filter((f) => fs.readFileSync(path.join(root, "leases/subnet", f), "utf8") === "twin")
      assert.deepStrictEqual(held, [String(index)], "the slug holds exactly one index")
      assert.strictEqual(ownerRecord(root, "subnet", "twin"), String(index))
      assert.deepStrictEqual(fs.readdirSync(path.join(root, "leases/subnet/by-slug")).sort(), ["other", "twin"], "no temp file left")
    } finally {
      for (const r of racers) r.child.kill("SIGKILL")
    }
  }, 60_000)
})
