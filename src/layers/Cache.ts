/**
 * Live Cache under $BOTTLE_CACHE_DIR, else $XDG_CACHE_HOME/bot-bottle, else ~/.cache/bot-bottle.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { Cache, CacheError } from "../services/Cache.ts"

export const cacheRoot = (env: Record<string, string | undefined> = process.env): string =>
  env["BOTTLE_CACHE_DIR"] ?? path.join(env["XDG_CACHE_HOME"] ?? path.join(os.homedir(), ".cache"), "bot-bottle")

const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_")

export const make = (root: string) => {
  const entry = (ns: string, key: string) => path.join(root, safe(ns), safe(key))
  const fail = (p: string) => (e: unknown) => new CacheError({ path: p, message: (e as Error).message })
  return Cache.of({
    root,
    get: (ns, key) =>
      Effect.try({ try: () => (fs.existsSync(entry(ns, key)) ? entry(ns, key) : undefined), catch: fail(entry(ns, key)) }),
    put: (ns, key, file) =>
      Effect.try({
        try: () => {
          fs.mkdirSync(path.join(root, safe(ns)), { recursive: true })
          fs.renameSync(file, entry(ns, key))
          return entry(ns, key)
        },
        catch: fail(entry(ns, key))
      }),
    tempPath: (ns) =>
      Effect.try({
        try: () => {
          const dir = path.join(root, safe(ns), ".tmp")
          fs.mkdirSync(dir, { recursive: true })
          return path.join(dir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`)
        },
        catch: fail(path.join(root, safe(ns)))
      }),
    remove: (ns, key) => Effect.try({ try: () => fs.rmSync(entry(ns, key), { force: true }), catch: fail(entry(ns, key)) })
  })
}

export const layer = Layer.sync(Cache, () => make(cacheRoot()))
export const layerAt = (root: string) => Layer.sync(Cache, () => make(root))
