#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call with the path it was about, for log lines and for
/// choosing between "disk full" (452) and other failures (451).
public struct SystemCallError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let path: String
    public let errno: Int32

    public init(_ operation: String, _ path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var isOutOfSpace: Bool { errno == ENOSPC || errno == EDQUOT }

    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(errno)))"
    }
}
