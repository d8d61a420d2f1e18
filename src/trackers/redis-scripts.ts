/**
 * Lua scripts run by the Redis tracker. A script runs atomically, so a batch
 * of starts and ends is applied as one unit and `past_tasks` never exceeds
 * its cap, in a single Redis instance and on one Cluster slot alike.
 */

/**
 * Lua functions shared by the scripts that end active entries by cleanup
 * (task/cleanup-end.ts): `endRecord(text, endedAt, outcome)` and
 * `pushEnded(list, ended, keep)`.
 *
 * endRecord rewrites the record's text in place of decoding and encoding
 * it, because Redis's cjson turns an empty array into {} and escapes
 * every /. Every start record of the recorder has
 * `"updated_at":"<time>","ended_at":null,"recorded_successfully":null,`
 * among the members of its outer object. endRecord puts the end time and
 * false there, and adds the outcome as the first entry of the outer
 * `tags` object, in place of a null `tags`, or as a new `tags` member
 * when the record has none. A `tags` of another type stays as it is.
 * Returns nil for a text that is not a JSON object or lacks those fields
 * in that layout, such as a record of another writer.
 *
 * The keys `updated_at` and `tags` can also occur in a nested value of
 * another writer's record, such as `"params":{"tags":{...}}`. When each
 * occurs once in the text, the record decoded with cjson shows whether it
 * is a member of the outer object. Otherwise endRecord walks the outer
 * object's members and skips each value whole. An EVAL that ended one
 * 1.5 KB record of the recorder 20,000 times took about 20 µs per record
 * with cjson and 45 µs with the walk (Redis 7.0.15, 2-core VM, under
 * other load). The plain text search used before took 11 µs, but it took
 * a nested `tags` for the record's own. Only cleanup calls endRecord,
 * and it creates its functions when it runs, so the batch script's other
 * operations cost what they did.
 *
 * pushEnded pushes with one LPUSH per 500 and trims the list to `keep`
 * records.
 */
const END_RECORD_LUA = `
local ACTIVE_FIELDS = ',"ended_at":null,"recorded_successfully":null,'

local function endRecord(text, endedAt, outcome)
  -- Its functions are created here, so that a call of the batch script
  -- that ends nothing does not create them.

  -- A quote or a backslash: where a JSON string ends or escapes a character.
  local STRING_STOP = '["\\\\]'

  -- Returns the position after the JSON string that starts at pos, or nil.
  local function skipString(text, pos)
    local at = pos + 1
    while true do
      local stop = string.find(text, STRING_STOP, at)
      if not stop then
        return nil
      end
      if string.byte(text, stop) == 34 then
        return stop + 1
      end
      at = stop + 2
    end
  end

  -- Returns the position after the JSON value that starts at pos, or nil.
  local function skipValue(text, pos)
    local first = string.byte(text, pos)
    if first == 34 then
      return skipString(text, pos)
    end
    if first == 123 or first == 91 then
      local depth = 0
      local at = pos
      while true do
        local stop = string.find(text, '[][{}"]', at)
        if not stop then
          return nil
        end
        local char = string.byte(text, stop)
        if char == 34 then
          at = skipString(text, stop)
          if not at then
            return nil
          end
        else
          depth = (char == 123 or char == 91) and depth + 1 or depth - 1
          at = stop + 1
          if depth == 0 then
            return at
          end
        end
      end
    end
    local _, last = string.find(text, '^[^,}%]%s]+', pos)
    return last and last + 1
  end

  -- Walks the members of the outer object of a JSON text. Returns the key
  -- position of its updated_at member and the value position of its tags
  -- member (the last of each), or nil for a text that is not an object.
  local function walkMembers(text)
    local _, open = string.find(text, '^%s*{%s*')
    if not open then
      return nil
    end
    local updated, tags = nil, nil
    local at = open + 1
    while string.byte(text, at) == 34 do
      local keyEnd = skipString(text, at)
      local _, colon = string.find(text, '^%s*:%s*', keyEnd or #text + 1)
      local valueEnd = colon and skipValue(text, colon + 1)
      if not valueEnd then
        return nil
      end
      local name = string.sub(text, at + 1, keyEnd - 2)
      if name == 'updated_at' then
        updated = at
      elseif name == 'tags' then
        tags = colon + 1
      end
      local _, comma = string.find(text, '^%s*,%s*', valueEnd)
      if not comma then
        return updated, tags
      end
      at = comma + 1
    end
    return nil
  end

  -- Returns the position of the only occurrence of a plain text, false
  -- when it occurs more than once, or nil.
  local function onlyPosition(text, plain)
    local at = string.find(text, plain, 1, true)
    if at and string.find(text, plain, at + 1, true) then
      return false
    end
    return at
  end

  -- Returns what walkMembers returns. When the keys updated_at and tags
  -- occur at most once in the text, decoding it with cjson is a faster way
  -- to learn whether they are members of the outer object.
  local function findMembers(text)
    local updated, tags = onlyPosition(text, '"updated_at"'), onlyPosition(text, '"tags"')
    if updated == false or tags == false then
      return walkMembers(text)
    end
    local decoded, record = pcall(cjson.decode, text)
    if not decoded then
      return walkMembers(text)
    end
    if type(record) ~= 'table' or record.updated_at == nil then
      return nil
    end
    if tags and record.tags ~= nil then
      local _, colon = string.find(text, '^"tags"%s*:%s*', tags)
      return updated, colon and colon + 1
    end
    return updated, nil
  end

  local updated, tags = findMembers(text)
  local _, updatedEnd = string.find(text, '^"updated_at":"[^"]*"', updated or #text + 1)
  if not updatedEnd or string.sub(text, updatedEnd + 1, updatedEnd + #ACTIVE_FIELDS) ~= ACTIVE_FIELDS then
    return nil
  end
  local edits = { { updated, updatedEnd + #ACTIVE_FIELDS, '"updated_at":"' .. endedAt .. '","ended_at":"' ..
    endedAt .. '","recorded_successfully":false,' } }
  local tag = '"web_top.outcome":"' .. outcome .. '"'
  local first = tags and string.byte(text, tags)
  local edit = nil
  if not tags then
    local close = string.find(text, '}%s*$')
    edit = close and { close, close - 1, ',"tags":{' .. tag .. '}' }
  elseif first == 123 then
    local _, open = string.find(text, '^{%s*', tags)
    edit = { open + 1, open, string.byte(text, open + 1) == 125 and tag or tag .. ',' }
  elseif string.find(text, '^null[%s,}]', tags) then
    edit = { tags, tags + 3, '{' .. tag .. '}' }
  end
  -- The later edit first, so that the position of the other stays.
  if edit then
    table.insert(edits, edit[1] > updated and 1 or 2, edit)
  end
  for _, change in ipairs(edits) do
    text = string.sub(text, 1, change[1] - 1) .. change[3] .. string.sub(text, change[2] + 1)
  end
  return text
end

local function pushEnded(list, ended, keep)
  for from = math.max(1, #ended - keep + 1), #ended, 500 do
    redis.call('LPUSH', list, unpack(ended, from, math.min(from + 499, #ended)))
  end
  if #ended > 0 then
    redis.call('LTRIM', list, 0, keep - 1)
  end
end
`

/**
 * Applies a batch of task writes.
 *
 * KEYS: processors, past_tasks, the write sequence key (left out on a
 * Cluster, where calls carry no number), last_pruned_at. ARGV: channel,
 * max completed tasks, `1`
 * when publishing may be skipped (`0` on Redis Cluster), then groups of
 * four: operation code, target, head, tail. The code is a letter
 * for the operation, followed by the number of a shared text when the
 * record has one. The record text of an operation is
 * `{head,tail<shared text>}`, or `head` alone when `tail` is empty (a
 * record handed over whole). The target is a processor id, except for:
 * - `c` define: the target is the next shared text, numbered from 0.
 *   Shared texts (process facts and tags) start with a comma and are the
 *   same for many records, so they are sent once per call.
 * - `q` quick: a request that started and ended within one batch. The
 *   target is the fields both records contain, head the rest of the start
 *   record and tail the rest of the end record. Push the end, and PUBLISH
 *   the start and the end after the push; `processors` is never touched.
 * - `m` end matching: end by cleanup (endRecord) every active entry whose
 *   field matches the MATCH pattern in the place of the target. Head is
 *   the end time and tail the outcome. HDEL the entry, push the ended
 *   record and PUBLISH it. An entry that endRecord cannot end is only
 *   deleted. A recorder ends its own entries this way when it starts
 *   (those of an earlier process with the same prefix) and when it
 *   closes, ordered with its other writes. An entry that an `a` earlier
 *   in the call has just set to the same text is a live request that a
 *   repair put back, and stays.
 * - `x` remove: HDEL every field that matches the pattern, used by a
 *   repair to remove the prefixes ended so far once more.
 * The other operations:
 * - `s` start: HSET the active entry and PUBLISH it.
 * - `u` unpublished start, for a request left out by sampling: HSET only.
 * - `e` end: HDEL the active entry, push the record and PUBLISH it; an
 *   empty head only deletes (the record itself was dropped).
 * - `a` active: HSET only, and `d` delete: HDEL only, both used to repair
 *   the hash after a lost write. `d` also removes a discarded request.
 *   Prune may have ended the entry that `a` puts back, while the recorder
 *   could not refresh its heartbeat. So `a` also removes that ended record
 *   from past_tasks (found by task id and the outcome process_stopped),
 *   and the request keeps one record: the one of its real end. It looks
 *   only while the last key, last_pruned_at, exists: the list can hold
 *   tens of thousands of records, and reading them on every call while a
 *   heartbeat is in doubt slowed Redis for seconds after an outage. A
 *   user without LRANGE or LREM keeps the ended record.
 * - `k` check: the ends (`e`) after it in the call remove such a
 *   process_stopped record of their task as well. The tracker sends it
 *   while its heartbeat may have expired, when prune may have ended a
 *   request that ends now.
 * - `n` number, only as the first operation: the target is the call's
 *   sequence number, the head a TTL in ms, and the tail `1` for a call
 *   sent again after its connection closed. For such a call, when KEYS[3]
 *   already contains that number or a higher one, Redis ran the call
 *   before its reply was lost, and the script returns { -1, '' } without
 *   running anything. Otherwise it stores the number in KEYS[3] with that
 *   TTL and goes on. A call sent for the first time has a number higher
 *   than any before, so it skips the check and its GET.
 *   GET and SET run through `redis.pcall`, so a user without them, or a
 *   key of another type, only loses the check. An out-of-memory reply to
 *   the SET (maxmemory reached) fails the call before it writes anything.
 * Completed records are pushed to past_tasks at the end of the script,
 * with one LPUSH per 500 and only as many as the list keeps.
 *
 * Every PUBLISH comes after a write of the same call: the other
 * operations write before they publish, and the messages of `q` wait for
 * the push. A read-only replica (READONLY) or a master without enough
 * replicas (NOREPLICAS) rejects that write, which runs no command before
 * it, so a rejected call published nothing and can be sent again. A
 * write as the first command keeps Redis's out-of-memory check too, which
 * a script without flags runs at its first write.
 *
 * While no client subscribes to the channel or to any pattern and no
 * replica is connected, nothing would receive a message, so the script
 * publishes nothing and skips building the start records of `q`
 * operations. PUBLISH costs Redis about 1.6 µs per message even without
 * subscribers (measured with Redis 7.0 on a 2-core VM, 1.2 KB records).
 * On a Cluster, a message reaches the subscribers of every node, which
 * PUBSUB NUMSUB does not count, so the tracker passes `0` there.
 *
 * PUBLISH, PUBSUB and INFO run through `redis.pcall`: an ACL user without
 * them still stores every record, and the first error stops publishing for
 * the rest of the call. Returns { number of completed tasks in the batch,
 * that error's message or an empty string }.
 */
export const APPLY_BATCH_SCRIPT = `${END_RECORD_LUA}
local processors = KEYS[1]
local lastPrunedAt = KEYS[#KEYS]
local channel = ARGV[1]
local shared = {}

if ARGV[4] == 'n' then
  if ARGV[7] == '1' then
    local stored = redis.pcall('GET', KEYS[3])
    local last = type(stored) == 'string' and tonumber(stored) or 0
    if tonumber(ARGV[5]) <= last then
      return { -1, '' }
    end
  end
  local written = redis.pcall('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
  -- Past maxmemory, a batch that starts with HDEL would run without its number, and run again if sent again.
  if type(written) == 'table' and written.err and string.sub(written.err, 1, 3) == 'OOM' then
    return redis.error_reply(written.err)
  end
end

local publish = true
local publishError = ''
if ARGV[3] == '1' then
  local subscribers = redis.pcall('PUBSUB', 'NUMSUB', channel)
  local patterns = redis.pcall('PUBSUB', 'NUMPAT')
  if not subscribers.err and type(patterns) == 'number' and subscribers[2] + patterns == 0 then
    local info = redis.pcall('INFO', 'replication')
    if type(info) == 'string' then
      publish = string.match(info, 'connected_slaves:(%d+)') ~= '0'
    end
  end
end

local function send(text)
  if publish then
    local reply = redis.pcall('PUBLISH', channel, text)
    if type(reply) == 'table' and reply.err then
      publishError = reply.err
      publish = false
    end
  end
end

local function record(head, tail, suffix)
  if tail == '' then
    return head
  end
  return '{' .. head .. ',' .. tail .. suffix .. '}'
end

local ended = {}
-- Messages of q operations, published once the completed records are pushed.
local quick = {}
-- Texts that repair operations (a) set in this call, by field.
local repaired = {}

-- Completed records ended as process_stopped, by task id, read on the first repair operation.
local stopped = nil
-- Set by a k operation: ends look for a process_stopped record of their task too.
local checkStopped = false

local function taskId(text)
  return string.match(text, '^{"task_id":"([^"]*)"')
end

local function dropStoppedRecord(text)
  if stopped == nil then
    stopped = {}
    -- A user without EXISTS looks as before.
    local pruned = redis.pcall('EXISTS', lastPrunedAt)
    local items = pruned == 0 and {} or redis.pcall('LRANGE', KEYS[2], 0, -1)
    if type(items) == 'table' and not items.err then
      for _, item in ipairs(items) do
        local id = taskId(item)
        if id and string.find(item, '"web_top.outcome":"process_stopped"', 1, true) then
          stopped[id] = item
        end
      end
    end
  end
  local id = taskId(text)
  if id and stopped[id] then
    redis.pcall('LREM', KEYS[2], 1, stopped[id])
    stopped[id] = nil
  end
end

local function removeMatching(pattern, endedAt, outcome)
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', processors, cursor, 'MATCH', pattern, 'COUNT', 500)
    cursor = page[1]
    local fields = page[2]
    for i = 1, #fields, 2 do
      local field = fields[i]
      local value = fields[i + 1]
      if not endedAt then
        redis.call('HDEL', processors, field)
      elseif repaired[field] ~= value then
        redis.call('HDEL', processors, field)
        local text = endRecord(value, endedAt, outcome)
        if text then
          ended[#ended + 1] = text
          send(text)
        end
      end
    end
  until cursor == '0'
end

for i = 4, #ARGV, 4 do
  local code = ARGV[i]
  local operation = string.sub(code, 1, 1)
  local suffix = ''
  if #code > 1 then
    suffix = shared[tonumber(string.sub(code, 2)) + 1]
  end
  local target = ARGV[i + 1]
  local head = ARGV[i + 2]
  local tail = ARGV[i + 3]
  if operation == 'q' then
    if publish then
      quick[#quick + 1] = '{' .. target .. ',' .. head .. suffix .. '}'
    end
    local text = '{' .. target .. ',' .. tail .. suffix .. '}'
    ended[#ended + 1] = text
    if publish then
      quick[#quick + 1] = text
    end
  elseif operation == 's' then
    local text = record(head, tail, suffix)
    redis.call('HSET', processors, target, text)
    send(text)
  elseif operation == 'e' then
    redis.call('HDEL', processors, target)
    if head ~= '' then
      local text = record(head, tail, suffix)
      ended[#ended + 1] = text
      send(text)
      if checkStopped then
        dropStoppedRecord(text)
      end
    end
  elseif operation == 'k' then
    checkStopped = true
  elseif operation == 'c' then
    shared[#shared + 1] = target
  elseif operation == 'u' then
    redis.call('HSET', processors, target, record(head, tail, suffix))
  elseif operation == 'a' then
    local text = record(head, tail, suffix)
    redis.call('HSET', processors, target, text)
    repaired[target] = text
    dropStoppedRecord(text)
  elseif operation == 'd' then
    redis.call('HDEL', processors, target)
  elseif operation == 'm' then
    removeMatching(target, head, tail)
  elseif operation == 'x' then
    removeMatching(target)
  end
end

-- Records pushed before the newest max would be trimmed right away.
pushEnded(KEYS[2], ended, tonumber(ARGV[2]))
for _, text in ipairs(quick) do
  send(text)
end
return { #ended, publishError }
`

/**
 * Ends the active entries whose field matches a MATCH pattern by cleanup
 * (endRecord): deletes each, pushes the ended record and publishes it.
 * KEYS: processors, past_tasks. ARGV: pattern, channel, max completed
 * tasks, end time, outcome. The list keeps at least the records it had,
 * so a reader with a smaller cap than the app's never shortens it.
 * Returns the number of entries deleted.
 */
export const REMOVE_PROCESSORS_SCRIPT = `${END_RECORD_LUA}
-- Read before any write: Redis keeps the writes of a script that fails, so a
-- past_tasks of another type must fail the call before the entries go.
local keep = math.max(tonumber(ARGV[3]), redis.call('LLEN', KEYS[2]))
local ended = {}
local removed = 0
local cursor = '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'MATCH', ARGV[1], 'COUNT', 500)
  cursor = page[1]
  local fields = page[2]
  for i = 1, #fields, 2 do
    removed = removed + redis.call('HDEL', KEYS[1], fields[i])
    local text = endRecord(fields[i + 1], ARGV[4], ARGV[5])
    if text then
      ended[#ended + 1] = text
    end
  end
until cursor == '0'

pushEnded(KEYS[2], ended, keep)
for _, text in ipairs(ended) do
  redis.pcall('PUBLISH', ARGV[2], text)
end
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
 * Ends the active entries of processes whose heartbeat expired, by
 * cleanup with the outcome `process_stopped` (endRecord).
 *
 * KEYS: processors, heartbeats set, past_tasks, last_pruned_at, then the
 * heartbeat key of each candidate prefix. ARGV: channel, max completed
 * tasks, end time, TTL of last_pruned_at in ms, then the candidate
 * prefixes, in the order of their keys. When the call ends entries, it
 * sets last_pruned_at to the end time with that TTL. A candidate
 * whose heartbeat key exists again (its recorder came back) is kept. For
 * the others, the script deletes every processors field that starts with
 * the prefix, compared as plain bytes, pushes and publishes the ended
 * records, and removes the prefix from the set. Each prefix must end with
 * a dot, as PREFIX_SHAPE in redis-heartbeats.ts requires. As in
 * REMOVE_PROCESSORS_SCRIPT, the list keeps at least the records it had.
 *
 * Redis keeps the writes of a script that fails. So the script reads
 * past_tasks (LLEN) and scans processors before its first write, which
 * is the SREM of heartbeats. A key of the wrong type then fails the call
 * with WRONGTYPE before anything has changed.
 * Returns { removed entries, ended entries, stale prefix 1, stale prefix 2, ... }.
 */
export const PRUNE_STALE_SCRIPT = `${END_RECORD_LUA}
local stale = {}
local staleSet = {}
for i = 5, #ARGV do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    stale[#stale + 1] = ARGV[i]
    staleSet[ARGV[i]] = true
  end
end

local keep = math.max(tonumber(ARGV[2]), redis.call('LLEN', KEYS[3]))
local fields = {}
local ended = {}
if #stale > 0 then
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 500)
    cursor = page[1]
    local entries = page[2]
    for i = 1, #entries, 2 do
      local field = entries[i]
      -- Every prefix ends with a dot, so a field starts with one exactly
      -- when its text up to one of its dots is that prefix.
      local dot = string.find(field, '.', 1, true)
      while dot do
        if staleSet[string.sub(field, 1, dot)] then
          fields[#fields + 1] = field
          local text = endRecord(entries[i + 1], ARGV[3], 'process_stopped')
          if text then
            ended[#ended + 1] = text
          end
          break
        end
        dot = string.find(field, '.', dot + 1, true)
      end
    end
  until cursor == '0'
end

for _, prefix in ipairs(stale) do
  redis.call('SREM', KEYS[2], prefix)
end
local removed = 0
for _, field in ipairs(fields) do
  removed = removed + redis.call('HDEL', KEYS[1], field)
end
pushEnded(KEYS[3], ended, keep)
if #ended > 0 then
  redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
end
for _, text in ipairs(ended) do
  redis.pcall('PUBLISH', ARGV[1], text)
end

local result = { removed, #ended }
for _, prefix in ipairs(stale) do
  result[#result + 1] = prefix
end
return result
`

/**
 * Lists the fields of the processors hash with the byte length of each
 * value, without the values. Reads only.
 * KEYS: processors. Returns { fields joined with NUL bytes, lengths }, in
 * HKEYS order. Redis spends about 1.5 µs per field on the HSTRLEN call.
 * Joining the names saves the reader a reply string per field (3.1
 * against 6.5 ms of CPU for 10,000 fields on a 2-core VM). Joining the
 * lengths too would cost Redis a number-to-string conversion each: about
 * 31 against 17 ms in a timing under load (bench/README.md).
 */
export const FIELD_LENGTHS_SCRIPT = `
local fields = redis.call('HKEYS', KEYS[1])
local lengths = {}
for i = 1, #fields do
  lengths[i] = redis.call('HSTRLEN', KEYS[1], fields[i])
end
return { table.concat(fields, '\\0'), lengths }
`
