/**
 * `bottle cp` and `bottle pull` refuse bad input with one line and a non-zero exit, before
 * touching any engine (no Docker here: CI runs these before dockerd).
 */
import { beforeAll, describe, expect, it } from "vitest"
import { bottleSync, lines, NO_ENGINE, prepareCli } from "./support/cli.ts"

let cli = ""
beforeAll(() => {
  cli = prepareCli()
}, 120_000)

describe("bottle cp / pull: bad input", () => {
  it("cp with no side (or both sides) in a bottle is one usage line, exit 2", () => {
    for (const args of [["cp", "./a", "./b"], ["cp", "one-1:a", "two-2:b"]]) {
      const r = bottleSync(cli, args, NO_ENGINE)
      expect(r.status).toBe(2)
      expect(lines(r.stderr)).toEqual(["bottle: bottle cp: exactly one side is <bottle>:<path> (e.g. bottle cp claude-1a2b3c:out.txt ./out.txt)"])
    }
  })

  it("cp and pull name an unknown bottle like every other command", () => {
    for (const args of [["cp", "nope-1:a.txt", "./a.txt"], ["cp", "./a.txt", "nope-1:a.txt"], ["pull", "nope-1"]]) {
      const r = bottleSync(cli, args, NO_ENGINE)
      expect(r.status).not.toBe(0)
      expect(lines(r.stderr)).toEqual([`bottle: no bottle named "nope-1" (see \`bottle ls\`)`])
    }
  })
})
