import NIOConcurrencyHelpers
import NIOPosix

/// Collects work items from any thread and hands them, in batches, to one
/// commit function running on a thread pool. While a batch is being
/// committed, new items gather for the next one: the cost of a flush is
/// shared by everything that arrived meanwhile (group commit). One batch
/// commits at a time, so the commit function never runs concurrently with
/// itself, and a batch waits for the disk on one thread, not several.
final class GroupCommitQueue<Item: Sendable>: Sendable {
    private struct State {
        var items: [Item] = []
        var committing = false
    }

    private let state = NIOLockedValueBox(State())
    private let threadPool: NIOThreadPool
    private let commit: @Sendable (GroupCommitQueue<Item>, [Item]) -> Void

    /// `commit` gets the queue too, so it can submit items again (retries).
    init(threadPool: NIOThreadPool, commit: @escaping @Sendable (GroupCommitQueue<Item>, [Item]) -> Void) {
        self.threadPool = threadPool
        self.commit = commit
    }

    /// Items submitted and not yet handed to a commit.
    var waiting: Int { state.withLockedValue { $0.items.count } }

    func submit(_ item: Item) {
        let start = state.withLockedValue { state -> Bool in
            state.items.append(item)
            guard !state.committing else { return false }
            state.committing = true
            return true
        }
        if start { threadPool.submit { [self] _ in drain() } }
    }

    private func drain() {
        while true {
            let batch = state.withLockedValue { state -> [Item] in
                let batch = state.items
                state.items = []
                if batch.isEmpty { state.committing = false }
                return batch
            }
            if batch.isEmpty { return }
            commit(self, batch)
        }
    }
}
