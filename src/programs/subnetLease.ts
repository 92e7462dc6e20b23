/**
 * A bottle's subnet, leased so that it holds against the backend's substrate (the Docker
 * engine), not only against this state root's lease table. The engine is shared: other state
 * roots (other users, a CI runner's jobs, another BOTTLE_STATE_DIR) lease from their own
 * tables, and any software may hold a network in the pool's range. So:
 *
 * - subnets any network on the substrate already uses are skipped (`Backend.addressesInUse`:
 *   all networks, anyone's; none for a backend that shares no address space);
 * - a network the backend refuses because its subnet is taken (AddressTaken: someone took it
 *   between our look and our create) gives that lease back and the next free subnet is tried,
 *   until the pool is exhausted. The plan (saved as plan.json) follows: its subnet, the
 *   bundle's address and the agent's proxy address are those of the subnet really obtained.
 *
 * Backend-neutral: no Docker here; the backend says what is in use and what it refused.
 * Guarantee: on success the bottle holds a lease in this root AND the backend holds its network
 * on that subnet, both scoped (released in reverse when the scope closes); the substrate's raw
 * overlap error never reaches the user while a free subnet is left.
 */
import { Effect } from "effect"
import { PROXY_VARIABLES, proxyEnv, SUBNET_POOL, SUBNET_POOL_SIZE, subnetFor, SUPERVISE_URL_VARIABLE, superviseUrl } from "../schema/Bundle.ts"
import type { BottlePlan } from "../schema/BottlePlan.ts"
import { Backend, BackendError, BackendFailed } from "../services/Backend.ts"
import { StateStore } from "../services/StateStore.ts"

/** An IPv4 CIDR as [first, last] addresses (unsigned 32-bit); undefined for IPv6 or junk. */
const ipv4Range = (cidr: string): readonly [number, number] | undefined => {
  const m = cidr.trim().match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/)
  if (!m) return undefined
  const octets = m.slice(1, 5).map(Number)
  const bits = Number(m[5])
  if (octets.some((o) => o > 255) || bits > 32) return undefined
  const addr = octets.reduce((a, o) => a * 256 + o, 0)
  const size = 2 ** (32 - bits)
  const first = addr - (addr % size)
  return [first, first + size - 1]
}

/** Pool indices whose subnet overlaps any of `subnets` (a /16 over the pool takes all of them). */
export const poolIndicesUsed = (subnets: ReadonlyArray<string>): Set<number> => {
  const used = new Set<number>()
  const ranges = subnets.flatMap((s) => {
    const r = ipv4Range(s)
    return r ? [r] : []
  })
  for (let index = 0; index < SUBNET_POOL_SIZE; index++) {
    const [first, last] = ipv4Range(subnetFor(index).subnet)!
    if (ranges.some(([a, b]) => a <= last && first <= b)) used.add(index)
  }
  return used
}

/** The plan with the subnet actually leased (it may differ from the one shown if another bottle took it since). */
export const withSubnet = (plan: BottlePlan, index: number): BottlePlan => {
  const { subnet, bundleIp } = subnetFor(index)
  if (index === plan.network.subnetIndex) return plan
  const proxies = proxyEnv(bundleIp)
  const env = { ...plan.env }
  for (const k of PROXY_VARIABLES) if (k in env) env[k] = proxies[k]
  if (env["GIT_GATE_URL"]) env["GIT_GATE_URL"] = env["GIT_GATE_URL"].replace(`//${plan.network.bundleIp}:`, `//${bundleIp}:`)
  // The supervise endpoint (and its NO_PROXY exemption) follow the bundle's address.
  if (SUPERVISE_URL_VARIABLE in env) env[SUPERVISE_URL_VARIABLE] = superviseUrl(bundleIp)
  for (const k of ["NO_PROXY", "no_proxy"]) {
    if (env[k] !== undefined) env[k] = env[k].split(",").map((h) => (h === plan.network.bundleIp ? bundleIp : h)).join(",")
  }
  return { ...plan, env, network: { ...plan.network, subnetIndex: index, subnet, bundleIp } }
}

/** The pool indices the backend's substrate already uses: what a lease must skip (it grows with refusals). */
export const subnetsInUse = Effect.gen(function*() {
  return poolIndicesUsed(yield* (yield* Backend).addressesInUse)
})

/**
 * Scoped: a subnet lease for the plan's bottle, skipping `avoid`; the plan with that subnet,
 * saved as plan.json. Kept at the scope's close when the backend keeps something bound to it
 * (`Backend.keepsAddress`).
 */
/**
 * The subnet index the slug holds while its backend keeps something bound to that address (a
 * stopped microVM's allowlist): such a lease never moves, whatever else wants the subnet.
 */
const boundSubnet = Effect.fnUntraced(function*(slug: string) {
  const backend = yield* Backend
  if (backend.keepsAddress === undefined || !(yield* backend.keepsAddress(slug))) return undefined
  return (yield* (yield* StateStore).leasesOf(slug)).find((l) => l.pool === SUBNET_POOL)?.index
})

export const leaseSubnet = Effect.fnUntraced(function*(plan: BottlePlan, avoid: ReadonlySet<number>) {
  const state = yield* StateStore
  const backend = yield* Backend
  // A backend whose kept state is bound to the address (a stopped microVM) keeps the lease past
  // the session while that state exists, and the lease is not moved off it (the network step
  // refuses instead): the resume gets the same subnet or nothing.
  const keepIf = backend.keepsAddress?.(plan.slug)
  const bound = yield* boundSubnet(plan.slug)
  const skip = bound === undefined ? avoid : new Set([...avoid].filter((i) => i !== bound))
  const lease = yield* state.lease(SUBNET_POOL, SUBNET_POOL_SIZE, plan.slug, { avoid: skip, keepIf })
  const leased = withSubnet(plan, lease.index)
  yield* state.writeJson(plan.slug, "plan.json", leased)
  return leased
})

/**
 * Scoped: the backend's network on the plan's (leased) subnet. A subnet the backend refuses as
 * taken joins `avoid` and the next free one is leased instead (the lease moves; the refused one
 * is given back), so this ends: with a network, or Exhausted. Returns the network and the plan
 * it is on.
 */
export const networkOnFreeSubnet = Effect.fnUntraced(function*(leased: BottlePlan, avoid: Set<number>) {
  const backend = yield* Backend
  let plan = leased
  for (;;) {
    const network = yield* backend.network(plan).pipe(
      Effect.catchIf((e) => e.reason._tag === "AddressTaken", () => Effect.succeed(undefined))
    )
    if (network) return { plan, network }
    if ((yield* boundSubnet(plan.slug)) === plan.network.subnetIndex) {
      return yield* new BackendError({
        backend: backend.name,
        reason: new BackendFailed({
          message: `subnet ${plan.network.subnet} is taken on the ${backend.name} backend by a network outside this state root, and bottle ${plan.slug}'s kept machine is held to its address (its allowlist is fixed when it is created): free the subnet (\`docker network ls\`) and resume again, or discard the machine and the work on it with \`bottle stop --purge ${plan.slug}\``
        })
      })
    }
    yield* Effect.logDebug(`subnet ${plan.network.subnet} is taken on the ${backend.name} backend; trying the next one`)
    avoid.add(plan.network.subnetIndex)
    plan = yield* leaseSubnet(plan, avoid)
  }
})
