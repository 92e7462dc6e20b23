/**
 * Image builds with a content-addressed cache. An image's tag is a hash of its build context
 * (files, modes, the extra CA bundle) and of the base image's id, so an unchanged context skips
 * `docker build` entirely, while a newer base (a pull, a re-seed) rebuilds on top of it. The
 * check is a hash of a few files plus two `image inspect`s.
 *
 * Extra CA certificates (BOTTLE_EXTRA_CA_CERTS, a PEM bundle) are put in the context as
 * extra-ca.pem, which the Dockerfiles trust before any network use: corporate and CI networks
 * intercept TLS to package registries.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { Docker, DockerError, DockerCommandFailed } from "../services/Docker.ts"
import { packageRoot } from "./assets.ts"

export interface ImageSource {
  /** Short name: "agent" or "bundle". */
  readonly name: string
  /** Files of the context: path inside the context → absolute source path. */
  readonly files: ReadonlyArray<{ readonly at: string; readonly from: string }>
}

const walk = (dir: string, prefix: string): Array<{ at: string; from: string }> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const from = path.join(dir, e.name)
    const at = prefix ? `${prefix}/${e.name}` : e.name
    return e.isDirectory() ? walk(from, at) : [{ at, from }]
  })

/** Both images trust extra CAs and install packages the same way (scripts/*.sh). */
const sharedBuildScripts = () =>
  ["install-extra-ca.sh", "apt-install.sh"].map((f) => ({ at: f, from: path.join(packageRoot(), "scripts", f) }))

export const agentImageSource = (): ImageSource => ({
  name: "agent",
  files: [...walk(path.join(packageRoot(), "agent-image"), ""), ...sharedBuildScripts()]
})

export const bundleImageSource = (): ImageSource => {
  const root = packageRoot()
  return {
    name: "bundle",
    files: [
      ...walk(path.join(root, "bundle"), "").filter((f) => f.at === "Dockerfile"),
      ...sharedBuildScripts(),
      ...(fs.existsSync(path.join(root, "dist", "bottle.mjs"))
        // dist/lib is the public module (package.json exports), nothing the bundle runs.
        ? walk(path.join(root, "dist"), "dist").filter((f) => f.at.endsWith(".mjs") && !f.at.startsWith("dist/lib/"))
        : [{ at: "dist/bottle.mjs", from: path.join(root, "dist", "bottle.mjs") }])
    ]
  }
}

const readExtraCa = (env: Record<string, string | undefined>): string => {
  const p = env["BOTTLE_EXTRA_CA_CERTS"]
  if (!p) return ""
  return fs.readFileSync(p, "utf8")
}

/** The `FROM` default of the context's Dockerfile (`ARG BASE_IMAGE=…`), if it names one. */
export const baseImageOf = (src: ImageSource): string | undefined => {
  const dockerfile = src.files.find((f) => f.at === "Dockerfile")
  if (!dockerfile) return undefined
  return fs.readFileSync(dockerfile.from, "utf8").match(/^ARG BASE_IMAGE=(\S+)\s*$/m)?.[1]
}

/** The content hash that names the image. */
export const contextHash = (src: ImageSource, extraCa: string, baseId = ""): string => {
  const h = createHash("sha256")
  h.update(`base\0${baseId}\0`)
  for (const f of [...src.files].sort((a, b) => a.at.localeCompare(b.at))) {
    const st = fs.statSync(f.from)
    h.update(`${f.at}\0${st.mode & 0o111 ? "x" : "-"}\0${st.size}\0`)
    h.update(fs.readFileSync(f.from))
  }
  h.update(`extra-ca.pem\0${extraCa}`)
  return h.digest("hex").slice(0, 16)
}

export const imageTag = (src: ImageSource, hash: string) => `bot-bottle/${src.name}:${hash}`

export interface EnsuredImage {
  readonly tag: string
  readonly built: boolean
}

const baseIdOf = (base: string) =>
  Effect.gen(function*() {
    const docker = yield* Docker
    return yield* docker.imageId(base).pipe(Effect.catch(() => docker.pullImage(base).pipe(Effect.andThen(docker.imageId(base)))))
  })

/**
 * The ids of the images these sources build FROM, one lookup per distinct base (a missing one
 * is pulled, once), for `ensureImage`'s `baseIds`.
 */
export const baseImageIds = Effect.fn("baseImageIds")(function*(sources: ReadonlyArray<ImageSource>) {
  const bases = [...new Set(sources.map(baseImageOf).filter((b): b is string => b !== undefined))]
  const ids = yield* Effect.forEach(bases, baseIdOf, { concurrency: "unbounded" })
  return new Map(bases.map((b, i) => [b, ids[i]!]))
})

/** Builds the image unless one with the context's hash exists. */
export const ensureImage = Effect.fn("ensureImage")(function*(
  src: ImageSource,
  options: {
    readonly env: Record<string, string | undefined>
    readonly onProgress?: (line: string) => void
    /** Base image ids already looked up (`baseImageIds`); others are looked up here. */
    readonly baseIds?: ReadonlyMap<string, string>
  }
) {
  const docker = yield* Docker
  const extraCa = yield* Effect.try({
    try: () => readExtraCa(options.env),
    catch: (e) =>
      new DockerError({ reason: new DockerCommandFailed({ argv: ["read", options.env["BOTTLE_EXTRA_CA_CERTS"] ?? ""], exitCode: 1, stderr: `BOTTLE_EXTRA_CA_CERTS: ${(e as Error).message}` }) })
  })
  const missing = src.files.find((f) => !fs.existsSync(f.from))
  if (missing) {
    return yield* new DockerError({
      reason: new DockerCommandFailed({ argv: ["build", src.name], exitCode: 1, stderr: `${missing.from} is missing (run \`npm run build\` first?)` })
    })
  }
  // The base image's id is part of the tag; a missing base is pulled first (as the build would).
  const base = baseImageOf(src)
  const baseId = base === undefined ? "" : options.baseIds?.get(base) ?? (yield* baseIdOf(base))
  const tag = imageTag(src, contextHash(src, extraCa, baseId))
  if (yield* docker.imageExists(tag)) return { tag, built: false }

  const ctx = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), `bottle-build-${src.name}-`))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
  yield* Effect.sync(() => {
    for (const f of src.files) {
      fs.mkdirSync(path.dirname(path.join(ctx, f.at)), { recursive: true })
      fs.copyFileSync(f.from, path.join(ctx, f.at))
      fs.chmodSync(path.join(ctx, f.at), fs.statSync(f.from).mode & 0o777)
    }
    fs.writeFileSync(path.join(ctx, "extra-ca.pem"), extraCa)
  })
  yield* docker.build({
    context: ctx,
    tag,
    labels: { "bot-bottle.image": src.name },
    ...(options.onProgress ? { onProgress: options.onProgress } : {})
  })
  // Older builds of this image are dead weight (hundreds of MB each); one still used by a
  // running bottle refuses removal and stays until that bottle is gone.
  for (const ref of yield* docker.imageRefs(`bot-bottle/${src.name}`)) {
    if (ref !== tag) yield* docker.removeImage(ref).pipe(Effect.ignore)
  }
  return { tag, built: true }
}, Effect.scoped)
