/**
 * A bottle's internal subnet, leased so that it holds against the engine itself, not only
 * against this state root's lease table. The engine is shared: other state roots (other users,
 * a CI runner's jobs, another BOTTLE_STATE_DIR) lease from their own tables, and any software
 * may hold a network in the pool's range. So:
 *
 * - subnets any network on the engine already uses are skipped (asked of the engine, all
 *   networks, anyone's);
 * - the network is created right after its lease, and a creation the engine refuses because the
 *   subnet overlaps (someone took it between our look and our create) gives that lease back and
 *   tries the next free subnet, until the pool is exhausted.
 *
 * Guarantee: on success the bottle holds a lease in this root AND the engine holds its network
 * on that subnet, both scoped (released in reverse when the scope closes); the engine's raw
 * "Pool overlaps" never reaches the user while a free subnet is left.
 */
import { Effect } from "effect"
import { SUBNET_POOL, SUBNET_POOL_SIZE, subnetFor } from "../schema/Bundle.ts"
import { Docker, type Network, type NetworkSpec } from "../services/Docker.ts"
import { StateStore, type Lease } from "../services/StateStore.ts"

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

export type SubnetAddresses = ReturnType<typeof subnetFor> & { readonly index: number }

/**
 * Leases a subnet no network on the engine uses and creates the bottle's network on it
 * (`spec` turns the addresses into the network to create), retrying on overlap. Scoped.
 */
export const leaseSubnetAndNetwork = Effect.fn("leaseSubnetAndNetwork")(function*(
  slug: string,
  spec: (addresses: SubnetAddresses) => NetworkSpec
) {
  const docker = yield* Docker
  const state = yield* StateStore
  const avoid = poolIndicesUsed((yield* docker.networkSubnets).flatMap((n) => n.subnets))
  // Each refused subnet joins `avoid`, so this ends: with a network, or Exhausted.
  for (;;) {
    // A lease given back below stays registered in the scope; its release only removes what
    // is still this slug's (the next take already moved it), so it is harmless.
    const lease: Lease = yield* state.lease(SUBNET_POOL, SUBNET_POOL_SIZE, slug, { avoid })
    const network: Network | undefined = yield* docker.network(spec({ ...subnetFor(lease.index), index: lease.index })).pipe(
      Effect.catchIf((e) => e.reason._tag === "SubnetOverlap", () => Effect.succeed(undefined))
    )
    if (network) return { lease, network }
    yield* Effect.logDebug(`subnet ${subnetFor(lease.index).subnet} is taken on the engine; trying the next one`)
    avoid.add(lease.index)
  }
})
