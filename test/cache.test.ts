/**
 * The live Cache on a temp dir: an artifact appears only by an atomic rename of a file written
 * inside the cache (never a copy a crash could leave half-written), can be found again, and
 * removed. Keys are made filesystem-safe without escaping the cache.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { cacheRoot, make } from "../src/layers/Cache.ts"

const tempRoot = () => fs.mkdtempSync(path.join(os.tmpdir(), "bb-cache-test-"))

describe("Cache", () => {
  it.effect("put moves the temp file in by rename (same inode, source gone); get finds it", () =>
    Effect.gen(function*() {
      const root = tempRoot()
      const cache = make(root)
      assert.isUndefined(yield* cache.get("smolmachine", "sha256:abc"))
      const tmp = yield* cache.tempPath("smolmachine")
      assert.isTrue(tmp.startsWith(root + path.sep), "temp paths are inside the cache: same filesystem")
      assert.notStrictEqual(tmp, yield* cache.tempPath("smolmachine"))
      fs.writeFileSync(tmp, "artifact")
      const inode = fs.statSync(tmp).ino
      const stored = yield* cache.put("smolmachine", "sha256:abc", tmp)
      assert.isFalse(fs.existsSync(tmp), "moved, not copied")
      assert.strictEqual(fs.statSync(stored).ino, inode, "a rename keeps the inode; a copy would not")
      assert.strictEqual(fs.readFileSync(stored, "utf8"), "artifact")
      assert.strictEqual(yield* cache.get("smolmachine", "sha256:abc"), stored)
    }))

  it.effect("put replaces an existing entry atomically", () =>
    Effect.gen(function*() {
      const cache = make(tempRoot())
      const first = yield* cache.tempPath("ns")
      fs.writeFileSync(first, "v1")
      const stored = yield* cache.put("ns", "k", first)
      const second = yield* cache.tempPath("ns")
      fs.writeFileSync(second, "v2")
      assert.strictEqual(yield* cache.put("ns", "k", second), stored)
      assert.strictEqual(fs.readFileSync(stored, "utf8"), "v2")
    }))

  it.effect("remove deletes the entry; removing a missing one is fine", () =>
    Effect.gen(function*() {
      const cache = make(tempRoot())
      const tmp = yield* cache.tempPath("ns")
      fs.writeFileSync(tmp, "x")
      const stored = yield* cache.put("ns", "k", tmp)
      yield* cache.remove("ns", "k")
      assert.isFalse(fs.existsSync(stored))
      assert.isUndefined(yield* cache.get("ns", "k"))
      yield* cache.remove("ns", "k")
    }))

  it.effect("put of a file that does not exist fails with CacheError and stores nothing", () =>
    Effect.gen(function*() {
      const cache = make(tempRoot())
      const err = yield* Effect.flip(cache.put("ns", "k", "/nonexistent/bb-cache-file"))
      assert.strictEqual(err._tag, "CacheError")
      assert.isUndefined(yield* cache.get("ns", "k"))
    }))

  it.effect("keys with / and : stay inside their namespace dir", () =>
    Effect.gen(function*() {
      const root = tempRoot()
      const cache = make(root)
      const tmp = yield* cache.tempPath("images/smol")
      fs.writeFileSync(tmp, "x")
      const stored = yield* cache.put("images/smol", "../../escape:latest", tmp)
      assert.strictEqual(path.dirname(path.dirname(stored)), root)
      assert.notInclude(path.basename(stored), "/")
      assert.strictEqual(yield* cache.get("images/smol", "../../escape:latest"), stored)
    }))

  it("the root follows BOTTLE_CACHE_DIR, then XDG_CACHE_HOME", () => {
    assert.strictEqual(cacheRoot({ BOTTLE_CACHE_DIR: "/c" }), "/c")
    assert.strictEqual(cacheRoot({ XDG_CACHE_HOME: "/x" }), "/x/bot-bottle")
  })

  const putText = (cache: ReturnType<typeof make>, key: string, text: string) =>
    Effect.gen(function*() {
      const tmp = yield* cache.tempPath("smolmachine")
      fs.writeFileSync(tmp, text)
      return yield* cache.put("smolmachine", key, tmp)
    })

  it.effect("a truncated or grown entry (size differs from the record) is removed and reported missing", () =>
    Effect.gen(function*() {
      const cache = make(tempRoot())
      const stored = yield* putText(cache, "img1", "artifact-bytes")
      fs.appendFileSync(stored, "x")
      assert.isUndefined(yield* cache.get("smolmachine", "img1"))
      assert.isFalse(fs.existsSync(stored), "a corrupt entry is removed, so it is rebuilt")
    }))

  it.effect("an entry changed in place at the same size fails its digest and is removed", () =>
    Effect.gen(function*() {
      const cache = make(tempRoot())
      const stored = yield* putText(cache, "img1", "artifact-bytes")
      fs.writeFileSync(stored, "ARTIFACT-BYTES")
      fs.utimesSync(stored, new Date(), new Date(Date.now() + 5000))
      assert.isUndefined(yield* cache.get("smolmachine", "img1"))
      // An intact one passes (and its check is recorded, so the next hit is a stat only).
      const again = yield* putText(cache, "img1", "artifact-bytes")
      assert.strictEqual(yield* cache.get("smolmachine", "img1"), again)
    }))

  it.effect("an entry without its record (a crash between the renames) is corrupt", () =>
    Effect.gen(function*() {
      const cache = make(tempRoot())
      const stored = yield* putText(cache, "img1", "a")
      fs.rmSync(`${stored}.meta.json`)
      assert.isUndefined(yield* cache.get("smolmachine", "img1"))
    }))

  it.effect("bounded: past maxBytes, the least recently used entries go first, never the one just put", () =>
    Effect.gen(function*() {
      const cache = make(tempRoot(), { maxBytes: 25 })
      yield* putText(cache, "a", "0123456789")
      yield* putText(cache, "b", "0123456789")
      // Using "a" makes "b" the least recently used.
      yield* Effect.sync(() => {
        const t = Date.now() + 10
        while (Date.now() < t) { /* a later use time */ }
      })
      assert.isDefined(yield* cache.get("smolmachine", "a"))
      yield* putText(cache, "c", "0123456789")
      assert.isUndefined(yield* cache.get("smolmachine", "b"), "evicted")
      assert.isDefined(yield* cache.get("smolmachine", "a"))
      assert.isDefined(yield* cache.get("smolmachine", "c"))
    }))

  it.live("lock is exclusive: a second holder waits until the first releases", () =>
    Effect.gen(function*() {
      const cache = make(tempRoot())
      const order: Array<string> = []
      const holder = (name: string) =>
        Effect.scoped(Effect.gen(function*() {
          yield* cache.lock("smolmachine", "img")
          order.push(`${name} in`)
          yield* Effect.sleep(100)
          order.push(`${name} out`)
        }))
      yield* Effect.all([holder("a"), holder("b")], { concurrency: 2 })
      assert.deepStrictEqual(order.map((o) => o.split(" ")[1]), ["in", "out", "in", "out"])
    }))

  it.live("a lock left by a process that died is taken over", () =>
    Effect.gen(function*() {
      const root = tempRoot()
      const cache = make(root)
      fs.mkdirSync(path.join(root, "smolmachine"), { recursive: true })
      // A pid that is not running (pid_max is far below this).
      fs.writeFileSync(path.join(root, "smolmachine", "img.lock"), "99999999")
      yield* Effect.scoped(cache.lock("smolmachine", "img")).pipe(Effect.timeout("5 seconds"))
      assert.isFalse(fs.existsSync(path.join(root, "smolmachine", "img.lock")), "released")
    }))

  it.effect("clear removes every entry of the namespace; entries lists them", () =>
    Effect.gen(function*() {
      const cache = make(tempRoot())
      yield* putText(cache, "a", "1")
      yield* putText(cache, "b", "22")
      assert.deepStrictEqual((yield* cache.entries).map((e) => [e.key, e.size]).sort(), [["a", 1], ["b", 2]])
      assert.lengthOf(yield* cache.clear("smolmachine"), 2)
      assert.deepStrictEqual(yield* cache.entries, [])
    }))
})
