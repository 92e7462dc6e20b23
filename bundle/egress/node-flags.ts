/**
 * The V8 flags the egress daemon runs with. The bundle's init spawns the daemon with them and
 * `npm run bench:egress` measures it with them, so what is measured is what ships.
 *
 * Why: under load the proxy allocates a few tens of kB of short-lived garbage per request, and
 * V8's default heap growth lets the old generation balloon to ~200 MB before it collects (RSS
 * ~285 MB) although the live heap stays small. A capped old generation makes V8 collect
 * before it grows; a 4 MB young generation keeps scavenges cheap without too many of them.
 */
export const EGRESS_NODE_FLAGS: ReadonlyArray<string> = ["--max-semi-space-size=4", "--max-old-space-size=64"]

/**
 * Environment for the daemon process. glibc gives each thread that mallocs its own arena and
 * rarely returns their memory: after a large stream ~30 MB of native memory stayed resident.
 * Two arenas keep that bounded at no measurable cost in throughput.
 */
export const EGRESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" }
