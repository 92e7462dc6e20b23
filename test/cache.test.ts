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
})
