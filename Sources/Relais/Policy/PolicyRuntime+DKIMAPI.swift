import Logging
import RelaisLua
import RelaisTLS

/// `relais.dkim{ domain, selector, key, algorithm, headers, canonicalization }`:
/// a signer for `dkim = ...` on a smarthost and for `msg:dkim_sign` in the
/// data hook. The key file is read while the policy loads (and watched, so
/// a new key reloads with the policy); it never reaches a log line.
extension PolicyRuntime {
    func dkimAPI() -> [(String, LuaValue)] {
        [("dkim", state.makeFunction { [unowned self] state in
            try requireLoading("relais.dkim")
            guard let table = state.argument(1).tableValue else {
                throw LuaError("relais.dkim expects a table: { domain = ..., selector = ..., key = \"keys/s1.pem\" }")
            }
            state.push(object: DKIMSignerObject(signer: try readSigner(LuaTableReader(table, function: "relais.dkim"))))
            return 1
        })]
    }

    private func readSigner(_ fields: LuaTableReader) throws -> DKIMSigner {
        try fields.rejectUnknownKeys(["domain", "selector", "key", "algorithm", "headers", "canonicalization"])
        let domain = try fields.requiredString("domain", "domain is required (the d= of the signature)").lowercased()
        let selector = try fields.requiredString("selector", "selector is required (the s= of the signature)")
        let keyName = try fields.requiredString("key", "key is required (a PEM file, RSA or Ed25519)")
        let path = keyName.hasPrefix("/") ? keyName : FilePaths.normalized(source.directory + "/" + keyName)
        if !watchedFiles.contains(path) { watchedFiles.append(path) }
        let key: SigningKey
        do { key = try SigningKey(pemFile: path) } catch { throw fields.error("key: \(error)") }
        if case .rsa(let bits) = key.kind {
            guard bits >= 1024 else { throw fields.error("key: an RSA key of \(bits) bits is too weak (RFC 8301: at least 1024)") }
            if bits < 2048 && !quietWhileLoading {
                logger.warning("DKIM key under 2048 bits", metadata: ["signer": "\(selector)._domainkey.\(domain)", "bits": "\(bits)"])
            }
        }
        if let algorithm = fields.string("algorithm") {
            let expected = key.kind == .ed25519 ? "ed25519-sha256" : "rsa-sha256"
            guard algorithm == expected else { throw fields.error("algorithm \(algorithm.debugDescription) does not match the key (\(expected))") }
        }
        var signer = DKIMSigner(domain: domain, selector: selector, key: key, headers: DKIMSigner.defaultHeaders,
                                oversigned: Set(DKIMSigner.defaultOversigned))
        if fields.has("headers") {
            guard let list = fields.table["headers"].tableValue, list.isArray,
                  let names = Optional(list.array.compactMap { $0.stringValue?.lowercased() }), names.count == list.array.count,
                  names.contains("from") else {
                throw fields.error("headers must be a list of field names, with \"From\" among them (RFC 6376 5.4)")
            }
            signer.headers = names
            signer.oversigned = Set(DKIMSigner.defaultOversigned).intersection(names)
        }
        if let text = fields.string("canonicalization") {
            let parts = text.split(separator: "/").map(String.init)
            guard (1...2).contains(parts.count), let header = DKIMCanonicalization(rawValue: parts[0]),
                  let body = DKIMCanonicalization(rawValue: parts.count == 2 ? parts[1] : "simple") else {
                throw fields.error("canonicalization must be \"relaxed/relaxed\", \"relaxed/simple\", \"simple/relaxed\" or \"simple/simple\"")
            }
            signer.headerCanonicalization = header
            signer.bodyCanonicalization = body
        }
        return signer
    }

    /// The labels of a target's `dkim = signer` or `dkim = { rsa, ed }`
    /// (nil for none); the signers are kept for acceptance to sign with.
    func signerLabels(_ value: LuaValue, function: String) throws -> [String]? {
        let found: [DKIMSigner]
        do { found = try dkimSigners(value) } catch { throw LuaError("\(function): \(error)") }
        for signer in found { signers[signer.label] = signer }
        return found.isEmpty ? nil : found.map(\.label)
    }

    /// The signers of `dkim = signer` or `dkim = { rsa, ed }` on a target.
    private func dkimSigners(_ value: LuaValue) throws -> [DKIMSigner] {
        switch value {
        case .nil:
            return []
        case .object(let id):
            guard let signer = (state.object(id) as? DKIMSignerObject)?.signer else {
                throw LuaError("dkim must be a signer made by relais.dkim{...} or a list of them")
            }
            return [signer]
        case .table(let list) where list.isArray:
            return try list.array.flatMap { try dkimSigners($0) }
        default:
            throw LuaError("dkim must be a signer made by relais.dkim{...} or a list of them")
        }
    }
}

/// What `relais.dkim{...}` returns: `tostring` shows the DNS name and the
/// algorithm, `signer.dns_record` the TXT record to publish; never the key.
final class DKIMSignerObject: LuaObject {
    let signer: DKIMSigner

    init(signer: DKIMSigner) {
        self.signer = signer
    }

    var luaTypeName: String { "dkim signer \(signer.label)" }
    var luaMethodNames: Set<String> { [] }

    func luaField(_ name: String, state: LuaState) throws -> LuaValue {
        switch name {
        case "domain": .text(signer.domain)
        case "selector": .text(signer.selector)
        case "dns_name": .text(signer.dnsName)
        case "dns_record": .text(signer.dnsRecord)
        default: .nil
        }
    }

    func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue] { [] }
}
