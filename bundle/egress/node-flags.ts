/**
 * The V8 flags the egress daemon runs with. The bundle's init spawns the daemon with them and
 * `npm run bench:egress` measures it with them, so what is measured is what ships.
 *
 * Why: under load the proxy allocates a few tens of kB of short-lived garbage per request, and
 * V8's default heap growth lets the old generation balloon to ~200 MB before it collects (RSS
 * ~285 MB) although the live heap stays small. A capped old generation makes V8 collect
 * before it grows.
 *
 * GC on the daemon's own thread (`--single-threaded-gc`): the daemon has one core (the bench
 * pins it to one), and V8's background GC threads only take turns with the main thread on it.
 * Streaming a body, every 16 KB TLS record arrives in an ArrayBuffer of its own; with
 * concurrent marking V8 ran a full mark-compact every ~10 MB streamed (~45 per 512 MB, each
 * marking the whole ~20 MB heap), single-threaded about a fifth as many: ~35–40% less proxy
 * CPU per streamed MB (`PROFILE_KIND=stream npm run bench:egress-profile`).
 *
 * A 1 MB young generation: the stream's ArrayBuffers die young, and a small young generation
 * is scavenged (cheaply) before they pile up. Single-threaded GC with a 4 MB one held ~60 MB of
 * dead buffers at the peak of a 256 MB stream (RSS ~160 MB); with 1 MB, ~23 MB (RSS ~115 MB).
 * It costs requests/s some CPU (more scavenges): the price of a streaming proxy that keeps up
 * with mitmproxy within the memory target.
 */
export const EGRESS_NODE_FLAGS: ReadonlyArray<string> = ["--single-threaded-gc", "--max-semi-space-size=1", "--max-old-space-size=64"]

/**
 * Environment for the daemon process. glibc gives each thread that mallocs its own arena and
 * rarely returns their memory: after a large stream ~30 MB of native memory stayed resident.
 * Two arenas keep that bounded at no measurable cost in throughput.
 */
export const EGRESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" }
