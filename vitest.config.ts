import { defineConfig } from "vitest/config"

export default defineConfig({
  // `import … from "bot-bottle"` in tests resolves to the sources (package.json exports), not dist/.
  ssr: { resolve: { conditions: ["bot-bottle-source"] } },
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts", "test/**/*.test.tsx"],
          exclude: ["test/e2e/**"],
          testTimeout: 30_000
        }
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          fileParallelism: false
        }
      }
    ]
  }
})
