/// The Redis scripts behind the shared limits: each runs atomically on the
/// server and takes its clock from Redis' `TIME`, so the nodes' clocks do
/// not matter. Keys start with `relais:`.
enum ClusterScripts {
    /// Rate as a schedule (GCRA with no burst): reserves the next free slot
    /// `ARGV[1]` seconds after the previous one and returns, as text, the
    /// seconds to wait for it. KEYS[1]: the upstream's slot key.
    static let rateSlot = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        local interval = tonumber(ARGV[1])
        local start = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
        redis.call('SET', KEYS[1], string.format('%.6f', start + interval), 'PX', math.ceil((start + interval - now) * 1000) + 1000)
        return string.format('%.6f', start - now)
        """

    /// Quota windows: ARGV holds pairs (limit, seconds). When every window
    /// has room, counts one message in each and returns {0, now}; else
    /// {index of the full window, the second it opens}. KEYS[1]: the prefix.
    static let quotaReserve = """
        local now = tonumber(redis.call('TIME')[1])
        local windows = #ARGV / 2
        for i = 1, windows do
          local limit, seconds = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
          local start = now - now % seconds
          if tonumber(redis.call('GET', KEYS[1] .. seconds .. ':' .. start) or '0') >= limit then
            return { i, start + seconds }
          end
        end
        for i = 1, windows do
          local seconds = tonumber(ARGV[2 * i])
          local key = KEYS[1] .. seconds .. ':' .. (now - now % seconds)
          redis.call('INCR', key)
          redis.call('EXPIRE', key, seconds + 60)
        end
        return { 0, now }
        """

    /// Gives back a reservation made at ARGV[1] (windows in ARGV[2...]).
    static let quotaRelease = """
        local at = tonumber(ARGV[1])
        for i = 2, #ARGV do
          local seconds = tonumber(ARGV[i])
          local key = KEYS[1] .. seconds .. ':' .. (at - at % seconds)
          if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
        end
        return 1
        """

    /// Messages counted in each window now (ARGV: seconds...), for status.
    static let quotaUsage = """
        local now = tonumber(redis.call('TIME')[1])
        local used = {}
        for i = 1, #ARGV do
          local seconds = tonumber(ARGV[i])
          used[i] = tonumber(redis.call('GET', KEYS[1] .. seconds .. ':' .. (now - now % seconds)) or '0')
        end
        return used
        """

    /// A connection lease: drops expired leases, then adds ARGV[3] until
    /// ARGV[2] seconds from now if fewer than ARGV[1] are held. 1 or 0.
    /// KEYS[1]: the upstream's lease set (member -> expiry).
    static let leaseAcquire = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
        redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 60)
        return 1
        """

    /// Extends the leases ARGV[2...] to ARGV[1] seconds from now (adding
    /// back any that expired while Redis was away).
    static let leaseRenew = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) end
        redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 60)
        return 1
        """

    /// This node's heartbeat: ARGV[1] node, ARGV[2] seconds a node stays
    /// live, ARGV[3] its description (JSON). Drops nodes gone silent and
    /// returns how many are live. KEYS[1]: the node set, KEYS[2]: the descriptions.
    static let heartbeat = """
        local now = tonumber(redis.call('TIME')[1])
        redis.call('ZADD', KEYS[1], now, ARGV[1])
        local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
        for _, node in ipairs(gone) do redis.call('HDEL', KEYS[2], node) end
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
        return redis.call('ZCARD', KEYS[1])
        """
}
