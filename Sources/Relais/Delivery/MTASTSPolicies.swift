import Foundation
import Logging
import NIOCore
import RelaisDNS

/// The MTA-STS policies of recipient domains (RFC 8461 section 3): the
/// `_mta-sts.<domain>` TXT record names the current policy id; the policy
/// comes over verified HTTPS from `mta-sts.<domain>` (200 only, no
/// redirects, at most 64 KiB) and is cached in memory and in
/// `spool/mta-sts/` by id until its `max_age`. When the record or the fetch
/// fails, an unexpired cached policy keeps applying (section 5.1).
actor MTASTSPolicies {
    struct Cached: Codable {
        var id: String
        var policy: MTASTSPolicy
        var expires: Double
    }

    private var cache: [String: Cached] = [:]
    private let contexts = TLSClientContexts()
    private let folder: String
    private let resolver: DNSResolver
    private let loop: any EventLoop
    private let logger: Logger

    init(folder: String, resolver: DNSResolver, loop: any EventLoop, logger: Logger) {
        self.folder = folder
        self.resolver = resolver
        self.loop = loop
        self.logger = logger
    }

    /// The policy that applies to `domain` now; nil when it has none.
    /// `port` and `caFile` are for private deployments and tests (443 and
    /// the system store by default).
    func policy(for domain: String, port: Int, caFile: String?) async -> MTASTSPolicy? {
        let now = Date().timeIntervalSince1970
        let cached = cache[domain] ?? load(domain)
        let valid = cached.flatMap { $0.expires > now ? $0 : nil }
        guard let id = await currentID(domain) else { return valid?.policy }
        if let valid, valid.id == id { return valid.policy }
        do {
            let policy = try await fetch(domain, port: port, caFile: caFile)
            let entry = Cached(id: id, policy: policy, expires: now + Double(policy.maxAge))
            cache[domain] = entry
            save(domain, entry)
            return policy
        } catch {
            logger.warning("MTA-STS policy fetch failed", metadata: ["domain": "\(domain)", "error": "\(NetworkFailure.describe(error))",
                                                                    "cached": "\(valid != nil)"])
            return valid?.policy
        }
    }

    private func currentID(_ domain: String) async -> String? {
        guard let answer = try? await resolver.lookup("_mta-sts.\(domain)", .txt, on: loop).get() else { return nil }
        let ids = answer.records.compactMap { record -> String? in
            guard case .txt(let strings) = record else { return nil }
            return MTASTSPolicy.recordID(String(decoding: strings.flatMap { $0 }, as: UTF8.self))
        }
        return ids.count == 1 ? ids[0] : nil
    }

    private func fetch(_ domain: String, port: Int, caFile: String?) async throws -> MTASTSPolicy {
        let host = "mta-sts.\(domain)"
        let addresses = await resolver.addresses(of: host, on: loop).addresses
        guard let address = addresses.first, let url = URL(string: "https://\(host)\(port == 443 ? "" : ":\(port)")/.well-known/mta-sts.txt")
        else { throw HTTPClientError("\(host) has no address") }
        let response = try await HTTPClient.request(.GET, url, headers: [], body: [], tls: try contexts.context(caFile: caFile), group: loop,
                                                    timeout: .seconds(10), maxBody: 64 * 1024, connectAddress: address)
        guard response.status == 200 else { throw HTTPClientError("\(url) answered \(response.status)") }
        guard let policy = MTASTSPolicy(parsing: String(decoding: response.body, as: UTF8.self)) else {
            throw HTTPClientError("\(url) holds no valid STSv1 policy")
        }
        return policy
    }

    private func path(_ domain: String) -> String { folder + "/" + domain.replacingOccurrences(of: "/", with: "_") + ".json" }

    private func load(_ domain: String) -> Cached? {
        guard let data = FileManager.default.contents(atPath: path(domain)),
              let entry = try? JSONDecoder().decode(Cached.self, from: data) else { return nil }
        cache[domain] = entry
        return entry
    }

    private func save(_ domain: String, _ entry: Cached) {
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let data = try? JSONEncoder().encode(entry) { try? DurableFiles.replaceUnsynced(path(domain), with: data) }
    }
}
