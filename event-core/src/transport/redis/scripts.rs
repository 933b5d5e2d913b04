//! The Lua scripts: membership, leases, and fenced writes, each one atomic step on the
//! server (`redis::Script` loads them again after a server restart).

use redis::Script;
use std::sync::LazyLock;

/// Heartbeat of a member: drops the members whose lease ran out, scores this one with its
/// new expiry, and returns the live members. The clock is the server's.
///
/// `KEYS[1]` members; `ARGV[1]` consumer, `ARGV[2]` lease in ms.
pub(super) static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 10)
return redis.call('ZRANGE', KEYS[1], 0, -1)
",
    )
});

/// Takes a free lease: a new fencing token, and the lease key set to `consumer|token`.
/// Returns the token, or 0 when the lease is held.
///
/// `KEYS[1]` lease, `KEYS[2]` fence; `ARGV[1]` consumer, `ARGV[2]` lease in ms.
pub(super) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token
",
    )
});

/// Renews a lease still ours: 1, or 0 when it is gone or another's.
///
/// `KEYS[1]` lease; `ARGV[1]` `consumer|token`, `ARGV[2]` lease in ms.
pub(super) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// Releases a lease still ours: 1, or 0 when it is gone or another's.
///
/// `KEYS[1]` lease; `ARGV[1]` `consumer|token`.
pub(super) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Acknowledges entries of one stream under a lease still ours: the XACK count, or -1
/// when fenced.
///
/// `KEYS[1]` lease, `KEYS[2]` stream; `ARGV[1]` `consumer|token`, `ARGV[2]` group,
/// `ARGV[3..]` entry ids.
pub(super) static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
return redis.call('XACK', KEYS[2], ARGV[2], unpack(ARGV, 3))
",
    )
});

/// Reads a member's streams under its leases, in one atomic step: `XREADGROUP` (never
/// blocking) of the streams whose lease is still the member's with the token given, so a
/// member whose lease ran out (paused past it, say) takes no entry another member owns now.
/// Returns the `XREADGROUP` reply (nil when nothing was read) and, when nothing was read,
/// the last entry id of each stream read ("0-0" for an empty one), for the caller's
/// `XREAD BLOCK` to wait after.
///
/// `KEYS` pairs: lease, stream; `ARGV[1]` group, `ARGV[2]` consumer, `ARGV[3]` count, then
/// pairs: `consumer|token`, id to read after (`>` for new entries).
pub(super) static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local streams, ids = {}, {}
for i = 1, #KEYS, 2 do
  local n = (i + 1) / 2
  if redis.call('GET', KEYS[i]) == ARGV[2 + 2 * n] then
    streams[#streams + 1] = KEYS[i + 1]
    ids[#ids + 1] = ARGV[3 + 2 * n]
  end
end
if #streams == 0 then return {false, {}} end
local args = {'XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS'}
for _, key in ipairs(streams) do args[#args + 1] = key end
for _, id in ipairs(ids) do args[#args + 1] = id end
local reply = redis.call(unpack(args))
if reply then return {reply, {}} end
local last = {}
for _, key in ipairs(streams) do
  local newest = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  last[#last + 1] = key
  last[#last + 1] = newest[1] and newest[1][1] or '0-0'
end
return {false, last}
",
    )
});

/// Dead-letters an entry under a lease whose token is still the one given (whoever the
/// consumer): appends the fields to the dead stream and acknowledges the entry. 1, or -1
/// when fenced.
///
/// `KEYS[1]` lease, `KEYS[2]` dead stream, `KEYS[3]` stream; `ARGV[1]` `|token`,
/// `ARGV[2]` group, `ARGV[3]` entry id, `ARGV[4..]` the dead entry's field/value pairs.
pub(super) static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local lease = redis.call('GET', KEYS[1])
local suffix = ARGV[1]
if (not lease) or #lease <= #suffix or string.sub(lease, -#suffix) ~= suffix then
  return -1
end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XACK', KEYS[3], ARGV[2], ARGV[3])
return 1
",
    )
});

/// Creates the group on every stream given (and the streams), leaving existing groups
/// where they are.
///
/// `KEYS` the streams; `ARGV[1]` group, `ARGV[2]` start id (`$` or `0`).
pub(super) static CREATE_GROUPS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for _, key in ipairs(KEYS) do
  local reply = redis.pcall('XGROUP', 'CREATE', key, ARGV[1], ARGV[2], 'MKSTREAM')
  if type(reply) == 'table' and reply.err and not string.find(reply.err, 'BUSYGROUP') then
    return reply
  end
end
return #KEYS
",
    )
});
