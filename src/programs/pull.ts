/**
 * `bottle pull`: the agent's commits brought home, as branches of their own, for review.
 *
 * Guarantees:
 * - Only refs under `refs/remotes/bottle/<bottle>/` change in the host repository (a mirror of
 *   the workspace's branches: forced, pruned); never the host's branches, tags, HEAD, index,
 *   working tree, config or FETCH_HEAD.
 * - The agent's repository is hostile: nothing of it is read or run on the host. Its branches
 *   travel as a bundle file made *inside the sandbox* (whatever its config or hooks do, they
 *   do it there), copied out, and fetched by the host's git with hooks off, every transport but
 *   the local file refused, objects fsck'd, no auto-gc or maintenance, no submodule recursion.
 *   The bundle's pack is checked first with `index-pack --strict` into a quarantine object dir
 *   (git before 2.46 fetches a bundle without fsck, whatever `fetch.fsckObjects` says): a
 *   forged or malicious bundle (a tree planting `.git`, a bad `.gitmodules`, broken objects) is
 *   a refusal, and leaves the host repository as it was.
 * - Only commits the host lacks travel: the host's branch tips that the workspace also has
 *   are the bundle's prerequisites.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import type { BottlePlan } from "../schema/BottlePlan.ts"
import { Backend } from "../services/Backend.ts"
import { ProcessRunner } from "../services/ProcessRunner.ts"

export class PullError extends Schema.TaggedError<PullError>()("PullError", { message: Schema.String }) {}

/** Where a bottle's branches land in the host repository. */
export const pullNamespace = (slug: string) => `refs/remotes/bottle/${slug}/`

/**
 * Run as the agent in the workspace: a bundle of its branches, less what the host has. The
 * host's tips come in as arguments, never spliced into the script. Prints the bundle's path;
 * exit 3: no repository, 4: nothing new.
 */
const BUNDLE_SCRIPT = `set -eu
git rev-parse --git-dir >/dev/null 2>&1 || { echo "the workspace holds no git repository" >&2; exit 3; }
out=$(mktemp /tmp/bottle-pull.XXXXXX)
rm -f "$out"
set -- "$out" "$@"
excludes=""
shift
for c in "$@"; do if git cat-file -e "$c^{commit}" 2>/dev/null; then excludes="$excludes ^$c"; fi; done
if ! err=$(git bundle create "$out" --branches $excludes 2>&1); then
  case "$err" in *"empty bundle"*) exit 4 ;; esac
  echo "$err" >&2; exit 1
fi
echo "$out"
`

/** Safe settings for every host git call on the host repository while fetching hostile objects. */
const SAFE_GIT = [
  "-c", "core.hooksPath=/dev/null",
  "-c", "core.fsmonitor=false",
  "-c", "protocol.allow=never",
  // The bundle is a local file: the only transport allowed.
  "-c", "protocol.file.allow=always",
  "-c", "fetch.fsckObjects=true",
  "-c", "transfer.fsckObjects=true",
  "-c", "gc.auto=0",
  "-c", "maintenance.auto=false",
  "-c", "submodule.recurse=false"
]

/**
 * The bundle's pack, fsck'd strictly into a quarantine object dir (the host's objects as a
 * read-only alternate resolve its thin deltas and prerequisites): nothing reaches the host
 * repository's own object store here.
 */
const checkBundle = Effect.fnUntraced(function*(
  git: (args: ReadonlyArray<string>, options?: { readonly stdin?: Uint8Array; readonly env?: Record<string, string> }) => Effect.Effect<{ readonly exitCode: number; readonly stderr: string; readonly stdout: string }, PullError>,
  file: string,
  dir: string
) {
  const bytes = fs.readFileSync(file)
  const header = /^# v[23] git bundle\n/.exec(bytes.subarray(0, 20).toString("latin1"))
  const end = bytes.indexOf("\n\n")
  if (!header || end < 0) return yield* new PullError({ message: "the bottle's bundle is not a git bundle" })
  const quarantine = path.join(dir, "quarantine")
  fs.mkdirSync(quarantine)
  const objects = (yield* git(["rev-parse", "--path-format=absolute", "--git-path", "objects"])).stdout.trim()
  const checked = yield* git(["index-pack", "--strict", "--stdin", "--fix-thin"], {
    stdin: bytes.subarray(end + 2),
    env: { GIT_OBJECT_DIRECTORY: quarantine, GIT_ALTERNATE_OBJECT_DIRECTORIES: objects }
  })
  if (checked.exitCode !== 0) {
    return yield* new PullError({ message: `the bottle's commits were refused (fsck): ${checked.stderr.trim().split("\n").slice(0, 2).join(" / ")}` })
  }
})

export interface PullResult {
  readonly bottle: string
  readonly repo: string
  /** The refs under the bottle's namespace after the pull, with their commits. */
  readonly refs: ReadonlyArray<{ readonly ref: string; readonly commit: string }>
  /** false: the workspace's branches held no commit the host lacks (nothing fetched). */
  readonly fetched: boolean
}

export const pull = Effect.fn("pull")(function*(plan: BottlePlan, repoDir: string) {
  const backend = yield* Backend
  const runner = yield* ProcessRunner
  const git = (args: ReadonlyArray<string>, options: { readonly stdin?: Uint8Array; readonly env?: Record<string, string> } = {}) =>
    runner.exec(["git", "-C", repoDir, ...SAFE_GIT, ...args], { env: { GIT_TERMINAL_PROMPT: "0", ...options.env }, ...(options.stdin ? { stdin: options.stdin } : {}) }).pipe(
      Effect.mapError((e) => new PullError({ message: `git: ${e.message}` }))
    )
  const top = yield* git(["rev-parse", "--show-toplevel"])
  if (top.exitCode !== 0) return yield* new PullError({ message: `${repoDir} is not a git repository: pull brings the bottle's commits into the repository it was started from (or --repo)` })
  const repo = top.stdout.trim()
  const tips = yield* git(["for-each-ref", "--format=%(objectname)", "refs/heads", "refs/tags"])
  const have = [...new Set(tips.stdout.split("\n").map((l) => l.trim()).filter((l) => /^[0-9a-f]{40,64}$/.test(l)))]

  const made = yield* backend.exec(plan, ["sh", "-c", BUNDLE_SCRIPT, "bundle", ...have], { user: "agent" }).pipe(Effect.mapError((e) => new PullError({ message: e.message })))
  const namespace = pullNamespace(plan.slug)
  const listRefs = git(["for-each-ref", "--format=%(refname) %(objectname)", namespace]).pipe(
    Effect.map((r) => r.stdout.split("\n").filter((l) => l.trim()).map((l) => {
      const [ref, commit] = l.split(" ")
      return { ref: ref!, commit: commit! }
    }))
  )
  if (made.exitCode === 4) return { bottle: plan.slug, repo, refs: yield* listRefs, fetched: false } satisfies PullResult
  if (made.exitCode !== 0) return yield* new PullError({ message: `making the bundle in the bottle: ${made.stderr.trim() || `exit ${made.exitCode}`}` })
  const inSandbox = made.stdout.trim().split("\n").pop() ?? ""
  if (!/^\/tmp\/bottle-pull\.[A-Za-z0-9]+$/.test(inSandbox)) return yield* new PullError({ message: `the bottle answered an unexpected bundle path: ${JSON.stringify(inSandbox.slice(0, 200))}` })

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-pull-"))
  return yield* Effect.gen(function*() {
    const file = path.join(dir, "agent.bundle")
    yield* backend.copyOut(plan, inSandbox, file).pipe(Effect.mapError((e) => new PullError({ message: `copying the bundle out: ${e.message}` })))
    const st = fs.lstatSync(file)
    if (!st.isFile()) return yield* new PullError({ message: "the bottle's bundle is not a regular file" })
    yield* checkBundle(git, file, dir)
    const fetched = yield* git([
      "fetch", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", "--prune", "--quiet",
      file, `+refs/heads/*:${namespace}*`
    ])
    if (fetched.exitCode !== 0) return yield* new PullError({ message: `fetching the bottle's bundle refused: ${fetched.stderr.trim().split("\n").slice(-3).join(" / ")}` })
    return { bottle: plan.slug, repo, refs: yield* listRefs, fetched: true } satisfies PullResult
  }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))), Effect.ensuring(backend.exec(plan, ["rm", "-f", inSandbox], { user: "agent" }).pipe(Effect.ignore)))
})
