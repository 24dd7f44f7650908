import Foundation
import RelaisLua

/// The Lua value `relais.oauth2{...}` returns, for `auth.token`.
final class OAuth2Object: LuaObject {
    let source: OAuth2TokenSource

    init(_ source: OAuth2TokenSource) { self.source = source }

    var luaTypeName: String { "relais.oauth2(\(source.tokenURL))" }
    var luaMethodNames: Set<String> { [] }
    func luaField(_ name: String, state: LuaState) throws -> LuaValue { .nil }
    func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue] { [] }
}

extension OAuth2TokenSource {
    /// Reads `relais.oauth2{...}`.
    static func read(_ table: LuaTable) throws -> OAuth2TokenSource {
        let fields = LuaTableReader(table, function: "relais.oauth2")
        try fields.rejectUnknownKeys(["token_url", "client_id", "client_secret", "refresh_token", "scope", "ca_file"])
        guard let text = fields.string("token_url"), let url = URL(string: text), url.scheme == "https" else {
            throw fields.error("token_url must be an https URL")
        }
        guard let clientID = fields.string("client_id") else { throw fields.error("client_id is required") }
        let refreshToken = try fields.requiredString("refresh_token", "refresh_token is required")
        return OAuth2TokenSource(tokenURL: url, clientID: clientID, clientSecret: fields.string("client_secret"),
                                 refreshToken: refreshToken, scope: fields.string("scope"), caFile: fields.string("ca_file"))
    }
}
