/**
 * Colour for the dashboard: on unless NO_COLOR is set (non-empty) or the caller says otherwise.
 * Without colour, nothing is lost: status, decisions and grants are also spelled out in words
 * and markers, and the selection is shown with `>` and inverse video.
 */
import { createContext, useContext } from "react"

export const ColorContext = createContext(true)

/** Props giving a Text `color` (spread them), or none when colours are off. */
export const useTint = () => {
  const on = useContext(ColorContext)
  return (color: string | undefined): { color?: string } => (on && color !== undefined ? { color } : {})
}

/** The same for a Box's border. */
export const useBorderTint = () => {
  const on = useContext(ColorContext)
  return (color: string | undefined): { borderColor?: string } => (on && color !== undefined ? { borderColor: color } : {})
}

export const colorsWanted = (env: Record<string, string | undefined>): boolean => !env["NO_COLOR"]

export const statusColor = (status: string): string =>
  status === "running" ? "green" : status === "stopped" ? "gray" : status === "unknown" ? "yellow" : "red"
