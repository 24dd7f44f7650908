import COpenSSL
import Foundation

/// A private key for DKIM signatures (RFC 6376 rsa-sha256, RFC 8463
/// ed25519-sha256) on the system OpenSSL: loaded from PEM, never shown,
/// and the public half as DKIM's DNS record wants it.
public final class SigningKey: @unchecked Sendable {
    public enum Kind: Sendable, Equatable {
        case rsa(bits: Int)
        case ed25519
    }

    public let kind: Kind
    /// Only read (signing does not change it), so one key serves every thread.
    private let key: OpaquePointer

    /// Reads a PEM private key (PKCS#8 or traditional RSA).
    public convenience init(pemFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw TLSError("cannot read the key file \(path)") }
        try self.init(pem: Array(data), source: path)
    }

    public init(pem: [UInt8], source: String = "the key") throws {
        let bio = pem.withUnsafeBytes { BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }
        defer { BIO_free(bio) }
        guard let loaded = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
            throw TLSError.fromQueue("\(source) is not a PEM private key")
        }
        switch EVP_PKEY_get_base_id(loaded) {
        case EVP_PKEY_RSA:
            kind = .rsa(bits: Int(EVP_PKEY_get_bits(loaded)))
        case EVP_PKEY_ED25519:
            kind = .ed25519
        default:
            EVP_PKEY_free(loaded)
            throw TLSError("\(source) is neither an RSA nor an Ed25519 key")
        }
        key = loaded
    }

    private init(generated: OpaquePointer, kind: Kind) {
        key = generated
        self.kind = kind
    }

    deinit { EVP_PKEY_free(key) }

    /// A new key: RSA of `bits`, or Ed25519.
    public static func generate(_ kind: Kind) throws -> SigningKey {
        let made: OpaquePointer?
        switch kind {
        case .rsa(let bits): made = relais_keygen_rsa(UInt32(bits))
        case .ed25519: made = relais_keygen_ed25519()
        }
        guard let made else { throw TLSError.fromQueue("cannot generate a key") }
        return SigningKey(generated: made, kind: kind)
    }

    /// The private key as PKCS#8 PEM, for `relais dkim keygen` to write.
    public var privatePEM: String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 else { return "" }
        return String(decoding: Self.drain(bio), as: UTF8.self)
    }

    /// `p=` of the DNS record: the SubjectPublicKeyInfo DER for RSA, the
    /// raw 32 bytes for Ed25519 (RFC 8463 section 4), base64.
    public var publicKeyBase64: String {
        switch kind {
        case .rsa:
            let length = i2d_PUBKEY(key, nil)
            guard length > 0 else { return "" }
            var der = [UInt8](repeating: 0, count: Int(length))
            der.withUnsafeMutableBufferPointer { buffer in
                var cursor = buffer.baseAddress
                _ = i2d_PUBKEY(key, &cursor)
            }
            return Data(der).base64EncodedString()
        case .ed25519:
            var raw = [UInt8](repeating: 0, count: 32)
            var length = raw.count
            guard EVP_PKEY_get_raw_public_key(key, &raw, &length) == 1 else { return "" }
            return Data(raw.prefix(length)).base64EncodedString()
        }
    }

    /// rsa-sha256: RSASSA-PKCS1-v1_5 over SHA-256 of `data`; ed25519-sha256:
    /// PureEdDSA over the SHA-256 of `data` (RFC 8463 section 3).
    public func sign(_ data: [UInt8]) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw TLSError("cannot make a signing context") }
        defer { EVP_MD_CTX_free(context) }
        let input: [UInt8]
        let digest: OpaquePointer?
        switch kind {
        case .rsa:
            input = data
            digest = EVP_sha256()
        case .ed25519:
            input = Self.sha256(data)
            digest = nil
        }
        guard EVP_DigestSignInit(context, nil, digest, nil, key) == 1 else { throw TLSError.fromQueue("cannot start signing") }
        var length = 0
        guard EVP_DigestSign(context, nil, &length, input, input.count) == 1 else { throw TLSError.fromQueue("cannot sign") }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(context, &signature, &length, input, input.count) == 1 else { throw TLSError.fromQueue("cannot sign") }
        return Array(signature.prefix(length))
    }

    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        _ = data.withUnsafeBufferPointer { SHA256($0.baseAddress, $0.count, &digest) }
        return digest
    }

    private static func drain(_ bio: OpaquePointer) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = BIO_read(bio, &chunk, Int32(chunk.count))
            guard count > 0 else { break }
            bytes += chunk.prefix(Int(count))
        }
        return bytes
    }
}
