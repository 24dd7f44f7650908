import Foundation
import NIOHTTP1
import NIOPosix

/// How `relais queue` reaches a running relay's admin endpoint (when the
/// policy configures one): the address and token from `relais.config`.
public struct AdminClient: Sendable {
    public let url: String
    private let token: String?

    /// Nil when the configuration has no admin endpoint.
    public init?(_ configuration: ServerConfiguration) {
        guard let listen = configuration.adminListen else { return nil }
        url = "http://" + listen
        token = configuration.adminToken
    }

    /// One call; the status and the body, or nil when nothing answers there.
    public func call(_ method: String, _ path: String) async -> (status: Int, body: String)? {
        guard let address = URL(string: url + path) else { return nil }
        let headers = token.map { [("Authorization", "Bearer \($0)")] } ?? []
        guard let response = try? await HTTPClient.request(HTTPMethod(rawValue: method), address, headers: headers,
                                                           group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(10))
        else { return nil }
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }
}
