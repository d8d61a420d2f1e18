/**
 * Lua scripts run by the Redis tracker. A script runs atomically, so a batch
 * of starts and ends is applied as one unit and `past_tasks` never exceeds
 * its cap, in a single Redis instance and on one Cluster slot alike.
 */

/**
 * Applies a batch of task writes.
 *
 * KEYS: processors, past_tasks. ARGV: channel, max completed tasks, then
 * triples of (operation, processor id, task JSON):
 * - `s` start: HSET the active entry and PUBLISH.
 * - `e` end: HDEL the active entry, LPUSH to past_tasks and PUBLISH; an
 *   empty JSON only deletes (the record itself was dropped).
 * - `a` active: HSET only, and `d` delete: HDEL only, both used to repair
 *   the hash after a lost write.
 * Returns the number of completed tasks pushed.
 */
export const APPLY_BATCH_SCRIPT = `
local pushed = 0
for i = 3, #ARGV, 3 do
  local operation = ARGV[i]
  local processor = ARGV[i + 1]
  local task = ARGV[i + 2]
  if operation == 's' then
    redis.call('HSET', KEYS[1], processor, task)
    redis.call('PUBLISH', ARGV[1], task)
  elseif operation == 'e' then
    redis.call('HDEL', KEYS[1], processor)
    if task ~= '' then
      redis.call('LPUSH', KEYS[2], task)
      redis.call('PUBLISH', ARGV[1], task)
      pushed = pushed + 1
    end
  elseif operation == 'a' then
    redis.call('HSET', KEYS[1], processor, task)
  elseif operation == 'd' then
    redis.call('HDEL', KEYS[1], processor)
  end
end
if pushed > 0 then
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
end
return pushed
`

/**
 * Deletes the fields of the processors hash that match a MATCH pattern.
 * KEYS: processors. ARGV: pattern. Returns the number deleted.
 */
export const REMOVE_PROCESSORS_SCRIPT = `
local cursor = '0'
local removed = 0
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'MATCH', ARGV[1], 'COUNT', 500)
  cursor = page[1]
  local fields = page[2]
  for i = 1, #fields, 2 do
    removed = removed + redis.call('HDEL', KEYS[1], fields[i])
  end
until cursor == '0'
return removed
`
