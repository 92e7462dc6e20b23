/**
 * Live StateStore on the local filesystem. Root: $BOTTLE_STATE_DIR, else
 * $XDG_STATE_HOME/bot-bottle, else ~/.local/state/bot-bottle. Bottle dirs are 0700 (they hold
 * the bottle CA key).
 *
 * Leases, per pool: `leases/<pool>/<index>` holds the slug that has the index, and
 * `leases/<pool>/by-slug/<slug>` (the owner record) the index the slug has. Both are created
 * exclusively (a hard link of a finished temp file: it fails with EEXIST like O_EXCL, and the
 * content is whole the moment the name appears), so two processes racing for one index cannot
 * both win, and two racing for one slug cannot take two indices: the one whose owner record
 * lands first wins, the others give their index back and take the winner's. Taking writes the
 * index first, then the owner record; releasing removes them in the other order: an owner
 * record always names an index its slug holds. An index without an owner record (a take or a
 * release cut short, or a lease from before owner records) is adopted by its slug.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, Option, Schema } from "effect"
import { StateCorrupt, StateError, StateExists, StateIo, StateNotFound, StateExhausted, StateStore, type Lease, type LeaseOptions } from "../services/StateStore.ts"

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

  const readIfAny = (file: string): string | undefined => {
    try {
      return fs.readFileSync(file, "utf8").trim()
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
      throw e
    }
  }
  const poolDir = (pool: string) => path.join(leasesDir, pool)
  const readLeases = (pool: string): Array<Lease> => {
    const dir = poolDir(pool)
    if (!fs.existsSync(dir)) return []
    // A lease released between the listing and the read is not there.
    return fs.readdirSync(dir).filter((f) => /^\d+$/.test(f)).flatMap((f) => {
      const slug = readIfAny(path.join(dir, f))
      return slug === undefined ? [] : [{ pool, index: Number(f), slug }]
    })
  }
  const allLeases = Effect.try({
    try: () => (fs.existsSync(leasesDir) ? fs.readdirSync(leasesDir) : []).flatMap(readLeases),
    catch: io(leasesDir)
  })

  const indexFile = (pool: string, index: number) => path.join(poolDir(pool), String(index))
  const ownerFile = (pool: string, slug: string) => path.join(poolDir(pool), "by-slug", slug)

  /** Creates `file` holding `content`; false if it exists. Never a half-written file under its name. */
  const createExclusive = (file: string, content: string): boolean => {
    const tmp = path.join(path.dirname(file), `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`)
    fs.writeFileSync(tmp, content, { flag: "wx", mode: 0o600 })
    try {
      fs.linkSync(tmp, file)
      return true
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
      throw e
    } finally {
      fs.rmSync(tmp, { force: true })
    }
  }
  const removeIfHolds = (file: string, content: string) => {
    if (readIfAny(file) === content) fs.rmSync(file, { force: true })
  }
  /** Owner record first, then the index (see the header): each only if it is still this lease's. */
  const releaseOne = (pool: string, index: number, slug: string) => {
    removeIfHolds(ownerFile(pool, slug), String(index))
    removeIfHolds(indexFile(pool, index), slug)
  }

  /** `created`: this call wrote the index (it did not find the slug holding one already). */
  const takeLeaseSync = (pool: string, size: number, slug: string, avoid: ReadonlySet<number>): { lease: Lease; created: boolean } | undefined => {
    fs.mkdirSync(path.dirname(ownerFile(pool, slug)), { recursive: true, mode: 0o700 })
    let mine: number | undefined
    // Each round either returns or sees another contender's step land; the bound only stops a
    // state that something outside keeps rewriting.
    for (let round = 0; round < 1000; round++) {
      const owned = readIfAny(ownerFile(pool, slug))
      if (owned !== undefined) {
        const index = /^\d+$/.test(owned) ? Number(owned) : -1
        if (index >= 0 && readIfAny(indexFile(pool, index)) === slug) {
          if (!avoid.has(index)) return { lease: { pool, index, slug }, created: index === mine }
          releaseOne(pool, index, slug)
        } else {
          // Names an index the slug does not hold (edited by hand, or released by a version
          // without owner records): drop it, then adopt or take as if it were not there.
          removeIfHolds(ownerFile(pool, slug), owned)
        }
        continue
      }
      // The lowest index the slug already holds (a take cut short, another contender's take in
      // flight), else a new one.
      const held = readLeases(pool).filter((l) => l.slug === slug && !avoid.has(l.index)).map((l) => l.index).sort((a, b) => a - b)[0]
      let index = held
      if (index === undefined) {
        for (let i = 0; i < size && index === undefined; i++) {
          if (!avoid.has(i) && createExclusive(indexFile(pool, i), slug)) index = i
        }
        if (index === undefined) return undefined
        mine = index
      }
      if (createExclusive(ownerFile(pool, slug), String(index))) return { lease: { pool, index, slug }, created: index === mine }
      // Another take of this slug won: give back an index written here, unless the winner took it.
      if (index === mine && readIfAny(ownerFile(pool, slug)) !== String(index)) {
        removeIfHolds(indexFile(pool, index), slug)
        mine = undefined
      }
    }
    throw new Error(`the lease of ${slug} in ${poolDir(pool)} keeps changing under us`)
  }

  const takeLeaseCreated = (pool: string, size: number, slug: string, options?: LeaseOptions) =>
    Effect.try({ try: () => takeLeaseSync(pool, size, slug, options?.avoid ?? new Set()), catch: io(poolDir(pool)) }).pipe(
      Effect.flatMap((l) => (l ? Effect.succeed(l) : Effect.fail(new StateError({ reason: new StateExhausted({ pool }) }))))
    )
  const takeLease = (pool: string, size: number, slug: string, options?: LeaseOptions) =>
    takeLeaseCreated(pool, size, slug, options).pipe(Effect.map((l) => l.lease))

  const releaseLeases = (slug: string) =>
    Effect.try({
      try: () => {
        for (const pool of fs.existsSync(leasesDir) ? fs.readdirSync(leasesDir) : []) {
          fs.rmSync(ownerFile(pool, slug), { force: true })
          for (const l of readLeases(pool)) if (l.slug === slug) fs.rmSync(indexFile(pool, l.index), { force: true })
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
    lease: (pool, size, slug, options) =>
      Effect.acquireRelease(takeLeaseCreated(pool, size, slug, options), ({ lease: l, created }) =>
        created
          ? (options?.keepIf ?? Effect.succeed(false)).pipe(
            Effect.flatMap((keep) => (keep ? Effect.void : Effect.sync(() => releaseOne(l.pool, l.index, l.slug)))),
            Effect.catchCause((c) => Effect.logError(`could not release lease ${l.pool}/${l.index}`, c))
          )
          : Effect.void).pipe(Effect.map((l) => l.lease)),
    releaseLeases,
    leasesOf: (slug) => allLeases.pipe(Effect.map((ls) => ls.filter((l) => l.slug === slug))),
    allLeases
  })
}

export const layer = Layer.sync(StateStore, () => make(stateRoot()))
export const layerAt = (root: string) => Layer.sync(StateStore, () => make(root))
