import Foundation
import NIOPosix
import RelaisLua
import RelaisTLS

/// `relais.oauth2{...}`: an access token for XOAUTH2, refreshed with the
/// OAuth2 refresh-token grant (RFC 6749 6) over HTTPS on the relay's own TLS
/// client, off the event loops, and cached until a minute before it expires.
actor OAuth2TokenSource {
    let tokenURL: URL
    private let clientID: String
    private let clientSecret: String?
    private let refreshToken: String
    private let scope: String?
    private let caFile: String?
    private var cached: (token: String, expires: Date)?

    init(tokenURL: URL, clientID: String, clientSecret: String?, refreshToken: String, scope: String?, caFile: String?) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.refreshToken = refreshToken
        self.scope = scope
        self.caFile = caFile
    }

    func token() async throws -> String {
        if let cached, cached.expires > Date().addingTimeInterval(60) { return cached.token }
        var form = [("grant_type", "refresh_token"), ("client_id", clientID), ("refresh_token", refreshToken)]
        if let clientSecret { form.append(("client_secret", clientSecret)) }
        if let scope { form.append(("scope", scope)) }
        let context = try TLSContext.client(verify: true, caFile: caFile)
        let response: HTTPSClient.Response
        do {
            response = try await HTTPSClient.post(tokenURL, form: form, tls: context, group: MultiThreadedEventLoopGroup.singleton)
        } catch {
            throw OAuth2Error("OAuth2 token refresh at \(tokenURL) failed: \(error)")
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        guard response.status == 200, let token = json["access_token"] as? String, !token.isEmpty else {
            let reason = [json["error"] as? String, json["error_description"] as? String].compactMap { $0 }.joined(separator: ": ")
            throw OAuth2Error("OAuth2 token refresh at \(tokenURL) failed: HTTP \(response.status)"
                + (reason.isEmpty ? "" : " (\(reason))"))
        }
        let lifetime = (json["expires_in"] as? Double) ?? (json["expires_in"] as? Int).map(Double.init) ?? 3600
        cached = (token, Date().addingTimeInterval(lifetime))
        return token
    }

    static func parse(_ table: LuaTable) throws -> OAuth2TokenSource {
        let known = ["token_url", "client_id", "client_secret", "refresh_token", "scope", "ca_file"]
        for key in table.stringKeys where !known.contains(key) {
            throw LuaError("relais.oauth2: unknown key \(key.debugDescription) (known: \(known.joined(separator: ", ")))")
        }
        guard let text = table["token_url"].stringValue, let url = URL(string: text), url.scheme == "https" else {
            throw LuaError("relais.oauth2: token_url must be an https URL")
        }
        guard let clientID = table["client_id"].stringValue else { throw LuaError("relais.oauth2: client_id is required") }
        guard let refreshToken = table["refresh_token"].stringValue, !refreshToken.isEmpty else {
            throw LuaError("relais.oauth2: refresh_token is required")
        }
        return OAuth2TokenSource(tokenURL: url, clientID: clientID, clientSecret: table["client_secret"].stringValue,
                                 refreshToken: refreshToken, scope: table["scope"].stringValue,
                                 caFile: table["ca_file"].stringValue)
    }
}

/// A failed token refresh, with the endpoint's own error.
struct OAuth2Error: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The Lua value `relais.oauth2{...}` returns, for `auth.token`.
final class OAuth2Object: LuaObject {
    let source: OAuth2TokenSource

    init(_ source: OAuth2TokenSource) { self.source = source }

    var luaTypeName: String { "relais.oauth2(\(source.tokenURL))" }
    var luaMethodNames: Set<String> { [] }
    func luaField(_ name: String, state: LuaState) throws -> LuaValue { .nil }
    func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue] { [] }
}
