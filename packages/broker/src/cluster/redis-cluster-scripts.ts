import { RedisScript } from '../redis/redis-script.js';

/** Redis server time in ms, so liveness never depends on the nodes' clocks agreeing. */
const NOW = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`;

/** A node is alive while its last heartbeat is more recent than the node timeout. */
const ALIVE = `local function alive(node)
  local beat = redis.call('ZSCORE', KEYS_NODES, node)
  return beat ~= false and beat ~= nil and tonumber(beat) >= now - tonumber(TIMEOUT)
end`;

/**
 * KEYS: owner, nodes, owned by me. ARGV: me, client id, clean start, node timeout, bus, owned prefix, token.
 * Sets the owner and, when a live node owned the session, publishes the claim in the same step: the
 * claim's place on the bus is where the session's messages change hands.
 */
export const claimScript = new RedisScript(
  'fleetwardClusterClaim',
  3,
  `${NOW}
local KEYS_NODES, TIMEOUT = KEYS[2], ARGV[4]
${ALIVE}
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
if not previous or previous == ARGV[1] then return {previous, 0} end
redis.call('SREM', ARGV[6] .. previous, ARGV[2])
if not alive(previous) then return {previous, 0} end
redis.call('PUBLISH', ARGV[5], cjson.encode({kind = 'claim', clientId = ARGV[2], claimer = ARGV[1], owner = previous, cleanStart = ARGV[3] == '1', token = ARGV[7]}))
return {previous, 1}`,
);

/** KEYS: owner, owned by me. ARGV: me, client id. */
export const disownScript = new RedisScript(
  'fleetwardClusterDisown',
  2,
  `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 0`,
);

/** KEYS: owner. ARGV: me, ttl ms. */
export const leaseScript = new RedisScript(
  'fleetwardClusterLease',
  1,
  `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`,
);

/** KEYS: nodes, owned by me. ARGV: me, node timeout, owner prefix, owned prefix, client ids... */
export const adoptScript = new RedisScript(
  'fleetwardClusterAdopt',
  2,
  `${NOW}
local KEYS_NODES, TIMEOUT = KEYS[1], ARGV[2]
${ALIVE}
local taken = {}
for index = 5, #ARGV do
  local id = ARGV[index]
  local previous = redis.call('GET', ARGV[3] .. id)
  if not previous or previous == ARGV[1] or not alive(previous) then
    redis.call('SET', ARGV[3] .. id, ARGV[1], 'KEEPTTL')
    redis.call('SADD', KEYS[2], id)
    if previous and previous ~= ARGV[1] then redis.call('SREM', ARGV[4] .. previous, id) end
    table.insert(taken, id)
  end
end
return taken`,
);

/**
 * KEYS: owned by the departed node, owned by me. ARGV: me, departed node, owner prefix, batch size.
 * Pops a batch, so nodes adopting at the same time share the sessions out; returns those taken and
 * how many are left.
 */
export const adoptFromScript = new RedisScript(
  'fleetwardClusterAdoptFrom',
  2,
  `local taken = {}
for _, id in ipairs(redis.call('SPOP', KEYS[1], tonumber(ARGV[4]))) do
  local owner = redis.call('GET', ARGV[3] .. id)
  if owner == ARGV[2] then
    redis.call('SET', ARGV[3] .. id, ARGV[1], 'KEEPTTL')
    redis.call('SADD', KEYS[2], id)
    table.insert(taken, id)
  end
end
return {taken, redis.call('SCARD', KEYS[1])}`,
);

/**
 * KEYS: nodes. ARGV: me, node timeout, bus, shares prefix. Beats, and declares departed every node
 * silent for the timeout (publishing its leave). Returns whether this node was still known.
 */
export const heartbeatScript = new RedisScript(
  'fleetwardClusterHeartbeat',
  1,
  `${NOW}
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now - tonumber(ARGV[2])))) do
  redis.call('ZREM', KEYS[1], node)
  redis.call('DEL', ARGV[4] .. node)
  redis.call('PUBLISH', ARGV[3], cjson.encode({kind = 'leave', node = node}))
end
if known then return 1 end
return 0`,
);

/** KEYS: nodes, my shares. ARGV: me, bus. */
export const leaveScript = new RedisScript(
  'fleetwardClusterLeave',
  2,
  `redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], cjson.encode({kind = 'leave', node = ARGV[1]}))
return 0`,
);

/** KEYS: my shares. ARGV: me, bus, group, pattern, "1", "0" or "" (removed). */
export const shareScript = new RedisScript(
  'fleetwardClusterShare',
  1,
  `local field = ARGV[3] .. '\\0' .. ARGV[4]
local online = cjson.null
if ARGV[5] == '' then redis.call('HDEL', KEYS[1], field) else
  redis.call('HSET', KEYS[1], field, ARGV[5])
  online = ARGV[5] == '1'
end
redis.call('PUBLISH', ARGV[2], cjson.encode({kind = 'share', node = ARGV[1], group = ARGV[3], pattern = ARGV[4], online = online}))
return 0`,
);

/** KEYS: nodes. ARGV: shares prefix. Every live node with its shares hash, in one consistent read. */
export const sharesSnapshotScript = new RedisScript(
  'fleetwardClusterShares',
  1,
  `local result = {}
for _, node in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  table.insert(result, node)
  table.insert(result, redis.call('HGETALL', ARGV[1] .. node))
end
return result`,
);
