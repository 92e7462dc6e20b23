/**
 * Live Cache under $BOTTLE_CACHE_DIR, else $XDG_CACHE_HOME/bot-bottle, else ~/.cache/bot-bottle.
 *
 * Layout: `<root>/<namespace>/<key>` is the artifact, `<key>.meta.json` what was recorded when
 * it was published (size, sha256, the file's identity, last use), `<key>.lock` a producer's lock.
 *
 * Guarantees:
 * - an entry appears only by rename of a complete file written inside the cache (same
 *   filesystem), its record written (atomically) after it: a crash leaves no entry, or an entry
 *   without a record, which `get` treats as corrupt;
 * - `get` checks the recorded size every time, and the sha256 whenever the file is not the very
 *   file published (inode, size or mtime differ), so an artifact changed or truncated in place
 *   is removed and reported missing (rebuilt, never booted). Hashing a large artifact on every
 *   hit would break the hit path's budget: an in-place edit always moves the mtime;
 * - the cache holds at most `maxBytes` (BOTTLE_CACHE_MAX_BYTES, default 20 GiB): after a `put`,
 *   least recently used entries go first, never the one just put nor one being produced;
 * - `lock` is exclusive across processes (O_EXCL lock file holding the pid); a lock whose
 *   process is gone is taken over, so a crash cannot wedge the cache.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { Cache, type CacheEntry, CacheError } from "../services/Cache.ts"

export const cacheRoot = (env: Record<string, string | undefined> = process.env): string =>
  env["BOTTLE_CACHE_DIR"] ?? path.join(env["XDG_CACHE_HOME"] ?? path.join(os.homedir(), ".cache"), "bot-bottle")

export const DEFAULT_MAX_BYTES = 20 * 1024 ** 3

const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_")

interface Meta {
  readonly size: number
  readonly sha256: string
  readonly ino: number
  readonly mtimeMs: number
  readonly lastUsedMs: number
}

const sha256Of = (file: string): string => {
  const h = createHash("sha256")
  const fd = fs.openSync(file, "r")
  try {
    const buf = Buffer.allocUnsafe(1 << 20)
    let n: number
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n))
  } finally {
    fs.closeSync(fd)
  }
  return h.digest("hex")
}

const writeAtomic = (file: string, content: string) => {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  fs.writeFileSync(tmp, content, { mode: 0o600 })
  fs.renameSync(tmp, file)
}

const readMeta = (file: string): Meta | undefined => {
  try {
    const m = JSON.parse(fs.readFileSync(file, "utf8")) as Meta
    return typeof m.size === "number" && typeof m.sha256 === "string" ? m : undefined
  } catch {
    return undefined
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

export const make = (root: string, options: { readonly maxBytes?: number } = {}) => {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
  const entry = (ns: string, key: string) => path.join(root, safe(ns), safe(key))
  const metaOf = (file: string) => `${file}.meta.json`
  const lockOf = (file: string) => `${file}.lock`
  const fail = (p: string) => (e: unknown) => new CacheError({ path: p, message: (e as Error).message })
  const isLocked = (file: string) => {
    try {
      return alive(Number(fs.readFileSync(lockOf(file), "utf8")))
    } catch {
      return false
    }
  }
  const removeFiles = (file: string) => {
    fs.rmSync(file, { force: true })
    fs.rmSync(metaOf(file), { force: true })
  }

  const listEntries = (): Array<CacheEntry> => {
    if (!fs.existsSync(root)) return []
    const out: Array<CacheEntry> = []
    for (const ns of fs.readdirSync(root, { withFileTypes: true })) {
      if (!ns.isDirectory()) continue
      for (const f of fs.readdirSync(path.join(root, ns.name))) {
        if (!f.endsWith(".meta.json")) continue
        const file = path.join(root, ns.name, f.slice(0, -".meta.json".length))
        const meta = readMeta(path.join(root, ns.name, f))
        if (!meta || !fs.existsSync(file)) continue
        out.push({ namespace: ns.name, key: path.basename(file), path: file, size: meta.size, lastUsedMs: meta.lastUsedMs })
      }
    }
    return out.sort((a, b) => a.lastUsedMs - b.lastUsedMs)
  }

  /** Least recently used first, until the cache fits; `keep` and entries being produced stay. */
  const evict = (keep: string) => {
    const all = listEntries()
    let total = all.reduce((n, e) => n + e.size, 0)
    for (const e of all) {
      if (total <= maxBytes) break
      if (e.path === keep || isLocked(e.path)) continue
      removeFiles(e.path)
      total -= e.size
    }
  }

  return Cache.of({
    root,
    get: (ns, key) =>
      Effect.try({
        try: () => {
          const file = entry(ns, key)
          let st: fs.Stats
          try {
            st = fs.statSync(file)
          } catch {
            return undefined
          }
          const meta = readMeta(metaOf(file))
          const corrupt = () => {
            removeFiles(file)
            return undefined
          }
          if (!meta || st.size !== meta.size) return corrupt()
          const same = st.ino === meta.ino && st.mtimeMs === meta.mtimeMs
          if (!same && sha256Of(file) !== meta.sha256) return corrupt()
          writeAtomic(metaOf(file), JSON.stringify({ ...meta, ino: st.ino, mtimeMs: st.mtimeMs, lastUsedMs: Date.now() }))
          return file
        },
        catch: fail(entry(ns, key))
      }),
    put: (ns, key, file) =>
      Effect.try({
        try: () => {
          const dest = entry(ns, key)
          fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 })
          const sha256 = sha256Of(file)
          // The old record goes first: between the two renames the entry has none (corrupt,
          // rebuilt), never the old record over the new file.
          fs.rmSync(metaOf(dest), { force: true })
          fs.renameSync(file, dest)
          const st = fs.statSync(dest)
          writeAtomic(metaOf(dest), JSON.stringify({ size: st.size, sha256, ino: st.ino, mtimeMs: st.mtimeMs, lastUsedMs: Date.now() } satisfies Meta))
          evict(dest)
          return dest
        },
        catch: fail(entry(ns, key))
      }),
    tempPath: (ns) =>
      Effect.try({
        try: () => {
          const dir = path.join(root, safe(ns), ".tmp")
          fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
          return path.join(dir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`)
        },
        catch: fail(path.join(root, safe(ns)))
      }),
    remove: (ns, key) => Effect.try({ try: () => removeFiles(entry(ns, key)), catch: fail(entry(ns, key)) }),
    lock: (ns, key) => {
      const file = lockOf(entry(ns, key))
      const tryTake = Effect.try({
        try: () => {
          fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
          try {
            fs.writeFileSync(file, String(process.pid), { flag: "wx", mode: 0o600 })
            return true
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
          }
          let holder = NaN
          try {
            holder = Number(fs.readFileSync(file, "utf8"))
          } catch {
            return false
          }
          // A holder that died (or a lock file with no pid yet written for long) is taken over:
          // rename to a private name first, so two takers cannot both remove a fresh lock.
          if (Number.isInteger(holder) && holder > 0 && !alive(holder)) {
            const stale = `${file}.stale.${process.pid}`
            try {
              fs.renameSync(file, stale)
              if (Number(fs.readFileSync(stale, "utf8")) === holder) fs.rmSync(stale, { force: true })
              else fs.renameSync(stale, file)
            } catch {
              // someone else took it over first
            }
          }
          return false
        },
        catch: fail(file)
      })
      const take: Effect.Effect<void, CacheError> = Effect.gen(function*() {
        while (!(yield* tryTake)) yield* Effect.sleep(50)
      })
      return Effect.acquireRelease(take, () =>
        Effect.sync(() => {
          try {
            if (Number(fs.readFileSync(file, "utf8")) === process.pid) fs.rmSync(file, { force: true })
          } catch {
            // already gone
          }
        }))
    },
    entries: Effect.try({ try: listEntries, catch: fail(root) }),
    clear: (ns) =>
      Effect.try({
        try: () => {
          const removed = listEntries().filter((e) => e.namespace === safe(ns) && !isLocked(e.path))
          for (const e of removed) removeFiles(e.path)
          // Temp files of producers that are gone (a live one's stay: it is still writing them).
          const tmp = path.join(root, safe(ns), ".tmp")
          for (const f of fs.existsSync(tmp) ? fs.readdirSync(tmp) : []) {
            if (!alive(Number(f.split("-")[0]))) fs.rmSync(path.join(tmp, f), { recursive: true, force: true })
          }
          return removed
        },
        catch: fail(root)
      })
  })
}

const maxBytesFromEnv = (): number | undefined => {
  const v = Number(process.env["BOTTLE_CACHE_MAX_BYTES"])
  return Number.isFinite(v) && v > 0 ? v : undefined
}

export const layer = Layer.sync(Cache, () => {
  const maxBytes = maxBytesFromEnv()
  return make(cacheRoot(), maxBytes !== undefined ? { maxBytes } : {})
})
export const layerAt = (root: string, options: { readonly maxBytes?: number } = {}) => Layer.sync(Cache, () => make(root, options))
