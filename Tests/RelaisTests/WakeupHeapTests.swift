@testable import Relais
import Testing

/// The relay queue's schedule: earliest first, whatever the order of pushes.
struct WakeupHeapTests {
    @Test func popsInTimeOrder() {
        var heap = WakeupHeap()
        let times = [5.0, 1, 9, 3, 3, 0, 7, 2, 8, 6, 4]
        for (index, time) in times.enumerated() { heap.push(time, "m\(index)") }
        var popped: [Double] = []
        while let entry = heap.popFirst() { popped.append(entry.time) }
        #expect(popped == times.sorted())
        #expect(heap.isEmpty && heap.first == nil)
    }

    @Test func firstIsTheEarliestAfterEachPush() {
        var heap = WakeupHeap()
        heap.push(10, "late")
        heap.push(0, "flushed")
        #expect(heap.first?.id == "flushed")
        heap.popFirst()
        #expect(heap.first?.id == "late" && heap.count == 1)
    }
}
