/**
 * Partial sorting: the first rows of an order without sorting all of them,
 * for views that show a screenful of a long list.
 */

/**
 * Returns the first `limit` of the indexes `0 … count - 1` in the order of
 * `compare`, sorted. `compare` must be a strict total order (no two
 * distinct indexes compare equal), so the result is the same as the first
 * `limit` of a full sort. Keeps the kept indexes in a binary max-heap, so
 * it costs O(count · log limit) comparisons instead of O(count · log count).
 */
export function selectFirst(count: number, limit: number, compare: (a: number, b: number) => number): number[] {
  const size = Math.max(0, Math.min(count, limit))
  if (size === 0) return []
  // heap[0] is the last in order of the indexes kept so far.
  const heap: number[] = []
  for (let index = 0; index < count; index++) {
    if (heap.length < size) {
      heap.push(index)
      siftUp(heap, heap.length - 1, compare)
    } else if (compare(index, heap[0] as number) < 0) {
      heap[0] = index
      siftDown(heap, 0, compare)
    }
  }
  return heap.sort(compare)
}

function siftUp(heap: number[], position: number, compare: (a: number, b: number) => number): void {
  const item = heap[position] as number
  while (position > 0) {
    const parent = (position - 1) >> 1
    const parentItem = heap[parent] as number
    if (compare(item, parentItem) <= 0) break
    heap[position] = parentItem
    position = parent
  }
  heap[position] = item
}

function siftDown(heap: number[], position: number, compare: (a: number, b: number) => number): void {
  const item = heap[position] as number
  const length = heap.length
  for (;;) {
    let child = 2 * position + 1
    if (child >= length) break
    const right = child + 1
    if (right < length && compare(heap[right] as number, heap[child] as number) > 0) child = right
    const childItem = heap[child] as number
    if (compare(childItem, item) <= 0) break
    heap[position] = childItem
    position = child
  }
  heap[position] = item
}
