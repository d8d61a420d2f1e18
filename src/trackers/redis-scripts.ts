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
 *   the hash after a lost write. `d` also removes a discarded request.
 * - `x` remove: HDEL every field that matches the MATCH pattern in the place
 *   of the processor id (the JSON is empty). A recorder removes its own
 *   entries this way when it starts and when it closes, ordered with its
 *   other writes.
 * Returns the number of completed tasks pushed.
 */
export const APPLY_BATCH_SCRIPT = `
local function removeMatching(hash, pattern)
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', hash, cursor, 'MATCH', pattern, 'COUNT', 500)
    cursor = page[1]
    local fields = page[2]
    for i = 1, #fields, 2 do
      redis.call('HDEL', hash, fields[i])
    end
  until cursor == '0'
end

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
  elseif operation == 'x' then
    removeMatching(KEYS[1], processor)
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

/**
 * Stores one recorder's heartbeat and lists its processor id prefix.
 * KEYS: heartbeat key, heartbeats set. ARGV: heartbeat JSON, TTL in
 * milliseconds, processor id prefix.
 */
export const WRITE_HEARTBEAT_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 1
`

/**
 * Removes the active entries of processes whose heartbeat expired.
 *
 * KEYS: processors, heartbeats set, then the heartbeat key of each
 * candidate prefix. ARGV: the candidate prefixes, in the order of their
 * keys. A candidate whose heartbeat key exists again (its recorder came
 * back) is kept. For the others, the script deletes every processors field
 * that starts with the prefix, compared as plain bytes, and removes the
 * prefix from the set.
 * Returns { removed entries, stale prefix 1, stale prefix 2, ... }.
 */
export const PRUNE_STALE_SCRIPT = `
local stale = {}
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 2]) == 0 then
    stale[#stale + 1] = ARGV[i]
    redis.call('SREM', KEYS[2], ARGV[i])
  end
end

local removed = 0
if #stale > 0 then
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 500)
    cursor = page[1]
    local fields = page[2]
    for i = 1, #fields, 2 do
      local field = fields[i]
      for _, prefix in ipairs(stale) do
        if string.sub(field, 1, #prefix) == prefix then
          removed = removed + redis.call('HDEL', KEYS[1], field)
          break
        end
      end
    end
  until cursor == '0'
end

local result = { removed }
for _, prefix in ipairs(stale) do
  result[#result + 1] = prefix
end
return result
`
