/**
 * Row layout of the live view's tables: the rows below the meters go to
 * the active table and the lower one (completed requests or the route
 * board).
 */

/** Minimum rows of the active table, when it has that many requests and the room allows. */
const MIN_ACTIVE_ROWS = 3

/** Tables of a frame: which ones are shown, whether with column headers, and the rows of each. */
export interface TablePlan {
  active: boolean
  lower: boolean
  headers: boolean
  activeRows: number
  lowerRows: number
}

/**
 * Returns the tables that fit in `room` rows. Both tables take a title and
 * a column header each, and are shown when the rows left give each table
 * that has requests at least one. Otherwise only one table is shown: the
 * lower one when it has the selected row, or when it has rows and the
 * active one has none, else the active one. Below 3 rows that table also
 * goes without its column header, so that a tiny screen still shows
 * requests.
 */
export function planTables(room: number, activeCount: number, lowerCount: number, lowerSelected: boolean): TablePlan {
  const [activeRows, lowerRows] = shareRows(room - 4, activeCount, lowerCount)
  const bothFit = (activeRows > 0 || activeCount === 0) && (lowerRows > 0 || lowerCount === 0)
  if (room >= 4 && bothFit) return { active: true, lower: true, headers: true, activeRows, lowerRows }

  const headers = room >= 3
  const rows = Math.max(0, room - (headers ? 2 : 1))
  if (lowerSelected || (activeCount === 0 && lowerCount > 0)) {
    return { active: false, lower: true, headers, activeRows: 0, lowerRows: Math.min(rows, lowerCount) }
  }
  return { active: true, lower: false, headers, activeRows: Math.min(rows, activeCount), lowerRows: 0 }
}

/**
 * Splits the rows left for tables between the upper and the lower one:
 * each gets half, and a table that needs less gives the rest to the other.
 * The upper (active) table gets at least `MIN_ACTIVE_ROWS` when it has them.
 */
export function shareRows(room: number, upperCount: number, lowerCount: number): [number, number] {
  if (!Number.isFinite(room)) return [upperCount, lowerCount]
  const available = Math.max(0, room)
  const half = Math.ceil(available / 2)
  const least = Math.min(MIN_ACTIVE_ROWS, available)
  const upperRows = Math.min(upperCount, Math.max(half, least, available - lowerCount))
  return [upperRows, Math.min(lowerCount, available - upperRows)]
}
