/// Messages by the time they are next due, earliest first: a binary
/// min-heap of (time, id). Entries are not removed when a message is
/// rescheduled or deleted; the queue skips those that no longer match
/// (`RelayQueue.waiting`), so every change is one push.
struct WakeupHeap {
    private var entries: [(time: Double, id: String)] = []

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// The earliest entry, if any.
    var first: (time: Double, id: String)? { entries.first }

    mutating func push(_ time: Double, _ id: String) {
        entries.append((time, id))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].time < entries[parent].time else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func popFirst() -> (time: Double, id: String)? {
        guard !entries.isEmpty else { return nil }
        entries.swapAt(0, entries.count - 1)
        let first = entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < entries.count && entries[left].time < entries[smallest].time { smallest = left }
            if right < entries.count && entries[right].time < entries[smallest].time { smallest = right }
            guard smallest != parent else { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
