/**
 * The V8 flags the egress daemon runs with. The bundle's init spawns the daemon with them and
 * `npm run bench:egress` measures it with them, so what is measured is what ships.
 *
 * Why: under load the proxy allocates a few tens of kB of short-lived garbage per request, and
 * V8's default heap growth lets the old generation balloon to ~200 MB before it collects (RSS
 * ~285 MB) although the live heap stays small. A small young generation keeps scavenges
 * cheap and a capped old generation makes V8 collect before it grows.
 */
export const EGRESS_NODE_FLAGS: ReadonlyArray<string> = ["--max-semi-space-size=2", "--max-old-space-size=64"]
