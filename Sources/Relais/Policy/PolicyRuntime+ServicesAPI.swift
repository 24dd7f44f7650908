import Foundation
import NIOCore
import NIOHTTP1
import RelaisDNS
import RelaisLua
import RelaisTLS

/// `relais.dns`, `relais.http` and `relais.redis`: calls to other systems
/// from inside a hook. Each suspends the hook's coroutine until its answer
/// arrives, so the event loop serves other connections meanwhile; failures
/// come back as `nil, "reason"`, never as an error.
extension PolicyRuntime {
    func servicesAPI() -> [(String, LuaValue)] {
        [
            ("dns", .table(.record([
                ("lookup", state.makeFunction { [unowned self] state in try dnsLookup(state) }),
                ("reverse", state.makeFunction { state in
                    guard let ip = state.argument(1).stringValue else { throw LuaError("relais.dns.reverse expects an IP address") }
                    state.push(ReverseName.of(ip).map(LuaValue.text) ?? .nil)
                    return 1
                }),
            ]))),
            ("http", .table(.record([
                ("request", state.makeFunction { [unowned self] state in try httpRequest(state) }),
            ]))),
            ("redis", state.makeFunction { [unowned self] state in
                state.push(object: RedisObject(endpoint: try RedisObject.endpoint(state.argument(1), state.argument(2)), runtime: self))
                return 1
            }),
        ]
    }

    /// Suspends the running hook until the future `start` makes completes:
    /// its value through `results`, or `nil, reason`.
    /// `service` (`dns`, `http`, `redis`) labels the call in the metrics.
    func wait<Value: Sendable>(_ function: String, service: String, _ start: (HookIO) throws -> EventLoopFuture<Value>,
                               results: @escaping @Sendable (Value) -> [LuaValue]) throws -> Int {
        guard let io else { throw LuaError("\(function) can only wait inside a hook") }
        try state.requireSuspendable(function)
        let started = NIODeadline.now()
        let future = try start(io)
        let metrics = io.services.metrics
        return try state.suspend(function) { suspension in
            let waiting = NIOLoopBound(suspension, eventLoop: io.loop)
            future.hop(to: io.loop).whenComplete { result in
                let seconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
                switch result {
                case .success(let value):
                    metrics?.hookIOCall(service: service, result: "ok", seconds: seconds)
                    waiting.value.resume(results(value))
                case .failure(let error):
                    metrics?.hookIOCall(service: service, result: "error", seconds: seconds)
                    waiting.value.resume([.nil, .text(NetworkFailure.describe(error))])
                }
            }
        }
    }

    // MARK: - DNS

    static let lookupTypes: [DNSRecordType] = [.a, .aaaa, .mx, .txt, .ptr, .cname, .ns, .tlsa]

    private func dnsLookup(_ state: LuaState) throws -> Int {
        guard var name = state.argument(1).stringValue else { throw LuaError("relais.dns.lookup expects a name") }
        let typeName = state.argument(2).stringValue ?? "A"
        guard let type = DNSRecordType(name: typeName), Self.lookupTypes.contains(type) else {
            throw LuaError("relais.dns.lookup: unknown type \(typeName.debugDescription) (known: "
                + Self.lookupTypes.map(\.name).joined(separator: ", ") + ")")
        }
        if type == .ptr, let pointer = ReverseName.pointer(name) { name = pointer }
        if let io, let cached = io.resolver.cached(name, type) {
            io.services.metrics?.hookIOCall(service: "dns", result: "cached", seconds: nil)
            let values = Self.luaResults(cached)
            for value in values { state.push(value) }
            return values.count
        }
        return try wait("relais.dns.lookup", service: "dns", { io in io.resolver.lookup(name, type, on: io.loop) },
                        results: { Self.luaResults(.success($0)) })
    }

    /// A list of the records (strings, or tables for MX and TLSA); `nil, err` for a failure.
    private static func luaResults(_ result: Result<DNSAnswer, DNSError>) -> [LuaValue] {
        switch result {
        case .failure(let error):
            return [.nil, .text(error.description)]
        case .success(let answer):
            let records = answer.records.sorted { preference(of: $0) < preference(of: $1) }
            return [.table(.array(records.map(luaValue)))]
        }
    }

    private static func preference(of record: DNSRecordData) -> Int {
        if case .mx(let preference, _) = record { return Int(preference) }
        return 0
    }

    private static func luaValue(_ record: DNSRecordData) -> LuaValue {
        switch record {
        case .a(let text), .aaaa(let text), .ptr(let text), .cname(let text), .ns(let text):
            return .text(text)
        case .mx(let preference, let host):
            return .table(.record([("preference", .integer(Int64(preference))), ("host", .text(host))]))
        case .txt(let strings):
            return .string(LuaString(bytes: strings.flatMap { $0 }))
        case .tlsa(let usage, let selector, let matchingType, let data):
            return .table(.record([("usage", .integer(Int64(usage))), ("selector", .integer(Int64(selector))),
                                   ("matching_type", .integer(Int64(matchingType))),
                                   ("data", .text(data.map { String(format: "%02x", $0) }.joined()))]))
        case .soa, .other:
            return .nil
        }
    }

    // MARK: - HTTP

    private func httpRequest(_ state: LuaState) throws -> Int {
        guard let table = state.argument(1).tableValue else {
            throw LuaError("relais.http.request expects a table: { url = ..., method = ..., ... }")
        }
        let request = try HTTPRequestReader.read(LuaTableReader(table, function: "relais.http.request"))
        return try wait("relais.http.request", service: "http", { io in
            // Off the loop: the first request for a CA file reads it.
            io.loop.makeFutureWithTask { [services = io.services, loop = io.loop] in
                let tls = request.url.scheme == "https" ? try services.tlsContexts.context(caFile: request.caFile) : nil
                return try await request.send(tls: tls, group: loop)
            }
        }, results: { response in
            var headers: [(String, LuaValue)] = []
            for (name, value) in response.headers {
                let key = name.lowercased()
                if let index = headers.firstIndex(where: { $0.0 == key }), let earlier = headers[index].1.stringValue {
                    headers[index].1 = .text(earlier + ", " + value)
                } else {
                    headers.append((key, .text(value)))
                }
            }
            return [.table(.record([("status", .integer(Int64(response.status))), ("headers", .table(.record(headers))),
                                    ("body", .string(LuaString(bytes: response.body)))]))]
        })
    }
}

/// `relais.http.request{...}` as plain values, and the request it makes
/// (following redirects only as often as asked).
struct HTTPRequestReader: Sendable {
    var method: HTTPMethod
    var url: URL
    var headers: [(String, String)]
    var body: [UInt8]
    var timeout: TimeAmount
    var caFile: String?
    var maxSize: Int
    var followRedirects: Int

    static func read(_ fields: LuaTableReader) throws -> HTTPRequestReader {
        try fields.rejectUnknownKeys(["method", "url", "headers", "body", "timeout", "ca_file", "max_size", "follow_redirects"])
        let text = try fields.requiredString("url", "url must be an http:// or https:// URL")
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw fields.error("url must be an http:// or https:// URL, not \(text.debugDescription)")
        }
        let method = (fields.string("method") ?? "GET").uppercased()
        guard method.allSatisfy({ $0.isLetter }) && !method.isEmpty else { throw fields.error("method must be a word like GET") }
        var headers: [(String, String)] = []
        if let table = try fields.table("headers", "headers must be a table of name = value") {
            for entry in table.table.entries {
                guard let name = entry.key.stringValue, let value = entry.value.stringValue,
                      !name.isEmpty, !(name + value).contains(where: { $0 == "\r" || $0 == "\n" }) else {
                    throw fields.error("headers must map names to strings without line breaks")
                }
                headers.append((name, value))
            }
        }
        let body: [UInt8]
        switch fields.table["body"] {
        case .nil: body = []
        case .string(let bytes): body = bytes.bytes
        default: throw fields.error("body must be a string")
        }
        return HTTPRequestReader(
            method: HTTPMethod(rawValue: method), url: url, headers: headers, body: body,
            timeout: .nanoseconds(Int64((try fields.seconds("timeout", maximum: 3600) ?? 10) * 1e9)),
            caFile: fields.string("ca_file"), maxSize: try fields.positiveInteger("max_size", below: 1 << 30) ?? HTTPClient.maxBody,
            followRedirects: try fields.positiveInteger("follow_redirects", below: 21) ?? 0)
    }

    /// Sends the request; a 301/302/303/307/308 with a Location is followed
    /// while redirects remain (303, and 301/302 after POST, become GET).
    func send(tls: TLSContext?, group: any EventLoopGroup) async throws -> HTTPClient.Response {
        var current = self
        while true {
            let response = try await HTTPClient.request(current.method, current.url, headers: current.headers, body: current.body,
                                                        tls: tls, group: group, timeout: timeout, maxBody: maxSize)
            guard current.followRedirects > 0, [301, 302, 303, 307, 308].contains(response.status),
                  let location = response.headers.first(where: { $0.name.lowercased() == "location" })?.value,
                  let next = URL(string: location, relativeTo: current.url)?.absoluteURL,
                  next.scheme == current.url.scheme else { return response }
            current.followRedirects -= 1
            current.url = next
            if response.status == 303 || (current.method == .POST && response.status < 307) {
                current.method = .GET
                current.body = []
            }
        }
    }
}
