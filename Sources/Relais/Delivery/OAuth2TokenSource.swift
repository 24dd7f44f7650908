import Foundation
import NIOPosix
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
        let response: HTTPClient.Response
        do {
            response = try await HTTPClient.post(tokenURL, form: form, tls: context, group: MultiThreadedEventLoopGroup.singleton)
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
}

/// A failed token refresh, with the endpoint's own error.
struct OAuth2Error: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
