/**
 * A path with symlinks resolved in its longest existing prefix, the rest appended as it is (a
 * part that does not exist yet cannot be a symlink yet). What two spellings of one place agree
 * on: the state root's id (bottleNames.ts) and mount_cwd's containment checks (workspace.ts).
 */
import * as fs from "node:fs"
import * as path from "node:path"

export const canonicalPath = (p: string): string => {
  const abs = path.resolve(p)
  const rest: Array<string> = []
  let dir = abs
  for (;;) {
    try {
      return path.join(fs.realpathSync(dir), ...rest)
    } catch {
      const parent = path.dirname(dir)
      if (parent === dir) return abs
      rest.unshift(path.basename(dir))
      dir = parent
    }
  }
}
