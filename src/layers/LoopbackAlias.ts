/**
 * Live LoopbackAlias, chosen by platform (src/services/LoopbackAlias.ts says why).
 *
 * macOS: an index leased from the "loopback" pool through the StateStore (127.0.0.2 …
 * 127.0.0.254; a slug holds one), then `sudo -n ifconfig lo0 alias 127.0.0.x up`; released with
 * `sudo -n ifconfig lo0 -alias 127.0.0.x`, then the lease. sudo is never prompted for (`-n`):
 * when it is not allowed, the failure says the exact command to run (or to allow).
 * Linux: no alias, no sudo: the endpoint is the bundle's bridge address.
 *
 * Guarantees: an alias is only ever added for a lease this bottle holds, and is removed (then
 * the lease released) when the scope closes; a release logs its failure and never fails.
 */
import { Effect, Layer } from "effect"
import { ProcessRunner } from "../services/ProcessRunner.ts"
import { type AliasOptions, type BundleEndpoint, LoopbackAlias, LoopbackAliasError } from "../services/LoopbackAlias.ts"
import { StateStore } from "../services/StateStore.ts"
import * as ProcessRunnerLive from "./ProcessRunner.ts"
import * as StateStoreLive from "./StateStore.ts"

export const LOOPBACK_POOL = "loopback"
/** 127.0.0.2 … 127.0.0.254: .1 is the host's own. */
export const LOOPBACK_POOL_SIZE = 253
export const aliasOf = (index: number) => `127.0.0.${index + 2}`

export const addCommand = (address: string) => ["sudo", "-n", "ifconfig", "lo0", "alias", address, "up"]
export const removeCommand = (address: string) => ["sudo", "-n", "ifconfig", "lo0", "-alias", address]
/** As the user should type it (sudo may then ask for a password). */
const shown = (argv: ReadonlyArray<string>) => argv.filter((a) => a !== "-n").join(" ")

export const make = (platform: NodeJS.Platform) =>
  Effect.gen(function*() {
    const runner = yield* ProcessRunner
    const state = yield* StateStore
    const alias = Effect.fn("LoopbackAlias.alias")(function*(slug: string, options?: AliasOptions) {
      const lease = yield* state.lease(LOOPBACK_POOL, LOOPBACK_POOL_SIZE, slug, { keepIf: options?.keepIf }).pipe(
        Effect.mapError((e) => new LoopbackAliasError({ address: "127.0.0.0/24", message: e.message }))
      )
      const address = aliasOf(lease.index)
      yield* Effect.acquireRelease(
        runner.run(addCommand(address)).pipe(
          Effect.mapError((e) =>
            new LoopbackAliasError({
              address,
              message: `could not add the loopback alias ${address} (${e.message.split("\n")[0]}); run \`${shown(addCommand(address))}\` (or allow it in sudoers without a password) and start again`
            })
          )
        ),
        () =>
          runner.run(removeCommand(address)).pipe(
            Effect.catch((e) => Effect.logError(`could not remove the loopback alias ${address}: ${e.message}; remove it with \`${shown(removeCommand(address))}\``))
          )
      )
      return address
    })
    const needsAlias = platform === "darwin"
    const current = Effect.fn("LoopbackAlias.current")(function*(slug: string, bridgeIp: string) {
      if (!needsAlias) return { allowCidr: `${bridgeIp}/32`, address: bridgeIp, publishOn: undefined } satisfies BundleEndpoint
      const lease = (yield* state.leasesOf(slug).pipe(Effect.mapError((e) => new LoopbackAliasError({ address: "127.0.0.0/24", message: e.message }))))
        .find((l) => l.pool === LOOPBACK_POOL)
      if (lease === undefined) return yield* new LoopbackAliasError({ address: "127.0.0.0/24", message: `bottle ${slug} holds no loopback alias (is it running?)` })
      const a = aliasOf(lease.index)
      return { allowCidr: `${a}/32`, address: a, publishOn: a } satisfies BundleEndpoint
    })
    const release = Effect.fn("LoopbackAlias.release")(function*(slug: string) {
      if (!needsAlias) return
      const lease = (yield* state.leasesOf(slug).pipe(Effect.mapError((e) => new LoopbackAliasError({ address: "127.0.0.0/24", message: e.message }))))
        .find((l) => l.pool === LOOPBACK_POOL)
      if (lease === undefined) return
      const address = aliasOf(lease.index)
      yield* runner.run(removeCommand(address)).pipe(
        Effect.mapError((e) => new LoopbackAliasError({ address, message: `could not remove the loopback alias ${address} (${e.message.split("\n")[0]}); remove it with \`${shown(removeCommand(address))}\`` }))
      )
    })
    return LoopbackAlias.of({
      alias,
      current,
      release,
      needsAlias,
      endpoint: (slug, bridgeIp, options) =>
        needsAlias
          ? alias(slug, options).pipe(Effect.map((a): BundleEndpoint => ({ allowCidr: `${a}/32`, address: a, publishOn: a })))
          : Effect.succeed({ allowCidr: `${bridgeIp}/32`, address: bridgeIp, publishOn: undefined })
    })
  })

export const layerFor = (platform: NodeJS.Platform) => Layer.effect(LoopbackAlias, make(platform))
export const layer = layerFor(process.platform).pipe(Layer.provide(Layer.mergeAll(ProcessRunnerLive.layer, StateStoreLive.layer)))
