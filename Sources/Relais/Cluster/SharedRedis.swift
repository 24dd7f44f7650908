import NIOCore

/// A `RedisClient` living on one event loop, callable from any task (the
/// cluster's limits are asked from delivery tasks, not from a loop).
final class SharedRedis: Sendable {
    private let loop: any EventLoop
    private let client: NIOLoopBoundBox<RedisClient>

    init(endpoint: RedisEndpoint, loop: any EventLoop) {
        self.loop = loop
        client = NIOLoopBoundBox.makeBoxSendingValue(RedisClient(endpoint: endpoint, loop: loop), eventLoop: loop)
    }

    func call(_ words: [String]) async throws -> RESPValue {
        let client = self.client
        return try await loop.flatSubmit { client.value.call(words.map { Array($0.utf8) }) }.get()
    }

    /// `EVAL script numkeys keys... args...`.
    func eval(_ script: String, keys: [String], _ arguments: [String]) async throws -> RESPValue {
        try await call(["EVAL", script, "\(keys.count)"] + keys + arguments)
    }
}
