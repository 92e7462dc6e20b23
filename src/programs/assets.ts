/**
 * Where the package's own files are (agent-image/, bundle/, dist/), whether we run from the
 * bundled dist/bottle.mjs or from src/ under tests.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

let cached: string | undefined

export const packageRoot = (): string => {
  if (cached) return cached
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pj = path.join(dir, "package.json")
    if (fs.existsSync(pj) && (JSON.parse(fs.readFileSync(pj, "utf8")) as { name?: string }).name === "bot-bottle") {
      cached = dir
      return dir
    }
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error("bot-bottle: cannot find the package root (package.json)")
    dir = parent
  }
}

/** Replaced by the build (scripts/build.mjs); the bundled CLI runs where no package.json is. */
declare const __BOTTLE_VERSION__: string | undefined

export const packageVersion = (): string =>
  typeof __BOTTLE_VERSION__ === "string"
    ? __BOTTLE_VERSION__
    : (JSON.parse(fs.readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { version: string }).version
