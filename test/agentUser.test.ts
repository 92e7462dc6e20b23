/**
 * The agent user's uid/gid: the workspace owner's, never root's (src/programs/agentUser.ts),
 * carried by the plan and handed to the provisioning script as $8/$9, which edits `node`'s
 * passwd and group lines before anything is owned or run as `node`.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { agentIdsFor, workspaceOwner } from "../src/programs/agentUser.ts"
import { provisionArgv } from "../src/programs/launch.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { Recorder } from "./layers/Recorder.ts"
import * as RecordedState from "./layers/StateStore.ts"

describe("agentIdsFor", () => {
  it("gives the agent a host user's uid and gid", () => {
    expect(agentIdsFor({ uid: 1500, gid: 1500 })).toEqual({ uid: 1500, gid: 1500 })
    expect(agentIdsFor({ uid: 501, gid: 20 })).toEqual({ uid: 501, gid: 20 })
    expect(agentIdsFor({ uid: 1000, gid: 1000 })).toEqual({ uid: 1000, gid: 1000 })
  })
  it("never root: a root-owned workspace keeps the image's 1000:1000, a root group becomes 1000", () => {
    expect(agentIdsFor({ uid: 0, gid: 0 })).toEqual({ uid: 1000, gid: 1000 })
    expect(agentIdsFor({ uid: 0, gid: 1500 })).toEqual({ uid: 1000, gid: 1000 })
    expect(agentIdsFor({ uid: 1500, gid: 0 })).toEqual({ uid: 1500, gid: 1000 })
  })
  it("reads the owner of the cwd; an unreadable one counts as root's", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-owner-"))
    const st = fs.statSync(dir)
    expect(workspaceOwner(dir)).toEqual({ uid: st.uid, gid: st.gid })
    expect(workspaceOwner(path.join(dir, "missing"))).toEqual({ uid: 0, gid: 0 })
  })
})

const manifest = "agents:\n  dev:\n    bottle: box\nbottles:\n  box:\n    workspace: { copy_cwd: true }\n"
const planFor = (cwd: string) =>
  Effect.runPromise(Effect.gen(function*() {
    const loaded = yield* parseManifest(manifest, path.join(cwd, "bottle.yaml"), cwd)
    return yield* prepare({ loaded, agent: "dev", cwd, env: {} })
  }).pipe(Effect.provide(RecordedState.layerRecorded().pipe(Layer.provideMerge(Recorder.layer)))))

describe("the plan and the provisioning argv", () => {
  it("the plan carries the cwd owner's ids (absent for 1000:1000), the argv passes them as $8 $9", async () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-owner-cwd-"))
    const plan = await planFor(cwd)
    const expected = agentIdsFor(workspaceOwner(cwd))
    expect(plan.agentUser ?? { uid: 1000, gid: 1000 }).toEqual(expected)
    const argv = provisionArgv({ ...plan, agentUser: { uid: 1500, gid: 1501 } }, "/skills", true)
    // sh -c SCRIPT $0 $1 ...: $8 is at index 11.
    expect(argv.slice(11, 13)).toEqual(["1500", "1501"])
    const { agentUser: _, ...old } = plan
    expect(provisionArgv(old, "/skills", true).slice(11, 13)).toEqual(["1000", "1000"])
  })

  it("the script's id edit rewrites node's passwd and group lines only, before anything is owned as node", async () => {
    const script = provisionArgv(await planFor(fs.mkdtempSync(path.join(os.tmpdir(), "bb-owner-cwd-"))), "/s", true)[2]!
    // The edit, run on copies of the image's files (the script's paths swapped for them).
    const etc = fs.mkdtempSync(path.join(os.tmpdir(), "bb-etc-"))
    fs.writeFileSync(path.join(etc, "passwd"), "root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1000::/home/node:/bin/bash\nnodes:x:1001:1001::/x:/bin/sh\n")
    fs.writeFileSync(path.join(etc, "group"), "root:x:0:\ndialout:x:20:\nnode:x:1000:\n")
    const edit = /^if \[ "\$\(id -u node\)".*?^fi$/ms.exec(script)![0]
    expect(script.indexOf(edit)).toBeLessThan(script.indexOf("own \"$home\""))
    const r = spawnSync("sh", ["-c", `id() { echo 1000; }\nuid="$8"; gid="$9"\n${edit.replaceAll("/etc/", `${etc}/`)}`, "x", "", "", "", "", "", "", "", "501", "20"], { encoding: "utf8" })
    expect(r.status, r.stderr).toBe(0)
    expect(fs.readFileSync(path.join(etc, "passwd"), "utf8")).toBe("root:x:0:0:root:/root:/bin/bash\nnode:x:501:20::/home/node:/bin/bash\nnodes:x:1001:1001::/x:/bin/sh\n")
    // A gid another group has (macOS's staff, 20, is Debian's dialout): shared, as `groupmod -o`.
    expect(fs.readFileSync(path.join(etc, "group"), "utf8")).toBe("root:x:0:\ndialout:x:20:\nnode:x:20:\n")
    expect(fs.readdirSync(etc).sort()).toEqual(["group", "passwd"])
  })
})
