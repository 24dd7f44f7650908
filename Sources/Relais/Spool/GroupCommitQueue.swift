import NIOConcurrencyHelpers
import NIOPosix

/// Collects work items from any thread and hands them, in batches, to one
/// commit function running on a thread pool. While a batch is being
/// committed, new items gather for the next one: the cost of a flush is
/// shared by everything that arrived meanwhile (group commit). Up to
/// `overlapping` batches commit at once, so items that arrive while a
/// flush waits for the disk need not wait for it to end before their own
/// flush starts.
final class GroupCommitQueue<Item: Sendable>: Sendable {
    private struct State {
        var items: [Item] = []
        var running = 0
    }

    private let state = NIOLockedValueBox(State())
    private let threadPool: NIOThreadPool
    private let overlapping: Int
    private let commit: @Sendable (GroupCommitQueue<Item>, [Item]) -> Void

    /// `commit` gets the queue too, so it can submit items again (retries).
    /// With `overlapping` above one it must be safe to run concurrently.
    init(threadPool: NIOThreadPool, overlapping: Int = 1,
         commit: @escaping @Sendable (GroupCommitQueue<Item>, [Item]) -> Void) {
        self.threadPool = threadPool
        self.overlapping = overlapping
        self.commit = commit
    }

    /// Items submitted and not yet handed to a commit.
    var waiting: Int { state.withLockedValue { $0.items.count } }

    func submit(_ item: Item) {
        let start = state.withLockedValue { state -> Bool in
            state.items.append(item)
            guard state.running < overlapping else { return false }
            state.running += 1
            return true
        }
        if start { threadPool.submit { [self] _ in drain() } }
    }

    private func drain() {
        while true {
            let batch = state.withLockedValue { state -> [Item] in
                let batch = state.items
                state.items = []
                if batch.isEmpty { state.running -= 1 }
                return batch
            }
            if batch.isEmpty { return }
            commit(self, batch)
        }
    }
}
