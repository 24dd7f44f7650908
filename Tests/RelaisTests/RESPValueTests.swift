import NIOCore
@testable import Relais
import Testing

/// RESP2 framing: commands out, replies in, whatever the split of the bytes.
struct RESPValueTests {
    @Test func commandsAreArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RESPValue.command([Array("SET".utf8), Array("k".utf8), Array("a\r\nb".utf8)], into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n")
    }

    @Test func repliesDecodeByType() throws {
        var buffer = ByteBuffer(string: "+OK\r\n-ERR wrong\r\n:42\r\n$5\r\nhel\r\n\r\n$-1\r\n*2\r\n$1\r\na\r\n*-1\r\n*0\r\n")
        var values: [RESPValue] = []
        while let value = try RESPValue.next(from: &buffer) { values.append(value) }
        #expect(values == [.simple("OK"), .error("ERR wrong"), .integer(42), .bulk(Array("hel\r\n".utf8)), .null,
                           .array([.bulk([97]), .null]), .array([])])
        #expect(buffer.readableBytes == 0)
    }

    @Test func aReplySplitAnywhereWaitsForTheRest() throws {
        let whole = Array("*2\r\n$3\r\nfoo\r\n:7\r\n".utf8)
        for split in 1..<whole.count {
            var buffer = ByteBuffer(bytes: whole[..<split])
            #expect(try RESPValue.next(from: &buffer) == nil, "split at \(split)")
            #expect(buffer.readableBytes == split, "nothing is taken before the reply is whole")
            buffer.writeBytes(whole[split...])
            #expect(try RESPValue.next(from: &buffer) == .array([.bulk(Array("foo".utf8)), .integer(7)]))
        }
    }

    @Test(arguments: ["?x\r\n", ":12a\r\n", "$-5\r\n", "$3\r\nabcd\r\n", String(repeating: "*1\r\n", count: 20) + ":1\r\n"])
    func protocolErrorsAreRefused(_ text: String) {
        var buffer = ByteBuffer(string: text)
        #expect(throws: RESPError.self) { try RESPValue.next(from: &buffer) }
    }
}
