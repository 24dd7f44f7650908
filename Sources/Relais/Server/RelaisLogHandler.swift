import Foundation
import Logging
import NIOConcurrencyHelpers

/// How log lines look: swift-log's plain text, or one JSON object per line.
public enum LogFormat: String, Sendable {
    case text, json
}

/// The relay's log handler, on standard error: text as swift-log's stream
/// handler writes it, or (`log_format = "json"`) one JSON object per line
/// with `timestamp`, `level`, `label`, `message` and the metadata fields.
/// The format follows the running policy, so it switches after a load.
public struct RelaisLogHandler: LogHandler {
    /// The format every handler writes now.
    public static func use(_ format: LogFormat) { current.withLockedValue { $0 = format } }

    private static let current = NIOLockedValueBox(LogFormat.text)
    private static let output = NIOLock()

    private var text: StreamLogHandler
    private let label: String

    public init(label: String) {
        self.label = label
        self.text = StreamLogHandler.standardError(label: label)
    }

    public var logLevel: Logger.Level {
        get { text.logLevel }
        set { text.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { text.metadata }
        set { text.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { text[metadataKey: key] }
        set { text[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        guard Self.current.withLockedValue({ $0 }) == .json else { return text.log(event: event) }
        var object: [String: Any] = [:]
        for (key, value) in text.metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = Self.plain(value)
        }
        object["timestamp"] = Self.timestamp()
        object["level"] = event.level.rawValue
        object["label"] = label
        object["message"] = event.message.description
        guard var bytes = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return }
        bytes.append(UInt8(ascii: "\n"))
        Self.output.withLock {
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(STDERR_FILENO, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                    if written <= 0 { if errno == EINTR { continue } else { return } }
                    offset += written
                }
            }
        }
    }

    /// RFC 3339 UTC with milliseconds.
    private static func timestamp() -> String {
        let now = Date().timeIntervalSince1970
        var seconds = time_t(now)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int((now - Double(seconds)) * 1000))
    }

    private static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let value): return value.description
        case .array(let values): return values.map(plain)
        case .dictionary(let values): return values.mapValues(plain)
        }
    }
}
