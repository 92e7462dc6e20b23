/**
 * Live StateStore on the local filesystem. Root: $BOTTLE_STATE_DIR, else
 * $XDG_STATE_HOME/bot-bottle, else ~/.local/state/bot-bottle. Bottle dirs are 0700 (they hold
 * the bottle CA key). A lease is a file created with O_EXCL: two processes racing for the
 * same index cannot both win.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, Option, Schema } from "effect"
import { StateCorrupt, StateError, StateExists, StateIo, StateNotFound, StateExhausted, StateStore, type Lease } from "../services/StateStore.ts"

/** `$BOTTLE_STATE_DIR`, else `$XDG_STATE_HOME/bot-bottle`, else `~/.local/state/bot-bottle`. */
export const stateRoot = (env: Record<string, string | undefined> = process.env): string =>
  env["BOTTLE_STATE_DIR"] ||
  (env["XDG_STATE_HOME"] ? path.join(env["XDG_STATE_HOME"], "bot-bottle") : path.join(os.homedir(), ".local", "state", "bot-bottle"))

const io = (p: string) => (e: unknown) => new StateError({ reason: new StateIo({ path: p, message: (e as Error).message }) })

export const make = (root: string) => {
  const bottlesDir = path.join(root, "bottles")
  const leasesDir = path.join(root, "leases")
  const bottleDir = (slug: string) => path.join(bottlesDir, slug)

  const writeAtomic = (file: string, content: string, mode: number) =>
    Effect.try({
      try: () => {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
        const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`
        fs.writeFileSync(tmp, content, { mode })
        fs.renameSync(tmp, file)
        return file
      },
      catch: io(file)
    })

  const readFile = (slug: string, rel: string) => {
    const file = path.join(bottleDir(slug), rel)
    return Effect.try({
      try: () => fs.readFileSync(file, "utf8"),
      catch: (e) =>
        (e as NodeJS.ErrnoException).code === "ENOENT" && !fs.existsSync(bottleDir(slug))
          ? new StateError({ reason: new StateNotFound({ slug }) })
          : io(file)(e)
    })
  }

  /** A JSON file decoded with `schema` (Corrupt when it does not decode); None when absent. */
  const readJsonFile = <A>(file: string, schema: Schema.Codec<A, unknown>) =>
    Effect.try({ try: () => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined), catch: io(file) }).pipe(
      Effect.flatMap((text) =>
        text === undefined
          ? Effect.succeed(Option.none<A>())
          : Schema.decodeUnknownEffect(Schema.fromJsonString(schema))(text).pipe(
            Effect.map(Option.some),
            Effect.mapError((e) => new StateError({ reason: new StateCorrupt({ path: file, message: e.message }) }))
          )
      )
    )

  const poolDir = (pool: string) => path.join(leasesDir, pool)
  const readLeases = (pool: string): Array<Lease> => {
    const dir = poolDir(pool)
    if (!fs.existsSync(dir)) return []
    return fs.readdirSync(dir).filter((f) => /^\d+$/.test(f)).map((f) => ({
      pool,
      index: Number(f),
      slug: fs.readFileSync(path.join(dir, f), "utf8").trim()
    }))
  }
  const allLeases = Effect.try({
    try: () => (fs.existsSync(leasesDir) ? fs.readdirSync(leasesDir) : []).flatMap(readLeases),
    catch: io(leasesDir)
  })

  const takeLease = (pool: string, size: number, slug: string) =>
    Effect.try({
      try: (): Lease | undefined => {
        const dir = poolDir(pool)
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
        const mine = readLeases(pool).find((l) => l.slug === slug)
        if (mine) return mine
        for (let index = 0; index < size; index++) {
          try {
            fs.writeFileSync(path.join(dir, String(index)), slug, { flag: "wx", mode: 0o600 })
            return { pool, index, slug }
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
          }
        }
        return undefined
      },
      catch: io(poolDir(pool))
    }).pipe(Effect.flatMap((l) => (l ? Effect.succeed(l) : Effect.fail(new StateError({ reason: new StateExhausted({ pool }) })))))

  const releaseLeases = (slug: string) =>
    Effect.try({
      try: () => {
        for (const l of (fs.existsSync(leasesDir) ? fs.readdirSync(leasesDir) : []).flatMap(readLeases)) {
          if (l.slug === slug) fs.rmSync(path.join(poolDir(l.pool), String(l.index)), { force: true })
        }
      },
      catch: io(leasesDir)
    })

  return StateStore.of({
    root,
    bottleDir,
    // Kept when the scope succeeds (the state outlives a session: logs, `resume`); removed
    // when it fails, so a launch that did not happen leaves nothing behind.
    createBottleDir: (slug) =>
      Effect.acquireRelease(
        Effect.try({
          try: () => {
            fs.mkdirSync(bottlesDir, { recursive: true, mode: 0o700 })
            // The leaf without `recursive`: creating it is the atomic claim on the name, so two
            // launches of one slug cannot both own (and on failure delete) the same dir.
            fs.mkdirSync(bottleDir(slug), { mode: 0o700 })
            return bottleDir(slug)
          },
          catch: (e) =>
            (e as NodeJS.ErrnoException).code === "EEXIST"
              ? new StateError({ reason: new StateExists({ slug }) })
              : io(bottleDir(slug))(e)
        }),
        (dir, exit) =>
          exit._tag === "Success"
            ? Effect.void
            : Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })).pipe(
              Effect.catchCause((c) => Effect.logError(`could not remove ${dir}`, c))
            )
      ),
    writeFile: (slug, rel, content, mode = 0o600) => writeAtomic(path.join(bottleDir(slug), rel), content, mode),
    readFile,
    writeJson: (slug, rel, value) => writeAtomic(path.join(bottleDir(slug), rel), JSON.stringify(value, null, 2) + "\n", 0o600),
    readJson: (slug, rel, schema) =>
      readFile(slug, rel).pipe(
        Effect.flatMap((text) =>
          Schema.decodeUnknownEffect(Schema.fromJsonString(schema))(text).pipe(
            Effect.mapError((e) => new StateError({ reason: new StateCorrupt({ path: path.join(bottleDir(slug), rel), message: e.message }) }))
          )
        )
      ),
    readJsonIfAny: (slug, rel, schema) => readJsonFile(path.join(bottleDir(slug), rel), schema),
    readRootJson: (name, schema) => readJsonFile(path.join(root, name), schema),
    writeRootJson: (name, value) => writeAtomic(path.join(root, name), JSON.stringify(value, null, 2) + "\n", 0o600),
    exists: (slug) => Effect.sync(() => fs.existsSync(bottleDir(slug))),
    list: Effect.try({
      try: () => (fs.existsSync(bottlesDir) ? fs.readdirSync(bottlesDir).filter((d) => !d.startsWith(".")).sort() : []),
      catch: io(bottlesDir)
    }),
    removeBottle: (slug) => Effect.try({ try: () => fs.rmSync(bottleDir(slug), { recursive: true, force: true }), catch: io(bottleDir(slug)) }),
    peekLease: (pool, size, slug) =>
      Effect.try({
        try: () => {
          const leases = readLeases(pool)
          const mine = leases.find((l) => l.slug === slug)
          if (mine) return mine.index
          const taken = new Set(leases.map((l) => l.index))
          for (let i = 0; i < size; i++) if (!taken.has(i)) return i
          return -1
        },
        catch: io(poolDir(pool))
      }).pipe(Effect.flatMap((i) => (i >= 0 ? Effect.succeed(i) : Effect.fail(new StateError({ reason: new StateExhausted({ pool }) }))))),
    takeLease,
    lease: (pool, size, slug) =>
      Effect.acquireRelease(takeLease(pool, size, slug), (l) =>
        Effect.sync(() => fs.rmSync(path.join(poolDir(l.pool), String(l.index)), { force: true })).pipe(
          Effect.catchCause((c) => Effect.logError(`could not release lease ${l.pool}/${l.index}`, c))
        )),
    releaseLeases,
    leasesOf: (slug) => allLeases.pipe(Effect.map((ls) => ls.filter((l) => l.slug === slug))),
    allLeases
  })
}

export const layer = Layer.sync(StateStore, () => make(stateRoot()))
export const layerAt = (root: string) => Layer.sync(StateStore, () => make(root))
